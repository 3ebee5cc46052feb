#!/usr/bin/env bash
# The memory benchmark of docs/benchmarks.md (issue 9): wechat-local on its embedded defaults
# (in-memory store, demo account) receives N unique, freshly signed text messages; prints its
# resident memory as the messages arrive and its peak (VmHWM) at the end.
#
#   scripts/memory.sh                        # 1,000,000 messages, 32 in flight
#   MESSAGES=200000 CONCURRENCY=64 scripts/memory.sh
#   PROFILE=profiling scripts/memory.sh      # another cargo profile's binaries
#
# The server runs on core 0 and the load generator (tests/examples/callback_flood.rs) on core 1
# when `taskset` is available. Exits 1 when any answer was wrong or the peak exceeds LIMIT_MIB
# (default 64).
set -euo pipefail

MESSAGES="${MESSAGES:-1000000}"
CONCURRENCY="${CONCURRENCY:-32}"
LIMIT_MIB="${LIMIT_MIB:-64}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

echo "memory run: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, commit $(git rev-parse --short HEAD), $MESSAGES messages, $CONCURRENCY in flight"
PROFILE="${PROFILE:-release}"
cargo build --profile "$PROFILE" -q -p wechat-local -p wechat-ha-tests --bin wechat-local --example callback_flood
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE"

# `pin CORE cmd…` execs (no wrapper process), so `$!` is the command's own pid.
pin() { if command -v taskset >/dev/null; then echo taskset -c "$1"; fi; }
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# Embedded defaults: no account, store or queue configured (anything set in this shell is dropped).
# shellcheck disable=SC2046
env -i PATH="$PATH" HOME="$HOME" PORT="$PORT" RUST_LOG=warn $(pin 0) "$TARGET/wechat-local" >/dev/null 2>&1 &
SERVER=$!
SAMPLER=""
cleanup() { kill "$SERVER" ${SAMPLER:+"$SAMPLER"} 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/wechat" && break
    sleep 0.1
done
PID=$SERVER
status_kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$PID/status"; }
echo "wechat-local pid $PID on port $PORT: start RSS $(( $(status_kib VmRSS) / 1024 )) MiB"

# RSS every 10 s while the messages arrive.
( while sleep 10; do
      [ -r "/proc/$PID/status" ] || exit 0
      echo "  +$((SECONDS))s RSS $(( $(status_kib VmRSS) / 1024 )) MiB"
  done ) &
SAMPLER=$!

SECONDS=0
flood_status=0
# shellcheck disable=SC2046
$(pin 1) "$TARGET/examples/callback_flood" --url "http://127.0.0.1:$PORT/wechat" \
    --count "$MESSAGES" --concurrency "$CONCURRENCY" || flood_status=$?
peak_kib="$(status_kib VmHWM)"
rss_kib="$(status_kib VmRSS)"
peak_mib=$(( peak_kib / 1024 ))
echo "wechat-local after $MESSAGES unique messages: peak RSS (VmHWM) ${peak_mib} MiB, RSS now $(( rss_kib / 1024 )) MiB"

if [ "$flood_status" -ne 0 ]; then
    echo "FAIL: some answers were wrong (see the flood line above)" >&2
    exit 1
fi
if [ "$peak_mib" -gt "$LIMIT_MIB" ]; then
    echo "FAIL: peak RSS ${peak_mib} MiB > ${LIMIT_MIB} MiB" >&2
    exit 1
fi
echo "OK: peak RSS ${peak_mib} MiB ≤ ${LIMIT_MIB} MiB"
