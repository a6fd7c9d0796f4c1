#!/usr/bin/env bash
# pg.sh: minimail on PostgreSQL with 1, 2 and 3 front ends, and on SQLite,
# in one run (issue 18's figures). A private PostgreSQL cluster (initdb +
# pg_ctl in $BENCH_DIR, loopback port, fsync and synchronous_commit on, run
# as `postgres` or `nobody` when started as root) holds one fresh database
# per configuration; front end i is `minimail up --db postgres://...` on
# 127.0.0.(i+1). Measured with mailbench:
#   SMTP   durable msg/s, 16 sessions (a new connection per message) spread
#          over the front ends (one mailbench per front end, in parallel;
#          the rate is all messages over the slowest one's time), 1 KiB and
#          64 KiB to one user, and 1 KiB to a user per front end; with the
#          CPU the postgres processes and the front ends used meanwhile (%
#          of one core);
#   IMAP   APPEND (pipelined, one session) of N messages, then FETCH 1:*
#          metadata, UID SEARCH TEXT and BODY on them, read through the last front
#          end (another host than the one that appended, when there are two);
#   PUSH   SMTP 250 on front end 1 -> EXISTS in an IDLE session on the last
#          front end.
#
#   bench/pg.sh [SMTP_MESSAGES] [IMAP_MESSAGES]     (default 5000 20000)
#
# PG_STATS=1 also records what statements each SMTP run made on PostgreSQL
# ($BENCH_DIR/*.statements); MM= and MB= run other builds (SKIP_BUILD=1).
# CONFIGS= picks configurations (default "sqlite 1 2 3": SQLite, then 1, 2
# and 3 PostgreSQL front ends); IMAP_N=0 runs the SMTP rows only. The
# writer's batch sizes (jobs per PostgreSQL commit) are in each front
# end's log ($BENCH_DIR/*-fe*.log, `RUST_LOG=...` as MM_LOG=).
#
# Prints one JSON line per measurement ($BENCH_DIR/results.jsonl) and a table.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORKSPACE=$(cd "$HERE/.." && pwd)
SLOT=$(( $(printf %s "$WORKSPACE" | cksum | cut -d' ' -f1) % 20 ))
BENCH_DIR=${BENCH_DIR:-/tmp/minimail-pg-bench-$SLOT}
PORT_BASE=${PORT_BASE:-$((13000 + SLOT * 100))}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORKSPACE/target-bench}
SMTP_N=${1:-5000}
IMAP_N=${2:-20000}
CONFIGS=${CONFIGS:-sqlite 1 2 3}
MM_LOG=${MM_LOG:-warn}
MM=${MM:-$CARGO_TARGET_DIR/release/minimail}
MB=${MB:-$CARGO_TARGET_DIR/release/mailbench}
RESULTS=$BENCH_DIR/results.jsonl
PG_PORT=$PORT_BASE
PASSWORD=bench-pw
DOMAIN=bench.test

log() { printf '\n== %s\n' "$*" >&2; }

pg_bindir() {
    local d
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$d" ] && [ -x "$d/initdb" ] || { echo "pg.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
    echo "$d"
}
PGBIN=$(pg_bindir)
PGUSER_OS=
if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then PGUSER_OS=postgres; else PGUSER_OS=nobody; fi
fi
as_pg() { if [ -n "$PGUSER_OS" ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi; }

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -f "$BENCH_DIR/pg/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$BENCH_DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT INT TERM

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "pg.sh: nothing listens on $1:$2; see $BENCH_DIR/*.log" >&2
    return 1
}

# CPU seconds (user+system) used so far by the running processes named $1,
# or (pg) by our cluster's postmaster and its children.
cpu_of() {
    local ticks pm=
    ticks=$(getconf CLK_TCK)
    if [ "$1" = pg ]; then pm=$(head -1 "$BENCH_DIR/pg/postmaster.pid" 2>/dev/null || echo none); fi
    for d in /proc/[0-9]*; do
        if [ -n "$pm" ]; then
            [ "${d#/proc/}" = "$pm" ] || [ "$(awk '{sub(/^.*\) /, ""); print $2}' "$d/stat" 2>/dev/null)" = "$pm" ] || continue
        else
            [ "$(cat "$d/comm" 2>/dev/null)" = "$1" ] || continue
        fi
        cat "$d/stat" 2>/dev/null
    done | awk -v t="$ticks" '{ sub(/^.*\) /, ""); s += $12 + $13 } END {printf "%.2f", s / t}'
}

start_pg() {
    log "PostgreSQL ($PGBIN) on 127.0.0.1:$PG_PORT"
    mkdir -p "$BENCH_DIR/pg" "$BENCH_DIR/pgsock"
    if [ -n "$PGUSER_OS" ]; then chown -R "$PGUSER_OS" "$BENCH_DIR/pg" "$BENCH_DIR/pgsock"; fi
    as_pg "$PGBIN/initdb" -D "$BENCH_DIR/pg" -U minimail --auth=trust -E UTF8 --no-locale >/dev/null
    as_pg "$PGBIN/pg_ctl" -D "$BENCH_DIR/pg" -l "$BENCH_DIR/pg/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $BENCH_DIR/pgsock -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB -c max_connections=200 ${PG_STATS:+-c shared_preload_libraries=pg_stat_statements}" \
        start >/dev/null
}

