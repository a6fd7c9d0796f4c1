//! Starting and stopping servers for tests: [`Running`] runs in-process
//! servers (smtpd, imapd, anything built on `netloop`) on their own
//! threads and stops them when dropped; [`minimail_up`] starts the
//! `minimail` binary as a child process and reads its ports from its
//! start-up line; [`sigterm`] ends such a child the way an operator does.

use netloop::{Listener, Server, Service, ShutdownHandle};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::thread::JoinHandle;

/// `127.0.0.1:0`: a loopback address with a port the kernel picks.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Listeners on [`loopback`]: a plain one, and with `implicit_tls` a
/// second one that speaks TLS from the first byte.
pub fn listeners(implicit_tls: bool) -> Vec<Listener> {
    let mut v = vec![Listener {
        addr: loopback(),
        implicit_tls: false,
    }];
    if implicit_tls {
        v.push(Listener {
            addr: loopback(),
            implicit_tls: true,
        });
    }
    v
}

/// Servers running on their own threads. Dropping it asks each to shut
/// down and waits for its loop to end (errors ignored); [`Running::stop`]
/// does the same but insists that every loop ended cleanly.
#[derive(Default)]
pub struct Running {
    handles: Vec<ShutdownHandle>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl Running {
    /// Nothing running yet.
    pub fn new() -> Running {
        Running::default()
    }

    /// Run `server` on a thread of its own; the addresses it listens on,
    /// in the order of its listeners.
    pub fn spawn<S: Service>(&mut self, server: Server<S>) -> Vec<SocketAddr>
    where
        Server<S>: Send,
    {
        let addrs = server.local_addrs();
        self.handles.push(server.shutdown_handle());
        self.threads.push(std::thread::spawn(move || server.run()));
        addrs
    }

    /// Ask every server to shut down without waiting (each finishes in
    /// the background, saying goodbye to its open sessions).
    pub fn shutdown(&self) {
        for h in &self.handles {
            h.shutdown();
        }
    }

    /// Ask every server to shut down and wait for its loop to end.
    /// Panics if a loop failed.
    pub fn stop(&mut self) {
        self.shutdown();
        for t in self.threads.drain(..) {
            t.join().unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Start `bin up` (the `minimail` binary) on ephemeral ports over the store
/// `db`, with `extra` arguments and `env` variables; returns the child, its
/// start-up line (`minimail up: smtp on A, imap on B, ...`) and the log
/// lines before it. Panics if it exits first. Later stderr is drained.
pub fn minimail_up(
    bin: &str,
    db: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, String) {
    let (child, line, before, _) = minimail_up_logged(bin, db, extra, env);
    (child, line, before)
}

/// [`minimail_up`], also keeping everything the server logs after its
/// start-up line (a reader thread appends each stderr line).
pub fn minimail_up_logged(
    bin: &str,
    db: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (
    Child,
    String,
    String,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    minimail_up_at(bin, db, "127.0.0.1", extra, env)
}

/// [`minimail_up_logged`] with every listener on `host` (a loopback
/// address such as `127.0.0.2`, for several front ends on one machine).
pub fn minimail_up_at(
    bin: &str,
    db: &Path,
    host: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (
    Child,
    String,
    String,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let any = format!("{host}:0");
    let mut child = Command::new(bin)
        .arg("up")
        .args(["--smtp", &any, "--imap", &any])
        .args(["--submission", &any, "--sieve", &any, "--db"])
        .arg(db)
        .args(extra)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut before = String::new();
    let line = loop {
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "exited before it was up: {before}");
        if line.starts_with("minimail up: ") {
            break line;
        }
        before.push_str(&line);
    };
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let kept = log.clone();
    std::thread::spawn(move || loop {
        let mut line = String::new();
        match err.read_line(&mut line) {
            Ok(n) if n > 0 => kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push_str(&line),
            _ => break,
        }
    });
    (child, line, before, log)
}

/// The address after `what on ` in a start-up line (`smtp`, `imap`).
pub fn addr_of(line: &str, what: &str) -> String {
    line.split(&format!("{what} on "))
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no {what} in {line}"))
        .trim()
        .to_string()
}

/// Send SIGTERM to `child` (with `kill -TERM`); panics if that fails.
pub fn sigterm(child: &Child) {
    let ok = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}
