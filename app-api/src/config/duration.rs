//! Durations in configuration as a number and a unit — `"250ms"`, `"30s"`,
//! `"5m"`, `"1h"` — or a bare number of seconds. Use on a field with
//! `#[serde(with = "strata_app_api::config::duration")]`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

/// Writes `duration` in the largest unit that shows it exactly.
///
/// # Errors
/// Only the serializer's own.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

/// Reads `"250ms"`, `"30s"`, `"5m"`, `"1h"` or a whole number of seconds.
///
/// # Errors
/// When the text has no known unit or the number does not parse.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Seconds(u64),
        Text(String),
    }
    match Given::deserialize(deserializer)? {
        Given::Seconds(seconds) => Ok(Duration::from_secs(seconds)),
        Given::Text(text) => parse(&text).ok_or_else(|| {
            de::Error::custom("expected a duration such as \"250ms\", \"30s\", \"5m\" or \"1h\"")
        }),
    }
}

/// `"250ms"`, `"30s"`, `"5m"` or `"1h"` as a [`Duration`].
#[must_use]
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(millis).map(Duration::from_millis)
}

/// `duration` in the largest unit that shows it exactly.
#[must_use]
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        0 => "0s".to_owned(),
        _ if millis.is_multiple_of(3_600_000) => format!("{}h", millis / 3_600_000),
        _ if millis.is_multiple_of(60_000) => format!("{}m", millis / 60_000),
        _ if millis.is_multiple_of(1_000) => format!("{}s", millis / 1_000),
        _ => format!("{millis}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print_in_their_units() {
        for (text, duration) in [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3_600)),
        ] {
            assert_eq!(parse(text), Some(duration), "{text}");
            assert_eq!(format(duration), text);
        }
        assert_eq!(parse("90 s"), Some(Duration::from_secs(90)));
        for bad in ["", "s", "10", "ten s", "5 fortnights", "-1s"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
