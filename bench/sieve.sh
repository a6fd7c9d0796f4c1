#!/usr/bin/env bash
# sieve.sh: what Sieve on delivery costs (issue 19). The same SMTP load
# (mailbench smtp: 16 sessions, a new connection per message, 4 KiB) to a
# user without a script and to one whose active script has 50 rules (49
# header/address tests that do not match, as a filter editor writes them,
# then a fileinto that does). Prints one line per run and the ratio.
#
#   bench/sieve.sh [MESSAGES]      (default 5000)
#
# Data in $BENCH_DIR (default /tmp/minimail-sieve-bench), removed at the start.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORKSPACE=$(cd "$HERE/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/minimail-sieve-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORKSPACE/target-bench}
N=${1:-5000}
MM=$CARGO_TARGET_DIR/release/minimail
MB=$CARGO_TARGET_DIR/release/mailbench

(cd "$WORKSPACE" && cargo build --release -q -p minimail -p mailbench)
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# 50 rules: 49 that do not match, then one that files the message.
{
    echo 'require ["fileinto", "imap4flags", "mailbox"];'
    for i in $(seq 1 49); do
        case $((i % 3)) in
            0) echo "if header :contains \"Subject\" \"[list-$i]\" { fileinto :create \"Lists/$i\"; stop; }" ;;
            1) echo "if address :is \"from\" \"sender$i@example.org\" { addflag \"\\\\Flagged\"; fileinto :create \"People/$i\"; stop; }" ;;
            2) echo "if header :matches \"X-Spam-Level\" \"*****$i*\" { fileinto :create \"Junk\"; stop; }" ;;
        esac
    done
    echo 'if true { fileinto :create "Filed"; }'
} > "$BENCH_DIR/rules.sieve"

run() {
    local mode=$1 port=$2
    local db=$BENCH_DIR/$mode.db
    printf 'pw\n' | "$MM" user add bench@localhost --db "$db" --password-stdin >/dev/null
    if [ "$mode" = script ]; then
        "$MM" sieve put bench@localhost rules "$BENCH_DIR/rules.sieve" --activate --db "$db" >/dev/null
    fi
    RUST_LOG=warn "$MM" up --smtp "127.0.0.1:$port" --imap 127.0.0.1:0 --submission 127.0.0.1:0 --sieve 127.0.0.1:0 \
        --db "$db" --no-outbound 2>"$BENCH_DIR/$mode.log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    local out
    out=$("$MB" --json --server-pid "$pid" smtp --addr "127.0.0.1:$port" --sessions 16 \
        --messages "$N" --size 4096 --from sender@example.net --to bench@localhost)
    echo "$mode $out"
    kill "$pid"
}

none=$(run none 12271)
script=$(run script 12272)
echo "$none"
echo "$script"
python3 - "$none" "$script" <<'PY'
import json, sys
rate = lambda line: json.loads(line.split(" ", 1)[1])["rate"]
none, script = rate(sys.argv[1]), rate(sys.argv[2])
print(f"SMTP delivery, 16 sessions, 4 KiB: no script {none:.0f} msg/s, 50-rule script {script:.0f} msg/s: the script costs {100 * (1 - script / none):.1f}% of the rate")
PY
