#!/usr/bin/env bash
# compare.sh: minimail side by side with Debian's Postfix and Dovecot, on one
# machine in one run, driven by the same load tool (mailbench).
#
#   bench/compare.sh [--quick] [--scale] [--no-idle] [--no-outbound] [--outbound-only] [--compress-only] [--ext-only] [--body-only] [--meta-only] [--smtp-only] [--keep]
#
# Installs postfix (which ships smtp-source and smtp-sink) and dovecot-imapd
# with apt-get if missing, configures them on loopback ports in a private
# directory ($BENCH_DIR, default /tmp/minimail-bench-N, N and the ports
# offset by N*1000 derived from the checkout path; PORT_OFFSET overrides) -- nothing in /etc is
# changed and systemd is not used; the daemons are started directly, as in
# protocol-tests/scripts/peers.sh -- builds minimail and mailbench (release),
# and runs:
#   SMTP  mailbench smtp, 16 sessions, a new connection per message, 1 KiB and
#         64 KiB (and 1 KiB over one pipelining connection per session),
#         against smtp-sink (the no-storage limit), Postfix (accepting
#         into its queue, delivering to a Maildir) and minimail; smtp-source
#         -s 16 -m 5000 -l 1024 against the same three for reference.
#   E2E   SMTP 250 -> visible over IMAP (IDLE): Postfix+Dovecot vs minimail.
#   IMAP  APPEND-populated mailboxes of 2,000 and 20,000 messages: APPEND rate,
#         connect+LOGIN+SELECT, FETCH 1:* metadata, UID SEARCH TEXT, SUBJECT
#         and FROM, FETCH 1:500 BODY.PEEK[] over one connection, STORE 1:*,
#         16 sessions of random BODY.PEEK[], UID SORT (REVERSE ARRIVAL) and
#         (SUBJECT), UID THREAD REFERENCES, a QRESYNC SELECT after 100 flag
#         changes and 10 expunges: Dovecot vs minimail.
#   IDLE  10,000 IDLE connections on minimail (200 on Dovecot), push delay
#         and server RSS.
#   OUTBOUND  mailbench outbound: 10,000 messages of 4 KiB submitted for 100
#         domains (d0.test..d99.test) and delivered by the MTA to their MX
#         hosts: queue-to-remote-250 rate and per-message delay, Postfix vs
#         minimail. dnsmasq on loopback gives domain dN.test the MX host
#         mxN.test = 127.0.2.(N+1); mailbench itself is the sink, listening
#         on all 100 addresses (port $OUT_SINK_PORT). minimail (a fresh store)
#         routes by MX through that dnsmasq (--dns, --mx-port); Postfix,
#         which cannot be given a DNS server of its own, gets the same
#         addresses from a transport map (dN.test smtp:[127.0.2.(N+1)]:PORT:
#         one next hop per domain, no DNS, so 100 destinations for it too).
#         Both keep their default concurrency (Postfix: 100 smtp processes,
#         20 per destination, starting at 5; minimail: 20 connections, 4 per
#         destination). Then the same with the sink holding connections
#         until all is queued (a full queue's drain), and at a fixed
#         offered load (250 msg/s) both keep up with; minimail again with
#         Postfix's connection limits (100, 20 per destination); then the issue's
#         literal set-up, every domain's MX one address (sN.test ->
#         127.0.0.1), with mailbench's sink and then with smtp-sink -c
#         (rate only); then the RSS check: 100,000 messages queued by a
#         fresh minimail for a destination whose MX port nobody listens on.
#   COMPRESS  FETCH with and without COMPRESS=DEFLATE (RFC 4978; Dovecot's
#         imap_zlib plugin): 16 sessions and 1 session of random BODY.PEEK[]
#         and FETCH 1:* metadata, over a mailbox of 16 KiB messages of
#         random words (`populate --varied`: about 3:1 with DEFLATE, like
#         mail text), Dovecot vs minimail; with the octets that crossed the
#         socket.
#   EXT   the issue 16 extensions over big state, Dovecot vs minimail:
#         a 100,000-message mailbox (Dovecot's written as a Maildir folder,
#         minimail's APPENDed) resynchronised after 10 flag changes by
#         another session: a QRESYNC SELECT (RFC 7162) timed with its bytes,
#         and mua's cached listing (`mua list --stats`: octets received,
#         whole first, then the resync); then LIST "" "*" RETURN (STATUS
#         (MESSAGES UNSEEN)) (LIST-STATUS, RFC 5819) with the account filled
#         up to 1,000 mailboxes by ones of one message each (cold: the first
#         on a fresh connection right after they were made; then warm).
#   BODY  body FETCH over issue 21's mailbox: 5,000 messages of 4-150 KiB
#         of random words (`populate --size 4096 --max-size 153600
#         --varied`), FETCH 1:500 BODY.PEEK[] over one connection (ms and
#         MB/s) and 16 sessions of random UID FETCH n BODY.PEEK[], Dovecot
#         vs minimail; then minimail's RSS (sampled every 0.1 s) while one
#         connection fetches every message of a 100,000-message mailbox
#         (2 KiB each) with BODY.PEEK[].
#   META  (--meta-only; issue 21) header SEARCH, FETCH metadata and STORE at
#         5,000, 20,000 and 100,000 messages: Dovecot's mailbox written as a
#         Maildir folder (`mailbench maildir`), minimail's APPENDed; then for
#         each: connect+LOGIN+SELECT, a SELECT after another session's 10
#         flag changes, one APPEND and one expunge (`select-changed`),
#         FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE), UID
#         SEARCH SUBJECT / FROM (warm p50, and the first search of each
#         session), STORE 1:* +/-FLAGS; first of all, a SUBJECT search
#         sent right after the mailbox's first SELECT (minimail: its
#         header cache's fill for the mailbox then still running).
#         META_SIZES overrides the sizes.
#   SMTP-ONLY  (--smtp-only; issue 21) durable accept against the no-storage
#         limit: smtp-sink and minimail only (no Postfix, no Dovecot), back
#         to back, SMTP_ROUNDS times (default 3): per round smtp-source -s 16
#         -m N -l 1024 and -l 65536 (a new connection per message) and
#         mailbench smtp 1 KiB / 64 KiB, first against smtp-sink, then
#         against minimail (settled in between); then each round's
#         minimail / smtp-sink ratios and their range (bench/table.py).
#         SMTP_N / SMTP_BIG_N change the message counts.
# --scale adds minimail alone at 1k/10k/100k messages, and Dovecot at 100k
# (written as a Maildir folder rather than APPENDed); --quick shrinks every
# count (a smoke run: 2,000 outbound messages, 10,000 for the RSS check);
# --outbound-only runs only OUTBOUND, --no-outbound all but it;
# --compress-only runs only COMPRESS; --ext-only runs only EXT (not run
# otherwise: the 100,000-message mailbox takes minutes); --body-only runs
# only BODY (not run otherwise; BODY_MSGS, BODY_RSS_N change its counts);
# --meta-only runs only META (not run otherwise); --keep leaves the servers running
# afterwards.
# Results: $BENCH_DIR/results.jsonl and the table printed at the end
# (bench/table.py). Every run starts from empty data directories and stops
# what it started, also on failure or Ctrl-C.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORKSPACE=$(cd "$HERE/.." && pwd)
# Several checkouts on one machine (engineers' worktrees) must not share data
# or ports: both derive from the checkout's path unless given.
WS_SLOT=$(( $(printf %s "$WORKSPACE" | cksum | cut -d' ' -f1) % 20 ))
BENCH_DIR=${BENCH_DIR:-/tmp/minimail-bench-$WS_SLOT}
PORT_OFFSET=${PORT_OFFSET:-$((WS_SLOT * 1000))}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORKSPACE/target-bench}
SINK_PORT=${SINK_PORT:-$((12025 + PORT_OFFSET))}
POSTFIX_PORT=${POSTFIX_PORT:-$((12026 + PORT_OFFSET))}
DOVECOT_PORT=${DOVECOT_PORT:-$((12143 + PORT_OFFSET))}
MM_SMTP_PORT=${MM_SMTP_PORT:-$((12525 + PORT_OFFSET))}
MM_IMAP_PORT=${MM_IMAP_PORT:-$((12144 + PORT_OFFSET))}
MM_SUB_PORT=${MM_SUB_PORT:-$((12586 + PORT_OFFSET))}
# Outbound: the sink's port (on the MX addresses $OUT_NET.1-100, and on
# 127.0.0.1); a port nothing listens on (the RSS check); dnsmasq; the ports
# (smtp, imap, submission) of the two minimail instances of the outbound
# runs and of the RSS check.
OUT_SINK_PORT=${OUT_SINK_PORT:-$((12030 + PORT_OFFSET))}
OUT_DEAD_PORT=${OUT_DEAD_PORT:-$((12039 + PORT_OFFSET))}
DNS_PORT=${DNS_PORT:-$((12053 + PORT_OFFSET))}
MM_OUT_PORTS=${MM_OUT_PORTS:-"$((12526 + PORT_OFFSET)) $((12145 + PORT_OFFSET)) $((12587 + PORT_OFFSET))"}
MM_RSS_PORTS=${MM_RSS_PORTS:-"$((12527 + PORT_OFFSET)) $((12146 + PORT_OFFSET)) $((12588 + PORT_OFFSET))"}
OUT_NET=127.0.2
OUT_DOMAINS=100
# The offered load (msg/s) of the paced outbound run, well below what either
# server accepts on a small busy machine; seconds of watching after the RSS
# check's last message (past minimail's first retry, 60 s after the first).
OUT_RATE=${OUT_RATE:-250}
RSS_LINGER=${RSS_LINGER:-90}
DOMAIN=bench.test
USER_ADDR=bench@$DOMAIN
LOAD_ADDR=load@$DOMAIN
PASSWORD=bench-pw
MAIL_UID=$(id -u nobody)
MAIL_GID=$(id -g nobody)

