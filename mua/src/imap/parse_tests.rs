//! Tests of the IMAP response parser (`parse.rs`): RFC 3501 §7 responses,
//! §9 `resp-text`, `atom` vs `section`, strings and literals.

use super::*;

fn untagged(s: &[u8]) -> Untagged {
    match parse_response(s) {
        Ok(Response::Untagged(u)) => u,
        other => panic!("not untagged: {other:?}"),
    }
}

#[test]
fn tagged_status_with_code() {
    let r = parse_response(b"a1 OK [READ-WRITE] SELECT completed").unwrap();
    assert_eq!(
        r,
        Response::Tagged {
            tag: "a1".into(),
            status: Status::Ok,
            text: RespText {
                code: Some("READ-WRITE".into()),
                text: "SELECT completed".into()
            }
        }
    );
    let r = parse_response(b"a2 NO [TRYCREATE] no such mailbox").unwrap();
    assert!(matches!(
        r,
        Response::Tagged {
            status: Status::No,
            ..
        }
    ));
    assert!(parse_response(b"a3 MAYBE hmm").is_err());
}

#[test]
fn continuation_and_greeting() {
    assert_eq!(
        parse_response(b"+ Ready for literal").unwrap(),
        Response::Continue("Ready for literal".into())
    );
    assert_eq!(
        parse_response(b"+").unwrap(),
        Response::Continue(String::new())
    );
    let u = untagged(b"* OK [CAPABILITY IMAP4rev1 IDLE] minimail ready");
    assert_eq!(
        u,
        Untagged::State(
            Status::Ok,
            RespText {
                code: Some("CAPABILITY IMAP4rev1 IDLE".into()),
                text: "minimail ready".into()
            }
        )
    );
}

#[test]
fn capability_exists_expunge_search() {
    assert_eq!(
        untagged(b"* CAPABILITY IMAP4rev1 literal+ IDLE"),
        Untagged::Capability(vec!["IMAP4REV1".into(), "LITERAL+".into(), "IDLE".into()])
    );
    assert_eq!(untagged(b"* 23 EXISTS"), Untagged::Exists(23));
    assert_eq!(untagged(b"* 3 EXPUNGE"), Untagged::Expunge(3));
    assert_eq!(
        untagged(b"* SEARCH 2 84 882"),
        Untagged::Search(vec![2, 84, 882])
    );
    assert_eq!(untagged(b"* SEARCH"), Untagged::Search(vec![]));
}

