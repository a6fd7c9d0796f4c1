//! The envelope in a compact binary form (schema v20, issue 21), stored
//! next to its JSON (`messages.envelope_bin`) for the metadata FETCH of
//! a whole mailbox: reading it back is slicing, not JSON parsing (serde
//! was 16% of that FETCH's profile). No IMAP syntax here: the fields of
//! [`Envelope`], each string as its length and bytes.
//!
//! Layout: the format byte [`FORMAT`], then `date`, `subject`, the six
//! address lists (`from`, `sender`, `reply_to`, `to`, `cc`, `bcc`),
//! `in_reply_to`, `message_id`. A string is a varint `n` (0: none; else
//! `n - 1` UTF-8 bytes follow); a list is a varint count followed by each
//! address's `name`, `adl`, `local`, `host` as strings. Varints are
//! LEB128 (7 bits a byte, low first).
//!
//! Rows stored before v20 (or whose JSON the migration could not read)
//! hold NULL and are read from the JSON ([`crate::Reader::each_message`]).

use std::borrow::Cow;

use crate::error::{Result, StoreError};
use crate::meta::{Address, AddressRef, Envelope, EnvelopeRef};

/// The first byte of the current layout.
const FORMAT: u8 = 1;

/// Addresses a list may hold when read back (a guard against a damaged
/// count asking for a huge allocation; the rest of the bytes bound it
/// anyway).
const MAX_LIST: usize = 1 << 16;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn string(s: Option<&str>, out: &mut Vec<u8>) {
    match s {
        None => out.push(0),
        Some(s) => {
            varint(s.len() as u64 + 1, out);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

fn list(v: &[Address], out: &mut Vec<u8>) {
    varint(v.len() as u64, out);
    for a in v {
        string(a.name.as_deref(), out);
        string(a.adl.as_deref(), out);
        string(a.local.as_deref(), out);
        string(a.host.as_deref(), out);
    }
}

/// `e` in the stored binary form.
pub(crate) fn encode(e: &Envelope) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT);
    string(e.date.as_deref(), &mut out);
    string(e.subject.as_deref(), &mut out);
    for l in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
        list(l, &mut out);
    }
    string(e.in_reply_to.as_deref(), &mut out);
    string(e.message_id.as_deref(), &mut out);
    out
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("stored binary envelope: {what}"))
}

/// A reading position in a stored envelope.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .rest
                .split_first()
                .ok_or_else(|| corrupt("cut short"))?;
            self.rest = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }

    fn string(&mut self) -> Result<Option<Cow<'a, str>>> {
        let n = self.varint()?;
        if n == 0 {
            return Ok(None);
        }
        let len = usize::try_from(n - 1).map_err(|_| corrupt("length"))?;
        if len > self.rest.len() {
            return Err(corrupt("string past the end"));
        }
        let (s, rest) = self.rest.split_at(len);
        self.rest = rest;
        let s = std::str::from_utf8(s).map_err(|_| corrupt("not UTF-8"))?;
        Ok(Some(Cow::Borrowed(s)))
    }

    fn list(&mut self) -> Result<Vec<AddressRef<'a>>> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| corrupt("count"))?;
        // Each address takes at least 4 bytes.
        if n > MAX_LIST || n.saturating_mul(4) > self.rest.len() {
            return Err(corrupt("address count past the end"));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(AddressRef {
                name: self.string()?,
                adl: self.string()?,
                local: self.string()?,
                host: self.string()?,
            });
        }
        Ok(v)
    }
}

