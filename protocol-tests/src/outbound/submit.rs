//! Submitting the section's messages to the MTA under test (RFC 6409
//! submission, or any SMTP port that relays for the account): EHLO,
//! STARTTLS when offered (any certificate), AUTH PLAIN (RFC 4954) when AUTH
//! is offered, then one transaction per message on the same session.

use super::wire::{client_config, Reply, Wire};
use crate::template::base64;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// One message to submit.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Reverse-path (`""` for `<>`).
    pub from: String,
    /// Text after `MAIL FROM:<...>` (`" RET=HDRS ENVID=x"`), or empty.
    pub mail_params: String,
    /// Recipients, each with the text after `RCPT TO:<...>`.
    pub rcpts: Vec<(String, String)>,
    /// The message, CRLF line ends, not dot-stuffed.
    pub content: Vec<u8>,
}

/// Why a message was not submitted.
#[derive(Debug, Clone)]
pub enum Refused {
    /// The server refused it (its reply).
    Reply(String),
    /// The session failed (I/O, timeout); it cannot be used again.
    Broken(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Reply(s) | Refused::Broken(s) => f.write_str(s),
        }
    }
}

/// A logged-in submission session.
pub struct Submitter {
    wire: Wire,
    timeout: Duration,
    /// EHLO keywords (after TLS and AUTH, if any).
    pub keywords: Vec<String>,
    /// Whether STARTTLS was used.
    pub tls: bool,
    /// Whether AUTH was used.
    pub authenticated: bool,
}

fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The SASL mechanisms in an EHLO reply's AUTH line, upper-cased.
pub fn auth_mechanisms(ehlo: &Reply) -> Option<Vec<String>> {
    ehlo.lines.iter().skip(1).find_map(|l| {
        let mut words = l.get(4..)?.split_whitespace();
        let kw = words.next()?;
        kw.eq_ignore_ascii_case("AUTH")
            .then(|| words.map(str::to_ascii_uppercase).collect())
    })
}

/// `content` with every line starting with `.` given another one (RFC
/// 5321 §4.5.2), ending in CRLF, then the terminating `.` line.
pub fn dot_stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 64);
    for line in content.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

impl Submitter {
    fn command(&mut self, line: &str) -> Result<Reply, String> {
        self.wire
            .send(format!("{line}\r\n").as_bytes())
            .map_err(|e| format!("sending {}: {e}", line_name(line)))?;
        self.reply(line_name(line))
    }

    /// The next reply; `421` (the server is closing the session, RFC
    /// 5321 §3.8) counts as a failed session.
    fn reply(&mut self, what: &str) -> Result<Reply, String> {
        let deadline = Instant::now() + self.timeout;
        let r = self
            .wire
            .read_reply(deadline)
            .map_err(|e| format!("reply to {what}: {e}"))?;
        if r.code == 421 {
            return Err(format!("reply to {what}: {}", r.text()));
        }
        Ok(r)
    }

    fn ehlo(&mut self) -> Result<Reply, String> {
        let r = self.command("EHLO protocol-tests.invalid")?;
        if r.code != 250 {
            return Err(format!("EHLO refused: {}", r.text()));
        }
        self.keywords = r.keywords();
        Ok(r)
    }

