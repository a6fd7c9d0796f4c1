//! proptest strategies for the IMAP command round trips: every
//! `CommandBody` variant with values the parser can produce (RFC 3501 §9
//! grammar; names already decoded, INBOX normalised, system flags in
//! canonical case, FETCH macros expanded, MODSEQ added after CHANGEDSINCE).

use super::writer::{inbox, SYSTEM_FLAGS};
use crate::command::*;
use proptest::prelude::*;

fn tag() -> impl Strategy<Value = String> {
    "[!#$&',-\\[\\]^-z|}~]{1,8}"
}

/// Text with quotes, backslashes, brackets and non-ASCII characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[ -~]{0,12}", "\\PC{0,8}"]
}

fn mailbox_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("INBOX".to_string()),
        "(?i:inbox)(/[a-z&]{1,4})?",
        "[a-zA-Z0-9 &/.\\[\\]\"\\\\-]{1,12}",
        "\\PC{0,10}",
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9/%*.\\]-]{0,10}", "\\PC{0,8}"]
}

fn flag() -> impl Strategy<Value = Flag> {
    prop_oneof![
        prop::sample::select(&SYSTEM_FLAGS[..]).prop_map(String::from),
        "[a-zA-Z0-9$_.\\[&'!#+-]{1,10}",
        "\\\\[a-zA-Z][a-zA-Z0-9]{0,8}".prop_filter("not a system flag", |f| {
            !SYSTEM_FLAGS.iter().any(|s| s.eq_ignore_ascii_case(f))
        }),
    ]
}

fn set() -> impl Strategy<Value = SequenceSet> {
    let num = prop_oneof![
        4 => (1u32..=u32::MAX).prop_map(SeqNum::Value),
        1 => Just(SeqNum::Star)
    ];
    let ranges = prop::collection::vec((num.clone(), prop::option::of(num)), 1..4).prop_map(|v| {
        SequenceSet(
            v.into_iter()
                .map(|(start, end)| SeqRange {
                    start,
                    end: end.unwrap_or(start),
                })
                .collect(),
        )
    });
    // `$`, the saved search result (RFC 5182), now and then.
    prop_oneof![9 => ranges, 1 => Just(SequenceSet::saved())]
}

/// A UID or message-number set without `*` (QRESYNC's sets).
fn plain_set() -> impl Strategy<Value = SequenceSet> {
    prop::collection::vec((1u32..=u32::MAX, 0u32..4), 1..4).prop_map(|v| {
        SequenceSet(
            v.into_iter()
                .map(|(a, n)| SeqRange {
                    start: SeqNum::Value(a),
                    end: SeqNum::Value(a.saturating_add(n)),
                })
                .collect(),
        )
    })
}

/// The QRESYNC SELECT parameter (RFC 7162 §3.2.5); seq-match-data pairs
/// two ranges of the same length.
fn qresync() -> impl Strategy<Value = Option<QresyncParams>> {
    let range = |a: u32, n: u32| {
        SequenceSet(vec![SeqRange {
            start: SeqNum::Value(a),
            end: SeqNum::Value(a + n),
        }])
    };
    prop::option::of((
        1u32..=u32::MAX,
        0u64..1 << 63,
        prop::option::of(plain_set()),
        prop::option::of((1u32..1_000_000, 1u32..1_000_000, 0u32..50)),
    ))
    .prop_map(move |q| {
        q.map(|(uidvalidity, modseq, known_uids, m)| QresyncParams {
            uidvalidity,
            modseq,
            seq_match: m
                .filter(|_| known_uids.is_some())
                .map(|(s, u, n)| (range(s, n), range(u, n))),
            known_uids,
        })
    })
}

fn date() -> impl Strategy<Value = Date> {
    (0i32..=9999, 1u32..=12, 1u32..=31).prop_map(|(year, month, day)| {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        Date {
            year,
            month,
            day: day.min(days),
        }
    })
}

fn date_time() -> impl Strategy<Value = DateTime> {
    // Local times from 0000-01-01 to 9999-12-31, zones up to ±99:59.
    (-62_167_219_200i64..253_402_300_800, -5999i32..=5999).prop_map(|(local, off)| DateTime {
        unix: local - i64::from(off) * 60,
        offset_minutes: off,
    })
}

