//! Untagged data responses (RFC 3501 §7.2–§7.4, and the extensions' own:
//! ENABLED, ID, NAMESPACE, SORT and THREAD) as one type, written by one
//! serializer. Status responses (`* OK [CODE] text`, tagged lines) are
//! [`super::StatusLine`]; values inside these ([`Value`]) pick NIL, quoted
//! or literal themselves.
//!
//! The streamed FETCH writes a response's items in pieces as they are read
//! (a body may be a byte range read later); it opens and closes each
//! response with [`fetch_open`] and [`fetch_close`].

use super::{mailbox_name, Buf, Value};
use std::fmt::Write as _;

/// The mailbox hierarchy delimiter (one personal namespace, RFC 2342).
pub const DELIMITER: &str = "/";

/// One untagged data response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data<'a> {
    /// `CAPABILITY caps` (§7.2.1).
    Capability(&'a str),
    /// `ENABLED cap ...` (RFC 5161 §3.2).
    Enabled(&'a [&'a str]),
    /// `NAMESPACE`: one personal namespace with the `/` delimiter, no
    /// others (RFC 2342 §5).
    Namespace,
    /// `ID (field value ...)` (RFC 2971 §3.2).
    Id(&'a [(&'a str, &'a str)]),
    /// `FLAGS (flag ...)` (§7.2.6).
    Flags(&'a [String]),
    /// `n EXISTS` (§7.3.1).
    Exists(u32),
    /// `n RECENT` (§7.3.2).
    Recent(u32),
    /// `n EXPUNGE` (§7.4.1).
    Expunge(u32),
    /// `VANISHED [(EARLIER)] uids` (RFC 7162 §3.2.10): sorted, disjoint
    /// UID ranges. Long sets are split over several responses of at most
    /// [`VANISHED_RANGES`] ranges each, so no line grows without bound.
    Vanished {
        /// `(EARLIER)`: about messages the client may not have had in its
        /// view (SELECT QRESYNC, UID FETCH VANISHED); no renumbering.
        earlier: bool,
        /// The UIDs as inclusive ranges.
        ranges: &'a [(u32, u32)],
    },
    /// `n FETCH (items)` (§7.4.2), the items already as values.
    Fetch {
        /// Message sequence number.
        seq: u32,
        /// Item names and values, alternating.
        items: &'a [Value],
    },
    /// `uid UIDFETCH (items)` (UIDONLY, RFC 9586 §3.3): FETCH by UID.
    UidFetch {
        /// The message's UID.
        uid: u32,
        /// Item names and values, alternating.
        items: &'a [Value],
    },
    /// `SEARCH n ...` (§7.2.5), with `(MODSEQ m)` under CONDSTORE
    /// (RFC 7162 §3.1.5).
    Search {
        /// Sequence numbers or UIDs.
        nums: &'a [u32],
        /// The highest modseq of the messages found, when asked for.
        modseq: Option<u64>,
    },
    /// `SORT n ...` (RFC 5256 §4), with `(MODSEQ m)` under CONDSTORE
    /// (RFC 7162 §3.1.5).
    Sort {
        /// Sequence numbers or UIDs, in sorted order.
        nums: &'a [u32],
        /// The highest modseq of the messages found, when asked for.
        modseq: Option<u64>,
    },
    /// `THREAD (..)(..)` (RFC 5256 §4).
    Thread(&'a super::Threads),
    /// `ESEARCH ...` (RFC 4731, RFC 5267; `esearch.rs`).
    ESearch(super::ESearch<'a>),
    /// `LIST (attrs) "/" name` or `LSUB ...` (§7.2.2, §7.2.3); the name in
    /// UTF-8, sent as modified UTF-7.
    List {
        /// LSUB rather than LIST.
        lsub: bool,
        /// Name attributes (`\Noselect`, `\HasChildren`, `\Sent`, ...).
        attrs: &'a [String],
        /// The mailbox name.
        name: &'a str,
    },
    /// `LIST (attrs) "/" name (extended items)` (RFC 5258 §3.5, §6
    /// `mbox-list-extended`): `("CHILDINFO" ("SUBSCRIBED"))` for a parent
    /// of subscribed names (RECURSIVEMATCH), `("OLDNAME" ("old"))` for a
    /// renamed mailbox (RFC 5465 §5.4).
    ListExt {
        /// Name attributes.
        attrs: &'a [String],
        /// The mailbox name.
        name: &'a str,
        /// `CHILDINFO ("SUBSCRIBED")`.
        childinfo: bool,
        /// `OLDNAME (old)`.
        oldname: Option<&'a str>,
    },
    /// `QUOTAROOT mailbox root ...` (RFC 9208 §5.2).
    QuotaRoot {
        /// The mailbox asked about.
        mailbox: &'a str,
        /// Its quota roots (none: no quota applies).
        roots: &'a [&'a str],
    },
    /// `QUOTA root (resource usage limit ...)` (RFC 9208 §5.1); usage
    /// and limit in the resource's units (STORAGE: 1024 octets).
    Quota {
        /// The quota root.
        root: &'a str,
        /// Resource name, usage, limit.
        resources: &'a [(&'a str, u64, u64)],
    },
    /// `STATUS name (item n ...)` (§7.2.4).
    Status {
        /// The mailbox name (UTF-8).
        name: &'a str,
        /// Item names and values (numbers, but `MAILBOXID (id)`, RFC
        /// 8474 §4).
        items: &'a [(&'a str, Value)],
    },
}

