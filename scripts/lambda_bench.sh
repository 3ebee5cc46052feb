#!/usr/bin/env bash
# Lambda-level benchmark: every function's release binary runs as on Lambda, driven through its
# real lambda_runtime client by a local Runtime API (bench/lambda-bench), against moto (DynamoDB,
# SQS, Secrets Manager; through a keep-alive front, as AWS keeps connections open) and wechat-mock,
# with the template's configuration and its secrets by reference. Prints a markdown table: binary
# size, init time and CPU, the first invocation, p50/p99 wall and CPU per invocation, peak RSS, and
# failed invocations.
#
#   scripts/lambda_bench.sh                            # 2000 invocations per scenario
#   INVOCATIONS=20 scripts/lambda_bench.sh             # quick check that every scenario passes
#   COLD_STARTS=9 WARMUP=50 scripts/lambda_bench.sh    # more starts per function (default 5, 20)
#   SCENARIOS=callback-plain:memory,send:dynamodb scripts/lambda_bench.sh
#   FUNCTION_ENV="RUST_LOG=warn SSL_CERT_DIR=/nonexistent" scripts/lambda_bench.sh   # experiments
#   BENCH_DOC=docs/benchmarks.md scripts/lambda_bench.sh   # also append the table there
#   FUNCTIONS_DIR=target/bench-a scripts/lambda_bench.sh   # bench binaries kept from another build (A/B):
#       the directory (relative to the repository root) holds callback, send, send-worker,
#       token-refresh and lambda-bench-echo, e.g. copied from target/release at another commit
#
# Scenarios are WORKLOAD:STORE, WORKLOAD one of callback-plain, callback-safe, send, send-worker,
# token-refresh, STORE memory or dynamodb (the template's), or `echo` (lambda-bench-echo: what the
# lambda_runtime client alone costs, the floor); the default is the echo and all ten. Every event is
# new (its own nonce, MsgId, Idempotency-Key or job ids, the current time) and every result is
# checked; any failed invocation makes the exit status non-zero. Each function is started
# COLD_STARTS times: init and the first invocation are medians over the starts (a freshly built
# binary's first start pays extra page faults), the per-invocation figures come from the last,
# long run without its first WARMUP invocations.
#
# Pinned: each function runs on core FUNCTION_CPU (0), alone; the harness, moto and wechat-mock on
# core HARNESS_CPU (1). Function CPU time is the kernel's per-thread run time
# (/proc/<pid>/task/*/schedstat), not 10 ms ticks. The functions' logs stay in
# target/lambda-bench/logs. Needs Rust and Python 3 (moto[server] is installed into the
# git-ignored venv .venv-test, as scripts/test.sh does); everything is stopped on exit.
set -euo pipefail

INVOCATIONS="${INVOCATIONS:-2000}"
WARMUP="${WARMUP:-20}"
COLD_STARTS="${COLD_STARTS:-5}"
SCENARIOS="${SCENARIOS:-}"
FUNCTIONS_DIR="${FUNCTIONS_DIR:-}"
FUNCTION_CPU="${FUNCTION_CPU:-0}"
HARNESS_CPU="${HARNESS_CPU:-1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET/lambda-bench"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    # The harness's child first (the function under test), then the harness, moto and the mock.
    for pid in "${PIDS[@]}"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=scripts/test_venv.sh
. scripts/test_venv.sh
ensure_test_venv lambda_bench.sh
venv="$TEST_VENV"
PY="$ROOT/$venv/bin/python"

# `pin CORE`: the taskset prefix (it execs, so `$!` is the command's own pid), empty without taskset.
if command -v taskset >/dev/null; then
    pin() { echo taskset -c "$1"; }
else
    echo "lambda_bench.sh: taskset not found (util-linux): nothing is pinned" >&2
    pin() { :; }
    FUNCTION_CPU=none
fi
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# `wait_http URL PID NAME`: until URL answers HTTP at all (any status), or PID dies, or 30 s pass.
wait_http() {
    "$PY" - "$@" <<'PY'
import os, sys, time, urllib.error, urllib.request
url, pid, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"lambda_bench.sh: {name} exited during start-up, see its log")
        time.sleep(0.1)
sys.exit(f"lambda_bench.sh: {name} not ready after 30 s, see its log")
PY
}

echo "## Lambda-level benchmark $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')${FUNCTIONS_DIR:+ (functions from $FUNCTIONS_DIR)}, $(nproc) cores ($(uname -m)), $INVOCATIONS invocations per scenario ($WARMUP warm-up), $COLD_STARTS cold starts${FUNCTION_ENV:+, FUNCTION_ENV=\"$FUNCTION_ENV\"}"

if [ -n "$FUNCTIONS_DIR" ]; then
    # The functions come from elsewhere (e.g. a copy of target/release made at another commit).
    FUNCTIONS_DIR="$(cd "$FUNCTIONS_DIR" && pwd)"
    cargo build --release -q -p wechat-mock -p lambda-bench
