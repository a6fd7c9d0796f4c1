//! Typed IMAP commands: what the parser produces and the session executes.
//!
//! Covers the command grammar of RFC 3501 §6 plus the extensions we
//! advertise (IDLE 2177, UIDPLUS 4315, MOVE 6851, UNSELECT 3691, NAMESPACE
//! 2342, ID 2971, ENABLE 5161, CONDSTORE and QRESYNC 7162, SPECIAL-USE 6154,
//! SORT and THREAD 5256, SORT=DISPLAY 5957, BINARY 3516, MULTIAPPEND 3502,
//! CATENATE 4469, URLAUTH 4467 and 5524). Values here
//! are already validated: mailbox names are decoded from modified UTF-7 and
//! `INBOX` is normalised, so executors never re-check syntax.

mod sort;
pub use sort::{SortCriterion, SortKey, ThreadAlgorithm};
mod listext;
mod notify;
pub use listext::{ListExtended, ListReturn, ListSelect};
pub use notify::{EventGroup, Events, MailboxFilter, NotifySet, SelectedEvents};

/// One complete command: its tag and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, echoed in the tagged response.
    pub tag: String,
    /// The command proper.
    pub body: CommandBody,
}

/// A sequence-set element bound: a number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNum {
    /// A message sequence number or UID.
    Value(u32),
    /// `*`: the largest number in use.
    Star,
}

/// One `a:b` (or single `a`) range of a sequence set; bounds may be reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// First bound as written.
    pub start: SeqNum,
    /// Second bound as written (equal to `start` for a single number).
    pub end: SeqNum,
}

/// RFC 3501 `sequence-set`: a comma-separated list of ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet(pub Vec<SeqRange>);

impl SequenceSet {
    /// Resolve against `max` (the value `*` stands for) into inclusive
    /// `(low, high)` ranges. With `max == 0`, `*` resolves to 0.
    pub fn resolve(&self, max: u32) -> Vec<(u32, u32)> {
        self.0
            .iter()
            .map(|r| {
                let a = match r.start {
                    SeqNum::Value(v) => v,
                    SeqNum::Star => max,
                };
                let b = match r.end {
                    SeqNum::Value(v) => v,
                    SeqNum::Star => max,
                };
                (a.min(b), a.max(b))
            })
            .collect()
    }

    /// Like [`SequenceSet::resolve`], but sorted and with overlapping or
    /// adjacent ranges merged, so callers can walk them in one pass.
    pub fn merged(&self, max: u32) -> Vec<(u32, u32)> {
        let mut r = self.resolve(max);
        r.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
        for (a, b) in r {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        out
    }

    /// True if `n` lies in the set (with `*` meaning `max`).
    pub fn contains(&self, n: u32, max: u32) -> bool {
        self.resolve(max).iter().any(|&(a, b)| a <= n && n <= b)
    }

    /// `$`, the saved search result (RFC 5182 §2.1, `seq-last-command`).
    /// Written as a set with no ranges, which the grammar never yields
    /// otherwise; the selection substitutes the saved messages
    /// (`Selection::resolve`), and anything that does not names nothing.
    pub fn saved() -> SequenceSet {
        SequenceSet(Vec::new())
    }

    /// Is this `$` (see [`SequenceSet::saved`])?
    pub fn is_saved(&self) -> bool {
        self.0.is_empty()
    }
}

/// `RETURN (...)` of an extended SEARCH (RFC 4466 §2.6, ESEARCH RFC 4731
/// §3.1, SEARCHRES RFC 5182 §2, CONTEXT=SEARCH RFC 5267 §4). `RETURN ()`
/// is read as `ALL` (RFC 4731 §3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// `MIN`: the lowest number found.
    pub min: bool,
    /// `MAX`: the highest number found.
    pub max: bool,
    /// `ALL`: every number found, as a sequence set.
    pub all: bool,
    /// `COUNT`: how many were found.
    pub count: bool,
    /// `SAVE`: remember the result as `$` (RFC 5182).
    pub save: bool,
    /// `CONTEXT`: a hint that the criteria will be reused (RFC 5267 §4.2;
    /// accepted, nothing to do).
    pub context: bool,
    /// `UPDATE`: report later changes of the result as ADDTO/REMOVEFROM
    /// (RFC 5267 §4.3).
    pub update: bool,
    /// `PARTIAL a:b`: results `a` to `b` (1-based, `a <= b`) of the whole
    /// result list (RFC 5267 §4.4).
    pub partial: Option<(u32, u32)>,
}

/// A calendar date (RFC 3501 `date`), as used by SEARCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// Year, e.g. 2024.
    pub year: i32,
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
}

/// RFC 3501 `date-time` as given to APPEND: a moment plus its zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Seconds since the Unix epoch (UTC).
    pub unix: i64,
    /// The zone offset the client wrote, in minutes east of UTC.
    pub offset_minutes: i32,
}

