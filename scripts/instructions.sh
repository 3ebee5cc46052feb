#!/usr/bin/env bash
# Instructions per callback request under callgrind: a figure that does not move with the
# machine's load (docs/benchmarks.md §13). User space only — the kernel's share of a request is
# the same for every server — and SHA-1/SHA-256 count high (valgrind hides SHA-NI).
#
#   scripts/instructions.sh get  target/profiling/wechat-local   # GET verify, one repeated query
#   scripts/instructions.sh post target/profiling/wechat-local   # POST text, a signed query each
#   scripts/instructions.sh get  target/profiling/bare-hyper     # the floor
#
# The server starts under valgrind (demo token, RUST_LOG=warn, LOCAL_WORKER_THREADS=1), gets a
# 2 s warm-up, its counters are zeroed, then a DURATION (4s) wrk run of 8 connections; the
# total instructions over the requests answered is printed. Needs valgrind and wrk.
set -euo pipefail
MODE="$1"
BIN="$2"
DURATION="${DURATION:-4s}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOKEN="wechat-ha-demo-token"
TIMESTAMP="$(date +%s)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
WORK="$(mktemp -d)"
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

sign() { python3 -c 'import hashlib,sys; print(hashlib.sha1("".join(sorted(sys.argv[1:])).encode()).hexdigest())' "$TOKEN" "$TIMESTAMP" "$1"; }
QUERY="signature=$(sign 424242)&timestamp=$TIMESTAMP&nonce=424242"
pool() { # prefix: 100,000 signed queries of their own (the replay guard refuses reused ones)
    python3 "$ROOT/scripts/signed_queries.py" "$TOKEN" "$TIMESTAMP" 100000 "$1" >"$WORK/queries.txt"
}
# The wrk script of scripts/load.sh (same requests, same answer checks).
sed -n '/^cat >"\$WORK\/callback.lua"/,/^LUA/p' "$ROOT/scripts/load.sh" | sed '1d;$d' >"$WORK/callback.lua"
run_wrk() { # duration run (the run number starts every MsgId: the warm-up's are not repeated)
    wrk -t1 -c8 -d"$1" -s "$WORK/callback.lua" "http://127.0.0.1:$PORT/wechat?$QUERY&echostr=echo-check" \
        -- "$MODE" "$WORK/queries.txt" 1 "$2"
}

PORT="$PORT" RUST_LOG=warn WECHAT_TOKEN="$TOKEN" LOCAL_WORKER_THREADS=1 \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$BIN" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/wechat?$QUERY&echostr=echo-check" >/dev/null 2>&1 && break
    sleep 0.3
done
pool warm
run_wrk 2s 1 >/dev/null
callgrind_control -z "$SERVER" >/dev/null
pool "run$RANDOM"
summary="$(run_wrk "$DURATION" 2 | grep SUMMARY)"
callgrind_control -d "$SERVER" >/dev/null
sleep 1
requests="$(echo "$summary" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')"
errors="$(echo "$summary" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')"
dump="$(ls -t "$WORK"/callgrind.out* | head -1)"
total="$(grep -m1 '^summary:\|^totals:' "$dump" | awk '{print $2}')"
echo "$MODE $(basename "$BIN"): $requests requests, $errors errors, $((total / requests)) instructions per request"
[ "$errors" = 0 ]