QUICK= SCALE= IDLE=1 KEEP= INBOUND=1 OUTBOUND=1 COMPRESS=1 EXT= BODY= META= SMTP_ONLY=
for a in "$@"; do
    case "$a" in
        --quick) QUICK=1 ;;
        --scale) SCALE=1 ;;
        --no-idle) IDLE= ;;
        --no-outbound) OUTBOUND= ;;
        --outbound-only) INBOUND= COMPRESS= ;;
        --compress-only) INBOUND= OUTBOUND= ;;
        --ext-only) INBOUND= OUTBOUND= COMPRESS= EXT=1 ;;
        --body-only) INBOUND= OUTBOUND= COMPRESS= BODY=1 ;;
        --meta-only) INBOUND= OUTBOUND= COMPRESS= META=1 ;;
        --smtp-only) INBOUND= OUTBOUND= COMPRESS= SMTP_ONLY=1 ;;
        --keep) KEEP=1 ;;
        *) echo "usage: $0 [--quick] [--scale] [--no-idle] [--no-outbound] [--outbound-only] [--compress-only] [--ext-only] [--body-only] [--meta-only] [--smtp-only] [--keep]" >&2; exit 2 ;;
    esac
done
if [ -n "$QUICK" ]; then
    SMTP_N=${SMTP_N:-500} SMTP_BIG_N=${SMTP_BIG_N:-200} E2E_N=300 SIZES="200 1000" BODY_N=2000 IDLE_N=500 IDLE_PEER_N=50 SCALE_SIZES="100 1000"
    OUT_N=2000 RSS_N=10000 COMPRESS_N=200 EXT_BOXES=100 EXT_N=2000 META_SIZES=${META_SIZES:-"500 2000"}
    BODY_MSGS=${BODY_MSGS:-1000} BODY_RSS_N=${BODY_RSS_N:-10000}
else
    SMTP_N=${SMTP_N:-5000} SMTP_BIG_N=${SMTP_BIG_N:-2000} E2E_N=2000 SIZES="2000 20000" BODY_N=20000 IDLE_N=${IDLE_N:-10000} IDLE_PEER_N=200 SCALE_SIZES="1000 10000 100000"
    OUT_N=${OUT_N:-10000} RSS_N=${RSS_N:-100000} COMPRESS_N=${COMPRESS_N:-2000}
    EXT_BOXES=${EXT_BOXES:-1000} EXT_N=${EXT_N:-100000}
    BODY_MSGS=${BODY_MSGS:-5000} BODY_RSS_N=${BODY_RSS_N:-100000}
    META_SIZES=${META_SIZES:-"5000 20000 100000"}
fi
SMTP_ROUNDS=${SMTP_ROUNDS:-3}
RESULTS=$BENCH_DIR/results.jsonl
MB=${MB:-$CARGO_TARGET_DIR/release/mailbench}
MM=${MM:-$CARGO_TARGET_DIR/release/minimail}
MUA=${MUA:-$CARGO_TARGET_DIR/release/mua}

log() { printf '\n== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- lifecycle
stop_all() {
    postfix -c "$BENCH_DIR/postfix/etc" stop >/dev/null 2>&1 || true
    for pidfile in "$BENCH_DIR/dovecot/run/master.pid" "$BENCH_DIR/sink.pid" "$BENCH_DIR/minimail.pid" \
        "$BENCH_DIR/dnsmasq.pid" "$BENCH_DIR/out-sink.pid" "$BENCH_DIR/minimail-out.pid" \
        "$BENCH_DIR/minimail-rss.pid"; do
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
    sleep 0.5
}

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "compare.sh: nothing listens on port $1; see $BENCH_DIR/*.log" >&2
    return 1
}

