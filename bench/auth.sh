#!/usr/bin/env bash
# auth.sh: what minimail's inbound checks (issue 17) cost. The same SMTP
# load (mailbench smtp: 16 sessions, a new connection per message, 4 KiB,
# sender s.test whose SPF allows 127.0.0.1 and whose DMARC policy is
# p=reject) against `minimail up` with and without --verify-inbound, DNS
# served by dnsmasq on loopback, and the cost of DKIM signing per message
# (mailauth's ignored bench test). Prints one line per run and the ratio.
#
#   bench/auth.sh [MESSAGES]      (default 5000)
#
# As root or not; needs dnsmasq (Debian dnsmasq-base). Data in $BENCH_DIR
# (default /tmp/minimail-auth-bench), removed at the start.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORKSPACE=$(cd "$HERE/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/minimail-auth-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORKSPACE/target-bench}
N=${1:-5000}
DNS_PORT=${DNS_PORT:-12253}
MM=$CARGO_TARGET_DIR/release/minimail
MB=$CARGO_TARGET_DIR/release/mailbench

(cd "$WORKSPACE" && cargo build --release -q -p minimail -p mailbench)
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --pid-file \
    --listen-address=127.0.0.1 --bind-interfaces --local=/test/ --port="$DNS_PORT" \
    "--txt-record=s.test,v=spf1 ip4:127.0.0.1 -all" \
    "--txt-record=_dmarc.s.test,v=DMARC1; p=reject" 2>"$BENCH_DIR/dnsmasq.log" &
pids+=($!)

run() {
    local mode=$1 port=$2
    shift 2
    local db=$BENCH_DIR/$mode.db
    printf 'pw\n' | "$MM" user add bench@localhost --db "$db" --password-stdin >/dev/null
    RUST_LOG=warn "$MM" up --smtp "127.0.0.1:$port" --imap 127.0.0.1:0 --submission 127.0.0.1:0 --sieve 127.0.0.1:0 \
        --db "$db" --no-outbound --dns "127.0.0.1:$DNS_PORT" "$@" 2>"$BENCH_DIR/$mode.log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    local out
    out=$("$MB" --json --server-pid "$pid" smtp --addr "127.0.0.1:$port" --sessions 16 \
        --messages "$N" --size 4096 --from bench@s.test --to bench@localhost)
    echo "$mode $out"
    kill "$pid"
}

off=$(run checks-off 12261)
on=$(run checks-on 12262 --verify-inbound)
echo "$off"
echo "$on"
python3 - "$off" "$on" <<'PY'
import json, sys
rate = lambda line: json.loads(line.split(" ", 1)[1])["rate"]
off, on = rate(sys.argv[1]), rate(sys.argv[2])
print(f"inbound SMTP, 16 sessions, 4 KiB: checks off {off:.0f} msg/s, on {on:.0f} msg/s: the checks cost {100 * (1 - on / off):.1f}% of the rate")
PY
echo "DKIM signing cost per message:"
(cd "$WORKSPACE" && cargo test --release -q -p mailauth --test bench -- --ignored --nocapture 2>/dev/null | grep -E "sign|verify")
