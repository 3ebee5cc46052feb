# Sourced by scripts/test.sh and scripts/lambda_bench.sh: `ensure_test_venv WHO` makes sure the
# git-ignored venv .venv-test holds moto[server] 5.2 (the DynamoDB/SQS/Secrets Manager emulator),
# the SAM translator and PyYAML (the permission test expands template.yaml), installing them the
# first time with $PYTHON (default python3). Sets TEST_VENV to the venv's directory.
TEST_VENV=.venv-test

ensure_test_venv() { # who (named in the install message)
  local moto_spec='moto[server]==5.2.*' sam_spec='aws-sam-translator==1.*'
  if ! "$TEST_VENV/bin/python" - <<'PY' 2>/dev/null; then
import sys
import boto3, flask, flask_cors, moto  # moto[server] = moto + flask + flask-cors; boto3 comes with moto
import samtranslator, yaml             # the permission test expands template.yaml with the SAM translator
sys.exit(0 if moto.__version__.startswith("5.2.") else 1)
PY
    echo "$1: installing $moto_spec and $sam_spec into $TEST_VENV"
    [ -x "$TEST_VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$TEST_VENV"
    "$TEST_VENV/bin/pip" install --quiet --disable-pip-version-check "$moto_spec" "$sam_spec" PyYAML
  fi
}
