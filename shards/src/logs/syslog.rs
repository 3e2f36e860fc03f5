//! Syslog messages (RFC 5424 and RFC 3164, parsed with `syslog_loose`) as log records,
//! and the two TCP framings of RFC 6587: octet counting (`LEN SP MSG`) and one message
//! per line.

use serde_json::{Map, Value};
use syslog_loose::{parse_message, SyslogSeverity, Variant};

use crate::logs::record::{ParseError, Record};

/// The longest octet count a TCP frame may announce, in digits.
const COUNT_DIGITS_MAX: usize = 7;

/// The record for syslog message `bytes` received at `now`.
pub fn parse_syslog(bytes: &[u8], now: &str, max_bytes: usize) -> Result<Record, ParseError> {
    if bytes.len() > max_bytes {
        return Err(ParseError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8)?;
    let text = text.trim_end_matches(['\r', '\n', '\0']);
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let m = parse_message(text, Variant::Either);
    let level = match m.severity {
        Some(SyslogSeverity::SEV_EMERG | SyslogSeverity::SEV_ALERT | SyslogSeverity::SEV_CRIT) => {
            "FATAL"
        }
        Some(SyslogSeverity::SEV_ERR) => "ERROR",
        Some(SyslogSeverity::SEV_WARNING) => "WARN",
        Some(SyslogSeverity::SEV_DEBUG) => "DEBUG",
        Some(SyslogSeverity::SEV_NOTICE | SyslogSeverity::SEV_INFO) | None => "INFO",
    };
    let mut fields = Map::new();
    if let Some(p) = &m.procid {
        fields.insert("procid".into(), Value::String(p.to_string()));
    }
    if let Some(id) = m.msgid {
        fields.insert("msgid".into(), Value::String(id.to_string()));
    }
    for element in &m.structured_data {
        let params: Map<String, Value> = element
            .params()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        fields.insert(element.id.to_string(), Value::Object(params));
    }
    Ok(Record {
        time: m
            .timestamp
            .map_or_else(|| now.to_string(), |t| t.to_rfc3339()),
        level: level.to_string(),
        category: m.facility.map(|f| f.as_str().to_string()),
        host: m.hostname.map(str::to_string),
        app: m.appname.map(str::to_string),
        message: m.msg.to_string(),
        fields,
    })
}

/// What the start of a TCP syslog stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole message at `start..end`; the next frame starts at `next`.
    Message {
        start: usize,
        end: usize,
        next: usize,
    },
    /// Not a whole frame yet.
    NeedMore,
    /// An octet count that is not one (too many digits, or no space after): the stream
    /// cannot be framed from here; skip to the next line end.
    Bad,
}

/// The first frame of `data`: octet counted when it starts with a digit, else up to
/// the line end.
pub fn next_frame(data: &[u8]) -> Frame {
    if data.first().is_some_and(u8::is_ascii_digit) {
        let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > COUNT_DIGITS_MAX {
            return Frame::Bad;
        }
        match data.get(digits) {
            None => return Frame::NeedMore,
            Some(b' ') => {}
            Some(_) => return Frame::Bad,
        }
        let len: usize = std::str::from_utf8(&data[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        let start = digits + 1;
        return if data.len() >= start + len {
            Frame::Message {
                start,
                end: start + len,
                next: start + len,
            }
        } else {
            Frame::NeedMore
        };
    }
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => Frame::Message {
            start: 0,
            end: i,
            next: i + 1,
        },
        None => Frame::NeedMore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-02T00:00:00Z";

    #[test]
    fn rfc5424_and_rfc3164() {
        let r = parse_syslog(
            b"<35>1 2026-12-02T12:01:02.000Z web1 sshd 4242 AUTH [meta user=\"bob\"] Failed password for bob",
            NOW,
            4096,
        )
        .expect("5424");
        assert_eq!(r.level, "ERROR"); // 35 = auth (4) * 8 + err (3)
        assert_eq!(r.category.as_deref(), Some("auth"));
        assert_eq!(
            (r.host.as_deref(), r.app.as_deref()),
            (Some("web1"), Some("sshd"))
        );
        assert_eq!(r.message, "Failed password for bob");
        assert_eq!(r.fields["procid"], "4242");
        assert_eq!(r.fields["meta"]["user"], "bob");
        assert!(r.time.starts_with("2026-12-02T12:01:02"), "{}", r.time);
        let r = parse_syslog(
            b"<28>Dec  2 12:01:02 db1 postgres[77]: disk almost full",
            NOW,
            4096,
        )
        .expect("3164");
        assert_eq!(r.level, "WARN"); // 28 = daemon (3) * 8 + warning (4)
        assert_eq!(r.category.as_deref(), Some("daemon"));
        assert_eq!(r.app.as_deref(), Some("postgres"));
        assert_eq!(r.message, "disk almost full");
    }

    #[test]
    fn malformed_syslog() {
        assert_eq!(parse_syslog(b"\n", NOW, 10), Err(ParseError::Empty));
        assert_eq!(parse_syslog(&[0xff], NOW, 10), Err(ParseError::NotUtf8));
        assert!(matches!(
            parse_syslog(&[b'x'; 11], NOW, 10),
            Err(ParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn framing() {
        assert_eq!(
            next_frame(b"5 hello6 world!"),
            Frame::Message {
                start: 2,
                end: 7,
                next: 7
            }
        );
        assert_eq!(next_frame(b"12 short"), Frame::NeedMore);
        assert_eq!(next_frame(b"123"), Frame::NeedMore);
        assert_eq!(next_frame(b"12x"), Frame::Bad);
        assert_eq!(next_frame(b"123456789 x"), Frame::Bad);
        assert_eq!(
            next_frame(b"<13>hi\nnext"),
            Frame::Message {
                start: 0,
                end: 6,
                next: 7
            }
        );
        assert_eq!(next_frame(b"<13>no end yet"), Frame::NeedMore);
    }
}
