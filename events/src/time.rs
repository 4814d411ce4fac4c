//! Time as careledger reads and prints it: instants are UTC microseconds; schools live at
//! +08:00, so every "date" (a window day, an as-of date) is a local date at +08:00.
//!
//! This module owns those conversions; it must never read the clock (only the log does).

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, TimeZone, Utc};

/// China Standard Time, +08:00, the offset of every school.
pub fn school_tz() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// The local date (+08:00) of an instant.
pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&school_tz()).date_naive()
}

/// The days from the Common Era of the local date of `t`: `local_date(t).num_days_from_ce()`,
/// by integer arithmetic (a county-wide read takes it of millions of instants).
pub fn local_day_number(t: DateTime<Utc>) -> i32 {
    // 1970-01-01 is day 719,163 of the Common Era; an instant chrono holds is within ±262,143
    // years, so its day fits in an i32.
    const EPOCH_DAY: i64 = 719_163;
    let local = t.timestamp() + 8 * 3600;
    (local.div_euclid(86_400) + EPOCH_DAY) as i32
}

/// 00:00 at +08:00 of `d`, as UTC.
pub fn start_of_day(d: NaiveDate) -> DateTime<Utc> {
    school_tz()
        .from_local_datetime(&d.and_time(NaiveTime::MIN))
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

/// The last microsecond of `d` at +08:00: "as of a date" means everything recorded on or
/// before that date.
pub fn end_of_day(d: NaiveDate) -> DateTime<Utc> {
    start_of_day(d) + Duration::days(1) - Duration::microseconds(1)
}

/// Parses an instant: RFC 3339 with an offset, or `YYYY-MM-DD` meaning 00:00 at +08:00.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    parse_date(s).map(start_of_day)
}

/// Parses an as-of bound: RFC 3339, or a date meaning the end of that day at +08:00.
pub fn parse_as_of(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    parse_date(s).map(end_of_day)
}

/// Parses a strict `YYYY-MM-DD` (rejects impossible dates such as 2025-02-30).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// RFC 3339 at +08:00 with microseconds when they are not zero.
pub fn format_local(t: DateTime<Utc>) -> String {
    t.with_timezone(&school_tz())
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    proptest::proptest! {
        #[test]
        fn the_local_day_number_is_the_local_dates(
            // 1900-01-01 to 2200-01-01, to the microsecond.
            us in -2_208_988_800_000_000i64..7_258_118_400_000_000i64,
        ) {
            let t = DateTime::from_timestamp_micros(us).expect("in range");
            proptest::prop_assert_eq!(local_day_number(t), local_date(t).num_days_from_ce());
        }
    }

    #[test]
    fn the_local_day_turns_at_local_midnight() {
        let before = parse_instant("2025-09-01T23:59:59.999999+08:00").unwrap();
        let after = parse_instant("2025-09-02T00:00:00+08:00").unwrap();
        assert_eq!(
            local_day_number(before),
            local_date(before).num_days_from_ce()
        );
        assert_eq!(local_day_number(after), local_day_number(before) + 1);
        let old = parse_instant("1969-12-31T23:00:00+08:00").unwrap();
        assert_eq!(local_day_number(old), local_date(old).num_days_from_ce());
    }

    #[test]
    fn a_date_is_midnight_in_china() {
        let t = parse_instant("2025-09-01").unwrap();
        assert_eq!(format_local(t), "2025-09-01T00:00:00+08:00");
        assert_eq!(t.to_rfc3339(), "2025-08-31T16:00:00+00:00");
        assert_eq!(local_date(t), NaiveDate::from_ymd_opt(2025, 9, 1).unwrap());
    }

    #[test]
    fn as_of_a_date_is_the_end_of_that_day() {
        let t = parse_as_of("2025-10-01").unwrap();
        assert_eq!(format_local(t), "2025-10-01T23:59:59.999999+08:00");
    }

    #[test]
    fn impossible_dates_are_rejected() {
        assert_eq!(parse_date("2025-02-30"), None);
        assert_eq!(parse_date("2025-2-3"), None);
        assert_eq!(parse_instant("yesterday"), None);
    }
}