install_peers() {
    if ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null ||
        ! command -v smtp-source >/dev/null; then
        log "installing postfix and dovecot-imapd (apt-get)"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix dovecot-imapd
    fi
    # OUTBOUND: dnsmasq serves the MX records, sqlite3 reads minimail's queue.
    if [ -n "$OUTBOUND" ] && { [ ! -x /usr/sbin/dnsmasq ] || ! command -v sqlite3 >/dev/null; }; then
        log "installing dnsmasq-base and sqlite3 (apt-get)"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q dnsmasq-base sqlite3
    fi
}

build() {
    # NO_BUILD=1: use the binaries MM, MB and MUA as they are (e.g. a
    # baseline build kept aside for a before/after run).
    if [ -n "${NO_BUILD:-}" ]; then return; fi
    log "building minimail and mailbench (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$WORKSPACE" && cargo build --release -q -p minimail -p mailbench -p mua)
}

configure() {
    rm -rf "$BENCH_DIR"
    mkdir -p "$BENCH_DIR"/{postfix/etc,postfix/spool,postfix/data,vmail,dovecot/run,dovecot/state}
    chown -R "$MAIL_UID:$MAIL_GID" "$BENCH_DIR/vmail"
    chown postfix "$BENCH_DIR/postfix/data"
    local pf=$BENCH_DIR/postfix dc=$BENCH_DIR/dovecot
    # Postfix: virtual mailboxes in Maildirs that Dovecot reads.
    cat >"$pf/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/spool
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.$DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $BENCH_DIR/vmail
virtual_mailbox_maps = texthash:$pf/etc/vmailbox
virtual_uid_maps = static:$MAIL_UID
virtual_gid_maps = static:$MAIL_GID
alias_maps =
alias_database =
message_size_limit = 10240000
maillog_file = $pf/postfix.log
maillog_file_prefixes = $BENCH_DIR
biff = no
default_transport = error:no relaying from the bench instance
transport_maps = texthash:$pf/etc/transport
EOF
    printf '%s bench/Maildir/\n%s load/Maildir/\n' "$USER_ADDR" "$LOAD_ADDR" >"$pf/etc/vmailbox"
    # Outbound: dN.test to its own MX address, sN.test all to 127.0.0.1.
    local i
    for i in $(seq 0 $((OUT_DOMAINS - 1))); do
        printf 'd%s.test smtp:[%s.%s]:%s\ns%s.test smtp:[127.0.0.1]:%s\n' \
            "$i" "$OUT_NET" $((i + 1)) "$OUT_SINK_PORT" "$i" "$OUT_SINK_PORT"
    done >"$pf/etc/transport"
    cat >"$pf/etc/master.cf" <<EOF
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
    # Dovecot: the same Maildirs; INBOX is ~/Maildir, folders below it.
    printf '%s:{PLAIN}%s:%s:%s::%s\n' "$USER_ADDR" "$PASSWORD" "$MAIL_UID" "$MAIL_GID" "$BENCH_DIR/vmail/bench" >"$dc/users"
    cat >"$dc/dovecot.conf" <<EOF
base_dir = $dc/run
state_dir = $dc/state
instance_name = minimail-bench
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $dc/dovecot.log
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir:LAYOUT=fs
mailbox_idle_check_interval = 1 secs
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dc/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dc/users
}
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_PORT
  }
  inet_listener imaps {
    port = 0
  }
  process_limit = 1024
}
service imap {
  process_limit = 1024
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
protocol imap {
  mail_max_userip_connections = 1000
  # COMPRESS=DEFLATE (RFC 4978), for the COMPRESS runs.
  mail_plugins = \$mail_plugins imap_zlib
}
EOF
    printf '%s\n' "$PASSWORD" | "$MM" user add "$USER_ADDR" --db "$BENCH_DIR/minimail.db" --password-stdin >/dev/null
    printf '%s\n' "$PASSWORD" | "$MM" user add "$LOAD_ADDR" --db "$BENCH_DIR/minimail.db" --password-stdin >/dev/null
}

start_all() {
    ulimit -n "$(ulimit -Hn)"
    postfix -c "$BENCH_DIR/postfix/etc" check
    if [ -n "$SMTP_ONLY" ]; then
        log "starting smtp-sink :$SINK_PORT, minimail :$MM_SMTP_PORT"
        smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1024 >"$BENCH_DIR/sink.log" 2>&1 &
        echo $! >"$BENCH_DIR/sink.pid"
        start_minimail
        wait_port "$SINK_PORT"
        wait_port "$MM_SMTP_PORT"
        return
    fi
    if [ -z "$INBOUND" ] && [ -z "$COMPRESS" ] && [ -z "$EXT" ] && [ -z "$BODY" ] && [ -z "$META" ]; then
        log "starting Postfix :$POSTFIX_PORT"
        postfix -c "$BENCH_DIR/postfix/etc" start >/dev/null 2>&1
        wait_port "$POSTFIX_PORT"
        return
    fi
    log "starting smtp-sink :$SINK_PORT, Postfix :$POSTFIX_PORT, Dovecot :$DOVECOT_PORT, minimail :$MM_SMTP_PORT/:$MM_IMAP_PORT"
    smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1024 >"$BENCH_DIR/sink.log" 2>&1 &
    echo $! >"$BENCH_DIR/sink.pid"
    postfix -c "$BENCH_DIR/postfix/etc" start >/dev/null 2>&1
    dovecot -c "$BENCH_DIR/dovecot/dovecot.conf" </dev/null >/dev/null 2>&1
    start_minimail
    for p in "$SINK_PORT" "$POSTFIX_PORT" "$DOVECOT_PORT" "$MM_SMTP_PORT" "$MM_IMAP_PORT"; do
        wait_port "$p"
    done
}

start_minimail() {
    RUST_LOG=warn "$MM" up --smtp "127.0.0.1:$MM_SMTP_PORT" --imap "127.0.0.1:$MM_IMAP_PORT" \
        --submission "127.0.0.1:$MM_SUB_PORT" --sieve 127.0.0.1:0 --db "$BENCH_DIR/minimail.db" --domain "$DOMAIN" \
        --max-connections 12000 >"$BENCH_DIR/minimail.log" 2>&1 &
    echo $! >"$BENCH_DIR/minimail.pid"
}

postfix_drain() {
    # Wait until Postfix has delivered everything it accepted.
    for _ in $(seq 1 600); do
        if [ -z "$(find "$BENCH_DIR/postfix/spool/"{incoming,active,deferred,maildrop} -type f 2>/dev/null | head -1)" ]; then
            return 0
        fi
        sleep 0.5
    done
    echo "compare.sh: Postfix queue did not drain" >&2
}

