"""Load and outage driver for tests/pg_fleet.rs (Python's smtplib and
imaplib, raw sockets for IDLE). Reads its configuration as JSON from
argv[1]; prints one line per fact for the Rust test to check:

  sent SENDER FRONT MSGID RCPTS OUTCOME CODE AFTER_KILL
  mailbox FRONT USER UID:MSGID ...
  idle FRONT USER MAX_EXISTS TARGET OUTCOME SECONDS
  acked N          (progress, while sending)

Modes: `load` (senders + IDLE on every front end; stdin `killed F`
says front end F was SIGKILLed) and `outage` (phases driven over
stdin: `down` after PostgreSQL stopped, `up` after it started again,
`restarted` after a restart with no traffic in between).
"""

import imaplib
import json
import re
import smtplib
import socket
import sys
import threading
import time

CFG = json.loads(sys.argv[1])
FRONTS = CFG["fronts"]  # [{"smtp": [host, port], "imap": [host, port]}]
USERS = CFG["users"]
PW = "pw"
OUT = threading.Lock()
T0 = time.monotonic()


def say(*parts):
    with OUT:
        print(" ".join(str(p) for p in parts), flush=True)


def recv_lines(sock, buf):
    """Complete lines received so far (buf keeps the rest); may time out."""
    data = sock.recv(65536)
    if not data:
        raise EOFError("connection closed")
    buf += data
    lines = []
    while b"\r\n" in buf:
        line, _, rest = bytes(buf).partition(b"\r\n")
        buf[:] = rest
        lines.append(line)
    return lines


class Idler(threading.Thread):
    """LOGIN, SELECT INBOX, IDLE; remembers the highest EXISTS until it
    reaches `target` (set later) or the deadline passes."""

    def __init__(self, front, user):
        super().__init__(daemon=True)
        self.front, self.user = front, user
        self.max_exists = 0
        self.target = None
        self.deadline = None
        self.outcome = "running"
        self.ready = threading.Event()
        self.seconds = 0.0

    def run(self):
        host, port = FRONTS[self.front]["imap"]
        buf = bytearray()
        try:
            s = socket.create_connection((host, port), timeout=30)
            pending = []

            def until(prefix):
                while True:
                    while not pending:
                        pending.extend(recv_lines(s, buf))
                    line = pending.pop(0)
                    m = re.match(rb"\* (\d+) EXISTS", line)
                    if m:
                        self.max_exists = max(self.max_exists, int(m.group(1)))
                    if line.startswith(prefix):
                        return line

            until(b"* OK")
            s.sendall(b"a LOGIN " + self.user.encode() + b" " + PW.encode() + b"\r\n")
            assert until(b"a ").startswith(b"a OK")
            s.sendall(b"b SELECT INBOX\r\n")
            assert until(b"b ").startswith(b"b OK")
            s.sendall(b"c IDLE\r\n")
            until(b"+")
            self.ready.set()
            s.settimeout(0.25)
            while True:
                if self.target is not None and self.max_exists >= self.target:
                    self.outcome = "complete"
                    break
                if self.deadline is not None and time.monotonic() > self.deadline:
                    self.outcome = "timeout"
                    break
                try:
                    pending.extend(recv_lines(s, buf))
                except socket.timeout:
                    continue
                for line in pending:
                    m = re.match(rb"\* (\d+) EXISTS", line)
                    if m:
                        self.max_exists = max(self.max_exists, int(m.group(1)))
                pending.clear()
            self.seconds = time.monotonic() - T0
            s.settimeout(30)
            s.sendall(b"DONE\r\n")
            assert until(b"c ").startswith(b"c OK")
            s.sendall(b"d LOGOUT\r\n")
            s.close()
        except (OSError, EOFError, AssertionError) as e:
            self.outcome = "broken:" + type(e).__name__
            self.ready.set()

    def report(self):
        say("idle", self.front, self.user, self.max_exists, self.target,
            self.outcome, "%.2f" % self.seconds)


def message(msgid, rcpts, sender):
    return (
        "From: sender%d@example.org\r\nTo: %s\r\nSubject: fleet %s\r\n"
        "Message-ID: %s\r\n\r\nbody of %s\r\n" % (sender, ", ".join(rcpts), msgid, msgid, msgid)
    ).encode()


def recipients(i, k):
    """One to three of the users, varying with the sender and message."""
    n = 1 + (i + k) % 3
    return [USERS[(i + k + j) % len(USERS)] for j in range(min(n, len(USERS)))]


