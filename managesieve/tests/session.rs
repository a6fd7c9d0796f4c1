//! The ManageSieve server over real loopback sockets (RFC 5804), in
//! process over a temporary store: the capability greeting, every script
//! command, SASL PLAIN and LOGIN with continuations, STARTTLS, failed
//! logins, and each limit (line length, literal size, script count, idle
//! timeout), with a second session served normally meanwhile.

#![allow(clippy::unwrap_used)]

use mailstore::Store;
use managesieve::Config;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use testkit::server::Running;

struct Server {
    addr: SocketAddr,
    store: Store,
    _running: Running,
    _dir: tempfile::TempDir,
}

fn server(tweak: impl FnOnce(&mut Config)) -> Server {
    let (dir, store) = testkit::store::temp_store();
    testkit::store::add_user(&store, "alice@localhost", "pw");
    testkit::store::add_user(&store, "bob@localhost", "pw2");
    let mut config = Config {
        throttle: netloop::Throttle::new(netloop::ThrottleConfig {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(20),
            ..netloop::ThrottleConfig::default()
        }),
        ..Config::default()
    };
    tweak(&mut config);
    let server =
        managesieve::bind(&testkit::server::listeners(false), config, store.clone()).unwrap();
    let mut running = Running::new();
    let addr = running.spawn(server)[0];
    Server {
        addr,
        store,
        _running: running,
        _dir: dir,
    }
}

/// A line client: responses are read up to their final OK / NO / BYE,
/// literals included.
struct Client<S: Read + Write> {
    r: BufReader<S>,
}

impl<S: Read + Write> Client<S> {
    fn new(s: S) -> Self {
        Client {
            r: BufReader::new(s),
        }
    }

    fn send(&mut self, b: &[u8]) {
        self.r.get_mut().write_all(b).unwrap();
        self.r.get_mut().flush().unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.r.read_line(&mut l).unwrap();
        assert!(n > 0, "server closed the connection");
        l
    }

    /// Everything up to the final response, and that response's line.
    fn response(&mut self) -> (String, String) {
        let mut all = String::new();
        loop {
            let l = self.line();
            all.push_str(&l);
            let is_final = l.starts_with("OK") || l.starts_with("NO") || l.starts_with("BYE");
            if let Some(n) = testkit::imap::literal_len(l.trim_end().as_bytes()) {
                let mut buf = vec![0; n];
                self.r.read_exact(&mut buf).unwrap();
                all.push_str(&String::from_utf8_lossy(&buf));
                if is_final {
                    let rest = self.line();
                    all.push_str(&rest);
                    return (all, l + &String::from_utf8_lossy(&buf) + &rest);
                }
                continue;
            }
            if is_final {
                return (all, l);
            }
        }
    }

    fn cmd(&mut self, c: &str) -> (String, String) {
        self.send(format!("{c}\r\n").as_bytes());
        self.response()
    }

    /// `cmd`, insisting on the final line starting with `want`.
    fn expect(&mut self, c: &str, want: &str) -> String {
        let (all, last) = self.cmd(c);
        assert!(
            last.starts_with(want),
            "{c:?}: wanted {want:?}, got {all:?}"
        );
        all
    }

    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.r.read(&mut buf), Ok(0) | Err(_))
    }
}

fn b64(s: &str) -> String {
    testkit::smtp::b64(s)
}

fn connect(addr: SocketAddr) -> Client<std::net::TcpStream> {
    let mut c = Client::new(testkit::net::connect(addr));
    let (greeting, last) = c.response();
    assert!(last.starts_with("OK"), "{greeting}");
    c
}

fn login(addr: SocketAddr, user: &str, pass: &str) -> Client<std::net::TcpStream> {
    let mut c = connect(addr);
    c.expect(
        &format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            b64(&format!("\0{user}\0{pass}"))
        ),
        "OK",
    );
    c
}

fn put(c: &mut Client<impl Read + Write>, name: &str, script: &str) -> (String, String) {
    c.send(format!("PUTSCRIPT \"{name}\" {{{}+}}\r\n{script}\r\n", script.len()).as_bytes());
    c.response()
}

const FILE_LISTS: &str = "require [\"fileinto\"];\r\nif header :contains \"Subject\" \"[lists]\" { fileinto \"Lists\"; }\r\n";

