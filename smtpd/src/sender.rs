//! Who an authenticated client may send as (RFC 6409 §6.1 sender
//! validation, RFC 4954 §5; the header From of RFC 5322 §3.6.2).
//!
//! A user owns their own address and every `+tag` variant of it
//! (`bob+lists@example.org` belongs to `bob@example.org`), compared without
//! regard to case, as the store looks users up. The envelope sender (MAIL
//! FROM) of an authenticated session must be such an address or the null
//! path `<>`; the message's From header must name only such addresses
//! (exactly one From field, as RFC 5322 §3.6 requires; no groups).
//! Unauthenticated sessions are not checked here: they can only deliver to
//! local users anyway.
//!
//! No protocol replies here; the session turns a refusal into 550 5.7.1.

use mailparse::{MailAddr, MailHeaderMap};

/// Longest From field value read (bytes).
pub const MAX_FROM: usize = 8 * 1024;

/// True if `user` (a stored user address) owns `local@domain`.
pub fn owns(user: &str, local: &str, domain: &str) -> bool {
    let Some((user_local, user_domain)) = user.rsplit_once('@') else {
        return false;
    };
    if !domain.eq_ignore_ascii_case(user_domain) || user_local.is_empty() {
        return false;
    }
    if local.eq_ignore_ascii_case(user_local) {
        return true;
    }
    // `user+tag`: the base must be the user's whole local part.
    local.len() > user_local.len()
        && local.is_char_boundary(user_local.len())
        && local[..user_local.len()].eq_ignore_ascii_case(user_local)
        && local.as_bytes()[user_local.len()] == b'+'
}

/// True if `user` owns `addr` (`local@domain`).
pub fn owns_address(user: &str, addr: &str) -> bool {
    match addr.trim().rsplit_once('@') {
        Some((local, domain)) => owns(user, local, domain),
        None => false,
    }
}

/// Check that the From header of `message` names only addresses `user`
/// owns. `Err` says what is wrong, for the 550 reply.
///
/// # Errors
/// No From field or more than one, an unparseable one, a group, or an
/// address the user does not own.
pub fn check_header_from(message: &[u8], user: &str) -> Result<(), String> {
    let (headers, _) =
        mailparse::parse_headers(message).map_err(|_| "unreadable header".to_owned())?;
    let from = match headers.get_all_headers("From").as_slice() {
        // mailparse's encoded-word decoding is quadratic in the value's
        // length: a From field no real mailer writes is refused unread.
        [one] if one.get_value_raw().len() > MAX_FROM => {
            return Err("From header too long".into());
        }
        [one] => {
            mailparse::addrparse_header(one).map_err(|_| "unreadable From header".to_owned())?
        }
        [] => return Err("no From header".into()),
        _ => return Err("more than one From header".into()),
    };
    if from.is_empty() {
        return Err("empty From header".into());
    }
    for a in from.iter() {
        match a {
            MailAddr::Single(s) if owns_address(user, &s.addr) => {}
            MailAddr::Single(s) => return Err(format!("<{}>", s.addr)),
            MailAddr::Group(g) => return Err(format!("group {:?}", g.group_name)),
        }
    }
    Ok(())
}