createdb() { as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U minimail "$1"; }
psql_on() { as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U minimail -X -q "$@"; }

# With PG_STATS=1: the statements each SMTP run made (pg_stat_statements),
# most called first, in $BENCH_DIR/NAME-WORK.statements (round trips per
# delivery: calls / messages).
stats_reset() { if [ -n "${PG_STATS:-}" ] && [ -n "$1" ]; then psql_on -d "$1" -c 'SELECT pg_stat_statements_reset()' >/dev/null; fi; }
stats_dump() {
    if [ -n "${PG_STATS:-}" ] && [ -n "$1" ]; then
        psql_on -d "$1" -c "SELECT calls, round(total_exec_time::numeric, 1) AS ms, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
            FROM pg_stat_statements ORDER BY calls DESC LIMIT 25" >"$BENCH_DIR/$2.statements"
    fi
}

# start_frontends NAME DB K: K front ends on one store; their pids in FE_PIDS.
FE_PIDS=()
start_frontends() {
    local name=$1 db=$2 k=$3 i ip
    FE_PIDS=()
    for i in $(seq 1 "$k"); do
        ip=127.0.0.$((i + 1))
        RUST_LOG=$MM_LOG "$MM" up --smtp "$ip:$((PORT_BASE + 10 + i))" --imap "$ip:$((PORT_BASE + 20 + i))" \
            --submission "$ip:0" --sieve "$ip:0" --db "$db" --domain "$DOMAIN" --no-outbound \
            --max-connections 2000 --max-per-ip 0 --allow-plaintext-auth >"$BENCH_DIR/$name-fe$i.log" 2>&1 &
        FE_PIDS+=("$!")
        pids+=("$!")
    done
    for i in $(seq 1 "$k"); do wait_port "127.0.0.$((i + 1))" "$((PORT_BASE + 20 + i))"; done
}
stop_frontends() {
    for p in "${FE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    FE_PIDS=()
}

# smtp_spread NAME K SIZE N [WORK]: 16 sessions over K front ends, all
# to load@; with WORK (a name for the row), front end i's to load<i>@
# (different users: their mailboxes' locks are not shared).
smtp_spread() {
    local name=$1 k=$2 size=$3 n=$4 work=${5:-} i s m to outs=() pg0 fe0 t0 t1
    stats_reset "${PGDB:-}"
    pg0=$(cpu_of pg); fe0=$(cpu_of "$(basename "$MM" | cut -c1-15)"); t0=$(date +%s.%N)
    for i in $(seq 1 "$k"); do
        s=$((16 / k + (i <= 16 % k ? 1 : 0)))
        m=$((n / k))
        to=load@$DOMAIN
        if [ -n "$work" ]; then to=load$i@$DOMAIN; fi
        "$MB" --json smtp --addr "127.0.0.$((i + 1)):$((PORT_BASE + 10 + i))" --sessions "$s" \
            --messages "$m" --size "$size" --to "$to" >"$BENCH_DIR/smtp-$i.json" 2>>"$BENCH_DIR/mailbench.err" &
        outs+=("$!")
    done
    for p in "${outs[@]}"; do wait "$p" || true; done
    t1=$(date +%s.%N)
    python3 - "$name" "${work:-smtp $((size / 1024))k}" "$k" "$t0" "$t1" "$pg0" "$(cpu_of pg)" "$fe0" "$(cpu_of "$(basename "$MM" | cut -c1-15)")" "$BENCH_DIR"/smtp-{1..3}.json <<'PY' >>"$RESULTS"
import json, os, sys
name, work, k, t0, t1, pg0, pg1, fe0, fe1 = sys.argv[1:10]
runs = [json.load(open(p)) for p in sys.argv[10:10 + int(k)] if os.path.exists(p)]
ok = sum(r["ok"] for r in runs)
secs = max(float(r["seconds"]) for r in runs)
wall = float(t1) - float(t0)
print(json.dumps({"config": name, "work": work, "rate": ok / secs, "ok": ok,
                  "failed": sum(r["failed"] for r in runs), "p99_ms": max(r["p99_ms"] for r in runs),
                  "pg_cpu_pct": 100 * (float(pg1) - float(pg0)) / wall,
                  "frontends_cpu_pct": 100 * (float(fe1) - float(fe0)) / wall}))
PY
    rm -f "$BENCH_DIR"/smtp-*.json
    stats_dump "${PGDB:-}" "$name-${work:-smtp-$((size / 1024))k}"
    tail -1 "$RESULTS" >&2
}

