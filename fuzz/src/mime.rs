//! The checks of the MIME fuzz targets (`mime_structure`, `mime_tree`): a
//! raw message goes through a real `mailstore::Store` (append, read the
//! metadata back, expunge; mailstore's parser is private), imapd builds
//! ENVELOPE, BODY and BODYSTRUCTURE from the metadata and serializes them,
//! and mua's response parser must read back exactly those values
//! (RFC 3501 §7.4.2 `envelope`, `body`, `body-type-mpart`). Every part the
//! tree names must be reachable by its section path, and byte ranges must
//! lie inside the message.

use crate::check_fetch_round_trip;
use imapd::response::Value;
use imapd::structure::{body, envelope, find_part};
use mailstore::{Flags, MailboxId, MimePart, Store};
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
pub fn check_grammar(v: &Value) {
    match v {
        Value::Concat(items) => {
            assert!(!items.is_empty(), "empty body-type-mpart");
            items.iter().for_each(check_grammar);
        }
        Value::List(items) => items.iter().for_each(check_grammar),
        _ => {}
    }
}

/// Byte ranges inside the message, nesting bounded, and every part
/// reachable by its section path through imapd's `find_part`. `path` is
/// the section number of `part` (empty for the whole message). RFC 3501
/// §6.4.5: the parts of a message (the top level, or the message inside a
/// message/rfc822 part) are its multipart's children path.1, path.2, ...,
/// or, when it is not multipart, its body as path.1 (for the top level,
/// the top-level part itself). Below a message/rfc822 part, numbers
/// address the parts of the encapsulated message; below a multipart, its
/// children. `message` says `part` is a message whose parts come next.
pub fn walk(root: &MimePart, part: &MimePart, path: &mut Vec<u32>, len: u64, depth: usize) {
    walk_at(root, part, path, len, depth, true);
}

fn walk_at(
    root: &MimePart,
    part: &MimePart,
    path: &mut Vec<u32>,
    len: u64,
    depth: usize,
    message: bool,
) {
    assert!(depth < 200, "structure nested too deep");
    walk_ranges(part, len);
    let is_multi =
        |p: &MimePart| p.media_type.eq_ignore_ascii_case("multipart") && !p.parts.is_empty();
    let check = |path: &[u32], want: &MimePart| {
        let found = find_part(root, path);
        assert!(
            found.is_some_and(|p| std::ptr::eq(p, want)),
            "part {path:?} does not lead to its part"
        );
    };
    if is_multi(part) {
        for (i, child) in part.parts.iter().enumerate() {
            path.push(i as u32 + 1);
            check(path, child);
            walk_at(root, child, path, len, depth + 1, false);
            path.pop();
        }
    } else if message {
        // Part 1 of a non-multipart message is its body: this part.
        path.push(1);
        check(path, part);
        walk_at(root, part, path, len, depth + 1, false);
        path.pop();
    } else if let Some((_, inner)) = part.embedded.as_deref() {
        // The encapsulated message's parts, numbered below this one.
        walk_at(root, inner, path, len, depth + 1, true);
    }
}

fn walk_ranges(part: &MimePart, len: u64) {
    assert!(
        part.header_range.0 <= part.header_range.1
            && part.header_range.1 <= len
            && part.body_range.0 <= part.body_range.1
            && part.body_range.1 <= len,
        "ranges {:?} {:?} outside a {len}-octet message",
        part.header_range,
        part.body_range
    );
}

/// Store `data` as a message, read its metadata back and run every check;
/// the MIME structure mailstore computed, for callers with more to check.
pub fn check_message(data: &[u8]) -> MimePart {
    let f = fixture();
    let raw = data.to_vec();
    let mailbox = f.mailbox;
    let appended = f
        .store
        .write_sync(move |tx| tx.append(mailbox, &raw, &Flags::default(), 0))
        .expect("append");
    let mut metas = f
        .store
        .read_sync(|r| r.messages(mailbox, &[appended.uid]))
        .expect("read back");
    f.store
        .write_sync(move |tx| tx.expunge(mailbox, Some(&[appended.uid])))
        .expect("expunge");
    assert_eq!(metas.len(), 1, "the appended message");
    let meta = metas.swap_remove(0);
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
    meta.structure
}
