//! Property tests `parse(serialize(x)) == x` for every [`Command`] the
//! parser produces: a test-only serializer writes each command in RFC 5321
//! §4.1.1 / §4.1.2 syntax, using the freedoms the grammar gives a client
//! (verb and keyword case, source routes, quoted local parts, address
//! literal spellings, parameter order, extra blanks), and
//! `Command::parse` must give back the same value.
//!
//! Covered: EHLO/HELO (domains, RFC 5321 §4.1.3 address literals, the
//! tolerated non-grammar tokens), MAIL with SIZE (RFC 1870), BODY
//! (RFC 6152), SMTPUTF8 (RFC 6531) and AUTH (RFC 4954 §5), RCPT (with
//! `<Postmaster>`), DATA, BDAT (RFC 3030), RSET, VRFY, EXPN, HELP, NOOP,
//! QUIT, STARTTLS (RFC 3207) and AUTH (RFC 4954 §4).

use crate::command::{Body, Command, CommandError, MailParams, RcptParams, Ret};
use crate::parse::{AddressLiteral, ForwardPath, Host, Mailbox, ReversePath};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Spelling choices for the serializer, drawn from random bits.
#[derive(Debug, Clone)]
struct Style(u64);

impl Style {
    fn flip(&mut self) -> bool {
        let b = self.0 & 1 == 1;
        self.0 = self.0.rotate_right(1) ^ 0x9e37_79b9_7f4a_7c15;
        b
    }

    /// `s` in a random mix of upper and lower case.
    fn case(&mut self, s: &str) -> String {
        s.chars()
            .map(|c| {
                if self.flip() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect()
    }

    /// Zero to two spaces.
    fn blanks(&mut self) -> &'static str {
        match (self.flip(), self.flip()) {
            (true, true) => "  ",
            (true, false) => " ",
            _ => "",
        }
    }
}

// ---- strategies -------------------------------------------------------

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9\u{e0}-\u{ff}]([a-zA-Z0-9\u{e0}-\u{ff}-]{0,10}[a-zA-Z0-9\u{e0}-\u{ff}])?"
}

fn domain() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..4).prop_map(|l| l.join("."))
}

fn address_literal() -> impl Strategy<Value = AddressLiteral> {
    prop_oneof![
        any::<u32>().prop_map(|a| AddressLiteral::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| AddressLiteral::V6(Ipv6Addr::from(a))),
        // A few IPv6 addresses with runs of zeros, compressed as `::`.
        (any::<u16>(), 0usize..8).prop_map(|(v, at)| {
            let mut s = [0u16; 8];
            s[at] = v;
            AddressLiteral::V6(Ipv6Addr::from(s))
        }),
        (
            "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?".prop_filter("IPv6 is not general", |t| {
                !t.eq_ignore_ascii_case("IPv6")
            }),
            "[!-Z^-~]{1,12}"
        )
            .prop_map(|(tag, content)| AddressLiteral::General { tag, content }),
    ]
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        3 => domain().prop_map(Host::Domain),
        1 => address_literal().prop_map(Host::Literal),
    ]
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|a| !a.is_empty() && a.chars().all(is_atext))
}

/// The canonical local part `mailbox()` produces for quoted content `q`.
fn canonical_quoted(q: &str) -> String {
    if is_dot_string(q) {
        return q.to_owned();
    }
    let mut out = String::from("\"");
    for c in q.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn local_part() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec("[a-zA-Z0-9!#$%&'*+/=?^_`{|}~\u{e0}-\u{ff}-]{1,8}", 1..4)
            .prop_map(|a| a.join(".")),
        "[ -~\u{e0}-\u{ff}]{0,16}".prop_map(|q| canonical_quoted(&q)),
    ]
}

fn mailbox() -> impl Strategy<Value = Mailbox> {
    (local_part(), host()).prop_map(|(local, host)| Mailbox { local, host })
}

/// A name for EHLO/HELO as `Command::parse` gives it back: a domain, an
/// address literal in its canonical spelling, or a printable token that
/// does not start with `[` (a token that reads as a non-canonical literal
/// comes back canonical).
fn helo_name() -> impl Strategy<Value = String> {
    prop_oneof![
        domain(),
        address_literal().prop_map(|l| canonical_literal(&l)),
        "[!-Z\\\\^-~][!-~]{0,20}",
    ]
}

/// Text for VRFY/EXPN/HELP: printable, not starting or ending in a blank
/// (the parser trims).
fn string_arg() -> impl Strategy<Value = String> {
    "[!-~\u{e0}-\u{ff}]([ -~\u{e0}-\u{ff}]{0,20}[!-~\u{e0}-\u{ff}])?"
}

