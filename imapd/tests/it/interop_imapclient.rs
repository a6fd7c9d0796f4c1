//! Interop with Python's `imapclient` (pip; `.ci/run` installs it), a
//! client library that uses the extensions rather than raw commands:
//! MULTIAPPEND (RFC 3502) with APPENDUID, server-side SORT and THREAD
//! (RFC 5256), ESEARCH (RFC 4731), ENABLE CONDSTORE and FETCH CHANGEDSINCE
//! (RFC 7162). The same script passes against Dovecot 2.3. A second
//! script runs imapclient over COMPRESS=DEFLATE (RFC 4978; imapclient has
//! no COMPRESS of its own, so the script turns it on under imapclient's
//! imaplib connection, as `compress_interop.rs` does for imaplib) and has
//! imapclient's parser read LIST-STATUS (RFC 5819) answers and OBJECTID's
//! THREADID (RFC 8474). Fails (not skips) if python3 or imapclient is
//! missing.

use crate::util::*;

const SCRIPT: &str = r#"
import sys, imapclient
port = int(sys.argv[1]); user = sys.argv[2]; pw = sys.argv[3]
c = imapclient.IMAPClient('127.0.0.1', port=port, ssl=False)
c.login(user, pw)
caps = c.capabilities()
for cap in (b'SORT', b'THREAD=REFERENCES', b'ESEARCH', b'MULTIAPPEND', b'CONDSTORE', b'QRESYNC'):
    assert cap in caps, (cap, caps)
assert c.enable('CONDSTORE') == [b'CONDSTORE']
box = 'PyExt'
if c.folder_exists(box):
    c.delete_folder(box)
c.create_folder(box)
def msg(subject, date, mid, refs=''):
    h = f'From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{mid}@x>\r\n'
    if refs:
        h += f'In-Reply-To: <{refs.split()[-1]}@x>\r\nReferences: ' + ' '.join(f'<{r}@x>' for r in refs.split()) + '\r\n'
    return (h + '\r\nbody\r\n').encode()
msgs = [msg('banana', '3 Jan 2026 10:00:00 +0000', 'a'),
        msg('Re: banana', '1 Jan 2026 10:00:00 +0000', 'b', 'a'),
        msg('apple', '2 Jan 2026 10:00:00 +0000', 'c'),
        msg('Re: Re: banana', '4 Jan 2026 10:00:00 +0000', 'd', 'a b')]
r = c.multiappend(box, msgs)
assert r[0] == 'OK' and b'APPENDUID' in r[1][0], r
c.select_folder(box)
assert c.search() == [1, 2, 3, 4]
assert c.sort(['SUBJECT']) == [3, 1, 2, 4], c.sort(['SUBJECT'])
assert c.sort(['REVERSE', 'DATE']) == [4, 1, 3, 2], c.sort(['REVERSE', 'DATE'])
t = c.thread()
assert t == ((3,), (1, 2, 4)), t
c._imap.uid('SEARCH', 'RETURN', '(MIN MAX COUNT)', 'ALL')
es = c._imap.untagged_responses.pop('ESEARCH', [b''])[0]
assert b'MIN 1' in es and b'MAX 4' in es and b'COUNT 4' in es, es
c.add_flags([2], [b'$Seen2'])
f = c.fetch([1, 2, 3, 4], ['FLAGS'], modifiers=['CHANGEDSINCE 1'])
assert 2 in f and b'$Seen2' in f[2][b'FLAGS'] and b'MODSEQ' in f[2], f
c.close_folder()
c.delete_folder(box)
c.logout()
print('ok')
"#;

#[test]
fn python_imapclient_sorts_threads_searches_and_multiappends() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    python_client_ok(&s, SCRIPT, "imapclient (pip install imapclient)");
}

const EXT_SCRIPT: &str = r#"
import imaplib, sys, zlib, imapclient
from imapclient.response_parser import parse_response
port = int(sys.argv[1]); user = sys.argv[2]; pw = sys.argv[3]
imaplib.Commands['COMPRESS'] = ('AUTH', 'SELECTED')

