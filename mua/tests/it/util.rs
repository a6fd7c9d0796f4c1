//! Test harness: a temporary store with users, SMTP and IMAP servers on
//! ephemeral loopback ports, and a runner for the `mua` binary.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

/// Password of every test user (distinctive, so traces can be searched).
pub const PASSWORD: &str = "s3cret-Pw-9";

/// Both servers over one temporary store.
pub struct Servers {
    pub smtp: SocketAddr,
    pub imap: SocketAddr,
    /// Implicit-TLS listeners (`start_tls` only).
    pub smtps: Option<SocketAddr>,
    pub imaps: Option<SocketAddr>,
    /// The servers' self-signed certificate, PEM (`start_tls` only).
    pub cafile: std::path::PathBuf,
    handles: Vec<netloop::ShutdownHandle>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
}

/// What one `mua` run produced.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

impl Servers {
    /// Starts smtpd and imapd with users alice@localhost and bob@localhost.
    pub fn start() -> Servers {
        Servers::start_with(None)
    }

    /// As `start`, with a self-signed certificate for 127.0.0.1 and
    /// localhost: STARTTLS on `smtp`/`imap`, implicit TLS on `smtps`/`imaps`.
    pub fn start_tls() -> Servers {
        Servers::start_tls_for(&["localhost", "127.0.0.1"])
    }

    /// As `start_tls`, with a certificate for `names`.
    pub fn start_tls_for(names: &[&str]) -> Servers {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        Servers::start_with(Some(netloop::tls::self_signed(&names).unwrap()))
    }

    fn start_with(cert: Option<netloop::tls::SelfSigned>) -> Servers {
        let dir = tempfile::tempdir().unwrap();
        let store = mailstore::Store::open(dir.path().join("mail.db")).unwrap();
        for user in ["alice@localhost", "bob@localhost"] {
            store
                .write_sync(move |tx| tx.create_user(user, &mailstore::hash_password(PASSWORD)?))
                .unwrap();
        }
        let cafile = dir.path().join("ca.pem");
        let mut net = netloop::Config::default();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut listen = vec![netloop::Listener {
            addr: any,
            implicit_tls: false,
        }];
        if let Some(c) = &cert {
            std::fs::write(&cafile, &c.cert_pem).unwrap();
            net.tls =
                Some(netloop::tls::from_pem(c.cert_pem.as_bytes(), c.key_pem.as_bytes()).unwrap());
            listen.push(netloop::Listener {
                addr: any,
                implicit_tls: true,
            });
        }
        let smtp = smtpd::bind_listeners(
            &listen,
            smtpd::Config {
                domains: vec!["localhost".into()],
                net: net.clone(),
                ..Default::default()
            },
            store.clone(),
        )
        .unwrap();
        let imap = imapd::bind_listeners(
            &listen,
            imapd::Config {
                net,
                ..Default::default()
            },
            store.clone(),
        )
        .unwrap();
        let smtp_addrs = smtp.local_addrs();
        let imap_addrs = imap.local_addrs();
        let handles = vec![smtp.shutdown_handle(), imap.shutdown_handle()];
        let threads = vec![
            std::thread::spawn(move || smtp.run()),
            std::thread::spawn(move || imap.run()),
        ];
        Servers {
            smtp: smtp_addrs[0],
            imap: imap_addrs[0],
            smtps: smtp_addrs.get(1).copied(),
            imaps: imap_addrs.get(1).copied(),
            cafile,
            handles,
            threads,
            dir,
        }
    }

    /// A `mua` command for `user`, configured through the environment only.
    pub fn mua(&self, user: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mua"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("MUA_SMTP", self.smtp.to_string())
            .env("MUA_IMAP", self.imap.to_string())
            .env("MUA_USER", user)
            .env("MUA_PASSWORD", PASSWORD);
        c
    }

    /// Runs `mua` as `user` with `args` and optional stdin.
    pub fn run(&self, user: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(self.mua(user).args(args), stdin)
    }

    /// Runs and insists on success.
    pub fn ok(&self, user: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let out = self.run(user, args, stdin);
        assert_eq!(out.code, 0, "mua {args:?} failed: {}", out.stderr);
        out
    }

    /// The UID of the newest message in `mailbox` (via `list --json`).
    pub fn newest_uid(&self, user: &str, mailbox: &str) -> u64 {
        let out = self.ok(
            user,
            &["list", "--json", "--mailbox", mailbox, "--limit", "1"],
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v[0]["uid"].as_u64().unwrap()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for h in &self.handles {
            h.shutdown();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Runs a prepared command, feeding `stdin` (or nothing).
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        pipe.write_all(data).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stdout_bytes: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
