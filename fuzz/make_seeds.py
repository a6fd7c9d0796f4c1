#!/usr/bin/env python3
"""Build the seed corpora in seeds/<target>/ from the protocol-tests
transcripts (C: and R: lines, variables replaced by sample values) and a
few hand-written MIME messages. Run from the fuzz/ directory."""
import glob, hashlib, os, re

T = "../protocol-tests/transcripts"

def unescape(s):
    return (s.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t")
             .replace("\\\\", "\\")).encode("utf-8", "surrogateescape")

def subst(s, lets):
    def rep(m):
        k = m.group(1)
        if k.startswith("len:"):
            return str(len(unescape(subst(lets.get(k[4:], "x"), lets))))
        if k.startswith("="):
            return k[1:].split("|")[0]
        return lets.get(k, {"user": "alice@example.org", "password": "secret",
                            "addr": "alice@example.org", "unique": "box1"}.get(k, "v1"))
    for _ in range(3):
        s = re.sub(r"\$\{([^}]*)\}", rep, s)
    return s

def session(path, want):
    """The client side of one transcript as bytes (C lines get CRLF)."""
    out, lets = b"", {}
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        m = re.match(r"LET (\w+) = (.*)", line)
        if m:
            lets[m.group(1)] = m.group(2)
            continue
        m = re.match(r"(C|R)(\[(\w+)\])?: ?(.*)", line)
        if not m:
            continue
        conn = m.group(3)
        if want == "smtp" and conn not in (None, "smtp"):
            continue
        if want == "imap" and conn == "smtp":
            continue
        text = subst(m.group(4), lets)
        out += unescape(text) + (b"\r\n" if m.group(1) == "C" else b"")
    return out

def save(target, data):
    d = os.path.join("seeds", target)
    os.makedirs(d, exist_ok=True)
    if data:
        name = hashlib.sha1(data).hexdigest()[:16]
        open(os.path.join(d, name), "wb").write(data[:65536])

for f in glob.glob(T + "/smtp/*.txt") + glob.glob(T + "/mixed/*.txt"):
    save("smtp_command", b"\0\0\0\0" + session(f, "smtp"))
for f in glob.glob(T + "/imap/*.txt") + glob.glob(T + "/mixed/*.txt"):
    save("imap_command", b"\x10\x00" + session(f, "imap"))

MIME = [
    b"From: A <a@example.org>\r\nTo: b@example.org, \"C D\" <c@example.org>\r\n"
    b"Subject: =?UTF-8?B?aMOpbGxv?=\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <1@example.org>\r\n\r\nhello\r\n",
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\none\r\n"
    b"--XX\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=a.bin\r\n"
    b"Content-Language: en, de\r\nContent-Location: http://x/\r\nContent-MD5: abc\r\n\r\nAAAA\r\n"
    b"--XX--\r\n",
    b"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n"
    b"Content-Type: message/rfc822\r\n\r\nFrom: x@y\r\nSubject: inner\r\n"
    b"Content-Type: multipart/mixed; boundary=b2\r\n\r\n--b2\r\n\r\ninner text\r\n--b2--\r\n"
    b"--b1\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b1--\r\n",
    b"To: undisclosed-recipients:;\r\nCc: group: a@b, c@d;\r\nFrom: \"q\\\"x\" <@route:a@b>\r\n\r\n",
    b"Subject: no body",
    b"\r\n\r\n",
    b"Content-Type: text/plain; charset*=utf-8''%E2%82%AC; a*0=x; a*1=y\r\n\r\n\xff\xfe\r\n",
]
for m in MIME:
    save("mime_structure", m)
for f in glob.glob(T + "/*/*.txt"):
    txt = session(f, "smtp")
    i = txt.find(b"DATA\r\n")
    if i >= 0:
        save("mime_structure", txt[i + 6:].split(b"\r\n.\r\n")[0])
# imap_response and mime_tree inputs are interpreted by `arbitrary`;
# random seeds do.
for i in range(8):
    save("imap_response", hashlib.sha256(bytes([i])).digest() * (i + 1))
for i in range(8):
    save("mime_tree", hashlib.sha256(bytes([100 + i])).digest() * (i * 4 + 1))
