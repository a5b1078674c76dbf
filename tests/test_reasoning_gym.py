"""drift/ReasoningGym-v0: every reasoning-gym dataset plays one scripted episode; the env contract,
determinism and splits, score_answer as the verifier with partial credit, feedback modes, errors;
``drift rollout`` and ``drift eval`` on it with the tiny model."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

pytest.importorskip(
    "reasoning_gym",
    reason="the optional package reasoning-gym is not installed (pip install 'drift-toolkit[reasoning-gym]')",
)

from conftest import drift_rollout_records  # noqa: E402

import drift_envs  # noqa: E402,F401 - registers drift/* ids
from drift_envs.core import UnicodeText  # noqa: E402
from drift_envs.ecosystem import MissingPackageError, require_package  # noqa: E402
from drift_envs.ecosystem.catalog import PROBE_CONFIG, catalog  # noqa: E402
from drift_envs.ecosystem.reasoning_gym import TRAIN_SEED_OFFSET, dataset_names  # noqa: E402
from drift_train.cli import main as drift_main  # noqa: E402

ENV_ID = "drift/ReasoningGym-v0"
#: measured with reasoning-gym 0.1.25: items with no answer and no stored solution
NO_ORACLE = {"boxnet", "rush_hour"}
#: the datasets are cheap (4 s for all 106 here), but one should never take long
MAX_EPISODE_S = 10.0


def make(task: str = "basic_arithmetic", **kwargs) -> gym.Env:
    return gym.make(ENV_ID, task=task, **{"size": 3, **PROBE_CONFIG.get(task, {}), **kwargs})


@pytest.mark.parametrize("task", dataset_names())
def test_scripted_episode_in_every_dataset(task: str) -> None:
    """The oracle reply solves item 0 (score 1.0, reward 1.0, terminated); a dataset without an
    oracle ends truncated after replies without an answer, each charged the format penalty."""
    started = time.perf_counter()
    env = make(task, max_turns=2)
    obs, info = env.reset(seed=0, options={"index": 0})
    assert isinstance(obs, str) and obs and info["messages"][-1] == {"role": "user", "content": obs}
    assert info["task_id"] == f"reasoning_gym/{task}/0/test/0"
    oracle = env.unwrapped.oracle_reply()
    assert (oracle is None) == (task in NO_ORACLE), f"{task}: oracle {oracle!r}"
    if oracle is not None:
        obs, reward, terminated, truncated, info = env.step(oracle)
        assert (reward, terminated, truncated, obs) == (1.0, True, False, "")
        assert info["correct"] and info["score"] == 1.0 and info["format_ok"]
    else:
        steps = [env.step("no idea") for _ in range(2)]
        assert [s[1:4] for s in steps] == [(-0.1, False, False), (-0.1, False, True)]
        info = steps[-1][4]
        assert not info["correct"] and not info["format_ok"] and info["answer"] is None
    assert info["messages"][-1]["role"] == "assistant"
    assert time.perf_counter() - started < MAX_EPISODE_S


def test_catalogue_lists_every_dataset_as_offline() -> None:
    """The catalogue's probe (a worker process with sockets refused) runs every dataset here."""
    rows = catalog("reasoning-gym", ["basic_arithmetic", "composite", "boxnet"], timeout_s=60)
    assert [r["name"] for r in rows] == ["basic_arithmetic", "composite", "boxnet"]
    assert all(r["runs_offline"] for r in rows), rows
    assert rows[0]["oracle"] and rows[0]["solved"] and not rows[2]["oracle"]


@pytest.mark.parametrize("task", ["basic_arithmetic", "sudoku", "knights_knaves"])
def test_env_checker_and_text_spaces(task: str) -> None:
    env = make(task)
    check_env(env.unwrapped)
    assert isinstance(env.observation_space, UnicodeText) and isinstance(env.action_space, UnicodeText)


def test_items_are_deterministic_and_splits_disjoint() -> None:
    a, b = make(size=50), make(size=50)
    # another env's draws and the global generators do not change an item
    random.seed(1)
    np.random.seed(1)
    b.reset(seed=3)
    questions = [a.reset(options={"index": i})[0] for i in range(50)]
    assert questions == [b.reset(options={"index": i})[0] for i in range(50)]
    train = [make(size=50, split="train").reset(options={"index": i})[0] for i in range(50)]
    assert len(set(questions) & set(train)) <= 2  # different streams; tiny sums can still coincide
    assert make(size=50, seed=1).reset(options={"index": 0})[0] != questions[0]
    env = make(split="train", seed=4).unwrapped
    assert env.source.config.dataset_seed == 4 + TRAIN_SEED_OFFSET
    _, info = env.reset(options={"index": 2})
    assert info["task_id"] == "reasoning_gym/basic_arithmetic/4/train/2"
    assert env.reset(options={"task_id": info["task_id"]})[1]["index"] == 2
    with pytest.raises(ValueError, match="'train' or 'test'"):
        make(split="validation")


