//! Typed FETCH data (RFC 3501 §7.4.2): UID, FLAGS, INTERNALDATE,
//! RFC822.SIZE, ENVELOPE, BODYSTRUCTURE and BODY[section] contents.
//!
//! Interprets the generic `Value` trees produced by `parse.rs`. Header words
//! in ENVELOPE strings are decoded from RFC 2047 encoded words.

use super::response::Value;

/// An address from an ENVELOPE (`addr-name addr-adl addr-mailbox addr-host`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Addr {
    /// Display name, decoded.
    pub name: Option<String>,
    /// `local@domain`.
    pub email: String,
}

impl Addr {
    /// The name if there is one, else the address.
    pub fn short(&self) -> &str {
        match &self.name {
            Some(n) if !n.trim().is_empty() => n,
            _ => &self.email,
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) if !n.is_empty() => write!(f, "{n} <{}>", self.email),
            _ => f.write_str(&self.email),
        }
    }
}

/// The ENVELOPE structure (§7.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// Date header as sent.
    pub date: Option<String>,
    /// Decoded subject.
    pub subject: Option<String>,
    /// From addresses.
    pub from: Vec<Addr>,
    /// To addresses.
    pub to: Vec<Addr>,
    /// Cc addresses.
    pub cc: Vec<Addr>,
    /// In-Reply-To header.
    pub in_reply_to: Option<String>,
    /// Message-ID header.
    pub message_id: Option<String>,
}

/// A node of BODYSTRUCTURE (§7.4.2), reduced to what a reader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStructure {
    /// `multipart/<subtype>` with its children.
    Multipart {
        /// e.g. "MIXED", "ALTERNATIVE".
        subtype: String,
        /// Child parts in order.
        parts: Vec<BodyStructure>,
    },
    /// A leaf part.
    Single {
        /// e.g. "text/plain", lower-cased.
        mime_type: String,
        /// File name from disposition or the `name` parameter.
        filename: Option<String>,
        /// Content-Transfer-Encoding, lower-cased.
        encoding: String,
        /// Size in octets of the encoded body.
        size: u64,
    },
}

impl BodyStructure {
    /// Leaf parts that look like attachments, with their IMAP section numbers.
    pub fn attachments(&self) -> Vec<(String, &BodyStructure)> {
        let mut out = Vec::new();
        fn walk<'a>(
            b: &'a BodyStructure,
            path: String,
            out: &mut Vec<(String, &'a BodyStructure)>,
        ) {
            match b {
                BodyStructure::Multipart { parts, .. } => {
                    for (i, p) in parts.iter().enumerate() {
                        let sub = if path.is_empty() {
                            format!("{}", i + 1)
                        } else {
                            format!("{path}.{}", i + 1)
                        };
                        walk(p, sub, out);
                    }
                }
                BodyStructure::Single { filename, .. } => {
                    if filename.is_some() {
                        let p = if path.is_empty() { "1".into() } else { path };
                        out.push((p, b));
                    }
                }
            }
        }
        walk(self, String::new(), &mut out);
        out
    }
}

/// Everything one FETCH response said about a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchData {
    /// Message sequence number.
    pub seq: u32,
    /// UID, when fetched.
    pub uid: Option<u32>,
    /// Flags, when fetched.
    pub flags: Option<Vec<String>>,
    /// INTERNALDATE string.
    pub internal_date: Option<String>,
    /// RFC822.SIZE.
    pub size: Option<u64>,
    /// ENVELOPE.
    pub envelope: Option<Envelope>,
    /// BODYSTRUCTURE.
    pub body_structure: Option<BodyStructure>,
    /// `BODY[]` (the whole message), exact bytes.
    pub body: Option<Vec<u8>>,
    /// Any `BODY[HEADER...]` section, exact bytes.
    pub header: Option<Vec<u8>>,
}

