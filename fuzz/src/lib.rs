//! Helpers shared by the fuzz targets: the expected client-side reading of
//! a server [`imapd::response::Value`] (RFC 3501 §4 data formats, §9
//! `string`/`nstring`/`literal`, `body-type-mpart`), generators of valid
//! response values for the serializer round trip, and a parse-back check
//! through mua's independent IMAP response parser; the MIME targets'
//! store round trip and checks ([`mime`]) and structure-aware message
//! trees ([`mime_tree`]).

pub mod mime;
pub mod mime_tree;

use arbitrary::{Arbitrary, Unstructured};
use imapd::response::Value as S;
use mua::imap::parse::{parse_response, Response, Untagged, Value as C};

/// How mua must read back what imapd serialized: numbers and atoms become
/// atoms, every string (quoted or literal) becomes its bytes, and the
/// members of a [`S::Concat`] inside a list become members of that list.
pub fn expected(v: &S) -> C {
    match v {
        S::Nil => C::Nil,
        S::Num(n) => C::Atom(n.to_string()),
        S::Atom(a) => C::Atom(a.clone()),
        S::Str(b) | S::Literal(b) => C::Bytes(b.clone()),
        S::List(items) => {
            let mut out = Vec::new();
            flatten_into(items, &mut out);
            C::List(out)
        }
        S::Concat(items) => {
            let mut out = Vec::new();
            flatten_into(items, &mut out);
            C::List(out)
        }
    }
}

fn flatten_into(items: &[S], out: &mut Vec<C>) {
    for it in items {
        match it {
            S::Concat(inner) => flatten_into(inner, out),
            other => out.push(expected(other)),
        }
    }
}

/// Serialize `value` as the single item of `* 1 FETCH (X value)`, parse it
/// back with mua and panic unless it reads as [`expected`].
pub fn check_fetch_round_trip(value: &S) {
    let mut wire = b"* 1 FETCH ".to_vec();
    S::List(vec![S::Atom("X".into()), value.clone()]).encode(&mut wire);
    let parsed = match parse_response(&wire) {
        Ok(p) => p,
        Err(e) => panic!("serialized value does not parse back: {e}: {wire:?}"),
    };
    let want = Response::Untagged(Untagged::Fetch {
        seq: 1,
        items: vec![("X".to_string(), expected(value))],
    });
    assert_eq!(
        parsed,
        want,
        "round trip mismatch for {:?}",
        String::from_utf8_lossy(&wire)
    );
}

/// `ATOM-CHAR`: any CHAR except atom-specials (RFC 3501 §9). `[` is
/// included: mua must read `a[b` or `BODY[x` as plain atoms and open a
/// section only after `BODY`/`BINARY`... when a `]` closes it.
pub fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b)
}

/// An atom (optionally a `\`-flag, sometimes after `BODY[` and the
/// like) made from fuzz bytes; never `NIL`.
pub fn gen_atom(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let raw: Vec<u8> = Arbitrary::arbitrary(u)?;
    let mut s: String = raw
        .into_iter()
        .filter(|&b| is_atom_char(b))
        .map(char::from)
        .take(40)
        .collect();
    if s.is_empty() {
        s.push('a');
    }
    if s.eq_ignore_ascii_case("NIL") {
        s.push('x');
    }
    match u.int_in_range(0..=7)? {
        0..=3 => {}
        4..=6 => s.insert(0, '\\'),
        // Section-taking fetch attribute names before a `[` that no `]`
        // closes: still one plain atom (the header-list forms end in SP).
        _ => {
            const PREFIXES: [&str; 6] = [
                "BODY[",
                "body.peek[1.",
                "BINARY[",
                "BINARY.SIZE[",
                "BODY[HEADER.FIELDS",
                "BODY[2.HEADER.FIELDS.NOT",
            ];
            let p = PREFIXES[u.choose_index(PREFIXES.len())?];
            s = if p.ends_with('S') || p.ends_with('T') {
                p.to_string()
            } else {
                format!("{p}{s}")
            };
        }
    }
    Ok(s)
}

/// A response value of at most `depth` nesting levels. `Concat` is only
/// produced inside lists and only of lists, as `body-type-mpart` uses it.
pub fn gen_value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<S> {
    let pick = if depth == 0 {
        u.int_in_range(0..=4)?
    } else {
        u.int_in_range(0..=5)?
    };
    Ok(match pick {
        0 => S::Nil,
        1 => S::Num(u.arbitrary()?),
        2 => S::Atom(gen_atom(u)?),
        3 => S::Str(u.arbitrary()?),
        4 => S::Literal(u.arbitrary()?),
        _ => {
            let n = u.int_in_range(0..=6)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                if u.ratio(1, 5)? {
                    let k = u.int_in_range(1..=3)?;
                    let mut parts = Vec::with_capacity(k);
                    for _ in 0..k {
                        let m = u.int_in_range(0..=3)?;
                        let mut inner = Vec::with_capacity(m);
                        for _ in 0..m {
                            inner.push(gen_value(u, depth - 1)?);
                        }
                        parts.push(S::List(inner));
                    }
                    items.push(S::Concat(parts));
                } else {
                    items.push(gen_value(u, depth - 1)?);
                }
            }
            S::List(items)
        }
    })
}