def outcome_of(e):
    """(outcome, code) for an exception smtplib raised."""
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        codes = sorted({c for c, _ in e.recipients.values()})
        code = codes[0]
        text = ";".join(m.decode(errors="replace") for _, m in e.recipients.values())
        return ("temp" if 400 <= code < 500 else "perm"), "%d:%s" % (code, text.replace(" ", "_"))
    if isinstance(e, smtplib.SMTPResponseException):
        code = e.smtp_code
        text = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        return ("temp" if 400 <= code < 500 else "perm"), "%d:%s" % (code, text.replace(" ", "_"))
    return "broken", type(e).__name__


def fetch_ids(m):
    """[(uid, message-id)] of the selected mailbox, in the server's order."""
    typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", (typ, data)
    out = []
    for part in data:
        if not isinstance(part, tuple):
            continue
        uid = int(re.search(rb"UID (\d+)", part[0]).group(1))
        hdr = part[1].decode(errors="replace")
        mid = re.search(r"<[^>]*>", hdr)
        out.append((uid, mid.group(0) if mid else "none"))
    return out


def report_mailboxes(fronts):
    counts = {}
    for f in fronts:
        host, port = FRONTS[f]["imap"]
        for u in USERS:
            m = imaplib.IMAP4(host, port, timeout=30)
            m.login(u, PW)
            m.select("INBOX", readonly=True)
            ids = fetch_ids(m)
            m.logout()
            counts.setdefault(u, len(ids))
            say("mailbox", f, u, *["%d:%s" % x for x in ids])
    return counts


def load():
    senders = CFG["senders"]
    per_sender = CFG["per_sender"]
    killed = {}  # front -> time

    def watch_stdin():
        for line in sys.stdin:
            parts = line.split()
            if parts[:1] == ["killed"]:
                killed[int(parts[1])] = time.monotonic()

    threading.Thread(target=watch_stdin, daemon=True).start()
    idlers = [Idler(f, u) for f in range(len(FRONTS)) for u in USERS]
    for t in idlers:
        t.start()
    for t in idlers:
        t.ready.wait(30)
    acked = [0]

    victim = CFG.get("kill")

    def sender(i):
        front = i % len(FRONTS)
        host, port = FRONTS[front]["smtp"]
        per_conn = 1 if i % 2 == 0 else 4
        # With a front end to be killed, its senders go on until it is
        # (so it dies under load), and the others wait half-way for it (so
        # they send as much after the kill as before).
        limit = 100000 if front == victim else per_sender
        pause = per_sender // 2 if victim is not None and front != victim else None
        deadline = time.monotonic() + 60
        k = 0
        while k < limit and time.monotonic() < deadline:
            if pause is not None and k >= pause:
                while victim not in killed and time.monotonic() < deadline:
                    time.sleep(0.01)
                pause = None
            if front in killed:
                # Its front end is gone: nothing more to send there.
                return
            try:
                s = smtplib.SMTP(host, port, local_hostname="sender%d.test" % i, timeout=30)
            except OSError as e:
                say("sent", i, front, "<m%d.%d@fleet.test>" % (i, k), ",".join(recipients(i, k)), "noconn", type(e).__name__, int(bool(killed)))
                k += 1
                time.sleep(0.05)
                continue
            try:
                for _ in range(per_conn):
                    if k >= limit or k == pause:
                        break
                    msgid = "<m%d.%d@fleet.test>" % (i, k)
                    rcpts = recipients(i, k)
                    k += 1
                    try:
                        # As a sending MTA does, a 451 (e.g. users locked in
                        # another front end's batch; nothing was stored) is
                        # tried again, a few times, at once; counted.
                        for attempt in range(5):
                            try:
                                s.sendmail("sender%d@example.org" % i, rcpts, message(msgid, rcpts, i))
                                break
                            except smtplib.SMTPDataError as e:
                                if e.smtp_code != 451 or attempt == 4:
                                    raise
                                with OUT:
                                    retried[0] += 1
                                time.sleep(0.02 * (attempt + 1))
                        after = int(bool(killed))
                        with OUT:
                            acked[0] += 1
                            if acked[0] % 10 == 0:
                                print("acked", acked[0], flush=True)
                        say("sent", i, front, msgid, ",".join(rcpts), "ack", 250, after)
                    except (smtplib.SMTPException, OSError) as e:
                        outcome, code = outcome_of(e)
                        say("sent", i, front, msgid, ",".join(rcpts), outcome, code, int(bool(killed)))
                        if outcome == "broken":
                            raise
            except (smtplib.SMTPException, OSError):
                pass
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                pass

    retried = [0]
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    say("senders-done", "%.2f" % (time.monotonic() - T0))
    say("retried", retried[0])
    alive = [f for f in range(len(FRONTS)) if f not in killed]
    counts = report_mailboxes(alive)
    for t in idlers:
        t.target = counts[t.user]
        t.deadline = time.monotonic() + 30
    for t in idlers:
        t.join(40)
        t.report()


