//! Outbound mail delivery, client side: [`route`] finds where a domain's
//! mail goes (MX, RFC 5321 §5.1) and [`client`] speaks SMTP to it. Both
//! block; the delivery engine ([`engine`]) runs them on its own worker
//! threads over the store's outbound queue and reports failures to
//! senders with [`dsn`] (RFC 3464). A [`transport`] map overrides the
//! route (and TLS and AUTH) per domain.

pub mod client;
pub mod dsn;
pub mod engine;
pub mod route;
pub mod transport;

pub use client::{ClientConfig, Envelope, Failure, Rcpt, RcptResult, Reply, Session, TlsMode};
pub use engine::{lease_owner, Config, Engine, Reconfigure, Relay, DEFAULT_LEASE, MIN_LEASE};
pub use route::{Resolver, RouteError, Target};
pub use transport::{NextHop, Route, TransportMap};
