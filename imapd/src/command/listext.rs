//! LIST with the extended syntax: RFC 5258 (LIST-EXTENDED) selection and
//! return options, RFC 6154 §2 (SPECIAL-USE) and RFC 5819 (LIST-STATUS).

use super::StatusItem;

/// `LIST [(select-opts)] reference (patterns) [RETURN (return-opts)]`
/// (RFC 5258 §3, §6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListExtended {
    /// Reference name.
    pub reference: String,
    /// One or more patterns (`LIST "" ("a" "b")`, RFC 5258 §3).
    pub patterns: Vec<String>,
    /// Selection options.
    pub select: ListSelect,
    /// Return options.
    pub ret: ListReturn,
}

/// Selection options (RFC 5258 §3.1; RFC 6154 §5.1 SPECIAL-USE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListSelect {
    /// `SUBSCRIBED`: subscribed names, existing or not (implies the
    /// SUBSCRIBED return option).
    pub subscribed: bool,
    /// `REMOTE`: also remote mailboxes (we have none).
    pub remote: bool,
    /// `RECURSIVEMATCH`: parents of matches that do not match themselves,
    /// with CHILDINFO.
    pub recursive: bool,
    /// `SPECIAL-USE`: only mailboxes with a special-use attribute.
    pub special_use: bool,
}

/// Return options (RFC 5258 §3.2, RFC 6154 §5.1, RFC 5819 §2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListReturn {
    /// `SUBSCRIBED`: `\Subscribed` on subscribed names.
    pub subscribed: bool,
    /// `CHILDREN`: `\HasChildren` / `\HasNoChildren` (always sent).
    pub children: bool,
    /// `SPECIAL-USE`: special-use attributes (always sent).
    pub special_use: bool,
    /// `STATUS (items)`: a STATUS response after each selectable
    /// mailbox's LIST response.
    pub status: Option<Vec<StatusItem>>,
}
