//! The store's tests on the PostgreSQL backend: the SQLite suite's modules
//! of the core operations, run unchanged over `util.rs`'s PostgreSQL
//! stores (each test a fresh database in a private cluster started by
//! `testkit::pg`), plus what only matters with several front ends
//! (`fronts.rs`) and what this backend does differently (`backend.rs`).
//! Needs PostgreSQL's binaries (`apt-get install postgresql`).
#![allow(clippy::unwrap_used)]

mod util;

mod backend;
mod deferred;
mod fronts;
mod leases;
mod notify;
mod trgm;

#[path = "../it/aliases.rs"]
mod aliases;
#[path = "../it/commit_detail.rs"]
mod commit_detail;
#[path = "../it/flags.rs"]
mod flags;
#[path = "../it/keys.rs"]
mod keys;
#[path = "../it/mailboxes.rs"]
mod mailboxes;
#[path = "../it/messages.rs"]
mod messages;
#[path = "../it/mime.rs"]
mod mime;
#[path = "../it/outq.rs"]
mod outq;
#[path = "../it/search.rs"]
mod search;
#[path = "../it/sieve.rs"]
mod sieve;
#[path = "../it/tombstones.rs"]
mod tombstones;
#[path = "../it/users.rs"]
mod users;
