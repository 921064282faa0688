//! Instants. Stored and sent as UTC; the city's time zone only matters when
//! patrol hours are evaluated (assessment).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// Earliest instant the product accepts (digital city management predates
/// nothing before 2000; anything earlier is a dead clock battery).
const EARLIEST_MS: i64 = 946_684_800_000; // 2000-01-01T00:00:00Z
/// Latest instant accepted at all (a wild value, not merely a skewed clock).
const LATEST_MS: i64 = 4_102_444_800_000; // 2100-01-01T00:00:00Z

/// A UTC instant in milliseconds since the Unix epoch; RFC 3339 on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_millis(field: &str, ms: i64) -> Result<Timestamp> {
        if !(EARLIEST_MS..LATEST_MS).contains(&ms) {
            return Err(invalid(
                field,
                format!("{ms} ms since the epoch is outside 2000-01-01..2100-01-01"),
            ));
        }
        Ok(Timestamp(ms))
    }

    /// Parses RFC 3339 (`2026-11-26T08:15:00+08:00` or `...Z`). A time without
    /// an offset is refused: the device cannot guess which zone was meant.
    pub fn parse(field: &str, text: &str) -> Result<Timestamp> {
        let parsed = DateTime::parse_from_rfc3339(text.trim()).map_err(|e| {
            invalid(
                field,
                format!("`{text}` is not an RFC 3339 time with offset (e.g. 2026-11-26T08:15:00+08:00): {e}"),
            )
        })?;
        Timestamp::from_millis(field, parsed.timestamp_millis())
    }

    pub fn now() -> Timestamp {
        Timestamp(Utc::now().timestamp_millis())
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl TryFrom<String> for Timestamp {
    type Error = crate::Error;
    fn try_from(s: String) -> Result<Timestamp> {
        Timestamp::parse("time", &s)
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.to_rfc3339()
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_to_utc() {
        let a = Timestamp::parse("at", "2026-11-26T08:15:00+08:00").unwrap();
        let b = Timestamp::parse("at", "2026-11-26T00:15:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(b.to_rfc3339(), "2026-11-26T00:15:00.000Z");
    }

    #[test]
    fn refuses_missing_offset_and_wild_years() {
        let e = Timestamp::parse("at", "2026-11-26T08:15:00")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("at:") && e.contains("RFC 3339"), "{e}");
        assert!(Timestamp::parse("at", "1970-01-01T00:00:00Z").is_err());
    }
}
