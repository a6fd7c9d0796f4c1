//! Blocking IMAP4rev1 client (RFC 3501) over one TCP connection.
//!
//! Sends tagged commands with strings as quoted or literal (synchronising
//! `{n}` waiting for `+`, §7.5; or `{n+}` when LITERAL+ is advertised,
//! RFC 7888), collects untagged data until the tagged completion, and offers
//! typed helpers: LOGIN, LIST, STATUS, SELECT/EXAMINE, UID SEARCH/FETCH/
//! STORE/COPY/MOVE (RFC 6851, with a COPY+STORE+EXPUNGE fallback), APPEND,
//! EXPUNGE/UID EXPUNGE (RFC 4315) and IDLE (RFC 2177).

use super::fetch::{fetch_data, FetchData};
use super::parse::{literal_len, parse_response, RespText, Response, Status, Untagged};
use super::utf7;
use crate::error::{MuaError, Result};
use crate::net::Conn;
use std::time::Duration;

/// Largest literal we accept from a server (a message bigger is refused).
pub const MAX_LITERAL: usize = 512 << 20;

/// One argument of a command.
#[derive(Debug, Clone)]
pub enum Arg {
    /// Sent verbatim (atoms, sequence sets, parenthesised item lists).
    Raw(String),
    /// A string: quoted when safe, else a literal.
    Str(Vec<u8>),
    /// A mailbox name: modified-UTF-7 encoded, then as `Str`.
    Mailbox(String),
    /// Always a literal (message data).
    Literal(Vec<u8>),
}

impl Arg {
    /// Shorthand for `Arg::Raw`.
    pub fn raw(s: impl Into<String>) -> Arg {
        Arg::Raw(s.into())
    }
    /// Shorthand for `Arg::Str`.
    pub fn str(s: impl AsRef<[u8]>) -> Arg {
        Arg::Str(s.as_ref().to_vec())
    }
}

/// How a string is put on the wire: `Some(quoted)` or `None` for a literal.
pub fn quote(s: &[u8]) -> Option<String> {
    if s.len() > 1000
        || s.iter()
            .any(|&b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x80)
    {
        return None;
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            q.push('\\');
        }
        q.push(b as char);
    }
    q.push('"');
    Some(q)
}

/// Formats UIDs as a compact sequence set, e.g. `1:3,7`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        while i + 1 < v.len() && v[i + 1] == v[i] + 1 {
            i += 1;
        }
        if v[i] == start {
            out.push(start.to_string());
        } else {
            out.push(format!("{start}:{}", v[i]));
        }
        i += 1;
    }
    out.join(",")
}

/// A mailbox from LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Decoded name.
    pub name: String,
    /// Name attributes.
    pub flags: Vec<String>,
    /// Hierarchy delimiter.
    pub delim: Option<char>,
}

impl MailboxInfo {
    /// False for `\Noselect` / `\NonExistent` placeholders.
    pub fn selectable(&self) -> bool {
        !self.flags.iter().any(|f| {
            f.eq_ignore_ascii_case("\\Noselect") || f.eq_ignore_ascii_case("\\NonExistent")
        })
    }
}

/// What SELECT/EXAMINE reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Mailbox name.
    pub name: String,
    /// Number of messages.
    pub exists: u32,
    /// UIDVALIDITY.
    pub uid_validity: Option<u32>,
    /// UIDNEXT.
    pub uid_next: Option<u32>,
}

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
    conn: Conn,
    next_tag: u32,
    /// Capabilities, upper-cased.
    pub caps: Vec<String>,
}