#[test]
fn greeting_lists_the_capabilities_of_rfc_5804() {
    let s = server(|_| {});
    let mut c = Client::new(testkit::net::connect(s.addr));
    let (greeting, last) = c.response();
    assert!(last.starts_with("OK"), "{greeting}");
    for want in [
        "\"IMPLEMENTATION\" \"minimail ManageSieve\"\r\n",
        "\"SASL\" \"PLAIN LOGIN\"\r\n",
        "\"VERSION\" \"1.0\"\r\n",
        "\"MAXREDIRECTS\" \"3\"\r\n",
        "\"UNAUTHENTICATE\"\r\n",
    ] {
        assert!(greeting.contains(want), "{want:?} missing: {greeting}");
    }
    let sieve = greeting
        .lines()
        .find(|l| l.starts_with("\"SIEVE\""))
        .unwrap();
    for ext in ["fileinto", "vacation", "imap4flags", "reject", "envelope"] {
        assert!(sieve.contains(ext), "{sieve}");
    }
    // No certificate: no STARTTLS.
    assert!(!greeting.contains("STARTTLS"), "{greeting}");
    // CAPABILITY gives the same list; after login it names the owner.
    let (again, _) = c.cmd("CAPABILITY");
    assert_eq!(again, greeting.replace(&last, "OK\r\n"));
    c.expect(
        &format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            b64("\0alice@localhost\0pw")
        ),
        "OK",
    );
    let (after, _) = c.cmd("CAPABILITY");
    assert!(after.contains("\"OWNER\" \"alice@localhost\""), "{after}");
    c.expect("LOGOUT", "OK");
    assert!(c.closed());
}

#[test]
fn scripts_are_put_listed_activated_fetched_renamed_and_deleted() {
    let s = server(|_| {});
    let mut c = login(s.addr, "alice@localhost", "pw");
    assert_eq!(c.cmd("LISTSCRIPTS").0, "OK\r\n");
    c.expect("HAVESPACE \"rules\" 1000", "OK");
    let (_, last) = put(&mut c, "rules", FILE_LISTS);
    assert_eq!(last, "OK\r\n");
    let (_, last) = put(
        &mut c,
        "vacation",
        "require \"vacation\";\r\nvacation \"away\";\r\n",
    );
    assert_eq!(last, "OK\r\n");
    assert_eq!(
        c.cmd("LISTSCRIPTS").0,
        "\"rules\"\r\n\"vacation\"\r\nOK\r\n"
    );
    c.expect("SETACTIVE \"rules\"", "OK");
    assert_eq!(
        c.cmd("listscripts").0,
        "\"rules\" ACTIVE\r\n\"vacation\"\r\nOK\r\n"
    );
    // GETSCRIPT: the script as a literal, byte for byte.
    let (got, _) = c.cmd("GETSCRIPT \"rules\"");
    assert_eq!(
        got,
        format!("{{{}}}\r\n{FILE_LISTS}\r\nOK\r\n", FILE_LISTS.len())
    );
    // The store has it active for delivery.
    let alice = s
        .store
        .read_sync(|r| r.user("alice@localhost"))
        .unwrap()
        .unwrap()
        .id;
    let (name, text) = s
        .store
        .read_sync(move |r| r.active_sieve_script(alice))
        .unwrap()
        .unwrap();
    assert_eq!(
        (name.as_str(), text.as_slice()),
        ("rules", FILE_LISTS.as_bytes())
    );
    // Response codes of §1.3.
    let nonexistent = c.expect("GETSCRIPT \"nope\"", "NO (NONEXISTENT)");
    assert!(nonexistent.contains("no script"), "{nonexistent}");
    c.expect("SETACTIVE \"nope\"", "NO (NONEXISTENT)");
    c.expect("DELETESCRIPT \"nope\"", "NO (NONEXISTENT)");
    c.expect("DELETESCRIPT \"rules\"", "NO (ACTIVE)");
    c.expect("RENAMESCRIPT \"vacation\" \"rules\"", "NO (ALREADYEXISTS)");
    c.expect("RENAMESCRIPT \"nope\" \"other\"", "NO (NONEXISTENT)");
    // A renamed active script stays active.
    c.expect("RENAMESCRIPT \"rules\" \"filters\"", "OK");
    assert_eq!(
        c.cmd("LISTSCRIPTS").0,
        "\"filters\" ACTIVE\r\n\"vacation\"\r\nOK\r\n"
    );
    c.expect("SETACTIVE \"\"", "OK");
    c.expect("DELETESCRIPT \"filters\"", "OK");
    assert_eq!(c.cmd("LISTSCRIPTS").0, "\"vacation\"\r\nOK\r\n");
    assert_eq!(
        s.store
            .read_sync(move |r| r.active_sieve_script(alice))
            .unwrap(),
        None
    );
    // NOOP echoes its tag (§2.13); bob sees none of alice's scripts.
    assert_eq!(
        c.cmd("NOOP \"STARTTLS-SYNC-42\"").0,
        "OK (TAG \"STARTTLS-SYNC-42\") \"Done\"\r\n"
    );
    let mut bob = login(s.addr, "bob@localhost", "pw2");
    assert_eq!(bob.cmd("LISTSCRIPTS").0, "OK\r\n");
    bob.expect("GETSCRIPT \"vacation\"", "NO (NONEXISTENT)");
    // UNAUTHENTICATE (§2.14) goes back to the start.
    c.expect("UNAUTHENTICATE", "OK");
    c.expect("LISTSCRIPTS", "NO");
}