/// The fields a submission server adds to a message from an authenticated
/// user that lacks them (RFC 6409 §8.2 Date, §8.3 Message-ID), so clients
/// show a date instead of "???" and threads hold together: `date` and
/// `message_id` (with brackets) are used only for missing fields. Returns
/// where to insert them (the end of the header block, before the empty
/// line) and the bytes; empty when both are there or the header cannot be
/// read.
pub fn missing_submission_fields(message: &[u8], date: &str, message_id: &str) -> (usize, Vec<u8>) {
    let Ok((headers, body_at)) = mailparse::parse_headers(message) else {
        return (0, Vec::new());
    };
    let head = &message[..body_at.min(message.len())];
    let (at, mut add) = if head.ends_with(b"\r\n\r\n") {
        (head.len() - 2, String::new())
    } else if head.ends_with(b"\n\n") {
        (head.len() - 1, String::new())
    } else if head.ends_with(b"\n") {
        (head.len(), String::new())
    } else {
        // A header without a final line break: end its last line first.
        (head.len(), "\r\n".to_owned())
    };
    let before = add.len();
    if headers.get_first_header("Date").is_none() {
        add.push_str(&format!("Date: {date}\r\n"));
    }
    if headers.get_first_header("Message-ID").is_none() {
        add.push_str(&format!("Message-ID: {message_id}\r\n"));
    }
    if add.len() == before {
        return (at, Vec::new());
    }
    (at, add.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_adds_only_the_missing_date_and_message_id() {
        let d = "Thu, 01 Jan 2026 00:00:00 +0000";
        let id = "<x@h>";
        let add = |m: &[u8]| {
            let (at, add) = missing_submission_fields(m, d, id);
            let mut out = m.to_vec();
            out.splice(at..at, add);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            add(b"From: a@b\r\nSubject: s\r\n\r\nbody\r\n"),
            format!("From: a@b\r\nSubject: s\r\nDate: {d}\r\nMessage-ID: {id}\r\n\r\nbody\r\n")
        );
        assert_eq!(
            add(b"From: a@b\r\ndate: x\r\n\r\nb\r\n"),
            format!("From: a@b\r\ndate: x\r\nMessage-ID: {id}\r\n\r\nb\r\n")
        );
        let whole = "From: a@b\r\nMessage-Id: <m@x>\r\nDate: x\r\n\r\n";
        assert_eq!(add(whole.as_bytes()), whole);
        // Header only, without a final line break.
        assert_eq!(
            add(b"From: a@b\r\nDate: x\r\nSubject: s"),
            format!("From: a@b\r\nDate: x\r\nSubject: s\r\nMessage-ID: {id}\r\n")
        );
    }

    #[test]
    fn own_address_and_tags_are_owned_in_any_case() {
        let u = "bob@example.org";
        for (addr, want) in [
            ("bob@example.org", true),
            ("BOB@Example.ORG", true),
            ("bob+lists@example.org", true),
            ("Bob+x+y@EXAMPLE.org", true),
            ("bob+@example.org", true),
            ("bobby@example.org", false),
            ("bo@example.org", false),
            ("alice@example.org", false),
            ("bob@example.net", false),
            ("bob@sub.example.org", false),
            ("+bob@example.org", false),
            ("bob", false),
            ("", false),
        ] {
            assert_eq!(owns_address(u, addr), want, "{addr}");
        }
        assert!(!owns_address("not-an-address", "bob@example.org"));
        assert!(!owns("bob@x", "bÿ", "x"), "multi-byte local part, no panic");
    }

    #[test]
    fn a_huge_from_is_refused_unread() {
        let from = "=?utf-8?q?a?= ".repeat(MAX_FROM);
        let msg = format!("From: {from}<bob@example.org>\r\n\r\nx");
        assert_eq!(
            check_header_from(msg.as_bytes(), "bob@example.org"),
            Err("From header too long".to_owned())
        );
    }

    #[test]
    fn header_from_must_name_only_the_users_addresses() {
        let u = "bob@example.org";
        let ok = |m: &str| check_header_from(m.as_bytes(), u);
        assert_eq!(
            ok("From: Bob <bob@example.org>\r\nSubject: x\r\n\r\nhi\r\n"),
            Ok(())
        );
        assert_eq!(
            ok("Subject: x\r\nfrom: bob+a@EXAMPLE.org\r\n\r\nhi\r\n"),
            Ok(())
        );
        assert_eq!(
            ok("From: bob@example.org, bob+b@example.org\r\n\r\n"),
            Ok(())
        );
        assert!(ok("From: Alice <alice@example.org>\r\n\r\n")
            .unwrap_err()
            .contains("alice@example.org"));
        assert!(ok("From: bob@example.org, eve@example.org\r\n\r\n").is_err());
        assert_eq!(
            ok("Subject: none\r\n\r\nFrom: bob@example.org\r\n"),
            Err("no From header".into())
        );
        assert!(ok("From: bob@example.org\r\nFrom: bob@example.org\r\n\r\n").is_err());
        assert!(ok("From: friends: bob@example.org;\r\n\r\n").is_err());
        assert!(ok("From: \r\n\r\n").is_err());
        assert!(ok("").is_err());
    }
}
