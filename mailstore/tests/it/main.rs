//! Integration tests of the mail store: one test binary, modules by concern.
#![allow(clippy::unwrap_used)]

mod util;

mod messages;
mod open;
mod threads;
mod users;