# mm_settle [PID]: wait (at most 60 s) until minimail has finished its background
# work -- the search indexing it defers after a burst -- i.e. until its CPU
# use stays under 5% of a core for half a second. The counterpart of
# postfix_drain: each server starts a workload with its earlier one done.
mm_settle() {
    local pid ticks prev now quiet=0
    pid=${1:-$(mm_pid)}
    ticks=$(getconf CLK_TCK)
    prev=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
    for _ in $(seq 1 600); do
        sleep 0.1
        now=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
        # Under 5% of a core over 0.1 s = under 0.005 s of CPU.
        if [ $(( (now - prev) * 1000 / ticks )) -lt 5 ]; then
            quiet=$((quiet + 1))
            if [ "$quiet" -ge 5 ]; then return 0; fi
        else
            quiet=0
        fi
        prev=$now
    done
    echo "compare.sh: minimail did not settle" >&2
}

# ------------------------------------------------------------------ running
# record SERVER WORK mailbench-args...: run mailbench --json, append a tagged line.
record() {
    local server=$1 work=$2
    shift 2
    local out
    if out=$("$MB" --json "$@" 2>>"$BENCH_DIR/mailbench.err"); then
        printf '{"server":"%s","work":"%s","r":%s}\n' "$server" "$work" "$out" >>"$RESULTS"
        printf '  %-22s %-22s %s\n' "$server" "$work" "$out" >&2
    else
        printf '{"server":"%s","work":"%s","r":{"error":true}}\n' "$server" "$work" >>"$RESULTS"
        echo "  $server $work FAILED (see $BENCH_DIR/mailbench.err)" >&2
    fi
}

# smtp_source SERVER PORT [SIZE N WORK ROUND]: wall-clock rate of smtp-source
# -s 16 -m N -l SIZE (default 1024 and SMTP_N: work "smtp-source 1k"); with
# ROUND the line carries "round" (the --smtp-only rounds).
smtp_source() {
    local t0 t1 size=${3:-1024} n=${4:-$SMTP_N} work=${5:-smtp-source 1k} round=${6:-}
    t0=$(date +%s.%N)
    if smtp-source -s 16 -m "$n" -l "$size" -f bench@localhost -t "$LOAD_ADDR" "127.0.0.1:$2" \
        >>"$BENCH_DIR/smtp-source.log" 2>&1; then
        t1=$(date +%s.%N)
        awk -v s="$1" -v w="$work" -v n="$n" -v a="$t0" -v b="$t1" -v r="$round" 'BEGIN {
            printf "{\"server\":\"%s\",\"work\":\"%s\",%s\"r\":{\"rate\":%.1f,\"seconds\":%.3f}}\n", s, w, (r == "" ? "" : "\"round\":" r ","), n / (b - a), b - a
        }' | tee -a "$RESULTS" | sed 's/^/  /' >&2
    else
        printf '{"server":"%s","work":"%s","r":{"error":true}}\n' "$1" "$work" >>"$RESULTS"
    fi
}

mm_pid() { cat "$BENCH_DIR/minimail.pid"; }

# settle SERVER: let the server finish what the last workload left behind.
settle() {
    case "$1" in
        postfix) postfix_drain ;;
        minimail*) mm_settle ;;
    esac
}

