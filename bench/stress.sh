#!/usr/bin/env bash
# stress.sh: Dovecot's imaptest in its stress profile (random concurrent
# LOGIN/LIST/STATUS/SELECT/FETCH/STORE/EXPUNGE/APPEND/LOGOUT with state
# tracking: imaptest checks every answer against what it has seen) against
# Dovecot and minimail in one run, the same mbox appended from, the same
# counts; prints imaptest's totals for each and the ratio per command.
#
#   bench/stress.sh [CLIENTS] [SECS] [MSGS] [MBOX_MESSAGES]   (default 10 30 30 1000)
#
# The mbox is written once ($BENCH_DIR/bench.mbox, MBOX_MESSAGES messages of
# 4-150 KiB of random words, seeded): imaptest APPENDs from it and keeps
# the mailbox near MSGS messages (its msgs= setting). Needs
# ../shared/imaptest (build.sh builds imaptest once) and Dovecot (installed
# with apt-get if missing, as compare.sh does). Servers, data and ports as
# in compare.sh ($BENCH_DIR per checkout).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=compare.sh
source "$HERE/compare.sh" --no-outbound
CLIENTS=${1:-10}
SECS=${2:-30}
MSGS=${3:-30}
MBOX_N=${4:-1000}
IMAPTEST_BUILD=${IMAPTEST_BUILD:-$WORKSPACE/../shared/imaptest/build.sh}
[ -x "$IMAPTEST_BUILD" ] || { echo "stress.sh: $IMAPTEST_BUILD not found (imaptest)" >&2; exit 2; }
eval "$("$IMAPTEST_BUILD")"

write_mbox() {
    python3 - "$1" "$MBOX_N" <<'PY'
import email.utils, random, sys
path, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron "
         "pi rho sigma tau upsilon phi chi psi omega mail server message topic").split()
with open(path, "w") as f:
    for i in range(n):
        size = rnd.choice([4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 150]) * 1024
        lines, got = [], 0
        while got < size:
            line = " ".join(rnd.choice(words) for _ in range(12))
            lines.append(line)
            got += len(line) + 1
        date = email.utils.formatdate(1764979200 - i * 3600)
        f.write(f"From sender{i % 50}@example.org Sat Dec  5 00:00:00 2026\n"
                f"From: Sender {i % 50} <sender{i % 50}@example.org>\nTo: bench@bench.test\n"
                f"Subject: topic {i} {rnd.choice(words)}\nDate: {date}\n"
                f"Message-ID: <m{i}@example.org>\n\n" + "\n".join(lines) + "\n\n")
PY
}

# stress NAME PORT: imaptest's totals block (3 lines after "Totals:").
stress() {
    local out=$BENCH_DIR/stress-$1.txt
    log "imaptest stress against $1 (:$2): clients=$CLIENTS secs=$SECS msgs=$MSGS"
    "$IMAPTEST" host=127.0.0.1 port="$2" user="$USER_ADDR" pass="$PASSWORD" \
        mbox="$BENCH_DIR/bench.mbox" clients="$CLIENTS" secs="$SECS" msgs="$MSGS" >"$out" 2>&1 || true
    grep -A4 '^Totals:' "$out" >&2 || { echo "stress.sh: no totals from imaptest against $1; see $out" >&2; return 1; }
}

stress_main() {
    install_peers
    build
    stop_all
    configure
    trap stop_all EXIT INT TERM
    start_all
    machine | tee "$BENCH_DIR/machine.txt" >&2
    write_mbox "$BENCH_DIR/bench.mbox"
    stress dovecot "$DOVECOT_PORT"
    stress minimail "$MM_IMAP_PORT"
    python3 - "$BENCH_DIR/stress-dovecot.txt" "$BENCH_DIR/stress-minimail.txt" "$SECS" <<'PY'
import re, sys
def totals(path):
    text = open(path).read()
    block = text.split("Totals:", 1)[1].strip().splitlines()
    names = block[0].split()
    counts = [int(x) for x in block[-1].split()[: len(names)]]
    errors = len(re.findall(r"^Error:", text, re.M))
    return dict(zip(names, counts)), errors
dc, dc_err = totals(sys.argv[1])
mm, mm_err = totals(sys.argv[2])
secs = float(sys.argv[3])
print("| command | Dovecot /s | minimail /s | ratio |")
print("| --- | --- | --- | --- |")
for k in dc:
    ratio = f"{mm[k] / dc[k]:.1f}x" if dc[k] else "-"
    print(f"| {k} | {dc[k] / secs:,.0f} | {mm.get(k, 0) / secs:,.0f} | {ratio} |")
print(f"imaptest errors (state tracking and protocol): Dovecot {dc_err}, minimail {mm_err}")
PY
    cat "$BENCH_DIR/machine.txt"
}

stress_main