fn command() -> impl Strategy<Value = Command> {
    let mail_params = (
        prop::option::of(any::<u64>()),
        prop_oneof![
            Just(Body::Unspecified),
            Just(Body::SevenBit),
            Just(Body::EightBitMime)
        ],
        any::<bool>(),
        prop::option::of(prop_oneof![Just(Ret::Full), Just(Ret::Hdrs)]),
        // ENVID: printable ASCII; 30 characters stay under 100 encoded.
        prop::option::of("[ -~]{1,30}"),
    )
        .prop_map(|(size, body, smtputf8, ret, envid)| MailParams {
            size,
            body,
            smtputf8,
            ret,
            envid,
        });
    let rcpt_params = (
        prop::option::of(prop_oneof![
            Just("NEVER".to_string()),
            Just("SUCCESS".to_string()),
            Just("FAILURE,DELAY".to_string()),
            Just("DELAY,SUCCESS,FAILURE".to_string()),
        ]),
        prop::option::of("[ -~]{1,60}".prop_map(|a| format!("rfc822;{a}"))),
    )
        .prop_map(|(notify, orcpt)| RcptParams { notify, orcpt });
    prop_oneof![
        helo_name().prop_map(Command::Ehlo),
        helo_name().prop_map(Command::Helo),
        (
            prop_oneof![
                1 => Just(ReversePath::Null),
                4 => mailbox().prop_map(ReversePath::Mailbox),
            ],
            mail_params
        )
            .prop_map(|(from, params)| Command::Mail { from, params }),
        (
            prop_oneof![
                1 => Just(ForwardPath::Postmaster),
                4 => mailbox().prop_map(ForwardPath::Mailbox),
            ],
            rcpt_params
        )
            .prop_map(|(to, params)| Command::Rcpt { to, params }),
        Just(Command::Data),
        (any::<u64>(), any::<bool>()).prop_map(|(size, last)| Command::Bdat { size, last }),
        Just(Command::Rset),
        string_arg().prop_map(Command::Vrfy),
        string_arg().prop_map(Command::Expn),
        prop::option::of(string_arg()).prop_map(Command::Help),
        Just(Command::Noop),
        Just(Command::Quit),
        Just(Command::StartTls),
        (
            "[A-Z0-9_-]{1,20}",
            prop::option::of(prop_oneof![Just("=".to_string()), "[!-~]{1,40}"])
        )
            .prop_map(|(mechanism, initial)| Command::Auth { mechanism, initial }),
    ]
}

// ---- the serializer ---------------------------------------------------

/// `Display` of an address literal as `helo_name` reports it, written out
/// here rather than taken from the crate.
fn canonical_literal(l: &AddressLiteral) -> String {
    match l {
        AddressLiteral::V4(a) => format!("[{a}]"),
        AddressLiteral::V6(a) => format!("[IPv6:{a}]"),
        AddressLiteral::General { tag, content } => format!("[{tag}:{content}]"),
    }
}

fn wire_literal(l: &AddressLiteral, st: &mut Style) -> String {
    match l {
        AddressLiteral::V4(a) => {
            let o = a.octets();
            if st.flip() {
                format!("[{:03}.{}.{:02}.{}]", o[0], o[1], o[2], o[3])
            } else {
                format!("[{a}]")
            }
        }
        AddressLiteral::V6(a) => {
            let tag = st.case("IPv6");
            if st.flip() {
                let groups: Vec<String> = a.segments().iter().map(|g| format!("{g:x}")).collect();
                format!("[{tag}:{}]", groups.join(":"))
            } else {
                format!("[{tag}:{a}]")
            }
        }
        AddressLiteral::General { tag, content } => format!("[{tag}:{content}]"),
    }
}

fn wire_host(h: &Host, st: &mut Style) -> String {
    match h {
        Host::Domain(d) => d.clone(),
        Host::Literal(l) => wire_literal(l, st),
    }
}

fn wire_local(local: &str, st: &mut Style) -> String {
    if let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        // Re-quote, escaping some ASCII characters that need no escape.
        let mut out = String::from("\"");
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            let c = if c == '\\' {
                chars.next().unwrap_or('\\')
            } else {
                c
            };
            if c == '"' || c == '\\' || (c.is_ascii() && st.flip() && st.flip()) {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    } else if st.flip() && st.flip() {
        format!("\"{local}\"")
    } else {
        local.to_owned()
    }
}

fn wire_path(m: &Mailbox, st: &mut Style) -> String {
    let route = if st.flip() && st.flip() {
        "@relay.example,@mx.example:"
    } else {
        ""
    };
    format!(
        "<{route}{}@{}>",
        wire_local(&m.local, st),
        wire_host(&m.host, st)
    )
}

/// RFC 3461 §4 xtext, written out here rather than taken from a crate.
fn wire_xtext(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
                char::from(b).to_string()
            } else {
                format!("+{b:02X}")
            }
        })
        .collect()
}