run_smtp() {
    log "SMTP: mailbench smtp (16 sessions, new connection per message) and smtp-source"
    local name port
    for pair in "smtp-sink:$SINK_PORT" "postfix:$POSTFIX_PORT" "minimail:$MM_SMTP_PORT"; do
        name=${pair%%:*} port=${pair##*:}
        local pid=()
        if [ "$name" = minimail ]; then pid=(--server-pid "$(mm_pid)"); fi
        record "$name" "smtp 1k" "${pid[@]}" smtp --addr "127.0.0.1:$port" --sessions 16 \
            --messages "$SMTP_N" --size 1024 --to "$LOAD_ADDR"
        settle "$name"
        # smtp-source right after the 1 KiB run, so both see the same store.
        smtp_source "$name" "$port"
        settle "$name"
        record "$name" "smtp 64k" "${pid[@]}" smtp --addr "127.0.0.1:$port" --sessions 16 \
            --messages "$SMTP_BIG_N" --size 65536 --to "$LOAD_ADDR"
        settle "$name"
        # As an MTA delivers a queue: one connection per session, MAIL, RCPT
        # and DATA pipelined (RFC 2920).
        record "$name" "smtp 1k pipelined" "${pid[@]}" smtp --addr "127.0.0.1:$port" \
            --sessions 16 --messages "$SMTP_N" --size 1024 --to "$LOAD_ADDR" --reuse --pipeline
        settle "$name"
    done
}

# --smtp-only: smtp-sink then minimail, back to back, SMTP_ROUNDS times.
run_smtp_rounds() {
    local round name port
    log "SMTP (--smtp-only): $SMTP_ROUNDS rounds of smtp-source and mailbench smtp, 16 sessions, new connection per message; smtp-sink then minimail"
    for round in $(seq 1 "$SMTP_ROUNDS"); do
        printf '  round %s, load average %s\n' "$round" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
        printf '{"server":"machine","work":"load","round":%s,"r":{"load":"%s"}}\n' "$round" \
            "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
        for pair in "smtp-sink:$SINK_PORT" "minimail:$MM_SMTP_PORT"; do
            name=${pair%%:*} port=${pair##*:}
            local pid=()
            if [ "$name" = minimail ]; then pid=(--server-pid "$(mm_pid)"); fi
            settle "$name"
            smtp_source "$name" "$port" 1024 "$SMTP_N" "smtp-source 1k" "$round"
            settle "$name"
            smtp_source "$name" "$port" 65536 "$SMTP_BIG_N" "smtp-source 64k" "$round"
            settle "$name"
            record_round "$round" "$name" "smtp 1k" "${pid[@]}" smtp --addr "127.0.0.1:$port" \
                --sessions 16 --messages "$SMTP_N" --size 1024 --to "$LOAD_ADDR"
            settle "$name"
            record_round "$round" "$name" "smtp 64k" "${pid[@]}" smtp --addr "127.0.0.1:$port" \
                --sessions 16 --messages "$SMTP_BIG_N" --size 65536 --to "$LOAD_ADDR"
        done
    done
}

# record_round ROUND SERVER WORK mailbench-args...: record, the line tagged with its round.
record_round() {
    local round=$1 server=$2 work=$3
    shift 3
    local out
    if out=$("$MB" --json "$@" 2>>"$BENCH_DIR/mailbench.err"); then
        printf '{"server":"%s","work":"%s","round":%s,"r":%s}\n' "$server" "$work" "$round" "$out" >>"$RESULTS"
        printf '  %-22s %-22s %s\n' "$server" "$work" "$out" >&2
    else
        printf '{"server":"%s","work":"%s","round":%s,"r":{"error":true}}\n' "$server" "$work" "$round" >>"$RESULTS"
        echo "  $server $work FAILED (see $BENCH_DIR/mailbench.err)" >&2
    fi
}

run_e2e() {
    log "E2E: SMTP 250 -> visible over IMAP IDLE"
    record "postfix+dovecot" "e2e 1k" e2e --smtp "127.0.0.1:$POSTFIX_PORT" \
        --addr "127.0.0.1:$DOVECOT_PORT" --user "$USER_ADDR" --password "$PASSWORD" \
        --messages "$E2E_N" --sessions 16
    postfix_drain
    record minimail "e2e 1k" --server-pid "$(mm_pid)" e2e --smtp "127.0.0.1:$MM_SMTP_PORT" \
        --addr "127.0.0.1:$MM_IMAP_PORT" --user "$USER_ADDR" --password "$PASSWORD" \
        --messages "$E2E_N" --sessions 16
}

# imap_suite SERVER PORT N: populate mailbox mN with N messages, then the rest.
imap_suite() {
    local name=$1 port=$2 n=$3 pid=()
    if [ "$name" != dovecot ]; then pid=(--server-pid "$(mm_pid)"); fi
    local a=(--addr "127.0.0.1:$port" --user "$USER_ADDR" --password "$PASSWORD" --mailbox "m$n")
    record "$name" "append $n" "${pid[@]}" imap "${a[@]}" populate "$n"
    # The first search right after the burst (minimail: the text not yet
    # indexed is scanned), then the warm figures once the server is idle.
    record "$name" "search-burst $n" "${pid[@]}" imap "${a[@]}" search --repeat 1
    settle "$name"
    imap_measure "$@"
}

# imap_measure SERVER PORT N: the measurements on an existing mailbox mN.
imap_measure() {
    local name=$1 port=$2 n=$3 pid=()
    if [ "$name" != dovecot ]; then pid=(--server-pid "$(mm_pid)"); fi
    local a=(--addr "127.0.0.1:$port" --user "$USER_ADDR" --password "$PASSWORD" --mailbox "m$n")
    record "$name" "select $n" "${pid[@]}" imap "${a[@]}" select --repeat 20
    record "$name" "fetch-meta $n" "${pid[@]}" imap "${a[@]}" fetch-meta --repeat 5
    record "$name" "search $n" "${pid[@]}" imap "${a[@]}" search --repeat 5
    # Header searches (issue 21): a subject word (topic 42: also 420-429,
    # 4200-4299...) and a sender (n % 97 == 7: about 1%).
    record "$name" "search-subject $n" "${pid[@]}" imap "${a[@]}" search --key SUBJECT --word "topic 42" --repeat 5
    record "$name" "search-from $n" "${pid[@]}" imap "${a[@]}" search --key FROM --word "sender7@" --repeat 5
    # Many whole messages over one connection (the bulk body transfer).
    record "$name" "bodies $n" "${pid[@]}" imap "${a[@]}" bodies --count 500 --repeat 5
    record "$name" "store $n" "${pid[@]}" imap "${a[@]}" store --repeat 3
    record "$name" "body $n" "${pid[@]}" imap "${a[@]}" body --sessions 16 --count "$BODY_N"
    # Server-side SORT and THREAD (RFC 5256), then a QRESYNC SELECT after 100
    # flag changes and 10 expunges (RFC 7162; destructive, so last).
    record "$name" "sort-arrival $n" "${pid[@]}" imap "${a[@]}" sort --criteria "REVERSE ARRIVAL"
    record "$name" "sort-subject $n" "${pid[@]}" imap "${a[@]}" sort --criteria SUBJECT
    record "$name" "thread $n" "${pid[@]}" imap "${a[@]}" thread --algorithm REFERENCES
    record "$name" "qresync $n" "${pid[@]}" imap "${a[@]}" qresync --changes 100 --expunges 10
}

run_imap() {
    for n in $SIZES; do
        log "IMAP: mailbox of $n messages"
        imap_suite dovecot "$DOVECOT_PORT" "$n"
        imap_suite minimail "$MM_IMAP_PORT" "$n"
    done
    if [ -n "$SCALE" ]; then
        for n in $SCALE_SIZES; do
            log "IMAP scaling: minimail, $n messages"
            imap_suite minimail-scale "$MM_IMAP_PORT" "$n"
        done
        # Dovecot on the biggest size too: APPENDing 100,000 messages at its
        # ~100 msg/s would take a quarter of an hour, so the same messages
        # are written as a Maildir folder (Dovecot indexes it on first
        # SELECT: the cold round of `select`).
        n=${SCALE_SIZES##* }
        log "IMAP: Dovecot, $n messages written as a Maildir folder"
        "$MB" maildir --dir "$BENCH_DIR/vmail/bench/Maildir/m$n" --count "$n" >&2
        chown -R "$MAIL_UID:$MAIL_GID" "$BENCH_DIR/vmail/bench/Maildir/m$n"
        imap_measure dovecot "$DOVECOT_PORT" "$n"
    fi
}

# run_meta: the issue 21 rows (header SEARCH, FETCH metadata, STORE) on
# mailboxes mN of each of $META_SIZES: Dovecot's written as a Maildir folder
# (it indexes it on the first SELECT, an untimed warm-up here), minimail's
# APPENDed; both hold populate's messages.
run_meta() {
    local n name port pid a
    for n in $META_SIZES; do
        log "META: $n messages (Dovecot's written as a Maildir folder, minimail's APPENDed)"
        "$MB" maildir --dir "$BENCH_DIR/vmail/bench/Maildir/m$n" --count "$n" >&2
        chown -R "$MAIL_UID:$MAIL_GID" "$BENCH_DIR/vmail/bench"
        record minimail "append $n" --server-pid "$(mm_pid)" imap --addr "127.0.0.1:$MM_IMAP_PORT" \
            --user "$USER_ADDR" --password "$PASSWORD" --mailbox "m$n" populate "$n"
        settle minimail
        for pair in "dovecot:$DOVECOT_PORT" "minimail:$MM_IMAP_PORT"; do
            name=${pair%%:*} port=${pair##*:} pid=()
            if [ "$name" = minimail ]; then pid=(--server-pid "$(mm_pid)"); fi
            a=(--addr "127.0.0.1:$port" --user "$USER_ADDR" --password "$PASSWORD" --mailbox "m$n")
            # A SUBJECT search sent right after the mailbox's first SELECT
            # (its "cold ms"): Dovecot's first SELECT indexes the new
            # Maildir folder, minimail's queues the header cache's fill.
            record "$name" "search-first $n" "${pid[@]}" imap "${a[@]}" search --key SUBJECT \
                --word "topic 42" --repeat 1 --first-select
            "$MB" imap "${a[@]}" select --repeat 1 >/dev/null 2>&1 || true
            record "$name" "select $n" "${pid[@]}" imap "${a[@]}" select --repeat 20
            record "$name" "select-changed $n" "${pid[@]}" imap "${a[@]}" select-changed \
                --changes 10 --repeat 20
            record "$name" "fetch-meta $n" "${pid[@]}" imap "${a[@]}" fetch-meta --repeat 5
            record "$name" "search-subject $n" "${pid[@]}" imap "${a[@]}" search --key SUBJECT --word "topic 42" --repeat 5
            record "$name" "search-from $n" "${pid[@]}" imap "${a[@]}" search --key FROM --word "sender7@" --repeat 5
            record "$name" "store $n" "${pid[@]}" imap "${a[@]}" store --repeat 3
            settle "$name"
        done
    done
}

# run_compress: FETCH throughput without and with COMPRESS=DEFLATE on the
# same mailbox (zN: N messages of 16 KiB of random words), Dovecot
# (imap_zlib) vs minimail.
run_compress() {
    local n=$COMPRESS_N name port pid a z flag
    log "COMPRESS: FETCH without and with COMPRESS=DEFLATE, $n messages of 16 KiB"
    for pair in "dovecot:$DOVECOT_PORT" "minimail:$MM_IMAP_PORT"; do
        name=${pair%%:*} port=${pair##*:} pid=()
        if [ "$name" = minimail ]; then pid=(--server-pid "$(mm_pid)"); fi
        a=(--addr "127.0.0.1:$port" --user "$USER_ADDR" --password "$PASSWORD" --mailbox "z$n")
        record "$name" "append z$n" "${pid[@]}" imap "${a[@]}" populate "$n" --size 16384 --varied
        settle "$name"
        for z in plain deflate; do
            flag=()
            if [ "$z" = deflate ]; then flag=(--compress); fi
            record "$name" "zbody16 $z" "${pid[@]}" imap "${a[@]}" "${flag[@]}" body \
                --sessions 16 --count "$BODY_N"
            record "$name" "zbody1 $z" "${pid[@]}" imap "${a[@]}" "${flag[@]}" body \
                --sessions 1 --count $((BODY_N / 4))
            record "$name" "zmeta $z" "${pid[@]}" imap "${a[@]}" "${flag[@]}" fetch-meta \
                --repeat 5
        done
    done
}

# mua_list SERVER PORT WORK MAILBOX: `mua list --stats` (cached listing, the
# cache in $BENCH_DIR/mua-cache/SERVER) recorded as WORK with the octets
# received and the wall time.
mua_list() {
    local name=$1 port=$2 work=$3 box=$4 t0 t1 stats
    t0=$(date +%s.%N)
    if stats=$(XDG_CACHE_HOME="$BENCH_DIR/mua-cache/$name" MUA_PASSWORD="$PASSWORD" "$MUA" \
        --imap "127.0.0.1:$port" --user "$USER_ADDR" --tls none \
        list --mailbox "$box" --limit 20 --stats 2>&1 >/dev/null); then
        t1=$(date +%s.%N)
        awk -v s="$name" -v w="$work" -v a="$t0" -v b="$t1" -v st="$stats" 'BEGIN {
            n = st; sub(/^mua: /, "", n); sub(/ .*/, "", n)
            gsub(/"/, "", st)
            printf "{\"server\":\"%s\",\"work\":\"%s\",\"r\":{\"octets\":%d,\"seconds\":%.3f,\"stats\":\"%s\"}}\n", s, w, n, b - a, st
        }' >>"$RESULTS"
        printf '  %-22s %-22s %s\n' "$name" "$work" "$stats" >&2
    else
        printf '{"server":"%s","work":"%s","r":{"error":true}}\n' "$name" "$work" >>"$RESULTS"
        echo "  $name $work FAILED: $stats" >&2
    fi
}

# run_ext: QRESYNC and mua's cached listing on an EXT_N-message mailbox,
# then LIST-STATUS over EXT_BOXES mailboxes, Dovecot vs minimail.
run_ext() {
    local n=$EXT_N name port pid a
    log "EXT: QRESYNC and mua's cache on $n messages (Dovecot's written as a Maildir folder)"
    "$MB" maildir --dir "$BENCH_DIR/vmail/bench/Maildir/q$n" --count "$n" >&2
    # (mailbench made the Maildir itself too where it was missing.)
    chown -R "$MAIL_UID:$MAIL_GID" "$BENCH_DIR/vmail/bench"
    record minimail "append q$n" --server-pid "$(mm_pid)" imap --addr "127.0.0.1:$MM_IMAP_PORT" \
        --user "$USER_ADDR" --password "$PASSWORD" --mailbox "q$n" populate "$n"
    settle minimail
    for pair in "dovecot:$DOVECOT_PORT" "minimail:$MM_IMAP_PORT"; do
        name=${pair%%:*} port=${pair##*:} pid=()
        if [ "$name" = minimail ]; then pid=(--server-pid "$(mm_pid)"); fi
        a=(--addr "127.0.0.1:$port" --user "$USER_ADDR" --password "$PASSWORD" --mailbox "q$n")
        # Dovecot indexes the new Maildir folder on its first SELECT.
        record "$name" "select q$n" "${pid[@]}" imap "${a[@]}" select --repeat 3
        mua_list "$name" "$port" "mua whole q$n" "q$n"
        mua_list "$name" "$port" "mua unchanged q$n" "q$n"
        record "$name" "qresync10 q$n" "${pid[@]}" imap "${a[@]}" qresync --changes 10 \
            --expunges 0 --repeat 5
        mua_list "$name" "$port" "mua resync q$n" "q$n"
        settle "$name"
    done
    # After the big mailbox: the accounts are filled up to EXT_BOXES
    # mailboxes in all (minimail's limit is 1,000 per account).
    log "EXT: LIST-STATUS over $EXT_BOXES mailboxes"
    for pair in "dovecot:$DOVECOT_PORT" "minimail:$MM_IMAP_PORT"; do
        name=${pair%%:*} port=${pair##*:} pid=()
        if [ "$name" = minimail ]; then pid=(--server-pid "$(mm_pid)"); fi
        record "$name" "list-status $EXT_BOXES" "${pid[@]}" imap --addr "127.0.0.1:$port" \
            --user "$USER_ADDR" --password "$PASSWORD" --mailbox ls list-status \
            --mailboxes "$EXT_BOXES" --repeat 5
        settle "$name"
    done
}

# run_body: issue 21's body FETCH rows over a mailbox of mixed sizes, Dovecot
# vs minimail, then minimail's RSS while a 100,000-message mailbox is
# fetched end to end over one connection.
run_body() {
    local n=$BODY_MSGS name port pid a
    log "BODY: FETCH BODY.PEEK[] over $n messages of 4-150 KiB"
    for pair in "dovecot:$DOVECOT_PORT" "minimail:$MM_IMAP_PORT"; do
        name=${pair%%:*} port=${pair##*:} pid=()
        if [ "$name" = minimail ]; then pid=(--server-pid "$(mm_pid)"); fi
        a=(--addr "127.0.0.1:$port" --user "$USER_ADDR" --password "$PASSWORD" --mailbox "b$n")
        record "$name" "append b$n" "${pid[@]}" imap "${a[@]}" populate "$n" --size 4096 \
            --max-size 153600 --varied
        # minimail indexes the 385 MB of text for SEARCH after the burst:
        # up to two minutes before it is quiet (settle waits one at most).
        settle "$name"
        settle "$name"
        record "$name" "bodies mixed" "${pid[@]}" imap "${a[@]}" bodies --count 500 --repeat 10
        record "$name" "body mixed" "${pid[@]}" imap "${a[@]}" body --sessions 16 --count "$BODY_N"
        record "$name" "body1 mixed" "${pid[@]}" imap "${a[@]}" body --sessions 1 --count $((BODY_N / 4))
    done
    n=$BODY_RSS_N
    log "BODY RSS: minimail, FETCH 1:$n BODY.PEEK[] over one connection"
    a=(--addr "127.0.0.1:$MM_IMAP_PORT" --user "$USER_ADDR" --password "$PASSWORD" --mailbox "r$n")
    record minimail "append r$n" --server-pid "$(mm_pid)" imap "${a[@]}" populate "$n"
    settle minimail
    # VmRSS, and RssAnon (the process's own memory, without the store
    # file's pages SQLite may map, which the kernel can drop at will).
    local mpid before samples=$BENCH_DIR/body-rss.txt watcher
    mpid=$(mm_pid)
    before=$(awk '/^(VmRSS|RssAnon):/ {printf "%.1f ", $2 / 1024}' "/proc/$mpid/status")
    : >"$samples"
    (while kill -0 "$mpid" 2>/dev/null; do
        awk '/^(VmRSS|RssAnon):/ {printf "%.1f ", $2 / 1024} END {print ""}' "/proc/$mpid/status" >>"$samples"
        sleep 0.1
    done) &
    watcher=$!
    record minimail "bodies all r$n" --server-pid "$mpid" imap "${a[@]}" bodies --count "$n" --repeat 1
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    local rss anon max_rss max_anon
    read -r rss anon <<<"$before"
    max_rss=$(awk '$1 > m {m = $1} END {print m + 0}' "$samples")
    max_anon=$(awk '$2 > m {m = $2} END {print m + 0}' "$samples")
    printf '{"server":"minimail","work":"bodies rss r%s","r":{"rss_before_mib":%s,"rss_max_mib":%s,"anon_before_mib":%s,"anon_max_mib":%s,"samples":%s}}\n' \
        "$n" "$rss" "$max_rss" "$anon" "$max_anon" "$(wc -l <"$samples")" >>"$RESULTS"
    printf '  %-22s %-22s VmRSS %s -> max %s MiB, RssAnon %s -> max %s MiB while fetching\n' minimail \
        "bodies rss r$n" "$rss" "$max_rss" "$anon" "$max_anon" >&2
}

dovecot_rss_mib() {
    ps -e -o rss=,comm= | awk '$2 ~ /^(dovecot|imap|imap-login|auth|config|log|anvil|stats)$/ {s+=$1} END {printf "%.1f", s/1024}'
}

run_idle() {
    log "IDLE: $IDLE_N connections on minimail, $IDLE_PEER_N on Dovecot"
    record minimail "idle" --server-pid "$(mm_pid)" idle --smtp "127.0.0.1:$MM_SMTP_PORT" \
        --addr "127.0.0.1:$MM_IMAP_PORT" --user "$USER_ADDR" --password "$PASSWORD" \
        --connections "$IDLE_N" --messages 5
    local before
    before=$(dovecot_rss_mib)
    record dovecot "idle" idle --smtp "127.0.0.1:$POSTFIX_PORT" \
        --addr "127.0.0.1:$DOVECOT_PORT" --user "$USER_ADDR" --password "$PASSWORD" \
        --connections "$IDLE_PEER_N" --messages 5 &
    local job=$!
    sleep 3
    printf '{"server":"dovecot","work":"idle rss","r":{"before_mib":%s,"during_mib":%s}}\n' \
        "$before" "$(dovecot_rss_mib)" >>"$RESULTS"
    wait "$job" || true
}

# ----------------------------------------------------------------- outbound
# start_dns: dnsmasq on 127.0.0.1:$DNS_PORT answering for the outbound
# domains: dN.test MX mxN.test = $OUT_NET.(N+1); sN.test MX sink.test =
# 127.0.0.1; unreachable.test MX at 127.0.0.1 (the RSS check's minimail
# reaches MX hosts on a port nothing listens on).
start_dns() {
    local args=() i
    for i in $(seq 0 $((OUT_DOMAINS - 1))); do
        args+=("--mx-host=d$i.test,mx$i.test,10" "--host-record=mx$i.test,$OUT_NET.$((i + 1))"
            "--mx-host=s$i.test,sink.test,10")
    done
    args+=("--host-record=sink.test,127.0.0.1"
        "--mx-host=unreachable.test,mx.unreachable.test,10"
        "--host-record=mx.unreachable.test,127.0.0.1")
    # --local-ttl: answers may be cached for 5 minutes, as real MX records are.
    /usr/sbin/dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --pid-file \
        --listen-address=127.0.0.1 --bind-interfaces --local=/test/ --local-ttl=300 \
        --port="$DNS_PORT" "${args[@]}" >"$BENCH_DIR/dnsmasq.log" 2>&1 &
    echo $! >"$BENCH_DIR/dnsmasq.pid"
    wait_port "$DNS_PORT"
}

# start_mm NAME "SMTP IMAP SUBMISSION" MX_PORT [FLAG...]: a minimail with a
# fresh store $BENCH_DIR/NAME.db (user $LOAD_ADDR) routing outbound mail by
# MX through our dnsmasq to port MX_PORT; its pid in NAME.pid.
start_mm() {
    local name=$1 mx_port=$3 smtp imap sub
    read -r smtp imap sub <<<"$2"
    shift 3
    rm -f "$BENCH_DIR/$name".db*
    printf '%s\n' "$PASSWORD" | "$MM" user add "$LOAD_ADDR" --db "$BENCH_DIR/$name.db" --password-stdin >/dev/null
    RUST_LOG=warn "$MM" up --smtp "127.0.0.1:$smtp" --imap "127.0.0.1:$imap" \
        --submission "127.0.0.1:$sub" --sieve 127.0.0.1:0 --db "$BENCH_DIR/$name.db" --domain "$DOMAIN" \
        --hostname "mx.$DOMAIN" --dns "127.0.0.1:$DNS_PORT" --mx-port "$mx_port" "$@" \
        >"$BENCH_DIR/$name.log" 2>&1 &
    echo $! >"$BENCH_DIR/$name.pid"
    wait_port "$sub"
}

stop_pidfile() {
    if [ -f "$1" ]; then
        kill "$(cat "$1")" 2>/dev/null || true
        rm -f "$1"
        sleep 0.5
    fi
}

# mm_queue_drain NAME: wait (at most 5 minutes) until minimail NAME's
# outbound queue is empty, then until it is idle.
mm_queue_drain() {
    local n
    for _ in $(seq 1 600); do
        n=$(sqlite3 "$BENCH_DIR/$1.db" 'SELECT count(*) FROM outq_rcpt' 2>/dev/null || echo 1)
        if [ "$n" = 0 ]; then break; fi
        sleep 0.5
    done
    mm_settle "$(cat "$BENCH_DIR/$1.pid")"
}

# outbound_pair WORK mailbench-args...: the same workload through Postfix
# (its smtpd; relaying for mynetworks), then through minimail (submission
# with AUTH PLAIN), each starting with an empty queue.
outbound_pair() {
    local work=$1
    shift
    record postfix "$work" outbound --submit "127.0.0.1:$POSTFIX_PORT" --from "$LOAD_ADDR" "$@"
    postfix_drain
    outbound_mm minimail "$work" "$@"
}

# outbound_mm SERVER WORK mailbench-args...: the workload through minimail-out.
outbound_mm() {
    local server=$1 work=$2
    shift 2
    record "$server" "$work" --server-pid "$(cat "$BENCH_DIR/minimail-out.pid")" outbound \
        --submit "127.0.0.1:${MM_OUT_PORTS##* }" --user "$LOAD_ADDR" --password "$PASSWORD" \
        --from "$LOAD_ADDR" "$@"
    mm_queue_drain minimail-out
}

run_outbound() {
    log "OUTBOUND: $OUT_N messages of 4 KiB for $OUT_DOMAINS domains, Postfix vs minimail"
    start_dns
    start_mm minimail-out "$MM_OUT_PORTS" "$OUT_SINK_PORT"
    local common=(--messages "$OUT_N" --size 4096 --domains "$OUT_DOMAINS" --sessions 16)
    local spread=(--domain-format 'd{}.test' --sink "$OUT_NET.1:$OUT_SINK_PORT" --sink-ips "$OUT_DOMAINS")
    # Submission and delivery at once; the same at a fixed offered rate both
    # keep up with (delays compare); a queue filled first, then drained.
    outbound_pair "outbound" "${common[@]}" "${spread[@]}"
    outbound_pair "outbound paced" "${common[@]}" "${spread[@]}" --rate "$OUT_RATE"
    outbound_pair "outbound held" "${common[@]}" "${spread[@]}" --hold
    # minimail with Postfix's connection limits (default_process_limit,
    # default_destination_concurrency_limit) instead of its own 20 and 4.
    stop_pidfile "$BENCH_DIR/minimail-out.pid"
    start_mm minimail-out "$MM_OUT_PORTS" "$OUT_SINK_PORT" --outbound-connections 100 --per-destination 20
    outbound_mm minimail-c100 "outbound" "${common[@]}" "${spread[@]}"
    outbound_mm minimail-c100 "outbound held" "${common[@]}" "${spread[@]}" --hold
    stop_pidfile "$BENCH_DIR/minimail-out.pid"
    start_mm minimail-out "$MM_OUT_PORTS" "$OUT_SINK_PORT"
    # The issue's literal set-up: one MX address for every domain.
    log "OUTBOUND: every domain's MX at 127.0.0.1:$OUT_SINK_PORT: mailbench's sink, then smtp-sink"
    outbound_pair "outbound one-mx" "${common[@]}" --domain-format 's{}.test' \
        --sink "127.0.0.1:$OUT_SINK_PORT"
    smtp-sink -c -u nobody "127.0.0.1:$OUT_SINK_PORT" 1024 >"$BENCH_DIR/out-sink.count" 2>&1 &
    echo $! >"$BENCH_DIR/out-sink.pid"
    wait_port "$OUT_SINK_PORT"
    outbound_pair "outbound smtp-sink" "${common[@]}" --domain-format 's{}.test' \
        --sink-counter "$BENCH_DIR/out-sink.count"
    stop_pidfile "$BENCH_DIR/out-sink.pid"
    stop_pidfile "$BENCH_DIR/minimail-out.pid"

    log "OUTBOUND RSS: $RSS_N messages queued for a destination nobody answers for (MX port $OUT_DEAD_PORT)"
    start_mm minimail-rss "$MM_RSS_PORTS" "$OUT_DEAD_PORT"
    local pid before queued
    pid=$(cat "$BENCH_DIR/minimail-rss.pid")
    before=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
    record minimail "outbound rss" --server-pid "$pid" outbound --submit "127.0.0.1:${MM_RSS_PORTS##* }" \
        --user "$LOAD_ADDR" --password "$PASSWORD" --from "$LOAD_ADDR" --messages "$RSS_N" \
        --size 4096 --domains 1 --domain-format unreachable.test --sessions 16 --linger "$RSS_LINGER"
    queued=$(sqlite3 "$BENCH_DIR/minimail-rss.db" 'SELECT count(*) FROM outq_rcpt' 2>/dev/null || echo null)
    printf '{"server":"minimail","work":"outbound rss queue","r":{"queued":%s,"rss_before_mib":%s,"store_mib":%s}}\n' \
        "$queued" "$before" "$(du -cm "$BENCH_DIR"/minimail-rss.db* | tail -1 | cut -f1)" >>"$RESULTS"
    stop_pidfile "$BENCH_DIR/minimail-rss.pid"
    stop_pidfile "$BENCH_DIR/dnsmasq.pid"
}

machine() {
    printf 'machine: %s CPUs (%s), %s MiB RAM, load average %s, %s, %s\n' "$(nproc)" \
        "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
        "$(awk '/MemTotal/ {printf "%d", $2/1024}' /proc/meminfo)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$(uname -sr)" "$(date -u '+%Y-%m-%d %H:%M UTC')"
}

main() {
    install_peers
    build
    stop_all
    configure
    if [ -z "$KEEP" ]; then trap stop_all EXIT INT TERM; fi
    start_all
    : >"$RESULTS"
    machine | tee "$BENCH_DIR/machine.txt" >&2
    if [ -n "$INBOUND" ]; then
        run_smtp
        run_e2e
        run_imap
        if [ -n "$IDLE" ]; then run_idle; fi
    fi
    if [ -n "$COMPRESS" ]; then run_compress; fi
    if [ -n "$EXT" ]; then run_ext; fi
    if [ -n "$BODY" ]; then run_body; fi
    if [ -n "$META" ]; then run_meta; fi
    if [ -n "$SMTP_ONLY" ]; then run_smtp_rounds; fi
    if [ -n "$OUTBOUND" ]; then run_outbound; fi
    printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$BENCH_DIR/machine.txt"
    echo
    cat "$BENCH_DIR/machine.txt"
    python3 "$HERE/table.py" "$RESULTS"
}

# Sourced (for debugging single steps) it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main
fi
