//! A private PostgreSQL cluster for tests: [`PgCluster::start`] runs
//! `initdb` into a temporary directory and `pg_ctl start` on a free
//! loopback port with its own unix-socket directory (nothing in /etc or
//! the system's clusters is touched), creates a database and hands out
//! its `postgres://` URL; dropping it stops the server (`pg_ctl stop -m
//! fast`) and removes the directory. As root the cluster runs as an
//! unprivileged user (`postgres` if it exists, else `nobody`) through
//! `runuser`, since PostgreSQL refuses to run as root.
//!
//! The binaries are found with `pg_config --bindir` or under
//! `/usr/lib/postgresql/*/bin`; without them the test fails saying to
//! install `postgresql` (`.ci/run` does).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running private cluster; stopped and removed on drop.
pub struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    user: Option<String>,
    port: u16,
    url: String,
    _dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `pg_ctl`, if PostgreSQL is installed.
pub fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .collect();
    // The newest major version (directory names are numbers).
    found.sort_by_key(|d| {
        d.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

impl PgCluster {
    /// Start a fresh cluster with a database `mail` owned by the superuser
    /// `minimail` (trust authentication, loopback only, fsync on).
    ///
    /// # Panics
    /// When PostgreSQL is not installed, or it does not start.
    pub fn start() -> PgCluster {
        let bin = bindir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed: this test needs initdb and pg_ctl \
                 (apt-get install postgresql; .ci/run installs it)"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("minimail-pg")
            .tempdir()
            .unwrap();
        let user = if is_root() {
            Some(
                if user_exists("postgres") {
                    "postgres"
                } else {
                    "nobody"
                }
                .to_string(),
            )
        } else {
            None
        };
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).unwrap();
        if let Some(u) = &user {
            let out = Command::new("chown")
                .arg("-R")
                .arg(u)
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "chown {u} {}: {out:?}",
                dir.path().display()
            );
        }
        let mut cluster = PgCluster {
            bin,
            data,
            user,
            port: 0,
            url: String::new(),
            _dir: dir,
        };
        let out = cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                cluster.data.as_os_str(),
                "-U".as_ref(),
                "minimail".as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        check(out, "initdb");
        // A port free a moment ago may be taken by the time the server
        // binds it (tests run in parallel): try a few.
        let mut last = None;
        for _ in 0..5 {
            let port = free_port();
            let opts = server_opts(port, &sock);
            let log = cluster.data.join("server.log");
            let out = cluster.run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    cluster.data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "-o".as_ref(),
                    opts.as_ref(),
                    "start".as_ref(),
                ],
            );
            if out.status.success() {
                cluster.port = port;
                last = None;
                break;
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            last = Some(format!("{out:?}\nserver log:\n{log}"));
        }
        if let Some(why) = last {
            panic!("pg_ctl start failed: {why}");
        }
        let port = cluster.port.to_string();
        let out = cluster.run(
            "createdb",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "minimail".as_ref(),
                "mail".as_ref(),
            ],
        );
        check(out, "createdb");
        cluster.url = format!("postgres://minimail@127.0.0.1:{}/mail", cluster.port);
        cluster
    }

    /// `postgres://minimail@127.0.0.1:PORT/mail`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's processes: the postmaster (first line of its
    /// `postmaster.pid`) and its children (backends, background workers),
    /// for a test that stops them (`kill -STOP`) as a hung server.
    pub fn pids(&self) -> Vec<u32> {
        let Some(main) = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        else {
            return Vec::new();
        };
        let mut pids = vec![main];
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                // stat: "pid (comm) state ppid ..."; comm may hold spaces.
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid == Some(main) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Restart the server (`pg_ctl restart -m fast`: sessions are cut, as
    /// in a failover or an upgrade), same port and settings.
    pub fn restart(&self) {
        // With its log file: without `-l` the new server would keep
        // pg_ctl's stdout open, and reading it would never end.
        let log = self.data.join("server.log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "restart".as_ref(),
            ],
        );
        check(out, "pg_ctl restart");
    }

    /// Stop the server (`pg_ctl stop -m fast`: sessions are cut, new
    /// connections refused) until [`PgCluster::start_again`].
    pub fn stop(&self) {
        let out = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "stop".as_ref(),
            ],
        );
        check(out, "pg_ctl stop");
    }

    /// Start a server stopped by [`PgCluster::stop`] again, on the same
    /// port with the same settings (kept in `postmaster.opts`).
    pub fn start_again(&self) {
        let log = self.data.join("server.log");
        let opts = server_opts(self.port, &self.data.with_file_name("sock"));
        let out = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-o".as_ref(),
                opts.as_ref(),
                "start".as_ref(),
            ],
        );
        check(out, "pg_ctl start");
    }

    /// A new empty database `name` in the cluster; its URL.
    pub fn create_db(&self, name: &str) -> String {
        let port = self.port.to_string();
        let out = self.run(
            "createdb",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "minimail".as_ref(),
                name.as_ref(),
            ],
        );
        check(out, "createdb");
        format!("postgres://minimail@127.0.0.1:{}/{name}", self.port)
    }

    /// Run a PostgreSQL tool as the cluster's user.
    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Output {
        let prog = self.bin.join(tool);
        let mut cmd = match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(u).arg("--").arg(&prog);
                c
            }
            None => Command::new(&prog),
        };
        cmd.args(args).current_dir(Path::new("/"));
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", prog.display()))
    }
}