/// Decodes RFC 2047 encoded words in a header value.
pub fn decode_words(raw: &[u8]) -> String {
    let mut line = b"X: ".to_vec();
    line.extend_from_slice(raw);
    match mailparse::parse_header(&line) {
        Ok((h, _)) => h.get_value(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    }
}

fn opt_text(v: &Value) -> Option<String> {
    match v {
        Value::Bytes(b) => Some(decode_words(b)),
        Value::Atom(a) => Some(a.clone()),
        _ => None,
    }
}

fn addrs(v: &Value) -> Vec<Addr> {
    v.list()
        .iter()
        .filter_map(|a| match a.list() {
            [name, _adl, mailbox, host] => {
                let mb = mailbox.text()?;
                // A NIL host marks RFC 2822 group syntax; skip the markers.
                let host = host.text()?;
                Some(Addr {
                    name: opt_text(name).filter(|n| !n.is_empty()),
                    email: format!("{mb}@{host}"),
                })
            }
            _ => None,
        })
        .collect()
}

/// Interprets an ENVELOPE list.
pub fn envelope(v: &Value) -> Option<Envelope> {
    let f = v.list();
    if f.len() < 10 {
        return None;
    }
    Some(Envelope {
        date: f[0].text().map(|t| t.into_owned()),
        subject: opt_text(&f[1]),
        from: addrs(&f[2]),
        to: addrs(&f[5]),
        cc: addrs(&f[6]),
        in_reply_to: f[8].text().map(|t| t.into_owned()),
        message_id: f[9].text().map(|t| t.into_owned()),
    })
}

fn params_get(v: &Value, key: &str) -> Option<String> {
    v.list().chunks(2).find_map(|p| match p {
        [k, val] if k.text()?.eq_ignore_ascii_case(key) => opt_text(val),
        _ => None,
    })
}

/// Interprets a BODYSTRUCTURE (or BODY) list.
pub fn body_structure(v: &Value) -> Option<BodyStructure> {
    let f = v.list();
    if f.first().is_some_and(|x| matches!(x, Value::List(_))) {
        let parts: Vec<_> = f
            .iter()
            .take_while(|x| matches!(x, Value::List(_)))
            .filter_map(body_structure)
            .collect();
        let subtype = f
            .get(parts.len())
            .and_then(|s| s.text())
            .unwrap_or_default()
            .to_ascii_uppercase();
        return Some(BodyStructure::Multipart { subtype, parts });
    }
    if f.len() < 7 {
        return None;
    }
    let mime_type = format!(
        "{}/{}",
        f[0].text().unwrap_or_default(),
        f[1].text().unwrap_or_default()
    )
    .to_ascii_lowercase();
    let is_text = mime_type.starts_with("text/");
    let is_msg = mime_type == "message/rfc822";
    // Extension data: text parts have 1 extra field (lines), message/rfc822
    // 3 (envelope, body, lines); then MD5, then disposition.
    let ext_start = 7 + if is_text {
        1
    } else if is_msg {
        3
    } else {
        0
    };
    let disposition_filename = f
        .get(ext_start + 1)
        .and_then(|d| d.list().get(1).and_then(|p| params_get(p, "filename")));
    let filename = disposition_filename.or_else(|| params_get(&f[2], "name"));
    Some(BodyStructure::Single {
        mime_type,
        filename,
        encoding: f[5].text().unwrap_or_default().to_ascii_lowercase(),
        size: f[6].number().unwrap_or(0),
    })
}

/// Builds `FetchData` from the items of one `* n FETCH` response.
pub fn fetch_data(seq: u32, items: &[(String, Value)]) -> FetchData {
    let mut d = FetchData {
        seq,
        ..FetchData::default()
    };
    for (name, v) in items {
        match name.as_str() {
            "UID" => d.uid = v.number().and_then(|n| u32::try_from(n).ok()),
            "FLAGS" => {
                d.flags = Some(
                    v.list()
                        .iter()
                        .filter_map(|f| f.text().map(|t| t.into_owned()))
                        .collect(),
                )
            }
            "INTERNALDATE" => d.internal_date = v.text().map(|t| t.into_owned()),
            "RFC822.SIZE" => d.size = v.number(),
            "ENVELOPE" => d.envelope = envelope(v),
            "BODYSTRUCTURE" | "BODY" => d.body_structure = body_structure(v),
            n if n.starts_with("BODY[HEADER") || n.starts_with("RFC822.HEADER") => {
                if let Value::Bytes(b) = v {
                    d.header = Some(b.clone());
                }
            }
            n if n.starts_with("BODY[]") || n == "RFC822" => {
                if let Value::Bytes(b) = v {
                    d.body = Some(b.clone());
                }
            }
            _ => {}
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse_response, Response, Untagged};
    use super::*;

    fn fetch(raw: &[u8]) -> FetchData {
        match parse_response(raw) {
            Ok(Response::Untagged(Untagged::Fetch { seq, items })) => fetch_data(seq, &items),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn envelope_from_rfc3501_example_decodes() {
        let raw = br#"* 12 FETCH (UID 7 FLAGS (\Seen) RFC822.SIZE 4286 ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "<B27397-0100000@cac.washington.edu>"))"#;
        let d = fetch(raw);
        assert_eq!(d.uid, Some(7));
        assert_eq!(d.size, Some(4286));
        assert_eq!(d.flags, Some(vec!["\\Seen".to_string()]));
        let e = d.envelope.unwrap();
        assert_eq!(
            e.subject.as_deref(),
            Some("IMAP4rev1 WG mtg summary and minutes")
        );
        assert_eq!(e.from[0].name.as_deref(), Some("Terry Gray"));
        assert_eq!(e.from[0].email, "gray@cac.washington.edu");
        assert_eq!(e.cc.len(), 2);
        assert_eq!(e.cc[1].to_string(), "John Klensin <KLENSIN@MIT.EDU>");
        assert_eq!(
            e.message_id.as_deref(),
            Some("<B27397-0100000@cac.washington.edu>")
        );
    }

    #[test]
    fn envelope_subject_encoded_words_are_decoded() {
        let raw = br#"* 1 FETCH (ENVELOPE (NIL "=?UTF-8?B?w4RwZmVs?=" (("=?ISO-8859-1?Q?J=F6rg?=" NIL "j" "x.de")) NIL NIL NIL NIL NIL NIL NIL))"#;
        let e = fetch(raw).envelope.unwrap();
        assert_eq!(e.subject.as_deref(), Some("Äpfel"));
        assert_eq!(e.from[0].name.as_deref(), Some("Jörg"));
    }

    #[test]
    fn bodystructure_multipart_with_attachment() {
        let raw = br#"* 3 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL NIL)("APPLICATION" "PDF" ("NAME" "a.pdf") NIL NIL "BASE64" 1000 NIL ("ATTACHMENT" ("FILENAME" "report.pdf")) NIL) "MIXED" ("BOUNDARY" "x") NIL NIL))"#;
        let b = fetch(raw).body_structure.unwrap();
        match &b {
            BodyStructure::Multipart { subtype, parts } => {
                assert_eq!(subtype, "MIXED");
                assert_eq!(parts.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        let att = b.attachments();
        assert_eq!(att.len(), 1);
        assert_eq!(att[0].0, "2");
        assert_eq!(
            att[0].1,
            &BodyStructure::Single {
                mime_type: "application/pdf".into(),
                filename: Some("report.pdf".into()),
                encoding: "base64".into(),
                size: 1000
            }
        );
    }

    #[test]
    fn body_literal_is_kept_exact() {
        let d = fetch(b"* 2 FETCH (UID 9 BODY[] {7}\r\na\r\n.b\r\n)");
        assert_eq!(d.body.as_deref(), Some(&b"a\r\n.b\r\n"[..]));
    }
}
