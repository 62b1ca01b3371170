#!/usr/bin/env bash
# Compares ferry binaries (and Granian) on examples/hello-wsgi, 2 processes each, under
# `wrk -t2 -c50`, in interleaved rounds so a busy machine skews them alike:
#
#   bench/compare-wsgi.sh NAME=FERRY_BINARY... [granian]
#   ROUNDS=3 DURATION=8 APP=examples/hello-wsgi bench/compare-wsgi.sh \
#     main=/tmp/ferry-main new=target/release/ferry granian
#
# Prints one line per run (round, name, req/s, p99, CPU per request of the server's own
# process and of its children: ferry's proxy and its loaders, Granian's main process and
# its workers, from /proc while wrk runs) and, at the end, each one's ranges.
# Needs wrk and bench/.venv (bench/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
APP=${APP:-examples/hello-wsgi}
PY=bench/.venv/bin/python
PORT=${PORT:-18951}
OUT=${OUT:-$(mktemp -d /tmp/ferry-compare-wsgi.XXXXXX)}
mkdir -p "$OUT"
SERVER=""
trap '[ -z "$SERVER" ] || { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }' EXIT

wait_up() {
  local i=0
  until curl -sf "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && [ "$(pgrep -c -P "$SERVER" || true)" -ge "$1" ]; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "$2 did not come up"; exit 1; }
    sleep 0.1
  done
}

start() {
  local name=$1 what=$2
  if [ "$what" = granian ]; then
    (cd "$APP" && exec "$OLDPWD/bench/.venv/bin/granian" --interface wsgi --host 127.0.0.1 \
      --port "$PORT" --workers 2 --no-ws passenger_wsgi:application) > "$OUT/$name.out" 2>&1 &
    SERVER=$!
    wait_up 2 "$name"
  else
    "$what" start "$APP" --port "$PORT" --address 127.0.0.1 --min-instances 2 \
      --max-pool-size 2 --max-request-queue-size 0 --python "$PY" \
      --instance-registry-dir "$OUT/registry-$name" > "$OUT/$name.out" 2>&1 &
    SERVER=$!
    wait_up 2 "$name"
  fi
}

# utime + stime ticks of the processes given.
ticks() {
  local total=0 pid fields
  for pid in "$@"; do
    fields=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    set -- $fields
    total=$((total + ${12} + ${13}))
  done
  echo $total
}

stop() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

declare -a NAMES=() WHATS=()
for arg in "$@"; do
  if [ "$arg" = granian ]; then NAMES+=(granian); WHATS+=(granian)
  else NAMES+=("${arg%%=*}"); WHATS+=("${arg#*=}"); fi
done
[ ${#NAMES[@]} -gt 0 ] || { sed -n 2,10p "$0"; exit 2; }

for round in $(seq "$ROUNDS"); do
  for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    start "$name" "${WHATS[$i]}"
    wrk -t2 -c50 -d1s "http://127.0.0.1:$PORT/" > /dev/null  # warm-up
    children=$(pgrep -P "$SERVER" | tr '\n' ' ')
    own0=$(ticks "$SERVER"); kids0=$(ticks $children)
    wrk -t2 -c50 -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/" > "$OUT/wrk-$name-$round.txt"
    own1=$(ticks "$SERVER"); kids1=$(ticks $children)
    stop
    rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$name-$round.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$OUT/wrk-$name-$round.txt")
    requests=$(awk '/requests in/ {print $1}' "$OUT/wrk-$name-$round.txt")
    hz=$(getconf CLK_TCK)
    cpu=$(awk -v a=$((own1 - own0)) -v b=$((kids1 - kids0)) -v n="$requests" -v hz="$hz" \
      'BEGIN { printf "%.1f %.1f", a * 1e6 / hz / n, b * 1e6 / hz / n }')
    set -- $cpu
    echo "round $round  $name  $rps req/s  p99 $p99  CPU/request: own $1 us, children $2 us  (load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$OUT/runs.txt"
  done
done
for name in "${NAMES[@]}"; do
  awk -v n="$name" 'function range(a, k,   i, lo, hi) { lo = hi = a[1]
      for (i = 2; i <= k; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
      return lo "-" hi }
    $3 == n { k++; r[k] = $4; own[k] = $10; kids[k] = $13 }
    END { printf "%-10s %s req/s, CPU/request own %s us, children %s us, over %d runs\n",
      n, range(r, k), range(own, k), range(kids, k), k }' "$OUT/runs.txt"
done
echo "runs and wrk output: $OUT"