impl Client {
    /// Connects and reads the greeting; learns the capabilities.
    ///
    /// # Errors
    /// `Connect` if unreachable; `Refused` on a BYE greeting.
    pub fn connect(addr: &str, trace: bool) -> Result<Client> {
        let conn = Conn::connect(addr, trace)?;
        let mut c = Client {
            conn,
            next_tag: 1,
            caps: Vec::new(),
        };
        match c.read_response()? {
            Response::Untagged(Untagged::State(Status::Ok | Status::Preauth, text)) => {
                c.caps_from_code(&text);
            }
            Response::Untagged(Untagged::State(_, text)) => {
                return Err(MuaError::Refused(text.to_string()))
            }
            other => {
                return Err(MuaError::Protocol(format!("unexpected greeting {other:?}")));
            }
        }
        if c.caps.is_empty() {
            c.refresh_caps()?;
        }
        Ok(c)
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
            let (lit, bytes) = match arg {
                Arg::Raw(s) => {
                    line.extend_from_slice(s.as_bytes());
                    continue;
                }
                Arg::Str(b) => match quote(&b) {
                    Some(q) => {
                        line.extend_from_slice(q.as_bytes());
                        continue;
                    }
                    None => (true, b),
                },
                Arg::Mailbox(m) => {
                    let enc = utf7::encode(&m);
                    match quote(enc.as_bytes()) {
                        Some(q) => {
                            line.extend_from_slice(q.as_bytes());
                            continue;
                        }
                        None => (true, enc.into_bytes()),
                    }
                }
                Arg::Literal(b) => (true, b),
            };
            debug_assert!(lit);
            if literal_plus {
                line.extend_from_slice(format!("{{{}+}}", bytes.len()).as_bytes());
                self.conn.send_line(&line, shown.take().as_deref())?;
            } else {
                line.extend_from_slice(format!("{{{}}}", bytes.len()).as_bytes());
                self.conn.send_line(&line, shown.take().as_deref())?;
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

    fn check_bye(&self, u: Untagged, untagged: &mut Vec<Untagged>) -> Result<()> {
        if let Untagged::State(Status::Bye, text) = &u {
            return Err(MuaError::Protocol(format!("server said BYE: {text}")));
        }
        untagged.push(u);
        Ok(())
    }

    /// Reads until the tagged completion of `tag`.
    fn finish(&mut self, tag: &str, mut untagged: Vec<Untagged>) -> Result<Done> {
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

    /// LIST "" "*": every mailbox.
    ///
    /// # Errors
    /// Transport or server refusal.
    pub fn list(&mut self) -> Result<Vec<MailboxInfo>> {
        let done = self.run_ok(vec![Arg::raw("LIST"), Arg::str(""), Arg::str("*")])?;
        Ok(done
            .untagged
            .into_iter()
            .filter_map(|u| match u {
                Untagged::List { flags, delim, name } => Some(MailboxInfo { name, flags, delim }),
                _ => None,
            })
            .collect())
    }

    /// STATUS mailbox (MESSAGES UNSEEN): (total, unseen).
    ///
    /// # Errors
    /// `NotFound` if the mailbox does not exist.
    pub fn status(&mut self, mailbox: &str) -> Result<(u64, u64)> {
        let done = self.run(
            vec![
                Arg::raw("STATUS"),
                Arg::Mailbox(mailbox.into()),
                Arg::raw("(MESSAGES UNSEEN)"),
            ],
            None,
        )?;
        if done.status != Status::Ok {
            return Err(MuaError::NotFound(format!(
                "mailbox {mailbox}: {}",
                done.text
            )));
        }
        let mut total = 0;
        let mut unseen = 0;
        for u in done.untagged {
            if let Untagged::Status { items, .. } = u {
                for (k, v) in items {
                    match k.as_str() {
                        "MESSAGES" => total = v,
                        "UNSEEN" => unseen = v,
                        _ => {}
                    }
                }
            }
        }
        Ok((total, unseen))
    }

    /// SELECT (or EXAMINE when `read_only`).
    ///
    /// # Errors
    /// `NotFound` when the server refuses the mailbox.
    pub fn select(&mut self, mailbox: &str, read_only: bool) -> Result<Selection> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let done = self.run(vec![Arg::raw(verb), Arg::Mailbox(mailbox.into())], None)?;
        if done.status != Status::Ok {
            return Err(MuaError::NotFound(format!(
                "mailbox {mailbox}: {}",
                done.text
            )));
        }
        let mut sel = Selection {
            name: mailbox.to_string(),
            ..Selection::default()
        };
        for u in done.untagged {
            match u {
                Untagged::Exists(n) => sel.exists = n,
                Untagged::State(
                    Status::Ok,
                    RespText {
                        code: Some(code), ..
                    },
                ) => {
                    let mut w = code.split_whitespace();
                    let key = w.next().unwrap_or_default().to_ascii_uppercase();
                    let val = w.next().and_then(|v| v.parse().ok());
                    match key.as_str() {
                        "UIDVALIDITY" => sel.uid_validity = val,
                        "UIDNEXT" => sel.uid_next = val,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(sel)
    }

    /// UID SEARCH with the given criteria; adds `CHARSET UTF-8` when needed.
    ///
    /// # Errors
    /// `Refused` if the server rejects the criteria.
    pub fn uid_search(&mut self, criteria: Vec<Arg>) -> Result<Vec<u32>> {
        let non_ascii = criteria.iter().any(|a| match a {
            Arg::Str(b) | Arg::Literal(b) => !b.is_ascii(),
            _ => false,
        });
        let mut args = vec![Arg::raw("UID SEARCH")];
        if non_ascii {
            args.push(Arg::raw("CHARSET UTF-8"));
        }
        args.extend(criteria);
        let done = self.run_ok(args)?;
        let mut uids = Vec::new();
        for u in done.untagged {
            if let Untagged::Search(v) = u {
                uids.extend(v);
            }
        }
        Ok(uids)
    }

    /// UID FETCH `set` `items`; returns data for messages that carried a UID.
    ///
    /// # Errors
    /// Transport or refusal.
    pub fn uid_fetch(&mut self, set: &str, items: &str) -> Result<Vec<FetchData>> {
        let done = self.run_ok(vec![Arg::raw("UID FETCH"), Arg::raw(set), Arg::raw(items)])?;
        Ok(done
            .untagged
            .into_iter()
            .filter_map(|u| match u {
                Untagged::Fetch { seq, items } => Some(fetch_data(seq, &items)),
                _ => None,
            })
            .filter(|d| d.uid.is_some())
            .collect())
    }

    /// UID STORE `set` `op` (flags), silently; op is `+FLAGS` or `-FLAGS`.
    ///
    /// # Errors
    /// Transport or refusal.
    pub fn uid_store(&mut self, set: &str, op: &str, flags: &[&str]) -> Result<()> {
        self.run_ok(vec![
            Arg::raw("UID STORE"),
            Arg::raw(set),
            Arg::raw(format!("{op}.SILENT")),
            Arg::raw(format!("({})", flags.join(" "))),
        ])?;
        Ok(())
    }

    /// UID COPY to `dest`.
    ///
    /// # Errors
    /// `NotFound` on `[TRYCREATE]`, else `Refused`.
    pub fn uid_copy(&mut self, set: &str, dest: &str) -> Result<()> {
        let done = self.run(
            vec![
                Arg::raw("UID COPY"),
                Arg::raw(set),
                Arg::Mailbox(dest.into()),
            ],
            None,
        )?;
        Self::dest_result(done, dest)
    }

    fn dest_result(done: Done, dest: &str) -> Result<()> {
        match done.status {
            Status::Ok => Ok(()),
            _ if done.text.code.as_deref().is_some_and(|c| {
                c.eq_ignore_ascii_case("TRYCREATE") || c.eq_ignore_ascii_case("NONEXISTENT")
            }) =>
            {
                Err(MuaError::NotFound(format!("mailbox {dest}: {}", done.text)))
            }
            _ => Err(MuaError::Refused(done.text.to_string())),
        }
    }

    /// Moves messages: UID MOVE when advertised, else COPY + \Deleted + expunge.
    ///
    /// # Errors
    /// `NotFound` if `dest` does not exist.
    pub fn uid_move(&mut self, set: &str, dest: &str) -> Result<()> {
        if self.has("MOVE") {
            let done = self.run(
                vec![
                    Arg::raw("UID MOVE"),
                    Arg::raw(set),
                    Arg::Mailbox(dest.into()),
                ],
                None,
            )?;
            return Self::dest_result(done, dest);
        }
        self.uid_copy(set, dest)?;
        self.uid_store(set, "+FLAGS", &["\\Deleted"])?;
        self.uid_expunge(set)
    }

    /// Removes \Deleted messages: UID EXPUNGE (UIDPLUS) for just `set`,
    /// else a plain EXPUNGE.
    ///
    /// # Errors
    /// Transport or refusal.
    pub fn uid_expunge(&mut self, set: &str) -> Result<()> {
        if self.has("UIDPLUS") {
            self.run_ok(vec![Arg::raw("UID EXPUNGE"), Arg::raw(set)])?;
        } else {
            self.run_ok(vec![Arg::raw("EXPUNGE")])?;
        }
        Ok(())
    }

    /// APPEND a message with flags.
    ///
    /// # Errors
    /// `NotFound` on `[TRYCREATE]`, else `Refused`.
    pub fn append(&mut self, mailbox: &str, flags: &[&str], data: &[u8]) -> Result<()> {
        let done = self.run(
            vec![
                Arg::raw("APPEND"),
                Arg::Mailbox(mailbox.into()),
                Arg::raw(format!("({})", flags.join(" "))),
                Arg::Literal(data.to_vec()),
            ],
            None,
        )?;
        Self::dest_result(done, mailbox)
    }

    /// Creates a mailbox.
    ///
    /// # Errors
    /// `Refused` if the server says no.
    pub fn create(&mut self, mailbox: &str) -> Result<()> {
        self.run_ok(vec![Arg::raw("CREATE"), Arg::Mailbox(mailbox.into())])?;
        Ok(())
    }

    /// NOOP: lets the server report new mail.
    ///
    /// # Errors
    /// Transport failure.
    pub fn noop(&mut self) -> Result<Vec<Untagged>> {
        Ok(self.run_ok(vec![Arg::raw("NOOP")])?.untagged)
    }

    /// IDLE until the server reports a change or `wait` passes, then DONE.
    /// Returns the untagged data seen (empty on timeout). Falls back to NOOP
    /// after sleeping when IDLE is not advertised.
    ///
    /// # Errors
    /// Transport failure or refusal.
    pub fn idle(&mut self, wait: Duration) -> Result<Vec<Untagged>> {
        if !self.has("IDLE") {
            std::thread::sleep(wait.min(Duration::from_secs(30)));
            return self.noop();
        }
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        self.conn
            .send_line(format!("{tag} IDLE").as_bytes(), None)?;
        let mut seen = Vec::new();
        loop {
            match self.read_response()? {
                Response::Continue(_) => break,
                Response::Tagged { status, text, .. } => {
                    return Err(MuaError::Refused(format!("IDLE: {status:?} {text}")));
                }
                Response::Untagged(u) => self.check_bye(u, &mut seen)?,
            }
        }
        self.conn.set_read_timeout(Some(wait))?;
        let got = self.read_response();
        self.conn.set_read_timeout(Some(crate::net::READ_TIMEOUT))?;
        match got {
            Ok(Response::Untagged(u)) => self.check_bye(u, &mut seen)?,
            Ok(_) => {}
            Err(MuaError::Protocol(m)) if m.starts_with("timed out") => {}
            Err(e) => return Err(e),
        }
        self.conn.send_line(b"DONE", None)?;
        let done = self.finish(&tag, seen)?;
        Ok(done.untagged)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_sent_as_literals() {
        assert_eq!(quote(b"INBOX").as_deref(), Some("\"INBOX\""));
        assert_eq!(quote(br#"a"b\c"#).as_deref(), Some(r#""a\"b\\c""#));
        assert_eq!(quote(b""), Some("\"\"".into()));
        assert_eq!(quote("Grüße".as_bytes()), None);
        assert_eq!(quote(b"two\r\nlines"), None);
    }

    #[test]
    fn uid_sets_are_compacted() {
        assert_eq!(uid_set(&[3, 1, 2, 7, 9, 8, 12]), "1:3,7:9,12");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[5, 5]), "5");
    }
}
