//! A small blocking ESMTP client (RFC 5321) for submitting one message.
//!
//! Covers the greeting, EHLO (HELO fallback), AUTH PLAIN / LOGIN when offered
//! (RFC 4954, RFC 4616), MAIL/RCPT/DATA with dot-stuffing (§4.5.2), QUIT, and
//! multiline reply parsing (§4.2.1), and STARTTLS (RFC 3207 §4: EHLO again
//! over TLS). Credentials never appear in `--trace`.

use crate::error::{MuaError, Result};
use crate::net::{Conn, Options};
use base64::Engine;

/// One SMTP reply: the three-digit code and its text lines (RFC 5321 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code, e.g. 250.
    pub code: u16,
    /// Text of each line, without the code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// True for 2xx codes.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The reply as the server sent it, lines joined by " / ".
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }
}

/// Parses one reply line into (code, is-last-line, text).
///
/// ```text
/// Reply-line = *( Reply-code "-" [ textstring ] CRLF )
///              Reply-code [ SP textstring ] CRLF
/// ```
pub fn parse_reply_line(line: &[u8]) -> Option<(u16, bool, String)> {
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = std::str::from_utf8(&line[..3]).ok()?.parse().ok()?;
    let (last, text) = match line.get(3) {
        None => (true, &[][..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return None,
    };
    Some((code, last, String::from_utf8_lossy(text).into_owned()))
}

/// Dot-stuffs a message and normalises line endings to CRLF (§4.5.2), adding
/// the terminating `.` line.
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 50 + 5);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in data {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// An open SMTP session, greeted and EHLO'd.
pub struct SmtpClient {
    conn: Conn,
    /// EHLO keywords, upper-cased (e.g. "AUTH PLAIN LOGIN", "8BITMIME").
    pub extensions: Vec<String>,
}

impl SmtpClient {
    /// Connects, reads the greeting and says EHLO (HELO if EHLO is refused);
    /// secures the session with STARTTLS when `opts.tls` asks for it
    /// (RFC 3207 §4), then says EHLO again and keeps only the new keywords.
    ///
    /// # Errors
    /// `Connect` if unreachable, `Tls` if TLS cannot be set up, `Refused`
    /// if the greeting is not 220.
    pub fn connect(addr: &str, opts: &Options) -> Result<SmtpClient> {
        let conn = Conn::connect(addr, opts)?;
        let mut c = SmtpClient {
            conn,
            extensions: Vec::new(),
        };
        let greeting = c.read_reply()?;
        if greeting.code != 220 {
            return Err(MuaError::Refused(greeting.text()));
        }
        c.hello()?;
        if c.conn.want_starttls(c.extension("STARTTLS").is_some())? {
            let r = c.command("STARTTLS", None)?;
            if r.code != 220 {
                return Err(MuaError::Tls(format!(
                    "{addr} refused STARTTLS: {}",
                    r.text()
                )));
            }
            c.conn.start_tls()?;
            // §4.2: everything learnt before TLS is forgotten.
            c.extensions.clear();
            c.hello()?;
        }
        Ok(c)
    }

    /// EHLO, or HELO if the server refuses EHLO; records the keywords.
    fn hello(&mut self) -> Result<()> {
        let me = "mua.localhost";
        let r = self.command(&format!("EHLO {me}"), None)?;
        if r.is_positive() {
            self.extensions = r.lines.iter().skip(1).map(|l| l.to_uppercase()).collect();
        } else {
            let r = self.command(&format!("HELO {me}"), None)?;
            if !r.is_positive() {
                return Err(MuaError::Refused(r.text()));
            }
        }
        Ok(())
    }

    /// True once the session runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// The parameters of an EHLO keyword, if advertised.
    pub fn extension(&self, keyword: &str) -> Option<&str> {
        self.extensions.iter().find_map(|e| {
            let mut it = e.splitn(2, [' ', '=']);
            (it.next() == Some(keyword)).then(|| it.next().unwrap_or(""))
        })
    }

    /// Reads one (possibly multiline) reply.
    ///
    /// # Errors
    /// Malformed reply, timeout, EOF.
    pub fn read_reply(&mut self) -> Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let line = self.conn.read_line()?;
            let (code, last, text) = parse_reply_line(&line).ok_or_else(|| {
                MuaError::Protocol(format!(
                    "malformed SMTP reply: {}",
                    String::from_utf8_lossy(&line)
                ))
            })?;
            lines.push(text);
            if last {
                return Ok(Reply { code, lines });
            }
        }
    }

    /// Sends a command line and reads its reply; `shown` masks it in traces.
    ///
    /// # Errors
    /// Transport failures only; the caller judges the code.
    pub fn command(&mut self, line: &str, shown: Option<&str>) -> Result<Reply> {
        self.conn.send_line(line.as_bytes(), shown)?;
        self.read_reply()
    }

    /// Authenticates with PLAIN or LOGIN, whichever the server offers.
    /// Does nothing when AUTH is not advertised (local delivery needs none).
    ///
    /// # Errors
    /// `Auth` when the server refuses the credentials.
    pub fn auth(&mut self, user: &str, password: &str) -> Result<()> {
        let Some(mechs) = self.extension("AUTH").map(str::to_string) else {
            return Ok(());
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let mechs: Vec<&str> = mechs.split_whitespace().collect();
        let reply = if mechs.contains(&"PLAIN") {
            let token = b64.encode(format!("\0{user}\0{password}"));
            self.command(&format!("AUTH PLAIN {token}"), Some("AUTH PLAIN ****"))?
        } else if mechs.contains(&"LOGIN") {
            let r = self.command("AUTH LOGIN", None)?;
            if r.code != 334 {
                return Err(MuaError::Auth(r.text()));
            }
            let r = self.command(&b64.encode(user), None)?;
            if r.code != 334 {
                return Err(MuaError::Auth(r.text()));
            }
            self.command(&b64.encode(password), Some("****"))?
        } else {
            return Err(MuaError::Auth(format!(
                "no supported AUTH mechanism (server offers {})",
                mechs.join(" ")
            )));
        };
        if reply.code == 235 {
            Ok(())
        } else if reply.code / 100 == 5 && reply.code != 504 {
            Err(MuaError::Auth(reply.text()))
        } else {
            Err(MuaError::Refused(reply.text()))
        }
    }

    /// Sends one message: MAIL FROM, RCPT TO for each recipient, DATA.
    ///
    /// # Errors
    /// `Refused` with the server's reply for any rejected step.
    pub fn send(&mut self, from: &str, rcpts: &[String], data: &[u8]) -> Result<Reply> {
        if rcpts.is_empty() {
            return Err(MuaError::Usage("no recipients".into()));
        }
        let mut mail = format!("MAIL FROM:<{from}>");
        if !data.is_ascii() && self.extension("8BITMIME").is_some() {
            mail.push_str(" BODY=8BITMIME");
        }
        if self.extension("SIZE").is_some() {
            // RFC 1870 §3: the size with CRLF line endings, before stuffing.
            let bare_lf = data
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'))
                .count();
            mail.push_str(&format!(" SIZE={}", data.len() + bare_lf));
        }
        let r = self.command(&mail, None)?;
        if !r.is_positive() {
            return Err(self.refuse(r));
        }
        for rcpt in rcpts {
            let r = self.command(&format!("RCPT TO:<{rcpt}>"), None)?;
            if !r.is_positive() {
                return Err(self.refuse(r));
            }
        }
        let r = self.command("DATA", None)?;
        if r.code != 354 {
            return Err(self.refuse(r));
        }
        self.conn.send_raw(&dot_stuff(data))?;
        let r = self.read_reply()?;
        if !r.is_positive() {
            return Err(self.refuse(r));
        }
        Ok(r)
    }

    /// Resets the transaction after a refusal and wraps the reply.
    fn refuse(&mut self, r: Reply) -> MuaError {
        // Best effort: the error we report is the refusal, not RSET's fate.
        let _ = self.command("RSET", None);
        MuaError::Refused(r.text())
    }

    /// Says QUIT and drops the connection.
    pub fn quit(mut self) {
        // The message is already committed; a failed QUIT changes nothing.
        let _ = self.command("QUIT", None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines_parse_code_continuation_and_text() {
        assert_eq!(
            parse_reply_line(b"250-mail.example.org"),
            Some((250, false, "mail.example.org".into()))
        );
        assert_eq!(
            parse_reply_line(b"250 AUTH PLAIN LOGIN"),
            Some((250, true, "AUTH PLAIN LOGIN".into()))
        );
        assert_eq!(parse_reply_line(b"354"), Some((354, true, String::new())));
        assert_eq!(parse_reply_line(b"25"), None);
        assert_eq!(parse_reply_line(b"abc hello"), None);
        assert_eq!(parse_reply_line(b"250xhello"), None);
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(dot_stuff(b"x.y\r\n"), b"x.y\r\n.\r\n");
    }

    /// One scripted SMTP peer: greets, then answers each line with
    /// `answer(line)`; DATA bodies are collected up to the dot line.
    fn serve(
        greeting: &'static str,
        mut answer: impl FnMut(&str) -> String + Send + 'static,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            w.write_all(greeting.as_bytes()).unwrap();
            let mut seen = Vec::new();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return seen;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        w.write_all(answer(".").as_bytes()).unwrap();
                    }
                    seen.push(format!("D:{}", line.trim_end()));
                    continue;
                }
                let line = line.trim_end().to_string();
                let reply = answer(&line);
                in_data = reply.starts_with("354");
                seen.push(line.clone());
                w.write_all(reply.as_bytes()).unwrap();
                if line == "QUIT" {
                    return seen;
                }
            }
        });
        (addr, h)
    }

    #[test]
    fn auth_login_and_dot_stuffed_data() {
        let (addr, h) = serve("220-first\r\n220 ready\r\n", |l| match l {
            l if l.starts_with("EHLO") => "250-hi\r\n250-SIZE 1000\r\n250 AUTH LOGIN\r\n".into(),
            "AUTH LOGIN" => "334 VXNlcm5hbWU6\r\n".into(),
            "YUB4" => "334 UGFzc3dvcmQ6\r\n".into(),
            "cHc=" => "235 ok\r\n".into(),
            "DATA" => "354 go\r\n".into(),
            _ => "250 ok\r\n".into(),
        });
        let mut c = SmtpClient::connect(&addr, &Options::default()).unwrap();
        assert_eq!(c.extension("SIZE"), Some("1000"));
        c.auth("a@x", "pw").unwrap();
        c.send("a@x", &["b@x".into()], b"Subject: s\n\n.hidden\n")
            .unwrap();
        c.quit();
        let seen = h.join().unwrap();
        assert!(
            seen.contains(&"MAIL FROM:<a@x> SIZE=23".to_string()),
            "{seen:?}"
        );
        assert!(seen.contains(&"D:..hidden".to_string()), "{seen:?}");
        assert_eq!(seen.last().map(String::as_str), Some("QUIT"));
    }

    #[test]
    fn refused_recipient_resets_and_reports_the_reply() {
        let (addr, h) = serve("220 ready\r\n", |l| {
            if l.starts_with("EHLO") {
                "502 5.5.1 no EHLO here\r\n".into()
            } else if l.starts_with("RCPT") {
                "550-5.1.1 no such\r\n550 5.1.1 user\r\n".into()
            } else {
                "250 ok\r\n".into()
            }
        });
        let mut c = SmtpClient::connect(&addr, &Options::default()).unwrap();
        // No AUTH advertised (HELO only): nothing to do.
        c.auth("a@x", "pw").unwrap();
        let err = c.send("a@x", &["nobody@x".into()], b"x\r\n").unwrap_err();
        match err {
            MuaError::Refused(text) => assert_eq!(text, "550 5.1.1 no such / 5.1.1 user"),
            other => panic!("{other:?}"),
        }
        c.quit();
        let seen = h.join().unwrap();
        assert!(seen[1].starts_with("HELO "), "{seen:?}");
        assert!(seen.contains(&"RSET".to_string()), "{seen:?}");
    }

    #[test]
    fn bad_credentials_are_an_auth_error() {
        let (addr, h) = serve("220 ready\r\n", |l| {
            if l.starts_with("EHLO") {
                "250-hi\r\n250 AUTH PLAIN\r\n".into()
            } else if l.starts_with("AUTH PLAIN") {
                "535 5.7.8 bad credentials\r\n".into()
            } else {
                "221 bye\r\n".into()
            }
        });
        let mut c = SmtpClient::connect(&addr, &Options::default()).unwrap();
        assert!(matches!(c.auth("a@x", "pw"), Err(MuaError::Auth(_))));
        c.quit();
        h.join().unwrap();
    }
}
