#!/usr/bin/env bash
# What one durably accepted message costs minimail (issue 21).
#
#   bench/smtp-cost.sh [MINIMAIL] [N] [SIZE]
#
# Starts MINIMAIL (default: target-bench/release/minimail of this
# checkout) on a fresh store in a private directory with free loopback
# ports, sends 500 messages to warm it up, then times `smtp-source -s 16
# -m N -l SIZE` (defaults 3000 and 1024: a new connection per message,
# 16 sessions) and prints, per message: the rate, the server's CPU (all
# threads, and the writer, event loop and checkpoint threads apart),
# write syscalls per thread (`syscw` from /proc), context switches,
# messages per group commit, the mean commit (BEGIN to COMMIT) and
# delivery (end of DATA to 250) times from the server's own metrics, and,
# when `perf` can trace syscalls, `fsync`, `pwrite64`, `sendto` and
# `recvfrom` per message. Needs smtp-source (Debian's postfix package)
# and curl. Nothing is left running; the store is deleted at the end.
#
#   GROW=12000 bench/smtp-cost.sh ...
#
# first grows the store by GROW more 1 KiB messages (untimed) and waits
# until the server is idle (its search indexing done), so the timed run
# meets a store bigger than the writer's page cache, as a server that has
# run for a while does.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
MM=${1:-$HERE/../target-bench/release/minimail}
N=${2:-3000}
SIZE=${3:-1024}
DIR=$(mktemp -d /tmp/minimail-smtp-cost.XXXXXX)
PID=
STAT=
cleanup() {
    if [ -n "$STAT" ]; then kill -INT "$STAT" 2>/dev/null || true; fi
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SMTP=$(free_port)
METRICS=$(free_port)

printf 'bench-pw\n' | "$MM" user add load@bench.test --db "$DIR/mm.db" --password-stdin >/dev/null
RUST_LOG=warn "$MM" up --smtp "127.0.0.1:$SMTP" --imap 127.0.0.1:0 --submission 127.0.0.1:0 \
    --sieve 127.0.0.1:0 --db "$DIR/mm.db" --domain bench.test --max-connections 12000 \
    --metrics "127.0.0.1:$METRICS" >"$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    if (echo >"/dev/tcp/127.0.0.1/$SMTP") 2>/dev/null; then break; fi
    sleep 0.1
done

source_run() {
    smtp-source -s 16 -m "$1" -l "$SIZE" -f bench@localhost -t load@bench.test "127.0.0.1:$SMTP"
}
source_run 500
if [ "${GROW:-0}" -gt 0 ]; then
    source_run "$GROW" >/dev/null
    # Idle: under 5 ticks of CPU in a second (at most two minutes).
    for _ in $(seq 1 120); do
        c0=$(awk '{print $14 + $15}' /proc/"$PID"/stat)
        sleep 1
        c1=$(awk '{print $14 + $15}' /proc/"$PID"/stat)
        if [ $((c1 - c0)) -lt 5 ]; then break; fi
    done
    printf 'store grown by %s messages: %s MB\n' "$GROW" "$(du -m "$DIR/mm.db" | cut -f1)"
fi
sleep 0.5

# tid name cpu_ticks syscw, one line per thread
threads() {
    local t
    for t in /proc/"$PID"/task/*; do
        printf '%s %s %s %s\n' "${t##*/}" "$(tr ' ' _ <"$t/comm")" \
            "$(awk '{print $14 + $15}' "$t/stat")" "$(awk '/syscw/ {print $2}' "$t/io")"
    done
}
switches() {
    cat /proc/"$PID"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'
}
metric() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

threads >"$DIR/t0"
curl -s "http://127.0.0.1:$METRICS/metrics" >"$DIR/m0"
cs0=$(switches)
if perf stat -e syscalls:sys_enter_fsync -- true >/dev/null 2>&1; then
    perf stat -e syscalls:sys_enter_fsync,syscalls:sys_enter_pwrite64,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom \
        -p "$PID" -o "$DIR/perf" &
    STAT=$!
    sleep 0.3
fi
t0=$(date +%s.%N)
source_run "$N"
t1=$(date +%s.%N)
cs1=$(switches)
curl -s "http://127.0.0.1:$METRICS/metrics" >"$DIR/m1"
threads >"$DIR/t1"
if [ -n "$STAT" ]; then kill -INT "$STAT"; wait "$STAT" 2>/dev/null || true; STAT=; fi

tck=$(getconf CLK_TCK)
printf 'smtp-source -s 16 -m %s -l %s, load %s\n' "$N" "$SIZE" "$(cut -d' ' -f1-3 /proc/loadavg)"
awk -v n="$N" -v t="$tck" -v a="$t0" -v b="$t1" -v cs=$((cs1 - cs0)) '
    FNR == NR { c0[$1] = $3; w0[$1] = $4; next }
    { cpu += $3 - c0[$1]; by[$2] += $3 - c0[$1]; w[$2] += $4 - w0[$1] }
    END {
        printf "  rate %.0f msg/s, server CPU %.0f us/msg, context switches %.2f/msg\n", n / (b - a), cpu / t * 1e6 / n, cs / n
        for (k in by) if (k ~ /write|smtpd|check/)
            printf "  thread %s: CPU %.0f us/msg, write syscalls %.2f/msg\n", k, by[k] / t * 1e6 / n, w[k] / n
    }' "$DIR/t0" "$DIR/t1"
awk -v n="$N" \
    -v c0="$(metric minimail_store_commit_seconds_count "$DIR/m0")" -v c1="$(metric minimail_store_commit_seconds_count "$DIR/m1")" \
    -v s0="$(metric minimail_store_commit_seconds_sum "$DIR/m0")" -v s1="$(metric minimail_store_commit_seconds_sum "$DIR/m1")" \
    -v d0="$(metric minimail_smtp_delivery_seconds_sum "$DIR/m0")" -v d1="$(metric minimail_smtp_delivery_seconds_sum "$DIR/m1")" \
    'BEGIN {
        if (c1 > c0) printf "  messages per commit %.1f, commit mean %.2f ms, delivery mean %.2f ms\n", n / (c1 - c0), (s1 - s0) / (c1 - c0) * 1e3, (d1 - d0) / n * 1e3
    }'
if [ -f "$DIR/perf" ]; then
    awk -v n="$N" '/syscalls:sys_enter_/ { gsub(",", "", $1); sub("syscalls:sys_enter_", "", $2); printf "  %s %.2f/msg\n", $2, $1 / n }' "$DIR/perf"
fi
