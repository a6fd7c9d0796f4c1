#!/bin/sh
# Run fuzz targets one after another (default: all five, 660 s each (issues 5 and 12 ask for at least 10 minutes)).
# Usage: ./run.sh [seconds] [target...]   Logs go to logs/<target>.log.
# New corpus entries go to corpus/<target>/ (git-ignored); crashes to
# artifacts/<target>/. -fork=1 with -ignore_* keeps one worker going after
# a crash so that one run reports every distinct finding.
set -u
cd "$(dirname "$0")"
secs=${1:-660}
[ $# -gt 0 ] && shift
targets=${*:-smtp_command imap_command imap_response mime_structure mime_tree}
mkdir -p logs
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -s none --debug-assertions "$t" "corpus/$t" "seeds/$t" -- \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=5 \
        -artifact_prefix="artifacts/$t/" > "logs/$t.log" 2>&1
    echo "$t: exit $?"
    # The MIME targets' stores (see src/mime.rs).
    rm -rf /dev/shm/minimail-fuzz-* "${TMPDIR:-/tmp}"/minimail-fuzz-*
done