/// Read a stored binary envelope, borrowing its strings.
///
/// # Errors
/// [`StoreError::Corrupt`] if `bytes` is not one [`encode`] wrote.
pub(crate) fn decode(bytes: &[u8]) -> Result<EnvelopeRef<'_>> {
    let (&format, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    if format != FORMAT {
        return Err(corrupt("unknown format"));
    }
    let mut c = Cursor { rest };
    let e = EnvelopeRef {
        date: c.string()?,
        subject: c.string()?,
        from: c.list()?,
        sender: c.list()?,
        reply_to: c.list()?,
        to: c.list()?,
        cc: c.list()?,
        bcc: c.list()?,
        in_reply_to: c.string()?,
        message_id: c.string()?,
    };
    if !c.rest.is_empty() {
        return Err(corrupt("bytes after the end"));
    }
    Ok(e)
}

/// The binary form of a stored JSON envelope (the v20 migration fills
/// the column of rows stored before with it); `None` if the JSON does not
/// decode (that row keeps NULL and is read from its JSON).
pub(crate) fn from_json(json: &str) -> Option<Vec<u8>> {
    serde_json::from_str::<Envelope>(json)
        .ok()
        .map(|e| encode(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(
        name: Option<&str>,
        adl: Option<&str>,
        local: Option<&str>,
        host: Option<&str>,
    ) -> Address {
        Address {
            name: name.map(Into::into),
            adl: adl.map(Into::into),
            local: local.map(Into::into),
            host: host.map(Into::into),
        }
    }

    fn sample() -> Envelope {
        Envelope {
            date: Some("Mon, 7 Dec 2026 05:00:00 +0000".into()),
            subject: Some("=?UTF-8?Q?caf=C3=A9?= \"quoted\" \\ and ünïcode".into()),
            from: vec![addr(Some("A \"B\""), None, Some("a"), Some("example.org"))],
            sender: vec![],
            reply_to: vec![],
            to: vec![
                addr(None, None, Some("group"), None),
                addr(None, Some("@relay,@r2"), Some("x"), Some("y.test")),
                addr(None, None, None, None),
            ],
            cc: vec![addr(Some(""), None, Some(""), Some(""))],
            bcc: vec![],
            in_reply_to: None,
            message_id: Some("<id@example.org>".into()),
        }
    }

    fn owned(e: &EnvelopeRef<'_>) -> Envelope {
        let s = |v: &Option<Cow<'_, str>>| v.as_deref().map(String::from);
        let l = |v: &[AddressRef<'_>]| -> Vec<Address> {
            v.iter()
                .map(|a| Address {
                    name: s(&a.name),
                    adl: s(&a.adl),
                    local: s(&a.local),
                    host: s(&a.host),
                })
                .collect()
        };
        Envelope {
            date: s(&e.date),
            subject: s(&e.subject),
            from: l(&e.from),
            sender: l(&e.sender),
            reply_to: l(&e.reply_to),
            to: l(&e.to),
            cc: l(&e.cc),
            bcc: l(&e.bcc),
            in_reply_to: s(&e.in_reply_to),
            message_id: s(&e.message_id),
        }
    }

    #[test]
    fn envelopes_read_back_as_written() {
        let long = Envelope {
            subject: Some("x".repeat(70_000)),
            ..Envelope::default()
        };
        for e in [sample(), Envelope::default(), long] {
            let bytes = encode(&e);
            let back = decode(&bytes).expect("decodes");
            assert_eq!(owned(&back), e);
            let json = serde_json::to_string(&e).expect("json");
            assert_eq!(from_json(&json), Some(bytes));
        }
        // An empty string and a missing one stay apart.
        let bytes = encode(&sample());
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.cc[0].name.as_deref(), Some(""));
        assert_eq!(back.sender, Vec::new());
        assert_eq!(back.in_reply_to, None);
    }

    #[test]
    fn damaged_bytes_are_refused_not_panicked_on() {
        let bytes = encode(&sample());
        assert!(decode(&[]).is_err());
        assert!(decode(&[2]).is_err());
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        // A huge count or length, a varint that never ends, bad UTF-8.
        assert!(decode(&[1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(
            decode(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err()
        );
        assert!(decode(&[1, 3, 0xc3, 0x28]).is_err());
        assert_eq!(from_json("{not json"), None);
    }
}
