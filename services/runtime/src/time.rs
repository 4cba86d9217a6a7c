//! Time as the contracts carry it (Unix milliseconds) and as the tables store it (diesel's
//! `Timestamp`, naive UTC): the one place the two are converted.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Milliseconds since the Unix epoch, the time unit of the contracts.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-12-07T05:14:51.123Z`), the form
/// Google's and the design's JSON give times in.
pub fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The stored form of now.
pub fn now_stored() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// A stored time in Unix milliseconds.
pub fn to_ms(time: NaiveDateTime) -> i64 {
    time.and_utc().timestamp_millis()
}

/// Unix milliseconds as a stored time; times beyond chrono's range (about ±262,000 years) are
/// clamped to it.
pub fn from_ms(ms: i64) -> NaiveDateTime {
    match DateTime::from_timestamp_millis(ms) {
        Some(time) => time.naive_utc(),
        None if ms < 0 => NaiveDateTime::MIN,
        None => NaiveDateTime::MAX,
    }
}

/// An optional stored time, where the contracts say 0 for "none".
pub fn optional_from_ms(ms: i64) -> Option<NaiveDateTime> {
    (ms > 0).then(|| from_ms(ms))
}

/// The contracts' form of an optional stored time: 0 for none.
pub fn optional_to_ms(time: Option<NaiveDateTime>) -> i64 {
    time.map_or(0, to_ms)
}

/// The start (Unix ms) of the UTC calendar month `ms` is in, or of the one after it (`later`
/// months on: 0 for this one, 1 for the next).
pub fn month_start_ms(ms: i64, later: u32) -> i64 {
    use chrono::{Datelike, Months, TimeZone};
    let time = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    Utc.with_ymd_and_hms(time.year(), time.month(), 1, 0, 0, 0)
        .single()
        .and_then(|start| start.checked_add_months(Months::new(later)))
        .map_or(0, |start| start.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_on_their_first_day_in_utc() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|time| time.timestamp_millis())
                .unwrap_or_default()
        };
        assert_eq!(
            month_start_ms(at("2026-12-07T10:00:00Z"), 0),
            at("2026-12-01T00:00:00Z")
        );
        assert_eq!(
            month_start_ms(at("2026-12-31T23:59:59Z"), 1),
            at("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn milliseconds_round_trip() {
        for ms in [1, 1_764_590_400_123, 4_102_444_800_000] {
            assert_eq!(to_ms(from_ms(ms)), ms);
        }
        assert_eq!(optional_from_ms(0), None);
        assert_eq!(optional_to_ms(None), 0);
        assert_eq!(from_ms(i64::MAX), NaiveDateTime::MAX);
    }
}
