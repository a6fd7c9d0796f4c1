//! Parsed message metadata, computed once at delivery and stored as JSON:
//! the envelope (RFC 3501 §7.4.2 ENVELOPE fields, RFC 5322 §3.6 headers) and
//! the MIME tree (RFC 2045/2046) with byte offsets into the raw message, so
//! a server can serve any `BODY[section]` by slicing. No IMAP syntax here.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::types::{Flags, MessageId, Uid};

/// One address of an address-list header.
///
/// Group syntax (RFC 5322 §3.4) follows RFC 3501 §7.4.2: a group start
/// marker has `host: None` and `local: Some(group name)`; the group end
/// marker has all three fields `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Display name (raw, encoded-words kept as sent).
    pub name: Option<String>,
    /// Obsolete source route (RFC 5322 §4.4 `obs-route`), e.g. `@a,@b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adl: Option<String>,
    /// Local part (or group name for a group start marker).
    pub local: Option<String>,
    /// Domain.
    pub host: Option<String>,
}

/// Envelope fields. Strings are the raw header values with folding removed
/// (encoded-words are kept, as IMAP sends them); a missing header is `None`
/// or an empty list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `Date:`
    pub date: Option<String>,
    /// `Subject:`
    pub subject: Option<String>,
    /// `From:`
    pub from: Vec<Address>,
    /// `Sender:`
    pub sender: Vec<Address>,
    /// `Reply-To:`
    pub reply_to: Vec<Address>,
    /// `To:`
    pub to: Vec<Address>,
    /// `Cc:`
    pub cc: Vec<Address>,
    /// `Bcc:`
    pub bcc: Vec<Address>,
    /// `In-Reply-To:`
    pub in_reply_to: Option<String>,
    /// `Message-ID:`
    pub message_id: Option<String>,
}

/// An [`Address`] read from the stored envelope, borrowing its strings
/// from the stored text where they need no unescaping (the metadata FETCH
/// of a whole mailbox then allocates next to nothing per message).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct AddressRef<'a> {
    /// [`Address::name`].
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    /// [`Address::adl`].
    #[serde(default, borrow)]
    pub adl: Option<Cow<'a, str>>,
    /// [`Address::local`].
    #[serde(borrow)]
    pub local: Option<Cow<'a, str>>,
    /// [`Address::host`].
    #[serde(borrow)]
    pub host: Option<Cow<'a, str>>,
}

/// An [`Envelope`] read from the stored text, borrowing from it (see
/// [`AddressRef`]); see [`crate::Reader::each_message`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct EnvelopeRef<'a> {
    /// [`Envelope::date`].
    #[serde(borrow)]
    pub date: Option<Cow<'a, str>>,
    /// [`Envelope::subject`].
    #[serde(borrow)]
    pub subject: Option<Cow<'a, str>>,
    /// [`Envelope::from`].
    #[serde(borrow)]
    pub from: Vec<AddressRef<'a>>,
    /// [`Envelope::sender`].
    #[serde(borrow)]
    pub sender: Vec<AddressRef<'a>>,
    /// [`Envelope::reply_to`].
    #[serde(borrow)]
    pub reply_to: Vec<AddressRef<'a>>,
    /// [`Envelope::to`].
    #[serde(borrow)]
    pub to: Vec<AddressRef<'a>>,
    /// [`Envelope::cc`].
    #[serde(borrow)]
    pub cc: Vec<AddressRef<'a>>,
    /// [`Envelope::bcc`].
    #[serde(borrow)]
    pub bcc: Vec<AddressRef<'a>>,
    /// [`Envelope::in_reply_to`].
    #[serde(borrow)]
    pub in_reply_to: Option<Cow<'a, str>>,
    /// [`Envelope::message_id`].
    #[serde(borrow)]
    pub message_id: Option<Cow<'a, str>>,
}

/// One node of the MIME tree.
///
/// Offsets are byte positions in the raw message (end exclusive).
/// `header_range` covers the part's header including the blank separator
/// line (what `BODY[n.MIME]`/`BODY[HEADER]` return); `body_range` runs from
/// after that line to the end of the part (what `BODY[n]`/`BODY[TEXT]`
/// return). For the top level the header is the message header. Parts that
/// are not multipart have `parts` empty. For `message/rfc822` parts,
/// `embedded` holds the enclosed message's envelope and structure, whose
/// offsets are also relative to the outer raw message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MimePart {
    /// Lowercase main type, e.g. `text`, `multipart`.
    pub media_type: String,
    /// Lowercase subtype, e.g. `plain`, `mixed`.
    pub subtype: String,
    /// Content-Type parameters (names lowercase), e.g. `("charset","utf-8")`.
    pub params: Vec<(String, String)>,
    /// `Content-ID:`
    pub id: Option<String>,
    /// `Content-Description:`
    pub description: Option<String>,
    /// `Content-Transfer-Encoding:` lowercased, default `7bit`.
    pub encoding: String,
    /// Body size in octets (= body_range length).
    pub size: u64,
    /// Body lines (number of LF in the body, +1 if it does not end with LF).
    pub lines: u64,
    /// `Content-MD5:`
    pub md5: Option<String>,
    /// `Content-Disposition:` value (lowercase) and parameters.
    pub disposition: Option<(String, Vec<(String, String)>)>,
    /// `Content-Language:` tags.
    pub language: Vec<String>,
    /// `Content-Location:`
    pub location: Option<String>,
    /// Header bytes of this part, including the blank line.
    pub header_range: (u64, u64),
    /// Body bytes of this part.
    pub body_range: (u64, u64),
    /// Children of a multipart.
    pub parts: Vec<MimePart>,
    /// The enclosed message of a `message/rfc822` part.
    pub embedded: Option<Box<(Envelope, MimePart)>>,
}

/// Which of the decoded parts of [`MessageMeta`] a read should fill in
/// (see [`crate::Reader::messages_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaParts {
    /// [`MessageMeta::envelope`].
    pub envelope: bool,
    /// [`MessageMeta::structure`].
    pub structure: bool,
}

impl MetaParts {
    /// Both.
    pub const ALL: MetaParts = MetaParts {
        envelope: true,
        structure: true,
    };
}

/// Everything about one mailbox entry except the raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    /// UID in the mailbox asked about.
    pub uid: Uid,
    /// Flags of this entry.
    pub flags: Flags,
    /// Modseq of this entry.
    pub modseq: u64,
    /// RFC822.SIZE: raw length in octets.
    pub size: u64,
    /// INTERNALDATE, unix seconds.
    pub internal_date: i64,
    /// When this entry was saved in its mailbox (RFC 8514 save date),
    /// unix seconds; `None` for entries saved before the store kept it.
    pub save_date: Option<i64>,
    /// Parsed envelope.
    pub envelope: Envelope,
    /// MIME structure with offsets.
    pub structure: MimePart,
    /// The stored message row (same for every mailbox holding it).
    pub message_id: MessageId,
    /// The message's thread (RFC 8474 THREADID; see threads.rs): the same
    /// for every message of the thread, in whichever mailbox.
    pub thread_id: i64,
}
