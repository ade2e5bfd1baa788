//! The two duration grammars upstream exporters use, in one place: Go's `time.ParseDuration`
//! for flags and most config keys (`5m`, `1h30m`, `1.5s`, `250ms`), and Prometheus's
//! `model.Duration` (`1d`, `2w`, no fractions) where a key takes that.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer};

/// Parses a Go duration (`time.ParseDuration`): a sequence of decimal numbers with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, such as `5m`, `1h30m` or `1.5s`; `0` alone is zero.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?} (examples: 5m, 90s, 1h30m, 1.5s)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() || text.starts_with('-') {
        return Err(invalid());
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// A [`Duration`] deserialized from a Go duration string, as in upstream YAML files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 5s, 1m30s or 250ms")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<GoDuration, E> {
                parse_go_duration(text).map(GoDuration).map_err(E::custom)
            }
            // `0` written as a number, as a Go YAML file may.
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<GoDuration, E> {
                if value == 0 {
                    Ok(GoDuration(Duration::ZERO))
                } else {
                    Err(E::custom(format!(
                        "{value} has no unit (write {value}s or {value}ms)"
                    )))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Parses a Prometheus duration (`model.Duration`: whole numbers with units `ms`, `s`, `m`,
/// `h`, `d`, `w`, `y`, such as `1s`, `250ms`, `1m30s` or `2h`), the grammar of Prometheus's own
/// configuration files; Go durations (flags) are [`parse_go_duration`].
pub fn parse_prometheus_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "w" => Duration::from_secs(7 * 86_400),
            "y" => Duration::from_secs(365 * 86_400),
            _ => return None,
        };
        total += unit.checked_mul(u32::try_from(number).ok()?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(
            parse_prometheus_duration("1s"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            parse_prometheus_duration("250ms"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_prometheus_duration("1m30s"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_prometheus_duration("2h"),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(parse_prometheus_duration("1.5s"), None);
        assert_eq!(parse_prometheus_duration("s"), None);
        assert_eq!(parse_prometheus_duration("10"), None);
        assert_eq!(parse_prometheus_duration(""), None);
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("2m15s"), Ok(Duration::from_secs(135)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("1d").is_err());
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("-1s").is_err());
    }

    #[test]
    fn go_durations_deserialize_from_yaml() {
        let parsed: Vec<GoDuration> = serde_yaml_ng::from_str("[2s, 0, 1m30s]").unwrap();
        assert_eq!(
            parsed,
            [
                Duration::from_secs(2),
                Duration::ZERO,
                Duration::from_secs(90)
            ]
            .map(GoDuration)
        );
        assert!(serde_yaml_ng::from_str::<GoDuration>("5").is_err());
    }
}