fn atoms(list: &[impl AsRef<str>]) -> Value {
    Value::List(
        list.iter()
            .map(|a| Value::Atom(a.as_ref().to_owned()))
            .collect(),
    )
}

/// Most UID ranges in one VANISHED response (a line of at most about
/// 11 KB; RFC 7162 §4 asks clients to take 8 KB lines and more).
pub const VANISHED_RANGES: usize = 500;

impl Data<'_> {
    /// Serialize onto `out`: `* ...` CRLF, mailbox names in modified
    /// UTF-7 (IMAP4rev1, RFC 3501 §5.1.3).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_as(out, false)
    }

    /// [`Data::encode`], with mailbox names in UTF-8 when `utf8_names`
    /// (IMAP4rev2, RFC 9051 §5.1; UTF8=ACCEPT, RFC 6855 §3).
    pub fn encode_as(&self, out: &mut Vec<u8>, utf8_names: bool) {
        let mailbox_name = |name: &str| match utf8_names {
            true => super::utf8_mailbox_name(name),
            false => mailbox_name(name),
        };
        if let Data::Vanished { earlier, ranges } = self {
            for chunk in ranges.chunks(VANISHED_RANGES) {
                out.extend_from_slice(if *earlier {
                    b"* VANISHED (EARLIER) "
                } else {
                    b"* VANISHED "
                });
                for (k, &(a, b)) in chunk.iter().enumerate() {
                    let sep = if k > 0 { "," } else { "" };
                    let _ = if a == b {
                        write!(Buf(out), "{sep}{a}")
                    } else {
                        write!(Buf(out), "{sep}{a}:{b}")
                    };
                }
                out.extend_from_slice(b"\r\n");
            }
            return;
        }
        out.extend_from_slice(b"* ");
        let values = |out: &mut Vec<u8>, head: &str, vals: &[Value]| {
            out.extend_from_slice(head.as_bytes());
            for v in vals {
                out.push(b' ');
                v.encode(out);
            }
        };
        match self {
            Data::Capability(caps) => {
                out.extend_from_slice(b"CAPABILITY ");
                out.extend_from_slice(caps.as_bytes());
            }
            Data::Enabled(caps) => {
                out.extend_from_slice(b"ENABLED");
                for c in *caps {
                    out.push(b' ');
                    out.extend_from_slice(c.as_bytes());
                }
            }
            Data::Namespace => {
                out.extend_from_slice(b"NAMESPACE ((\"\" \"");
                out.extend_from_slice(DELIMITER.as_bytes());
                out.extend_from_slice(b"\")) NIL NIL");
            }
            Data::Id(fields) => {
                let list = fields
                    .iter()
                    .flat_map(|(k, v)| [Value::str(*k), Value::str(*v)])
                    .collect();
                values(out, "ID", &[Value::List(list)]);
            }
            Data::Flags(flags) => values(out, "FLAGS", &[atoms(flags)]),
            Data::Exists(n) => {
                let _ = write!(Buf(out), "{n} EXISTS");
            }
            Data::Recent(n) => {
                let _ = write!(Buf(out), "{n} RECENT");
            }
            Data::Expunge(n) => {
                let _ = write!(Buf(out), "{n} EXPUNGE");
            }
            Data::Fetch { seq, items } => {
                let _ = write!(Buf(out), "{seq} FETCH ");
                super::encode_list(items, out);
            }
            Data::UidFetch { uid, items } => {
                let _ = write!(Buf(out), "{uid} UIDFETCH ");
                super::encode_list(items, out);
            }
            Data::Search { nums, modseq } => {
                out.extend_from_slice(b"SEARCH");
                for n in *nums {
                    let _ = write!(Buf(out), " {n}");
                }
                if let Some(m) = modseq {
                    let _ = write!(Buf(out), " (MODSEQ {m})");
                }
            }
            Data::Sort { nums, modseq } => {
                out.extend_from_slice(b"SORT");
                for n in *nums {
                    let _ = write!(Buf(out), " {n}");
                }
                if let Some(m) = modseq {
                    let _ = write!(Buf(out), " (MODSEQ {m})");
                }
            }
            Data::Thread(threads) => {
                out.extend_from_slice(b"THREAD");
                threads.encode(out);
            }
            Data::ESearch(e) => e.encode(out),
            Data::List { lsub, attrs, name } => values(
                out,
                if *lsub { "LSUB" } else { "LIST" },
                &[atoms(attrs), Value::str(DELIMITER), mailbox_name(name)],
            ),
            Data::ListExt {
                attrs,
                name,
                childinfo,
                oldname,
            } => {
                let mut vals = vec![atoms(attrs), Value::str(DELIMITER), mailbox_name(name)];
                let mut ext = Vec::new();
                if *childinfo {
                    ext.push(Value::str("CHILDINFO"));
                    ext.push(Value::List(vec![Value::str("SUBSCRIBED")]));
                }
                if let Some(old) = oldname {
                    ext.push(Value::str("OLDNAME"));
                    ext.push(Value::List(vec![mailbox_name(old)]));
                }
                if !ext.is_empty() {
                    vals.push(Value::List(ext));
                }
                values(out, "LIST", &vals);
            }
            Data::QuotaRoot { mailbox, roots } => {
                let mut vals = vec![mailbox_name(mailbox)];
                vals.extend(roots.iter().map(|r| Value::str(*r)));
                values(out, "QUOTAROOT", &vals);
            }
            Data::Quota { root, resources } => {
                let list = resources
                    .iter()
                    .flat_map(|(name, used, limit)| {
                        [
                            Value::Atom((*name).to_owned()),
                            Value::Num(*used),
                            Value::Num(*limit),
                        ]
                    })
                    .collect();
                values(out, "QUOTA", &[Value::str(*root), Value::List(list)]);
            }
            Data::Status { name, items } => {
                let list = items
                    .iter()
                    .flat_map(|(k, v)| [Value::Atom((*k).to_owned()), v.clone()])
                    .collect();
                values(out, "STATUS", &[mailbox_name(name), Value::List(list)]);
            }
            // Written above, line by line.
            Data::Vanished { .. } => {}
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The start of a streamed FETCH response: `* seq FETCH (`.
pub fn fetch_open(out: &mut Vec<u8>, seq: u32) {
    out.extend_from_slice(b"* ");
    push_num(out, u64::from(seq));
    out.extend_from_slice(b" FETCH (");
}

/// `n` in decimal onto `out` (the numbers of every response of a FETCH
/// or STORE over a whole mailbox, without the formatting machinery).
pub fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// The start of a streamed UIDFETCH response (UIDONLY, RFC 9586 §3.3):
/// `* uid UIDFETCH (`.
pub fn uidfetch_open(out: &mut Vec<u8>, uid: u32) {
    out.extend_from_slice(b"* ");
    push_num(out, u64::from(uid));
    out.extend_from_slice(b" UIDFETCH (");
}

/// The end of a streamed FETCH response: `)` CRLF.
pub fn fetch_close(out: &mut Vec<u8>) {
    out.extend_from_slice(b")\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 1, 9, 10, 99, 100, 4_294_967_295, u64::MAX] {
            let mut out = b"x".to_vec();
            push_num(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
        let mut out = Vec::new();
        fetch_open(&mut out, 42);
        uidfetch_open(&mut out, 7);
        assert_eq!(out, b"* 42 FETCH (* 7 UIDFETCH (");
    }

    fn enc(d: &Data<'_>) -> String {
        let mut out = Vec::new();
        d.encode(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn every_kind_of_data_reads_as_the_rfc_grammar_says() {
        let flags = ["\\Seen".to_owned(), "$Junk".to_owned()];
        let attrs = ["\\HasNoChildren".to_owned()];
        let uid9 = [Value::Atom("UID".into()), Value::Num(9)];
        let mut threads = super::super::Threads::default();
        let a = threads.push(Some(3));
        let b = threads.push(Some(5));
        threads.nodes[a].children.push(b);
        threads.roots = vec![a, threads.push(Some(1))];
        let no_threads = super::super::Threads::default();
        let status = [
            ("MESSAGES", Value::Num(2)),
            ("UIDNEXT", Value::Num(5)),
            ("MAILBOXID", Value::List(vec![Value::Atom("F1-2".into())])),
        ];
        let cases: Vec<(Data<'_>, &str)> = vec![
            (
                Data::Capability("IMAP4rev1 IDLE"),
                "* CAPABILITY IMAP4rev1 IDLE\r\n",
            ),
            (Data::Enabled(&["CONDSTORE"]), "* ENABLED CONDSTORE\r\n"),
            (Data::Enabled(&[]), "* ENABLED\r\n"),
            (Data::Namespace, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"),
            (
                Data::Id(&[("name", "minimail")]),
                "* ID (\"name\" \"minimail\")\r\n",
            ),
            (Data::Flags(&flags), "* FLAGS (\\Seen $Junk)\r\n"),
            (Data::Exists(3), "* 3 EXISTS\r\n"),
            (Data::Recent(0), "* 0 RECENT\r\n"),
            (Data::Expunge(7), "* 7 EXPUNGE\r\n"),
            (
                Data::Fetch {
                    seq: 2,
                    items: &uid9,
                },
                "* 2 FETCH (UID 9)\r\n",
            ),
            (
                Data::UidFetch {
                    uid: 9,
                    items: &uid9[2..],
                },
                "* 9 UIDFETCH ()\r\n",
            ),
            (
                Data::Search {
                    nums: &[],
                    modseq: None,
                },
                "* SEARCH\r\n",
            ),
            (
                Data::Search {
                    nums: &[1, 4],
                    modseq: Some(12),
                },
                "* SEARCH 1 4 (MODSEQ 12)\r\n",
            ),
            (
                Data::Sort {
                    nums: &[],
                    modseq: None,
                },
                "* SORT\r\n",
            ),
            (
                Data::Sort {
                    nums: &[5, 2, 9],
                    modseq: Some(7),
                },
                "* SORT 5 2 9 (MODSEQ 7)\r\n",
            ),
            (Data::Thread(&no_threads), "* THREAD\r\n"),
            (Data::Thread(&threads), "* THREAD (3 5)(1)\r\n"),
            (
                Data::List {
                    lsub: false,
                    attrs: &attrs,
                    name: "Entw\u{fc}rfe",
                },
                "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"\r\n",
            ),
            (
                Data::List {
                    lsub: true,
                    attrs: &[],
                    name: "",
                },
                "* LSUB () \"/\" \"\"\r\n",
            ),
            (
                Data::ListExt {
                    attrs: &attrs,
                    name: "a",
                    childinfo: true,
                    oldname: Some("b"),
                },
                "* LIST (\\HasNoChildren) \"/\" \"a\" (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"b\"))\r\n",
            ),
            (
                Data::Status {
                    name: "INBOX",
                    items: &status,
                },
                "* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 5 MAILBOXID (F1-2))\r\n",
            ),
        ];
        for (data, want) in cases {
            assert_eq!(enc(&data), want, "{data:?}");
        }
    }

    #[test]
    fn vanished_is_split_into_bounded_lines() {
        let mut out = Vec::new();
        Data::Vanished {
            earlier: true,
            ranges: &[(1, 1), (3, 5)],
        }
        .encode(&mut out);
        assert_eq!(out, b"* VANISHED (EARLIER) 1,3:5\r\n");
        out.clear();
        Data::Vanished {
            earlier: false,
            ranges: &[],
        }
        .encode(&mut out);
        assert!(out.is_empty(), "nothing vanished: no response");
        let many: Vec<(u32, u32)> = (0..1001u32).map(|k| (2 * k + 1, 2 * k + 1)).collect();
        out.clear();
        Data::Vanished {
            earlier: false,
            ranges: &many,
        }
        .encode(&mut out);
        let text = String::from_utf8(out).expect("ASCII");
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 3, "500 + 500 + 1 ranges");
        assert!(lines
            .iter()
            .all(|l| l.starts_with("* VANISHED ") && l.len() < 12_000));
        assert!(lines[2].ends_with(" 2001"));
    }

    #[test]
    fn streamed_fetch_pieces_match_the_whole_response() {
        let mut streamed = Vec::new();
        fetch_open(&mut streamed, 5);
        Value::Atom("UID".into()).encode(&mut streamed);
        streamed.push(b' ');
        Value::Num(8).encode(&mut streamed);
        fetch_close(&mut streamed);
        let whole = enc(&Data::Fetch {
            seq: 5,
            items: &[Value::Atom("UID".into()), Value::Num(8)],
        });
        assert_eq!(String::from_utf8_lossy(&streamed), whole);
    }
}
