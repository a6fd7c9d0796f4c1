//! Address lists of the envelope (RFC 5322 §3.4 and §4.4 obsolete forms,
//! RFC 3501 §7.4.2): mailboxes with or without a display name, groups
//! (as RFC 3501's start and end markers), the obsolete source route
//! `<@a,@b:user@domain>` (its `adl`), comments and folding white space
//! anywhere between tokens. A mailbox without a phrase takes its comment
//! as the name (`user@domain (Real Name)`), as Dovecot does. One pass over
//! the value, so the cost is linear in its length.

use crate::meta::Address;

use super::MAX_VALUE;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An atom or dot-atom run, as sent.
    Word(String),
    /// A quoted string, unquoted.
    Quoted(String),
    /// A domain literal `[...]`, as sent.
    Literal(String),
    /// A comment's text, unwrapped.
    Comment(String),
    /// One of `< > @ , ; : .`
    Special(u8),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let mut out = Vec::new();
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    if b[i] != b'\r' && b[i] != b'\n' {
                        out.push(b[i]);
                    }
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Quoted(String::from_utf8_lossy(&out).into_owned()));
            }
            b'(' => {
                let mut depth = 0usize;
                let mut out = Vec::new();
                while i < b.len() {
                    match b[i] {
                        b'\\' if i + 1 < b.len() => {
                            i += 1;
                            out.push(b[i]);
                        }
                        b'(' => {
                            if depth > 0 {
                                out.push(b'(');
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                            out.push(b')');
                        }
                        c => out.push(c),
                    }
                    i += 1;
                }
                toks.push(Tok::Comment(String::from_utf8_lossy(&out).into_owned()));
            }
            b'[' => {
                let start = i;
                while i < b.len() && b[i] != b']' {
                    i += 1;
                }
                i = (i + 1).min(b.len());
                toks.push(Tok::Literal(s[start..i].to_owned()));
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.' => {
                toks.push(Tok::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < b.len() && !b" \t\r\n\"(<>@,;:.[".contains(&b[i]) {
                    i += 1;
                }
                // `)` or `]` without an opener: part of the word.
                i = i.max(start + 1);
                toks.push(Tok::Word(s[start..i].to_owned()));
            }
        }
    }
    toks
}

/// The text of tokens forming a local part or domain: words, quoted
/// strings, literals and dots, concatenated without the white space.
fn joined(toks: &[Tok]) -> String {
    let mut out = String::new();
    for t in toks {
        match t {
            Tok::Word(w) | Tok::Quoted(w) | Tok::Literal(w) => out.push_str(w),
            Tok::Special(b'.') => out.push('.'),
            _ => {}
        }
    }
    out
}

/// A display name: words and quoted strings joined by one space.
fn phrase(toks: &[Tok]) -> Option<String> {
    let mut out = String::new();
    for t in toks {
        let w = match t {
            Tok::Word(w) | Tok::Quoted(w) | Tok::Literal(w) => w.as_str(),
            Tok::Special(b'.') => {
                out.push('.');
                continue;
            }
            _ => continue,
        };
        if !out.is_empty() && !out.ends_with('.') {
            out.push(' ');
        }
        out.push_str(w);
    }
    let out = out.trim().to_owned();
    (!out.is_empty()).then_some(out)
}

/// `local@domain` from the tokens of an addr-spec (comments ignored).
fn addr_spec(toks: &[Tok]) -> (String, String) {
    let toks: Vec<&Tok> = toks
        .iter()
        .filter(|t| !matches!(t, Tok::Comment(_)))
        .collect();
    match toks.iter().rposition(|t| **t == Tok::Special(b'@')) {
        Some(at) => {
            let local: Vec<Tok> = toks[..at].iter().map(|t| (*t).clone()).collect();
            let domain: Vec<Tok> = toks[at + 1..].iter().map(|t| (*t).clone()).collect();
            (joined(&local), joined(&domain))
        }
        None => {
            let all: Vec<Tok> = toks.iter().map(|t| (*t).clone()).collect();
            (joined(&all), String::new())
        }
    }
}

fn mailbox(name: Option<String>, adl: Option<String>, local: String, host: String) -> Address {
    Address {
        name,
        adl,
        local: Some(local),
        // No domain: host present (empty) so it is not a group marker.
        host: Some(host),
    }
}

/// The last comment after the address's last word (`user@domain (Real
/// Name)`); comments inside the address name nothing.
fn last_comment(toks: &[Tok]) -> Option<String> {
    toks.iter()
        .rev()
        .take_while(|t| matches!(t, Tok::Comment(_)))
        .find_map(|t| match t {
            Tok::Comment(c) if !c.trim().is_empty() => Some(c.trim().to_owned()),
            _ => None,
        })
}

