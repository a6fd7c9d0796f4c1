//! Reading replies (RFC 5321 §4.2) within a deadline and a size bound, and
//! what an EHLO reply says the server supports.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::session::{io_text, is_timeout, set_timeouts, Error};
use super::{Reply, Session, MAX_LINE, MAX_REPLY_LINES};

/// What the server said it supports in its EHLO reply.
#[derive(Debug, Default, Clone)]
pub(super) struct Extensions {
    pub(super) pipelining: bool,
    pub(super) size: bool,
    pub(super) starttls: bool,
    pub(super) dsn: bool,
    pub(super) smtputf8: bool,
    pub(super) eightbitmime: bool,
    pub(super) auth_plain: bool,
    pub(super) auth_login: bool,
}

impl Extensions {
    pub(super) fn parse(lines: &[String]) -> Extensions {
        let mut ext = Extensions::default();
        // The first line is the greeting part ("host Hello ...").
        for line in lines.iter().skip(1) {
            let mut words = line.split([' ', '=']).filter(|w| !w.is_empty());
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = true,
                "STARTTLS" => ext.starttls = true,
                "DSN" => ext.dsn = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "8BITMIME" => ext.eightbitmime = true,
                "AUTH" => {
                    for mechanism in words {
                        match mechanism.to_ascii_uppercase().as_str() {
                            "PLAIN" => ext.auth_plain = true,
                            "LOGIN" => ext.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        ext
    }
}

impl Session {
    pub(super) fn read_reply(&mut self, timeout: Duration) -> Result<Reply, Error> {
        self.read_reply_lines(timeout).map(|(reply, _)| reply)
    }

    /// Read one whole reply within `timeout`.
    pub(super) fn read_reply_lines(
        &mut self,
        timeout: Duration,
    ) -> Result<(Reply, Vec<String>), Error> {
        let deadline = Instant::now() + timeout;
        let mut code = 0u16;
        let mut lines: Vec<String> = Vec::new();
        loop {
            if lines.len() >= MAX_REPLY_LINES {
                self.broken = true;
                return Err(Error::Broken(format!(
                    "reply longer than {MAX_REPLY_LINES} lines"
                )));
            }
            let line = self.read_line(deadline, timeout)?;
            let (line_code, last, text) = match parse_reply_line(&line) {
                Some(parsed) => parsed,
                None => {
                    self.broken = true;
                    return Err(Error::Broken(format!(
                        "malformed reply line {:?}",
                        String::from_utf8_lossy(&line[..line.len().min(80)])
                    )));
                }
            };
            if lines.is_empty() {
                code = line_code;
            }
            lines.push(text);
            if last {
                break;
            }
        }
        if code == 421 {
            self.broken = true;
        }
        let reply = make_reply(code, &lines);
        Ok((reply, lines))
    }

    /// One line, without its CRLF (or bare LF).
    pub(super) fn read_line(
        &mut self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        loop {
            let pending = &self.inbuf[self.inpos..];
            if let Some(at) = pending.iter().position(|&b| b == b'\n') {
                if at + 1 > MAX_LINE {
                    self.broken = true;
                    return Err(Error::Broken(format!(
                        "reply line longer than {MAX_LINE} bytes"
                    )));
                }
                let mut line = pending[..at].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.inpos += at + 1;
                if self.trace.is_some() {
                    log::info!(target: "outbound::trace", "{} S: {}", self.peer, String::from_utf8_lossy(&line));
                }
                return Ok(line);
            }
            if pending.len() >= MAX_LINE {
                self.broken = true;
                return Err(Error::Broken(format!(
                    "reply line longer than {MAX_LINE} bytes"
                )));
            }
            // Make room: keep the partial line at the front.
            if self.inpos > 0 {
                self.inbuf.drain(..self.inpos);
                self.inpos = 0;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                self.broken = true;
                return Err(Error::Broken(format!(
                    "no complete reply within {} s",
                    timeout.as_secs_f32()
                )));
            }
            let mut chunk = [0u8; MAX_LINE];
            let want = MAX_LINE - self.inbuf.len();
            let result = set_timeouts(self.stream.tcp(), remaining)
                .and_then(|()| self.stream.read(&mut chunk[..want]));
            match result {
                Ok(0) => {
                    self.broken = true;
                    return Err(Error::Broken("connection closed by the server".into()));
                }
                Ok(got) => self.inbuf.extend_from_slice(&chunk[..got]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    self.broken = true;
                    return Err(Error::Broken(format!(
                        "no complete reply within {} s",
                        timeout.as_secs_f32()
                    )));
                }
                Err(e) => {
                    self.broken = true;
                    return Err(Error::Broken(format!("read: {}", io_text(&e))));
                }
            }
        }
    }
}

/// `"250-text"`, `"250 text"` or `"250"` → (code, is last line, text).
pub(super) fn parse_reply_line(line: &[u8]) -> Option<(u16, bool, String)> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &line[3..3]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return None,
    };
    let text = String::from_utf8_lossy(text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some((code, last, text))
}

/// Build a [`Reply`]: the enhanced code taken off the first line (and off
/// the others when they repeat it), lines joined with a space.
pub(super) fn make_reply(code: u16, lines: &[String]) -> Reply {
    let enhanced = lines
        .first()
        .and_then(|first| first.split(' ').next())
        .filter(|word| is_enhanced(word, code))
        .map(str::to_string);
    let text = lines
        .iter()
        .map(|line| match &enhanced {
            Some(e) => line
                .strip_prefix(e.as_str())
                .map(|rest| rest.trim_start())
                .unwrap_or(line),
            None => line.as_str(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    Reply {
        code,
        enhanced,
        text,
    }
}

/// RFC 3463 `class.subject.detail`, its class agreeing with the reply code.
pub(super) fn is_enhanced(word: &str, code: u16) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].len() == 1
        && parts[0].as_bytes()[0] == b'0' + (code / 100) as u8
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        assert_eq!(
            parse_reply_line(b"250-PIPELINING"),
            Some((250, false, "PIPELINING".into()))
        );
        assert_eq!(parse_reply_line(b"250 ok"), Some((250, true, "ok".into())));
        assert_eq!(parse_reply_line(b"354"), Some((354, true, String::new())));
        assert_eq!(parse_reply_line(b"25"), None);
        assert_eq!(parse_reply_line(b"abc def"), None);
        assert_eq!(parse_reply_line(b"250xok"), None);
        assert_eq!(parse_reply_line(b"650 no"), None);
    }

    #[test]
    fn replies_and_enhanced_codes() {
        let reply = make_reply(550, &["5.1.1 no such".into(), "5.1.1 user here".into()]);
        assert_eq!(reply.enhanced.as_deref(), Some("5.1.1"));
        assert_eq!(reply.text, "no such user here");
        assert_eq!(reply.to_string(), "550 5.1.1 no such user here");
        // The class must agree with the code.
        let reply = make_reply(250, &["5.1.1 odd".into()]);
        assert_eq!(reply.enhanced, None);
        assert_eq!(reply.to_string(), "250 5.1.1 odd");
    }

    #[test]
    fn extensions() {
        let lines: Vec<String> = [
            "mx.example Hello",
            "PIPELINING",
            "SIZE 1000",
            "AUTH=LOGIN",
            "dsn",
            "STARTTLS",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ext = Extensions::parse(&lines);
        assert!(ext.pipelining && ext.size && ext.auth_login && ext.dsn && ext.starttls);
        assert!(!ext.auth_plain && !ext.smtputf8);
    }
}