fn search_key() -> impl Strategy<Value = SearchKey> {
    let sys = || prop::sample::select(&SYSTEM_FLAGS[..5]).prop_map(String::from);
    let field = prop_oneof![
        prop::sample::select(&["Bcc", "Cc", "From", "Subject", "To"][..]).prop_map(String::from),
        text(),
    ];
    let leaf = prop_oneof![
        Just(SearchKey::All),
        Just(SearchKey::New),
        Just(SearchKey::Old),
        Just(SearchKey::Recent),
        sys().prop_map(SearchKey::Flag),
        sys().prop_map(SearchKey::NotFlag),
        flag().prop_map(SearchKey::Keyword),
        flag().prop_map(SearchKey::Unkeyword),
        (field, text()).prop_map(|(f, v)| SearchKey::Header(f, v)),
        text().prop_map(SearchKey::Body),
        text().prop_map(SearchKey::Text),
        date().prop_map(SearchKey::Before),
        date().prop_map(SearchKey::On),
        date().prop_map(SearchKey::Since),
        date().prop_map(SearchKey::SentBefore),
        date().prop_map(SearchKey::SentOn),
        date().prop_map(SearchKey::SentSince),
        any::<u32>().prop_map(SearchKey::Larger),
        any::<u32>().prop_map(SearchKey::Smaller),
        set().prop_map(SearchKey::Uid),
        set().prop_map(SearchKey::Seq),
        (0u64..1 << 63).prop_map(SearchKey::ModSeq),
        (1u32..).prop_map(SearchKey::Older),
        (1u32..).prop_map(SearchKey::Younger),
        date().prop_map(SearchKey::SavedBefore),
        date().prop_map(SearchKey::SavedOn),
        date().prop_map(SearchKey::SavedSince),
        Just(SearchKey::SaveDateSupported),
        "[A-Za-z0-9_-]{1,40}".prop_map(SearchKey::EmailId),
        "[A-Za-z0-9_-]{1,40}".prop_map(SearchKey::ThreadId),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| SearchKey::Not(Box::new(k))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| SearchKey::Or(Box::new(a), Box::new(b))),
            prop::collection::vec(inner, 1..4).prop_map(SearchKey::And),
        ]
    })
}

fn section() -> impl Strategy<Value = Section> {
    let names = || prop::collection::vec(text(), 1..4);
    (
        prop::collection::vec(1u32..=u32::MAX, 0..4),
        prop_oneof![
            Just(SectionText::Full),
            Just(SectionText::Header),
            Just(SectionText::Text),
            Just(SectionText::Mime),
            names().prop_map(SectionText::HeaderFields),
            names().prop_map(SectionText::HeaderFieldsNot),
        ],
    )
        .prop_map(|(part, text)| {
            // MIME only follows a part number.
            let text = match text {
                SectionText::Mime if part.is_empty() => SectionText::Header,
                t => t,
            };
            Section { part, text }
        })
}

fn fetch_att() -> impl Strategy<Value = FetchAtt> {
    use FetchAtt::*;
    prop_oneof![
        prop::sample::select(vec![
            Envelope,
            Flags,
            InternalDate,
            Rfc822,
            Rfc822Header,
            Rfc822Size,
            Rfc822Text,
            Body,
            BodyStructure,
            Uid,
            ModSeq,
            SaveDate,
            Preview,
            EmailId,
            ThreadId,
        ]),
        (
            section(),
            prop::option::of((any::<u32>(), 1u32..=u32::MAX)),
            any::<bool>()
        )
            .prop_map(|(section, partial, peek)| Section {
                section,
                partial,
                peek
            }),
        (
            prop::collection::vec(1u32..=u32::MAX, 0..4),
            prop::option::of((any::<u32>(), 1u32..=u32::MAX)),
            any::<bool>()
        )
            .prop_map(|(part, partial, peek)| Binary {
                part,
                partial,
                peek
            }),
        prop::collection::vec(1u32..=u32::MAX, 0..4).prop_map(BinarySize),
    ]
}

/// One message of a MULTIAPPEND: a literal or CATENATE parts (RFC 3502, 4469).
fn append_message() -> impl Strategy<Value = crate::command::AppendMessage> {
    use crate::command::{AppendData, AppendMessage, CatPart};
    let part = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..32).prop_map(CatPart::Text),
        "[ -~]{1,40}".prop_map(CatPart::Url),
    ];
    let data = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(AppendData::Literal),
        prop::collection::vec(part, 1..4).prop_map(AppendData::Catenate),
    ];
    (
        prop::collection::vec(flag(), 0..3),
        prop::option::of(date_time()),
        data,
    )
        .prop_map(|(flags, date, data)| AppendMessage { flags, date, data })
}

fn fetch_atts() -> impl Strategy<Value = Vec<FetchAtt>> {
    use FetchAtt::*;
    prop_oneof![
        Just(vec![Flags, InternalDate, Rfc822Size, Envelope]),
        Just(vec![Flags, InternalDate, Rfc822Size]),
        Just(vec![Flags, InternalDate, Rfc822Size, Envelope, Body]),
        prop::collection::vec(fetch_att(), 1..5),
    ]
}

fn mentions_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(a) => mentions_modseq(a),
        SearchKey::Or(a, b) => mentions_modseq(a) || mentions_modseq(b),
        SearchKey::And(v) => v.iter().any(mentions_modseq),
        _ => false,
    }
}

