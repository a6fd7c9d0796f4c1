#!/usr/bin/env bash
# peers.sh: run the protocol-tests suite against trusted servers: Debian's
# Postfix (SMTP) and Dovecot (IMAP), on loopback ports, with their own config,
# spool and mail directories under $PEERS_DIR. Nothing in /etc is changed and
# systemd is not used: the daemons are started directly.
#
#   scripts/peers.sh [all|setup|start|stop|run] [extra protocol-tests args]
#
#   setup  apt-get install postfix dovecot-imapd (if missing), write configs
#   start  start both daemons (after setup)
#   run    run the suite against them (results in $PEERS_DIR/results-*.txt)
#   outbound  run only the outbound section (results-outbound.txt)
#   stop   stop the daemons
#   all    setup, start, run, stop (the default)
#
# The outbound section needs an MTA that relays: a second Postfix instance
# ("postfix-out", own config and queue, port $OUT_SMTP_PORT) trusts loopback
# (mynetworks), routes $OUT_DOMAIN to the tool's scripted server on
# $OUTBOUND_LISTEN by a transport map, retries every second, and delivers
# reports for alice into the same Dovecot Maildirs.
#
# PEERS_STRICT=1 turns on Postfix's smtpd_forbid_bare_newline (not Debian's
# default), under which the SMTP smuggling cases pass.
# Accounts: alice@minimail.test / alice-pw and bob@minimail.test / bob-pw.
set -euo pipefail

PEERS_DIR=${PEERS_DIR:-/tmp/ptests-peers}
SMTP_PORT=${SMTP_PORT:-10025}
IMAP_PORT=${IMAP_PORT:-10143}
OUT_SMTP_PORT=${OUT_SMTP_PORT:-10026}
OUTBOUND_LISTEN=${OUTBOUND_LISTEN:-127.0.0.1:10027}
OUT_DOMAIN=${OUT_DOMAIN:-remote.test}
DOMAIN=minimail.test
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORKSPACE=$(cd "$HERE/.." && pwd)
MAIL_UID=$(id -u nobody)
MAIL_GID=$(id -g nobody)

setup() {
    if ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null; then
        apt-get update -q
        # policy-rc.d (if present) keeps the packaged services from starting;
        # we never start them through init scripts either.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix dovecot-imapd
    fi
    mkdir -p "$PEERS_DIR"/{postfix/etc,postfix/spool,postfix/data,postfix/vmail,dovecot/run,dovecot/state,dovecot/mail}
    mkdir -p "$PEERS_DIR"/postfix-out/{etc,spool,data}
    chown -R "$MAIL_UID:$MAIL_GID" "$PEERS_DIR/postfix/vmail" "$PEERS_DIR/dovecot/mail"
    chown postfix "$PEERS_DIR/postfix/data" "$PEERS_DIR/postfix-out/data"

    # ---- Postfix: its own config dir, queue and data dirs; virtual mailboxes.
    local pf=$PEERS_DIR/postfix
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
# loopback is NOT a trusted network, so the relay rules are visible
mynetworks = 192.0.2.1/32
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = $DOMAIN
# deliver straight into Dovecot's Maildirs, so mixed/ cases see the mail
virtual_mailbox_base = $PEERS_DIR/dovecot/mail
virtual_mailbox_maps = texthash:$pf/etc/vmailbox
virtual_uid_maps = static:$MAIL_UID
virtual_gid_maps = static:$MAIL_GID
alias_maps =
alias_database =
smtputf8_enable = yes
message_size_limit = 10240000
smtpd_banner = \$myhostname ESMTP
maillog_file = $pf/postfix.log
maillog_file_prefixes = $PEERS_DIR
biff = no
default_transport = error:no relaying from the test instance
EOF
    if [ -n "${PEERS_STRICT:-}" ]; then
        # The vendor's fix for "SMTP smuggling" (CVE-2023-51764).
        echo "smtpd_forbid_bare_newline = yes" >>"$pf/etc/main.cf"
        echo "smtpd_forbid_bare_newline_exclusions =" >>"$pf/etc/main.cf"
    fi
    printf 'alice@%s alice/Maildir/\nbob@%s bob/Maildir/\npostmaster@%s postmaster/Maildir/\n' "$DOMAIN" "$DOMAIN" "$DOMAIN" >"$pf/etc/vmailbox"
    cat >"$pf/etc/master.cf" <<EOF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
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

    # ---- Postfix for the outbound section: the same mailboxes, but it
    # relays for loopback and sends $OUT_DOMAIN to the tool's scripted
    # server, retrying every second (TLS client: "may", opportunistic).
    local po=$PEERS_DIR/postfix-out
    sed -e "s|^queue_directory = .*|queue_directory = $po/spool|" \
        -e "s|^data_directory = .*|data_directory = $po/data|" \
        -e "s|^maillog_file = .*|maillog_file = $po/postfix.log|" \
        -e "s|^mynetworks = .*|mynetworks = 127.0.0.0/8|" \
        "$pf/etc/main.cf" | grep -v '^smtpd_forbid_bare_newline' >"$po/etc/main.cf"
    cat >>"$po/etc/main.cf" <<EOF
transport_maps = texthash:$po/etc/transport
minimal_backoff_time = 1s
maximal_backoff_time = 1s
queue_run_delay = 1s
smtp_tls_security_level = may
EOF
    echo "$OUT_DOMAIN smtp:[${OUTBOUND_LISTEN%:*}]:${OUTBOUND_LISTEN##*:}" >"$po/etc/transport"
    sed -e "s|^127.0.0.1:$SMTP_PORT |127.0.0.1:$OUT_SMTP_PORT |" "$pf/etc/master.cf" >"$po/etc/master.cf"
    # The TLS session cache and entropy the smtp client's STARTTLS needs.
    echo "tlsmgr    unix  - - n 1000? 1 tlsmgr" >>"$po/etc/master.cf"

    # ---- Dovecot: own base/state dirs, passwd-file users, Maildir, "/" separator.
    local dc=$PEERS_DIR/dovecot
    cat >"$dc/users" <<EOF
alice@$DOMAIN:{PLAIN}alice-pw:$MAIL_UID:$MAIL_GID::$dc/mail/alice
bob@$DOMAIN:{PLAIN}bob-pw:$MAIL_UID:$MAIL_GID::$dc/mail/bob
EOF
    cat >"$dc/dovecot.conf" <<EOF
base_dir = $dc/run
state_dir = $dc/state
instance_name = ptests-dovecot
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
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
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
  mail_max_userip_connections = 100
  # COMPRESS=DEFLATE (RFC 4978), for the 4978-* cases.
  mail_plugins = \$mail_plugins imap_zlib
}
EOF
}

