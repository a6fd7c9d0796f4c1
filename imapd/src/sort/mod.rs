//! SORT and THREAD (RFC 5256, RFC 5957 SORT=DISPLAY) as pure functions of
//! the messages' fields that mailstore reads ([`mailstore::MessageFields`],
//! in sequence order): `order` (SORT keys and their comparison),
//! `thread` (ORDEREDSUBJECT and REFERENCES), `subject` (base subject,
//! §2.1) and `msgid` (normalized Message IDs). `op/sort.rs` runs them on a
//! store reader thread.
//!
//! Everything here is O(n log n) in the messages searched and linear in
//! the bytes of their subjects and reference fields; the figures for
//! 100,000 messages are in `op/sort.rs`.

pub mod msgid;
pub mod order;
pub mod subject;
pub mod thread;
