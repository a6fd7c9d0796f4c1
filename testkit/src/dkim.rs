//! DKIM verification by an independent implementation: Debian's dkimpy
//! (python3-dkim, with python3-dnspython for the lookups), run with the
//! system interpreter and asking a given DNS server (the tests' dnsmasq).

use std::net::SocketAddr;
use std::process::Command;

/// dkimpy's verdict on `msg` (true: every signature it checks verifies),
/// its keys looked up in `dns`. Panics when dkimpy cannot run.
pub fn dkimpy_verifies(msg: &[u8], dns: SocketAddr) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg.eml");
    std::fs::write(&path, msg).unwrap();
    let script = format!(
        "import dkim, dns.resolver, sys, logging\n\
         r = dns.resolver.Resolver(configure=False)\n\
         r.nameservers = ['{ip}']\n\
         r.port = {port}\n\
         def txt(name, timeout=5):\n\
         \x20   name = name.decode() if isinstance(name, bytes) else name\n\
         \x20   ans = r.resolve(name.rstrip('.'), 'TXT')\n\
         \x20   return b''.join(b''.join(rr.strings) for rr in ans)\n\
         msg = open('{path}', 'rb').read()\n\
         logging.basicConfig(level=logging.DEBUG)\n\
         ok = dkim.verify(msg, dnsfunc=txt, logger=logging.getLogger())\n\
         print('PASS' if ok else 'FAIL')\n",
        ip = dns.ip(),
        port = dns.port(),
        path = path.display()
    );
    // Debian's python3-dkim lives with the system interpreter.
    let out = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && (stdout.contains("PASS") || stdout.contains("FAIL")),
        "dkimpy did not run (python3-dkim and python3-dnspython installed?): {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    if !stdout.contains("PASS") {
        eprintln!("dkimpy: {}", String::from_utf8_lossy(&out.stderr));
    }
    stdout.contains("PASS")
}
