//! ENVELOPE, BODY and BODYSTRUCTURE values (RFC 3501 §7.4.2, `envelope`,
//! `body`, `body-ext-1part`, `body-ext-mpart`) built from mailstore's parsed
//! [`Envelope`] and [`MimePart`]. Only builds [`Value`] trees; the serializer
//! in `response.rs` decides quoting.

use crate::response::Value;
use mailstore::{Address, AddressRef, Envelope, EnvelopeRef, MimePart};

/// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP
///  env-reply-to SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP
///  env-message-id ")"`
///
/// Sender and Reply-To default to From when absent (§7.4.2).
pub fn envelope(e: &Envelope) -> Value {
    let or_from = |v: &[Address]| {
        if v.is_empty() {
            addresses(&e.from)
        } else {
            addresses(v)
        }
    };
    Value::List(vec![
        Value::nstr(e.date.as_deref()),
        Value::nstr(e.subject.as_deref()),
        addresses(&e.from),
        or_from(&e.sender),
        or_from(&e.reply_to),
        addresses(&e.to),
        addresses(&e.cc),
        addresses(&e.bcc),
        Value::nstr(e.in_reply_to.as_deref()),
        Value::nstr(e.message_id.as_deref()),
    ])
}

/// [`envelope`] of the borrowed envelope a metadata FETCH reads
/// ([`mailstore::Reader::each_message`]), written straight onto `out`: the
/// same octets without building the value tree.
pub fn envelope_into(e: &EnvelopeRef<'_>, out: &mut Vec<u8>) {
    let sender = if e.sender.is_empty() {
        &e.from
    } else {
        &e.sender
    };
    let reply_to = if e.reply_to.is_empty() {
        &e.from
    } else {
        &e.reply_to
    };
    let lists = [&e.from, sender, reply_to, &e.to, &e.cc, &e.bcc];
    out.push(b'(');
    nstr_into(e.date.as_deref(), out);
    out.push(b' ');
    nstr_into(e.subject.as_deref(), out);
    for list in lists {
        out.push(b' ');
        addresses_into(list, out);
    }
    out.push(b' ');
    nstr_into(e.in_reply_to.as_deref(), out);
    out.push(b' ');
    nstr_into(e.message_id.as_deref(), out);
    out.push(b')');
}