#[test]
fn a_script_that_does_not_compile_is_refused_and_nothing_changes() {
    let s = server(|_| {});
    let mut c = login(s.addr, "alice@localhost", "pw");
    assert_eq!(put(&mut c, "rules", FILE_LISTS).1, "OK\r\n");
    c.expect("SETACTIVE \"rules\"", "OK");
    // RFC 5804 §2.6's example of a bad script, over the active one's name
    // and under a new name: NO with the compiler's reason.
    let bad = "#comment\r\nInvalidSieveCommand\r\n";
    for name in ["rules", "new"] {
        let (all, last) = put(&mut c, name, bad);
        assert!(last.starts_with("NO "), "{all}");
        assert!(all.to_lowercase().contains("invalidsievecommand"), "{all}");
    }
    let (all, last) = put(&mut c, "unclosed", "if true {");
    assert!(
        last.starts_with("NO ") && all.contains("Unterminated block"),
        "{all}"
    );
    // Nothing stored, the active script untouched.
    assert_eq!(c.cmd("LISTSCRIPTS").0, "\"rules\" ACTIVE\r\nOK\r\n");
    let (got, _) = c.cmd("GETSCRIPT \"rules\"");
    assert!(got.contains(FILE_LISTS), "{got}");
    // CHECKSCRIPT says the same and stores nothing.
    c.send(format!("CHECKSCRIPT {{{}+}}\r\n{bad}\r\n", bad.len()).as_bytes());
    let (all, last) = c.response();
    assert!(
        last.starts_with("NO ") && all.to_lowercase().contains("invalidsievecommand"),
        "{all}"
    );
    c.send(format!("CHECKSCRIPT {{{}+}}\r\n{FILE_LISTS}\r\n", FILE_LISTS.len()).as_bytes());
    assert_eq!(c.response().1, "OK\r\n");
    assert_eq!(c.cmd("LISTSCRIPTS").0, "\"rules\" ACTIVE\r\nOK\r\n");
}

#[test]
fn sasl_plain_and_login_with_continuations() {
    let s = server(|_| {});
    // PLAIN with an empty challenge, the response as a literal (what
    // sieve-connect sends).
    let mut c = connect(s.addr);
    c.send(b"AUTHENTICATE \"PLAIN\"\r\n");
    assert_eq!(c.line(), "\"\"\r\n");
    let resp = b64("\0alice@localhost\0pw");
    c.send(format!("{{{}+}}\r\n{resp}\r\n", resp.len()).as_bytes());
    assert_eq!(c.response().1, "OK \"Logged in\"\r\n");
    c.expect("LISTSCRIPTS", "OK");
    // LOGIN: Username:, Password:.
    let mut c = connect(s.addr);
    c.send(b"AUTHENTICATE \"LOGIN\"\r\n");
    assert_eq!(c.line(), "\"VXNlcm5hbWU6\"\r\n");
    c.send(format!("\"{}\"\r\n", b64("bob@localhost")).as_bytes());
    assert_eq!(c.line(), "\"UGFzc3dvcmQ6\"\r\n");
    c.send(format!("\"{}\"\r\n", b64("pw2")).as_bytes());
    assert_eq!(c.response().1, "OK \"Logged in\"\r\n");
    // "*" cancels; bad base64 and unknown mechanisms are refused.
    let mut c = connect(s.addr);
    c.send(b"AUTHENTICATE \"PLAIN\"\r\n");
    assert_eq!(c.line(), "\"\"\r\n");
    c.send(b"\"*\"\r\n");
    assert!(c.response().1.contains("cancelled"));
    c.expect("AUTHENTICATE \"PLAIN\" \"!!!\"", "NO");
    c.expect("AUTHENTICATE \"CRAM-MD5\"", "NO");
    c.expect("AUTHENTICATE \"PLAIN\" \"\" \"extra\"", "NO");
    // Acting for another user is refused.
    c.expect(
        &format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            b64("bob@localhost\0alice@localhost\0pw")
        ),
        "NO",
    );
    c.expect("LISTSCRIPTS", "NO");
    // Still usable.
    c.expect(
        &format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            b64("\0alice@localhost\0pw")
        ),
        "OK",
    );
    c.expect("AUTHENTICATE \"PLAIN\" \"x\"", "NO");
}

