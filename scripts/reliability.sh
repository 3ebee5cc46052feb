#!/usr/bin/env bash
# The reliability run of docs/benchmarks.md (issue 5): N messages through the send API and the
# worker while the WeChat mock fails 30 % of send calls and both its domains go down for 5 s.
#
#   scripts/reliability.sh                 # in-process MemoryStore + MemoryQueue, 10,000 messages
#   scripts/reliability.sh --moto          # DynamoDB + SQS on a private moto server (2,000 messages)
#   REL_MESSAGES=2000 REL_OUTAGE_SECS=10 scripts/reliability.sh   # knobs: tests/examples/reliability/main.rs
#
# Prints the report on stdout and exits 0 only when every message was delivered exactly once and
# the dead-letter queue holds exactly the poisoned messages. Takes 5–10 minutes: the tail waits out
# the worker's production backoff (10 s doubling, up to 10 receives) and one redrive if needed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

echo "reliability run: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD)"
cargo build --release -q -p wechat-ha-tests --example reliability
BIN="$ROOT/target/release/examples/reliability"

if [ "${1:-}" != "--moto" ]; then
    exec "$BIN"
fi

# DynamoDB + SQS on a private moto (the venv scripts/test.sh creates; DynamoDB requests serialized).
PY="$ROOT/.venv-test/bin/python"
if [ ! -x "$PY" ]; then
    echo "no .venv-test: run scripts/test.sh once (it installs moto[server] there)" >&2
    exit 1
fi
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$PY" scripts/moto_server.py -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -s "http://127.0.0.1:$PORT/" >/dev/null && break
    sleep 0.1
done
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$PORT" AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$PORT"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
REL_MESSAGES="${REL_MESSAGES:-2000}" "$BIN"
