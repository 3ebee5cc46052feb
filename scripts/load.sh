#!/usr/bin/env bash
# Load test of the callback: wrk against the local server's GET verify and POST text, side by
# side with the same callback written with Gin (bench/gin-callback, when Go and Debian's Gin are
# installed) and a bare hyper server doing only the GET verify (bench/bare-hyper: the floor).
#
#   scripts/load.sh                      # 10 s per run, rounds in turn (A B, then B A), 32 connections
#   DURATION=15s ROUNDS=3 scripts/load.sh
#   SKIP_GIN=1 scripts/load.sh           # wechat-ha and the floor only
#   BENCH_DOC=docs/benchmarks.md scripts/load.sh   # also append the table there
#   PROFILE=profiling scripts/load.sh    # the binaries of another cargo profile (same code, symbols)
#   COMPARE_BIN=/tmp/wechat-local-old scripts/load.sh   # also an older wechat-local build, in turn
#   SAME_WORK_PEER=1 scripts/load.sh     # also Gin doing wechat-ha's replay guard and ledger (GIN_SAME_WORK=1)
#
# Pinned: every server runs on core SERVER_CPU (0) and wrk, one thread, on core WRK_CPU (1): on
# two cores an unpinned wrk takes the CPU the server would have used. The figure that compares
# servers is the server's own CPU time per request, read from /proc/<pid>/stat (utime + stime)
# around each run, not requests/s (which also measures wrk). The servers take turns (Gin,
# wechat-ha, floor; then floor, wechat-ha, Gin) so a drift of the machine hits all of them alike. Everything
# listens on 127.0.0.1 (free ports) and is stopped on exit. POST requests vary MsgId per request (each one is a new message for the
# dedup ledger; a repeated MsgId would be answered from the ledger) and are checked: the script
# counts non-200 answers and 200s that do not echo the text.
set -euo pipefail

DURATION="${DURATION:-10s}"
THREADS=1
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-2}"
SERVER_CPU="${SERVER_CPU:-0}"
WRK_CPU="${WRK_CPU:-1}"
HZ="$(getconf CLK_TCK)"
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
sign() { python3 -c 'import hashlib,sys; print(hashlib.sha1("".join(sorted(sys.argv[1:])).encode()).hexdigest())' "$TOKEN" "$TIMESTAMP" "$1"; }
# Signed afresh before every server start and every run: a run can begin minutes after the
# script did (the build, many rounds), and a timestamp older than the callback's 300 s window
# makes every answer a 403.
sign_now() {
    TIMESTAMP="$(date +%s)"
    QUERY="signature=$(sign 424242)&timestamp=$TIMESTAMP&nonce=424242"
    READY_QUERY="signature=$(sign 1)&timestamp=$TIMESTAMP&nonce=1"
}
# POSTs: one signed query per message (the replay guard refuses a signed query reused with
# another body), a fresh pool for every POST run (see `pool`); a run that sends more than POOL
# messages reuses queries and its extra answers count as errors (raise POOL).
POOL="${POOL:-400000}"

cat >"$WORK/callback.lua" <<'LUA'
-- wrk script: `-- get` (verify, echostr) or `-- post QUERIES THREADS RUN` (a text message with a
-- fresh MsgId and its own signed query per request). RUN (digits) starts every MsgId: a new wrk
-- counts from 1 again, and without it a run against the same server would repeat the MsgIds of
-- the run before, which the ledger answers as duplicates (cheaper, and not what is measured).
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  mode = args[1] or "get"
  run = args[4] or "0"
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
    .. "<MsgId>" .. string.format("%s%d%010d", run, id, counter) .. "</MsgId></xml>"
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

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

