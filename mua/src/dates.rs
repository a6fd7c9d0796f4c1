//! Small calendar helpers: epoch seconds to civil dates for listings, and
//! `YYYY-MM-DD` to the IMAP `date` form `d-Mon-yyyy` (RFC 3501 §9).
//!
//! All listing dates are shown in UTC so output is stable for scripts.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 to (year, month 1-12, day 1-31); Howard Hinnant's
/// civil-from-days algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats epoch seconds as `YYYY-MM-DD HH:MM` (UTC).
pub fn format_epoch(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Parses an RFC 5322 date header and formats it for listings; falls back
/// to the raw text when it cannot be parsed.
pub fn display_date(raw: &str) -> String {
    match epoch_of(raw) {
        Some(secs) => format_epoch(secs),
        None => raw.chars().take(16).collect(),
    }
}

/// Epoch seconds of an RFC 5322 date, if parsable.
pub fn epoch_of(raw: &str) -> Option<i64> {
    // mailparse yields 0 for text without a date in it; only believe 0 if
    // the header really names 1970.
    mailparse::dateparse(raw)
        .ok()
        .filter(|&s| s != 0 || raw.contains("1970"))
}

/// Epoch seconds of an IMAP INTERNALDATE (`17-Jul-1996 02:44:25 -0700`).
pub fn epoch_of_internal(raw: &str) -> Option<i64> {
    let (date, rest) = raw.trim().split_once(' ')?;
    epoch_of(&format!("{} {rest}", date.replace('-', " ")))
}

/// Converts `YYYY-MM-DD` to IMAP's `d-Mon-yyyy`.
pub fn imap_date(iso: &str) -> Option<String> {
    let mut it = iso.splitn(3, '-');
    let y: u32 = it.next()?.parse().ok()?;
    let m: usize = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1000..=9999).contains(&y) {
        return None;
    }
    Some(format!("{d}-{}-{y}", MONTHS[m - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_formats_in_utc() {
        assert_eq!(format_epoch(0), "1970-01-01 00:00");
        assert_eq!(format_epoch(951_782_400), "2000-02-29 00:00");
        assert_eq!(format_epoch(1_700_000_000), "2023-11-14 22:13");
    }

    #[test]
    fn header_dates_are_normalised() {
        assert_eq!(
            display_date("Tue, 14 Nov 2023 23:13:20 +0100"),
            "2023-11-14 22:13"
        );
        assert_eq!(display_date("garbage"), "garbage");
    }

    #[test]
    fn internaldate_parses() {
        assert_eq!(
            epoch_of_internal("17-Jul-1996 02:44:25 -0700"),
            Some(837_596_665)
        );
        assert_eq!(
            epoch_of_internal(" 1-Jan-2000 00:00:00 +0000"),
            Some(946_684_800)
        );
        assert_eq!(epoch_of_internal("nonsense"), None);
    }

    #[test]
    fn iso_to_imap_dates() {
        assert_eq!(imap_date("2024-03-05").as_deref(), Some("5-Mar-2024"));
        assert_eq!(imap_date("2024-13-05"), None);
        assert_eq!(imap_date("yesterday"), None);
    }
}
