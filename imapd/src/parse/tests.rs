//! Parser tables (RFC 3501 examples and nasty cases) and proptest round
//! trips: typed values are written out in wire syntax by a small test-only
//! encoder and must parse back to themselves.

use super::*;
use crate::command::*;
use proptest::prelude::*;

fn ok(line: &str) -> CommandBody {
    match parse_command(line.as_bytes()) {
        Ok(c) => c.body,
        Err(e) => panic!("{line:?} failed: {e:?}"),
    }
}

fn bad(line: &[u8]) -> SyntaxError {
    match parse_command(line) {
        Ok(c) => panic!("{:?} parsed as {c:?}", String::from_utf8_lossy(line)),
        Err(e) => e,
    }
}

fn set(s: &str) -> SequenceSet {
    sequence_set(s.as_bytes()).expect("set").1
}

#[test]
fn simple_commands_parse_case_insensitively() {
    assert_eq!(ok("a1 capability"), CommandBody::Capability);
    assert_eq!(ok("A2 NOOP"), CommandBody::Noop);
    assert_eq!(ok("x.y LOGOUT"), CommandBody::Logout);
    assert_eq!(ok("t IDLE"), CommandBody::Idle);
    assert_eq!(
        ok("t uid expunge 1:3"),
        CommandBody::Expunge {
            uids: Some(set("1:3"))
        }
    );
    assert_eq!(ok("t EXPUNGE"), CommandBody::Expunge { uids: None });
}

#[test]
fn login_accepts_atoms_quoted_and_literals() {
    let want = CommandBody::Login {
        user: "alice@localhost".into(),
        password: "p \"w\"".into(),
    };
    assert_eq!(ok("a LOGIN alice@localhost \"p \\\"w\\\"\""), want);
    assert_eq!(ok("a LOGIN {15}\r\nalice@localhost {5+}\r\np \"w\""), want);
}

#[test]
fn mailbox_names_decode_utf7_and_normalise_inbox() {
    assert_eq!(
        ok("a SELECT inbox"),
        CommandBody::Select {
            mailbox: "INBOX".into(),
            condstore: false,
            qresync: None,
        }
    );
    assert_eq!(
        ok("a EXAMINE \"Entw&APw-rfe\" (CONDSTORE)"),
        CommandBody::Examine {
            mailbox: "Entwürfe".into(),
            condstore: true,
            qresync: None,
        }
    );
    assert_eq!(
        ok("a DELETE Inbox/sub"),
        CommandBody::Delete("INBOX/sub".into())
    );
    assert_eq!(
        ok("a DELETE inboxes"),
        CommandBody::Delete("inboxes".into())
    );
    // Not valid modified UTF-7: still an astring, a name no mailbox has.
    assert_eq!(
        ok("a SELECT &U,BTFw"),
        CommandBody::Select {
            mailbox: format!("{}&U,BTFw", crate::parse::INVALID_UTF7),
            condstore: false,
            qresync: None,
        }
    );
}

#[test]
fn list_and_status_and_create() {
    assert_eq!(
        ok("a LIST \"\" %"),
        CommandBody::List {
            reference: "".into(),
            pattern: "%".into()
        }
    );
    assert!(matches!(
        ok("a LIST \"\" \"*\" RETURN (SPECIAL-USE)"),
        CommandBody::ListExtended(l) if l.ret.special_use && l.patterns == ["*"]
    ));
    assert_eq!(
        ok("a LSUB ~/Mail/ foo/*"),
        CommandBody::Lsub {
            reference: "~/Mail/".into(),
            pattern: "foo/*".into()
        }
    );
    assert_eq!(
        ok("a STATUS blurdybloop (UIDNEXT MESSAGES highestmodseq Size appendlimit mailboxid)"),
        CommandBody::Status {
            mailbox: "blurdybloop".into(),
            items: vec![
                StatusItem::UidNext,
                StatusItem::Messages,
                StatusItem::HighestModSeq,
                StatusItem::Size,
                StatusItem::AppendLimit,
                StatusItem::MailboxId
            ]
        }
    );
    assert_eq!(
        ok("a CREATE Archive (USE (\\Archive))"),
        CommandBody::Create {
            mailbox: "Archive".into(),
            special_use: vec!["\\Archive".into()]
        }
    );
    // RFC 6154 §6: a list, possibly empty, of \atoms.
    assert_eq!(
        ok("a CREATE x (use (\\Sent \\Trash))"),
        CommandBody::Create {
            mailbox: "x".into(),
            special_use: vec!["\\Sent".into(), "\\Trash".into()]
        }
    );
    assert_eq!(
        ok("a CREATE x (USE ())"),
        CommandBody::Create {
            mailbox: "x".into(),
            special_use: vec![]
        }
    );
    bad(b"a CREATE x (USE)");
    bad(b"a CREATE x (USE (\\Sent)");
    bad(b"a CREATE x (USE \\Sent)");
    assert_eq!(
        ok("a RENAME a b"),
        CommandBody::Rename("a".into(), "b".into())
    );
}