/// A message flag: a system flag (`\Seen`) or a keyword (`$Forwarded`).
/// Stored as written, except that system flags get canonical case.
pub type Flag = String;

/// STATUS data items (RFC 3501 §6.3.10, RFC 7162 HIGHESTMODSEQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    /// `MESSAGES`
    Messages,
    /// `RECENT`
    Recent,
    /// `UIDNEXT`
    UidNext,
    /// `UIDVALIDITY`
    UidValidity,
    /// `UNSEEN`
    Unseen,
    /// `HIGHESTMODSEQ`
    HighestModSeq,
}

/// How STORE changes flags (RFC 3501 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// A section specifier inside `BODY[...]` (RFC 3501 §6.4.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Section {
    /// Part path, e.g. `[1, 2]` for `1.2`; empty for the whole message.
    pub part: Vec<u32>,
    /// What to take from that part.
    pub text: SectionText,
}

/// The textual tail of a section specifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText {
    /// Nothing: the whole part (or message).
    Full,
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (names)`
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (names)`
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`
    Text,
    /// `MIME` (only after a part number)
    Mime,
}

/// One FETCH data item (RFC 3501 §6.4.5, RFC 7162 MODSEQ).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchAtt {
    /// `ENVELOPE`
    Envelope,
    /// `FLAGS`
    Flags,
    /// `INTERNALDATE`
    InternalDate,
    /// `RFC822` (same as BODY[], sets \Seen)
    Rfc822,
    /// `RFC822.HEADER` (same as BODY.PEEK[HEADER])
    Rfc822Header,
    /// `RFC822.SIZE`
    Rfc822Size,
    /// `RFC822.TEXT` (same as BODY[TEXT], sets \Seen)
    Rfc822Text,
    /// `BODY` (structure without extension data)
    Body,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `UID`
    Uid,
    /// `MODSEQ`
    ModSeq,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`.
    Section {
        /// The section asked for.
        section: Section,
        /// `<offset.length>` if given.
        partial: Option<(u32, u32)>,
        /// `.PEEK`: do not set \Seen.
        peek: bool,
    },
    /// `BINARY[part]<partial>` or `BINARY.PEEK[...]` (RFC 3516 §4.2): the
    /// part with its content transfer encoding undone.
    Binary {
        /// Part path; empty for the whole message.
        part: Vec<u32>,
        /// `<offset.length>` if given (in decoded octets).
        partial: Option<(u32, u32)>,
        /// `.PEEK`: do not set \Seen.
        peek: bool,
    },
    /// `BINARY.SIZE[part]` (RFC 3516 §4.2): the decoded size.
    BinarySize(Vec<u32>),
}

/// RFC 3501 §6.4.4 search keys, with dates and sets already typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// `ALL`
    All,
    /// A system flag that must be set (ANSWERED, DELETED, ...).
    Flag(Flag),
    /// A system flag that must not be set (UNANSWERED, ...).
    NotFlag(Flag),
    /// `KEYWORD k`
    Keyword(Flag),
    /// `UNKEYWORD k`
    Unkeyword(Flag),
    /// `NEW` = RECENT UNSEEN
    New,
    /// `OLD` = NOT RECENT
    Old,
    /// `RECENT`
    Recent,
    /// `BCC/CC/FROM/SUBJECT/TO x` and `HEADER name x`: field, substring.
    Header(String, String),
    /// `BODY x`
    Body(String),
    /// `TEXT x`
    Text(String),
    /// `BEFORE d`
    Before(Date),
    /// `ON d`
    On(Date),
    /// `SINCE d`
    Since(Date),
    /// `SENTBEFORE d`
    SentBefore(Date),
    /// `SENTON d`
    SentOn(Date),
    /// `SENTSINCE d`
    SentSince(Date),
    /// `LARGER n`
    Larger(u32),
    /// `SMALLER n`
    Smaller(u32),
    /// `UID set`
    Uid(SequenceSet),
    /// A bare sequence set (message numbers).
    Seq(SequenceSet),
    /// `MODSEQ n` (RFC 7162; entry-name clauses are accepted and ignored)
    ModSeq(u64),
    /// `NOT key`
    Not(Box<SearchKey>),
    /// `OR a b`
    Or(Box<SearchKey>, Box<SearchKey>),
    /// A parenthesised list or the implicit AND of the top level.
    And(Vec<SearchKey>),
}

mod ext;
pub use ext::{AppendData, AppendMessage, CatPart, UrlFetchItem};