/// `nstring` onto `out`.
fn nstr_into(s: Option<&str>, out: &mut Vec<u8>) {
    match s {
        Some(s) => crate::response::encode_string(s.as_bytes(), out),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// [`addresses`] onto `out`.
fn addresses_into(list: &[AddressRef<'_>], out: &mut Vec<u8>) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        nstr_into(a.name.as_deref(), out);
        out.push(b' ');
        nstr_into(a.adl.as_deref(), out);
        out.push(b' ');
        nstr_into(a.local.as_deref(), out);
        out.push(b' ');
        nstr_into(a.host.as_deref(), out);
        out.push(b')');
    }
    out.push(b')');
}

/// `"(" 1*address ")" / nil`; `address = "(" addr-name SP addr-adl SP
/// addr-mailbox SP addr-host ")"`
fn addresses(list: &[Address]) -> Value {
    if list.is_empty() {
        return Value::Nil;
    }
    // `"(" 1*address ")"`: no space between addresses (RFC 3501 §9).
    Value::List(vec![Value::Concat(
        list.iter()
            .map(|a| {
                Value::List(vec![
                    Value::nstr(a.name.as_deref()),
                    Value::nstr(a.adl.as_deref()),
                    Value::nstr(a.local.as_deref()),
                    Value::nstr(a.host.as_deref()),
                ])
            })
            .collect(),
    )])
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`
fn params(p: &[(String, String)]) -> Value {
    if p.is_empty() {
        return Value::Nil;
    }
    Value::List(
        merge_continuations(p)
            .into_iter()
            .flat_map(|(k, v)| [Value::str(k.to_ascii_uppercase()), Value::str(v)])
            .collect(),
    )
}

/// RFC 2231 §3 continuations (`name*0*=utf-8''a; name*1*=%C3%A9`) joined
/// into one parameter where the first section stood: `name*` with the
/// sections' values in section order when any section is extended (the
/// charset and percent-encoding stay for the client to decode, §4), else
/// plain `name`. Dovecot answers so too; clients then see one file name,
/// not its pieces. Other parameters pass through unchanged.
fn merge_continuations(p: &[(String, String)]) -> Vec<(String, String)> {
    /// `name*N` or `name*N*`: (name, N, extended).
    fn section(key: &str) -> Option<(&str, u32, bool)> {
        let (key, extended) = match key.strip_suffix('*') {
            Some(k) => (k, true),
            None => (key, false),
        };
        let (name, n) = key.rsplit_once('*')?;
        if name.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((name, n.parse().ok()?, extended))
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(p.len());
    /// A continued parameter: its name, its place in `out`, and its
    /// sections (n, value, extended).
    type Continued<'a> = (String, usize, Vec<(u32, &'a str, bool)>);
    let mut merged: Vec<Continued<'_>> = Vec::new();
    for (k, v) in p {
        let Some((name, n, ext)) = section(k) else {
            out.push((k.clone(), v.clone()));
            continue;
        };
        match merged.iter_mut().find(|m| m.0.eq_ignore_ascii_case(name)) {
            Some(m) => m.2.push((n, v, ext)),
            None => {
                merged.push((name.to_owned(), out.len(), vec![(n, v, ext)]));
                out.push((String::new(), String::new()));
            }
        }
    }
    for (name, at, mut sections) in merged {
        sections.sort_by_key(|s| s.0);
        let extended = sections.first().is_some_and(|s| s.2);
        let value: String = sections.iter().map(|s| s.1).collect();
        out[at] = (if extended { format!("{name}*") } else { name }, value);
    }
    out
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
fn disposition(d: &Option<(String, Vec<(String, String)>)>) -> Value {
    match d {
        None => Value::Nil,
        Some((kind, p)) => Value::List(vec![Value::str(kind.to_ascii_uppercase()), params(p)]),
    }
}

/// `body-fld-lang = nstring / "(" string *(SP string) ")"`
fn language(l: &[String]) -> Value {
    match l {
        [] => Value::Nil,
        [one] => Value::str(one.clone()),
        many => Value::List(many.iter().map(|s| Value::str(s.clone())).collect()),
    }
}

/// BODYSTRUCTURE (`extended == true`) or BODY (`false`) of a part.
pub fn body(p: &MimePart, extended: bool) -> Value {
    let mut v = Vec::new();
    if p.media_type.eq_ignore_ascii_case("multipart") && !p.parts.is_empty() {
        // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]:
        // the bodies follow each other with no space in between.
        v.push(Value::Concat(
            p.parts.iter().map(|c| body(c, extended)).collect(),
        ));
        v.push(Value::str(p.subtype.to_ascii_uppercase()));
        if extended {
            v.push(params(&p.params));
            v.push(disposition(&p.disposition));
            v.push(language(&p.language));
            v.push(Value::nstr(p.location.as_deref()));
        }
        return Value::List(v);
    }
    // body-type-1part: type subtype params id desc enc size [...]
    let (ty, sub) = if p.media_type.is_empty() {
        ("TEXT".to_owned(), "PLAIN".to_owned())
    } else {
        (
            p.media_type.to_ascii_uppercase(),
            p.subtype.to_ascii_uppercase(),
        )
    };
    let is_text = ty == "TEXT";
    let embedded = if ty == "MESSAGE" && sub == "RFC822" {
        p.embedded.as_deref()
    } else {
        None
    };
    v.push(Value::str(ty));
    v.push(Value::str(sub));
    v.push(params(&p.params));
    v.push(Value::nstr(p.id.as_deref()));
    v.push(Value::nstr(p.description.as_deref()));
    v.push(Value::str(if p.encoding.is_empty() {
        "7BIT".to_owned()
    } else {
        p.encoding.to_ascii_uppercase()
    }));
    v.push(Value::Num(p.size));
    if let Some((env, inner)) = embedded {
        // body-type-msg = ... SP envelope SP body SP body-fld-lines
        v.push(envelope(env));
        v.push(body(inner, extended));
        v.push(Value::Num(p.lines));
    } else if is_text {
        v.push(Value::Num(p.lines));
    }
    if extended {
        v.push(Value::nstr(p.md5.as_deref()));
        v.push(disposition(&p.disposition));
        v.push(language(&p.language));
        v.push(Value::nstr(p.location.as_deref()));
    }
    Value::List(v)
}

/// Find the part named by a section path (`[1, 2]` = part 1.2).
///
/// RFC 3501 §6.4.5: the parts of a message (the top level, or the message
/// inside a message/rfc822 part) are its multipart's children, or, if it is
/// not multipart, one part 1: its body (for a message/rfc822 body, the
/// whole encapsulated message). A further number after a message/rfc822
/// part addresses the parts of the message inside it.
pub fn find_part<'a>(root: &'a MimePart, path: &[u32]) -> Option<&'a MimePart> {
    let mut cur = root;
    // `cur` is a message whose parts the next number selects.
    let mut message_level = true;
    for &n in path {
        let idx = (n as usize).checked_sub(1)?;
        let is_multipart =
            |p: &MimePart| p.media_type.eq_ignore_ascii_case("multipart") && !p.parts.is_empty();
        if !message_level && !is_multipart(cur) {
            // Below a leaf, only an encapsulated message has parts.
            cur = &cur.embedded.as_deref()?.1;
        }
        if is_multipart(cur) {
            cur = cur.parts.get(idx)?;
        } else if idx != 0 {
            return None;
        }
        // A multipart child, or part 1 of a non-multipart message: the
        // next number (if any) must go through an encapsulated message.
        message_level = false;
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc2231_continuations_become_one_parameter() {
        let p = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        let got = super::merge_continuations(&p(&[
            ("charset", "us-ascii"),
            ("name*1*", "%C3%A9.txt"),
            ("name*0*", "utf-8''caf"),
            ("title*0", "a "),
            ("title*1", "b"),
            ("filename*", "utf-8''x"),
            ("x*y", "z"),
        ]));
        assert_eq!(
            got,
            p(&[
                ("charset", "us-ascii"),
                ("name*", "utf-8''caf%C3%A9.txt"),
                ("title", "a b"),
                ("filename*", "utf-8''x"),
                ("x*y", "z"),
            ])
        );
    }
}