#[test]
fn append_with_flags_date_and_literal() {
    let body =
        ok("A003 APPEND saved-messages (\\Seen $Fwd) \"05-Jan-2024 10:00:00 +0100\" {5}\r\nhello");
    assert_eq!(
        body,
        CommandBody::Append {
            mailbox: "saved-messages".into(),
            flags: vec!["\\Seen".into(), "$Fwd".into()],
            date: Some(DateTime {
                unix: days_from_civil(2024, 1, 5) * 86400 + 9 * 3600,
                offset_minutes: 60
            }),
            message: b"hello".to_vec(),
        }
    );
    // Space-padded day (date-day-fixed) and no flags.
    let CommandBody::Append { date, flags, .. } =
        ok("a APPEND x \" 5-Jan-2024 10:00:00 -0000\" {0}\r\n")
    else {
        panic!()
    };
    assert!(flags.is_empty());
    assert_eq!(date.map(|d| d.offset_minutes), Some(0));
    bad(b"a APPEND x \"31-Feb-2024 10:00:00 +0000\" {0}\r\n");
}

#[test]
fn fetch_items_macros_sections_and_partials() {
    use FetchAtt::*;
    let f = |s: &str| match ok(s) {
        CommandBody::Fetch { atts, .. } => atts,
        other => panic!("{other:?}"),
    };
    assert_eq!(f("a FETCH 1 FAST"), vec![Flags, InternalDate, Rfc822Size]);
    // PREVIEW with its optional modifier list (RFC 8970 §5), SAVEDATE.
    assert_eq!(f("a FETCH 1 preview"), vec![Preview]);
    assert_eq!(
        f("a FETCH 1 (PREVIEW (lazy) SAVEDATE FLAGS EMAILID threadid)"),
        vec![Preview, SaveDate, Flags, EmailId, ThreadId]
    );
    assert_eq!(
        f("a FETCH 1 PREVIEW (CHANGEDSINCE 5)"),
        vec![Preview, ModSeq]
    );
    bad(b"a FETCH 1 (PREVIEW ())");
    bad(b"a FETCH 1 (PREVIEW (FUZZY))");
    bad(b"a FETCH 1 PREVIEW.PEEK");
    assert_eq!(
        f("a FETCH 1:* all"),
        vec![Flags, InternalDate, Rfc822Size, Envelope]
    );
    assert_eq!(
        f("a FETCH 2:4 (flags body[header.fields (DATE FROM)] UID)"),
        vec![
            Flags,
            Section {
                section: crate::command::Section {
                    part: vec![],
                    text: SectionText::HeaderFields(vec!["DATE".into(), "FROM".into()])
                },
                partial: None,
                peek: false
            },
            Uid
        ]
    );
    assert_eq!(
        f("a UID FETCH 1 BODY.PEEK[1.2.MIME]<0.100>"),
        vec![Section {
            section: crate::command::Section {
                part: vec![1, 2],
                text: SectionText::Mime
            },
            partial: Some((0, 100)),
            peek: true
        }]
    );
    assert_eq!(
        f("a FETCH 1 (BODY BODYSTRUCTURE RFC822.HEADER RFC822 RFC822.TEXT)"),
        vec![Body, BodyStructure, Rfc822Header, Rfc822, Rfc822Text]
    );
    match ok("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)") {
        CommandBody::Fetch {
            uid,
            changed_since,
            atts,
            ..
        } => {
            assert!(uid);
            assert_eq!(changed_since, Some(12345));
            assert_eq!(atts, vec![Flags, ModSeq]);
        }
        other => panic!("{other:?}"),
    }
    bad(b"a FETCH 1 BODY[MIME]");
    bad(b"a FETCH 1 BODY.PEEK");
    bad(b"a FETCH 0 FLAGS");
    bad(b"a FETCH 1 (FLAGS");
}

