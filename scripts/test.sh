#!/usr/bin/env bash
# The project's test command: set up (vLLM included: see setup.sh --vllm), lint, run the test suite.
# Extra arguments go to pytest. DRIFT_SKIP_VLLM=1 leaves vLLM out (its tests then skip and say why).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ "${DRIFT_SKIP_VLLM:-0}" = 1 ]; then
  bash scripts/setup.sh
else
  bash scripts/setup.sh --vllm | tee /tmp/drift-setup.$$.log
  vllm_python=$(sed -n 's/^\[setup\] DRIFT_VLLM_PYTHON=//p' /tmp/drift-setup.$$.log | tail -1)
  rm -f /tmp/drift-setup.$$.log
  if [ -n "$vllm_python" ]; then export DRIFT_VLLM_PYTHON="$vllm_python"; fi
fi
# the report test opens `drift report`'s page in a real headless browser
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test] installing chromium (Debian package) for the report's browser test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || echo "[test] could not install chromium: the browser tests will skip and say why" >&2
  else
    echo "[test] no chromium and no root apt-get: the browser tests will skip and say why" >&2
  fi
fi
echo "[test] ruff check"
"$PYTHON" -m ruff check .
echo "[test] ruff format --check"
"$PYTHON" -m ruff format --check .
echo "[test] pytest"
set +e
"$PYTHON" -m pytest -q "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "[test] pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