fn wire_mail_params(p: &MailParams, st: &mut Style) -> String {
    let mut params = Vec::new();
    if let Some(n) = p.size {
        let digits = if st.flip() {
            format!("00{n}")
        } else {
            n.to_string()
        };
        params.push(format!("{}={digits}", st.case("SIZE")));
    }
    match p.body {
        Body::Unspecified => {}
        Body::SevenBit => params.push(st.case("BODY=7BIT")),
        Body::EightBitMime => params.push(st.case("BODY=8BITMIME")),
    }
    if p.smtputf8 {
        params.push(st.case("SMTPUTF8"));
    }
    if let Some(r) = p.ret {
        let r = match r {
            Ret::Full => "RET=FULL",
            Ret::Hdrs => "RET=HDRS",
        };
        params.push(st.case(r));
    }
    if let Some(e) = &p.envid {
        params.push(format!("{}={}", st.case("ENVID"), wire_xtext(e)));
    }
    if st.flip() {
        // Accepted and ignored (RFC 4954 §5).
        params.push(format!("{}=<>", st.case("AUTH")));
    }
    if st.flip() {
        params.reverse();
    }
    params
        .iter()
        .map(|p| format!(" {}{p}", st.blanks()))
        .collect()
}

/// One command line (without CRLF) that means `c`.
fn serialize(c: &Command, st: &mut Style) -> String {
    let verb = |st: &mut Style, v: &str| st.case(v);
    let line = match c {
        Command::Ehlo(n) => format!("{} {n}", verb(st, "EHLO")),
        Command::Helo(n) => format!("{} {n}", verb(st, "HELO")),
        Command::Mail { from, params } => {
            let path = match from {
                ReversePath::Null => "<>".to_owned(),
                ReversePath::Mailbox(m) => wire_path(m, st),
            };
            let (v, f, b) = (verb(st, "MAIL"), st.case("FROM:"), st.blanks());
            format!("{v} {f}{b}{path}{}", wire_mail_params(params, st))
        }
        Command::Rcpt { to, params } => {
            let path = match to {
                ForwardPath::Postmaster => format!("<{}>", st.case("Postmaster")),
                ForwardPath::Mailbox(m) => wire_path(m, st),
            };
            let (v, t, b) = (verb(st, "RCPT"), st.case("TO:"), st.blanks());
            let mut line = format!("{v} {t}{b}{path}");
            if let Some(n) = &params.notify {
                line.push_str(&format!(" {}={}", st.case("NOTIFY"), st.case(n)));
            }
            if let Some(o) = &params.orcpt {
                let (kind, addr) = o.split_once(';').unwrap_or(("rfc822", o));
                line.push_str(&format!(
                    " {}={kind};{}",
                    st.case("ORCPT"),
                    wire_xtext(addr)
                ));
            }
            line
        }
        Command::Data => verb(st, "DATA"),
        Command::Bdat { size, last } => {
            let v = verb(st, "BDAT");
            if *last {
                format!("{v} {size} {}", st.case("LAST"))
            } else {
                format!("{v} {size}")
            }
        }
        Command::Rset => verb(st, "RSET"),
        Command::Vrfy(s) => format!("{} {s}", verb(st, "VRFY")),
        Command::Expn(s) => format!("{} {s}", verb(st, "EXPN")),
        Command::Help(None) => verb(st, "HELP"),
        Command::Help(Some(s)) => format!("{} {s}", verb(st, "HELP")),
        Command::Noop => {
            let v = verb(st, "NOOP");
            if st.flip() {
                format!("{v} anything at all")
            } else {
                v
            }
        }
        Command::Quit => verb(st, "QUIT"),
        Command::StartTls => verb(st, "STARTTLS"),
        Command::Auth { mechanism, initial } => {
            let v = verb(st, "AUTH");
            let m = st.case(mechanism);
            match initial {
                Some(i) => format!("{v} {m} {i}"),
                None => format!("{v} {m}"),
            }
        }
    };
    // Trailing blanks are tolerated after every command.
    format!("{line}{}", st.blanks())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn commands_round_trip(c in command(), bits in any::<u64>()) {
        let line = serialize(&c, &mut Style(bits));
        prop_assert_eq!(Command::parse(line.as_bytes()), Ok(c), "line {:?}", line);
    }

    /// We advertise no RCPT parameters, so any is refused by its keyword
    /// (RFC 5321 §4.1.1.11), however the path is written.
    #[test]
    fn rcpt_parameters_are_refused_by_name(
        to in mailbox(),
        kw in "[a-zA-Z0-9][a-zA-Z0-9-]{0,10}",
        value in prop::option::of("[!-<>-~]{1,10}"),
        bits in any::<u64>(),
    ) {
        let mut st = Style(bits);
        let param = match &value {
            Some(v) => format!("{kw}={v}"),
            None => kw.clone(),
        };
        let line = format!("RCPT TO:{} {param}", wire_path(&to, &mut st));
        prop_assert_eq!(
            Command::parse(line.as_bytes()),
            Err(CommandError::UnknownParameter(kw.to_ascii_uppercase())),
            "line {:?}", line
        );
    }
}