#[test]
fn sequence_sets_with_star_and_reversed_ranges() {
    let s = set("1:3,5,*,9:7");
    assert_eq!(s.resolve(10), vec![(1, 3), (5, 5), (10, 10), (7, 9)]);
    assert!(s.contains(8, 10));
    assert!(!s.contains(4, 10));
    assert_eq!(set("*:4").resolve(2), vec![(2, 4)]);
    assert_eq!(
        set("5:7,1,2,6:9,20,11:10").merged(30),
        vec![(1, 2), (5, 11), (20, 20)]
    );
}

#[test]
fn store_variants() {
    assert_eq!(
        ok("a STORE 2:4 +FLAGS.SILENT (\\Deleted)"),
        CommandBody::Store {
            uid: false,
            set: set("2:4"),
            mode: StoreMode::Add,
            silent: true,
            flags: vec!["\\Deleted".into()],
            unchanged_since: None
        }
    );
    assert_eq!(
        ok("a UID STORE 1 (UNCHANGEDSINCE 5) FLAGS \\seen foo"),
        CommandBody::Store {
            uid: true,
            set: set("1"),
            mode: StoreMode::Replace,
            silent: false,
            flags: vec!["\\Seen".into(), "foo".into()],
            unchanged_since: Some(5)
        }
    );
    bad(b"a STORE 1 *FLAGS (\\Seen)");
}

#[test]
fn search_keys_nest_and_charset_is_checked() {
    let s = |line: &str| match ok(line) {
        CommandBody::Search { key, .. } => key,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        s("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""),
        SearchKey::And(vec![
            SearchKey::Flag("\\Flagged".into()),
            SearchKey::Since(Date {
                year: 1994,
                month: 2,
                day: 1
            }),
            SearchKey::Not(Box::new(SearchKey::Header("From".into(), "Smith".into()))),
        ])
    );
    assert_eq!(
        s("a UID SEARCH CHARSET UTF-8 OR (UNSEEN 1:5) TEXT {4}\r\nw\u{f6}r"),
        SearchKey::Or(
            Box::new(SearchKey::And(vec![
                SearchKey::NotFlag("\\Seen".into()),
                SearchKey::Seq(set("1:5"))
            ])),
            Box::new(SearchKey::Text("wör".into()))
        )
    );
    assert_eq!(
        s("a SEARCH HEADER X-Foo bar LARGER 10 UID 2:* MODSEQ 7"),
        SearchKey::And(vec![
            SearchKey::Header("X-Foo".into(), "bar".into()),
            SearchKey::Larger(10),
            SearchKey::Uid(set("2:*")),
            SearchKey::ModSeq(7),
        ])
    );
    // WITHIN (RFC 5032 §3): an nz-number of seconds.
    assert_eq!(
        s("a SEARCH younger 259200 OLDER 4294967295"),
        SearchKey::And(vec![
            SearchKey::Younger(259_200),
            SearchKey::Older(u32::MAX),
        ])
    );
    // SAVEDATE (RFC 8514 §5).
    assert_eq!(
        s("a SEARCH SAVEDSINCE 1-Feb-1994 savedatesupported"),
        SearchKey::And(vec![
            SearchKey::SavedSince(Date {
                year: 1994,
                month: 2,
                day: 1
            }),
            SearchKey::SaveDateSupported,
        ])
    );
    // OBJECTID (RFC 8474 §6, §7): objectid = 1*255(ALPHA / DIGIT / "_" / "-").
    assert_eq!(
        s("a SEARCH EMAILID M12 threadid T_a-1"),
        SearchKey::And(vec![
            SearchKey::EmailId("M12".into()),
            SearchKey::ThreadId("T_a-1".into()),
        ])
    );
    bad(b"a SEARCH EMAILID");
    bad(b"a SEARCH EMAILID M.1");
    bad(format!("a SEARCH EMAILID {}", "M".repeat(256)).as_bytes());
    bad(b"a SEARCH SAVEDON");
    bad(b"a SEARCH SAVEDBEFORE 31-Foo-2020");
    bad(b"a SEARCH YOUNGER 0");
    bad(b"a SEARCH OLDER 4294967296");
    bad(b"a SEARCH OLDER -5");
    bad(b"a SEARCH YOUNGER");
    assert_eq!(
        bad(b"a SEARCH CHARSET KOI8-R ALL").kind,
        SyntaxKind::BadCharset
    );
    bad(b"a SEARCH");
    bad(b"a SEARCH BOGUS");
    let deep = format!("a SEARCH {}ALL", "NOT ".repeat(100));
    bad(deep.as_bytes());
}

#[test]
fn errors_carry_tag_and_reason() {
    let e = bad(b"a1 FROB");
    assert_eq!(e.tag.as_deref(), Some("a1"));
    assert!(e.reason.contains("unknown command"));
    assert_eq!(bad(b"").tag, None);
    assert_eq!(bad(b"+x NOOP").tag, None);
    assert!(bad(b"a1 NOOP extra").reason.contains("NOOP"));
    assert!(bad(b"a1 UID NOOP").reason.contains("UID"));
    bad(b"a1 LOGIN \"unterminated");
}

#[test]
fn authenticate_id_enable() {
    assert_eq!(
        ok("a AUTHENTICATE plain AGFsaWNlAHB3"),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some("AGFsaWNlAHB3".into())
        }
    );
    assert_eq!(
        ok("a authenticate PLAIN"),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial: None
        }
    );
    assert_eq!(
        ok("a ID (\"name\" \"mutt\" \"os\" NIL)"),
        CommandBody::Id(vec![
            ("name".into(), Some("mutt".into())),
            ("os".into(), None)
        ])
    );
    assert_eq!(ok("a ID NIL"), CommandBody::Id(vec![]));
    assert_eq!(
        ok("a ENABLE CONDSTORE utf8=accept"),
        CommandBody::Enable(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()])
    );
}

