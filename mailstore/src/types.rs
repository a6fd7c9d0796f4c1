//! Plain domain types shared by the store and its callers: ids, users,
//! mailboxes, flags, entries, parsed message metadata (shaped after the
//! RFC 3501 §7.4.2 ENVELOPE and BODYSTRUCTURE items, without their syntax).

use serde::{Deserialize, Serialize};

/// Row id of a user.
pub type UserId = i64;
/// Row id of a mailbox.
pub type MailboxId = i64;
/// Row id of a stored message (shared by all its mailbox entries).
pub type MessageId = i64;
/// Per-mailbox unique identifier (RFC 3501 §2.3.1.1).
pub type Uid = u32;

/// An account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// The address exactly as created (lookups ignore case).
    pub address: String,
}

/// A mailbox of one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// Row id.
    pub id: MailboxId,
    /// Owner.
    pub user_id: UserId,
    /// Full name, hierarchy delimiter `/`; the inbox is always `INBOX`.
    pub name: String,
    /// UIDVALIDITY: changes whenever a name is reused for a new mailbox.
    pub uidvalidity: u32,
    /// The UID the next added message will get.
    pub uidnext: Uid,
    /// Highest modification sequence of any change in the mailbox (>= 1).
    pub highestmodseq: u64,
    /// SPECIAL-USE attribute such as `\Sent` (RFC 6154), if any.
    pub special_use: Option<String>,
    /// Whether the name is in the user's subscription list.
    pub subscribed: bool,
}

/// Counters of one mailbox (RFC 3501 §6.3.10 STATUS items).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Number of messages.
    pub messages: u32,
    /// Number of messages without `\Seen`.
    pub unseen: u32,
    /// Next UID.
    pub uidnext: Uid,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// HIGHESTMODSEQ.
    pub highestmodseq: u64,
}

/// One of the five stored system flags (`\Recent` is per session, not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SystemFlag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
}

impl SystemFlag {
    /// All flags, in bit order.
    pub const ALL: [SystemFlag; 5] = [
        SystemFlag::Seen,
        SystemFlag::Answered,
        SystemFlag::Flagged,
        SystemFlag::Deleted,
        SystemFlag::Draft,
    ];

    /// The flag's bit in [`Flags::system`].
    pub fn bit(self) -> u8 {
        match self {
            SystemFlag::Seen => Flags::SEEN,
            SystemFlag::Answered => Flags::ANSWERED,
            SystemFlag::Flagged => Flags::FLAGGED,
            SystemFlag::Deleted => Flags::DELETED,
            SystemFlag::Draft => Flags::DRAFT,
        }
    }
}

/// Flags of one mailbox entry: system flags as a bitmask plus keywords.
///
/// Keywords are stored as given; they must be non-empty and contain no
/// whitespace. Keyword comparison is ASCII case-insensitive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// Bitmask of [`Flags::SEEN`] etc.
    pub system: u8,
    /// Keywords (user flags), no duplicates.
    pub keywords: Vec<String>,
}

impl Flags {
    /// `\Seen` bit.
    pub const SEEN: u8 = 1;
    /// `\Answered` bit.
    pub const ANSWERED: u8 = 2;
    /// `\Flagged` bit.
    pub const FLAGGED: u8 = 4;
    /// `\Deleted` bit.
    pub const DELETED: u8 = 8;
    /// `\Draft` bit.
    pub const DRAFT: u8 = 16;
    /// All system bits.
    pub const ALL_SYSTEM: u8 = 31;

    /// No flags.
    pub fn empty() -> Flags {
        Flags::default()
    }

    /// Only the given system bits.
    pub fn system(bits: u8) -> Flags {
        Flags {
            system: bits & Flags::ALL_SYSTEM,
            keywords: Vec::new(),
        }
    }

    /// Whether the system flag is set.
    pub fn has(&self, flag: SystemFlag) -> bool {
        self.system & flag.bit() != 0
    }

    /// Set or clear a system flag.
    pub fn set(&mut self, flag: SystemFlag, on: bool) {
        if on {
            self.system |= flag.bit();
        } else {
            self.system &= !flag.bit();
        }
    }

