//! The value types of the configuration file: sizes and durations with units, read
//! through the shared grammar of [`crate::units`].

use std::time::Duration;

use serde::Deserialize;

use crate::units;

/// A byte count: an integer, or a string with a unit ("64MiB", "4KiB", "1MB", "512B");
/// see [`units::parse_size`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => u64::try_from(n).map(ByteSize).map_err(|_| {
                serde::de::Error::custom(format!("a size cannot be negative, got {n}"))
            }),
            Raw::S(s) => units::parse_size(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A duration written with a unit: "10s", "250ms", "1.5s", "2m", "1h", "500us"; see
/// [`units::parse_duration`]. A bare number, string or integer, is refused by the same
/// parser, so its error says to add a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurVisitor)
    }
}

/// Sends strings and numbers alike through [`units::parse_duration`].
struct DurVisitor;

impl serde::de::Visitor<'_> for DurVisitor {
    type Value = Dur;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a duration with a unit, such as \"10s\" or \"250ms\"")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Dur, E> {
        units::parse_duration(s).map(Dur).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Dur, E> {
        self.visit_str(&n.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Dur, E> {
        self.visit_str(&n.to_string())
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Dur, E> {
        self.visit_str(&n.to_string())
    }
}
