//! `--trace`: each session's dialogue on stderr as `C:`/`S:` lines, with
//! credentials masked (LOGIN, AUTHENTICATE) and literal octets elided by
//! size, so the protocol can be watched without leaking secrets or
//! flooding the terminal with message bodies.

use crate::command::{Command, CommandBody};

/// Per-connection trace writer.
#[derive(Debug)]
pub struct Tracer {
    id: netloop::ConnId,
    /// Octets of a streamed server literal still to elide.
    skip: usize,
}

/// Render protocol bytes as lines, replacing each literal's octets (after a
/// line ending in `{n}` / `{n+}`) with `<n octets>`.
pub fn render(bytes: &[u8]) -> Vec<String> {
    let mut skip = 0;
    render_from(bytes, &mut skip)
}

/// [`render`] for a stream cut into pieces: `skip` carries the literal
/// octets still to elide from one piece into the next (streamed FETCH
/// bodies arrive over many flushes).
fn render_from(bytes: &[u8], skip: &mut usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut i = (*skip).min(bytes.len());
    *skip -= i;
    while i < bytes.len() {
        let end = bytes[i..].iter().position(|&b| b == b'\n').map(|p| i + p);
        let (line, next) = match end {
            Some(e) => (&bytes[i..e], e + 1),
            None => (&bytes[i..], bytes.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        cur.push_str(&String::from_utf8_lossy(line));
        i = next;
        match literal_len(line) {
            Some(n) => {
                let now = n.min(bytes.len() - i);
                cur.push_str(&format!("<{n} octets>"));
                i += now;
                if now < n {
                    *skip = n - now;
                    lines.push(std::mem::take(&mut cur));
                }
            }
            None => lines.push(std::mem::take(&mut cur)),
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&body[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl Tracer {
    /// A tracer for connection `id`.
    pub fn new(id: netloop::ConnId) -> Self {
        Tracer { id, skip: 0 }
    }

    /// Log a free-form line (already prefixed with `C:`/`S:`).
    pub fn note(&mut self, line: &str) {
        eprintln!("imapd[{}] {line}", self.id);
    }

    /// Log a client command, masking credentials.
    pub fn client_command(&mut self, bytes: &[u8], parsed: Option<&Command>) {
        match parsed.map(|c| (&c.tag, &c.body)) {
            Some((tag, CommandBody::Login { user, .. })) => {
                self.note(&format!("C: {tag} LOGIN {user} <password masked>"));
            }
            Some((tag, CommandBody::Authenticate { mechanism, .. })) => {
                self.note(&format!(
                    "C: {tag} AUTHENTICATE {mechanism} <credentials masked>"
                ));
            }
            _ => {
                for l in render(bytes) {
                    self.note(&format!("C: {l}"));
                }
            }
        }
    }

    /// Log bytes sent to the client.
    pub fn server(&mut self, bytes: &[u8]) {
        for l in render_from(bytes, &mut self.skip) {
            self.note(&format!("S: {l}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_elided_and_lines_split() {
        let got = render(b"* 1 FETCH (BODY[] {5}\r\nhello)\r\na OK done\r\n");
        assert_eq!(got, vec!["* 1 FETCH (BODY[] {5}<5 octets>)", "a OK done"]);
    }

    #[test]
    fn literal_split_across_flushes_is_still_elided() {
        let mut skip = 0;
        assert_eq!(
            render_from(b"* 1 FETCH (BODY[] {10}\r\nabc", &mut skip),
            vec!["* 1 FETCH (BODY[] {10}<10 octets>"]
        );
        assert_eq!(skip, 7);
        assert!(render_from(b"defg", &mut skip).is_empty());
        assert_eq!(
            render_from(b"hij)\r\na OK\r\n", &mut skip),
            vec![")", "a OK"]
        );
    }
}