fn modseq() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(0u64..1 << 63)
}

/// Commands without arguments, and those whose arguments are names.
fn simple_body() -> impl Strategy<Value = CommandBody> {
    use CommandBody::*;
    let mbox = || mailbox_name().prop_map(inbox);
    prop_oneof![
        prop::sample::select(vec![
            Capability,
            Noop,
            Logout,
            StartTls,
            Check,
            Close,
            Unselect,
            Idle,
            Namespace,
            Unauthenticate,
            Expunge { uids: None },
        ]),
        set().prop_map(|s| Expunge { uids: Some(s) }),
        (text(), text()).prop_map(|(user, password)| Login { user, password }),
        ("[A-Z0-9_-]{1,20}", prop::option::of("[A-Za-z0-9+/=]{1,40}"))
            .prop_map(|(mechanism, initial)| Authenticate { mechanism, initial }),
        "[A-Z0-9_-]{1,20}".prop_map(Compress),
        (mbox(), any::<bool>(), any::<bool>(), qresync()).prop_map(
            |(mailbox, condstore, rw, qresync)| {
                if rw {
                    Select {
                        mailbox,
                        condstore,
                        qresync,
                    }
                } else {
                    Examine {
                        mailbox,
                        condstore,
                        qresync,
                    }
                }
            }
        ),
        (
            mbox(),
            prop::collection::vec(
                prop_oneof![
                    prop::sample::select(
                        &[
                            "\\All",
                            "\\Archive",
                            "\\Drafts",
                            "\\Junk",
                            "\\Sent",
                            "\\Trash"
                        ][..]
                    )
                    .prop_map(String::from),
                    flag(),
                ],
                0..3
            )
        )
            .prop_map(|(mailbox, special_use)| Create {
                mailbox,
                special_use
            }),
        mbox().prop_map(Delete),
        (mbox(), mbox()).prop_map(|(a, b)| Rename(a, b)),
        mbox().prop_map(Subscribe),
        mbox().prop_map(Unsubscribe),
        (mailbox_name(), pattern(), any::<bool>()).prop_map(|(reference, pattern, l)| {
            if l {
                List { reference, pattern }
            } else {
                Lsub { reference, pattern }
            }
        }),
        (
            mbox(),
            prop::collection::vec(
                prop::sample::select(vec![
                    StatusItem::Messages,
                    StatusItem::Recent,
                    StatusItem::UidNext,
                    StatusItem::UidValidity,
                    StatusItem::Unseen,
                    StatusItem::HighestModSeq,
                    StatusItem::Size,
                    StatusItem::AppendLimit,
                    StatusItem::MailboxId,
                    StatusItem::Deleted,
                    StatusItem::DeletedStorage,
                ]),
                1..9
            )
        )
            .prop_map(|(mailbox, items)| Status { mailbox, items }),
        prop::collection::vec(("\\PC{0,8}", prop::option::of("\\PC{0,8}")), 0..4).prop_map(Id),
        prop::collection::vec("[A-Z0-9=+._-]{1,12}", 1..4).prop_map(Enable),
        prop::collection::vec("[!-~]{1,12}", 1..4).prop_map(CancelUpdate),
    ]
}

/// `RETURN (...)` options as the parser leaves them: `all` when nothing
/// but CONTEXT is asked, never ALL with PARTIAL.
fn search_return() -> impl Strategy<Value = Option<crate::command::SearchReturn>> {
    let partial = prop::option::of((1u32..50, 1u32..50).prop_map(|(a, b)| (a.min(b), a.max(b))));
    prop::option::of(
        (prop::collection::vec(any::<bool>(), 7), partial).prop_map(|(b, partial)| {
            let mut r = crate::command::SearchReturn {
                min: b[0],
                max: b[1],
                all: b[2] && partial.is_none(),
                count: b[3],
                save: b[4],
                context: b[5],
                update: b[6],
                partial,
            };
            if !(r.min || r.max || r.count || r.save || r.update || r.partial.is_some()) {
                r.all = true;
            }
            r
        }),
    )
}