else
    FUNCTIONS_DIR="$TARGET/release"
    cargo build --release -q -p callback -p send -p send-worker -p token-refresh -p wechat-mock -p lambda-bench
fi
rm -rf "$OUT/logs"
mkdir -p "$OUT/logs"

MOTO_PORT="$(free_port)"
# shellcheck disable=SC2046
$(pin "$HARNESS_CPU") "$PY" scripts/moto_server.py -H 127.0.0.1 -p "$MOTO_PORT" >"$OUT/logs/moto.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$MOTO_PORT/" "$!" moto
API_PORT="$(free_port)"
API2_PORT="$(free_port)"
# shellcheck disable=SC2046
RUST_LOG=warn $(pin "$HARNESS_CPU") "$TARGET/release/wechat-mock" "api=127.0.0.1:$API_PORT" "api2=127.0.0.1:$API2_PORT" \
    >"$OUT/logs/wechat-mock.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$API_PORT/cgi-bin/token" "$!" wechat-mock

# What the template creates and the deployer stores: the table, the send queue, the callback's
# secret (the demo account of scripts/make_events.py, whose token and EncodingAESKey the harness
# signs and encrypts with) and the AppSecret (wechat-mock's default account, wx_mock_appid).
# Eval'd as shell assignments.
SETUP="$("$PY" - "http://127.0.0.1:$MOTO_PORT" "bench-$(date +%s)" <<'PY'
import json, shlex, sys
import boto3
from botocore.config import Config

endpoint, name = sys.argv[1], sys.argv[2]
config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})
def client(service):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", config=config,
                        aws_access_key_id="test", aws_secret_access_key="test")

dynamodb = client("dynamodb")
dynamodb.create_table(
    TableName=name, BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
sqs = client("sqs")
dlq_url = sqs.create_queue(QueueName=f"{name}-send-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
queue_url = sqs.create_queue(QueueName=f"{name}-send", Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 10})})["QueueUrl"]
secrets = client("secretsmanager")
callback_secret = json.dumps({"token": "wechat-ha-demo-token",
                              "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"})
callback_arn = secrets.create_secret(Name=f"{name}/callback", SecretString=callback_secret)["ARN"]
appsecret_arn = secrets.create_secret(Name=f"{name}/appsecret", SecretString="mock_app_secret")["ARN"]
values = {"TABLE": name, "QUEUE_URL": queue_url, "CALLBACK_SECRET": callback_arn, "APPSECRET_SECRET": appsecret_arn}
print(" ".join(f"{key}={shlex.quote(value)}" for key, value in values.items()))
PY
)"
eval "$SETUP"

ARGS=(--invocations "$INVOCATIONS" --warmup "$WARMUP" --cold-starts "$COLD_STARTS" --function-cpu "$FUNCTION_CPU"
      --bin-dir "$FUNCTIONS_DIR" --log-dir "$OUT/logs"
      --aws-endpoint "http://127.0.0.1:$MOTO_PORT" --table "$TABLE" --queue-url "$QUEUE_URL"
      --callback-secret "$CALLBACK_SECRET" --appsecret-secret "$APPSECRET_SECRET"
      --wechat-api "http://127.0.0.1:$API_PORT,http://127.0.0.1:$API2_PORT")
[ -z "$SCENARIOS" ] || ARGS+=(--scenarios "$SCENARIOS")
# shellcheck disable=SC2086 # FUNCTION_ENV is a space-separated list on purpose
for pair in ${FUNCTION_ENV:-}; do ARGS+=(--function-env "$pair"); done

TABLE_MD="$WORK/table.md"
status=0
# In the background, so that an interrupt reaches the traps at once (and stops the harness).
# shellcheck disable=SC2046
$(pin "$HARNESS_CPU") "$TARGET/release/lambda-bench" "${ARGS[@]}" >"$TABLE_MD" &
PIDS+=($!)
wait "$!" || status=$?
echo
cat "$TABLE_MD"
if [ -s "$TABLE_MD" ] && [ -n "${BENCH_DOC:-}" ]; then
    { echo; echo "Run $(date -u +%Y-%m-%dT%H:%MZ), \`scripts/lambda_bench.sh\` (INVOCATIONS=$INVOCATIONS, WARMUP=$WARMUP, COLD_STARTS=$COLD_STARTS${FUNCTION_ENV:+, FUNCTION_ENV=\"$FUNCTION_ENV\"}; functions from ${FUNCTIONS_DIR#"$ROOT"/}; function on core $FUNCTION_CPU, harness, moto and wechat-mock on core $HARNESS_CPU):"; echo; cat "$TABLE_MD"; } >>"$ROOT/$BENCH_DOC"
fi
case "$status" in
    0) echo "lambda_bench.sh: every invocation answered as expected; function logs in $OUT/logs" ;;
    1) echo "lambda_bench.sh: some invocations FAILED (see above); function logs in $OUT/logs" >&2 ;;
    *) echo "lambda_bench.sh: a run could not complete (exit $status); function logs in $OUT/logs" >&2 ;;
esac
exit "$status"