start() {
    postfix -c "$PEERS_DIR/postfix/etc" check
    postfix -c "$PEERS_DIR/postfix/etc" start
    postfix -c "$PEERS_DIR/postfix-out/etc" check
    postfix -c "$PEERS_DIR/postfix-out/etc" start
    dovecot -c "$PEERS_DIR/dovecot/dovecot.conf"
    for _ in $(seq 1 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null &&
            (exec 3<>"/dev/tcp/127.0.0.1/$OUT_SMTP_PORT") 2>/dev/null &&
            (exec 3<>"/dev/tcp/127.0.0.1/$IMAP_PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "peers.sh: servers did not start; see $PEERS_DIR/*/*.log" >&2
    return 1
}

stop() {
    postfix -c "$PEERS_DIR/postfix/etc" stop 2>/dev/null || true
    postfix -c "$PEERS_DIR/postfix-out/etc" stop 2>/dev/null || true
    # Dovecot 2.3 keeps no master.pid in this base_dir; ask it to stop.
    if [ -f "$PEERS_DIR/dovecot/dovecot.conf" ]; then
        dovecot -c "$PEERS_DIR/dovecot/dovecot.conf" stop 2>/dev/null || true
    fi
}

binary() {
    bin=${PROTOCOL_TESTS_BIN:-}
    if [ -z "$bin" ]; then
        (cd "$WORKSPACE" && CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORKSPACE/target-ptests} \
            cargo build -q -p protocol-tests)
        bin=${CARGO_TARGET_DIR:-$WORKSPACE/target-ptests}/debug/protocol-tests
    fi
}

# The outbound section against postfix-out (reports read from Dovecot).
outbound() {
    local bin
    binary
    "$bin" --submission "127.0.0.1:$OUT_SMTP_PORT" --imap "127.0.0.1:$IMAP_PORT" \
        --user "alice@$DOMAIN" --password alice-pw --only outbound/ \
        --outbound-listen "$OUTBOUND_LISTEN" --outbound-domain "$OUT_DOMAIN" \
        --outbound-wait 60 --known postfix "$@" | tee "$PEERS_DIR/results-outbound.txt"
}

run() {
    local bin
    binary
    local rc=0
    # postfix: smtp/ cases; dovecot: imap/ cases; both: mixed/ cases
    # (Postfix delivers into Dovecot's Maildirs).
    for peer in postfix dovecot both; do
        local args
        case "$peer" in
            postfix) args=(--smtp "127.0.0.1:$SMTP_PORT" --only smtp/ --known postfix) ;;
            dovecot) args=(--imap "127.0.0.1:$IMAP_PORT" --only imap/ --known dovecot) ;;
            both) args=(--smtp "127.0.0.1:$SMTP_PORT" --imap "127.0.0.1:$IMAP_PORT" --only mixed/
                --known postfix --known dovecot) ;;
        esac
        "$bin" "${args[@]}" --user "alice@$DOMAIN" --password alice-pw \
            --user2 "bob@$DOMAIN" --password2 bob-pw --domain "$DOMAIN" \
            "$@" | tee "$PEERS_DIR/results-$peer.txt" || rc=1
    done
    outbound "$@" || rc=1
    return $rc
}

cmd=${1:-all}
[ $# -gt 0 ] && shift
case "$cmd" in
    setup) setup ;;
    start) start ;;
    stop) stop ;;
    run) run "$@" ;;
    outbound) outbound "$@" ;;
    all)
        setup
        stop
        start
        trap stop EXIT
        run "$@"
        ;;
    *) echo "usage: $0 [all|setup|start|stop|run|outbound]" >&2; exit 2 ;;
esac
