//! HTML reduced to readable plain text, for messages without a text part.
//!
//! Not a browser: drops `<script>`/`<style>`/`<head>`, turns block elements
//! and `<br>` into line breaks, list items into "- " bullets, links into
//! "text <url>", decodes common entities and collapses whitespace.

/// Block-level tags that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "table",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "li",
    "dt",
    "dd",
];

/// Decodes one entity body (without `&` and `;`).
fn entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "laquo" => '«',
        "raquo" => '»',
        "euro" => '€',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)?
        }
    })
}

/// Appends text, collapsing runs of whitespace into one space.
fn push_text(out: &mut String, text: &str, pre: bool) {
    let mut rest = text;
    while !rest.is_empty() {
        let (c, len) = match rest.find('&') {
            Some(0) => {
                let end = rest[1..].find(';').map(|e| e + 1).filter(|&e| e <= 10);
                end.and_then(|e| entity(&rest[1..e]).map(|c| (c, e + 1)))
                    .unwrap_or(('&', 1))
            }
            _ => {
                let ch = rest.chars().next().unwrap_or(' ');
                (ch, ch.len_utf8())
            }
        };
        rest = &rest[len..];
        if !pre && c.is_whitespace() {
            if !out.ends_with([' ', '\n']) && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

fn newline(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn blank_line(out: &mut String) {
    newline(out);
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

/// The value of attribute `name` inside a tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let rest = &tag[at..];
    let v = match rest.chars().next()? {
        q @ ('"' | '\'') => rest[1..].split(q).next()?,
        _ => rest.split([' ', '>']).next()?,
    };
    Some(v.to_string())
}

/// Converts an HTML document or fragment to plain text.
pub fn to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    let mut pre = false;
    let mut link: Option<String> = None;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if skip_until.is_none() {
                push_text(&mut out, rest, pre);
            }
            break;
        };
        if skip_until.is_none() {
            push_text(&mut out, &rest[..lt], pre);
        }
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |e| &rest[e + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(end) = skip_until {
            if closing && name == end {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "script" | "style" | "head" | "title" if !closing => {
                skip_until = Some(match name.as_str() {
                    "script" => "script",
                    "style" => "style",
                    "head" => "head",
                    _ => "title",
                });
            }
            "pre" => {
                pre = !closing;
                newline(&mut out);
            }
            "li" if !closing => {
                newline(&mut out);
                out.push_str("- ");
            }
            "a" if !closing => link = attr(tag, "href"),
            "a" => {
                if let Some(href) = link.take().filter(|h| !h.starts_with('#')) {
                    if !out.trim_end().ends_with(href.as_str()) {
                        out.push_str(&format!(" <{href}>"));
                    }
                }
            }
            "img" => {
                if let Some(alt) = attr(tag, "alt").filter(|a| !a.is_empty()) {
                    out.push_str(&format!("[{alt}]"));
                }
            }
            "td" | "th" if closing => out.push_str("  "),
            n if BLOCKS.contains(&n) => {
                if matches!(
                    n,
                    "p" | "h1" | "h2" | "h3" | "table" | "blockquote" | "ul" | "ol"
                ) {
                    blank_line(&mut out);
                } else {
                    newline(&mut out);
                }
            }
            _ => {}
        }
    }
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let mut text = lines.join("\n");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_breaks_and_entities() {
        let t = to_text("<html><head><title>x</title><style>p{}</style></head><body><p>Hello&nbsp;&amp; welcome,</p><p>second<br>line &#233;&#x263A;</p></body></html>");
        assert_eq!(t, "Hello & welcome,\n\nsecond\nline é☺");
    }

    #[test]
    fn lists_links_and_scripts() {
        let t = to_text("<ul><li>one</li><li>two</li></ul><script>alert(1)</script><a href=\"https://x.org/a\">site</a>");
        assert_eq!(t, "- one\n- two\n\nsite <https://x.org/a>");
    }

    #[test]
    fn whitespace_collapses_but_pre_is_kept() {
        assert_eq!(to_text("a   b\n\n  c"), "a b c");
        assert_eq!(to_text("<pre>x  y\n z</pre>"), "x  y\n z");
        assert_eq!(
            to_text("5 &lt; 6 &unknown; & done"),
            "5 < 6 &unknown; & done"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "(<[a-z/!-]{0,6}( href=\"[^\"]{0,5}\")?>|&[#x0-9a-z]{0,8};?|[^<&]{0,5}|ü|☺){0,30}") {
            let _ = to_text(&s);
        }
    }
}
