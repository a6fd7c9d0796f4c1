//! Blocking IMAP4rev1 client (RFC 3501) over one TCP connection.
//!
//! Sends tagged commands with strings as quoted or literal (`args.rs`
//! decides which; a synchronising `{n}` waits for `+`, §7.5; `{n+}` when
//! LITERAL+ is advertised, RFC 7888), collects untagged data until the tagged completion (§7.1),
//! does STARTTLS (§6.2.1) and LOGIN (§6.2.3, password masked in traces).
//! The typed mailbox and message commands are in `commands.rs`.

use super::args::{literal_header, quote, Arg, Wire};
use super::parse::{literal_len, parse_response};
use super::response::{RespText, Response, Status, Untagged};
use crate::error::{MuaError, Result};
use crate::net::{Conn, Options};

/// Largest literal we accept from a server (a message bigger is refused).
pub const MAX_LITERAL: usize = 512 << 20;

/// The completion of one command.
#[derive(Debug)]
pub struct Done {
    /// OK, NO or BAD.
    pub status: Status,
    /// Its code and text.
    pub text: RespText,
    /// Untagged data received while the command ran.
    pub untagged: Vec<Untagged>,
}

/// An IMAP session.
pub struct Client {
    pub(super) conn: Conn,
    pub(super) next_tag: u32,
    /// Capabilities, upper-cased.
    pub caps: Vec<String>,
    /// Extensions the server confirmed with `* ENABLED` (RFC 5161),
    /// upper-cased.
    pub enabled: Vec<String>,
}

impl Client {
    /// Octets received from the server on this connection so far.
    pub fn received(&self) -> u64 {
        self.conn.received()
    }

    /// Connects and reads the greeting; learns the capabilities. Secures the
    /// session with STARTTLS when `opts.tls` asks for it (RFC 3501 §6.2.1),
    /// then asks CAPABILITY again: capabilities from before TLS are dropped.
    ///
    /// # Errors
    /// `Connect` if unreachable; `Tls` if TLS cannot be set up; `Refused`
    /// on a BYE greeting.
    pub fn connect(addr: &str, opts: &Options) -> Result<Client> {
        let conn = Conn::connect(addr, opts)?;
        let mut c = Client {
            conn,
            next_tag: 1,
            caps: Vec::new(),
            enabled: Vec::new(),
        };
        let preauth = match c.read_response()? {
            Response::Untagged(Untagged::State(status @ (Status::Ok | Status::Preauth), text)) => {
                c.caps_from_code(&text);
                status == Status::Preauth
            }
            Response::Untagged(Untagged::State(_, text)) => {
                return Err(MuaError::Refused(text.to_string()))
            }
            other => {
                return Err(MuaError::Protocol(format!("unexpected greeting {other:?}")));
            }
        };
        if c.caps.is_empty() {
            c.refresh_caps()?;
        }
        // STARTTLS is only valid before authentication (§6.2.1).
        let offered = c.has("STARTTLS") && !preauth;
        if c.conn.want_starttls(offered)? {
            let done = c.run(vec![Arg::raw("STARTTLS")], None)?;
            if done.status != Status::Ok {
                return Err(MuaError::Tls(format!(
                    "{addr} refused STARTTLS: {:?} {}",
                    done.status, done.text
                )));
            }
            c.conn.start_tls()?;
            c.caps.clear();
            c.refresh_caps()?;
        }
        Ok(c)
    }

