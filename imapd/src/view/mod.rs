//! The mailbox view: what a session in the Selected state knows about its
//! mailbox, and how it is kept in step with the store (RFC 3501 §2.3.1,
//! §5.2, §7.4.1; RFC 7162 §3.2).
//!
//! A client never sees the store directly: it sees a numbered list of
//! messages (sequence numbers -> UIDs) that only changes when the server
//! says so, at moments the protocol allows. This folder holds that view and
//! the machinery around it:
//!
//! - [`selection`]: one session's view — the sequence-number map, its
//!   `\Recent` messages, expunges not yet announced, keywords announced in
//!   FLAGS — and how a batch of store changes turns into EXISTS, RECENT,
//!   FETCH (flags) and EXPUNGE responses.
//! - [`sync`]: when a session brings its view up to date (after its own
//!   commands, on a hub wake-up during IDLE), entering and leaving the
//!   Selected state.
//! - [`hub`]: who is watching which mailbox; wakes sessions when a commit
//!   (in this process or, polled, in another) touched it. A wake-up is a
//!   hint; the session reads the changes itself.
//! - [`views`]: the registry that lets sessions in step with the same
//!   mailbox state share one immutable sequence-number map.
//! - [`recent`]: a session's `\Recent` messages as a few UID ranges.
//! - [`select_cache`]: SELECT's answers per mailbox state, so re-selecting a
//!   big mailbox does not read every entry again; [`sort_cache`] likewise
//!   SORT's and THREAD's.
//! - [`contexts`]: the saved search result `$` (RFC 5182) and the live
//!   SEARCH UPDATE contexts (RFC 5267), which follow the view's changes.
//!   SORT contexts keep sort order; `sort_context` gives their update
//!   positions (CONTEXT=SORT).
//!
//! Nothing here parses protocol syntax or runs SQL: store reads go through
//! the session's store-job helpers, responses through [`crate::response`].

pub mod contexts;
pub mod hub;
pub(crate) mod notify;
pub mod recent;
pub mod select_cache;
pub mod selection;
pub mod sort_cache;
mod sort_context;
pub(crate) mod sync;
pub mod views;
