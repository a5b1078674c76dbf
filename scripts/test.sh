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
echo "[test] ruff check"
"$PYTHON" -m ruff check .
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
