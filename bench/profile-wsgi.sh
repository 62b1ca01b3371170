#!/bin/sh
# Profiles ferry's WSGI loader and ferry under wrk (what README's "Profile of the WSGI path"
# comes from): ferry serving APP (default examples/hello-wsgi) with 2 loader processes on the
# bench venv's Python, wrk -t2 -c50 for DURATION seconds (default 32), and meanwhile, one
# after the other: /proc gives ferry's and one loader's CPU time over 5 s; perf stat counts
# their syscalls over 5 s; strace -c shows the loader's syscall mix; py-spy (bench/.venv)
# samples the loader for 10 s. Then the same load on Granian, whose CPU per request is
# measured the same way.
# Needs bench/install.sh (wrk, bench/.venv with py-spy) and linux-perf; run as root.
# Usage: bench/profile-wsgi.sh [APP [DURATION]]; results in $OUT (default /tmp/ferry-wsgi-profile).
set -eu
cd "$(dirname "$0")/.."
APP=${1:-examples/hello-wsgi}
DURATION=${2:-32}
OUT=${OUT:-/tmp/ferry-wsgi-profile}
PY=bench/.venv/bin/python
PORT=${PORT:-18931}
rm -rf "$OUT" && mkdir -p "$OUT"
cargo build --release -q -p ferry
target/release/ferry start "$APP" --port "$PORT" --address 127.0.0.1 --min-instances 2 \
  --max-pool-size 2 --max-request-queue-size 0 --python "$PY" \
  --instance-registry-dir "$OUT/registry" --log-file "$OUT/ferry.log" > "$OUT/ferry.out" 2>&1 &
FERRY=$!
trap 'kill $FERRY 2>/dev/null; wait $FERRY 2>/dev/null || true' EXIT
i=0
until [ "$(pgrep -c -P $FERRY -f wsgi_loader || true)" -ge 2 ] && curl -sf "http://127.0.0.1:$PORT/" >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 300 ] || { echo "ferry did not come up: $(tail -5 "$OUT/ferry.log")"; exit 1; }
  sleep 0.1
done
LOADER=$(pgrep -P $FERRY -f wsgi_loader | head -1)
wrk -t2 -c50 -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/" > "$OUT/wrk.txt" &
WRK=$!
sleep 2
# user and system CPU ticks, and requests served so far (from ferry's status)
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
served() { target/release/ferry status --instance-registry-dir "$OUT/registry" --json 2>/dev/null |
  "$PY" -c 'import json,sys; ps=[p for g in json.load(sys.stdin)["groups"] for p in g["processes"]]; print("%d/%d" % (sum(p["processed"] for p in ps), sum(p["processed"] for p in ps if p["pid"] == int(sys.argv[1]))))' "$LOADER"; }
f0=$(ticks $FERRY); l0=$(ticks $LOADER); r0=$(served)
sleep 5
f1=$(ticks $FERRY); l1=$(ticks $LOADER); r1=$(served)
echo "over 5 s: requests served (all/this loader) $r0 -> $r1; CPU ticks (1/$(getconf CLK_TCK) s) user system: ferry $f0 -> $f1, one loader $l0 -> $l1" > "$OUT/cpu.txt"
# Syscalls in a window of their own (tracing them costs CPU).
s0=$(served)
perf stat -e raw_syscalls:sys_enter -p "$LOADER" -o "$OUT/perf-loader.txt" -- sleep 5 &
perf stat -e raw_syscalls:sys_enter -p "$FERRY" -o "$OUT/perf-ferry.txt" -- sleep 5
wait $!
s1=$(served)
echo "perf window: requests served (all/this loader) $s0 -> $s1" >> "$OUT/cpu.txt"
timeout -s INT 2 strace -c -p "$LOADER" -o "$OUT/strace-loader.txt" 2>/dev/null || true
bench/.venv/bin/py-spy record --pid "$LOADER" --duration 10 --rate 500 --format raw \
  --output "$OUT/py-spy.txt" --nonblocking > "$OUT/py-spy.log" 2>&1 || true
wait $WRK
cat "$OUT/cpu.txt"; grep -h "sys_enter" "$OUT"/perf-*.txt; grep -E "Requests/sec|99%" "$OUT/wrk.txt"

# The same load on Granian (2 workers, the same app and Python): CPU per request of all its
# processes, for comparison.
kill $FERRY; wait $FERRY 2>/dev/null || true
GPORT=$((PORT + 1))
(cd "$APP" && exec "$OLDPWD/bench/.venv/bin/granian" --interface wsgi --host 127.0.0.1 --port "$GPORT" \
  --workers 2 --no-ws passenger_wsgi:application) > "$OUT/granian.log" 2>&1 &
GRANIAN=$!
trap 'kill $GRANIAN 2>/dev/null; wait $GRANIAN 2>/dev/null || true' EXIT
i=0
until [ "$(pgrep -c -P $GRANIAN || true)" -ge 2 ] && curl -sf "http://127.0.0.1:$GPORT/" >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 300 ] || { echo "granian did not come up: $(tail -5 "$OUT/granian.log")"; exit 1; }
  sleep 0.1
done
all_ticks() { for p in $GRANIAN $(pgrep -P $GRANIAN); do awk '{print $14, $15}' "/proc/$p/stat"; done |
  awk '{u += $1; s += $2} END {print u, s}'; }
wrk -t2 -c50 -d9s --latency "http://127.0.0.1:$GPORT/" > "$OUT/wrk-granian.txt" &
WRK=$!
sleep 2
g0=$(all_ticks); sleep 5; g1=$(all_ticks)
wait $WRK
echo "granian: CPU ticks user system $g0 -> $g1 over 5 s; $(grep Requests/sec "$OUT/wrk-granian.txt")" | tee "$OUT/granian-cpu.txt"