#[test]
fn list_decodes_modified_utf7_and_nil_delimiter() {
    assert_eq!(
        untagged(br#"* LIST (\HasNoChildren) "/" "Entw&APw-rfe""#),
        Untagged::List {
            flags: vec!["\\HasNoChildren".into()],
            delim: Some('/'),
            name: "Entwürfe".into()
        }
    );
    assert_eq!(
        untagged(b"* LIST (\\Noselect) NIL {5}\r\nfoo/b"),
        Untagged::List {
            flags: vec!["\\Noselect".into()],
            delim: None,
            name: "foo/b".into()
        }
    );
    assert_eq!(
        untagged(b"* LIST () \"/\" INBOX"),
        Untagged::List {
            flags: vec![],
            delim: Some('/'),
            name: "INBOX".into()
        }
    );
}

#[test]
fn status_items() {
    assert_eq!(
        untagged(br#"* STATUS "Sent" (MESSAGES 231 UNSEEN 4)"#),
        Untagged::Status {
            mailbox: "Sent".into(),
            items: vec![("MESSAGES".into(), 231), ("UNSEEN".into(), 4)]
        }
    );
}

#[test]
fn fetch_with_literal_and_section_names() {
    let raw = b"* 12 FETCH (UID 40 FLAGS (\\Seen) BODY[HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: hi\r\n\r BODY[]<0> \"x\\\"y\")";
    match untagged(raw) {
        Untagged::Fetch { seq, items } => {
            assert_eq!(seq, 12);
            assert_eq!(items[0], ("UID".into(), Value::Atom("40".into())));
            assert_eq!(
                items[1],
                (
                    "FLAGS".into(),
                    Value::List(vec![Value::Atom("\\Seen".into())])
                )
            );
            assert_eq!(items[2].0, "BODY[HEADER.FIELDS (SUBJECT)]");
            assert_eq!(items[2].1, Value::Bytes(b"Subject: hi\r\n\r".to_vec()));
            assert_eq!(
                items[3],
                ("BODY[]<0>".into(), Value::Bytes(b"x\"y".to_vec()))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn short_literal_is_an_error_not_a_panic() {
    assert!(parse_response(b"* 1 FETCH (BODY[] {10}\r\nabc)").is_err());
    assert!(parse_response(b"* 1 FETCH (UID 3").is_err());
    assert!(parse_response(b"* 1 FETCH (BODY[] \"abc").is_err());
}

#[test]
fn literal_announcement_detection() {
    assert_eq!(literal_len(b"* 1 FETCH (BODY[] {342}"), Some(342));
    assert_eq!(literal_len(b"A APPEND x {5+}"), Some(5));
    assert_eq!(literal_len(b"* OK {braces}"), None);
    assert_eq!(literal_len(b"* OK done"), None);
    // A hostile length must be an error, not an overflow panic.
    assert!(parse_response(b"* 1 FETCH (BODY[] {18446744073709551615}\r\nx)").is_err());
}

fn fetch_items(s: &[u8]) -> Vec<(String, Value)> {
    match untagged(s) {
        Untagged::Fetch { items, .. } => items,
        other => panic!("not FETCH: {other:?}"),
    }
}

fn atom(s: &str) -> Value {
    Value::Atom(s.into())
}

#[test]
fn open_bracket_inside_an_atom_is_an_atom_char() {
    // The fuzzer's reproducer: `\[` is a flag, not the start of a section.
    assert_eq!(
        fetch_items(b"* 1 FETCH (X (\\[ {1}\r\nx NIL))"),
        vec![(
            "X".into(),
            Value::List(vec![atom("\\["), Value::Bytes(b"x".to_vec()), Value::Nil])
        )]
    );
    assert_eq!(
        untagged(b"* FLAGS (\\Seen a[b $x[ [[ \\Draft)"),
        Untagged::Flags(vec![
            "\\Seen".into(),
            "a[b".into(),
            "$x[".into(),
            "[[".into(),
            "\\Draft".into()
        ])
    );
    assert_eq!(
        fetch_items(b"* 2 FETCH (FLAGS (a[b) UID 7 X c[d Y (e[f (g[)))"),
        vec![
            ("FLAGS".into(), Value::List(vec![atom("a[b")])),
            ("UID".into(), atom("7")),
            ("X".into(), atom("c[d")),
            (
                "Y".into(),
                Value::List(vec![atom("e[f"), Value::List(vec![atom("g[")])])
            ),
        ]
    );
}

#[test]
fn section_follows_only_section_taking_attributes() {
    let items = fetch_items(
        b"* 3 FETCH (BINARY[1] {3}\r\nabc BINARY.SIZE[1.2] 42 body.peek[text]<10> NIL \
          body[header.fields.not (a]b \"c d\" {2}\r\n)x)]<5> \"h\" XBODY[1 2)",
    );
    let names: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "BINARY[1]",
            "BINARY.SIZE[1.2]",
            "BODY.PEEK[TEXT]<10>",
            "BODY[HEADER.FIELDS.NOT (A]B \"C D\" {2}\r\n)X)]<5>",
            "XBODY[1"
        ]
    );
    assert_eq!(items[0].1, Value::Bytes(b"abc".to_vec()));
    assert_eq!(items[1].1, atom("42"));
    assert_eq!(items[3].1, Value::Bytes(b"h".to_vec()));
    assert_eq!(items[4].1, atom("2"));
}

#[test]
fn section_attribute_names_without_a_section_are_plain_atoms() {
    // `BODY[x` is a valid flag keyword: no "]" closes it as a section.
    assert_eq!(
        untagged(b"* FLAGS (BODY[x BINARY[ \"]\" body[1 {1}\r\n] BODY[HEADER.FIELDS y)"),
        Untagged::Flags(vec![
            "BODY[x".into(),
            "BINARY[".into(),
            "]".into(),
            "body[1".into(),
            "]".into(),
            "BODY[HEADER.FIELDS".into(),
            "y".into()
        ])
    );
    // Many unterminated sections in one response still parse.
    let mut raw = b"* FLAGS (".to_vec();
    for _ in 0..1000 {
        raw.extend_from_slice(b"BODY[HEADER.FIELDS ");
    }
    raw.push(b')');
    match untagged(&raw) {
        Untagged::Flags(f) => {
            assert_eq!(f.len(), 1000);
            assert!(f.iter().all(|x| x == "BODY[HEADER.FIELDS"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mailbox_names_may_hold_brackets() {
    assert_eq!(
        untagged(b"* LIST (\\HasNoChildren) \"/\" [Gmail]/Spam"),
        Untagged::List {
            flags: vec!["\\HasNoChildren".into()],
            delim: Some('/'),
            name: "[Gmail]/Spam".into()
        }
    );
    assert_eq!(
        untagged(b"* STATUS a[b (MESSAGES 2)"),
        Untagged::Status {
            mailbox: "a[b".into(),
            items: vec![("MESSAGES".into(), 2)]
        }
    );
}

#[test]
fn response_code_ends_at_the_first_bracket_outside_lists_and_strings() {
    let text = |raw: &[u8]| match parse_response(raw).unwrap() {
        Response::Tagged { text, .. } | Response::Untagged(Untagged::State(_, text)) => text,
        other => panic!("{other:?}"),
    };
    let rt = |code: Option<&str>, t: &str| RespText {
        code: code.map(Into::into),
        text: t.into(),
    };
    assert_eq!(
        text(b"* OK [PERMANENTFLAGS (\\Seen a[b [ \\*)] Limited"),
        rt(Some("PERMANENTFLAGS (\\Seen a[b [ \\*)"), "Limited")
    );
    assert_eq!(
        text(b"a1 NO [BADCHARSET (\"a]b\" UTF-8)] no such charset"),
        rt(Some("BADCHARSET (\"a]b\" UTF-8)"), "no such charset")
    );
    assert_eq!(
        text(b"a2 OK [X-FOO (unbalanced] text"),
        rt(Some("X-FOO (unbalanced"), "text")
    );
    assert_eq!(text(b"a3 OK [ALERT no close"), rt(None, "[ALERT no close"));
    assert_eq!(text(b"a4 OK [] empty"), rt(Some(""), "empty"));
}

proptest::proptest! {
    #[test]
    fn parser_never_panics_on_arbitrary_bytes(buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let _ = parse_response(&buf);
        let _ = literal_len(&buf);
    }

    #[test]
    fn parser_never_panics_on_mangled_responses(cut in 0usize..120, junk in "[ ()\\[\\]{}\"0-9A-Z+*\r\n]{0,12}") {
        let good = b"* 12 FETCH (UID 40 FLAGS (\\Seen) BODY[HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: hi\r\n\r ENVELOPE (NIL \"s\" ((\"n\" NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL))";
        let mut buf = good[..cut.min(good.len())].to_vec();
        buf.extend_from_slice(junk.as_bytes());
        if let Ok(Response::Untagged(Untagged::Fetch { seq, items })) = parse_response(&buf) {
            let _ = super::super::fetch::fetch_data(seq, &items);
        }
    }

    /// Any flag list of atoms (RFC 3501 §9 ATOM-CHARs, `[` included)
    /// reads back as the same flags.
    #[test]
    fn atoms_with_brackets_read_back_as_written(
        flags in proptest::collection::vec("\\\\?[!#$&'+-Z^-z|}~\\[]{1,12}", 0..8)
    ) {
        let flags: Vec<String> = flags
            .into_iter()
            .filter(|f| !f.eq_ignore_ascii_case("NIL"))
            .collect();
        let raw = format!("* FLAGS ({})", flags.join(" "));
        proptest::prop_assert_eq!(untagged(raw.as_bytes()), Untagged::Flags(flags));
    }
}