// ---- round trips ------------------------------------------------------

fn wire_string(s: &str, lit: bool) -> String {
    if lit {
        format!("{{{}+}}\r\n{s}", s.len())
    } else {
        crate::response::quote(s)
    }
}

fn wire_set(s: &SequenceSet) -> String {
    let n = |x: &SeqNum| match x {
        SeqNum::Value(v) => v.to_string(),
        SeqNum::Star => "*".into(),
    };
    s.0.iter()
        .map(|r| {
            if r.start == r.end {
                n(&r.start)
            } else {
                format!("{}:{}", n(&r.start), n(&r.end))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn arb_set() -> impl Strategy<Value = SequenceSet> {
    let num = prop_oneof![
        (1u32..=u32::MAX).prop_map(SeqNum::Value),
        Just(SeqNum::Star)
    ];
    prop::collection::vec((num.clone(), num), 1..5).prop_map(|v| {
        SequenceSet(
            v.into_iter()
                .map(|(start, end)| SeqRange { start, end })
                .collect(),
        )
    })
}

fn arb_text() -> impl Strategy<Value = String> {
    "[ -~\u{e0}-\u{ff}]{0,12}"
}

fn arb_key() -> impl Strategy<Value = SearchKey> {
    let leaf =
        prop_oneof![
            Just(SearchKey::All),
            Just(SearchKey::Flag("\\Seen".into())),
            Just(SearchKey::NotFlag("\\Deleted".into())),
            arb_text().prop_map(SearchKey::Body),
            (arb_text(), arb_text())
                .prop_map(|(a, b)| SearchKey::Header(format!("X{}", a.len()), b)),
            any::<u32>().prop_map(SearchKey::Larger),
            arb_set().prop_map(SearchKey::Uid),
            arb_set().prop_map(SearchKey::Seq),
            (1i32..9999, 1u32..=12, 1u32..=28)
                .prop_map(|(year, month, day)| SearchKey::Since(Date { year, month, day })),
        ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| SearchKey::Not(Box::new(k))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| SearchKey::Or(Box::new(a), Box::new(b))),
            prop::collection::vec(inner, 1..3).prop_map(SearchKey::And),
        ]
    })
}

fn wire_key(k: &SearchKey, lit: bool) -> String {
    match k {
        SearchKey::All => "ALL".into(),
        SearchKey::Flag(_) => "SEEN".into(),
        SearchKey::NotFlag(_) => "UNDELETED".into(),
        SearchKey::Body(s) => format!("BODY {}", wire_string(s, lit)),
        SearchKey::Header(f, v) => format!("HEADER {f} {}", wire_string(v, lit)),
        SearchKey::Larger(n) => format!("LARGER {n}"),
        SearchKey::Uid(s) => format!("UID {}", wire_set(s)),
        SearchKey::Seq(s) => wire_set(s),
        SearchKey::Since(d) => {
            const M: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            format!(
                "SINCE {}-{}-{:04}",
                d.day,
                M[(d.month - 1) as usize],
                d.year
            )
        }
        SearchKey::Not(k) => format!("NOT {}", wire_key(k, lit)),
        SearchKey::Or(a, b) => format!("OR {} {}", wire_key(a, lit), wire_key(b, lit)),
        SearchKey::And(v) => format!(
            "({})",
            v.iter()
                .map(|k| wire_key(k, lit))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => unreachable!("{other:?}"),
    }
}

proptest! {
    #[test]
    fn search_keys_round_trip(key in arb_key(), lit in any::<bool>()) {
        let line = format!("t SEARCH {}", wire_key(&key, lit));
        let parsed = parse_command(line.as_bytes());
        prop_assert_eq!(parsed.map(|c| c.body), Ok(CommandBody::Search {
            uid: false, ret: None, key, has_modseq: false
        }));
    }

    #[test]
    fn sequence_sets_round_trip(s in arb_set()) {
        let line = format!("t UID COPY {} x", wire_set(&s));
        prop_assert_eq!(parse_command(line.as_bytes()).map(|c| c.body),
            Ok(CommandBody::Copy { uid: true, set: s, mailbox: "x".into() }));
    }

    #[test]
    fn login_strings_round_trip(user in arb_text(), pw in arb_text(), lit in any::<bool>()) {
        let line = format!("t LOGIN {} {}", wire_string(&user, lit), wire_string(&pw, !lit));
        prop_assert_eq!(parse_command(line.as_bytes()).map(|c| c.body),
            Ok(CommandBody::Login { user, password: pw }));
    }

    #[test]
    fn mailbox_names_round_trip(name in "\\PC{1,12}") {
        let line = format!("t SUBSCRIBE {}", crate::response::quote(&crate::utf7::encode(&name)));
        prop_assert_eq!(parse_command(line.as_bytes()).map(|c| c.body),
            Ok(CommandBody::Subscribe(normalise_inbox(name))));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_command(&bytes);
    }
}

// ---- hostile SEARCH and LIST arguments (issue 12 items 3 and 6) -------

fn search_key_of(line: &str) -> SearchKey {
    match ok(line) {
        CommandBody::Search { key, .. } => key,
        other => panic!("{other:?}"),
    }
}

fn key_depth(k: &SearchKey) -> usize {
    match k {
        SearchKey::Not(a) => 1 + key_depth(a),
        SearchKey::Or(a, b) => 1 + key_depth(a).max(key_depth(b)),
        SearchKey::And(v) => 1 + v.iter().map(key_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn or_operands(k: &SearchKey, out: &mut Vec<SearchKey>) {
    match k {
        SearchKey::Or(a, b) => {
            or_operands(a, out);
            or_operands(b, out);
        }
        other => out.push(other.clone()),
    }
}

#[test]
fn or_chains_keep_their_shape_when_short_and_are_balanced_when_long() {
    let n = |i: u32| SearchKey::Larger(i);
    let or = |a, b| SearchKey::Or(Box::new(a), Box::new(b));
    assert_eq!(
        search_key_of("t SEARCH OR LARGER 1 OR LARGER 2 LARGER 3"),
        or(n(1), or(n(2), n(3)))
    );
    assert_eq!(
        search_key_of("t SEARCH OR OR LARGER 1 LARGER 2 LARGER 3"),
        or(or(n(1), n(2)), n(3))
    );
    assert_eq!(
        search_key_of("t SEARCH or OR larger 1 or LARGER 2 LARGER 3 LARGER 4"),
        or(or(n(1), or(n(2), n(3))), n(4))
    );
    // 10,000 operands, right-nested, left-nested and mixed: the same
    // operands in the same order, in a tree of depth ⌈log2 10,000⌉.
    let count = 10_000u32;
    let right: String = (1..count)
        .map(|i| format!("OR LARGER {i} "))
        .collect::<String>()
        + &format!("LARGER {count}");
    let left = "OR ".repeat(count as usize - 1)
        + &(1..=count)
            .map(|i| format!("LARGER {i}"))
            .collect::<Vec<_>>()
            .join(" ");
    // Mixed: a lopsided tree (splits at a third), written in prefix form.
    fn prefix(lo: u32, hi: u32, out: &mut String) {
        if lo == hi {
            out.push_str(&format!("LARGER {lo}"));
            return;
        }
        let mid = lo + (hi - lo) / 3;
        out.push_str("OR ");
        prefix(lo, mid, out);
        out.push(' ');
        prefix(mid + 1, hi, out);
    }
    let mut mixed = String::new();
    prefix(1, count, &mut mixed);
    for (what, chain) in [("right", right), ("left", left), ("mixed", mixed)] {
        let key = search_key_of(&format!("t SEARCH {chain}"));
        assert!(key_depth(&key) <= 14, "{what}: depth {}", key_depth(&key));
        let mut got = Vec::new();
        or_operands(&key, &mut got);
        assert!(got == (1..=count).map(n).collect::<Vec<_>>(), "{what}");
    }
    // Syntax errors inside a chain are still syntax errors.
    assert_eq!(bad(b"t SEARCH OR LARGER 1").kind, SyntaxKind::Bad);
    assert_eq!(
        bad(b"t SEARCH OR OR LARGER 1 LARGER 2").kind,
        SyntaxKind::Bad
    );
    assert_eq!(bad(b"t SEARCH OR  LARGER 1 LARGER 2").kind, SyntaxKind::Bad);
    assert_eq!(bad(b"t SEARCH ORX LARGER 1 LARGER 2").kind, SyntaxKind::Bad);
}

#[test]
fn search_over_the_limits_is_no_limit_and_never_deep() {
    use crate::limits::{MAX_SEARCH_DEPTH as D, MAX_SEARCH_KEYS, MAX_SEARCH_TEXT_KEYS};
    let at = |s: String| search_key_of(&s);
    let limit = |s: String| {
        let e = bad(s.as_bytes());
        assert_eq!(e.kind, SyntaxKind::Limit, "{e:?}");
        assert_eq!(e.tag.as_deref(), Some("t"));
        e.reason
    };
    // Depth: NOT, parentheses, and alternation with OR; a chain is a level.
    at(format!("t SEARCH {}ALL", "NOT ".repeat(D)));
    at(format!("t SEARCH {}ALL{}", "(".repeat(D), ")".repeat(D)));
    // (An OR's operands are one level down, a parenthesis' items another.)
    at(format!(
        "t SEARCH {}ALL{}",
        "OR ALL (".repeat(D / 2),
        ")".repeat(D / 2)
    ));
    for deep in [
        format!("t SEARCH {}ALL", "NOT ".repeat(D + 1)),
        format!("t SEARCH {}ALL{}", "(".repeat(D + 1), ")".repeat(D + 1)),
        format!(
            "t SEARCH {}ALL{}",
            "OR ALL (".repeat(D / 2 + 1),
            ")".repeat(D / 2 + 1)
        ),
        format!("t SEARCH {}ALL", "(".repeat(1_000_000)),
        format!("t SEARCH {}ALL", "NOT ".repeat(1_000_000)),
        format!("t SEARCH {}ALL", "OR ALL NOT ".repeat(1_000_000)),
    ] {
        let reason = limit(deep);
        assert!(reason.contains("nested too deeply"), "{reason}");
    }
    // Keys.
    at(format!("t SEARCH{}", " SEEN".repeat(MAX_SEARCH_KEYS)));
    at(format!(
        "t SEARCH {}ALL",
        "NOT SEEN ".repeat(MAX_SEARCH_KEYS - 1)
    ));
    let reason = limit(format!("t SEARCH{}", " SEEN".repeat(MAX_SEARCH_KEYS + 1)));
    assert!(reason.contains("Too many SEARCH keys"), "{reason}");
    limit(format!("t SEARCH {}1", "OR 1 ".repeat(MAX_SEARCH_KEYS)));
    limit(format!("t SEARCH ({})", vec!["1"; 1_000_000].join(" ")));
    // TEXT and BODY keys.
    at(format!(
        "t SEARCH{}",
        " TEXT x".repeat(MAX_SEARCH_TEXT_KEYS)
    ));
    let reason = limit(format!(
        "t SEARCH{} BODY x",
        " TEXT x".repeat(MAX_SEARCH_TEXT_KEYS)
    ));
    assert!(reason.contains("TEXT and BODY"), "{reason}");
}

#[test]
fn list_reference_and_pattern_are_bounded() {
    use crate::limits::MAX_LIST_PATTERN as M;
    let list = |r: &str, p: &str| parse_command(format!("t LIST {r} {p}").as_bytes());
    let limited = |r: Result<Command, SyntaxError>| match r {
        Err(e) => {
            assert_eq!(e.kind, SyntaxKind::Limit, "{e:?}");
            assert!(e.reason.contains(&M.to_string()), "{e:?}");
        }
        Ok(c) => panic!("{c:?}"),
    };
    assert!(list("\"\"", &"*".repeat(M)).is_ok());
    assert!(list(&"r".repeat(M), "%").is_ok());
    limited(list("\"\"", &"*".repeat(M + 1)));
    limited(list(&"r".repeat(M + 1), "%"));
    limited(parse_command(
        format!("t LSUB \"\" \"{}\"", "%".repeat(M + 1)).as_bytes(),
    ));
    limited(parse_command(
        format!("t LIST \"\" {{{}}}\r\n{}", 10 * M, "*".repeat(10 * M)).as_bytes(),
    ));
    // By decoded octets: 512 "é" are 1,024 octets (2,053 on the wire).
    let e = |n: usize| crate::utf7::encode(&"é".repeat(n));
    assert!(list("\"\"", &format!("\"{}\"", e(512))).is_ok());
    limited(list("\"\"", &format!("\"{}\"", e(513))));
    // Wire forms over four times the bound are refused undecoded, valid
    // or not; shorter invalid ones are syntax errors as before.
    limited(list("\"\"", &"&".repeat(4 * M + 1)));
    assert!(matches!(
        ok("t LIST \"\" &Jjo"),
        CommandBody::List { pattern, .. } if pattern.starts_with(crate::parse::INVALID_UTF7)
    ));
}

#[test]
fn select_qresync_parameter() {
    // RFC 7162 §3.2.5 and the ABNF of §7.
    let q = |line: &str| match ok(line) {
        CommandBody::Select { qresync, .. } | CommandBody::Examine { qresync, .. } => qresync,
        other => panic!("{other:?}"),
    };
    let p = q("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))")
        .expect("params");
    assert_eq!(p.uidvalidity, 67890007);
    assert_eq!(p.modseq, 20050715194045000);
    assert_eq!(p.known_uids, Some(set("41,43:211,214:541")));
    assert_eq!(p.seq_match, None);
    let p = q("a EXAMINE INBOX (QRESYNC (1 0 1:10 (1:3,5 2:4,9)))").expect("params");
    assert_eq!(p.modseq, 0);
    assert_eq!(p.seq_match, Some((set("1:3,5"), set("2:4,9"))));
    let p = q("a select x (condstore qresync (5 6))").expect("params");
    assert_eq!((p.known_uids, p.seq_match), (None, None));
    assert!(matches!(
        ok("a SELECT x (QRESYNC (5 6) CONDSTORE)"),
        CommandBody::Select {
            condstore: true,
            qresync: Some(_),
            ..
        }
    ));
    // Huge ranges are counted, not enumerated.
    assert!(q("a SELECT x (QRESYNC (5 6 1:4294967295 (1:4294967295 1:4294967295)))").is_some());
    for line in [
        "a SELECT x (QRESYNC (0 6))", // uidvalidity is nz-number
        "a SELECT x (QRESYNC (5))",   // modseq missing
        "a SELECT x (QRESYNC (5 9223372036854775808))", // past 63 bits
        "a SELECT x (QRESYNC (5 6 1:*))", // no * in known-uids
        "a SELECT x (QRESYNC (5 6 1:9 (1:3 1:*)))", // nor in known-uid-set
        "a SELECT x (QRESYNC (5 6 1:9 (1:3 1:2)))", // counts differ
        "a SELECT x (QRESYNC (5 6 1:9 (1:3)))",
        "a SELECT x (QRESYNC (5 6) QRESYNC (5 6))",
        "a SELECT x (CONDSTORE CONDSTORE)",
        "a SELECT x (QRESYNC 5 6)",
        "a SELECT x ()",
        "a SELECT x (FOO)",
    ] {
        bad(line.as_bytes());
    }
}

#[test]
fn fetch_vanished_modifier() {
    // RFC 7162 §3.2.6: UID FETCH, with CHANGEDSINCE, in either order.
    for line in [
        "a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
        "a UID FETCH 300:500 (FLAGS) (vanished changedsince 12345)",
    ] {
        match ok(line) {
            CommandBody::Fetch {
                uid: true,
                changed_since: Some(12345),
                vanished: true,
                atts,
                ..
            } => assert!(atts.contains(&FetchAtt::ModSeq)),
            other => panic!("{line}: {other:?}"),
        }
    }
    assert!(matches!(
        ok("a UID FETCH 1:* FLAGS (CHANGEDSINCE 1)"),
        CommandBody::Fetch {
            vanished: false,
            ..
        }
    ));
    for line in [
        "a FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", // not UID FETCH
        "a UID FETCH 1:* (FLAGS) (VANISHED)",            // no CHANGEDSINCE
        "a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)",
        "a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)",
        "a UID FETCH 1:* (FLAGS) ()",
    ] {
        bad(line.as_bytes());
    }
}

/// IMAP4rev2 (RFC 9051 §5.1) and UTF8=ACCEPT (RFC 6855 §3): once the
/// session reads names as UTF-8, `&` is an ordinary character and UTF-8
/// is taken as it is; otherwise the name is modified UTF-7.
#[test]
fn mailbox_names_as_utf8_or_modified_utf7() {
    use crate::parse::{parse_command_as, ParseMode};
    let mode = |utf8_names| ParseMode {
        utf8_names,
        utf8_accept: false,
    };
    let name = |line: &str, utf8: bool| match parse_command_as(line.as_bytes(), mode(utf8)) {
        Ok(Command {
            body: CommandBody::Select { mailbox, .. },
            ..
        }) => mailbox,
        other => panic!("{line}: {other:?}"),
    };
    assert_eq!(name("a SELECT \"Entw&APw-rfe\"", false), "Entw\u{fc}rfe");
    assert_eq!(name("a SELECT \"Entw&APw-rfe\"", true), "Entw&APw-rfe");
    assert_eq!(name("a SELECT \"Caf\u{e9} & Co\"", true), "Caf\u{e9} & Co");
    assert_eq!(name("a SELECT inbox", true), "INBOX");
    // Not UTF-8 at all: a name no mailbox has.
    let raw = parse_command_as(b"a SELECT \"\xff\"", mode(true)).expect("parses");
    let CommandBody::Select { mailbox, .. } = raw.body else {
        panic!()
    };
    assert!(mailbox.starts_with(crate::parse::INVALID_UTF7));
    // The mode ends with the parse.
    assert_eq!(name("a SELECT \"Entw&APw-rfe\"", false), "Entw\u{fc}rfe");
    match parse_command_as(b"a LIST \"\" \"A&B*\"", mode(true)) {
        Ok(Command {
            body: CommandBody::List { pattern, .. },
            ..
        }) => assert_eq!(pattern, "A&B*"),
        other => panic!("{other:?}"),
    }
}

/// UTF8=ACCEPT (RFC 6855 §4): `UTF8 (literal8)` in APPEND (and CATENATE)
/// only once enabled; SEARCH with a CHARSET is BAD once enabled (§3).
#[test]
fn utf8_append_and_search_charset_follow_the_mode() {
    use crate::parse::{parse_command_as, ParseMode};
    let on = ParseMode {
        utf8_names: true,
        utf8_accept: true,
    };
    let off = ParseMode::default();
    let line = b"a APPEND INBOX (\\Seen) UTF8 (~{3}\r\nx\xc3\xa9)";
    match parse_command_as(line, on) {
        Ok(Command {
            body: CommandBody::Append { message, flags, .. },
            ..
        }) => {
            assert_eq!(message, "x\u{e9}".as_bytes());
            assert_eq!(flags, vec!["\\Seen".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(parse_command_as(line, off).is_err());
    assert!(parse_command_as(b"a APPEND INBOX UTF8 ({3}\r\nabc)", on).is_err());
    assert!(parse_command_as(b"a APPEND INBOX CATENATE (UTF8 (~{1}\r\nx))", on).is_ok());
    assert!(parse_command_as(b"a SEARCH CHARSET UTF-8 ALL", off).is_ok());
    let err = parse_command_as(b"a SEARCH CHARSET UTF-8 ALL", on).expect_err("BAD");
    assert_eq!(err.kind, SyntaxKind::Bad);
    let err = parse_command_as(b"a SEARCH CHARSET KOI8-R ALL", on).expect_err("BAD");
    assert_eq!(err.kind, SyntaxKind::Bad);
    assert!(parse_command_as(b"a SEARCH SUBJECT \"Gr\xc3\xbc\xc3\x9fe\"", on).is_ok());
}
