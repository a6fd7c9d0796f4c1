//! COMPRESS=DEFLATE (RFC 4978) with real third-party clients:
//!
//! - Python's `imaplib` has no COMPRESS, but its I/O is three methods: the
//!   script sends `COMPRESS DEFLATE` and then routes `send`, `read` and
//!   `readline` through `zlib` (raw DEFLATE, `wbits=-15`, a sync flush per
//!   send) — the same zlib every C client uses. Over plain TCP and inside
//!   STARTTLS.
//! - `imaplib2` (pip; `.ci/run` installs it), the library offlineimap
//!   uses, implements COMPRESS itself (`enable_compression()`), over plain
//!   TCP and implicit TLS.
//!
//! Each logs in, compresses, SELECTs, FETCHes a 1 MiB message and small
//! ones, STOREs, SEARCHes and APPENDs over the compressed stream, and
//! checks that the wire carried fewer octets than the text. They fail (not
//! skip) if python3, or imaplib2, is missing.

use crate::util::*;
use std::process::Command;

const IMAPLIB: &str = r#"
import imaplib, ssl, sys, zlib
port, big_path, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
big = open(big_path, 'rb').read()

imaplib.Commands['COMPRESS'] = ('AUTH', 'SELECTED')

class Compressed(imaplib.IMAP4):
    """imaplib with COMPRESS=DEFLATE by hand."""
    zon = False
    wire_in = 0
    def compress(self):
        typ, dat = self._simple_command('COMPRESS', 'DEFLATE')
        assert typ == 'OK', (typ, dat)
        # The server sends nothing after the tagged OK until the next
        # command, so imaplib's file buffer holds nothing compressed.
        self.zc = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.zd = zlib.decompressobj(-15)
        self.zbuf = b''
        self.zon = True
    def send(self, data):
        if self.zon:
            data = self.zc.compress(data) + self.zc.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)
    def _more(self):
        while True:
            raw = self.sock.recv(65536)
            if not raw:
                raise EOFError('server closed the compressed stream')
            self.wire_in += len(raw)
            out = self.zd.decompress(raw)
            if out:
                self.zbuf += out
                return
    def read(self, size):
        if not self.zon:
            return super().read(size)
        while len(self.zbuf) < size:
            self._more()
        r, self.zbuf = self.zbuf[:size], self.zbuf[size:]
        return r
    def readline(self):
        if not self.zon:
            return super().readline()
        while b'\n' not in self.zbuf:
            self._more()
        i = self.zbuf.index(b'\n') + 1
        r, self.zbuf = self.zbuf[:i], self.zbuf[i:]
        return r

m = Compressed('127.0.0.1', port)
if mode == 'starttls':
    m.starttls(ssl.create_default_context(cafile=ca))
m.login('bob@localhost', 'secret pw')
typ, caps = m.capability()
assert b'COMPRESS=DEFLATE' in caps[0], caps
m.compress()
typ, data = m._simple_command('COMPRESS', 'DEFLATE')
assert typ == 'NO' and b'[COMPRESSIONACTIVE]' in data[0], (typ, data)
typ, data = m.select('INBOX')
assert typ == 'OK' and data == [b'2'], (typ, data)
before = m.wire_in
typ, data = m.fetch('2', '(BODY.PEEK[])')
assert typ == 'OK' and data[0][1] == big, 'big body differs'
on_wire = m.wire_in - before
assert on_wire * 3 < len(big), (on_wire, len(big))
typ, data = m.fetch('1', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
assert typ == 'OK' and b'Subject: small' in data[0][1], data
typ, data = m.store('1', '+FLAGS', '(\\Flagged)')
assert typ == 'OK' and b'\\Flagged' in data[0], data
typ, data = m.search(None, 'FLAGGED')
assert data == [b'1'], data
typ, data = m.append('INBOX', '(\\Seen)', None, b'Subject: appended\r\n\r\n' + b'z' * 100000 + b'\r\n')
assert typ == 'OK', (typ, data)
typ, data = m.status('INBOX', '(MESSAGES)')
assert data == [b'"INBOX" (MESSAGES 3)'], data
m.close()
m.logout()
print('ok', on_wire, len(big))
"#;

const IMAPLIB2: &str = r#"
import sys, imaplib2
port, big_path, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
big = open(big_path, 'rb').read()
if mode == 'imaps':
    m = imaplib2.IMAP4_SSL('127.0.0.1', port, ca_certs=ca, timeout=30)
else:
    m = imaplib2.IMAP4('127.0.0.1', port, timeout=30)
# imaplib2's reader thread inflates at most read_size octets per poll()
# wakeup and keeps the rest of its input in zlib's unconsumed_tail, which
# it only drains when the socket becomes readable again: a body that
# inflates to more than read_size from the last packet would wait forever
# (any server). A read_size above the largest response avoids that.
m.read_size = 1 << 24
m.login('bob@localhost', 'secret pw')
assert 'COMPRESS=DEFLATE' in m.capabilities, m.capabilities
m.enable_compression()
assert m.compressor is not None, 'compression not enabled'
typ, data = m.select('INBOX')
assert typ == 'OK' and data == [b'2'], (typ, data)
typ, data = m.fetch('2', '(BODY.PEEK[])')
assert typ == 'OK' and data[0][1] == big, 'big body differs'
typ, data = m.store('1', '+FLAGS', '(\\Flagged)')
assert typ == 'OK', (typ, data)
typ, data = m.search(None, 'FLAGGED')
assert data == [b'1'], data
typ, data = m.append('INBOX', None, None, b'Subject: appended\r\n\r\nvia imaplib2\r\n')
assert typ == 'OK', (typ, data)
typ, data = m.status('INBOX', '(MESSAGES)')
assert b'MESSAGES 3' in data[0], data
m.logout()
print('ok')
"#;

fn run_script(script: &str, mode: &str) {
    let s = TestServer::tls(|_| {});
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("small", "hello"));
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    let mut i = 0u32;
    while big.len() < 1 << 20 {
        i += 1;
        big.extend_from_slice(format!("line {i} of a long and rather dull message\r\n").as_bytes());
    }
    s.deliver(bob, &big);
    let dir = s.dir.path();
    std::fs::write(dir.join("big.eml"), &big).unwrap();
    std::fs::write(dir.join("ca.pem"), &test_cert().cert_pem).unwrap();
    let port = if mode == "imaps" {
        s.imaps.unwrap().port()
    } else {
        s.addr.port()
    };
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .arg(dir.join("big.eml"))
        .arg(dir.join("ca.pem"))
        .arg(mode)
        .output()
        .expect("python3 must be installed for interop tests");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok"),
        "{mode}: python failed (pip install imaplib2 for the imaplib2 tests):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{mode}: {}", stdout.trim());
}

#[test]
fn python_imaplib_with_zlib_compresses_over_plain_tcp() {
    run_script(IMAPLIB, "plain");
}

#[test]
fn python_imaplib_with_zlib_compresses_inside_starttls() {
    run_script(IMAPLIB, "starttls");
}

#[test]
fn imaplib2_enable_compression_over_plain_tcp() {
    run_script(IMAPLIB2, "plain");
}

#[test]
fn imaplib2_enable_compression_inside_implicit_tls() {
    run_script(IMAPLIB2, "imaps");
}
