//! Property tests `parse(serialize(x)) == x` for whole IMAP commands: a
//! test-only serializer writes a [`Command`] in RFC 3501 §9 syntax, using
//! the freedoms the grammar gives a client (case of names, atom / quoted /
//! literal / LITERAL+ strings, modified UTF-7 or raw UTF-8 mailbox names,
//! `date-day-fixed` spellings, macro or list FETCH items), and
//! `parse_command` must give back the same value.
//!
//! Every `CommandBody` variant is generated: CAPABILITY, NOOP, LOGOUT,
//! STARTTLS, LOGIN, AUTHENTICATE (RFC 4959), SELECT/EXAMINE (CONDSTORE,
//! RFC 7162), CREATE (USE, RFC 6154), DELETE, RENAME, SUBSCRIBE,
//! UNSUBSCRIBE, LIST/LSUB (RETURN), STATUS, APPEND (flags, date-time),
//! CHECK, CLOSE, UNSELECT, EXPUNGE and UID EXPUNGE (RFC 4315), SEARCH
//! (every key, CHARSET), FETCH (macros, sections, partials, CHANGEDSINCE),
//! STORE (UNCHANGEDSINCE), COPY, MOVE (RFC 6851), SORT and THREAD
//! (RFC 5256, RFC 5957), the UID forms, IDLE,
//! NAMESPACE, ID (RFC 2971) and ENABLE (RFC 5161).

use crate::command::*;
use proptest::prelude::*;

mod strategies;
mod writer;

use writer::{utf7, W};

// ---- the serializer ---------------------------------------------------

/// A sequence set as text (QRESYNC parameters are built as one string).
fn set_text(s: &SequenceSet) -> String {
    let mut w = W {
        out: Vec::new(),
        bits: 1,
    };
    w.set(s);
    String::from_utf8_lossy(&w.out).into_owned()
}

fn search_key(w: &mut W, k: &SearchKey) {
    match k {
        SearchKey::All => w.name("ALL"),
        SearchKey::New => w.name("NEW"),
        SearchKey::Old => w.name("OLD"),
        SearchKey::Recent => w.name("RECENT"),
        SearchKey::Flag(f) => w.name(&f[1..]),
        SearchKey::NotFlag(f) => w.name("UN").name(&f[1..]),
        SearchKey::Keyword(f) => w.name("KEYWORD ").flag(f),
        SearchKey::Unkeyword(f) => w.name("UNKEYWORD ").flag(f),
        SearchKey::Header(f, v) => {
            let short = ["Bcc", "Cc", "From", "Subject", "To"].contains(&f.as_str());
            if short && w.flip() {
                w.name(f);
            } else {
                w.name("HEADER ").astring(f.as_bytes());
            }
            w.raw(" ").astring(v.as_bytes())
        }
        SearchKey::Body(s) => w.name("BODY ").astring(s.as_bytes()),
        SearchKey::Text(s) => w.name("TEXT ").astring(s.as_bytes()),
        SearchKey::Before(d) => w.name("BEFORE ").date(d),
        SearchKey::On(d) => w.name("ON ").date(d),
        SearchKey::Since(d) => w.name("SINCE ").date(d),
        SearchKey::SentBefore(d) => w.name("SENTBEFORE ").date(d),
        SearchKey::SentOn(d) => w.name("SENTON ").date(d),
        SearchKey::SentSince(d) => w.name("SENTSINCE ").date(d),
        SearchKey::Larger(n) => w.name("LARGER ").raw(&n.to_string()),
        SearchKey::Smaller(n) => w.name("SMALLER ").raw(&n.to_string()),
        SearchKey::Older(n) => w.name("OLDER ").raw(&n.to_string()),
        SearchKey::Younger(n) => w.name("YOUNGER ").raw(&n.to_string()),
        SearchKey::SavedBefore(d) => w.name("SAVEDBEFORE ").date(d),
        SearchKey::SavedOn(d) => w.name("SAVEDON ").date(d),
        SearchKey::SavedSince(d) => w.name("SAVEDSINCE ").date(d),
        SearchKey::SaveDateSupported => w.name("SAVEDATESUPPORTED"),
        SearchKey::EmailId(id) => w.name("EMAILID ").raw(id),
        SearchKey::ThreadId(id) => w.name("THREADID ").raw(id),
        SearchKey::Uid(s) => w.name("UID ").set(s),
        SearchKey::Seq(s) => w.set(s),
        SearchKey::ModSeq(n) => {
            // Bare, or with its entry-name (always a quoted string, RFC
            // 7162 §7) and entry-type-req, which are accepted and ignored.
            w.name("MODSEQ ");
            if w.flip() {
                w.raw("\"/flags/\\\\Seen\" ");
                let kind = if w.flip() { "all " } else { "shared " };
                w.name(kind);
            }
            w.raw(&n.to_string())
        }
        SearchKey::Not(k) => {
            w.name("NOT ");
            search_key(w, k);
            w
        }
        SearchKey::Or(a, b) => {
            w.name("OR ");
            search_key(w, a);
            w.raw(" ");
            search_key(w, b);
            w
        }
        SearchKey::And(v) => {
            w.raw("(");
            search_keys(w, v);
            w.raw(")")
        }
    };
}

