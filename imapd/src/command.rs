//! Typed IMAP commands: what the parser produces and the session executes.
//!
//! Covers the command grammar of RFC 3501 §6 plus the extensions we
//! advertise (IDLE 2177, UIDPLUS 4315, MOVE 6851, UNSELECT 3691, NAMESPACE
//! 2342, ID 2971, ENABLE 5161, CONDSTORE and QRESYNC 7162, SPECIAL-USE 6154,
//! SORT and THREAD 5256, SORT=DISPLAY 5957, BINARY 3516, MULTIAPPEND 3502,
//! CATENATE 4469, URLAUTH 4467 and 5524, STATUS=SIZE 8438, APPENDLIMIT
//! 7889, WITHIN 5032, SAVEDATE 8514, UNAUTHENTICATE 8437, PREVIEW 8970,
//! CREATE-SPECIAL-USE 6154 §3, OBJECTID 8474). Values here
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

/// STATUS data items (RFC 3501 §6.3.10, RFC 7162 HIGHESTMODSEQ, RFC 8438
/// SIZE, RFC 7889 APPENDLIMIT).
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
    /// `SIZE`: total octets of the mailbox's messages (RFC 8438 §3).
    Size,
    /// `APPENDLIMIT`: the largest message APPEND accepts into the
    /// mailbox (RFC 7889 §2).
    AppendLimit,
    /// `MAILBOXID`: the mailbox's object id (RFC 8474 §4).
    MailboxId,
    /// `DELETED`: messages with `\Deleted` (RFC 9051 §6.3.11).
    Deleted,
    /// `DELETED-STORAGE`: what EXPUNGE would free, in units of 1024
    /// octets (RFC 9208 §4.3).
    DeletedStorage,
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
    /// `SAVEDATE` (RFC 8514 §4.2): when the message was saved in this
    /// mailbox, NIL where that is not known.
    SaveDate,
    /// `PREVIEW` or `PREVIEW (LAZY)` (RFC 8970 §3): a short plain-text
    /// preview (LAZY changes nothing: ours is always at hand).
    Preview,
    /// `EMAILID` (RFC 8474 §5.1): the message's object id.
    EmailId,
    /// `THREADID` (RFC 8474 §5.2): the thread's object id (NIL: see
    /// `objectid.rs`).
    ThreadId,
}

mod ext;
pub use ext::{AppendData, AppendMessage, CatPart, QresyncParams, UrlFetchItem};
mod search;
pub use search::{SearchKey, SearchReturn};
mod set;
pub use set::{SeqNum, SeqRange, SequenceSet};

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
    /// `COMPRESS mechanism` (RFC 4978 §3), the mechanism upper-cased.
    Compress(String),
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
    /// `CREATE mailbox [(USE (\Attr ...))]`
    Create {
        /// Mailbox to create.
        mailbox: String,
        /// Special-use attributes requested (CREATE-SPECIAL-USE, RFC 6154
        /// §3; `USE ()` and no USE both leave this empty).
        special_use: Vec<String>,
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
        /// `RETURN (...)`: answer with ESEARCH (ESORT, RFC 5267 §3;
        /// PARTIAL and UPDATE: CONTEXT=SORT, §4).
        ret: Option<SearchReturn>,
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
    /// `UNAUTHENTICATE` (RFC 8437 §3)
    Unauthenticate,
    /// `GETQUOTA root` (RFC 9208 §4.2.1)
    GetQuota(String),
    /// `GETQUOTAROOT mailbox` (RFC 9208 §4.2.2)
    GetQuotaRoot(String),
    /// `SETQUOTA root (resource limit ...)` (RFC 9208 §4.2.3): the root
    /// and the limits asked for.
    SetQuota(String, Vec<(String, u64)>),
}

impl CommandBody {
    /// The command name as the client would write it (for logs and replies).
    pub fn name(&self) -> &'static str {
        match self {
            CommandBody::Capability => "CAPABILITY",
            CommandBody::Noop => "NOOP",
            CommandBody::Logout => "LOGOUT",
            CommandBody::StartTls => "STARTTLS",
            CommandBody::Compress(_) => "COMPRESS",
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
            CommandBody::Unauthenticate => "UNAUTHENTICATE",
            CommandBody::GetQuota(_) => "GETQUOTA",
            CommandBody::GetQuotaRoot(_) => "GETQUOTAROOT",
            CommandBody::SetQuota(..) => "SETQUOTA",
        }
    }
}