/// APPEND, SEARCH, FETCH, STORE, COPY, MOVE.
fn message_body() -> impl Strategy<Value = CommandBody> {
    use CommandBody::*;
    let mbox = || mailbox_name().prop_map(inbox);
    prop_oneof![
        (
            mbox(),
            prop::collection::vec(flag(), 0..4),
            prop::option::of(date_time()),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(mailbox, flags, date, message)| Append {
                mailbox,
                flags,
                date,
                message
            }),
        (mbox(), prop::collection::vec(append_message(), 2..4))
            .prop_map(|(mailbox, messages)| AppendMulti { mailbox, messages }),
        (
            any::<bool>(),
            search_return(),
            prop::collection::vec(search_key(), 1..4)
        )
            .prop_map(|(uid, ret, mut keys)| {
                let key = if keys.len() == 1 {
                    keys.remove(0)
                } else {
                    SearchKey::And(keys)
                };
                let has_modseq = mentions_modseq(&key);
                Search {
                    uid,
                    ret,
                    key,
                    has_modseq,
                }
            }),
        (any::<bool>(), set(), fetch_atts(), modseq(), any::<bool>()).prop_map(
            |(uid, set, mut atts, changed_since, vanished)| {
                if changed_since.is_some() && !atts.contains(&FetchAtt::ModSeq) {
                    atts.push(FetchAtt::ModSeq);
                }
                Fetch {
                    uid,
                    set,
                    atts,
                    changed_since,
                    // RFC 7162 §3.2.6: UID FETCH with CHANGEDSINCE only.
                    vanished: vanished && uid && changed_since.is_some(),
                }
            }
        ),
        (
            any::<bool>(),
            set(),
            prop::sample::select(vec![StoreMode::Replace, StoreMode::Add, StoreMode::Remove]),
            any::<bool>(),
            prop::collection::vec(flag(), 0..4),
            modseq()
        )
            .prop_map(|(uid, set, mode, silent, flags, unchanged_since)| Store {
                uid,
                set,
                mode,
                silent,
                flags,
                unchanged_since
            }),
        (any::<bool>(), set(), mbox(), any::<bool>()).prop_map(|(uid, set, mailbox, mv)| {
            if mv {
                Move { uid, set, mailbox }
            } else {
                Copy { uid, set, mailbox }
            }
        }),
    ]
}

/// GENURLAUTH, RESETKEY, URLFETCH (RFC 4467 §9, RFC 5524 §4).
fn urlauth_body() -> impl Strategy<Value = CommandBody> {
    use crate::command::UrlFetchItem;
    let url = || "[ -~]{0,30}";
    let mech = || "[A-Z0-9.-]{1,10}";
    let item = prop_oneof![
        url().prop_map(|url| UrlFetchItem {
            url,
            extended: false,
            structure: false,
            binary: false,
            body: true,
        }),
        (url(), any::<bool>(), 0u8..3).prop_map(|(url, structure, mode)| UrlFetchItem {
            url,
            extended: true,
            structure,
            binary: mode == 1,
            body: mode == 2 || (mode == 0 && !structure),
        }),
    ];
    prop_oneof![
        prop::collection::vec((url(), mech()), 1..3).prop_map(CommandBody::GenUrlAuth),
        (
            prop::option::of(mailbox_name().prop_map(inbox)),
            prop::collection::vec(mech(), 0..3)
        )
            .prop_map(|(mailbox, mechanisms)| CommandBody::ResetKey {
                mechanisms: if mailbox.is_some() {
                    mechanisms
                } else {
                    Vec::new()
                },
                mailbox,
            }),
        prop::collection::vec(item, 1..4).prop_map(CommandBody::UrlFetch),
    ]
}

pub(super) fn command() -> impl Strategy<Value = Command> {
    (
        tag(),
        prop_oneof![2 => simple_body(), 2 => message_body(), 1 => sort_body(), 1 => urlauth_body()],
    )
        .prop_map(|(tag, body)| Command { tag, body })
}

/// SORT and THREAD (RFC 5256 §3, RFC 5957).
fn sort_body() -> impl Strategy<Value = CommandBody> {
    use CommandBody::*;
    let key = prop::sample::select(vec![
        SortKey::Arrival,
        SortKey::Cc,
        SortKey::Date,
        SortKey::From,
        SortKey::Size,
        SortKey::Subject,
        SortKey::To,
        SortKey::DisplayFrom,
        SortKey::DisplayTo,
    ]);
    let criterion = (key, any::<bool>()).prop_map(|(key, reverse)| SortCriterion { key, reverse });
    let keys = || {
        prop::collection::vec(search_key(), 1..4).prop_map(|mut keys| {
            if keys.len() == 1 {
                keys.remove(0)
            } else {
                SearchKey::And(keys)
            }
        })
    };
    prop_oneof![
        (
            any::<bool>(),
            search_return(),
            prop::collection::vec(criterion, 1..5),
            keys()
        )
            .prop_map(|(uid, ret, criteria, key)| {
                let has_modseq = mentions_modseq(&key);
                Sort {
                    uid,
                    ret,
                    criteria,
                    key,
                    has_modseq,
                }
            }),
        (
            any::<bool>(),
            prop::sample::select(vec![
                ThreadAlgorithm::OrderedSubject,
                ThreadAlgorithm::References
            ]),
            keys()
        )
            .prop_map(|(uid, algorithm, key)| Thread {
                uid,
                algorithm,
                key
            }),
    ]
}
