//! Interop with Python's `imapclient` (pip; `.ci/run` installs it), a
//! client library that uses the extensions rather than raw commands:
//! MULTIAPPEND (RFC 3502) with APPENDUID, server-side SORT and THREAD
//! (RFC 5256), ESEARCH (RFC 4731), ENABLE CONDSTORE and FETCH CHANGEDSINCE
//! (RFC 7162). The same script passes against Dovecot 2.3. Fails (not
//! skips) if python3 or imapclient is missing.

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
