//! outbound's integration tests, one binary: the SMTP client against
//! scripted servers on loopback (plain and STARTTLS), MX routing against a
//! real dnsmasq.

mod client;
mod route;
mod starttls;
mod util;