def test_config_kwargs_reach_the_dataset() -> None:
    env = make(min_terms=2, max_terms=2, min_digits=1, max_digits=1, operators=("+",), size=20)
    for i in range(20):
        obs, _ = env.reset(options={"index": i})
        expression = obs.splitlines()[0].removeprefix("Calculate ").rstrip(".")
        assert len(re.findall(r"\d+", expression)) == 2 and not re.search(r"\d\d|[*/]", expression), obs
    with pytest.raises(ValueError, match="no config field"):
        make(max_termz=3)
    with pytest.raises(ValueError, match="no dataset 'not_a_dataset'"):
        make("not_a_dataset")


def test_partial_score_is_kept_in_info_and_does_not_solve() -> None:
    env = make(feedback="hint", max_turns=3)
    env.reset(options={"index": 0})
    gold = env.unwrapped.task.answer
    obs, reward, terminated, truncated, info = env.step(f"<answer>{gold} x</answer>")
    assert 0.0 < info["score"] < 1.0 and not info["correct"] and not terminated and reward == 0.0
    assert obs == f"Incorrect, but partly right (score {info['score']:.2f} of 1)."


def test_feedback_modes() -> None:
    env = make(feedback="hint", max_turns=4, min_digits=1, max_digits=1, size=5)
    env.reset(options={"index": 0})
    gold = int(env.unwrapped.task.answer)
    obs, *_, info = env.step(f"so <answer>{gold + 5}</answer>")
    assert (
        obs == f"Incorrect: your answer {gold + 5} is too high." and info["feedback"]["direction"] == "high"
    )
    obs, *_, info = env.step(f"<answer>{gold + 5}</answer>")
    assert info["repeated"] and obs.endswith("before; try something different.")
    obs, reward, *_ = env.step("I give up")
    assert obs == "I could not find a final answer. Put your final answer within <answer></answer>."
    assert reward == -0.1
    for mode, text in (("binary", "Incorrect. Please think again."), ("none", "Try again.")):
        e = make(feedback=mode)
        e.reset(options={"index": 0})
        assert e.step("<answer>nope</answer>")[0] == text
    boxed = make(answer_format="boxed")
    boxed.reset(options={"index": 1})
    reply = boxed.unwrapped.oracle_reply()
    assert reply.startswith("\\boxed{") and boxed.step(reply)[1] == 1.0
    with pytest.raises(ValueError, match="feedback must be"):
        make(feedback="loud")


def test_generator_prints_go_to_stderr(capsys: pytest.CaptureFixture) -> None:
    make("bf").reset(options={"index": 1})
    out, err = capsys.readouterr()
    assert out == ""


def test_missing_package_says_which_extra() -> None:
    with pytest.raises(MissingPackageError, match=r"drift-toolkit\[reasoning-gym\]"):
        require_package("reasoning_gym_not_installed_here", "reasoning-gym", "reasoning-gym==0.1.25")


# ---- drift rollout / drift eval on the tiny model --------------------------------------------------
ENV_KWARGS = {
    "task": "basic_arithmetic",
    "min_digits": 1,
    "max_digits": 1,
    "max_turns": 2,
    "feedback": "hint",
}


def test_drift_rollout_on_reasoning_gym(tiny_model_dir: Path, tmp_path: Path) -> None:
    records = drift_rollout_records(ENV_ID, ENV_KWARGS, tiny_model_dir, tmp_path / "rg.jsonl")
    assert len(records) == 4 and {r["prompt_id"] for r in records} == {0, 1}
    assert all(
        r["env_id"] == ENV_ID and r["task_id"].startswith("reasoning_gym/basic_arithmetic/0/test/")
        for r in records
    )
    assert all(r["messages"][1]["content"].startswith("Calculate") for r in records)


def test_drift_eval_on_reasoning_gym(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval" / "metrics.json"
    argv = ["eval", "--model", str(tiny_model_dir), "--env", ENV_ID, "--env-kwargs", json.dumps(ENV_KWARGS)]
    argv += ["--num-tasks", "3", "--max-new-tokens", "8", "--out", str(out)]
    assert drift_main(argv) == 0
    metrics = json.loads(out.read_text())
    assert metrics["env"] == ENV_ID and metrics["num_episodes"] == 3 and metrics["max_turns"] == 2
    assert list(metrics["success_at"]) == ["1", "2"]