    /// True once the session runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    fn caps_from_code(&mut self, text: &RespText) -> bool {
        if let Some(code) = &text.code {
            let mut words = code.split_whitespace();
            if words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("CAPABILITY"))
            {
                self.caps = words.map(|w| w.to_ascii_uppercase()).collect();
                return true;
            }
        }
        false
    }

    /// Asks CAPABILITY again.
    ///
    /// # Errors
    /// Transport or protocol failure.
    pub fn refresh_caps(&mut self) -> Result<()> {
        let done = self.run_ok(vec![Arg::raw("CAPABILITY")])?;
        for u in done.untagged {
            if let Untagged::Capability(c) = u {
                self.caps = c;
            }
        }
        Ok(())
    }

    /// True if the server advertised `cap`.
    pub fn has(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// Reads one response with its literals.
    ///
    /// # Errors
    /// Transport failure or unparsable response.
    pub fn read_response(&mut self) -> Result<Response> {
        let mut buf = self.conn.read_line()?;
        while let Some(n) = literal_len(&buf) {
            if n > MAX_LITERAL {
                return Err(MuaError::Protocol(format!(
                    "literal of {n} bytes is too big"
                )));
            }
            buf.extend_from_slice(b"\r\n");
            let data = self.conn.read_exact(n)?;
            buf.extend_from_slice(&data);
            let more = self.conn.read_line()?;
            buf.extend_from_slice(&more);
        }
        parse_response(&buf).map_err(|e| MuaError::Protocol(e.to_string()))
    }

    /// Runs a command, returning its completion whatever the status.
    /// `mask` replaces the first line in the trace (credentials).
    ///
    /// # Errors
    /// Transport failure, BYE, or a protocol violation.
    pub fn run(&mut self, args: Vec<Arg>, mask: Option<&str>) -> Result<Done> {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        let literal_plus = self.has("LITERAL+");
        let mut untagged = Vec::new();
        let mut line: Vec<u8> = tag.as_bytes().to_vec();
        let mut shown = mask.map(|m| format!("{tag} {m}"));
        for arg in args {
            // A closing parenthesis hugs the key before it: `(NOT SEEN)`.
            if !matches!(&arg, Arg::Raw(s) if s.starts_with(')')) {
                line.push(b' ');
            }
            let bytes = match arg.into_wire() {
                Wire::Inline(s) => {
                    line.extend_from_slice(s.as_bytes());
                    continue;
                }
                Wire::Literal(b) => b,
            };
            line.extend_from_slice(literal_header(bytes.len(), literal_plus).as_bytes());
            self.conn.send_line(&line, shown.take().as_deref())?;
            if !literal_plus {
                // §7.5: wait for the continuation before sending the octets.
                loop {
                    match self.read_response()? {
                        Response::Continue(_) => break,
                        Response::Tagged {
                            tag: t,
                            status,
                            text,
                        } if t == tag => {
                            return Ok(Done {
                                status,
                                text,
                                untagged,
                            });
                        }
                        Response::Untagged(u) => self.check_bye(u, &mut untagged)?,
                        Response::Tagged { .. } => {}
                    }
                }
            }
            self.conn.send_raw(&bytes)?;
            line.clear();
        }
        self.conn.send_line(&line, shown.as_deref())?;
        self.finish(&tag, untagged)
    }

    pub(super) fn check_bye(&self, u: Untagged, untagged: &mut Vec<Untagged>) -> Result<()> {
        if let Untagged::State(Status::Bye, text) = &u {
            return Err(MuaError::Protocol(format!("server said BYE: {text}")));
        }
        untagged.push(u);
        Ok(())
    }

    /// Reads until the tagged completion of `tag`.
    pub(super) fn finish(&mut self, tag: &str, mut untagged: Vec<Untagged>) -> Result<Done> {
        loop {
            match self.read_response()? {
                Response::Tagged {
                    tag: t,
                    status,
                    text,
                } if t == tag => {
                    return Ok(Done {
                        status,
                        text,
                        untagged,
                    })
                }
                Response::Untagged(u) => self.check_bye(u, &mut untagged)?,
                Response::Tagged { .. } | Response::Continue(_) => {}
            }
        }
    }

    /// Runs a command; NO/BAD become `MuaError::Refused` with the server's text.
    ///
    /// # Errors
    /// As `run`, plus `Refused`.
    pub fn run_ok(&mut self, args: Vec<Arg>) -> Result<Done> {
        let done = self.run(args, None)?;
        match done.status {
            Status::Ok => Ok(done),
            _ => Err(MuaError::Refused(done.text.to_string())),
        }
    }

    /// LOGIN with the full address as user name; the password is masked in traces.
    ///
    /// # Errors
    /// `Auth` when refused.
    pub fn login(&mut self, user: &str, password: &str) -> Result<()> {
        if self.has("LOGINDISABLED") {
            // §6.2.3: the server will refuse it; don't send the password.
            return Err(MuaError::Auth(format!(
                "{} refuses LOGIN on this connection (LOGINDISABLED): it wants TLS \
                 first; use --tls starttls or --tls implicit",
                self.conn.addr()
            )));
        }
        let shown = format!("LOGIN {} ****", quote(user.as_bytes()).unwrap_or_default());
        let done = self.run(
            vec![Arg::raw("LOGIN"), Arg::str(user), Arg::str(password)],
            Some(&shown),
        )?;
        if done.status != Status::Ok {
            return Err(MuaError::Auth(done.text.to_string()));
        }
        if !self.caps_from_code(&done.text) {
            self.refresh_caps()?;
        }
        Ok(())
    }

    /// A handle to the socket so another thread can shut it down.
    ///
    /// # Errors
    /// OS failure duplicating the socket.
    pub fn socket(&self) -> Result<std::net::TcpStream> {
        self.conn.try_clone_stream()
    }

    /// LOGOUT, ignoring failures (the work is done).
    pub fn logout(mut self) {
        let _ = self.run(vec![Arg::raw("LOGOUT")], None);
    }
}
