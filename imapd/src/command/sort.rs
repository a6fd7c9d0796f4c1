//! The typed arguments of SORT and THREAD (RFC 5256 §3, RFC 5957 §3).

/// One SORT key (RFC 5256 §3 `sort-key`, RFC 5957 §3 DISPLAYFROM and
/// DISPLAYTO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `ARRIVAL`: INTERNALDATE.
    Arrival,
    /// `CC`: addr-mailbox of the first Cc address.
    Cc,
    /// `DATE`: sent date (RFC 5256 §2.2).
    Date,
    /// `FROM`: addr-mailbox of the first From address.
    From,
    /// `SIZE`: RFC822.SIZE.
    Size,
    /// `SUBJECT`: base subject (RFC 5256 §2.1).
    Subject,
    /// `TO`: addr-mailbox of the first To address.
    To,
    /// `DISPLAYFROM` (RFC 5957).
    DisplayFrom,
    /// `DISPLAYTO` (RFC 5957).
    DisplayTo,
}

/// A `sort-criterion`: a key, optionally reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    /// The key.
    pub key: SortKey,
    /// `REVERSE`
    pub reverse: bool,
}

/// A THREAD algorithm (RFC 5256 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    /// `ORDEREDSUBJECT`
    OrderedSubject,
    /// `REFERENCES`
    References,
}
