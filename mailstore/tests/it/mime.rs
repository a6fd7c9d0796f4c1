//! Parsed metadata: envelope (groups), MIME offsets byte-exact for nested
//! multipart and message/rfc822, raw and raw_range.

use mailstore::{Address, MimePart};

use crate::util::{deliver, store, user};

pub const NESTED: &str = "From: Alice <alice@example.org>\r\n\
To: \"Team\": b@x.org, Carol <c@y.org>;, d@z.org\r\n\
Subject: =?utf-8?q?nested_caf=C3=A9?=\r\n\
Date: Mon, 23 Nov 2026 23:30:00 -0500\r\n\
Message-ID: <nested@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=C3=A9 au lait, qpsecretword\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PHA+YmFzZTY0aGlkZGVudGV4dDwvcD4=\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
Content-Disposition: attachment; filename=\"fwd.eml\"\r\n\
\r\n\
From: c@y.org\r\n\
Subject: inner msg\r\n\
Content-Type: text/plain\r\n\
\r\n\
embedded body\r\n\
--outer--\r\n";

fn slice(raw: &[u8], r: (u64, u64)) -> &str {
    std::str::from_utf8(&raw[r.0 as usize..r.1 as usize]).unwrap()
}

fn meta(raw: &str) -> (mailstore::MessageMeta, Vec<u8>) {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let d = deliver(&s, raw.as_bytes().to_vec(), &[a]);
    let (mb, uid) = d.entries[0];
    let m = s
        .read_sync(move |r| r.messages(mb, &[uid]))
        .unwrap()
        .remove(0);
    let raw = s.read_sync(move |r| r.raw(mb, uid)).unwrap();
    (m, raw)
}

#[test]
fn nested_multipart_offsets_are_byte_exact() {
    let (m, raw) = meta(NESTED);
    assert_eq!(raw, NESTED.as_bytes());
    assert_eq!(m.size, NESTED.len() as u64);
    let top: &MimePart = &m.structure;
    assert_eq!(
        (top.media_type.as_str(), top.subtype.as_str()),
        ("multipart", "mixed")
    );
    assert!(slice(&raw, top.header_range).starts_with("From: Alice"));
    assert!(slice(&raw, top.header_range).ends_with("boundary=\"outer\"\r\n\r\n"));
    assert!(slice(&raw, top.body_range).starts_with("preamble\r\n--outer"));
    assert_eq!(top.body_range.1, raw.len() as u64);
    assert_eq!(top.parts.len(), 2);

    let alt = &top.parts[0];
    assert_eq!(alt.subtype, "alternative");
    assert_eq!(alt.parts.len(), 2);
    let plain = &alt.parts[0];
    assert_eq!(
        slice(&raw, plain.header_range),
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(
        slice(&raw, plain.body_range),
        "Caf=C3=A9 au lait, qpsecretword"
    );
    assert_eq!(plain.encoding, "quoted-printable");
    assert_eq!(plain.params, [("charset".to_string(), "utf-8".to_string())]);
    assert_eq!(plain.size, 31);
    assert_eq!(plain.lines, 1);
    let html = &alt.parts[1];
    assert_eq!(
        slice(&raw, html.body_range),
        "PHA+YmFzZTY0aGlkZGVudGV4dDwvcD4="
    );
    assert_eq!(html.encoding, "base64");

    let rfc822 = &top.parts[1];
    assert_eq!(
        (rfc822.media_type.as_str(), rfc822.subtype.as_str()),
        ("message", "rfc822")
    );
    assert_eq!(
        slice(&raw, rfc822.body_range),
        "From: c@y.org\r\nSubject: inner msg\r\nContent-Type: text/plain\r\n\r\nembedded body"
    );
    let d = rfc822.disposition.as_ref().unwrap();
    assert_eq!(d.0, "attachment");
    assert!(d
        .1
        .contains(&("filename".to_string(), "fwd.eml".to_string())));
    let (env, st) = &**rfc822.embedded.as_ref().unwrap();
    assert_eq!(env.subject.as_deref(), Some("inner msg"));
    assert_eq!(
        slice(&raw, st.header_range),
        "From: c@y.org\r\nSubject: inner msg\r\nContent-Type: text/plain\r\n\r\n"
    );
    assert_eq!(slice(&raw, st.body_range), "embedded body");
}

#[test]
fn envelope_keeps_raw_values_and_marks_groups() {
    let (m, _) = meta(NESTED);
    let e = &m.envelope;
    assert_eq!(e.subject.as_deref(), Some("=?utf-8?q?nested_caf=C3=A9?="));
    assert_eq!(e.message_id.as_deref(), Some("<nested@example.org>"));
    assert_eq!(e.date.as_deref(), Some("Mon, 23 Nov 2026 23:30:00 -0500"));
    assert_eq!(
        e.from,
        [Address {
            name: Some("Alice".into()),
            adl: None,
            local: Some("alice".into()),
            host: Some("example.org".into())
        }]
    );
    let to: Vec<(Option<&str>, Option<&str>)> =
        e.to.iter()
            .map(|a| (a.local.as_deref(), a.host.as_deref()))
            .collect();
    assert_eq!(
        to,
        [
            (Some("Team"), None),
            (Some("b"), Some("x.org")),
            (Some("c"), Some("y.org")),
            (None, None),
            (Some("d"), Some("z.org")),
        ]
    );
    assert!(e.sender.is_empty() && e.cc.is_empty() && e.in_reply_to.is_none());
}

#[test]
fn raw_range_reads_a_slice_and_clamps() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let big: Vec<u8> = format!("Subject: big\r\n\r\n{}", "0123456789".repeat(100_000)).into_bytes();
    let d = deliver(&s, big.clone(), &[a]);
    let (mb, uid) = d.entries[0];
    let part = s.read_sync(move |r| r.raw_range(mb, uid, 16, 10)).unwrap();
    assert_eq!(part, b"0123456789");
    let tail = s
        .read_sync(move |r| r.raw_range(mb, uid, big.len() as u64 - 3, 100))
        .unwrap();
    assert_eq!(tail, b"789");
    let past = s
        .read_sync(move |r| r.raw_range(mb, uid, 10_000_000, 5))
        .unwrap();
    assert!(past.is_empty());
    assert_eq!(s.read_sync(move |r| r.raw_len(mb, uid)).unwrap(), 1_000_016);
    let missing = s.read_sync(move |r| r.raw(mb, 99));
    assert!(matches!(missing, Err(mailstore::StoreError::NotFound(_))));
}

#[test]
fn messages_returns_requested_uids_in_order() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    for i in 0..5 {
        deliver(&s, crate::util::simple(&format!("s{i}"), "b"), &[a]);
    }
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let ms = s.read_sync(move |r| r.messages(mb, &[5, 2, 9, 3])).unwrap();
    assert_eq!(ms.iter().map(|m| m.uid).collect::<Vec<_>>(), [2, 3, 5]);
    assert_eq!(ms[0].envelope.subject.as_deref(), Some("s1"));
    assert_eq!(ms[0].internal_date, 1_790_000_000);
}
