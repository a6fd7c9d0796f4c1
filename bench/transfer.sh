#!/usr/bin/env bash
# transfer.sh: the figures of `minimail import` and `minimail backup`
# (issue 20), printed, never asserted:
#   1. import rate and peak RSS of an N-message mbox (default 100,000,
#      4 KiB each, random flags and keywords), and of the same mail as a
#      Maildir written by Dovecot (doveadm import from the mbox, when
#      Dovecot is installed; else by `minimail export`);
#   2. backup time of the resulting store while 16 SMTP sessions deliver
#      (mailbench smtp), and that the copy passes `minimail store check`.
# Usage: bench/transfer.sh [N]. Work files in $BENCH_DIR (default
# /tmp/minimail-transfer-bench), removed at the start.
set -euo pipefail
N=${1:-100000}
HERE=$(cd "$(dirname "$0")" && pwd)
WORKSPACE=$(cd "$HERE/.." && pwd)
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORKSPACE/target}
BENCH_DIR=${BENCH_DIR:-/tmp/minimail-transfer-bench}
MM=$CARGO_TARGET_DIR/release/minimail
MB=$CARGO_TARGET_DIR/release/mailbench
(cd "$WORKSPACE" && CARGO_INCREMENTAL=0 cargo build --release -q -p minimail -p mailbench)
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"

python3 "$HERE/gen_mbox.py" "$N" 20 > big.mbox
echo "mbox: $N messages, $(du -m big.mbox | cut -f1) MiB"

import_run() { # label args...
    local label=$1; shift
    printf 'pw\n' | "$MM" user add bench@localhost --db "$label.db" --password-stdin >/dev/null
    /usr/bin/time -f "%e s elapsed, peak RSS %M KiB" -o "$label.time" \
        env RUST_LOG=warn "$MM" import bench@localhost "$@" --db "$label.db" | tail -1
    echo "$label: $(cat "$label.time")"
}
import_run mbox mbox big.mbox

# The same mail in a Maildir written by Dovecot (or by us).
if command -v doveadm >/dev/null && command -v dovecot >/dev/null; then
    D=$BENCH_DIR/dovecot; mkdir -p "$D"/{run,state,home}
    uid=$(id -u); [ "$uid" = 0 ] && uid=65534
    echo "b:{PLAIN}x:$uid:$uid::$D/home" > "$D/users"
    iu=dovecot; lu=dovenull
    [ "$(id -u)" != 0 ] && iu=$(id -un) && lu=$(id -un)
    cat > "$D/dovecot.conf" <<CONF
base_dir = $D/run
state_dir = $D/state
log_path = $D/dovecot.log
instance_name = minimail-transfer-bench
protocols =
ssl = no
default_internal_user = $iu
default_login_user = $lu
first_valid_uid = 1
mail_location = maildir:$D/Maildir
passdb {
  driver = passwd-file
  args = $D/users
}
userdb {
  driver = passwd-file
  args = $D/users
}
CONF
    [ "$(id -u)" = 0 ] && chown -R "$uid:$uid" "$D" && chmod o+rx "$BENCH_DIR" && chmod o+r big.mbox
    dovecot -c "$D/dovecot.conf" </dev/null >/dev/null 2>&1
    trap 'dovecot -c "$D/dovecot.conf" stop 2>/dev/null || true' EXIT
    # Dovecot dot-locks the mbox: its directory must be writable to it.
    mkdir -p mboxroot && ln big.mbox mboxroot/big.mbox
    [ "$(id -u)" = 0 ] && chown -R "$uid:$uid" mboxroot
    t=$(date +%s.%N)
    doveadm -c "$D/dovecot.conf" import -u b "mbox:$BENCH_DIR/mboxroot:INBOX=$BENCH_DIR/mboxroot/big.mbox" "" all
    echo "doveadm import of the mbox into Dovecot's Maildir: $(python3 -c "import time;print(round(time.time()-$t,1))") s"
    dovecot -c "$D/dovecot.conf" stop
    trap - EXIT
    MAILDIR=$D/Maildir
else
    printf 'pw\n' | "$MM" user add bench@localhost --db export.db --password-stdin >/dev/null
    "$MM" import bench@localhost mbox big.mbox --db export.db >/dev/null
    "$MM" export bench@localhost maildir md --db export.db >/dev/null
    MAILDIR=$BENCH_DIR/md
    echo "(no Dovecot: the Maildir is minimail's export)"
fi
import_run maildir maildir "$MAILDIR"
echo "store: $(du -m mbox.db | cut -f1) MiB"

# Backup of the mbox store while 16 SMTP sessions deliver.
RUST_LOG=warn "$MM" up --smtp 127.0.0.1:12271 --imap 127.0.0.1:0 --submission 127.0.0.1:0 --sieve 127.0.0.1:0 \
    --db mbox.db --no-outbound --no-tls 2>up.log &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/12271) 2>/dev/null && break
    sleep 0.1
done
"$MB" smtp --addr 127.0.0.1:12271 --sessions 16 --messages 1000000 --size 4096 \
    --from bench@s.test --to bench@localhost >load.out 2>&1 &
load=$!
sleep 3
"$MM" backup backup.db --db mbox.db
kill "$load" 2>/dev/null || true
wait "$load" 2>/dev/null || true
kill "$pid"; wait "$pid" 2>/dev/null || true
"$MM" store check --db backup.db
echo "backup: $(du -m backup.db | cut -f1) MiB"
