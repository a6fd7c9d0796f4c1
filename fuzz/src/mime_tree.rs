//! Structure-aware MIME messages for the `mime_tree` fuzz target: a tree
//! description derived with `arbitrary` (nested multipart, message/rfc822
//! and multipart/digest nodes; text, base64 and quoted-printable leaves;
//! header fields with encoded words, comments, groups; wrong, duplicate,
//! missing and over-long boundaries, missing close delimiters; random
//! extra fields and bytes spliced in), rendered to a message.
//!
//! Two node kinds make big shapes cheap in input bytes: [`Kind::Nest`]
//! wraps its inner node in up to 1,000 levels of multipart or
//! message/rfc822 (the hostile crate's nested shapes), [`Kind::Many`] is a
//! multipart holding up to 10,000 copies of one child (flat parts,
//! digests). Output stops growing at [`LIMIT`] bytes, still well formed.
//!
//! While rendering, the expected parse is recorded: which nodes are
//! multiparts with how many children, which are embedded messages, and the
//! exact byte range of every leaf's body. When the message is clean (no
//! quirk that changes how it must be read, within mailstore's depth and
//! part bounds) [`Rendered::expect`] holds it, and [`check_expected`]
//! compares it with what mailstore parsed.

use arbitrary::Arbitrary;
use mailstore::MimePart;
use std::ops::Range;

/// Rendering stops adding parts and levels beyond this many bytes.
pub const LIMIT: usize = 256 * 1024;
/// mailstore's nesting bound (`mime::MAX_DEPTH`): the expectation is only
/// checked for containers shallower than this.
const MAX_DEPTH: usize = 32;
/// mailstore's part bound (`mime::MAX_PARTS`), with a margin.
const MAX_PARTS: usize = 4_990;
/// mailstore keeps this many fields per header block (`MAX_FIELDS`).
const MAX_FIELDS: usize = 1_000;

/// A whole message.
#[derive(Arbitrary, Debug)]
pub struct Tree {
    /// Top-level fields (From, To, Subject...) before the root's own.
    pub top: Vec<Field>,
    pub root: Node,
    /// Bare LF line ends instead of CRLF.
    pub lf: bool,
    /// Bytes inserted after rendering, at `at / 65536` of the length.
    pub splices: Vec<(u16, Vec<u8>)>,
    /// Cut the message at `n / 65536` of its length.
    pub cut: Option<u16>,
}

/// One entity: its kind and extra header fields after the Content-* ones.
#[derive(Arbitrary, Debug)]
pub struct Node {
    pub extra: Vec<Field>,
    pub kind: Kind,
}

