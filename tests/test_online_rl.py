"""The GRPO-style online RL baseline: advantages against a naive loop, and two real steps on the tiny model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from parity_env import register_parity_env
from transformers import AutoModelForCausalLM, AutoTokenizer

from drift_train.online_rl import OnlineRLConfig, group_advantages, main, train_online_rl

PARITY_ENV_ID = "drift-test/OnlineRLParity-v0"


def naive_advantages(returns: list[float], groups: list[int], eps: float = 1e-6) -> list[float]:
    """(R_i - mean_g) / (std_g + eps) with the population std, computed group by group; ties give 0."""
    out = [0.0] * len(returns)
    for g in set(groups):
        members = [i for i, gi in enumerate(groups) if gi == g]
        values = [returns[i] for i in members]
        if all(v == values[0] for v in values):
            continue
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        for i in members:
            out[i] = (returns[i] - mean) / (std + eps)
    return out


def test_group_advantages_match_naive_loop() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), 5)
    rng.shuffle(groups)  # members of a group need not be adjacent
    returns = rng.choice([-0.6, -0.1, 0.0, 0.81, 0.9, 1.0], size=groups.size)
    returns[groups == 3] = 0.1   # tied groups, with a value whose float mean is off by an ulp
    returns[groups == 7] = 0.81
    got = group_advantages(returns, groups)
    want = naive_advantages(returns.tolist(), groups.tolist())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.all(got[groups == 3] == 0.0) and np.all(got[groups == 7] == 0.0)  # exactly 0: skipped in training
    for g in range(12):  # standardised: mean 0 and (population) std ~1 in every untied group
        a = got[groups == g]
        assert abs(a.mean()) < 1e-12
        assert a.std() == pytest.approx(1.0, abs=1e-4) or np.all(a == 0.0)


def test_group_advantages_small_cases() -> None:
    np.testing.assert_allclose(group_advantages(np.array([1.0, 0.0]), np.array([0, 0])), [1.0, -1.0], atol=1e-5)
    assert group_advantages(np.array([0.1, 0.1, 0.1]), np.array([0, 0, 0])).tolist() == [0.0, 0.0, 0.0]
    assert group_advantages(np.array([]), np.array([], dtype=int)).shape == (0,)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="samples must be >= 2"):
        OnlineRLConfig(model="m", samples=1).validate()
    with pytest.raises(ValueError, match="steps must be >= 1"):
        OnlineRLConfig(model="m", steps=0).validate()
    with pytest.raises(ValueError, match="model is required"):
        OnlineRLConfig().validate()


@pytest.fixture(scope="module")
def parity_env_id() -> str:
    return register_parity_env(PARITY_ENV_ID)


def test_two_steps_update_the_model_and_save_it(tiny_model_dir: Path, parity_env_id: str, tmp_path: Path) -> None:
    out = tmp_path / "online_rl"
    config = OnlineRLConfig(env_id=parity_env_id, env_kwargs={"max_turns": 2}, model=str(tiny_model_dir),
                            output_dir=str(out), steps=2, tasks_per_step=3, samples=4, max_new_tokens=6,
                            learning_rate=1e-2, seed=1)
    summary = train_online_rl(config, progress=False)

    log = summary["log"]
    assert [e["step"] for e in log] == [1, 2]
    assert 0 < log[0]["generated_tokens"] < log[1]["generated_tokens"] == summary["generated_tokens"]
    assert sum(e["trained_trajectories"] for e in log) > 0  # some groups had distinct returns
    assert all(0.0 <= e["success"] <= 1.0 and math.isfinite(e["loss"]) for e in log)

    saved = json.loads((out / "online_rl_log.json").read_text())
    assert saved["generated_tokens"] == summary["generated_tokens"] and saved["log"] == log
    assert saved["config"]["env_id"] == parity_env_id and saved["config"]["steps"] == 2

    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).state_dict()
    assert before.keys() == after.keys()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed, "two policy-gradient steps left every weight unchanged"
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


def test_all_tied_groups_train_nothing(tiny_model_dir: Path, tmp_path: Path) -> None:
    # the random tiny model never boxes an answer in MathFeedback: every return ties, no gradient step
    out = tmp_path / "tied"
    rc = main(["--model", str(tiny_model_dir), "--env", "drift/MathFeedback-v0",
               "--env-kwargs", json.dumps({"difficulty": "easy", "max_turns": 1}), "--output-dir", str(out),
               "--steps", "1", "--tasks-per-step", "2", "--samples", "2", "--max-new-tokens", "4"])
    assert rc == 0
    log = json.loads((out / "online_rl_log.json").read_text())["log"]
    assert log[0]["trained_trajectories"] == 0 and log[0]["loss"] == 0.0 and log[0]["success"] == 0.0
    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