    /// Whether the keyword is present (ASCII case-insensitive).
    pub fn has_keyword(&self, kw: &str) -> bool {
        self.keywords.iter().any(|k| k.eq_ignore_ascii_case(kw))
    }

    /// Add a keyword unless present.
    pub fn add_keyword(&mut self, kw: &str) {
        if !self.has_keyword(kw) {
            self.keywords.push(kw.to_string());
        }
    }

    /// Remove a keyword if present.
    pub fn remove_keyword(&mut self, kw: &str) {
        self.keywords.retain(|k| !k.eq_ignore_ascii_case(kw));
    }

    /// Apply a STORE operation, returning the new flags.
    pub fn apply(&self, op: FlagOp, other: &Flags) -> Flags {
        match op {
            FlagOp::Replace => {
                let mut f = Flags::system(other.system);
                for k in &other.keywords {
                    f.add_keyword(k);
                }
                f
            }
            FlagOp::Add => {
                let mut f = self.clone();
                f.system |= other.system & Flags::ALL_SYSTEM;
                for k in &other.keywords {
                    f.add_keyword(k);
                }
                f
            }
            FlagOp::Remove => {
                let mut f = self.clone();
                f.system &= !other.system;
                for k in &other.keywords {
                    f.remove_keyword(k);
                }
                f
            }
        }
    }

    /// Same flags ignoring keyword order and keyword case.
    pub fn same_as(&self, other: &Flags) -> bool {
        self.system == other.system
            && self.keywords.len() == other.keywords.len()
            && self.keywords.iter().all(|k| other.has_keyword(k))
    }
}

/// How [`crate::Tx::store_flags`] combines the given flags with the current ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlagOp {
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
    /// `FLAGS`
    Replace,
}

/// One message in one mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// UID in the mailbox.
    pub uid: Uid,
    /// Current flags.
    pub flags: Flags,
    /// Modification sequence of the last change (RFC 7162).
    pub modseq: u64,
}

/// A message to deliver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// The bytes exactly as received.
    pub raw: Vec<u8>,
    /// INTERNALDATE, unix seconds.
    pub internal_date: i64,
}

/// Where a delivered message went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// The single stored copy.
    pub message_id: MessageId,
    /// One (INBOX id, UID) per distinct recipient, in recipient order.
    pub entries: Vec<(MailboxId, Uid)>,
}

/// Result of an APPEND (RFC 4315 APPENDUID data).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    /// UIDVALIDITY of the target mailbox.
    pub uidvalidity: u32,
    /// UID given to the message.
    pub uid: Uid,
}

/// Result of a flag STORE.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreOutcome {
    /// Entries whose flags changed, with their new flags and modseq (uid asc).
    pub updated: Vec<Entry>,
    /// UIDs refused because their modseq exceeded UNCHANGEDSINCE (RFC 7162 §3.1.3).
    pub failed_modified: Vec<Uid>,
    /// The mailbox's HIGHESTMODSEQ just before this STORE, when every
    /// entry it changed took the one modseq after it (SQLite): a view
    /// that was at this modseq has then seen every change up to the
    /// STORE's own (`None`: not known).
    #[serde(default)]
    pub prior_modseq: Option<u64>,
}

/// Result of COPY/MOVE (RFC 4315 COPYUID data).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOutcome {
    /// UIDVALIDITY of the destination.
    pub uidvalidity: u32,
    /// (source uid, destination uid), source uid ascending.
    pub map: Vec<(Uid, Uid)>,
}

/// What changed in a mailbox since a given modseq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// New or flag-changed entries with modseq greater than asked, uid asc.
    pub changed: Vec<Entry>,
    /// UIDs expunged with modseq greater than asked, ascending.
    pub expunged: Vec<Uid>,
    /// Whether `expunged` is all of them: false when the store has since
    /// forgotten some expunges after the modseq asked (its tombstones are
    /// bounded; see [`crate::Reader::tombstone_floor`]). Then compare UID
    /// sets to find what is gone.
    pub expunged_complete: bool,
    /// The mailbox's current HIGHESTMODSEQ.
    pub highestmodseq: u64,
}
