"""``benchmarks/leaderboard.py`` as users run it: a subprocess on two tiny model folders and one env."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from transformers import AutoTokenizer

REPO = Path(__file__).resolve().parents[1]
ENV_MODULE = "leaderboard_parity_env"
ENV_ID = "drift-test/LeaderboardParity-v0"

# Registered by gym.make("module:id") in the leaderboard process: task i is solved by a non-empty reply
# whose length has parity i % 2. MathFeedback would give every random model 0 and leave nothing to sort.
ENV_SOURCE = f'''
import gymnasium as gym
from drift_envs.core import Feedback, MultiTurnTextEnv, Task, Verdict


class LeaderboardParityEnv(MultiTurnTextEnv):
    def num_tasks(self):
        return 10

    def get_task(self, index):
        return Task(task_id=f"parity-{{index}}", prompt=f"Task {{index}}: reply with {{'an odd' if index % 2 else 'an even'}} length.",
                    answer=index % 2, meta={{}})

    def first_message(self, task):
        return task.prompt

    def verify(self, task, action):
        return Verdict(correct=bool(action) and len(action) % 2 == task.answer, format_ok=bool(action),
                       answer=action or None)

    def make_feedback(self, task, verdict, *, turn, repeated):
        return Feedback(text="Wrong parity, try again.", kind="binary")


if "{ENV_ID}" not in gym.registry:
    gym.register("{ENV_ID}", entry_point=LeaderboardParityEnv)
'''


@pytest.fixture(scope="module")
def leaderboard_run(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess]:
    """One leaderboard run, greedy, 4 tasks x 2 samples, 3 turns: ``alpha`` is the tiny model (it fills its 8 tokens, an
    even length: tasks 0 and 2 solved at turn 1); ``beta`` is the same model told to stop at a newline, its
    first token, so it never says anything. beta is listed first, so only sorting puts alpha on top."""
    root = tmp_path_factory.mktemp("leaderboard")
    (root / f"{ENV_MODULE}.py").write_text(textwrap.dedent(ENV_SOURCE))
    other = root / "beta-model"
    shutil.copytree(tiny_model_dir, other)
    generation = json.loads((other / "generation_config.json").read_text())
    newline = AutoTokenizer.from_pretrained(other).convert_tokens_to_ids("\n")
    generation["eos_token_id"] = [*generation["eos_token_id"], newline]
    (other / "generation_config.json").write_text(json.dumps(generation))
    out = root / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(root)]), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "leaderboard.py"),
            "--model",
            f"beta={other}",
            "--model",
            f"alpha={tiny_model_dir}",
            "--env",
            f"{ENV_MODULE}:{ENV_ID}",
            "--env-kwargs",
            json.dumps({"max_turns": 3}),
            "--num-tasks",
            "4",
            "--samples",
            "2",
            "--max-new-tokens",
            "8",
            "--out-dir",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"leaderboard failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out, proc


def test_leaderboard_json_is_sorted_by_success_at_T(leaderboard_run) -> None:
    out, _ = leaderboard_run
    entries = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    assert sorted(e["model"] for e in entries) == ["alpha", "beta"]
    for e in entries:
        m = e["metrics"]
        assert e["env"] == f"{ENV_MODULE}:{ENV_ID}" and e["env_kwargs"] == {"max_turns": 3}
        assert m["num_episodes"] == 8 and m["max_turns"] == 3
        assert list(m["success_at"]) == ["1", "2", "3"]
        assert e["success_at_T"] == m["success_at"]["3"]["value"]
    assert [(e["model"], e["success_at_T"]) for e in entries] == [("alpha", 0.5), ("beta", 0.0)]
    assert entries[1]["metrics"]["format_error_rate"]["value"] == 1.0


def test_leaderboard_errors_are_clustered_by_task_and_gaps_paired(leaderboard_run) -> None:
    """Greedy decoding repeats each task's episode, so the 8 episodes carry the information of 4 tasks:
    the clustered s.e. of alpha's 0.5 is sd(1, 0, 1, 0)/√4, not the binomial √(0.25/8)."""
    out, _ = leaderboard_run
    alpha, beta = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    success = alpha["metrics"]["success_at"]["3"]
    assert (success["n"], success["tasks"]) == (8, 4)
    assert success["se"] == pytest.approx(math.sqrt(1 / 3) / 2)
    assert alpha["vs_top"] is None
    # beta minus alpha per task: -1, 0, -1, 0 (tasks 0 and 2 are alpha's)
    assert beta["vs_top"]["value"] == pytest.approx(-0.5) and beta["vs_top"]["tasks"] == 4
    assert beta["vs_top"]["se"] == pytest.approx(math.sqrt(1 / 3) / 2)
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "| format err | Δ success@3 vs #1 (paired) |" in md
    (second,) = [line for line in md.splitlines() if line.startswith("| 2 |")]
    assert second.endswith(f"| {beta['vs_top']['value']:.3f} ± {beta['vs_top']['se']:.3f} |")


def test_leaderboard_markdown_and_png(leaderboard_run) -> None:
    out, proc = leaderboard_run
    entries = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert f"### {ENV_MODULE}:{ENV_ID}" in md
    assert "| rank | model | success@1 | success@2 | success@3 | correction | non-repeat | format err |" in md
    rows = [line for line in md.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert [row.split("|")[2].strip() for row in rows] == [e["model"] for e in entries]
    best = entries[0]["metrics"]["success_at"]["3"]
    assert f"{best['value']:.3f} ± {best['se']:.3f}" in rows[0]
    png = (out / "leaderboard.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert "leaderboard.json" in proc.stdout


def test_leaderboard_rejects_a_model_without_a_name(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "leaderboard.py"),
            "--model",
            "just-a-path",
            "--env",
            "drift/MathFeedback-v0",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--model expects NAME=PATH" in proc.stderr