# record NAME WORK mailbench-args...
record() {
    local name=$1 work=$2 out
    shift 2
    if out=$("$MB" --json "$@" 2>>"$BENCH_DIR/mailbench.err"); then
        printf '{"config":"%s","work":"%s","r":%s}\n' "$name" "$work" "$out" >>"$RESULTS"
    else
        printf '{"config":"%s","work":"%s","r":{"error":true}}\n' "$name" "$work" >>"$RESULTS"
    fi
    tail -1 "$RESULTS" >&2
}

run_config() {
    local name=$1 db=$2 k=$3 last
    log "$name: $k front end(s), store $db"
    printf '%s\n' "$PASSWORD" | "$MM" user add "load@$DOMAIN" --db "$db" --password-stdin >/dev/null
    printf '%s\n' "$PASSWORD" | "$MM" user add "bench@$DOMAIN" --db "$db" --password-stdin >/dev/null
    local u
    for u in 1 2 3; do
        printf '%s\n' "$PASSWORD" | "$MM" user add "load$u@$DOMAIN" --db "$db" --password-stdin >/dev/null
    done
    start_frontends "$name" "$db" "$k"
    smtp_spread "$name" "$k" 1024 "$SMTP_N"
    smtp_spread "$name" "$k" 1024 "$SMTP_N" "smtp 1k, user per fe"
    smtp_spread "$name" "$k" 65536 "$((SMTP_N / 4))"
    if [ "$IMAP_N" = 0 ]; then stop_frontends; return; fi
    last=127.0.0.$((k + 1)):$((PORT_BASE + 20 + k))
    local first=127.0.0.2:$((PORT_BASE + 21))
    local a=(--user "bench@$DOMAIN" --password "$PASSWORD" --mailbox Bench)
    record "$name" "append" imap --addr "$first" "${a[@]}" populate "$IMAP_N"
    sleep 2
    # What autovacuum does within a minute of a bulk load: statistics (the
    # planner otherwise guesses a mailbox of 20,000 entries at ~70 and
    # probes the text per entry instead of using the trigram indexes) and
    # the GIN indexes' pending lists merged.
    case $db in postgres*) "$PGBIN/psql" -q -d "$db" -c "VACUUM ANALYZE" ;; esac
    record "$name" "fetch-meta" imap --addr "$last" "${a[@]}" fetch-meta --repeat 5
    record "$name" "search-text" imap --addr "$last" "${a[@]}" search --repeat 5
    record "$name" "search-body" imap --addr "$last" "${a[@]}" search --key BODY --repeat 5
    record "$name" "push" e2e --smtp "127.0.0.2:$((PORT_BASE + 11))" --addr "$last" \
        --user "bench@$DOMAIN" --password "$PASSWORD" --messages 1000 --sessions 8
    stop_frontends
}

main() {
    if [ -z "${SKIP_BUILD:-}" ]; then (cd "$WORKSPACE" && cargo build --release -q -p minimail -p mailbench); fi
    if [ -f "$BENCH_DIR/pg/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$BENCH_DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$BENCH_DIR"
    mkdir -p "$BENCH_DIR"
    : >"$RESULTS"
    ulimit -n "$(ulimit -Hn)"
    start_pg
    printf 'machine: %s CPUs, load average %s, %s\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" >"$BENCH_DIR/machine.txt"
    local k
    for k in $CONFIGS; do
        if [ "$k" = sqlite ]; then run_config sqlite "$BENCH_DIR/sqlite.db" 1; continue; fi
        createdb "mail$k"
        if [ -n "${PG_STATS:-}" ]; then PGDB=mail$k; psql_on -d "$PGDB" -c 'CREATE EXTENSION pg_stat_statements' >/dev/null; fi
        run_config "pg-$k" "postgres://minimail@127.0.0.1:$PG_PORT/mail$k" "$k"
    done
    printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$BENCH_DIR/machine.txt"
    cat "$BENCH_DIR/machine.txt"
    python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
configs = []
for r in rows:
    if r["config"] not in configs:
        configs.append(r["config"])
def cell(cfg, work):
    for r in rows:
        if r["config"] == cfg and r["work"] == work:
            x = r.get("r", r)
            if x.get("error"):
                return "failed"
            if work.startswith("smtp"):
                return f'{x["rate"]:,.0f} msg/s (pg {x["pg_cpu_pct"]:.0f}%, fe {x["frontends_cpu_pct"]:.0f}%)'
            if work == "append":
                return f'{x["rate"]:,.0f} msg/s'
            if work == "push":
                return f'p50 {x.get("p50_ms", 0):.1f} ms, p99 {x.get("p99_ms", 0):.1f} ms'
            return f'p50 {x.get("p50_ms", 0):.1f} ms'
    return "-"
works = ["smtp 1k", "smtp 1k, user per fe", "smtp 64k", "append", "fetch-meta", "search-text", "search-body", "push"]
print("| work | " + " | ".join(configs) + " |")
print("| --- |" + " --- |" * len(configs))
for w in works:
    print(f"| {w} | " + " | ".join(cell(c, w) for c in configs) + " |")
PY
}

main
