#!/bin/sh
# How long `ferry plan` takes on a 2-hour log of 300,000 requests (issue 16's target: well
# under a minute). Generates the log with sim/scripts/generate-access-log.py, builds the
# release binary, and times RUNS plans (wall clock and CPU, from /usr/bin/time).
#
#   bench/plan-speed.sh [RUNS]
set -eu
runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q --bin ferry --manifest-path "$root/Cargo.toml"
python3 "$root/sim/scripts/generate-access-log.py" --requests 300000 --hours 2 > "$work/access.log"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
i=1
while [ "$i" -le "$runs" ]; do
    /usr/bin/time -f "run $i: %e s wall clock, %U s user CPU, %M KiB max RSS" \
        "$root/target/release/ferry" plan "$work/access.log" --p99 1s > "$work/plan.txt"
    i=$((i + 1))
done
tail -1 "$work/plan.txt"