/// Parse an address list (at most [`MAX_VALUE`] bytes of it); groups
/// become RFC 3501 start/end markers.
pub(crate) fn addresses(value: &str) -> Vec<Address> {
    let value = super::cut_str(value, MAX_VALUE);
    let toks = tokenize(value);
    let mut out = Vec::new();
    let mut in_group = false;
    // Tokens of the current address, and whether an angle-addr already
    // made it (what follows up to `,` or `;` is then ignored).
    let mut cur: Vec<Tok> = Vec::new();
    let mut done = false;
    let mut i = 0;
    let flush = |cur: &mut Vec<Tok>, done: &mut bool, out: &mut Vec<Address>| {
        if !*done && cur.iter().any(|t| !matches!(t, Tok::Comment(_))) {
            let (local, host) = addr_spec(cur);
            if !local.is_empty() || !host.is_empty() {
                out.push(mailbox(last_comment(cur), None, local, host));
            }
        }
        cur.clear();
        *done = false;
    };
    while i < toks.len() {
        match &toks[i] {
            Tok::Special(b':') if !done && !in_group => {
                out.push(Address {
                    local: Some(phrase(&cur).unwrap_or_default()),
                    ..Address::default()
                });
                cur.clear();
                in_group = true;
            }
            Tok::Special(b'<') if !done => {
                let close = toks[i + 1..]
                    .iter()
                    .position(|t| *t == Tok::Special(b'>'))
                    .map_or(toks.len(), |p| i + 1 + p);
                let inside = &toks[i + 1..close];
                // obs-route: `@a,@b:` before the addr-spec.
                let (adl, spec) = match inside.iter().find(|t| !matches!(t, Tok::Comment(_))) {
                    Some(Tok::Special(b'@')) => {
                        match inside.iter().position(|t| *t == Tok::Special(b':')) {
                            Some(colon) => {
                                let mut route = String::new();
                                for t in &inside[..colon] {
                                    match t {
                                        Tok::Special(b'@') => route.push('@'),
                                        Tok::Special(b',') => route.push(','),
                                        Tok::Special(b'.') => route.push('.'),
                                        Tok::Word(w) | Tok::Literal(w) => route.push_str(w),
                                        _ => {}
                                    }
                                }
                                (Some(route), &inside[colon + 1..])
                            }
                            None => (None, inside),
                        }
                    }
                    _ => (None, inside),
                };
                let (local, host) = addr_spec(spec);
                let name = phrase(&cur).or_else(|| last_comment(&cur));
                out.push(mailbox(name, adl, local, host));
                cur.clear();
                done = true;
                i = close;
            }
            Tok::Special(b',') => flush(&mut cur, &mut done, &mut out),
            Tok::Special(b';') => {
                flush(&mut cur, &mut done, &mut out);
                if in_group {
                    out.push(Address::default());
                    in_group = false;
                }
            }
            t if !done => cur.push(t.clone()),
            _ => {}
        }
        i += 1;
    }
    flush(&mut cur, &mut done, &mut out);
    if in_group {
        out.push(Address::default());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, adl: Option<&str>, local: &str, host: &str) -> Address {
        Address {
            name: name.map(Into::into),
            adl: adl.map(Into::into),
            local: Some(local.into()),
            host: Some(host.into()),
        }
    }

    fn start(g: &str) -> Address {
        Address {
            local: Some(g.into()),
            ..Address::default()
        }
    }

    #[test]
    fn plain_named_and_commented_mailboxes() {
        assert_eq!(
            addresses("user@domain"),
            vec![a(None, None, "user", "domain")]
        );
        assert_eq!(
            addresses("From Real <fromuser@fromdomain.org>"),
            vec![a(Some("From Real"), None, "fromuser", "fromdomain.org")]
        );
        assert_eq!(
            addresses("user@domain (Real Name)"),
            vec![a(Some("Real Name"), None, "user", "domain")]
        );
        assert_eq!(
            addresses("\"Last, First\" <a@b>, c@d"),
            vec![
                a(Some("Last, First"), None, "a", "b"),
                a(None, None, "c", "d")
            ]
        );
        assert_eq!(
            addresses("=?utf-8?q?J=C3=B6rg?= <j@x.org>"),
            vec![a(Some("=?utf-8?q?J=C3=B6rg?="), None, "j", "x.org")]
        );
    }

    #[test]
    fn comments_and_folding_inside_addresses_are_removed() {
        assert_eq!(
            addresses("other (c)@ (c) d4.org"),
            vec![a(None, None, "other", "d4.org")]
        );
        assert_eq!(
            addresses("<user (c)@ (c) domain.org>"),
            vec![a(None, None, "user", "domain.org")]
        );
        assert_eq!(
            addresses("Name\r\n <first . last @ example . org>"),
            vec![a(Some("Name"), None, "first.last", "example.org")]
        );
    }

    #[test]
    fn groups_become_markers() {
        assert_eq!(
            addresses("group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;"),
            vec![
                start("group"),
                a(None, None, "g1", "d1.org"),
                a(None, None, "g2", "d2.org"),
                Address::default(),
                start("group2"),
                a(None, None, "g3", "d3.org"),
                Address::default(),
            ]
        );
        assert_eq!(
            addresses("group:;, group2: (foo) ;"),
            vec![
                start("group"),
                Address::default(),
                start("group2"),
                Address::default()
            ]
        );
        assert_eq!(
            addresses("undisclosed-recipients:;"),
            vec![start("undisclosed-recipients"), Address::default()]
        );
        assert_eq!(
            addresses("g: a@b; , c@d"),
            vec![
                start("g"),
                a(None, None, "a", "b"),
                Address::default(),
                a(None, None, "c", "d")
            ]
        );
    }

    #[test]
    fn source_route_is_the_adl() {
        assert_eq!(
            addresses("<@route:user@domain>"),
            vec![a(None, Some("@route"), "user", "domain")]
        );
        assert_eq!(
            addresses("N <@a.org,@b.org:u@c.org>"),
            vec![a(Some("N"), Some("@a.org,@b.org"), "u", "c.org")]
        );
    }

    #[test]
    fn odd_input_keeps_something() {
        assert_eq!(addresses("root"), vec![a(None, None, "root", "")]);
        assert!(addresses("").is_empty());
        assert!(addresses(" , ,").is_empty());
        let odd = addresses("a@b <c@d");
        assert_eq!(
            (odd[0].local.as_deref(), odd[0].host.as_deref()),
            (Some("c"), Some("d"))
        );
        let _ = addresses("((((unclosed");
        let _ = addresses("\"unclosed");
        let _ = addresses("<<<>>>@@@:::;;;");
    }
}
