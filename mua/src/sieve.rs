//! A small blocking ManageSieve client (RFC 5804) for `mua sieve`.
//!
//! Reads the capability greeting (§1.7), secures the session with
//! STARTTLS when `opts.tls` asks for it (§2.2: the server sends its
//! capabilities again under TLS), authenticates with SASL PLAIN (§2.1,
//! RFC 4616) and runs LISTSCRIPTS, GETSCRIPT, PUTSCRIPT, CHECKSCRIPT,
//! SETACTIVE and DELETESCRIPT. Responses are lines of quoted strings,
//! literals `{n}` (read as exact byte counts), atoms and a parenthesised
//! response code; each command ends with `OK`, `NO` or `BYE` (§1.2).
//! Credentials never appear in `--trace`.

use crate::error::{MuaError, Result};
use crate::net::{Conn, Options};
use base64::Engine;

/// One item of a response line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A bare word (`OK`, `ACTIVE`).
    Atom(String),
    /// A quoted string or literal.
    Str(Vec<u8>),
    /// A parenthesised response code, as written (`NONEXISTENT`, `TAG "x"`).
    Code(String),
}

/// A final response (§1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `OK`, `NO` or `BYE`.
    pub kind: String,
    /// The response code, upper-cased, if any.
    pub code: Option<String>,
    /// The human-readable text.
    pub text: String,
}

impl Status {
    fn is_ok(&self) -> bool {
        self.kind == "OK"
    }

    /// `NO (CODE) text` for messages.
    pub fn describe(&self) -> String {
        match &self.code {
            Some(c) => format!("{} ({c}) {}", self.kind, self.text),
            None => format!("{} {}", self.kind, self.text),
        }
    }
}

/// Split one physical line into items; `Some(n)` when it ends in a
/// literal announcement `{n}` / `{n+}` whose octets follow.
pub fn tokenize(line: &[u8], items: &mut Vec<Item>) -> Result<Option<usize>> {
    let bad = || {
        MuaError::Protocol(format!(
            "bad ManageSieve response: {}",
            String::from_utf8_lossy(line)
        ))
    };
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err(bad()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            s.push(*line.get(i + 1).ok_or_else(bad)?);
                            i += 2;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                items.push(Item::Str(s));
            }
            b'(' => {
                let mut depth = 0;
                let mut quoted = false;
                let start = i + 1;
                loop {
                    match line.get(i) {
                        None => return Err(bad()),
                        Some(b'"') => quoted = !quoted,
                        Some(b'\\') if quoted => i += 1,
                        Some(b'(') if !quoted => depth += 1,
                        Some(b')') if !quoted => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                items.push(Item::Code(
                    String::from_utf8_lossy(&line[start..i]).into_owned(),
                ));
                i += 1;
            }
            b'{' => {
                let rest = &line[i + 1..];
                let digits: Vec<u8> = rest
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .copied()
                    .collect();
                let tail = &rest[digits.len()..];
                if digits.is_empty() || !(tail == b"}" || tail == b"+}") {
                    return Err(bad());
                }
                let n = std::str::from_utf8(&digits)
                    .ok()
                    .and_then(|d| d.parse::<usize>().ok())
                    .ok_or_else(bad)?;
                return Ok(Some(n));
            }
            _ => {
                let start = i;
                while i < line.len() && line[i] != b' ' {
                    i += 1;
                }
                items.push(Item::Atom(
                    String::from_utf8_lossy(&line[start..i]).into_owned(),
                ));
            }
        }
    }
    Ok(None)
}

/// Quote `s` as a ManageSieve string (quoted when it can be, else a
/// literal `{n+}`).
pub fn string(s: &[u8]) -> Vec<u8> {
    if s.len() <= 1024 && !s.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        let mut v = vec![b'"'];
        for &b in s {
            if b == b'"' || b == b'\\' {
                v.push(b'\\');
            }
            v.push(b);
        }
        v.push(b'"');
        return v;
    }
    let mut v = format!("{{{}+}}\r\n", s.len()).into_bytes();
    v.extend_from_slice(s);
    v
}

/// An open ManageSieve session.
pub struct SieveClient {
    conn: Conn,
    /// The capabilities: name (upper-cased) and value.
    pub capabilities: Vec<(String, Option<String>)>,
}