RUN=0
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
# measure NAME PID BASE MODE: one pinned wrk run; appends name, mode, requests, req/s, µs/req, errors
measure() {
    local name="$1" pid="$2" base="$3" mode="$4" before after out requests rps errors
    RUN=$((RUN + 1))
    sign_now
    [ "$mode" = get ] || pool "$name$RUN"
    before="$(cpu_ticks "$pid")"
    out="$(taskset -c "$WRK_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/callback.lua" \
        "$base/wechat?$QUERY&echostr=echo-check" -- "$mode" "$WORK/queries-$name$RUN.txt" 1 "$RUN")"
    after="$(cpu_ticks "$pid")"
    requests="$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')"
    rps="$(echo "$out" | sed -n 's/.*requests\/s=\([0-9]*\).*/\1/p')"
    errors="$(echo "$out" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')"
    python3 - "$name" "$mode" "$requests" "$rps" "$before" "$after" "$HZ" "$errors" >>"$RESULTS" <<'PY'
import sys
name, mode, requests, rps, before, after, hz, errors = sys.argv[1:]
cpu = (int(after) - int(before)) / int(hz)
print(f"{name}\t{mode}\t{requests}\t{rps}\t{cpu / int(requests) * 1e6:.2f}\t{errors}")
PY
    echo "  $name $mode: $(tail -1 "$RESULTS" | cut -f3-)   (requests, req/s, server µs/req, errors)"
}

peak_rss() { sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$1/status"; }

# A query pool of its own for every POST run (the replay guard would refuse reused queries).
pool() { # name
    python3 "$ROOT/scripts/signed_queries.py" "$TOKEN" "$TIMESTAMP" "$POOL" "$1" >"$WORK/queries-$1.txt"
}

echo "## load test $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(uname -m)), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2), server on core $SERVER_CPU, wrk on core $WRK_CPU"

PROFILE="${PROFILE:-release}"
(cd "$ROOT" && cargo build --profile "$PROFILE" -q -p wechat-local -p bare-hyper)
declare -A PID BASE
start() { # name command...
    local name="$1"; shift
    local port; port="$(free_port)"
    PORT="$port" RUST_LOG=warn WECHAT_TOKEN="$TOKEN" taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    PID[$name]=$!
    BASE[$name]="http://127.0.0.1:$port"
    sign_now
    wait_ready "${BASE[$name]}/wechat?$READY_QUERY&echostr=ready"
}
SERVERS=()
if [ -z "${SKIP_GIN:-}" ] && command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/gin-gonic/gin ]; then
    # Offline, GOPATH mode against the Debian-packaged sources: no module proxy needed.
    (cd "$ROOT/bench/gin-callback" && GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= \
        GOCACHE="${GOCACHE:-$ROOT/target/go-cache}" go build -o "$ROOT/target/gin-callback" .)
    start gin "$ROOT/target/gin-callback"
    SERVERS+=(gin)
    echo "gin: $(go version | cut -d' ' -f3), Gin $(dpkg-query -W -f '${Version}' golang-github-gin-gonic-gin-dev 2>/dev/null || echo '?'), release mode, no logger"
    if [ "${SAME_WORK_PEER:-}" = 1 ]; then
        # The same binary with wechat-ha's replay guard and exactly-once ledger in process memory.
        start gin-same env GIN_SAME_WORK=1 "$ROOT/target/gin-callback"
        SERVERS+=(gin-same)
        echo "gin-same: the Gin callback with GIN_SAME_WORK=1 (replay guard and ledger, bench/gin-callback/same.go)"
    fi
elif [ -z "${SKIP_GIN:-}" ]; then
    echo "Gin baseline skipped: needs Go and Gin (Debian: apt-get install -y golang-go golang-github-gin-gonic-gin-dev)"
    if [ "${SAME_WORK_PEER:-}" = 1 ]; then echo "SAME_WORK_PEER=1 ignored: the same-work peer is the Gin callback"; fi
fi
# The demo account of wechat-local is the token above (plain WECHAT_TOKEN: compatible mode, no key).
start wechat-ha "$ROOT/target/$PROFILE/wechat-local"
SERVERS+=(wechat-ha)
echo "wechat-ha: wechat-local ($PROFILE, demo account, in-memory store, RUST_LOG=warn)"
if [ -n "${COMPARE_BIN:-}" ]; then
    # Another build of wechat-local (say, the last commit's), in the same turns: an A/B of a change.
    start before "$COMPARE_BIN"
    SERVERS+=(before)
    echo "before: $COMPARE_BIN (same settings as wechat-ha)"
fi
start floor "$ROOT/target/$PROFILE/bare-hyper"
SERVERS+=(floor)
echo "floor: bench/bare-hyper (GET verify only, current-thread runtime)"

