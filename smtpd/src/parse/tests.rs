//! Known-answer tables and property tests for the RFC 5321 §4.1.2 grammar
//! in `parse/` (addresses, ESMTP parameters, command arguments), including
//! RFC 6531 UTF-8 addresses and RFC 3030 BDAT.
use super::*;
use nom::combinator::all_consuming;
use nom::Parser;
use std::net::{Ipv4Addr, Ipv6Addr};

fn mb(local: &str, domain: &str) -> Mailbox {
    Mailbox {
        local: local.into(),
        host: Host::Domain(domain.into()),
    }
}

#[test]
fn reverse_paths() {
    let table: &[(&str, Option<ReversePath>)] = &[
        (" FROM:<>", Some(ReversePath::Null)),
        (" from:<a@b.c>", Some(ReversePath::Mailbox(mb("a", "b.c")))),
        (" FROM: <a@b.c>", Some(ReversePath::Mailbox(mb("a", "b.c")))),
        (
            " FROM:<@r1.x,@r2.y:a@b.c>",
            Some(ReversePath::Mailbox(mb("a", "b.c"))),
        ),
        (
            " FROM:<\"a b\"@c>",
            Some(ReversePath::Mailbox(mb("\"a b\"", "c"))),
        ),
        (
            " FROM:<\"ab\"@c>",
            Some(ReversePath::Mailbox(mb("ab", "c"))),
        ),
        (
            " FROM:<\"a\\\"b\"@c>",
            Some(ReversePath::Mailbox(mb("\"a\\\"b\"", "c"))),
        ),
        (
            " FROM:<a.b+tag@ex-ample.org>",
            Some(ReversePath::Mailbox(mb("a.b+tag", "ex-ample.org"))),
        ),
        (
            " FROM:<José@exämple.org>",
            Some(ReversePath::Mailbox(mb("José", "exämple.org"))),
        ),
        (" FROM:a@b.c", None),
        (" FROM:<a@b.c", None),
        (" FROM:<a@>", None),
        (" FROM:<@b.c>", None),
        (" FROM:<a..b@c>", None),
        (" FROM:<.a@c>", None),
        (" FROM:<a@-b.c>", None),
        (" FROM:<a@b-.c>", None),
        (" FROM:<a@b..c>", None),
        (" FROM:<a b@c>", None),
        ("FROM:<a@b>", None),
        (" TO:<a@b>", None),
        (" FROM:", None),
    ];
    for (input, want) in table {
        let got = mail_args(input.as_bytes()).ok().map(|(_, (p, _))| p);
        assert_eq!(&got, want, "input {input:?}");
    }
}

#[test]
fn address_literals() {
    let table: &[(&str, Option<AddressLiteral>)] = &[
        (
            "[1.2.3.4]",
            Some(AddressLiteral::V4(Ipv4Addr::new(1, 2, 3, 4))),
        ),
        ("[IPv6:::1]", Some(AddressLiteral::V6(Ipv6Addr::LOCALHOST))),
        (
            "[ipv6:2001:db8::1]",
            Some(AddressLiteral::V6("2001:db8::1".parse().unwrap())),
        ),
        (
            "[IPv6:::ffff:1.2.3.4]",
            Some(AddressLiteral::V6("::ffff:1.2.3.4".parse().unwrap())),
        ),
        (
            "[x-tag:abc]",
            Some(AddressLiteral::General {
                tag: "x-tag".into(),
                content: "abc".into(),
            }),
        ),
        ("[256.1.1.1]", None),
        ("[1.2.3]", None),
        ("[IPv6:zz]", None),
        ("1.2.3.4", None),
    ];
    for (input, want) in table {
        let got = all_consuming(address_literal)
            .parse(input.as_bytes())
            .ok()
            .map(|(_, a)| a);
        assert_eq!(&got, want, "input {input:?}");
    }
}