impl SieveClient {
    /// Connects, reads the capabilities and negotiates STARTTLS when
    /// `opts.tls` wants it.
    ///
    /// # Errors
    /// `Connect`, `Tls`, or `Refused` if the greeting is not `OK`.
    pub fn connect(addr: &str, opts: &Options) -> Result<SieveClient> {
        let conn = Conn::connect(addr, opts)?;
        let mut c = SieveClient {
            conn,
            capabilities: Vec::new(),
        };
        c.read_capabilities()?;
        if c.conn.want_starttls(c.capability("STARTTLS").is_some())? {
            let (_, st) = c.command(b"STARTTLS", None)?;
            if !st.is_ok() {
                return Err(MuaError::Tls(format!(
                    "{addr} refused STARTTLS: {}",
                    st.describe()
                )));
            }
            c.conn.start_tls()?;
            c.read_capabilities()?;
        }
        Ok(c)
    }

    /// The value of a capability, `Some("")` when it has none.
    pub fn capability(&self, name: &str) -> Option<&str> {
        self.capabilities
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    fn read_capabilities(&mut self) -> Result<()> {
        let (data, st) = self.read_response()?;
        if !st.is_ok() {
            return Err(MuaError::Refused(st.describe()));
        }
        self.capabilities = data
            .into_iter()
            .filter_map(|items| {
                let mut it = items.into_iter();
                let Some(Item::Str(name)) = it.next() else {
                    return None;
                };
                let value = match it.next() {
                    Some(Item::Str(v)) => Some(String::from_utf8_lossy(&v).into_owned()),
                    _ => None,
                };
                Some((String::from_utf8_lossy(&name).to_ascii_uppercase(), value))
            })
            .collect();
        Ok(())
    }

    /// Read data lines up to the final response.
    fn read_response(&mut self) -> Result<(Vec<Vec<Item>>, Status)> {
        let mut data = Vec::new();
        loop {
            let mut items = Vec::new();
            let mut line = self.conn.read_line()?;
            while let Some(n) = tokenize(&line, &mut items)? {
                items.push(Item::Str(self.conn.read_exact(n)?));
                line = self.conn.read_line()?;
            }
            let kind = match items.first() {
                Some(Item::Atom(a)) => a.to_ascii_uppercase(),
                _ => String::new(),
            };
            if kind == "OK" || kind == "NO" || kind == "BYE" {
                let mut code = None;
                let mut text = String::new();
                for item in items.into_iter().skip(1) {
                    match item {
                        Item::Code(c) => code = Some(c.to_ascii_uppercase()),
                        Item::Str(s) => text = String::from_utf8_lossy(&s).into_owned(),
                        Item::Atom(_) => {}
                    }
                }
                return Ok((data, Status { kind, code, text }));
            }
            data.push(items);
        }
    }

    /// Send one command (with any literal inline) and read its response.
    fn command(&mut self, line: &[u8], shown: Option<&str>) -> Result<(Vec<Vec<Item>>, Status)> {
        // A literal's octets travel with the line: `{n+}` needs no wait.
        match line.iter().position(|&b| b == b'\n') {
            Some(_) if shown.is_none() => {
                let head = line.split(|&b| b == b'\n').next().unwrap_or(b"");
                let head = head.strip_suffix(b"\r").unwrap_or(head);
                let shown = String::from_utf8_lossy(head).into_owned();
                self.conn.send_line(head, Some(&shown))?;
                self.conn.send_raw(&line[head.len() + 2..])?;
                self.conn.send_line(b"", Some(""))?;
            }
            _ => self.conn.send_line(line, shown)?,
        }
        let (data, st) = self.read_response()?;
        if st.kind == "BYE" {
            return Err(MuaError::Protocol(format!(
                "server closed the session: {}",
                st.describe()
            )));
        }
        Ok((data, st))
    }

    /// AUTHENTICATE "PLAIN" with an initial response.
    ///
    /// # Errors
    /// `Auth` when refused.
    pub fn login(&mut self, user: &str, pass: &str) -> Result<()> {
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
        let mut line = b"AUTHENTICATE \"PLAIN\" ".to_vec();
        line.extend_from_slice(&string(creds.as_bytes()));
        let (_, st) = self.command(&line, Some("AUTHENTICATE \"PLAIN\" <credentials>"))?;
        if st.is_ok() {
            Ok(())
        } else {
            Err(MuaError::Auth(st.describe()))
        }
    }

    /// The scripts and whether each is the active one.
    ///
    /// # Errors
    /// `Refused` on `NO`.
    pub fn list(&mut self) -> Result<Vec<(String, bool)>> {
        let (data, st) = self.command(b"LISTSCRIPTS", None)?;
        check(&st)?;
        Ok(data
            .into_iter()
            .filter_map(|items| {
                let mut it = items.into_iter();
                let Some(Item::Str(name)) = it.next() else {
                    return None;
                };
                let active =
                    matches!(it.next(), Some(Item::Atom(a)) if a.eq_ignore_ascii_case("ACTIVE"));
                Some((String::from_utf8_lossy(&name).into_owned(), active))
            })
            .collect())
    }

    /// A script's text.
    ///
    /// # Errors
    /// `NotFound` for no such script.
    pub fn get(&mut self, name: &str) -> Result<Vec<u8>> {
        let mut line = b"GETSCRIPT ".to_vec();
        line.extend_from_slice(&string(name.as_bytes()));
        let (data, st) = self.command(&line, None)?;
        check(&st)?;
        data.into_iter()
            .flatten()
            .find_map(|i| match i {
                Item::Str(s) => Some(s),
                _ => None,
            })
            .ok_or_else(|| MuaError::Protocol("GETSCRIPT returned no script".into()))
    }

    /// Store a script (the server compiles it first).
    ///
    /// # Errors
    /// `Refused` with the server's reason (a compile error, a quota).
    pub fn put(&mut self, name: &str, script: &[u8]) -> Result<()> {
        let mut line = b"PUTSCRIPT ".to_vec();
        line.extend_from_slice(&string(name.as_bytes()));
        line.extend_from_slice(format!(" {{{}+}}\r\n", script.len()).as_bytes());
        line.extend_from_slice(script);
        let (_, st) = self.command(&line, None)?;
        check(&st)
    }

    /// Check that a script compiles, storing nothing.
    ///
    /// # Errors
    /// `Refused` with the compiler's message.
    pub fn check(&mut self, script: &[u8]) -> Result<()> {
        let mut line = format!("CHECKSCRIPT {{{}+}}\r\n", script.len()).into_bytes();
        line.extend_from_slice(script);
        let (_, st) = self.command(&line, None)?;
        check(&st)
    }

    /// Make `name` the active script ("" for none).
    ///
    /// # Errors
    /// `NotFound` for no such script.
    pub fn activate(&mut self, name: &str) -> Result<()> {
        let mut line = b"SETACTIVE ".to_vec();
        line.extend_from_slice(&string(name.as_bytes()));
        let (_, st) = self.command(&line, None)?;
        check(&st)
    }

    /// Delete a script (not the active one).
    ///
    /// # Errors
    /// `NotFound`, or `Refused` for the active script.
    pub fn delete(&mut self, name: &str) -> Result<()> {
        let mut line = b"DELETESCRIPT ".to_vec();
        line.extend_from_slice(&string(name.as_bytes()));
        let (_, st) = self.command(&line, None)?;
        check(&st)
    }

    /// LOGOUT, ignoring errors (the work is done).
    pub fn logout(mut self) {
        let _ = self.command(b"LOGOUT", None);
    }
}

/// `OK`, or the error a `NO` stands for.
fn check(st: &Status) -> Result<()> {
    if st.is_ok() {
        return Ok(());
    }
    if st.code.as_deref() == Some("NONEXISTENT") {
        return Err(MuaError::NotFound(st.text.clone()));
    }
    Err(MuaError::Refused(st.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_lines_tokenize() {
        let mut items = Vec::new();
        assert_eq!(
            tokenize(b"NO (NONEXISTENT) \"no \\\"such\\\" script\"", &mut items).unwrap(),
            None
        );
        assert_eq!(
            items,
            vec![
                Item::Atom("NO".into()),
                Item::Code("NONEXISTENT".into()),
                Item::Str(b"no \"such\" script".to_vec())
            ]
        );
        items.clear();
        assert_eq!(tokenize(b"{12}", &mut items).unwrap(), Some(12));
        assert_eq!(tokenize(b"NO {3+}", &mut items).unwrap(), Some(3));
        items.clear();
        tokenize(b"OK (TAG \"a)b\") \"Done\"", &mut items).unwrap();
        assert_eq!(items[1], Item::Code("TAG \"a)b\"".into()));
        assert!(tokenize(b"\"unterminated", &mut items).is_err());
    }

    #[test]
    fn strings_quote_or_become_literals() {
        assert_eq!(string(b"a\"b"), b"\"a\\\"b\"");
        assert_eq!(string(b"a\r\nb"), b"{4+}\r\na\r\nb");
    }
}
