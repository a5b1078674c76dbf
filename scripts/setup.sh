#!/usr/bin/env bash
# Install DRIFT and everything its tests and quickstart need into the current Python environment.
# On a machine without an NVIDIA GPU the CPU build of PyTorch goes in first, so that the plain `torch`
# requirement of the [train] extra is already satisfied and pip never pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${DRIFT_TORCH_VERSION:-2.13.0}

if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "[setup] GPU found: installing torch==${TORCH_VERSION} (CUDA build)"
  else
    echo "[setup] no GPU: installing the CPU build torch==${TORCH_VERSION} first"
  fi
  "$PYTHON" -m pip install --quiet "torch==${TORCH_VERSION}"
fi
echo "[setup] installing drift-toolkit with extras [train,serve,dev]"
"$PYTHON" -m pip install --quiet -e ".[train,serve,dev]"
"$PYTHON" -c "import drift_envs, drift_train, torch; print('[setup] ok: torch', torch.__version__)"