for round in $(seq 1 "$ROUNDS"); do
    echo "### round $round"
    # Every other round in reverse order (A B, B A): a server's place in the turn (what ran just
    # before it, the core's state) then favours none of them over the rounds.
    ORDER=("${SERVERS[@]}")
    if [ $((round % 2)) = 0 ]; then
        ORDER=()
        for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do ORDER+=("${SERVERS[i]}"); done
    fi
    for name in "${ORDER[@]}"; do
        measure "$name" "${PID[$name]}" "${BASE[$name]}" get
        [ "$name" = floor ] || measure "$name" "${PID[$name]}" "${BASE[$name]}" post
    done
done

TABLE="$WORK/table.md"
python3 - "$RESULTS" "$(peak_rss "${PID[wechat-ha]}")" "$( [ -n "${PID[gin]:-}" ] && peak_rss "${PID[gin]}" || echo -)" >"$TABLE" <<'PY'
import sys, statistics
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
def med(name, mode, col):
    vals = [float(r[col]) for r in rows if r[0] == name and r[1] == mode]
    return statistics.median(vals) if vals else None
errors = sum(int(r[5] or 0) for r in rows)
out = ["| request | Gin µs/req (req/s) | wechat-ha µs/req (req/s) | Gin / wechat-ha | floor µs/req (req/s) |",
       "|---|---|---|---|---|"]
for mode, label in (("get", "GET verify"), ("post", "POST text (unique MsgIds)")):
    g, w, f = med("gin", mode, 4), med("wechat-ha", mode, 4), med("floor", mode, 4)
    gr, wr, fr = med("gin", mode, 3), med("wechat-ha", mode, 3), med("floor", mode, 3)
    cell = lambda v, r: f"{v:.2f} ({r:,.0f})" if v is not None else "—"
    ratio = f"{g / w:.2f}×" if g and w else "—"
    out.append(f"| {label} | {cell(g, gr)} | {cell(w, wr)} | **{ratio}** | {cell(f, fr)} |")
out.append(f"| peak RSS after the runs | {sys.argv[3]} | {sys.argv[2]} | | |")
out.append(f"\nMedians of the rounds; {errors} non-2xx or wrong answers in all runs.")
# The floor does nothing but hyper's HTTP/1, the query split, one SHA-1 and the echo: no server on
# hyper can verify for less, so Gin / floor bounds the GET ratio any of them can reach on this host.
g, f = med("gin", "get", 4), med("floor", "get", 4)
if g and f:
    out.append(f"This host's ceiling for the GET ratio (Gin / floor): {g / f:.2f}×.")
if any(r[0] == "gin-same" for r in rows):
    out += ["", "| request, the same work on both sides | Gin + replay guard + ledger µs/req (req/s) | wechat-ha µs/req | ratio |", "|---|---|---|---|"]
    for mode, label in (("get", "GET verify"), ("post", "POST text (unique MsgIds)")):
        s, w, sr = med("gin-same", mode, 4), med("wechat-ha", mode, 4), med("gin-same", mode, 3)
        if s and w:
            out.append(f"| {label} | {s:.2f} ({sr:,.0f}) | {w:.2f} | **{s / w:.2f}×** |")
if any(r[0] == "before" for r in rows):
    out += ["", "| CPU µs/request | before (COMPARE_BIN) | wechat-ha | change |", "|---|---|---|---|"]
    for mode, label in (("get", "GET verify"), ("post", "POST text")):
        b, w = med("before", mode, 4), med("wechat-ha", mode, 4)
        if b and w:
            out.append(f"| {label} | {b:.2f} | {w:.2f} | {(w / b - 1) * 100:+.1f} % |")
print("\n".join(out))
PY
echo
cat "$TABLE"
if [ -n "${BENCH_DOC:-}" ]; then
    { echo; echo "Run $(date -u +%Y-%m-%dT%H:%MZ), \`scripts/load.sh\` (DURATION=$DURATION, ROUNDS=$ROUNDS, $CONNECTIONS connections):"; echo; cat "$TABLE"; } >>"$ROOT/$BENCH_DOC"
fi
