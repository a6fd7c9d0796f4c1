//! Talks to the server outside the cases: learns what it advertises (SMTP
//! EHLO keywords, RFC 5321 §4.1.1.1; IMAP CAPABILITY before and after LOGIN,
//! RFC 3501 §6.1.1) so cases can be SKIPped, and removes the mailboxes an
//! IMAP case created (any name containing the case's `${unique}`), so cases
//! stay independent even when one fails half-way.

use crate::conn::{Conn, ReadError};
use crate::exec::Target;
use crate::transcript::Proto;
use std::collections::BTreeSet;
use std::time::Instant;

/// Capability keywords, upper-cased (`SIZE`, `PIPELINING`, `LITERAL+`, ...).
pub type Caps = BTreeSet<String>;

fn read_until(
    c: &mut Conn,
    target: &Target,
    done: impl Fn(&[u8]) -> bool,
) -> Result<Vec<Vec<u8>>, String> {
    let deadline = Instant::now() + target.timeout;
    let mut lines = Vec::new();
    loop {
        let l = c
            .read_line(deadline)
            .map_err(|e: ReadError| e.to_string())?;
        let end = done(&l);
        lines.push(l);
        if end {
            return Ok(lines);
        }
    }
}

fn smtp_final(l: &[u8]) -> bool {
    l.len() < 4 || l[3] != b'-'
}

/// EHLO keywords of the SMTP server.
///
/// # Errors
/// Connection failures or a non-2xx greeting/EHLO.
pub fn smtp_caps(target: &Target, addr: &str) -> Result<Caps, String> {
    let mut c =
        Conn::connect(addr, Proto::Smtp, target.timeout).map_err(|e| format!("{addr}: {e}"))?;
    let greet = read_until(&mut c, target, smtp_final)?;
    if !greet.last().is_some_and(|l| l.starts_with(b"220")) {
        return Err("SMTP greeting is not 220".into());
    }
    c.send(b"EHLO protocol-tests.invalid\r\n")
        .map_err(|e| e.to_string())?;
    let lines = read_until(&mut c, target, smtp_final)?;
    let _ = c.send(b"QUIT\r\n");
    let mut caps = Caps::new();
    for (i, l) in lines.iter().enumerate() {
        if !l.starts_with(b"250") {
            return Err(format!("EHLO refused: {}", String::from_utf8_lossy(l)));
        }
        if i == 0 {
            continue; // the domain line
        }
        let text = String::from_utf8_lossy(l.get(4..).unwrap_or_default()).to_string();
        if let Some(kw) = text.split_whitespace().next() {
            caps.insert(kw.to_ascii_uppercase());
        }
    }
    Ok(caps)
}