fn search_keys(w: &mut W, v: &[SearchKey]) {
    for (n, k) in v.iter().enumerate() {
        if n > 0 {
            w.raw(" ");
        }
        search_key(w, k);
    }
}

fn section(w: &mut W, s: &Section) {
    let part: Vec<String> = s.part.iter().map(u32::to_string).collect();
    w.raw(&part.join("."));
    if !part.is_empty() && s.text != SectionText::Full {
        w.raw(".");
    }
    let fields = |w: &mut W, name: &str, f: &[String]| {
        w.name(name).raw(" (");
        for (n, f) in f.iter().enumerate() {
            if n > 0 {
                w.raw(" ");
            }
            w.astring(f.as_bytes());
        }
        w.raw(")");
    };
    match &s.text {
        SectionText::Full => {}
        SectionText::Header => {
            w.name("HEADER");
        }
        SectionText::Text => {
            w.name("TEXT");
        }
        SectionText::Mime => {
            w.name("MIME");
        }
        SectionText::HeaderFields(f) => fields(w, "HEADER.FIELDS", f),
        SectionText::HeaderFieldsNot(f) => fields(w, "HEADER.FIELDS.NOT", f),
    }
}

fn dotted(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A `literal` or (RFC 3516) `literal8`, synchronizing or LITERAL+.
fn any_literal(w: &mut W, s: &[u8]) {
    let eight = if w.flip() { "~" } else { "" };
    let plus = if w.flip() { "+" } else { "" };
    w.raw(&format!("{eight}{{{}{plus}}}\r\n", s.len()));
    w.out.extend_from_slice(s);
}

fn fetch_att(w: &mut W, a: &FetchAtt) {
    use FetchAtt::*;
    let name = match a {
        Envelope => "ENVELOPE",
        Flags => "FLAGS",
        InternalDate => "INTERNALDATE",
        Rfc822 => "RFC822",
        Rfc822Header => "RFC822.HEADER",
        Rfc822Size => "RFC822.SIZE",
        Rfc822Text => "RFC822.TEXT",
        Body => "BODY",
        BodyStructure => "BODYSTRUCTURE",
        Uid => "UID",
        ModSeq => "MODSEQ",
        SaveDate => "SAVEDATE",
        Preview => "PREVIEW",
        EmailId => "EMAILID",
        ThreadId => "THREADID",
        Section {
            section: s,
            partial,
            peek,
        } => {
            w.name(if *peek { "BODY.PEEK[" } else { "BODY[" });
            section(w, s);
            w.raw("]");
            if let Some((o, l)) = partial {
                w.raw(&format!("<{o}.{l}>"));
            }
            return;
        }
        Binary {
            part,
            partial,
            peek,
        } => {
            w.name(if *peek { "BINARY.PEEK[" } else { "BINARY[" });
            w.raw(&dotted(part)).raw("]");
            if let Some((o, l)) = partial {
                w.raw(&format!("<{o}.{l}>"));
            }
            return;
        }
        BinarySize(part) => {
            w.name("BINARY.SIZE[").raw(&dotted(part)).raw("]");
            return;
        }
    };
    w.name(name);
}

/// FETCH items: a macro when they are one, a lone item, or a list; the
/// MODSEQ that CHANGEDSINCE implies may be left out.
fn fetch_atts(w: &mut W, atts: &[FetchAtt], changed_since: bool) {
    use FetchAtt::*;
    let mut atts = atts;
    if let [rest @ .., ModSeq] = atts {
        if changed_since && !rest.is_empty() && !rest.contains(&ModSeq) && w.flip() {
            atts = rest;
        }
    }
    let macros: [(&str, &[FetchAtt]); 3] = [
        ("ALL", &[Flags, InternalDate, Rfc822Size, Envelope]),
        ("FAST", &[Flags, InternalDate, Rfc822Size]),
        ("FULL", &[Flags, InternalDate, Rfc822Size, Envelope, Body]),
    ];
    if let Some((m, _)) = macros.iter().find(|(_, v)| *v == atts) {
        if w.flip() {
            w.name(m);
            return;
        }
    }
    let alone = atts.len() == 1 && w.flip();
    if !alone {
        w.raw("(");
    }
    for (n, a) in atts.iter().enumerate() {
        if n > 0 {
            w.raw(" ");
        }
        fetch_att(w, a);
    }
    if !alone {
        w.raw(")");
    }
}

fn uid(w: &mut W, uid: bool) -> &mut W {
    if uid {
        w.name("UID ");
    }
    w
}

/// SORT's and THREAD's `search-criteria`: a charset, then the keys.
fn sort_search_criteria(w: &mut W, key: &SearchKey) {
    let cs = if w.flip() { "UTF-8" } else { "US-ASCII" };
    w.astring(cs.as_bytes()).raw(" ");
    match key {
        SearchKey::And(v) if v.len() > 1 && w.flip() => search_keys(w, v),
        k => search_key(w, k),
    }
}

/// One complete command (literals inline, no final CRLF) that means `c`.
fn serialize(c: &Command, bits: u64) -> Vec<u8> {
    use CommandBody::*;
    let mut w = W {
        out: Vec::new(),
        bits: bits | 1,
    };
    let w = &mut w;
    w.raw(&c.tag).raw(" ");
    match &c.body {
        Capability | Noop | Logout | StartTls | Check | Close | Unselect | Idle | Namespace
        | Unauthenticate => {
            w.name(c.body.name());
        }
        Expunge { uids: None } => {
            w.name("EXPUNGE");
        }
        Expunge { uids: Some(s) } => {
            w.name("UID EXPUNGE ").set(s);
        }
        Login { user, password } => {
            w.name("LOGIN ")
                .astring(user.as_bytes())
                .raw(" ")
                .astring(password.as_bytes());
        }
        Compress(mechanism) => {
            w.name("COMPRESS ").name(mechanism);
        }
        Authenticate { mechanism, initial } => {
            w.name("AUTHENTICATE ").name(mechanism);
            if let Some(i) = initial {
                w.raw(" ").raw(i);
            }
        }
        Select {
            mailbox,
            condstore,
            qresync,
        }
        | Examine {
            mailbox,
            condstore,
            qresync,
        } => {
            w.name(c.body.name()).raw(" ").mailbox(mailbox);
            let mut params = Vec::new();
            if *condstore {
                params.push("CONDSTORE".to_owned());
            }
            if let Some(q) = qresync {
                let mut p = format!("QRESYNC ({} {}", q.uidvalidity, q.modseq);
                if let Some(k) = &q.known_uids {
                    p.push(' ');
                    p.push_str(&set_text(k));
                }
                if let Some((s, u)) = &q.seq_match {
                    p.push_str(&format!(" ({} {})", set_text(s), set_text(u)));
                }
                p.push(')');
                params.push(p);
            }
            if w.flip() {
                params.reverse();
            }
            if !params.is_empty() {
                w.raw(" (").raw(&params.join(" ")).raw(")");
            }
        }
        Create {
            mailbox,
            special_use,
        } => {
            w.name("CREATE ").mailbox(mailbox);
            if !special_use.is_empty() || w.flip() {
                w.raw(" (").name("USE").raw(" (");
                for (n, u) in special_use.iter().enumerate() {
                    if n > 0 {
                        w.raw(" ");
                    }
                    w.flag(u);
                }
                w.raw("))");
            }
        }
        Delete(m) | Subscribe(m) | Unsubscribe(m) => {
            w.name(c.body.name()).raw(" ").mailbox(m);
        }
        GetQuota(root) => {
            w.name("GETQUOTA ").astring(root.as_bytes());
        }
        GetQuotaRoot(m) => {
            w.name("GETQUOTAROOT ").mailbox(m);
        }
        SetQuota(root, limits) => {
            w.name("SETQUOTA ").astring(root.as_bytes()).raw(" (");
            for (k, (name, limit)) in limits.iter().enumerate() {
                if k > 0 {
                    w.raw(" ");
                }
                w.name(name).raw(&format!(" {limit}"));
            }
            w.raw(")");
        }
        Rename(a, b) => {
            w.name("RENAME ").mailbox(a).raw(" ").mailbox(b);
        }
        List { reference, pattern } | Lsub { reference, pattern } => {
            w.name(c.body.name()).raw(" ");
            let r = utf7(reference);
            w.astring(r.as_bytes()).raw(" ").list_mailbox(pattern);
            // LIST with RETURN is the extended form (ListExtended).
            if matches!(c.body, Lsub { .. }) && w.flip() {
                w.raw(" ").name("RETURN (SPECIAL-USE)");
            }
        }
        Status { mailbox, items } => {
            w.name("STATUS ").mailbox(mailbox).raw(" (");
            for (n, i) in items.iter().enumerate() {
                if n > 0 {
                    w.raw(" ");
                }
                let item = match i {
                    crate::command::StatusItem::DeletedStorage => "DELETED-STORAGE".to_owned(),
                    i => format!("{i:?}"),
                };
                w.name(&item);
            }
            w.raw(")");
        }
        Append {
            mailbox,
            flags,
            date,
            message,
        } => {
            w.name("APPEND ").mailbox(mailbox);
            if !flags.is_empty() || w.flip() {
                w.raw(" ").flags(flags);
            }
            if let Some(d) = date {
                w.raw(" ").date_time(d);
            }
            w.raw(" ").string(message);
        }
        GenUrlAuth(items) => {
            w.name("GENURLAUTH");
            for (url, mech) in items {
                w.raw(" ").astring(url.as_bytes()).raw(" ").raw(mech);
            }
        }
        ResetKey {
            mailbox,
            mechanisms,
        } => {
            w.name("RESETKEY");
            if let Some(m) = mailbox {
                w.raw(" ").mailbox(m);
                for mech in mechanisms {
                    w.raw(" ").raw(mech);
                }
            }
        }
        UrlFetch(items) => {
            w.name("URLFETCH");
            for i in items {
                w.raw(" ");
                if !i.extended {
                    w.astring(i.url.as_bytes());
                    continue;
                }
                w.raw("(").astring(i.url.as_bytes());
                if i.structure {
                    w.raw(" ").name("BODYPARTSTRUCTURE");
                }
                if i.binary {
                    w.raw(" ").name("BINARY");
                }
                if i.body && (i.structure || w.flip()) {
                    w.raw(" ").name("BODY");
                }
                w.raw(")");
            }
        }
        AppendMulti { mailbox, messages } => {
            use crate::command::{AppendData, CatPart};
            w.name("APPEND ").mailbox(mailbox);
            for m in messages {
                if !m.flags.is_empty() || w.flip() {
                    w.raw(" ").flags(&m.flags);
                }
                if let Some(d) = &m.date {
                    w.raw(" ").date_time(d);
                }
                w.raw(" ");
                match &m.data {
                    AppendData::Literal(b) => any_literal(w, b),
                    AppendData::Catenate(parts) => {
                        w.name("CATENATE").raw(" (");
                        for (k, p) in parts.iter().enumerate() {
                            if k > 0 {
                                w.raw(" ");
                            }
                            match p {
                                CatPart::Text(t) => {
                                    w.name("TEXT").raw(" ");
                                    any_literal(w, t);
                                }
                                CatPart::Url(u) => {
                                    w.name("URL").raw(" ").astring(u.as_bytes());
                                }
                            }
                        }
                        w.raw(")");
                    }
                }
            }
        }
        Search {
            uid: u, ret, key, ..
        } => {
            uid(w, *u).name("SEARCH");
            if let Some(r) = ret {
                search_return(w, r);
            }
            if w.flip() {
                let cs = if w.flip() { "UTF-8" } else { "US-ASCII" };
                w.raw(" ").name("CHARSET ").astring(cs.as_bytes());
            }
            w.raw(" ");
            match key {
                SearchKey::And(v) if v.len() > 1 && w.flip() => search_keys(w, v),
                k => search_key(w, k),
            }
        }
        Sort {
            uid: u,
            ret,
            criteria,
            key,
            ..
        } => {
            uid(w, *u).name("SORT");
            if let Some(r) = ret {
                search_return(w, r);
            }
            w.raw(" (");
            for (n, c) in criteria.iter().enumerate() {
                if n > 0 {
                    w.raw(" ");
                }
                if c.reverse {
                    w.name("REVERSE ");
                }
                w.name(&format!("{:?}", c.key));
            }
            w.raw(") ");
            sort_search_criteria(w, key);
        }
        Thread {
            uid: u,
            algorithm,
            key,
        } => {
            uid(w, *u).name("THREAD ");
            w.name(&format!("{algorithm:?}")).raw(" ");
            sort_search_criteria(w, key);
        }
        Fetch {
            uid: u,
            set,
            atts,
            changed_since,
            vanished,
        } => {
            uid(w, *u).name("FETCH ").set(set).raw(" ");
            fetch_atts(w, atts, changed_since.is_some());
            if let Some(n) = changed_since {
                w.raw(" (");
                if *vanished && w.flip() {
                    w.name("VANISHED").raw(" ");
                    w.name("CHANGEDSINCE").raw(&format!(" {n})"));
                } else {
                    w.name("CHANGEDSINCE").raw(&format!(" {n}"));
                    if *vanished {
                        w.raw(" ").name("VANISHED");
                    }
                    w.raw(")");
                }
            }
        }
        Store {
            uid: u,
            set,
            mode,
            silent,
            flags,
            unchanged_since,
        } => {
            uid(w, *u).name("STORE ").set(set).raw(" ");
            if let Some(n) = unchanged_since {
                w.raw("(").name("UNCHANGEDSINCE").raw(&format!(" {n}) "));
            }
            w.raw(match mode {
                StoreMode::Replace => "",
                StoreMode::Add => "+",
                StoreMode::Remove => "-",
            })
            .name(if *silent { "FLAGS.SILENT " } else { "FLAGS " });
            if flags.is_empty() || w.flip() {
                w.flags(flags);
            } else {
                for (n, f) in flags.iter().enumerate() {
                    if n > 0 {
                        w.raw(" ");
                    }
                    w.flag(f);
                }
            }
        }
        Copy {
            uid: u,
            set,
            mailbox,
        }
        | Move {
            uid: u,
            set,
            mailbox,
        } => {
            uid(w, *u)
                .name(c.body.name())
                .raw(" ")
                .set(set)
                .raw(" ")
                .mailbox(mailbox);
        }
        Id(params) => {
            w.name("ID ");
            if params.is_empty() && w.flip() {
                w.name("NIL");
            } else {
                w.raw("(");
                for (n, (k, v)) in params.iter().enumerate() {
                    if n > 0 {
                        w.raw(" ");
                    }
                    w.string(k.as_bytes()).raw(" ");
                    match v {
                        Some(v) => w.string(v.as_bytes()),
                        None => w.name("NIL"),
                    };
                }
                w.raw(")");
            }
        }
        Enable(caps) => {
            w.name("ENABLE");
            for cap in caps {
                w.raw(" ").name(cap);
            }
        }
        CancelUpdate(tags) => {
            w.name("CANCELUPDATE");
            for t in tags {
                w.raw(" ").string(t.as_bytes());
            }
        }
        // Not generated by the strategies (their own tests in
        // parse/list_ext.rs and parse/notify.rs).
        ListExtended(_) | Notify(_) => {}
    }
    std::mem::take(&mut w.out)
}

/// ` RETURN (...)`; a lone ALL may be written `()` (RFC 4731 §3.1).
fn search_return(w: &mut W, r: &crate::command::SearchReturn) {
    let mut opts: Vec<String> = Vec::new();
    for (on, name) in [
        (r.min, "MIN"),
        (r.max, "MAX"),
        (r.count, "COUNT"),
        (r.save, "SAVE"),
        (r.context, "CONTEXT"),
        (r.update, "UPDATE"),
    ] {
        if on {
            opts.push(name.to_owned());
        }
    }
    if let Some((a, b)) = r.partial {
        let (a, b) = if w.flip() { (b, a) } else { (a, b) };
        opts.push(format!("PARTIAL {a}:{b}"));
    }
    if r.all && !(opts.iter().all(|o| o == "CONTEXT") && w.flip()) {
        opts.push("ALL".to_owned());
    }
    w.raw(" ").name("RETURN").raw(" (");
    for (n, o) in opts.iter().enumerate() {
        if n > 0 {
            w.raw(" ");
        }
        w.name(o);
    }
    w.raw(")");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn commands_round_trip(c in strategies::command(), bits in any::<u64>()) {
        let wire = serialize(&c, bits);
        prop_assert_eq!(
            super::parse_command(&wire),
            Ok(c),
            "wire {:?}",
            String::from_utf8_lossy(&wire)
        );
    }
}

/// RFC 7162 §3.1.5 (`search-modifier`... `MODSEQ [SP entry-name SP
/// entry-type-req] SP mod-sequence-value`, with `entry-name =
/// DQUOTE "/flags/" attr-flag DQUOTE`): a bare `MODSEQ n` followed by
/// another key, as in the RFC's own example. (imapd once took any `astring
/// SP atom` after MODSEQ as the entry and refused this line.)
#[test]
fn modseq_followed_by_a_key() {
    let c = super::parse_command(b"t SEARCH OR NOT MODSEQ 720162338 LARGER 50000");
    let key = SearchKey::Or(
        Box::new(SearchKey::Not(Box::new(SearchKey::ModSeq(720_162_338)))),
        Box::new(SearchKey::Larger(50_000)),
    );
    assert_eq!(
        c.map(|c| c.body),
        Ok(CommandBody::Search {
            uid: false,
            ret: None,
            key,
            has_modseq: true
        })
    );
}
