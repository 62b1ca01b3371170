#!/usr/bin/env bash
# Usage: http/fuzz/run.sh [SECONDS]
#
# Bounded fuzzing of ferry's HTTP layer: installs cargo-fuzz if missing, seeds the corpora
# (gunicorn's request corpus, when it sits next to the repository as ../shared/corpora), replays
# every saved input under regressions/, then fuzzes each target for SECONDS (default 30).
# Exits non-zero on the first crash; libFuzzer names the input in artifacts/<target>/: copy it
# to regressions/<target>/ with a telling name once the bug is fixed.
#
# cargo-fuzz passes nightly -Z flags (sanitizers, coverage); RUSTC_BOOTSTRAP=1 lets a stable
# toolchain accept them. Set FUZZ_TARGET_DIR to keep the (slow, sanitized) build elsewhere.
set -euo pipefail

seconds=${1:-30}
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
targets=(request_reader response_parser)
target_dir=(--target-dir "${FUZZ_TARGET_DIR:-target}")

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

# Seeds: the gunicorn corpus for requests (whole, in 6/12/32-byte pieces, and byte by byte),
# a few framings for responses. The first byte of an input says how to cut the rest (see
# fuzz_targets/common.rs).
mkdir -p corpus/request_reader corpus/response_parser
gunicorn=../../../shared/corpora/gunicorn-requests
if [ -d "$gunicorn" ]; then
  for file in "$gunicorn"/valid/*.bin "$gunicorn"/invalid/*.bin; do
    name=$(basename "$(dirname "$file")")_$(basename "$file" .bin)
    { printf '\003\005\013\037'; cat "$file"; } > "corpus/request_reader/$name"
    { printf '\000'; cat "$file"; } > "corpus/request_reader/${name}_bytewise"
  done
fi
printf '\001\007HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello' > corpus/response_parser/length
printf '\002\007\003HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: v\r\n\r\n' \
  > corpus/response_parser/chunked
printf '\200HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil close' > corpus/response_parser/interim_then_close
printf '\020HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n' > corpus/response_parser/head_request
printf '\000HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\ntunnel' \
  > corpus/response_parser/upgrade

cargo fuzz build "${target_dir[@]}" >/dev/null
for target in "${targets[@]}"; do
  mkdir -p "regressions/$target"
  saved=(regressions/"$target"/*)
  if [ -e "${saved[0]}" ]; then
    echo "== $target: replaying ${#saved[@]} saved regression input(s)"
    cargo fuzz run "${target_dir[@]}" "$target" "${saved[@]}" -- -runs=1
  fi
  echo "== $target: fuzzing for $seconds s"
  cargo fuzz run "${target_dir[@]}" "$target" -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1
done