class Deflate:
    """COMPRESS=DEFLATE under imapclient's imaplib connection."""
    zon = False
    def start(self):
        typ, dat = self._simple_command('COMPRESS', 'DEFLATE')
        assert typ == 'OK', (typ, dat)
        self.zc = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.zd = zlib.decompressobj(-15)
        self.zbuf = b''
        self.wire_in = 0
        self.zon = True
    def send(self, data):
        if not self.zon:
            return super().send(data)
        self.sock.sendall(self.zc.compress(data) + self.zc.flush(zlib.Z_SYNC_FLUSH))
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

c = imapclient.IMAPClient('127.0.0.1', port=port, ssl=False)
c.login(user, pw)
caps = c.capabilities()
for cap in (b'COMPRESS=DEFLATE', b'LIST-STATUS', b'OBJECTID'):
    assert cap in caps, (cap, caps)
c._imap.__class__ = type('Z', (Deflate, type(c._imap)), {})
c._imap.start()
typ, dat = c._imap._simple_command('COMPRESS', 'DEFLATE')
assert typ == 'NO' and b'COMPRESSIONACTIVE' in dat[0], (typ, dat)

# LIST-STATUS: three mailboxes, read by imapclient's LIST and STATUS parsers.
words = b' '.join(b'word%d' % (i % 50) for i in range(20000))
for name, msgs in (('LsA', 3), ('LsB', 0), ('LsC', 1)):
    c.create_folder(name)
    for k in range(msgs):
        flags = [b'\\Seen'] if k == 0 else []
        c.append(name, b'Subject: m%d\r\nMessage-ID: <%s%d@x>\r\n\r\n' % (k, name.encode(), k) + words + b'\r\n', flags)
typ, dat = c._imap._simple_command('LIST', '""', '"Ls*"', 'RETURN', '(STATUS (MESSAGES UNSEEN))')
assert typ == 'OK', (typ, dat)
listed = c._proc_folder_list(c._imap.untagged_responses.pop('LIST', []))
statuses = [parse_response([s]) for s in c._imap.untagged_responses.pop('STATUS', [])]
assert sorted(n for (_, _, n) in listed) == ['LsA', 'LsB', 'LsC'], listed
got = {n.decode(): dict(zip(v[::2], v[1::2])) for (n, v) in statuses}
assert got == {'LsA': {b'MESSAGES': 3, b'UNSEEN': 2}, 'LsB': {b'MESSAGES': 0, b'UNSEEN': 0},
               'LsC': {b'MESSAGES': 1, b'UNSEEN': 0}}, got
for name in got:
    st = c.folder_status(name, ['MESSAGES', 'UNSEEN'])
    assert {k: st[k] for k in (b'MESSAGES', b'UNSEEN')} == got[name], (name, st)

# OBJECTID over the compressed stream: a reply shares its parent's THREADID
# through a COPY; the bodies cross the wire compressed.
c.select_folder('LsA')
c.append('LsA', b'Subject: Re: m1\r\nIn-Reply-To: <LsA1@x>\r\nMessage-ID: <r@x>\r\n\r\nreply\r\n')
c.copy([4], 'LsC')
f = c.fetch([1, 2, 3, 4], ['THREADID', 'EMAILID'])
t = {i: f[i][b'THREADID'] for i in f}
assert t[2] == t[4] and len({t[1], t[2], t[3]}) == 3, f
assert c.search(['THREADID', t[2][0]]) == [2, 4]
before = c._imap.wire_in
body = c.fetch([1], ['BODY.PEEK[]'])[1][b'BODY[]']
assert body.endswith(words + b'\r\n'), len(body)
assert (c._imap.wire_in - before) * 3 < len(body), (c._imap.wire_in - before, len(body))
c.select_folder('LsC')
f = c.fetch([2], ['THREADID', 'EMAILID'])
assert f[2][b'THREADID'] == t[2], f
c.logout()
print('ok')
"#;

#[test]
fn python_imapclient_lists_status_and_reads_thread_ids_over_compress() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    python_client_ok(&s, EXT_SCRIPT, "imapclient (pip install imapclient)");
}