#[derive(Arbitrary, Debug)]
pub enum Kind {
    Leaf(Leaf),
    Multipart {
        sub: Sub,
        ct: CtStyle,
        boundary: Boundary,
        preamble: Option<String>,
        children: Vec<Node>,
        close: Close,
    },
    Message {
        ct: MsgCt,
        /// The embedded message's own header fields.
        header: Vec<Field>,
        inner: Box<Node>,
    },
    /// `levels` (mod 1,001) wrappers of `wrap` around `inner`.
    Nest {
        levels: u16,
        wrap: Wrap,
        boundary: Boundary,
        inner: Box<Node>,
    },
    /// A multipart of `count` (mod 10,001) copies of `child`.
    Many {
        count: u16,
        sub: Sub,
        boundary: Boundary,
        close: Close,
        child: Box<Node>,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Wrap {
    Mixed,
    Message,
    Digest,
    /// Alternately multipart/mixed and message/rfc822.
    Alternate,
}

#[derive(Arbitrary, Debug)]
pub enum Sub {
    Mixed,
    Alternative,
    Digest,
    Related,
    Parallel,
    Other(String),
}

/// How a multipart's Content-Type is written.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum CtStyle {
    Plain,
    /// `Multipart/MIXED`.
    Upper,
    /// A comment after the type, extra parameters.
    Commented,
    /// The type as an RFC 2047 encoded word (not decoded: text/plain).
    EncodedWord,
    /// `multipart` without a subtype (text/plain).
    NoSubtype,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Boundary {
    Token,
    Quoted,
    /// Quoted, with every special character RFC 2046 allows.
    Specials,
    /// `BOUNDARY = x`.
    Spaced,
    Missing,
    Empty,
    /// The delimiters use another boundary than the one declared.
    Wrong,
    /// The parent multipart's boundary again.
    Parent,
    /// Over 200 characters (mailstore ignores it).
    TooLong,
    /// RFC 2231 `boundary*=''x`.
    Rfc2231,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Close {
    Proper,
    /// No close delimiter: the last part runs to the end.
    Missing,
    /// White space after the close delimiter, then an epilogue.
    Epilogue,
    /// The close delimiter glued to the last body (not at a line start).
    Glued,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MsgCt {
    Rfc822,
    Global,
    Upper,
    /// No Content-Type (message/rfc822 only inside a digest).
    Omit,
}

#[derive(Arbitrary, Debug)]
pub struct Leaf {
    pub ct: LeafCt,
    pub enc: Enc,
    pub body: Vec<u8>,
    pub disposition: Option<(bool, Vec<Word>)>,
    pub id: Option<String>,
    pub description: Option<Vec<Word>>,
    pub language: Option<Vec<String>>,
}

#[derive(Arbitrary, Debug)]
pub enum LeafCt {
    /// No Content-Type (text/plain, or message/rfc822 in a digest).
    Omit,
    Plain,
    Html,
    Charset(Charset),
    Octets,
    Image,
    /// Arbitrary text as the value.
    Garbage(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Charset {
    Utf8,
    Latin1,
    Ascii,
    Koi8r,
    Windows1252,
    Utf8Lang,
    Bogus,
    Empty,
}

impl Charset {
    fn name(self) -> &'static str {
        match self {
            Charset::Utf8 => "utf-8",
            Charset::Latin1 => "ISO-8859-1",
            Charset::Ascii => "us-ascii",
            Charset::Koi8r => "koi8-r",
            Charset::Windows1252 => "windows-1252",
            Charset::Utf8Lang => "UTF-8*en",
            Charset::Bogus => "x-no-such-charset",
            Charset::Empty => "",
        }
    }
}

#[derive(Arbitrary, Debug)]
pub enum Enc {
    None,
    SevenBit,
    EightBit,
    Base64,
    QuotedPrintable,
    /// `BASE64` in capitals with a comment.
    Base64Odd,
    Bogus(String),
    /// The body bytes exactly as given (CR, LF and `--` lines too).
    Raw,
}

/// A header field.
#[derive(Arbitrary, Debug)]
pub struct Field {
    pub name: FieldName,
    pub words: Vec<Word>,
}

#[derive(Arbitrary, Debug)]
pub enum FieldName {
    From,
    To,
    Cc,
    Bcc,
    Sender,
    ReplyTo,
    Subject,
    Date,
    MessageId,
    InReplyTo,
    Comments,
    ContentDescription,
    ContentDisposition,
    ContentId,
    ContentLanguage,
    Custom(String),
}

#[derive(Arbitrary, Debug)]
pub enum Word {
    Atom(String),
    /// An RFC 2047 encoded word of `text`, B or Q encoded.
    Encoded {
        charset: Charset,
        b: bool,
        text: String,
    },
    /// The start of an encoded word that never ends properly.
    Broken(String),
    Quoted(String),
    Comment(String),
    Addr {
        display: Option<String>,
        local: String,
        domain: String,
    },
    Group(String, Vec<(String, String)>),
    Date(u32, i16),
    /// The next word goes on a continuation line.
    Fold,
    /// Bytes as given (CR and LF too).
    Raw(Vec<u8>),
}

/// What the parser must find, for a clean message.
#[derive(Debug)]
pub enum Expect {
    Leaf(Range<usize>),
    Multi(Vec<usize>),
    Message(usize),
}

/// A rendered message and, when it is clean, the expected structure (an
/// arena of nodes, the root at `root`).
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub expect: Option<(Vec<Expect>, usize)>,
}

struct Ctx {
    depth: usize,
    /// Inside multipart/digest: no Content-Type means message/rfc822.
    digest: bool,
    /// The enclosing multipart's boundary.
    parent: Option<String>,
    /// Recursion depth of the renderer itself.
    stack: usize,
}

struct R {
    out: Vec<u8>,
    eol: &'static [u8],
    clean: bool,
    arena: Vec<Expect>,
    next_id: u64,
    max_depth: usize,
    parts: usize,
}

fn clean_text(s: &str) -> String {
    s.chars().filter(|&c| c != '\r' && c != '\n').collect()
}

/// Printable ASCII without `-` (so no line can look like a delimiter) and
/// without the characters that would end a quoted string or comment.
fn safe(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ' || *c == '.')
        .take(max)
        .collect();
    if t.is_empty() {
        "x".into()
    } else {
        t
    }
}

fn token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(max)
        .collect();
    if t.is_empty() {
        "x".into()
    } else {
        t
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

impl R {
    fn w(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    fn nl(&mut self) {
        let eol = self.eol;
        self.w(eol);
    }

    fn line(&mut self, s: &str) {
        self.w(s.as_bytes());
        self.nl();
    }

    fn full(&self) -> bool {
        self.out.len() > LIMIT
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn push(&mut self, e: Expect) -> usize {
        self.arena.push(e);
        self.arena.len() - 1
    }

    fn word(&mut self, w: &Word) {
        match w {
            Word::Atom(s) => {
                let s = clean_text(s);
                self.w(s.as_bytes());
            }
            Word::Encoded { charset, b, text } => {
                let data = text.as_bytes();
                let enc = if *b {
                    base64(data)
                } else {
                    let mut q = String::new();
                    for &c in data {
                        if c.is_ascii_alphanumeric() {
                            q.push(c as char);
                        } else if c == b' ' {
                            q.push('_');
                        } else {
                            q.push_str(&format!("={c:02X}"));
                        }
                    }
                    q
                };
                let s = format!(
                    "=?{}?{}?{enc}?=",
                    charset.name(),
                    if *b { "B" } else { "q" }
                );
                self.w(s.as_bytes());
            }
            Word::Broken(s) => {
                let s = format!("=?{}?=x(=?a?", clean_text(s));
                self.w(s.as_bytes());
            }
            Word::Quoted(s) => {
                let mut q = String::from("\"");
                for c in clean_text(s).chars() {
                    if c == '"' || c == '\\' {
                        q.push('\\');
                    }
                    q.push(c);
                }
                q.push('"');
                self.w(q.as_bytes());
            }
            Word::Comment(s) => {
                let s = format!("({})", safe(s, 80));
                self.w(s.as_bytes());
            }
            Word::Addr {
                display,
                local,
                domain,
            } => {
                let s = match display {
                    Some(d) => format!(
                        "{} <{}@{}>",
                        clean_text(d),
                        token(local, 30),
                        token(domain, 30)
                    ),
                    None => format!("{}@{}", token(local, 30), token(domain, 30)),
                };
                self.w(s.as_bytes());
            }
            Word::Group(name, members) => {
                let list: Vec<String> = members
                    .iter()
                    .map(|(l, d)| format!("{}@{}", token(l, 20), token(d, 20)))
                    .collect();
                let s = format!("{}: {};", safe(name, 30), list.join(", "));
                self.w(s.as_bytes());
            }
            Word::Date(secs, zone) => {
                let day = 1 + secs % 28;
                let year = 1970 + (secs >> 8) % 130;
                let s = format!(
                    "Mon, {day} Feb {year} {:02}:{:02}:{:02} {:+05}",
                    (secs >> 3) % 24,
                    (secs >> 5) % 60,
                    secs % 60,
                    zone % 1500
                );
                self.w(s.as_bytes());
            }
            Word::Fold => {
                // Only field_words folds; elsewhere a fold is a space.
                self.w(b" ");
            }
            Word::Raw(b) => {
                if b.contains(&b'\r') || b.contains(&b'\n') {
                    self.clean = false;
                }
                self.w(b);
            }
        }
    }

    fn field(&mut self, f: &Field) {
        let name = match &f.name {
            FieldName::From => "From".to_string(),
            FieldName::To => "To".into(),
            FieldName::Cc => "Cc".into(),
            FieldName::Bcc => "Bcc".into(),
            FieldName::Sender => "Sender".into(),
            FieldName::ReplyTo => "Reply-To".into(),
            FieldName::Subject => "Subject".into(),
            FieldName::Date => "Date".into(),
            FieldName::MessageId => "Message-ID".into(),
            FieldName::InReplyTo => "In-Reply-To".into(),
            FieldName::Comments => "Comments".into(),
            FieldName::ContentDescription => "Content-Description".into(),
            FieldName::ContentDisposition => "Content-Disposition".into(),
            FieldName::ContentId => "Content-ID".into(),
            FieldName::ContentLanguage => "Content-Language".into(),
            FieldName::Custom(s) => {
                let t: String = s
                    .chars()
                    .filter(|c| c.is_ascii_graphic() && *c != ':')
                    .take(60)
                    .collect();
                // A second Content-Type would change the structure.
                if t.is_empty() || t.eq_ignore_ascii_case("content-type") {
                    format!("X-{t}")
                } else {
                    t
                }
            }
        };
        self.field_words(&name, &f.words);
    }

    /// `name: words`, a [`Word::Fold`] starting a continuation line.
    fn field_words(&mut self, name: &str, words: &[Word]) {
        self.w(name.as_bytes());
        self.w(b":");
        for w in words {
            if matches!(w, Word::Fold) {
                self.nl();
                self.w(b" ");
            } else {
                self.w(b" ");
                self.word(w);
            }
        }
        self.nl();
    }

    fn fields(&mut self, fields: &[Field]) {
        // At most three lists go into one header block.
        if fields.len() > MAX_FIELDS / 4 {
            self.clean = false;
        }
        for f in fields {
            self.field(f);
        }
    }

    /// A boundary for a new multipart: (declared parameter text, the
    /// boundary its delimiters use).
    fn boundary(&mut self, style: Boundary, ctx: &Ctx) -> (String, String) {
        let id = self.id();
        let b = format!("b{id}x");
        match style {
            Boundary::Token => (format!("; boundary={b}"), b),
            Boundary::Quoted => (format!("; boundary=\"{b}\""), b),
            Boundary::Specials => {
                let b = format!("'()+_,-./:=? {b}");
                (format!("; boundary=\"{b}\""), b)
            }
            Boundary::Spaced => (format!(" ; BOUNDARY = {b}"), b),
            Boundary::Missing => {
                self.clean = false;
                (String::new(), b)
            }
            Boundary::Empty => {
                self.clean = false;
                ("; boundary=\"\"".into(), b)
            }
            Boundary::Wrong => {
                self.clean = false;
                (format!("; boundary={b}"), format!("{b}y"))
            }
            Boundary::Parent => {
                self.clean = false;
                let p = ctx.parent.clone().unwrap_or_else(|| format!("{b}y"));
                (format!("; boundary=\"{p}\""), p)
            }
            Boundary::TooLong => {
                self.clean = false;
                let b = format!("{b}{}", "z".repeat(200));
                (format!("; boundary={b}"), b)
            }
            Boundary::Rfc2231 => {
                self.clean = false;
                (format!("; boundary*=''{b}"), b)
            }
        }
    }

    fn container(&mut self, depth: usize) {
        self.max_depth = self.max_depth.max(depth + 1);
    }

    /// Write one entity (header block, blank line, body) for `node`;
    /// `pre` are fields written first (an embedded message's or the
    /// top-level header). Returns its expectation.
    fn entity(&mut self, node: &Node, pre: &[Field], ctx: &Ctx) -> usize {
        if ctx.stack > 3_000 {
            // Deeper than any input of libFuzzer's sizes should give; keep
            // the stack bounded anyway.
            self.clean = false;
            self.fields(pre);
            self.nl();
            let s = self.out.len();
            return self.push(Expect::Leaf(s..s));
        }
        match &node.kind {
            Kind::Leaf(leaf) => self.leaf(leaf, pre, &node.extra, ctx),
            Kind::Multipart {
                sub,
                ct,
                boundary,
                preamble,
                children,
                close,
            } => {
                self.fields(pre);
                let (subtype, digest) = sub_name(sub);
                let (param, b) = self.boundary(*boundary, ctx);
                let kind = match ct {
                    CtStyle::Plain => format!("multipart/{subtype}"),
                    CtStyle::Upper => format!("Multipart/{}", subtype.to_ascii_uppercase()),
                    CtStyle::Commented => format!("multipart/{subtype} (a comment)"),
                    CtStyle::EncodedWord => {
                        self.clean = false;
                        format!(
                            "=?us-ascii?B?{}?=",
                            base64(format!("multipart/{subtype}").as_bytes())
                        )
                    }
                    CtStyle::NoSubtype => {
                        self.clean = false;
                        "multipart".into()
                    }
                };
                let extra_param = if matches!(ct, CtStyle::Commented) {
                    "; x-extra=\"a;b\"; charset=us-ascii"
                } else {
                    ""
                };
                self.line(&format!("Content-Type: {kind}{param}{extra_param}"));
                self.fields(&node.extra);
                self.nl();
                let body_start = self.out.len();
                if let Some(p) = preamble {
                    self.line(&safe(p, 200));
                }
                self.container(ctx.depth);
                let child_ctx = Ctx {
                    depth: ctx.depth + 1,
                    digest,
                    parent: Some(b.clone()),
                    stack: ctx.stack + 1,
                };
                let mut kids = Vec::new();
                for (i, c) in children.iter().enumerate() {
                    if self.full() {
                        break;
                    }
                    if i > 0 {
                        self.nl();
                    }
                    self.line(&format!("--{b}"));
                    self.parts += 1;
                    kids.push(self.entity(c, &[], &child_ctx));
                }
                self.close(&b, *close, kids.is_empty());
                self.multi(kids, body_start)
            }
            Kind::Many {
                count,
                sub,
                boundary,
                close,
                child,
            } => {
                self.fields(pre);
                let (subtype, digest) = sub_name(sub);
                let (param, b) = self.boundary(*boundary, ctx);
                self.line(&format!("Content-Type: multipart/{subtype}{param}"));
                self.fields(&node.extra);
                self.nl();
                let body_start = self.out.len();
                self.container(ctx.depth);
                let child_ctx = Ctx {
                    depth: ctx.depth + 1,
                    digest,
                    parent: Some(b.clone()),
                    stack: ctx.stack + 1,
                };
                let mut kids = Vec::new();
                // The child is rendered once and its bytes copied: copies
                // are siblings, so their inner boundaries may repeat.
                let mut first: Option<(Range<usize>, Range<usize>, usize)> = None;
                for i in 0..usize::from(*count) % 10_001 {
                    if self.full() {
                        break;
                    }
                    if i > 0 {
                        self.nl();
                    }
                    self.line(&format!("--{b}"));
                    self.parts += 1;
                    match &first {
                        None => {
                            let (s, a, p) = (self.out.len(), self.arena.len(), self.parts);
                            kids.push(self.entity(child, &[], &child_ctx));
                            first = Some((s..self.out.len(), a..self.arena.len(), self.parts - p));
                        }
                        Some((bytes, nodes, parts)) => {
                            kids.push(self.copy(bytes.clone(), nodes.clone(), *parts));
                        }
                    }
                }
                self.close(&b, *close, kids.is_empty());
                self.multi(kids, body_start)
            }
            Kind::Message { ct, header, inner } => {
                self.fields(pre);
                self.message_ct(*ct, ctx);
                self.fields(&node.extra);
                self.nl();
                self.container(ctx.depth);
                self.parts += 1;
                let inner_ctx = Ctx {
                    depth: ctx.depth + 1,
                    digest: false,
                    parent: ctx.parent.clone(),
                    stack: ctx.stack + 1,
                };
                let i = self.entity(inner, header, &inner_ctx);
                self.push(Expect::Message(i))
            }
            Kind::Nest {
                levels,
                wrap,
                boundary,
                inner,
            } => self.nest(
                usize::from(*levels) % 1_001,
                *wrap,
                *boundary,
                inner,
                pre,
                &node.extra,
                ctx,
            ),
        }
    }

    /// Another copy of the entity rendered as `bytes` with expectations
    /// `nodes` (its root last) and `parts` parts.
    fn copy(&mut self, bytes: Range<usize>, nodes: Range<usize>, parts: usize) -> usize {
        let db = self.out.len() - bytes.start;
        let di = self.arena.len() - nodes.start;
        self.out.extend_from_within(bytes);
        for k in nodes {
            let e = match &self.arena[k] {
                Expect::Leaf(r) => Expect::Leaf(r.start + db..r.end + db),
                Expect::Multi(v) => Expect::Multi(v.iter().map(|x| x + di).collect()),
                Expect::Message(x) => Expect::Message(x + di),
            };
            self.arena.push(e);
        }
        self.parts += parts;
        self.arena.len() - 1
    }

    fn message_ct(&mut self, ct: MsgCt, ctx: &Ctx) {
        match ct {
            MsgCt::Rfc822 => self.line("Content-Type: message/rfc822"),
            MsgCt::Global => self.line("Content-Type: message/global"),
            MsgCt::Upper => self.line("Content-Type: Message/RFC822 (embedded)"),
            MsgCt::Omit => {
                if !ctx.digest {
                    self.clean = false;
                }
            }
        }
    }

    /// The end of a multipart's body; `empty`: no part was written.
    fn close(&mut self, b: &str, close: Close, empty: bool) {
        match close {
            Close::Proper => {
                if !empty {
                    self.nl();
                }
                self.line(&format!("--{b}--"));
            }
            Close::Missing => {}
            Close::Epilogue => {
                if !empty {
                    self.nl();
                }
                self.w(format!("--{b}-- \t").as_bytes());
                self.nl();
                self.line("epilogue text");
            }
            Close::Glued => {
                self.clean = false;
                self.w(format!("--{b}--").as_bytes());
            }
        }
    }

    /// A multipart's expectation: its parts, or (none found) a text leaf.
    fn multi(&mut self, kids: Vec<usize>, body_start: usize) -> usize {
        if kids.is_empty() {
            let end = self.out.len();
            self.push(Expect::Leaf(body_start..end))
        } else {
            self.push(Expect::Multi(kids))
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn nest(
        &mut self,
        levels: usize,
        wrap: Wrap,
        boundary: Boundary,
        inner: &Node,
        pre: &[Field],
        extra: &[Field],
        ctx: &Ctx,
    ) -> usize {
        // Each level: (Some(boundary)) for a multipart, None for a message.
        let mut opened: Vec<Option<String>> = Vec::new();
        let mut parent = ctx.parent.clone();
        let mut digest = ctx.digest;
        for i in 0..levels {
            if self.full() {
                break;
            }
            if i == 0 {
                self.fields(pre);
            }
            let depth = ctx.depth + i;
            self.container(depth);
            let as_message = match wrap {
                Wrap::Message => true,
                Wrap::Alternate => i % 2 == 1,
                Wrap::Mixed | Wrap::Digest => false,
            };
            if as_message {
                self.line("Content-Type: message/rfc822");
                if i == 0 {
                    self.fields(extra);
                }
                self.nl();
                self.parts += 1;
                digest = false;
                opened.push(None);
            } else {
                let sub = if matches!(wrap, Wrap::Digest) {
                    "digest"
                } else {
                    "mixed"
                };
                let c = Ctx {
                    depth,
                    digest,
                    parent: parent.clone(),
                    stack: ctx.stack,
                };
                let (param, b) = self.boundary(boundary, &c);
                self.line(&format!("Content-Type: multipart/{sub}{param}"));
                if i == 0 {
                    self.fields(extra);
                }
                self.nl();
                self.line(&format!("--{b}"));
                self.parts += 1;
                digest = sub == "digest";
                parent = Some(b.clone());
                opened.push(Some(b));
            }
        }
        let c = Ctx {
            depth: ctx.depth + opened.len(),
            digest,
            parent,
            stack: ctx.stack + 1,
        };
        let mut e = if opened.is_empty() {
            // No level: the inner node is this entity (field order does
            // not matter to the structure).
            self.fields(extra);
            self.entity(inner, pre, &c)
        } else {
            self.entity(inner, &[], &c)
        };
        for level in opened.into_iter().rev() {
            e = match level {
                None => self.push(Expect::Message(e)),
                Some(b) => {
                    self.nl();
                    self.line(&format!("--{b}--"));
                    self.push(Expect::Multi(vec![e]))
                }
            };
        }
        e
    }

    fn leaf(&mut self, leaf: &Leaf, pre: &[Field], extra: &[Field], ctx: &Ctx) -> usize {
        self.fields(pre);
        match &leaf.ct {
            LeafCt::Omit => {
                if ctx.digest {
                    // Read as message/rfc822.
                    self.clean = false;
                }
            }
            LeafCt::Plain => self.line("Content-Type: text/plain"),
            LeafCt::Html => self.line("Content-Type: TEXT/html; charset=\"utf-8\""),
            LeafCt::Charset(c) => {
                self.line(&format!("Content-Type: text/plain; charset={}", c.name()))
            }
            LeafCt::Octets => self.line("Content-Type: application/octet-stream; name=\"a b.bin\""),
            LeafCt::Image => self.line("Content-Type: image/png"),
            LeafCt::Garbage(s) => {
                self.clean = false;
                self.line(&format!("Content-Type: {}", clean_text(s)));
            }
        }
        let cte = match &leaf.enc {
            Enc::None => None,
            Enc::SevenBit => Some("7bit".to_string()),
            Enc::EightBit => Some("8bit".into()),
            Enc::Base64 => Some("base64".into()),
            Enc::QuotedPrintable => Some("quoted-printable".into()),
            Enc::Base64Odd => Some("BASE64 (odd)".into()),
            Enc::Bogus(s) => Some(safe(s, 40)),
            Enc::Raw => None,
        };
        if let Some(c) = cte {
            self.line(&format!("Content-Transfer-Encoding: {c}"));
        }
        if let Some((attach, words)) = &leaf.disposition {
            self.w(if *attach {
                b"Content-Disposition: attachment"
            } else {
                b"Content-Disposition: inline"
            });
            for w in words {
                self.w(b"; filename=");
                if matches!(w, Word::Fold) {
                    self.w(b"x");
                } else {
                    self.word(w);
                }
            }
            self.nl();
        }
        if let Some(id) = &leaf.id {
            self.line(&format!("Content-ID: <{}@x>", token(id, 40)));
        }
        if let Some(words) = &leaf.description {
            self.field_words("Content-Description", words);
        }
        if let Some(langs) = &leaf.language {
            let l: Vec<String> = langs.iter().map(|s| token(s, 8)).collect();
            self.line(&format!("Content-Language: {}", l.join(", ")));
        }
        self.fields(extra);
        self.nl();
        let start = self.out.len();
        self.body(&leaf.enc, &leaf.body);
        let end = self.out.len();
        self.push(Expect::Leaf(start..end))
    }

    /// The body bytes in the leaf's encoding; no line starts with `--`
    /// except for [`Enc::Raw`].
    fn body(&mut self, enc: &Enc, data: &[u8]) {
        match enc {
            Enc::Base64 | Enc::Base64Odd => {
                let s = base64(data);
                let mut first = true;
                for chunk in s.as_bytes().chunks(76) {
                    if !first {
                        self.nl();
                    }
                    first = false;
                    self.w(chunk);
                }
            }
            Enc::QuotedPrintable => {
                let mut col = 0;
                for &c in data {
                    if c == b'\n' {
                        self.nl();
                        col = 0;
                        continue;
                    }
                    if col >= 72 {
                        self.w(b"=");
                        self.nl();
                        col = 0;
                    }
                    if c.is_ascii_alphanumeric() || c == b' ' || c == b'.' {
                        self.w(&[c]);
                        col += 1;
                    } else {
                        self.w(format!("={c:02X}").as_bytes());
                        col += 3;
                    }
                }
            }
            Enc::Raw => {
                if data.contains(&b'\n') || data.contains(&b'\r') || data.starts_with(b"-") {
                    self.clean = false;
                }
                self.w(data);
            }
            Enc::None | Enc::SevenBit | Enc::EightBit | Enc::Bogus(_) => {
                for &c in data {
                    match c {
                        b'\n' => self.nl(),
                        b'\r' => {}
                        b'-' => self.w(b"_"),
                        c => self.w(&[c]),
                    }
                }
            }
        }
    }
}

fn sub_name(sub: &Sub) -> (String, bool) {
    let s = match sub {
        Sub::Mixed => "mixed".to_string(),
        Sub::Alternative => "alternative".into(),
        Sub::Digest => "digest".into(),
        Sub::Related => "related".into(),
        Sub::Parallel => "parallel".into(),
        Sub::Other(s) => token(s, 30),
    };
    let digest = s.eq_ignore_ascii_case("digest");
    (s, digest)
}

/// Render `tree` as a message.
pub fn render(tree: &Tree) -> Rendered {
    let mut r = R {
        out: Vec::new(),
        eol: if tree.lf { b"\n" } else { b"\r\n" },
        clean: true,
        arena: Vec::new(),
        next_id: 0,
        max_depth: 0,
        parts: 0,
    };
    let ctx = Ctx {
        depth: 0,
        digest: false,
        parent: None,
        stack: 0,
    };
    let root = r.entity(&tree.root, &tree.top, &ctx);
    let mut bytes = r.out;
    let mut clean = r.clean && r.max_depth <= MAX_DEPTH && r.parts <= MAX_PARTS;
    for (at, b) in &tree.splices {
        if b.is_empty() {
            continue;
        }
        let pos = bytes.len() * usize::from(*at) / 65_536;
        bytes.splice(pos..pos, b.iter().copied());
        clean = false;
    }
    if let Some(n) = tree.cut {
        let pos = bytes.len() * usize::from(n) / 65_536;
        if pos < bytes.len() {
            bytes.truncate(pos);
            clean = false;
        }
    }
    Rendered {
        bytes,
        expect: clean.then_some((r.arena, root)),
    }
}

/// Panic unless mailstore's `part` is what node `at` of `arena` expects.
pub fn check_expected(arena: &[Expect], at: usize, part: &MimePart, raw: &[u8]) {
    let show = || {
        format!(
            "part {}/{} header {:?} body {:?}, {} parts, embedded {}",
            part.media_type,
            part.subtype,
            part.header_range,
            part.body_range,
            part.parts.len(),
            part.embedded.is_some()
        )
    };
    match &arena[at] {
        Expect::Leaf(r) => {
            assert!(
                part.parts.is_empty() && part.embedded.is_none(),
                "expected a leaf with body {r:?}: {}",
                show()
            );
            assert_eq!(
                (part.body_range.0 as usize, part.body_range.1 as usize),
                (r.start, r.end),
                "leaf body range; expected body {:?}: {}",
                String::from_utf8_lossy(raw.get(r.clone()).unwrap_or_default()),
                show()
            );
        }
        Expect::Multi(kids) => {
            assert!(
                part.media_type == "multipart" && part.parts.len() == kids.len(),
                "expected a multipart of {} parts: {}",
                kids.len(),
                show()
            );
            for (k, p) in kids.iter().zip(&part.parts) {
                check_expected(arena, *k, p, raw);
            }
        }
        Expect::Message(inner) => {
            let Some((_, p)) = part.embedded.as_deref() else {
                panic!("expected an embedded message: {}", show());
            };
            check_expected(arena, *inner, p, raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(body: &str) -> Node {
        Node {
            extra: vec![],
            kind: Kind::Leaf(Leaf {
                ct: LeafCt::Plain,
                enc: Enc::None,
                body: body.as_bytes().to_vec(),
                disposition: None,
                id: None,
                description: None,
                language: None,
            }),
        }
    }

    fn tree(root: Node) -> Tree {
        Tree {
            top: vec![],
            root,
            lf: false,
            splices: vec![],
            cut: None,
        }
    }

    #[test]
    fn nest_is_cheap_and_deep() {
        let t = tree(Node {
            extra: vec![],
            kind: Kind::Nest {
                levels: 700,
                wrap: Wrap::Alternate,
                boundary: Boundary::Token,
                inner: Box::new(leaf("x")),
            },
        });
        let r = render(&t);
        assert!(r.expect.is_none(), "beyond mailstore's depth bound");
        assert!(r.bytes.len() > 700 * 20);
        let t = tree(Node {
            extra: vec![],
            kind: Kind::Nest {
                levels: 20,
                wrap: Wrap::Mixed,
                boundary: Boundary::Quoted,
                inner: Box::new(leaf("x")),
            },
        });
        assert!(render(&t).expect.is_some());
    }

    #[test]
    fn many_parts() {
        let t = tree(Node {
            extra: vec![],
            kind: Kind::Many {
                count: 10_000,
                sub: Sub::Digest,
                boundary: Boundary::Token,
                close: Close::Proper,
                child: Box::new(leaf("p")),
            },
        });
        let r = render(&t);
        assert!(r.bytes.len() > 10_000 * 10);
        assert!(r.expect.is_none(), "beyond mailstore's part bound");
    }
}
