#!/usr/bin/env bash
# Load test of the callback (issue 2): wrk against the local server's GET verify and POST text,
# and — when Go and the Debian-packaged Gin are installed — against the same callback written
# with Gin (bench/gin-callback), side by side with the same wrk scripts.
#
#   scripts/load.sh                      # 15 s per run, 2 wrk threads, 64 connections
#   DURATION=30s CONNECTIONS=128 scripts/load.sh
#   SKIP_GIN=1 scripts/load.sh           # wechat-ha only
#
# Everything listens on 127.0.0.1 (free ports) and is stopped on exit. wrk, the server and the
# baseline share the machine: the figures are for comparing the two servers on the same box, not
# absolute capacity. POST requests vary MsgId per request (each one is a new message for the
# dedup ledger; a repeated MsgId would be answered from the ledger) and are checked: the script
# counts non-200 answers and 200s that do not echo the text.
set -euo pipefail

DURATION="${DURATION:-15s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
TOKEN="wechat-ha-demo-token"   # the demo account of wechat-local (local/src/demo.rs)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y wrk >/dev/null
    else
        echo "wrk is not installed (Debian/Ubuntu: sudo apt-get install -y wrk)" >&2
        exit 1
    fi
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Signed as WeChat signs: a current timestamp (the callback refuses timestamps outside its
# freshness window) and, for POSTs, a query of its own per message (the callback's replay guard
# refuses a signed query reused with another body). GETs repeat one verification query with the
# same echostr, which the guard allows (it is the same request); the readiness probe uses its own.
TIMESTAMP="$(date +%s)"
sign() { python3 -c 'import hashlib,sys; print(hashlib.sha1("".join(sorted(sys.argv[1:])).encode()).hexdigest())' "$TOKEN" "$TIMESTAMP" "$1"; }
QUERY="signature=$(sign 424242)&timestamp=$TIMESTAMP&nonce=424242"
READY_QUERY="signature=$(sign 1)&timestamp=$TIMESTAMP&nonce=1"
# The POST pool: one signed query per message, split between wrk's threads; a run that sends more
# than POOL messages reuses queries and its extra answers count as non-200 (raise POOL).
POOL="${POOL:-800000}"
python3 - "$TOKEN" "$TIMESTAMP" "$POOL" >"$WORK/queries.txt" <<'PY'
import hashlib, sys
token, timestamp, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = sys.stdout
for n in range(count):
    nonce = f"p{n}"
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    out.write(f"signature={signature}&timestamp={timestamp}&nonce={nonce}\n")
PY

cat >"$WORK/callback.lua" <<'LUA'
-- wrk script: `-- get` (verify, echostr) or `-- post QUERIES THREADS` (a text message with a fresh
-- MsgId and its own signed query per request).
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  mode = args[1] or "get"
  counter = 0
  non200 = 0
  wrong = 0
  queries = {}
  if mode == "post" then
    local nthreads, n = tonumber(args[3]), 0
    for line in io.lines(args[2]) do
      if n % nthreads == id - 1 then queries[#queries + 1] = line end
      n = n + 1
    end
  end
end
function request()
  if mode ~= "post" then
    return wrk.format("GET")
  end
  counter = counter + 1
  local query = queries[(counter - 1) % #queries + 1]
  local body = "<xml><ToUserName><![CDATA[gh_demo]]></ToUserName><FromUserName><![CDATA[oLoadTest]]></FromUserName>"
    .. "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[load-hello]]></Content>"
    .. "<MsgId>" .. string.format("%d%010d", id, counter) .. "</MsgId></xml>"
  return wrk.format("POST", "/wechat?" .. query, { ["Content-Type"] = "text/xml" }, body)
end
function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif not body:find(mode == "post" and "load-hello" or "echo-check", 1, true) then
    wrong = wrong + 1
  end
end
function done(summary, latency, requests)
  local n, w = 0, 0
  for _, t in ipairs(threads) do
    n = n + t:get("non200")
    w = w + t:get("wrong")
  end
  io.write(string.format("check: %d non-200 answers, %d 200s without the expected body\n", n, w))
  io.write(string.format("SUMMARY requests/s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, n + w + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout + summary.errors.status))
end
LUA

wait_ready() { # url
    for _ in $(seq 1 100); do
        if curl -fsS "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "server at $1 did not come up" >&2
    exit 1
}

run_wrk() { # name base_url
    local name="$1" base="$2"
    for mode in get post; do
        echo
        echo "### $name — $([ "$mode" = get ] && echo "GET /wechat (verify)" || echo "POST /wechat (plaintext text message)")"
        echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s callback.lua '$base/wechat?$QUERY&echostr=echo-check' -- $mode"
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/callback.lua" \
            "$base/wechat?$QUERY&echostr=echo-check" -- "$mode" "$WORK/queries.txt" "$THREADS"
    done
}

echo "## load test $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(uname -m)), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"

(cd "$ROOT" && cargo build --release -q -p wechat-local)
PORT_RS="$(free_port)"
RUST_LOG=warn PORT="$PORT_RS" "$ROOT/target/release/wechat-local" >"$WORK/wechat-local.log" 2>&1 &
PIDS+=($!)
wait_ready "http://127.0.0.1:$PORT_RS/wechat?$READY_QUERY&echostr=ready"
echo "wechat-local (release, demo account, compatible mode, in-memory store, RUST_LOG=warn) on port $PORT_RS"
run_wrk "wechat-ha (wechat-local)" "http://127.0.0.1:$PORT_RS"

if [ -n "${SKIP_GIN:-}" ]; then
    exit 0
fi
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/gin-gonic/gin ]; then
    echo
    echo "Gin baseline skipped: needs Go and Gin (Debian: apt-get install -y golang-go golang-github-gin-gonic-gin-dev)"
    exit 0
fi
# Offline, GOPATH mode against the Debian-packaged sources: no module proxy needed.
(cd "$ROOT/bench/gin-callback" && GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= \
    GOCACHE="${GOCACHE:-$ROOT/target/go-cache}" go build -o "$ROOT/target/gin-callback" .)
PORT_GIN="$(free_port)"
PORT="$PORT_GIN" WECHAT_TOKEN="$TOKEN" "$ROOT/target/gin-callback" >"$WORK/gin.log" 2>&1 &
PIDS+=($!)
wait_ready "http://127.0.0.1:$PORT_GIN/wechat?$READY_QUERY&echostr=ready"
echo
echo "gin-callback ($(go version | cut -d' ' -f3), Gin $(dpkg-query -W -f '${Version}' golang-github-gin-gonic-gin-dev 2>/dev/null || echo '?'), release mode, no logger) on port $PORT_GIN"
run_wrk "Gin baseline (bench/gin-callback)" "http://127.0.0.1:$PORT_GIN"
