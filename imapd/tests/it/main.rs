//! imapd integration tests: a real server on 127.0.0.1 port 0 over a temp
//! store, driven over sockets by a tiny client (util.rs) and by real
//! third-party clients (Python imaplib, curl).

#![allow(clippy::unwrap_used)]

mod append;
mod appendlimit;
mod auth;
mod bench;
mod binary;
mod binary_fetch;
mod compress;
mod compress_interop;
mod create_special_use;
mod esearch;
mod esort;
mod fetch;
mod hostile_list;
mod hostile_search;
mod idle_keepalive;
mod interop;
mod interop_fetchmail;
mod interop_imapclient;
mod isolation;
mod limits;
mod literal;
mod mailbox;
mod message;
mod multiappend;
mod notify;
mod notify5465;
mod objectid;
mod pipelining_flood;
mod preview;
mod qresync;
mod rev2;
mod savedate;
mod search_cache;
mod session;
mod shared;
mod sort;
mod status_size;
mod store_faults;
mod tls;
mod tls_interop;
mod uidonly;
mod unauthenticate;
mod urlauth;
mod utf8_accept;
mod util;
mod within;