#[test]
fn failed_logins_are_answered_late_and_the_third_ends_the_session() {
    let s = server(|_| {});
    let mut c = connect(s.addr);
    let wrong = format!(
        "AUTHENTICATE \"PLAIN\" \"{}\"",
        b64("\0alice@localhost\0wrong")
    );
    let started = std::time::Instant::now();
    assert_eq!(c.cmd(&wrong).1, "NO \"Authentication failed\"\r\n");
    assert!(started.elapsed() >= Duration::from_millis(20));
    c.expect(
        &format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            b64("\0nobody@localhost\0pw")
        ),
        "NO",
    );
    let bye = c.expect(&wrong, "BYE");
    assert!(bye.contains("failed 3 times"), "{bye}");
    assert!(c.closed());
    // Other sessions go on.
    let mut ok = login(s.addr, "alice@localhost", "pw");
    ok.expect("LISTSCRIPTS", "OK");
}

#[test]
fn commands_before_login_and_bad_syntax_get_no() {
    let s = server(|_| {});
    let mut c = connect(s.addr);
    for cmd in [
        "LISTSCRIPTS",
        "GETSCRIPT \"a\"",
        "SETACTIVE \"\"",
        "DELETESCRIPT \"a\"",
        "HAVESPACE \"a\" 1",
    ] {
        assert!(c.cmd(cmd).1.contains("Authenticate first"), "{cmd}");
    }
    assert!(c.cmd("FROBNICATE").1.contains("Unknown command"));
    assert!(c.cmd("GETSCRIPT unquoted").1.starts_with("NO"));
    assert!(c.cmd("HAVESPACE \"a\" \"b\"").1.starts_with("NO"));
    assert!(c.cmd("STARTTLS").1.contains("not available"));
    c.expect("NOOP", "OK");
}

#[test]
fn limits_line_literal_and_script_count_each_answered_clearly() {
    let s = server(|_| {});
    let mut c = login(s.addr, "alice@localhost", "pw");
    // A line over MAX_LINE: NO, and the session goes on.
    let long = format!("GETSCRIPT \"{}\"", "x".repeat(managesieve::MAX_LINE));
    assert!(c.cmd(&long).1.contains("Line too long"));
    c.expect("NOOP", "OK");
    // A literal over the script size: read, dropped, NO (QUOTA/MAXSIZE).
    let max = mailstore::MAX_SCRIPT_SIZE;
    let big = format!("#{}\r\n", "x".repeat(max));
    let (all, last) = put(&mut c, "big", &big);
    assert!(last.starts_with("NO (QUOTA/MAXSIZE)"), "{all}");
    assert!(all.contains(&max.to_string()), "{all}");
    c.expect(
        &format!("HAVESPACE \"big\" {}", max + 1),
        "NO (QUOTA/MAXSIZE)",
    );
    // Exactly the limit is taken.
    let at_limit = format!("#{}\r\n", "x".repeat(max - 3));
    assert_eq!(at_limit.len(), max);
    assert_eq!(put(&mut c, "at-limit", &at_limit).1, "OK\r\n");
    assert_eq!(c.cmd("LISTSCRIPTS").0, "\"at-limit\"\r\nOK\r\n");
    // MAX_SCRIPTS scripts; the next is refused (replacing one is not).
    for i in 1..mailstore::MAX_SCRIPTS {
        assert_eq!(put(&mut c, &format!("s{i}"), "keep;").1, "OK\r\n");
    }
    c.expect("HAVESPACE \"one-more\" 10", "NO (QUOTA/MAXSCRIPTS)");
    assert!(put(&mut c, "one-more", "keep;")
        .1
        .starts_with("NO (QUOTA/MAXSCRIPTS)"));
    assert_eq!(put(&mut c, "s1", "discard;").1, "OK\r\n");
    c.expect("HAVESPACE \"s1\" 10", "OK");
    // A literal announced past what is worth reading ends the session.
    let mut other = login(s.addr, "bob@localhost", "pw2");
    other.send(format!("PUTSCRIPT \"x\" {{{}+}}\r\n", managesieve::MAX_DISCARD + 1).as_bytes());
    let (all, last) = other.response();
    assert!(last.starts_with("BYE (QUOTA/MAXSIZE)"), "{all}");
    assert!(other.closed());
    // Meanwhile the first session is served.
    c.expect("LISTSCRIPTS", "OK");
}

