//! Quantities people type with a unit: durations (`"250ms"`, `"1.5s"`, `"2m"`) and byte
//! sizes (`"64MiB"`, `"4096"`). One grammar for the configuration file (serde) and the
//! command line (clap): text in, [`Duration`] or a byte count out, or a typed error whose
//! message names the input and shows a correct example.
//!
//! A duration is a whole or decimal number followed by one of `us` (or `µs`), `ms`, `s`,
//! `m`, `h`, with optional spaces between them. A bare number is refused: `"10"` could be
//! seconds or milliseconds, so the unit is always written. Units are case-sensitive and
//! cannot be combined (`"90s"`, not `"1m30s"`). Digits finer than a nanosecond are dropped.
//!
//! A size is a whole number of bytes, optionally followed by a unit: `B`, `KB`/`K`,
//! `MB`/`M`, `GB`/`G` (×1000) or `KiB`, `MiB`, `GiB` (×1024), in any case.

use std::time::Duration;

/// Why a text is not a duration. Every message names the input and shows the right form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No number where one was expected (empty, a word, a sign, two decimal points).
    #[error(
        "\"{input}\" is not a duration: write a number and a unit (us, ms, s, m or h), \
         e.g. \"250ms\" or \"1.5s\""
    )]
    NotANumber { input: String },
    /// A number with no unit: seconds or milliseconds would be a guess.
    #[error(
        "\"{input}\" has no unit: a bare number is not a duration; \
         add one of us, ms, s, m or h, e.g. \"{number}s\" or \"{number}ms\""
    )]
    MissingUnit { input: String, number: String },
    /// A unit this grammar does not know, or units combined.
    #[error(
        "\"{input}\" has an unknown duration unit \"{unit}\": use one of us, ms, s, m or h, \
         e.g. \"250ms\" or \"90s\" (units cannot be combined)"
    )]
    UnknownUnit { input: String, unit: String },
    /// More than [`Duration::MAX`].
    #[error("\"{input}\" is too long a duration: write a shorter one, e.g. \"24h\"")]
    TooLong { input: String },
}

/// Why a text is not a byte size. Every message names the input and shows the right form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a whole number, or a unit this grammar does not know.
    #[error(
        "\"{input}\" is not a size: use bytes (65536) or a whole number and a unit: \
         B, KB, MB, GB (×1000), KiB, MiB, GiB (×1024), e.g. \"64MiB\""
    )]
    Invalid { input: String },
    /// More than `u64::MAX` bytes.
    #[error("\"{input}\" is too large a size: at most 16 EiB, e.g. \"1GiB\"")]
    TooLarge { input: String },
}

/// Parses a duration: a whole or decimal number and a unit, `"500us"`, `"250ms"`,
/// `"1.5s"`, `"2m"`, `"1h"`; spaces between number and unit are allowed.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let (number, unit) = split_number(s);
    let not_a_number = || DurationError::NotANumber { input: s.into() };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
        return Err(not_a_number());
    }
    let unit_ns: u128 = match unit {
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "" => {
            return Err(DurationError::MissingUnit {
                input: s.into(),
                number: number.into(),
            })
        }
        _ => {
            return Err(DurationError::UnknownUnit {
                input: s.into(),
                unit: unit.into(),
            })
        }
    };
    let too_long = || DurationError::TooLong { input: s.into() };
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        // Only digits are left, so the one way to fail is too many of them.
        whole.parse().map_err(|_| too_long())?
    };
    let mut nanos = whole.checked_mul(unit_ns).ok_or_else(too_long)?;
    // Every unit is a whole number of nanoseconds times a power of ten, so each
    // fractional digit adds an exact amount until the scale drops below 1 ns.
    let mut scale = unit_ns;
    for digit in fraction.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        nanos = nanos.saturating_add(u128::from(digit - b'0') * scale);
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    // The remainder of a division by 10⁹ fits in a u32.
    let subsec = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, subsec))
}

/// A byte count for people: `"512 B"`, `"64.0 KiB"`, `"5.9 GiB"` (binary units).
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Parses a byte size: `"65536"`, `"64MiB"`, `"4 KiB"`, `"1MB"` (units in any case).
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let (number, unit) = split_number(s);
    let invalid = || SizeError::Invalid { input: s.into() };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "mb" | "m" => 1000 * 1000,
        "gb" | "g" => 1000 * 1000 * 1000,
        "kib" => 1024,
        "mib" => 1024 * 1024,
        "gib" => 1024 * 1024 * 1024,
        _ => return Err(invalid()),
    };
    let too_large = || SizeError::TooLarge { input: s.into() };
    let n: u64 = number.parse().map_err(|_| too_large())?;
    n.checked_mul(multiplier).ok_or_else(too_large)
}

