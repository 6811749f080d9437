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

/// Reads an RFC 3339 time (`2030-01-01T00:00:00Z`, `2030-01-01T03:00:00.5+03:00`) as Unix
/// seconds and nanoseconds; `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<(i64, i32)> {
    let text = text.trim();
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

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(parse_rfc3339(text), expected, "{name}");
        }
        assert_eq!(
            parse_rfc3339(&rfc3339(1_795_000_000)),
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
