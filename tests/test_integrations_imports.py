"""``import drift_envs`` (and the integrations package with its shared episode) imports no trainer."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("trl", "verifiers", "skyrl_gym", "verl", "torch", "transformers")


def test_importing_drift_envs_imports_no_framework() -> None:
    code = (
        "import sys, gymnasium as gym, drift_envs, drift_envs.integrations, drift_envs.integrations.episode\n"
        "episode = drift_envs.integrations.episode.Episode('drift/MathFeedback-v0', {'max_turns': 2})\n"
        "episode.reset(index=0, seed=0)\n"
        "episode.step('\\\\boxed{0}')\n"
        "print(episode.episode_return())\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    *_, ret, loaded = result.stdout.strip().splitlines()
    assert loaded == "[]", f"importing drift_envs pulled in {loaded}"
    assert float(ret) in (0.0, 1.0)