    /// Connects to `addr`, says EHLO, starts TLS if offered and logs in
    /// with AUTH PLAIN if AUTH is offered.
    ///
    /// # Errors
    /// Connection, greeting, EHLO, STARTTLS or AUTH failures, or AUTH
    /// offered without PLAIN.
    pub fn connect(
        addr: &str,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Submitter, String> {
        let mut last = format!("{addr}: no address");
        let mut tcp = None;
        for a in addr.to_socket_addrs().map_err(|e| format!("{addr}: {e}"))? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        let tcp = tcp.ok_or(last)?;
        let mut s = Submitter {
            wire: Wire::new(tcp).map_err(|e| e.to_string())?,
            timeout,
            keywords: Vec::new(),
            tls: false,
            authenticated: false,
        };
        let greeting = s.reply("the greeting")?;
        if greeting.code != 220 {
            return Err(format!("greeting is not 220: {}", greeting.text()));
        }
        let mut ehlo = s.ehlo()?;
        if s.keywords.iter().any(|k| k == "STARTTLS") {
            let r = s.command("STARTTLS")?;
            if r.code != 220 {
                return Err(format!("STARTTLS refused: {}", r.text()));
            }
            let config = client_config()?;
            s.wire
                .start_tls_client(config, host_of(addr), Instant::now() + timeout)
                .map_err(|e| format!("TLS with the submission server: {e}"))?;
            s.tls = true;
            ehlo = s.ehlo()?;
        }
        match auth_mechanisms(&ehlo) {
            Some(m) if m.iter().any(|m| m == "PLAIN") => {
                let cred = base64(format!("\0{user}\0{password}").as_bytes());
                let r = s.command(&format!("AUTH PLAIN {cred}"))?;
                if r.code != 235 {
                    return Err(format!("AUTH PLAIN as {user} refused: {}", r.text()));
                }
                s.authenticated = true;
            }
            Some(m) => {
                return Err(format!(
                    "the submission server offers AUTH {} but not PLAIN",
                    m.join(" ")
                ))
            }
            None => {}
        }
        Ok(s)
    }

    /// True if the server advertises `keyword`.
    pub fn offers(&self, keyword: &str) -> bool {
        self.keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }

    /// Submits one message.
    ///
    /// # Errors
    /// [`Refused`] with the reply that refused it (the transaction is
    /// reset), or with the I/O failure (the session is then unusable).
    pub fn send(&mut self, m: &Submission) -> Result<(), Refused> {
        let res = self.transaction(m);
        if let Err(Refused::Reply(_)) = &res {
            let _ = self.command("RSET");
        }
        res
    }

    fn transaction(&mut self, m: &Submission) -> Result<(), Refused> {
        let r = self
            .command(&format!("MAIL FROM:<{}>{}", m.from, m.mail_params))
            .map_err(Refused::Broken)?;
        if r.code != 250 {
            return Err(Refused::Reply(format!(
                "MAIL FROM:<{}>{} refused: {}",
                m.from,
                m.mail_params,
                r.text()
            )));
        }
        for (addr, params) in &m.rcpts {
            let r = self
                .command(&format!("RCPT TO:<{addr}>{params}"))
                .map_err(Refused::Broken)?;
            if r.code != 250 && r.code != 251 {
                return Err(Refused::Reply(format!(
                    "RCPT TO:<{addr}>{params} refused: {}",
                    r.text()
                )));
            }
        }
        let r = self.command("DATA").map_err(Refused::Broken)?;
        if r.code != 354 {
            return Err(Refused::Reply(format!("DATA refused: {}", r.text())));
        }
        self.wire
            .send(&dot_stuff(&m.content))
            .map_err(|e| Refused::Broken(format!("sending the message: {e}")))?;
        let r = self.reply("the message").map_err(Refused::Broken)?;
        if r.code != 250 {
            return Err(Refused::Reply(format!("message refused: {}", r.text())));
        }
        Ok(())
    }

    /// Says QUIT (the reply is not waited for long).
    pub fn quit(mut self) {
        let _ = self.wire.send(b"QUIT\r\n");
        let _ = self
            .wire
            .read_reply(Instant::now() + Duration::from_millis(500));
        self.wire.close();
    }
}

fn line_name(line: &str) -> &str {
    if line.starts_with("AUTH") {
        "AUTH"
    } else {
        line.split(':').next().unwrap_or(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n.\r\n"), b"a\r\n..b\r\n..\r\n.\r\n");
        assert_eq!(dot_stuff(b"x"), b"x\r\n.\r\n");
    }

    #[test]
    fn hosts_and_mechanisms() {
        assert_eq!(host_of("127.0.0.1:587"), "127.0.0.1");
        assert_eq!(host_of("[::1]:587"), "::1");
        let r = Reply {
            code: 250,
            lines: vec![
                "250-x".into(),
                "250-AUTH LOGIN plain".into(),
                "250 DSN".into(),
            ],
        };
        assert_eq!(auth_mechanisms(&r).unwrap(), ["LOGIN", "PLAIN"]);
    }
}