def timed(what, front, f):
    """Run f(); print its outcome and how long it took."""
    start = time.monotonic()
    try:
        res = f()
    except Exception as e:  # noqa: BLE001 - reported, the test judges it
        res = "exception:%s:%s" % (type(e).__name__, str(e).replace(" ", "_")[:200])
    say("op", what, front, "%.2f" % (time.monotonic() - start), res)


def smtp_try(front, msgid):
    host, port = FRONTS[front]["smtp"]
    s = smtplib.SMTP(host, port, local_hostname="outage.test", timeout=60)
    try:
        s.sendmail("o@example.org", [USERS[0]], message(msgid, [USERS[0]], 0))
        res = "250"
    except smtplib.SMTPException as e:
        res = "%s:%s" % outcome_of(e)
    try:
        s.quit()
    except (smtplib.SMTPException, OSError):
        pass
    return res


def imap_status(typ, data):
    text = b" ".join(x if isinstance(x, bytes) else b"" for x in data).decode(errors="replace")
    return "%s:%s" % (typ, text.replace(" ", "_")[:120])


def outage():
    """Phase 1: sessions up and one delivery per front end; `down`:
    every store operation answered with a temporary failure; `up`: the
    same processes serve again."""
    n = len(FRONTS)
    idlers = [Idler(f, USERS[0]) for f in range(n)]
    for t in idlers:
        t.start()
    sessions = []
    for f in range(n):
        host, port = FRONTS[f]["imap"]
        m = imaplib.IMAP4(host, port, timeout=60)
        m.login(USERS[0], PW)
        m.select("INBOX")
        sessions.append(m)
    for t in idlers:
        t.ready.wait(30)
    for f in range(n):
        timed("smtp-before", f, lambda: smtp_try(f, "<before.%d@fleet.test>" % f))
    for m in sessions:
        typ, data = m.select("INBOX")
        assert (typ, data) == ("OK", [b"3"]), (typ, data)
    say("ready")
    assert sys.stdin.readline().strip() == "down"
    for f in range(n):
        host, port = FRONTS[f]["imap"]
        m = sessions[f]
        timed("smtp-down", f, lambda: smtp_try(f, "<down.%d@fleet.test>" % f))
        timed("fetch-down", f, lambda: imap_status(*m.fetch("1", "(BODY.PEEK[])")))
        timed("append-down", f, lambda: imap_status(*m.append("INBOX", None, None, message("<append-down.%d@fleet.test>" % f, [USERS[0]], 0))))
        timed("select-down", f, lambda: imap_status(*m.select("INBOX")))

        def login():
            c = imaplib.IMAP4(host, port, timeout=60)
            try:
                return imap_status(*c.login(USERS[0], PW))
            except imaplib.IMAP4.error as e:
                return "NO:" + str(e).replace(" ", "_")[:120]
            finally:
                try:
                    c.logout()
                except (imaplib.IMAP4.error, OSError):
                    pass

        timed("login-down", f, login)
    say("checked")
    assert sys.stdin.readline().strip() == "up"
    for f in range(n):
        host, port = FRONTS[f]["imap"]
        m = sessions[f]
        timed("smtp-up", f, lambda: smtp_try(f, "<up.%d@fleet.test>" % f))
        timed("select-up", f, lambda: imap_status(*m.select("INBOX")))
        timed("append-up", f, lambda: imap_status(*m.append("INBOX", None, None, message("<append-up.%d@fleet.test>" % f, [USERS[0]], 0))))

        def login():
            c = imaplib.IMAP4(host, port, timeout=60)
            res = imap_status(*c.login(USERS[0], PW))
            c.logout()
            return res

        timed("login-up", f, login)
    # A restart with no traffic meanwhile: every connection of every
    # front end is dead without its knowing; the first jobs find out.
    say("serving")
    assert sys.stdin.readline().strip() == "restarted"
    for f in range(n):
        host, port = FRONTS[f]["imap"]
        m = sessions[f]
        timed("smtp-restarted", f, lambda: smtp_try(f, "<restarted.%d@fleet.test>" % f))
        timed("fetch-restarted", f, lambda: imap_status(*m.fetch("1", "(BODY.PEEK[])"))[:3])
        timed("append-restarted", f, lambda: imap_status(*m.append("INBOX", None, None, message("<append-restarted.%d@fleet.test>" % f, [USERS[0]], 0))))
        timed("login-restarted", f, login)
    counts = report_mailboxes(range(n))
    for t in idlers:
        t.target = counts[USERS[0]]
        t.deadline = time.monotonic() + 30
    for t in idlers:
        t.join(40)
        t.report()
    for m in sessions:
        m.logout()


{"load": load, "outage": outage}[CFG["mode"]]()
