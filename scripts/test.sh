#!/usr/bin/env bash
# The project's test command: set up, lint, run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
bash scripts/setup.sh
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