/// The `QRESYNC` SELECT/EXAMINE parameter (RFC 7162 §3.2.5): what the
/// client remembers of the mailbox. Sets are checked by the parser: no
/// `*` in the UID sets, and the two sets of `seq_match` name equally many
/// numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    /// The UIDVALIDITY the client's cache belongs to.
    pub uidvalidity: u32,
    /// The HIGHESTMODSEQ the client last saw.
    pub modseq: u64,
    /// `known-uids`: the UIDs the client knows (default: all below UIDNEXT).
    pub known_uids: Option<SequenceSet>,
    /// `seq-match-data`: message numbers and the UIDs the client believes
    /// they have (RFC 7162 §3.2.5.2).
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// What a command asks for, one variant per command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `STARTTLS` (recognised so that it can be refused clearly)
    StartTls,
    /// `LOGIN user password`
    Login {
        /// The login name (a full address).
        user: String,
        /// The password.
        password: String,
    },
    /// `AUTHENTICATE mechanism [initial-response]` (SASL-IR, RFC 4959).
    Authenticate {
        /// Mechanism name, upper-cased.
        mechanism: String,
        /// The initial response, still base64 (`=` means empty).
        initial: Option<String>,
    },
    /// `SELECT mailbox [(CONDSTORE QRESYNC (...))]`
    Select {
        /// Mailbox to open read-write.
        mailbox: String,
        /// `(CONDSTORE)` parameter given.
        condstore: bool,
        /// `QRESYNC (...)` parameter given (RFC 7162 §3.2.5).
        qresync: Option<QresyncParams>,
    },
    /// `EXAMINE mailbox [(CONDSTORE QRESYNC (...))]`
    Examine {
        /// Mailbox to open read-only.
        mailbox: String,
        /// `(CONDSTORE)` parameter given.
        condstore: bool,
        /// `QRESYNC (...)` parameter given (RFC 7162 §3.2.5).
        qresync: Option<QresyncParams>,
    },
    /// `CREATE mailbox [(USE (\Attr))]`
    Create {
        /// Mailbox to create.
        mailbox: String,
        /// Special-use attribute requested (RFC 6154 §3).
        special_use: Option<String>,
    },
    /// `DELETE mailbox`
    Delete(String),
    /// `RENAME old new`
    Rename(String, String),
    /// `SUBSCRIBE mailbox`
    Subscribe(String),
    /// `UNSUBSCRIBE mailbox`
    Unsubscribe(String),
    /// `LIST reference pattern` (with an optional RETURN (SPECIAL-USE)).
    List {
        /// Reference name.
        reference: String,
        /// Pattern with `*`/`%` wildcards.
        pattern: String,
    },
    /// `LSUB reference pattern`
    Lsub {
        /// Reference name.
        reference: String,
        /// Pattern with `*`/`%` wildcards.
        pattern: String,
    },
    /// `STATUS mailbox (items)`
    Status {
        /// The mailbox.
        mailbox: String,
        /// Items asked for.
        items: Vec<StatusItem>,
    },
    /// `APPEND mailbox [flags] [date-time] literal`
    Append {
        /// Target mailbox.
        mailbox: String,
        /// Initial flags.
        flags: Vec<Flag>,
        /// Internal date, if given.
        date: Option<DateTime>,
        /// The message bytes.
        message: Vec<u8>,
    },
    /// `APPEND` with several messages (MULTIAPPEND, RFC 3502) or with
    /// CATENATE (RFC 4469): all or none are appended.
    AppendMulti {
        /// Target mailbox.
        mailbox: String,
        /// The messages, in order.
        messages: Vec<AppendMessage>,
    },
    /// `GENURLAUTH (url-rump mechanism)...` (RFC 4467 §7.1)
    GenUrlAuth(Vec<(String, String)>),
    /// `RESETKEY [mailbox [mechanism...]]` (RFC 4467 §7.2)
    ResetKey {
        /// Only this mailbox's key; all the user's when `None`.
        mailbox: Option<String>,
        /// Mechanisms named (upper-cased).
        mechanisms: Vec<String>,
    },
    /// `URLFETCH url...` (RFC 4467 §7.3, RFC 5524)
    UrlFetch(Vec<UrlFetchItem>),
    /// `CHECK`
    Check,
    /// `CLOSE`
    Close,
    /// `UNSELECT`
    Unselect,
    /// `EXPUNGE`, or `UID EXPUNGE set` when `uids` is given.
    Expunge {
        /// UIDPLUS: only these UIDs.
        uids: Option<SequenceSet>,
    },
    /// `SEARCH` / `UID SEARCH`
    Search {
        /// UID variant.
        uid: bool,
        /// `RETURN (...)`: answer with ESEARCH (RFC 4731) instead of SEARCH.
        ret: Option<SearchReturn>,
        /// The criteria (an implicit AND).
        key: SearchKey,
        /// `RETURN`-less CONDSTORE: a MODSEQ key was present.
        has_modseq: bool,
    },
    /// `SORT` / `UID SORT` (RFC 5256 §3)
    Sort {
        /// UID variant.
        uid: bool,
        /// The sort criteria, most significant first.
        criteria: Vec<SortCriterion>,
        /// The search criteria (an implicit AND).
        key: SearchKey,
        /// A MODSEQ key was present (RFC 7162 §3.1.5).
        has_modseq: bool,
    },
    /// `THREAD` / `UID THREAD` (RFC 5256 §3)
    Thread {
        /// UID variant.
        uid: bool,
        /// The algorithm.
        algorithm: ThreadAlgorithm,
        /// The search criteria (an implicit AND).
        key: SearchKey,
    },
    /// `FETCH` / `UID FETCH`
    Fetch {
        /// UID variant.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Items (macros expanded).
        atts: Vec<FetchAtt>,
        /// CONDSTORE `(CHANGEDSINCE n)`.
        changed_since: Option<u64>,
        /// QRESYNC `VANISHED` modifier (RFC 7162 §3.2.6; UID FETCH with
        /// CHANGEDSINCE only, checked by the parser).
        vanished: bool,
    },
    /// `STORE` / `UID STORE`
    Store {
        /// UID variant.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Replace, add or remove.
        mode: StoreMode,
        /// `.SILENT`
        silent: bool,
        /// The flags.
        flags: Vec<Flag>,
        /// CONDSTORE `(UNCHANGEDSINCE n)`.
        unchanged_since: Option<u64>,
    },
    /// `COPY` / `UID COPY`
    Copy {
        /// UID variant.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Destination.
        mailbox: String,
    },
    /// `MOVE` / `UID MOVE`
    Move {
        /// UID variant.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Destination.
        mailbox: String,
    },
    /// `IDLE`
    Idle,
    /// `NAMESPACE`
    Namespace,
    /// `ID (params)` or `ID NIL`
    Id(Vec<(String, Option<String>)>),
    /// `ENABLE caps`
    Enable(Vec<String>),
    /// `CANCELUPDATE "tag" ...` (RFC 5267 §4.3.5)
    CancelUpdate(Vec<String>),
    /// `LIST` with selection options, several patterns or return options
    /// (RFC 5258, RFC 5819, RFC 6154).
    ListExtended(Box<ListExtended>),
    /// `NOTIFY SET ...` or `NOTIFY NONE` (`None`) (RFC 5465 §3).
    Notify(Option<Box<NotifySet>>),
}

