//! Fuzz target: structure-aware MIME. The input is decoded by `arbitrary`
//! into a message tree (`minimail_fuzz::mime_tree::Tree`: nested
//! multipart, message/rfc822 and digest nodes, text/base64/quoted-printable
//! leaves, encoded words, wrong/duplicate/missing boundaries, missing close
//! delimiters, extra fields, spliced bytes; up to 1,000 levels of nesting
//! and 10,000 parts from a few input bytes), rendered to a message that goes
//! through the same checks as `mime_structure` (`minimail_fuzz::mime`).
//! When the rendering is clean (no quirk that changes how it must be read,
//! within mailstore's bounds), mailstore's structure must also be the tree
//! rendered: the same multiparts with as many parts, the same embedded
//! messages, and every leaf's body exactly the bytes written for it.
//!
//! `MIME_TREE_DUMP=FILE` writes each rendered message to FILE before the
//! checks (to get the message of a finding: run the target on it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use minimail_fuzz::mime::check_message;
use minimail_fuzz::mime_tree::{check_expected, render, Tree};
use std::sync::OnceLock;

fn dump() -> Option<&'static str> {
    static D: OnceLock<Option<String>> = OnceLock::new();
    D.get_or_init(|| std::env::var("MIME_TREE_DUMP").ok())
        .as_deref()
}

fuzz_target!(|tree: Tree| {
    let r = render(&tree);
    if let Some(path) = dump() {
        std::fs::write(path, &r.bytes).expect("write MIME_TREE_DUMP");
    }
    let structure = check_message(&r.bytes);
    if let Some((arena, root)) = &r.expect {
        check_expected(arena, *root, &structure, &r.bytes);
    }
});