/// Quotes a string for IMAP (RFC 3501 §4.3 quoted).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(crate) fn imap_cmd(
    c: &mut Conn,
    target: &Target,
    tag: &str,
    cmd: &str,
) -> Result<Vec<Vec<u8>>, String> {
    c.send(format!("{tag} {cmd}\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let prefix = format!("{tag} ");
    let lines = read_until(c, target, |l| l.starts_with(prefix.as_bytes()))?;
    let last = lines.last().map(|l| String::from_utf8_lossy(l).to_string());
    match last {
        Some(l) if l[prefix.len()..].to_ascii_uppercase().starts_with("OK") => Ok(lines),
        Some(l) => Err(format!(
            "`{tag} {}` failed: {l}",
            cmd.split(' ').next().unwrap_or("")
        )),
        None => Err("no response".into()),
    }
}

pub(crate) fn imap_login(target: &Target, addr: &str) -> Result<Conn, String> {
    let mut c =
        Conn::connect(addr, Proto::Imap, target.timeout).map_err(|e| format!("{addr}: {e}"))?;
    read_until(&mut c, target, |_| true)?;
    imap_cmd(
        &mut c,
        target,
        "p1",
        &format!("LOGIN {} {}", quote(&target.user), quote(&target.password)),
    )?;
    Ok(c)
}

/// CAPABILITY of the IMAP server, before and after LOGIN (union).
///
/// # Errors
/// Connection failures or a failed LOGIN (the suite cannot run then).
pub fn imap_caps(target: &Target, addr: &str) -> Result<Caps, String> {
    let mut caps = Caps::new();
    let mut add = |lines: &[Vec<u8>]| {
        for l in lines {
            let s = String::from_utf8_lossy(l).to_ascii_uppercase();
            if let Some(rest) = s.strip_prefix("* CAPABILITY ") {
                caps.extend(rest.split_whitespace().map(str::to_string));
            }
        }
    };
    let mut c =
        Conn::connect(addr, Proto::Imap, target.timeout).map_err(|e| format!("{addr}: {e}"))?;
    read_until(&mut c, target, |_| true)?;
    add(&imap_cmd(&mut c, target, "p0", "CAPABILITY")?);
    drop(c);
    let mut c = imap_login(target, addr)?;
    add(&imap_cmd(&mut c, target, "p2", "CAPABILITY")?);
    let _ = imap_cmd(&mut c, target, "p3", "LOGOUT");
    Ok(caps)
}

/// The mailbox name at the end of a LIST/LSUB response line.
pub fn list_name(line: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(line).to_string();
    let close = s.find(')')?;
    let rest = s[close + 1..].trim_start();
    // Delimiter: quoted char or NIL.
    let rest = if let Some(r) = rest.strip_prefix("NIL") {
        r
    } else {
        let r = rest.strip_prefix('"')?;
        let r = r.strip_prefix('\\').unwrap_or(r);
        r.get(2..)?
    };
    let name = rest.trim_start();
    if let Some(q) = name.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.chars();
        while let Some(ch) = chars.next() {
            match ch {
                '\\' => out.push(chars.next()?),
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        None
    } else if name.starts_with('{') {
        let nl = name.find('\n')?;
        Some(name[nl + 1..].to_string())
    } else {
        Some(name.to_string())
    }
}

/// Deletes every mailbox (and subscription) whose name contains `unique`.
///
/// # Errors
/// Connection or LOGIN failures; a mailbox that cannot be deleted.
pub fn imap_cleanup(target: &Target, addr: &str, unique: &str) -> Result<(), String> {
    let mut c = imap_login(target, addr)?;
    let pat = quote(&format!("*{unique}*"));
    let mut names = Vec::new();
    for (tag, cmd) in [("q1", "LIST"), ("q2", "LSUB")] {
        for l in imap_cmd(&mut c, target, tag, &format!("{cmd} \"\" {pat}"))? {
            if l.starts_with(format!("* {cmd} ").as_bytes()) {
                if let Some(n) = list_name(&l) {
                    names.push((cmd == "LSUB", n));
                }
            }
        }
    }
    // Children before parents.
    names.sort_by_key(|(_, n)| std::cmp::Reverse(n.len()));
    let mut errors = Vec::new();
    for (i, (sub, n)) in names.iter().enumerate() {
        let cmd = if *sub { "UNSUBSCRIBE" } else { "DELETE" };
        if let Err(e) = imap_cmd(
            &mut c,
            target,
            &format!("d{i}"),
            &format!("{cmd} {}", quote(n)),
        ) {
            if !*sub {
                errors.push(e);
            }
        }
    }
    let _ = imap_cmd(&mut c, target, "q9", "LOGOUT");
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_names() {
        assert_eq!(
            list_name(br#"* LIST (\HasNoChildren) "/" "pt1/a b""#).as_deref(),
            Some("pt1/a b")
        );
        assert_eq!(
            list_name(br#"* LIST () "." INBOX.pt1"#).as_deref(),
            Some("INBOX.pt1")
        );
        assert_eq!(
            list_name(br#"* LIST (\Noselect) NIL "x\"y""#).as_deref(),
            Some("x\"y")
        );
        assert_eq!(
            list_name(b"* LIST () \"/\" {3}\r\nabc").as_deref(),
            Some("abc")
        );
        assert_eq!(list_name(br#"* LIST () "\\" pt"#).as_deref(), Some("pt"));
    }
}
