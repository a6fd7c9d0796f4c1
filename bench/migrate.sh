#!/usr/bin/env bash
# migrate.sh: the figures of `minimail migrate` (issue 18), printed,
# never asserted: an N-message store (default 20,000, 4 KiB each, random
# flags and keywords, imported from a generated mbox) copied into a
# private PostgreSQL cluster (initdb + pg_ctl in $BENCH_DIR on a free
# loopback port, as `postgres` when run as root): elapsed time, rate and
# peak RSS of migrate, and the sizes on both sides.
# Usage: bench/migrate.sh [N]. Work files in $BENCH_DIR (default
# /tmp/minimail-migrate-bench), removed at the start; the cluster is
# stopped at the end.
set -euo pipefail
N=${1:-20000}
HERE=$(cd "$(dirname "$0")" && pwd)
WORKSPACE=$(cd "$HERE/.." && pwd)
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORKSPACE/target}
BENCH_DIR=${BENCH_DIR:-/tmp/minimail-migrate-bench}
PROFILE=${PROFILE:-release}
MM=$CARGO_TARGET_DIR/$PROFILE/minimail
if [ "$PROFILE" = release ]; then
    (cd "$WORKSPACE" && CARGO_INCREMENTAL=0 cargo build --release -q -p minimail)
fi
PGBIN=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -1)
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"

python3 "$HERE/gen_mbox.py" "$N" 18 > big.mbox
printf 'pw\n' | "$MM" user add bench@localhost --db store.db --password-stdin >/dev/null
RUST_LOG=warn "$MM" import bench@localhost mbox big.mbox --db store.db | tail -1
echo "store: $N messages, $(du -m store.db | cut -f1) MiB (SQLite)"

# The private cluster.
RUN=()
if [ "$(id -u)" = 0 ]; then RUN=(runuser -u postgres --); fi
mkdir -p pg sock
[ "$(id -u)" = 0 ] && chown -R postgres pg sock
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${RUN[@]}" "$PGBIN/initdb" -D "$BENCH_DIR/pg/data" -U minimail --auth=trust -E UTF8 --no-locale --no-sync >/dev/null
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$BENCH_DIR/pg/data" -l "$BENCH_DIR/pg/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $BENCH_DIR/sock -c fsync=on -c synchronous_commit=on" start >/dev/null
trap '"${RUN[@]}" "$PGBIN/pg_ctl" -D "$BENCH_DIR/pg/data" -m fast -w stop >/dev/null' EXIT
"${RUN[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U minimail mail
URL=postgres://minimail@127.0.0.1:$PORT/mail

/usr/bin/time -f "migrate: %e s elapsed, peak RSS %M KiB, %U s user, %S s system" -o migrate.time \
    env RUST_LOG=warn "$MM" migrate --from "sqlite:store.db" --to "$URL" | tee migrate.out
cat migrate.time
echo "PostgreSQL database: $("${RUN[@]}" "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U minimail -At -c "SELECT pg_size_pretty(pg_database_size('mail'))" mail)"
