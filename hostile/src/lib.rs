//! Hostile inputs, generated (never stored in git): the shapes that once
//! crashed, stalled or starved minimail (issue 12) and their neighbours.
//! Each message generator takes a target size in bytes and returns a
//! message of about that size, so callers can draw cost-versus-size
//! curves (`mailbench hostile`), run them against real servers
//! (`tests/hostile.rs`) and seed the structure-aware fuzzer.

/// A shape of hostile message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `multipart/mixed` nested as deep as the size allows.
    NestedMultipart,
    /// The same, each `Content-Type` an RFC 2047 encoded word that decodes
    /// to `multipart/mixed` (slips past a guard counting `multipart/`).
    NestedEncoded,
    /// `message/rfc822` inside `message/rfc822` as deep as the size allows.
    NestedRfc822,
    /// One flat multipart with as many tiny parts as fit.
    FlatParts,
    /// `multipart/digest` with many parts (each defaults to message/rfc822).
    Digest,
    /// A header block of as many short fields as fit.
    ManyHeaders,
    /// One `Subject:` field as long as the size, unfolded, plain text.
    LongHeaderLine,
    /// One `Subject:` made of encoded words, folded.
    EncodedWords,
    /// One `Subject:` of `(=?a?=x` repeated: starts of encoded words whose
    /// ends never qualify (quadratic for a naive scanner).
    BrokenEncodedWords,
    /// A `To:` with as many addresses (with comments and groups) as fit.
    ManyAddresses,
    /// A text body that is one line.
    LongBodyLine,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 11] = [
        Shape::NestedMultipart,
        Shape::NestedEncoded,
        Shape::NestedRfc822,
        Shape::FlatParts,
        Shape::Digest,
        Shape::ManyHeaders,
        Shape::LongHeaderLine,
        Shape::EncodedWords,
        Shape::BrokenEncodedWords,
        Shape::ManyAddresses,
        Shape::LongBodyLine,
    ];

    /// A short name for tables and test output.
    pub fn name(self) -> &'static str {
        match self {
            Shape::NestedMultipart => "nested-multipart",
            Shape::NestedEncoded => "nested-encoded-ctype",
            Shape::NestedRfc822 => "nested-rfc822",
            Shape::FlatParts => "flat-parts",
            Shape::Digest => "digest",
            Shape::ManyHeaders => "many-headers",
            Shape::LongHeaderLine => "long-header-line",
            Shape::EncodedWords => "encoded-words",
            Shape::BrokenEncodedWords => "broken-encoded-words",
            Shape::ManyAddresses => "many-addresses",
            Shape::LongBodyLine => "long-body-line",
        }
    }

    /// The shape called `name` (see [`Shape::name`]).
    pub fn from_name(name: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.name() == name)
    }
}

const HEAD: &str = "From: attacker@example.net\r\nTo: victim@localhost\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <hostile@example.net>\r\n";

/// A message of `shape` of about `size` bytes (at least a few hundred).
pub fn message(shape: Shape, size: usize) -> Vec<u8> {
    let mut m = String::with_capacity(size + 256);
    m.push_str(HEAD);
    match shape {
        Shape::NestedMultipart | Shape::NestedEncoded => {
            m.push_str("Subject: nested\r\n");
            let ctype = if shape == Shape::NestedEncoded {
                "=?us-ascii?B?bXVsdGlwYXJ0L21peGVk?="
            } else {
                "multipart/mixed"
            };
            let mut i = 0;
            while m.len() < size {
                m.push_str(&format!(
                    "Content-Type: {ctype}; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
                ));
                i += 1;
            }
            m.push_str("Content-Type: text/plain\r\n\r\nleaf\r\n");
        }
        Shape::NestedRfc822 => {
            m.push_str("Subject: nested messages\r\n");
            while m.len() < size {
                m.push_str("Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n");
            }
            m.push_str("\r\nleaf\r\n");
        }
        Shape::FlatParts | Shape::Digest => {
            let sub = if shape == Shape::Digest {
                "digest"
            } else {
                "mixed"
            };
            m.push_str(&format!(
                "Subject: many parts\r\nContent-Type: multipart/{sub}; boundary=x\r\n\r\n"
            ));
            let part = if shape == Shape::Digest {
                "--x\r\n\r\nSubject: d\r\n\r\nd\r\n"
            } else {
                "--x\r\n\r\np\r\n"
            };
            while m.len() < size {
                m.push_str(part);
            }
            m.push_str("--x--\r\n");
        }
        Shape::ManyHeaders => {
            m.push_str("Subject: many headers\r\n");
            let mut i = 0u64;
            while m.len() < size {
                m.push_str(&format!("X-H{i}: v\r\n"));
                i += 1;
            }
            m.push_str("\r\nbody\r\n");
        }
        Shape::LongHeaderLine => {
            m.push_str("Subject: ");
            while m.len() < size {
                m.push_str("word ");
            }
            m.push_str("\r\n\r\nbody\r\n");
        }
        Shape::EncodedWords => {
            m.push_str("Subject:");
            while m.len() < size {
                m.push_str(" =?utf-8?q?caf=C3=A9?=\r\n");
            }
            m.push_str("\r\nbody\r\n");
        }
        Shape::BrokenEncodedWords => {
            m.push_str("Subject: ");
            while m.len() < size {
                m.push_str("(=?a?=x");
            }
            m.push_str("\r\n\r\nbody\r\n");
        }
        Shape::ManyAddresses => {
            m.push_str("Subject: many addresses\r\nCc: ");
            let mut i = 0u64;
            while m.len() < size {
                if i.is_multiple_of(10) {
                    m.push_str(&format!("g{i}: "));
                }
                m.push_str(&format!("\"N (x)\" <u{i} (c)@ (c) example.org>"));
                m.push_str(if i % 10 == 9 { ";,\r\n " } else { ",\r\n " });
                i += 1;
            }
            m.push_str("last@example.org\r\n\r\nbody\r\n");
        }
        Shape::LongBodyLine => {
            m.push_str("Subject: one long line\r\n\r\n");
            while m.len() < size {
                m.push_str("abcdefghij");
            }
            m.push_str("\r\n");
        }
    }
    m.into_bytes()
}

/// An IMAP SEARCH key list of `n` keys, as a command without tag:
/// `UID SEARCH OR SUBJECT k0 OR SUBJECT k1 ... ALL`.
pub fn search_many_ors(n: usize) -> String {
    let mut s = String::from("UID SEARCH");
    for i in 0..n {
        s.push_str(&format!(" OR SUBJECT k{i}"));
    }
    s.push_str(" ALL");
    s
}

/// `SEARCH` with `n` nested parentheses around one key.
pub fn search_deep_parens(n: usize) -> String {
    format!("SEARCH {}ALL{}", "(".repeat(n), ")".repeat(n))
}

/// `SEARCH` with `n` NOTs in a row.
pub fn search_deep_not(n: usize) -> String {
    format!("SEARCH {}ALL", "NOT ".repeat(n))
}

/// A LIST pattern of `len` bytes that makes a naive matcher work hard.
pub fn list_pattern(len: usize) -> String {
    let mut p = String::with_capacity(len);
    while p.len() < len {
        p.push_str("*a%");
    }
    p.truncate(len);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_close_to_the_target() {
        for shape in Shape::ALL {
            for size in [1024, 100_000] {
                let m = message(shape, size);
                assert!(
                    m.len() >= size && m.len() < size + 512,
                    "{shape:?} {}",
                    m.len()
                );
                assert_eq!(Shape::from_name(shape.name()), Some(shape));
            }
        }
    }
}
