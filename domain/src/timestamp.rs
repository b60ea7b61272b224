//! Points in time as the service shows them: UTC, millisecond precision.
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use std::fmt;

/// A UTC instant truncated to milliseconds, so that the value stored, returned over HTTP and
/// published in an event is the same instant to the same precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    #[must_use]
    pub fn from_datetime(instant: DateTime<Utc>) -> Self {
        Self(instant.trunc_subsecs(3))
    }

    #[must_use]
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }
}

/// ISO-8601 with exactly three fractional digits and a `Z`: `2025-10-19T16:37:15.123Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_exactly_milliseconds_in_utc() {
        let instant = DateTime::parse_from_rfc3339("2025-10-19T18:37:15.123456+02:00").unwrap();
        let timestamp = Timestamp::from_datetime(instant.with_timezone(&Utc));
        assert_eq!(timestamp.to_string(), "2025-10-19T16:37:15.123Z");

        let whole_second = DateTime::parse_from_rfc3339("2025-10-19T16:37:15Z").unwrap();
        let timestamp = Timestamp::from_datetime(whole_second.with_timezone(&Utc));
        assert_eq!(timestamp.to_string(), "2025-10-19T16:37:15.000Z");
    }
}
