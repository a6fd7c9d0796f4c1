#!/usr/bin/env python3
"""gen_mbox.py N SEED: an mbox of N messages of about 4 KiB (random words,
From-quoted), one a minute from 2014-05-13, with mutt-style Status /
X-Status / X-Keywords flags at random (70% read, 10% answered+flagged, 5%
keywords). The same N and SEED give the same bytes. Written to stdout;
used by bench/migrate.sh and bench/transfer.sh."""
import random
import sys
import time

n = int(sys.argv[1])
random.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 20)
t0 = 1_400_000_000
words = "the quick brown fox jumps over a lazy dog From mail list rust".split()
out = sys.stdout
for i in range(n):
    t = t0 + i * 60
    out.write("From bench@s.test " + time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t)) + "\n")
    out.write(f"From: s{i % 97}@s.test\nTo: bench@localhost\nSubject: message {i}\n")
    out.write(f"Message-ID: <{i}@s.test>\nDate: " + time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t)) + "\n")
    r = random.random()
    out.write("Status: " + ("RO" if r < 0.7 else "O") + "\n")
    if r < 0.1:
        out.write("X-Status: AF\n")
    if r < 0.05:
        out.write("X-Keywords: $Forwarded Junk\n")
    out.write("\n")
    body = []
    size = 0
    while size < 4000:
        line = " ".join(random.choice(words) for _ in range(12))
        if line.startswith("From "):
            line = ">" + line
        body.append(line)
        size += len(line) + 1
    out.write("\n".join(body) + "\n\n")
