//! Integration tests of the mail store: one test binary, modules by concern.
#![allow(clippy::unwrap_used)]

mod util;

mod aliases;
mod bench;
mod commit_detail;
mod flags;
mod header_cache;
mod header_index;
mod integrity;
mod keys;
mod mailboxes;
mod messages;
mod mime;
mod open;
mod outq;
mod search;
mod sieve;
mod threads;
mod tombstones;
mod users;
