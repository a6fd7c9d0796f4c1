//! Reading the sender's INBOX over IMAP (RFC 3501), where the MTA under
//! test delivers its reports: the UIDNEXT before the section starts, and
//! later every message with a UID from there on (read-only, EXAMINE and
//! BODY.PEEK, so nothing in the mailbox changes).

use crate::exec::Target;
use crate::probe::{imap_cmd, imap_login};

/// INBOX's UIDNEXT (RFC 3501 §6.3.10).
///
/// # Errors
/// Connection or login failures, or no UIDNEXT in the answer.
pub fn uidnext(target: &Target, addr: &str) -> Result<u32, String> {
    let mut c = imap_login(target, addr)?;
    let lines = imap_cmd(&mut c, target, "o1", "STATUS INBOX (UIDNEXT)")?;
    let _ = imap_cmd(&mut c, target, "o2", "LOGOUT");
    lines
        .iter()
        .find_map(|l| number_after(l, b"UIDNEXT "))
        .ok_or_else(|| "no UIDNEXT in the STATUS answer".to_string())
}

/// Every INBOX message with a UID of at least `first`: (UID, message).
///
/// # Errors
/// Connection, login or command failures.
pub fn since(target: &Target, addr: &str, first: u32) -> Result<Vec<(u32, Vec<u8>)>, String> {
    let mut c = imap_login(target, addr)?;
    imap_cmd(&mut c, target, "o1", "EXAMINE INBOX")?;
    let lines = imap_cmd(
        &mut c,
        target,
        "o2",
        &format!("UID FETCH {first}:* (UID BODY.PEEK[])"),
    )?;
    let _ = imap_cmd(&mut c, target, "o3", "LOGOUT");
    let mut out = Vec::new();
    for l in &lines {
        if let Some((uid, msg)) = fetched(l) {
            // `N:*` names the last message even when N is past it.
            if uid >= first {
                out.push((uid, msg));
            }
        }
    }
    Ok(out)
}

fn number_after(line: &[u8], key: &[u8]) -> Option<u32> {
    let at = line
        .windows(key.len())
        .position(|w| w.eq_ignore_ascii_case(key))?;
    let digits: Vec<u8> = line[at + key.len()..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// The UID and the literal of one `* n FETCH (... BODY[] {len}\r\n...)`
/// response (joined with its literal, as `Conn` reads it).
fn fetched(line: &[u8]) -> Option<(u32, Vec<u8>)> {
    if !line.starts_with(b"* ") {
        return None;
    }
    let close = line.windows(3).position(|w| w == b"}\r\n")?;
    let open = line[..close].iter().rposition(|&b| b == b'{')?;
    let len: usize = std::str::from_utf8(&line[open + 1..close])
        .ok()?
        .parse()
        .ok()?;
    let start = close + 3;
    let end = start.checked_add(len)?;
    let body = line.get(start..end)?.to_vec();
    let uid =
        number_after(&line[..open], b"UID ").or_else(|| number_after(&line[end..], b"UID "))?;
    Some((uid, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_responses() {
        let l = b"* 3 FETCH (UID 17 BODY[] {5}\r\nab}\r\n)";
        assert_eq!(fetched(l), Some((17, b"ab}\r\n".to_vec())));
        let l = b"* 3 FETCH (BODY[] {2}\r\nab UID 9)";
        assert_eq!(fetched(l), Some((9, b"ab".to_vec())));
        assert_eq!(fetched(b"* 3 EXISTS"), None);
        assert_eq!(
            number_after(b"* STATUS INBOX (UIDNEXT 42)", b"UIDNEXT "),
            Some(42)
        );
    }
}
