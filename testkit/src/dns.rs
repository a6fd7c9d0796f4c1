//! A real DNS server for tests: Debian's dnsmasq (package dnsmasq-base) on
//! a free loopback port, serving only the records given on its command
//! line (`--mx-host=...`, `--host-record=...`, ...); every other name under
//! `.test` does not exist (NXDOMAIN). Killed when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// A running dnsmasq.
pub struct Dnsmasq {
    child: Child,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsmasq {
    /// Start one serving `records` (dnsmasq options); panics if it cannot.
    pub fn start(records: &[String]) -> Dnsmasq {
        for _attempt in 0..5 {
            // The port of a TCP listener just closed; dnsmasq binds UDP and TCP.
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new(DNSMASQ)
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--pid-file",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--local=/test/",
                ])
                .arg(format!("--port={port}"))
                .args(records)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start dnsmasq (Debian package dnsmasq-base)");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            // Ready once its TCP socket accepts; gone if the port was taken.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Dnsmasq { child, addr };
                }
                if let Ok(Some(_status)) = child.try_wait() {
                    break; // lost the port race; try another
                }
                assert!(Instant::now() < deadline, "dnsmasq did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start dnsmasq on a free port");
    }
}
