//! Durations as people write them in scenarios ("500ms", "1.5s", "5m", "24h") and as the
//! reports print them.
//!
//! Parsed with humantime (fractions such as "1.5s" included), with a clearer word on negative
//! and empty values; written back by [`format_duration`] in a compact form humantime reads back
//! exactly, for writing shrunk swarm scenarios out.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MIN: u64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MIN;
const NANOS_PER_DAY: u64 = 24 * NANOS_PER_HOUR;

/// A span of virtual time in nanoseconds, the engine's unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);

    pub const fn from_secs(secs: u64) -> SimDuration {
        SimDuration(secs * NANOS_PER_SEC)
    }

    pub const fn from_millis(millis: u64) -> SimDuration {
        SimDuration(millis * NANOS_PER_MILLI)
    }

    pub const fn from_micros(micros: u64) -> SimDuration {
        SimDuration(micros * 1_000)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }

    pub fn from_std(duration: std::time::Duration) -> SimDuration {
        SimDuration(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Reads "500ms", "1.5s", "2m30s", "24h" (humantime's grammar, fractions included). A bare
/// number is refused: the unit is not obvious.
pub fn parse_duration(text: &str) -> Result<SimDuration, String> {
    let trimmed = text.trim();
    // humantime's own word for these ("expected number") would not say what is wrong.
    if trimmed.starts_with('-') {
        return Err(format!(
            "negative duration \"{text}\": a duration cannot be negative"
        ));
    }
    if trimmed.is_empty() {
        return Err("empty duration: write e.g. \"500ms\", \"2s\", \"5m\"".into());
    }
    humantime::parse_duration(trimmed)
        .map(SimDuration::from_std)
        .map_err(|e| {
            format!("bad duration \"{text}\": {e} (write e.g. \"500ms\", \"1.5s\", \"2m30s\")")
        })
}

/// Writes a duration so that [`parse_duration`] reads it back exactly, and a person reads it
/// at a glance: "0s", "250ms", "1.5s", "5m", "1h30m", "2m0.5s".
pub fn format_duration(duration: SimDuration) -> String {
    let mut nanos = duration.0;
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < NANOS_PER_SEC {
        return format_small(nanos);
    }
    let mut out = String::new();
    for (name, scale) in [
        ("d", NANOS_PER_DAY),
        ("h", NANOS_PER_HOUR),
        ("m", NANOS_PER_MIN),
    ] {
        if nanos >= scale {
            out.push_str(&format!("{}{name}", nanos / scale));
            nanos %= scale;
        }
    }
    if nanos > 0 {
        let secs = nanos / NANOS_PER_SEC;
        let fraction = nanos % NANOS_PER_SEC;
        if fraction == 0 {
            out.push_str(&format!("{secs}s"));
        } else {
            let digits = format!("{fraction:09}");
            out.push_str(&format!("{secs}.{}s", digits.trim_end_matches('0')));
        }
    }
    out
}

fn format_small(nanos: u64) -> String {
    for (name, scale) in [("ms", NANOS_PER_MILLI), ("us", NANOS_PER_MICRO)] {
        if nanos >= scale {
            let whole = nanos / scale;
            let fraction = nanos % scale;
            if fraction == 0 {
                return format!("{whole}{name}");
            }
            let width = if scale == NANOS_PER_MILLI { 6 } else { 3 };
            let digits = format!("{fraction:0width$}");
            return format!("{whole}.{}{name}", digits.trim_end_matches('0'));
        }
    }
    format!("{nanos}ns")
}

/// A latency for reports: three significant figures are plenty, and the width stays short.
pub fn format_latency(nanos: u64) -> String {
    let value = nanos as f64;
    // Thresholds sit half a digit below each unit so that rounding never prints "1000ms".
    let (scaled, unit) = if nanos >= NANOS_PER_SEC - NANOS_PER_MILLI / 2 {
        (value / NANOS_PER_SEC as f64, "s")
    } else if nanos >= NANOS_PER_MILLI - NANOS_PER_MICRO / 2 {
        (value / NANOS_PER_MILLI as f64, "ms")
    } else if nanos >= NANOS_PER_MICRO {
        (value / NANOS_PER_MICRO as f64, "us")
    } else {
        return format!("{nanos}ns");
    };
    if scaled >= 99.95 {
        format!("{scaled:.0}{unit}")
    } else if scaled >= 9.995 {
        format!("{scaled:.1}{unit}")
    } else {
        format!("{scaled:.2}{unit}")
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(*self))
    }
}

impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*self))
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = SimDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"500ms\", \"1.5s\", \"5m\" or \"24h\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SimDuration, E> {
                parse_duration(text).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<SimDuration, E> {
                if value < 0 {
                    return Err(E::custom(format!(
                        "negative duration {value}: a duration cannot be negative"
                    )));
                }
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{value}s\" or \"{value}ms\""
                )))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<SimDuration, E> {
                if value < 0.0 {
                    return Err(E::custom(format!(
                        "negative duration {value}: a duration cannot be negative"
                    )));
                }
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{value}s\" or \"{value}ms\""
                )))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_fractions() {
        assert_eq!(parse_duration("500ms"), Ok(SimDuration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(SimDuration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(SimDuration::from_secs(300)));
        assert_eq!(parse_duration("24h"), Ok(SimDuration::from_secs(86_400)));
        assert_eq!(parse_duration("2m30s"), Ok(SimDuration::from_secs(150)));
        assert_eq!(parse_duration("1.25ms"), Ok(SimDuration(1_250_000)));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("3 parsecs").is_err());
    }

    #[test]
    fn formats_what_it_parses() {
        for text in [
            "0s", "1ns", "20ms", "1.5s", "5m", "1h30m", "2m0.5s", "1d2h", "1.25ms",
        ] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(format_duration(parsed), text);
        }
    }
}
