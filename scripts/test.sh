#!/usr/bin/env bash
# The project test command: `scripts/test.sh [cargo test arguments...]`.
#
# Starts a private moto server (the DynamoDB and SQS emulator) on a free loopback port, points the
# AWS SDK at it through the standard environment variables, runs `cargo test --workspace "$@"`,
# and always stops moto on exit. moto runs through scripts/moto_server.py, which applies DynamoDB
# requests one at a time as DynamoDB does per item (plain moto_server can lose concurrent ADDs). moto[server] is installed into the git-ignored venv .venv-test
# the first time (needs only python3 with venv and pip). Examples:
#   scripts/test.sh                                  # everything
#   scripts/test.sh -p shared --test store_contract  # one integration test file
#   scripts/test.sh -- --nocapture                   # arguments after -- go to the test binaries
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/test_venv.sh
. scripts/test_venv.sh
ensure_test_venv test.sh
venv="$TEST_VENV"

free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
log_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$log_dir"
log_dir="$(cd "$log_dir" && pwd)"

# Two moto servers: one shared by the tests, one for the permission test alone, whose request
# recorder must see that test's calls and nothing else.
port=$(free_port)
log="$log_dir/moto-$port.log"
"$venv/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
recorder_port=$(free_port)
recorder_log="$log_dir/moto-recorder-$recorder_port.log"
MOTO_RECORDER_FILEPATH="$log_dir/moto-recording-$recorder_port.jsonl" \
  "$venv/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$recorder_port" >"$recorder_log" 2>&1 &
recorder_pid=$!
stop_moto() {
  kill "$moto_pid" "$recorder_pid" 2>/dev/null || true
  wait "$moto_pid" "$recorder_pid" 2>/dev/null || true
}
trap stop_moto EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "test.sh: moto servers pid $moto_pid on http://127.0.0.1:$port and $recorder_pid on http://127.0.0.1:$recorder_port (recorder), logs in $log_dir (kept when tests fail)"

# Ready when they answer HTTP (about 0.6 s); give up early if one died (e.g. the port was taken).
wait_ready() {
"$venv/bin/python" - "$1" "$2" <<'PY'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
        sys.exit(0)
    except Exception:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("test.sh: moto server exited during start-up, see its log")
        time.sleep(0.1)
sys.exit("test.sh: moto server not ready after 30 s, see its log")
PY
}
wait_ready "$port" "$moto_pid"
wait_ready "$recorder_port" "$recorder_pid"

export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 # moto partitions data by region
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE
# The permission test (tests/permissions.rs): its own moto, and the Python that runs scripts/iam_check.py.
export RECORDER_ENDPOINT_URL="http://127.0.0.1:$recorder_port"
export IAM_CHECK_PYTHON="$PWD/$venv/bin/python"

status=0
cargo test --workspace "$@" || status=$?
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
  # The permission checker's own tests (inline templates and recordings, and one live run on a
  # moto server of its own).
  IAM_CHECK_LIVE=1 "$venv/bin/python" -m unittest -q scripts/test_iam_check.py || status=$?
  # The template's deployments as the SAM translator expands them (canary and hook, one Region,
  # global table owner and replica, custom domain with failover or latency routing, WAF).
  [ "$status" -ne 0 ] || "$venv/bin/python" -m unittest -q scripts/test_template.py || status=$?
  # The status page's browser checker (a real headless Chromium; fails under CI=true without one).
  [ "$status" -ne 0 ] || "$venv/bin/python" -m unittest -q scripts/test_browser_check.py || status=$?
fi
if [ "$status" -ne 0 ]; then
  echo "test.sh: cargo test failed (exit $status); moto logs: $log $recorder_log" >&2
else
  rm -f "$log" "$recorder_log" "$log_dir/moto-recording-$recorder_port.jsonl"
fi
exit "$status"