/// Splits trimmed text into its leading number (digits and decimal points, unchecked)
/// and the trimmed rest, the unit.
fn split_number(s: &str) -> (&str, &str) {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(end);
    (number, unit.trim())
}

#[cfg(test)]
mod tests {
    use super::format_size;

    #[test]
    fn sizes_are_formatted_in_binary_units() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(64 * 1024), "64.0 KiB");
        assert_eq!(format_size(6 << 30), "6.0 GiB");
    }

    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn every_documented_duration_spelling_parses() {
        // docs/configuration.md, tuning/shardcast.toml and docs/bench.md.
        assert_eq!(ok("500us"), Duration::from_micros(500));
        assert_eq!(ok("200µs"), Duration::from_micros(200));
        assert_eq!(ok("0us"), Duration::ZERO);
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("0ms"), Duration::ZERO);
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok(" 10 s "), Duration::from_secs(10));
    }

    #[test]
    fn decimals_are_exact_down_to_the_nanosecond() {
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0.1s"), Duration::from_millis(100));
        assert_eq!(ok(".5ms"), Duration::from_micros(500));
        assert_eq!(ok("2.s"), Duration::from_secs(2));
        assert_eq!(ok("1.25m"), Duration::from_secs(75));
        assert_eq!(ok("0.001h"), Duration::from_millis(3600));
        assert_eq!(ok("1.2345us"), Duration::from_nanos(1234));
        assert_eq!(ok("0.333333333333s"), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn a_bare_number_is_refused_and_the_message_shows_the_fix() {
        for bare in ["10", "1.5", " 7 "] {
            let e = parse_duration(bare).unwrap_err();
            assert!(
                matches!(e, DurationError::MissingUnit { .. }),
                "{bare}: {e:?}"
            );
            let number = bare.trim();
            assert!(e.to_string().contains(&format!("\"{number}s\"")), "{e}");
        }
    }

    #[test]
    fn bad_durations_name_the_input_and_show_an_example() {
        let cases = [
            ("fast", "not a duration"),
            ("", "not a duration"),
            ("-1s", "not a duration"),
            ("1.2.3s", "not a duration"),
            (".s", "not a duration"),
            ("10 parsecs", "unknown duration unit \"parsecs\""),
            ("1m30s", "unknown duration unit \"m30s\""),
            ("5S", "unknown duration unit \"S\""),
            ("1d", "unknown duration unit \"d\""),
            ("99999999999999999999999999h", "too long"),
            ("340282366920938463463374607431768211456s", "too long"),
        ];
        for (input, why) in cases {
            let msg = parse_duration(input).unwrap_err().to_string();
            assert!(msg.contains(why), "{input:?}: {msg}");
            assert!(msg.contains(&format!("\"{input}\"")), "{input:?}: {msg}");
            assert!(msg.contains("e.g. \""), "{input:?}: {msg}");
        }
    }

    #[test]
    fn the_longest_duration_fits_and_one_more_second_does_not() {
        let max = u64::MAX.to_string();
        assert_eq!(ok(&format!("{max}s")), Duration::from_secs(u64::MAX));
        let over = format!("{}s", u128::from(u64::MAX) + 1);
        assert!(matches!(
            parse_duration(&over),
            Err(DurationError::TooLong { .. })
        ));
    }

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64mib"), Ok(64 << 20));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1m"), Ok(1_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    }

    #[test]
    fn bad_sizes_name_the_input() {
        for bad in ["12XB", "1.5MiB", "lots", "", "-1", "1TiB"] {
            let e = parse_size(bad).unwrap_err();
            assert_eq!(e, SizeError::Invalid { input: bad.into() });
            assert!(e.to_string().contains("e.g. \"64MiB\""), "{e}");
        }
        for huge in ["18446744073709551616", "17179869184GiB"] {
            assert_eq!(
                parse_size(huge),
                Err(SizeError::TooLarge { input: huge.into() })
            );
        }
    }
}