#[test]
fn forward_paths_and_parameters() {
    let (_, (p, params)) = rcpt_args(b" TO:<Postmaster>").unwrap();
    assert_eq!(p, ForwardPath::Postmaster);
    assert!(params.is_empty());
    let (_, (p, _)) = rcpt_args(b" to:<postmaster@example.org>").unwrap();
    assert_eq!(p, ForwardPath::Mailbox(mb("postmaster", "example.org")));
    let (_, (p, _)) = rcpt_args(b" TO:<u@[127.0.0.1]>").unwrap();
    assert_eq!(
        p,
        ForwardPath::Mailbox(Mailbox {
            local: "u".into(),
            host: Host::Literal(AddressLiteral::V4(Ipv4Addr::LOCALHOST))
        })
    );
    let (_, (_, params)) = mail_args(b" FROM:<a@b> size=100 BODY=8BITMIME  SMTPUTF8 ").unwrap();
    assert_eq!(
        params,
        vec![
            EsmtpParam {
                keyword: "SIZE".into(),
                value: Some("100".into())
            },
            EsmtpParam {
                keyword: "BODY".into(),
                value: Some("8BITMIME".into())
            },
            EsmtpParam {
                keyword: "SMTPUTF8".into(),
                value: None
            },
        ]
    );
    assert!(mail_args(b" FROM:<a@b> SIZE=").is_err());
    assert!(mail_args(b" FROM:<a@b> -X").is_err());
    assert!(mail_args(b" FROM:<a@b>SIZE=1").is_err());
    assert!(rcpt_args(b" TO:<>").is_err());
}

#[test]
fn ehlo_bdat_and_verbs() {
    assert_eq!(
        ehlo_args(b" mx.example.org").unwrap().1,
        Host::Domain("mx.example.org".into())
    );
    assert_eq!(
        ehlo_args(b" [10.0.0.1]").unwrap().1,
        Host::Literal(AddressLiteral::V4(Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert!(ehlo_args(b"").is_err());
    assert!(ehlo_args(b" ").is_err());
    assert_eq!(bdat_args(b" 100 LAST").unwrap().1, (100, true));
    assert_eq!(bdat_args(b" 0").unwrap().1, (0, false));
    assert!(bdat_args(b" x").is_err());
    assert!(bdat_args(b" 99999999999999999999999").is_err());
    assert_eq!(verb(b"ehlo x"), Some(("EHLO".into(), &b" x"[..])));
    assert_eq!(verb(b"QUIT"), Some(("QUIT".into(), &b""[..])));
    assert_eq!(verb(b" QUIT"), None);
    assert_eq!(string_arg(b" <bob@x> ").unwrap().1, "<bob@x>");
    assert_eq!(
        all_consuming(string).parse(&b"\"a b\""[..]).unwrap().1,
        "a b"
    );
}

#[test]
fn invalid_utf8_is_refused() {
    assert!(mail_args(b" FROM:<\xff@b>").is_err());
    assert!(mail_args(b" FROM:<a@\xc3>").is_err());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn atom_s() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,12}"
    }
    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?"
    }

    proptest! {
        #[test]
        fn dot_string_mailboxes_round_trip(
            atoms in proptest::collection::vec(atom_s(), 1..4),
            labels in proptest::collection::vec(label(), 1..4),
        ) {
            let local = atoms.join(".");
            let domain = labels.join(".");
            let line = format!(" FROM:<{local}@{domain}> SIZE=10");
            let (_, (p, params)) = mail_args(line.as_bytes()).unwrap();
            prop_assert_eq!(p, ReversePath::Mailbox(mb(&local, &domain)));
            prop_assert_eq!(params.len(), 1);
        }

        #[test]
        fn quoted_local_parts_round_trip(content in "[ -~]{0,20}") {
            let mut quoted = String::from("\"");
            for c in content.chars() {
                if c == '"' || c == '\\' { quoted.push('\\'); }
                quoted.push(c);
            }
            quoted.push('"');
            let line = format!(" TO:<{quoted}@example.org>");
            let (_, (p, _)) = rcpt_args(line.as_bytes()).unwrap();
            let ForwardPath::Mailbox(m) = p else { panic!("not a mailbox") };
            // The canonical form parses back to the same mailbox.
            let again = format!(" TO:<{}>", m);
            let (_, (p2, _)) = rcpt_args(again.as_bytes()).unwrap();
            prop_assert_eq!(p2, ForwardPath::Mailbox(m));
        }

        #[test]
        fn arbitrary_lines_never_panic(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = mail_args(&line);
            let _ = rcpt_args(&line);
            let _ = ehlo_args(&line);
            let _ = bdat_args(&line);
            let _ = string_arg(&line);
            let _ = verb(&line);
        }

        #[test]
        fn ipv4_literals_round_trip(a: u8, b: u8, c: u8, d: u8) {
            let s = format!("[{a}.{b}.{c}.{d}]");
            let (_, lit) = address_literal(s.as_bytes()).unwrap();
            prop_assert_eq!(lit.to_string(), s);
        }
    }
}
