//! Outbound mail delivery, client side: [`route`] finds where a domain's
//! mail goes (MX, RFC 5321 §5.1) and [`client`] speaks SMTP to it. Both
//! block; the delivery engine runs them on its own worker threads.

pub mod client;
pub mod route;

pub use client::{ClientConfig, Envelope, Failure, Rcpt, RcptResult, Reply, Session, TlsMode};
pub use route::{Resolver, RouteError, Target};
