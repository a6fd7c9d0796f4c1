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
//! lie inside the message.
#![no_main]

use imapd::response::Value;
use imapd::structure::{body, envelope, find_part};
use libfuzzer_sys::fuzz_target;
use mailstore::{Flags, MailboxId, MimePart, Store};
use minimail_fuzz::check_fetch_round_trip;
use std::sync::OnceLock;

struct Fixture {
    store: Store,
    mailbox: MailboxId,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // libFuzzer ends processes without running destructors, so the
        // directory is named for run.sh to remove afterwards.
        let mut builder = tempfile::Builder::new();
        builder.prefix("minimail-fuzz-");
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            builder.tempdir_in("/dev/shm")
        } else {
            builder.tempdir()
        };
        let dir = base.expect("temporary directory for the fuzz store");
        let store = Store::open(dir.path().join("store")).expect("open store");
        let mailbox = store
            .write_sync(|tx| {
                let user = tx.create_user("fuzz@example.org", "x")?;
                tx.create_mailbox(user, "fuzz", None)
            })
            .expect("create mailbox");
        Fixture {
            store,
            mailbox,
            _dir: dir,
        }
    })
}

/// No multipart may be written with zero parts (`1*body`), and no part may
/// be sent as an empty concatenation.
fn check_grammar(v: &Value) {
    match v {
        Value::Concat(items) => {
            assert!(!items.is_empty(), "empty body-type-mpart");
            items.iter().for_each(check_grammar);
        }
        Value::List(items) => items.iter().for_each(check_grammar),
        _ => {}
    }
}

fn walk(root: &MimePart, part: &MimePart, path: &mut Vec<u32>, len: u64, depth: usize) {
    assert!(depth < 200, "structure nested too deep");
    assert!(
        part.header_range.0 <= part.header_range.1 && part.header_range.1 <= len,
        "header range {:?} outside a {len}-octet message",
        part.header_range
    );
    assert!(
        part.body_range.0 <= part.body_range.1 && part.body_range.1 <= len,
        "body range {:?} outside a {len}-octet message",
        part.body_range
    );
    // The children of a multipart (or of the body of an embedded message)
    // are parts path.1, path.2, ... (RFC 3501 §6.4.5).
    if let Some((_, inner)) = part.embedded.as_deref() {
        walk(root, inner, path, len, depth + 1);
        return;
    }
    let container = part;
    if container.media_type.eq_ignore_ascii_case("multipart") {
        for (i, child) in container.parts.iter().enumerate() {
            path.push(i as u32 + 1);
            let found = find_part(root, path);
            assert!(
                found.is_some_and(|p| std::ptr::eq(p, child)),
                "part {path:?} does not lead to its part"
            );
            walk(root, child, path, len, depth + 1);
            path.pop();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let raw = data.to_vec();
    let mailbox = f.mailbox;
    let appended = f
        .store
        .write_sync(move |tx| tx.append(mailbox, &raw, &Flags::default(), 0))
        .expect("append");
    let metas = f
        .store
        .read_sync(|r| r.messages(mailbox, &[appended.uid]))
        .expect("read back");
    f.store
        .write_sync(move |tx| tx.expunge(mailbox, Some(&[appended.uid])))
        .expect("expunge");
    let meta = metas.first().expect("the appended message");
    assert_eq!(meta.size, data.len() as u64);
    let env = envelope(&meta.envelope);
    let plain = body(&meta.structure, false);
    let ext = body(&meta.structure, true);
    for v in [&env, &plain, &ext] {
        check_grammar(v);
        check_fetch_round_trip(v);
    }
    walk(
        &meta.structure,
        &meta.structure,
        &mut Vec::new(),
        meta.size,
        0,
    );
});