/// The server's settings (`pg_ctl -o`): loopback only on `port`, its
/// unix socket in `sock`, durable commits.
fn server_opts(port: u16, sock: &Path) -> String {
    format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=on \
         -c synchronous_commit=on -c shared_buffers=16MB -c max_connections=60 \
         -c log_min_messages=warning",
        sock.display()
    )
}

fn check(out: Output, tool: &str) {
    assert!(
        out.status.success(),
        "{tool} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.port == 0 {
            return;
        }
        let out = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
        if !out.status.success() {
            eprintln!("pg_ctl stop: {out:?}");
        }
    }
}

/// A fresh database in a cluster shared by the tests of one process
/// that run at the same time (started on first use, stopped when the last
/// [`PgDb`] of it is dropped): a cluster per test would cost seconds each.
pub struct PgDb {
    url: String,
    _cluster: std::sync::Arc<PgCluster>,
}

impl PgDb {
    /// `postgres://minimail@127.0.0.1:PORT/tN`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A new empty database (see [`PgDb`]).
pub fn fresh_db() -> PgDb {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, Weak};
    static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
    static N: AtomicUsize = AtomicUsize::new(0);
    let cluster = {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        match shared.upgrade() {
            Some(c) => c,
            None => {
                let c = Arc::new(PgCluster::start());
                *shared = Arc::downgrade(&c);
                c
            }
        }
    };
    let url = cluster.create_db(&format!("t{}", N.fetch_add(1, Ordering::SeqCst)));
    PgDb {
        url,
        _cluster: cluster,
    }
}

/// PgBouncer (Debian's `pgbouncer`) in front of a [`PgCluster`], session
/// pooling, on a free loopback port of its own: what a front end behind a
/// connection pooler (or NAT) talks to. Its processes run as the
/// cluster's user; stopped on drop.
pub struct PgBouncer {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl PgCluster {
    /// Start PgBouncer in front of this cluster's `mail` database.
    ///
    /// # Panics
    /// When `pgbouncer` is not installed (`apt-get install pgbouncer`;
    /// `.ci/run` does) or does not start listening.
    pub fn bouncer(&self) -> PgBouncer {
        let prog = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!(
                    "pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)"
                )
            });
        let dir = tempfile::Builder::new()
            .prefix("minimail-pgbouncer")
            .tempdir()
            .unwrap();
        let port = free_port();
        let ini = dir.path().join("pgbouncer.ini");
        let users = dir.path().join("users.txt");
        std::fs::write(&users, "\"minimail\" \"\"\n").unwrap();
        std::fs::write(
            &ini,
            format!(
                "[databases]\nmail = host=127.0.0.1 port={} dbname=mail\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                 pool_mode = session\nmax_client_conn = 200\ndefault_pool_size = 60\n\
                 ignore_startup_parameters = extra_float_digits,options\n\
                 logfile = {}\npidfile = {}\n",
                self.port,
                users.display(),
                dir.path().join("pgbouncer.log").display(),
                dir.path().join("pgbouncer.pid").display()
            ),
        )
        .unwrap();
        if let Some(u) = &self.user {
            let out = Command::new("chown")
                .arg("-R")
                .arg(u)
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {out:?}");
        }
        let mut cmd = match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(u).arg("--").arg(prog);
                c
            }
            None => Command::new(prog),
        };
        let child = cmd
            .arg(&ini)
            .current_dir("/")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
        let mut bouncer = PgBouncer {
            child,
            url: format!("postgres://minimail@127.0.0.1:{port}/mail"),
            _dir: dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return bouncer;
            }
            if let Ok(Some(status)) = bouncer.child.try_wait() {
                let log = std::fs::read_to_string(bouncer._dir.path().join("pgbouncer.log"))
                    .unwrap_or_default();
                panic!("pgbouncer exited: {status}\n{log}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("pgbouncer does not listen on 127.0.0.1:{port}");
    }
}

impl PgBouncer {
    /// `postgres://minimail@127.0.0.1:PORT/mail` through PgBouncer.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // pgbouncer itself (under runuser, which a SIGKILL would not
        // pass on), then what started it.
        if let Ok(pid) = std::fs::read_to_string(self._dir.path().join("pgbouncer.pid")) {
            let _ = Command::new("kill").arg("-TERM").arg(pid.trim()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
