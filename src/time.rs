//! Time: the one module that reads the wall clock, plus RFC 3339 rendering for error messages
//! and audit, and RFC 3339 reading for the times the API is sent. Everything else takes `now` (Unix seconds) as a parameter so that it can be tested
//! at any instant.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Renders Unix seconds as an RFC 3339 UTC timestamp (`2026-11-22T10:00:00Z`). Values outside
/// years 0..=9999 are rendered as the plain number, so that hostile claims cannot produce odd text.
pub fn rfc3339(unix: i64) -> String {
    let Some((year, month, day)) = civil_date(unix) else {
        return format!("@{unix}");
    };
    let secs = unix.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Reads an RFC 3339 timestamp (`2027-01-15T08:00:00Z`, an offset, fractions of a second) as
/// Unix seconds, the fraction dropped; `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    parse_rfc3339_nanos(text).map(|(seconds, _)| seconds)
}

/// Reads an RFC 3339 time (`2030-01-01T00:00:00Z`, `2030-01-01T03:00:00.5+03:00`) as Unix
/// seconds and nanoseconds; `None` for anything else.
pub fn parse_rfc3339_nanos(text: &str) -> Option<(i64, i32)> {
    let text = text.trim();
    // A date alone is not a timestamp, though the parser would take it as midnight.
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    // RFC 3339 §5.6: the time carries its offset, `Z` or `±hh:mm`.
    let (_, time) = text.split_once(['T', 't'])?;
    if !(time.ends_with(['Z', 'z']) || time.contains(['+', '-'])) {
        return None;
    }
    let parsed: prost_types::Timestamp = text.parse().ok()?;
    Some((parsed.seconds, parsed.nanos))
}

/// The UTC calendar date (year, month 1..=12, day 1..=31) of Unix seconds; `None` outside years
/// 0..=9999.
pub fn civil_date(unix: i64) -> Option<(i32, u8, u8)> {
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(MIN..=MAX).contains(&unix) {
        return None;
    }
    let days = unix.div_euclid(86_400);
    // Civil-from-days (H. Hinnant), valid for the whole proleptic Gregorian range above.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some((
        i32::try_from(year).ok()?,
        u8::try_from(month).ok()?,
        u8::try_from(day).ok()?,
    ))
}

/// Unix seconds of a UTC calendar date and time of day; `None` when a field is out of its range
/// (month 1..=12, day 1..=the month's last, hour 0..=23, minute and second 0..=59) or the year
/// outside 0..=9999.
pub fn unix_of(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<i64> {
    if !(0..=9999).contains(&year) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let last = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > last {
        return None;
    }
    // Days-from-civil (H. Hinnant), the inverse of `civil_date`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps_are_read_back_or_refused() {
        assert_eq!(parse_rfc3339("2026-11-22T10:00:00Z"), Some(1_795_341_600));
        assert_eq!(parse_rfc3339(&rfc3339(1_795_341_600)), Some(1_795_341_600));
        assert_eq!(
            parse_rfc3339("2026-11-22T13:00:00.5+03:00"),
            Some(1_795_341_600)
        );
        for bad in [
            "",
            "tomorrow",
            "2026-11-22",
            "1795341600",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn renders_known_instants() {
        let cases = [
            ("epoch", 0, "1970-01-01T00:00:00Z"),
            ("leap day", 951_782_400, "2000-02-29T00:00:00Z"),
            ("recent", 1_795_000_000, "2026-11-18T11:06:40Z"),
            ("before epoch", -1, "1969-12-31T23:59:59Z"),
            ("far future", i64::MAX, "@9223372036854775807"),
        ];
        for (name, input, expected) in cases {
            assert_eq!(rfc3339(input), expected, "{name}");
        }
    }

    #[test]
    fn calendar_times_and_rfc3339_parse_back() {
        for unix in [0, 951_782_400, 1_795_000_000, -1, 1_440_938_160] {
            assert_eq!(parse_rfc3339(&rfc3339(unix)), Some(unix), "{unix}");
        }
        assert_eq!(unix_of(2015, 8, 30, 12, 36, 0), Some(1_440_938_160));
        assert_eq!(
            parse_rfc3339("2015-08-30T15:36:00.123+03:00"),
            Some(1_440_938_160)
        );
        assert_eq!(
            parse_rfc3339("2015-08-30T11:36:00-01:00"),
            Some(1_440_938_160)
        );
        for bad in [
            "",
            "2015-08-30",
            "2015-08-30T12:36:00",
            "2015-02-29T00:00:00Z",
            "2015-13-01T00:00:00Z",
            "2015-08-30T24:00:00Z",
            "2015-08-30T12:36:00.Z",
            "2015-08-30T12:36:00+3:00",
            "+015-08-30T12:36:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert_eq!(unix_of(2016, 2, 29, 0, 0, 0), Some(1_456_704_000));
        assert_eq!(unix_of(2016, 2, 30, 0, 0, 0), None);
    }

    #[test]
    fn reads_rfc3339_times() {
        let cases = [
            ("UTC", "2027-01-15T08:00:00Z", Some((1_800_000_000, 0))),
            (
                "fraction",
                "2027-01-15T08:00:00.5Z",
                Some((1_800_000_000, 500_000_000)),
            ),
            (
                "offset",
                "2027-01-15T11:00:00+03:00",
                Some((1_800_000_000, 0)),
            ),
            ("no zone", "2027-01-15T08:00:00", None),
            ("a date", "2027-01-15", None),
            ("a number", "1800000000", None),
            ("empty", "", None),
        ];
        for (name, text, expected) in cases {
            assert_eq!(parse_rfc3339_nanos(text), expected, "{name}");
        }
        assert_eq!(
            parse_rfc3339_nanos(&rfc3339(1_795_000_000)),
            Some((1_795_000_000, 0))
        );
    }

    #[test]
    fn dates_of_known_instants() {
        assert_eq!(civil_date(0), Some((1970, 1, 1)));
        assert_eq!(civil_date(951_782_400 + 86_399), Some((2000, 2, 29)));
        assert_eq!(civil_date(-1), Some((1969, 12, 31)));
        assert_eq!(civil_date(i64::MAX), None);
    }
}