impl CommandBody {
    /// The command name as the client would write it (for logs and replies).
    pub fn name(&self) -> &'static str {
        match self {
            CommandBody::Capability => "CAPABILITY",
            CommandBody::Noop => "NOOP",
            CommandBody::Logout => "LOGOUT",
            CommandBody::StartTls => "STARTTLS",
            CommandBody::Login { .. } => "LOGIN",
            CommandBody::Authenticate { .. } => "AUTHENTICATE",
            CommandBody::Select { .. } => "SELECT",
            CommandBody::Examine { .. } => "EXAMINE",
            CommandBody::Create { .. } => "CREATE",
            CommandBody::Delete(_) => "DELETE",
            CommandBody::Rename(..) => "RENAME",
            CommandBody::Subscribe(_) => "SUBSCRIBE",
            CommandBody::Unsubscribe(_) => "UNSUBSCRIBE",
            CommandBody::List { .. } => "LIST",
            CommandBody::Lsub { .. } => "LSUB",
            CommandBody::Status { .. } => "STATUS",
            CommandBody::Append { .. } | CommandBody::AppendMulti { .. } => "APPEND",
            CommandBody::GenUrlAuth(_) => "GENURLAUTH",
            CommandBody::ResetKey { .. } => "RESETKEY",
            CommandBody::UrlFetch(_) => "URLFETCH",
            CommandBody::Check => "CHECK",
            CommandBody::Close => "CLOSE",
            CommandBody::Unselect => "UNSELECT",
            CommandBody::Expunge { .. } => "EXPUNGE",
            CommandBody::Search { .. } => "SEARCH",
            CommandBody::Sort { .. } => "SORT",
            CommandBody::Thread { .. } => "THREAD",
            CommandBody::Fetch { .. } => "FETCH",
            CommandBody::Store { .. } => "STORE",
            CommandBody::Copy { .. } => "COPY",
            CommandBody::Move { .. } => "MOVE",
            CommandBody::Idle => "IDLE",
            CommandBody::Namespace => "NAMESPACE",
            CommandBody::Id(_) => "ID",
            CommandBody::Enable(_) => "ENABLE",
            CommandBody::CancelUpdate(_) => "CANCELUPDATE",
            CommandBody::ListExtended(_) => "LIST",
            CommandBody::Notify(_) => "NOTIFY",
        }
    }
}
