//! Fuzz target: the MIME -> ENVELOPE / BODYSTRUCTURE path (RFC 5322 §3.6,
//! RFC 2045 §5-6, RFC 2046 §5, RFC 3501 §7.4.2 `envelope`, `body`,
//! `body-type-mpart`, `body-ext-1part`).
//!
//! The input is a raw message. mailstore parses it on delivery (its parser
//! is private, so the message goes through a real store in a temporary
//! directory: append, read the metadata back, expunge), imapd builds the
//! ENVELOPE, BODY and BODYSTRUCTURE values and serializes them, and mua's
//! response parser must read back exactly those values. Every part the
//! tree names must be reachable by its section path, and byte ranges must
//! lie inside the message. The checks are shared with `mime_tree`
//! (`minimail_fuzz::mime`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    minimail_fuzz::mime::check_message(data);
});
