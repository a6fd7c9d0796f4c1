//! Running programs from tests: whether a third-party tool is installed
//! (tests that need one skip, saying so, when it is not), running a
//! command with input on its stdin, and insisting that it succeeded.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};

/// True if `tool` runs (with `arg`, e.g. `--version`); otherwise says on
/// stderr that the test is skipped.
pub fn have(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("SKIP: {tool} is not installed (.ci/run installs it)");
    }
    ok
}

/// Run `cmd` with `input` on its stdin and its output collected. Panics if
/// it cannot be started; a child that exits before reading all of its
/// input is not an error.
pub fn run(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// `out` of `tool`, after asserting that it exited successfully (the
/// failure shows its status and output).
pub fn succeeded(out: Output, tool: &str) -> Output {
    assert!(
        out.status.success(),
        "{tool} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A child process (a server under test) killed and reaped when dropped,
/// also when the test panics.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run `bin` (the `minimail` binary) with `args`, its store named by
/// `MINIMAIL_DB=db` (a path or a `postgres://` URL), `input` on stdin.
pub fn with_db(bin: &str, db: impl AsRef<OsStr>, args: &[&str], input: &str) -> Output {
    run(
        Command::new(bin).args(args).env("MINIMAIL_DB", db),
        input.as_bytes(),
    )
}

/// [`with_db`], asserting that it succeeded; its stdout.
pub fn with_db_ok(bin: &str, db: impl AsRef<OsStr>, args: &[&str], input: &str) -> String {
    let out = with_db(bin, db, args, input);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `script` with `python3 -c` (a real client: smtplib, imaplib),
/// asserting that it succeeded (its stderr shown otherwise); its stdout,
/// trimmed.
pub fn python(script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
