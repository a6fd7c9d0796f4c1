//! Test harness: smtpd, imapd and managesieve on ephemeral loopback ports over one
//! temporary store with users (started and stopped by `testkit`), and a
//! runner for the `mua` binary.

use std::net::SocketAddr;
use std::process::Command;
use testkit::server::{listeners, Running};
use testkit::tls::TestCert;

/// Password of every test user (distinctive, so traces can be searched).
pub const PASSWORD: &str = "s3cret-Pw-9";

/// Both servers over one temporary store.
pub struct Servers {
    /// First, so that the servers stop before their directory goes.
    _running: Running,
    pub smtp: SocketAddr,
    pub imap: SocketAddr,
    /// ManageSieve (plain listener, STARTTLS with `start_tls`).
    pub sieve: SocketAddr,
    /// Implicit-TLS listeners (`start_tls` only).
    pub smtps: Option<SocketAddr>,
    pub imaps: Option<SocketAddr>,
    /// The servers' self-signed certificate, PEM (`start_tls` only).
    pub cafile: std::path::PathBuf,
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
        Servers::start_with(Some(TestCert::new(names)))
    }

    fn start_with(cert: Option<TestCert>) -> Servers {
        let (dir, store) = testkit::store::temp_store();
        for user in ["alice@localhost", "bob@localhost"] {
            testkit::store::add_user(&store, user, PASSWORD);
        }
        let cafile = dir.path().join("ca.pem");
        let mut net = netloop::Config::default();
        if let Some(c) = &cert {
            c.write_cert(&cafile);
            net.tls = Some(c.tls.clone());
        }
        let listen = listeners(cert.is_some());
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
        let sieve = managesieve::bind(
            &listeners(false),
            managesieve::Config {
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
        let mut running = Running::new();
        let smtp_addrs = running.spawn(smtp);
        let imap_addrs = running.spawn(imap);
        let sieve_addrs = running.spawn(sieve);
        Servers {
            _running: running,
            smtp: smtp_addrs[0],
            imap: imap_addrs[0],
            sieve: sieve_addrs[0],
            smtps: smtp_addrs.get(1).copied(),
            imaps: imap_addrs.get(1).copied(),
            cafile,
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
            .env("MUA_SIEVE", self.sieve.to_string())
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

/// Runs a prepared command, feeding `stdin` (or nothing).
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let out = testkit::process::run(cmd, stdin.unwrap_or_default());
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stdout_bytes: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
