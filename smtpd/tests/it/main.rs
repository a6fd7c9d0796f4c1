//! Integration tests of smtpd: session state machine (no sockets), the
//! RFC 5321 reply paths over real sockets, DATA/BDAT content handling and
//! limits, AUTH (RFC 4954) and STARTTLS (RFC 3207) / implicit TLS
//! (RFC 8314) with a rustls client, abuse limits, third-party clients
//! (Python smtplib, swaks, curl, openssl s_client; plain and TLS) and a
//! kill -9 crash test of the real binary. One test binary keeps link
//! times down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod binary;
mod clients;
mod content;
mod interop;
mod lifecycle;
mod limits;
mod pipelining_flood;
mod replies;
mod session;
mod store_faults;
mod tls;
mod util;
