//! Embeds every transcript under `transcripts/{smtp,imap,mixed}/` into the binary
//! (so `protocol-tests` runs without the source tree), as a generated list of
//! `(relative path, include_str!)` pairs.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time, not baked in with env!(): a build script binary
    // reused from a target directory copied from another checkout (a git
    // worktree seeded with `cp -r target`) would otherwise embed that
    // checkout's transcripts.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let root = Path::new(&manifest).join("transcripts");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    for proto in ["smtp", "imap", "mixed"] {
        let dir = root.join(proto);
        println!("cargo:rerun-if-changed={}", dir.display());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "txt") {
                println!("cargo:rerun-if-changed={}", p.display());
                files.push((format!("{proto}/{}", e.file_name().to_string_lossy()), p));
            }
        }
    }
    files.sort();
    let mut out = String::from("/// Transcripts compiled into the binary: (path under transcripts/, text).\npub static BUILTIN: &[(&str, &str)] = &[\n");
    for (rel, p) in &files {
        let _ = writeln!(
            out,
            "    ({rel:?}, include_str!({:?})),",
            p.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("builtin.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        println!("cargo:warning=cannot write {}: {e}", dest.display());
    }
}
