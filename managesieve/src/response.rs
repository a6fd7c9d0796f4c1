//! Typed ManageSieve responses (RFC 5804 §1.2, §4) and their encoding:
//! data lines (capabilities, script listings, a script as a literal) and
//! the final `OK` / `NO` / `BYE` with an optional response code (§1.3) and
//! a human-readable string.
//!
//! ```text
//! response-oknobye = ("OK" / "NO" / "BYE") [SP "(" resp-code ")"] [SP string] CRLF
//! string           = quoted / literal-s2c      ; "{" number "}" CRLF *OCTET
//! ```

/// A response code (§1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// The script named does not exist.
    NonExistent,
    /// The script is the active one (DELETESCRIPT refused).
    Active,
    /// A script of the new name exists (RENAMESCRIPT).
    AlreadyExists,
    /// Too many scripts.
    QuotaMaxScripts,
    /// The script is too big.
    QuotaMaxSize,
    /// Out of room otherwise (a full disk).
    Quota,
    /// The script compiled with warnings (not used by sieve-rs).
    Warnings,
    /// A transient failure: try again later.
    TryLater,
    /// Authentication needs an encrypted connection first.
    EncryptNeeded,
    /// NOOP's tag, echoed.
    Tag(Vec<u8>),
}

impl Code {
    fn encode(&self, out: &mut Vec<u8>) {
        let word: &str = match self {
            Code::NonExistent => "NONEXISTENT",
            Code::Active => "ACTIVE",
            Code::AlreadyExists => "ALREADYEXISTS",
            Code::QuotaMaxScripts => "QUOTA/MAXSCRIPTS",
            Code::QuotaMaxSize => "QUOTA/MAXSIZE",
            Code::Quota => "QUOTA",
            Code::Warnings => "WARNINGS",
            Code::TryLater => "TRYLATER",
            Code::EncryptNeeded => "ENCRYPT-NEEDED",
            Code::Tag(tag) => {
                out.extend_from_slice(b"TAG ");
                string(tag, out);
                return;
            }
        };
        out.extend_from_slice(word.as_bytes());
    }
}

/// The kind of a final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Success.
    Ok,
    /// Failure; the session goes on.
    No,
    /// The server closes the connection.
    Bye,
}

/// A final response: kind, optional code, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// OK, NO or BYE.
    pub kind: Kind,
    /// The response code, if any.
    pub code: Option<Code>,
    /// Human-readable text.
    pub text: String,
}

impl Status {
    /// `OK "text"`.
    pub fn ok(text: impl Into<String>) -> Status {
        Status {
            kind: Kind::Ok,
            code: None,
            text: text.into(),
        }
    }

    /// `NO "text"`.
    pub fn no(text: impl Into<String>) -> Status {
        Status {
            kind: Kind::No,
            code: None,
            text: text.into(),
        }
    }

    /// `NO (code) "text"`.
    pub fn no_code(code: Code, text: impl Into<String>) -> Status {
        Status {
            kind: Kind::No,
            code: Some(code),
            text: text.into(),
        }
    }

    /// `BYE "text"`.
    pub fn bye(text: impl Into<String>) -> Status {
        Status {
            kind: Kind::Bye,
            code: None,
            text: text.into(),
        }
    }

    /// With a response code.
    pub fn with(mut self, code: Code) -> Status {
        self.code = Some(code);
        self
    }

    /// Append the encoded response to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.kind {
            Kind::Ok => b"OK",
            Kind::No => b"NO",
            Kind::Bye => b"BYE",
        });
        if let Some(code) = &self.code {
            out.extend_from_slice(b" (");
            code.encode(out);
            out.push(b')');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            string(self.text.as_bytes(), out);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A data line before the final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// `"NAME" ["value"]` of the capability list (§1.7).
    Capability(&'static str, Option<String>),
    /// `"name" [SP "ACTIVE"]` of LISTSCRIPTS (§2.7).
    Listed {
        /// Script name.
        name: String,
        /// The active one.
        active: bool,
    },
    /// GETSCRIPT's script as a literal (§2.9).
    Script(Vec<u8>),
    /// A SASL challenge (§2.1), already base64.
    Challenge(String),
}

impl Data {
    /// Append the encoded line to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Data::Capability(name, value) => {
                string(name.as_bytes(), out);
                if let Some(v) = value {
                    out.push(b' ');
                    string(v.as_bytes(), out);
                }
            }
            Data::Listed { name, active } => {
                string(name.as_bytes(), out);
                if *active {
                    out.extend_from_slice(b" ACTIVE");
                }
            }
            Data::Script(bytes) => literal(bytes, out),
            Data::Challenge(b64) => string(b64.as_bytes(), out),
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// What a command produced: data lines, then the final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Data lines.
    pub data: Vec<Data>,
    /// The final response.
    pub status: Status,
}

impl Answer {
    /// Just a final response.
    pub fn status(status: Status) -> Answer {
        Answer {
            data: Vec::new(),
            status,
        }
    }

    /// Append the encoded answer to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for d in &self.data {
            d.encode(out);
        }
        self.status.encode(out);
    }
}

/// A string as a quoted string when it can be one (no CR, LF or NUL, at
/// most 1024 octets), else as a literal `{n}`.
pub fn string(s: &[u8], out: &mut Vec<u8>) {
    if s.len() > 1024 || s.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        literal(s, out);
        return;
    }
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// `literal-s2c = "{" number "}" CRLF *OCTET`.
pub fn literal(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(a: &Answer) -> String {
        let mut v = Vec::new();
        a.encode(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn responses_encode_as_rfc_5804_shows() {
        assert_eq!(enc(&Answer::status(Status::ok(""))), "OK\r\n");
        assert_eq!(
            enc(&Answer::status(Status::no_code(
                Code::NonExistent,
                "There is no script by that name"
            ))),
            "NO (NONEXISTENT) \"There is no script by that name\"\r\n"
        );
        assert_eq!(
            enc(&Answer::status(
                Status::ok("Done").with(Code::Tag(b"STARTTLS-SYNC-42".to_vec()))
            )),
            "OK (TAG \"STARTTLS-SYNC-42\") \"Done\"\r\n"
        );
        assert_eq!(
            enc(&Answer::status(Status::no("line 2: error\r\nmore"))),
            "NO {19}\r\nline 2: error\r\nmore\r\n"
        );
        assert_eq!(
            enc(&Answer {
                data: vec![
                    Data::Listed {
                        name: "summer_script".into(),
                        active: false
                    },
                    Data::Listed {
                        name: "vac\"ation".into(),
                        active: true
                    },
                    Data::Script(b"keep;\r\n".to_vec()),
                    Data::Capability("VERSION", Some("1.0".into())),
                    Data::Capability("STARTTLS", None),
                ],
                status: Status::ok(""),
            }),
            "\"summer_script\"\r\n\"vac\\\"ation\" ACTIVE\r\n{7}\r\nkeep;\r\n\r\n\"VERSION\" \"1.0\"\r\n\"STARTTLS\"\r\nOK\r\n"
        );
        assert_eq!(
            enc(&Answer::status(
                Status::bye("Too many").with(Code::TryLater)
            )),
            "BYE (TRYLATER) \"Too many\"\r\n"
        );
    }
}