#[test]
fn an_idle_session_is_told_bye() {
    let s = server(|c| c.timeout = Duration::from_millis(500));
    let mut c = connect(s.addr);
    let started = std::time::Instant::now();
    let (all, last) = c.response();
    assert!(last.starts_with("BYE"), "{all}");
    assert!(all.contains("inactivity"), "{all}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(c.closed());
}

#[test]
fn starttls_sends_the_capabilities_again_under_tls() {
    let cert = testkit::tls::test_cert();
    let s = server(|c| c.net.tls = Some(cert.tls.clone()));
    // From 127.0.0.2 the client is not local: no plaintext AUTH offered.
    let tcp = testkit::net::connect_from(IpAddr::from([127, 0, 0, 2]), s.addr);
    let mut c = Client::new(tcp);
    let (greeting, _) = c.response();
    assert!(greeting.contains("\"STARTTLS\"\r\n"), "{greeting}");
    assert!(greeting.contains("\"SASL\" \"\"\r\n"), "{greeting}");
    let refused = c.expect(
        &format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            b64("\0alice@localhost\0pw")
        ),
        "NO (ENCRYPT-NEEDED)",
    );
    assert!(refused.contains("STARTTLS"), "{refused}");
    c.expect("STARTTLS", "OK");
    let tcp = c.r.into_inner();
    let tls = testkit::tls::client_stream(cert.client_config(), "localhost", tcp);
    let mut c = Client::new(tls);
    // §2.2: the capabilities come unasked once TLS is up.
    let (caps, last) = c.response();
    assert!(last.starts_with("OK"), "{caps}");
    assert!(caps.contains("\"SASL\" \"PLAIN LOGIN\""), "{caps}");
    assert!(!caps.contains("STARTTLS"), "{caps}");
    c.expect(
        &format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            b64("\0alice@localhost\0pw")
        ),
        "OK",
    );
    assert_eq!(put(&mut c, "rules", FILE_LISTS).1, "OK\r\n");
    c.expect("STARTTLS", "NO");
    c.expect("LOGOUT", "OK");
}

#[test]
fn commands_pipelined_in_one_write_are_answered_in_order() {
    let s = server(|_| {});
    let mut c = connect(s.addr);
    let auth = b64("\0alice@localhost\0pw");
    c.send(
        format!(
            "AUTHENTICATE \"PLAIN\" \"{auth}\"\r\nPUTSCRIPT \"a\" {{5+}}\r\nkeep;\r\nSETACTIVE \"a\"\r\nLISTSCRIPTS\r\nLOGOUT\r\n"
        )
        .as_bytes(),
    );
    let mut all = String::new();
    while !c.closed_after_reading(&mut all) {}
    assert_eq!(
        all,
        "OK \"Logged in\"\r\nOK\r\nOK\r\n\"a\" ACTIVE\r\nOK\r\nOK \"Logout complete\"\r\n"
    );
}

impl<S: Read + Write> Client<S> {
    /// Append what arrives to `all`; true at EOF.
    fn closed_after_reading(&mut self, all: &mut String) -> bool {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(0) | Err(_) => true,
            Ok(_) => {
                all.push_str(&l);
                false
            }
        }
    }
}
