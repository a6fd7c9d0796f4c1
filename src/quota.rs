//! `minimail user quota USER [SIZE] [--messages N]`: show or set a user's
//! quota (RFC 9208; enforced by the store, see `mailstore`'s quota.rs).

use anyhow::{bail, Context, Result};
use mailstore::{Quota, Store};

/// Show (no `size`, no `messages`) or set the quota of `address`; the
/// text to print.
pub fn run(
    store: &Store,
    address: &str,
    size: Option<&str>,
    messages: Option<&str>,
) -> Result<String> {
    let a = address.to_owned();
    let Some(user) = store.read_sync(move |r| r.user(&a))? else {
        bail!("no such user: {address}");
    };
    let storage = size.map(parse_size).transpose()?;
    let count = messages.map(parse_count).transpose()?;
    if storage.is_some() || count.is_some() {
        let id = user.id;
        store
            .write_sync(move |tx| {
                let now = tx.quota(id)?;
                tx.set_quota(
                    id,
                    storage.unwrap_or(now.storage_limit),
                    count.unwrap_or(now.message_limit),
                )
            })
            .with_context(|| format!("cannot set the quota of {address}"))?;
    }
    let id = user.id;
    let q = store.read_sync(move |r| r.quota(id))?;
    Ok(describe(&user.address, &q))
}

/// `1G`, `500M`, `64K`, `1048576`, `none`: octets (`None` = no limit).
pub fn parse_size(text: &str) -> Result<Option<u64>> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => bail!("'{text}' is not a size (a number with K, M, G or T, or none)"),
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("'{text}' is not a size (a number with K, M, G or T, or none)"))?;
    match n.checked_mul(1u64 << shift) {
        Some(v) if v <= i64::MAX as u64 => Ok(Some(v)),
        _ => bail!("'{text}' is too large"),
    }
}

/// A message count or `none`.
fn parse_count(text: &str) -> Result<Option<u64>> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    match t.parse::<u64>() {
        Ok(n) if n <= i64::MAX as u64 => Ok(Some(n)),
        _ => bail!("'{text}' is not a message count (a number, or none)"),
    }
}

/// Octets in the largest unit that keeps them readable.
fn human(octets: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = octets as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Two lines: storage and messages, used against the limits.
fn describe(address: &str, q: &Quota) -> String {
    let pct = |used: u64, limit: u64| {
        if limit == 0 {
            100.0
        } else {
            used as f64 * 100.0 / limit as f64
        }
    };
    let storage = match q.storage_limit {
        Some(l) => format!(
            "{} of {} ({:.0}%)",
            human(q.storage_used),
            human(l),
            pct(q.storage_used, l)
        ),
        None => format!("{} (no limit)", human(q.storage_used)),
    };
    let messages = match q.message_limit {
        Some(l) => format!(
            "{} of {l} ({:.0}%)",
            q.messages_used,
            pct(q.messages_used, l)
        ),
        None => format!("{} (no limit)", q.messages_used),
    };
    format!("{address}: storage {storage}, messages {messages}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), Some(1024));
        assert_eq!(parse_size("64K").unwrap(), Some(64 << 10));
        assert_eq!(parse_size("500m").unwrap(), Some(500 << 20));
        assert_eq!(parse_size("1G").unwrap(), Some(1 << 30));
        assert_eq!(parse_size("2GiB").unwrap(), Some(2 << 30));
        assert_eq!(parse_size("1T").unwrap(), Some(1 << 40));
        assert_eq!(parse_size("none").unwrap(), None);
        assert!(parse_size("1X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(parse_count("10").unwrap(), Some(10));
        assert!(parse_count("ten").is_err());
    }

    #[test]
    fn describes_usage() {
        let q = Quota {
            storage_limit: Some(1 << 30),
            message_limit: None,
            storage_used: 3 << 20,
            messages_used: 7,
        };
        assert_eq!(
            describe("bob@x", &q),
            "bob@x: storage 3 MiB of 1 GiB (0%), messages 7 (no limit)"
        );
    }
}
