"""The GRPO-style online RL baseline: advantages against a naive loop, and two real steps on the tiny model."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from parity_env import register_parity_env
from transformers import AutoModelForCausalLM, AutoTokenizer

from drift_train.commands.online_rl import main
from drift_train.online_rl import (
    OnlineRLConfig,
    default_rollout,
    group_advantages,
    policy_loss,
    train_online_rl,
)
from drift_train.policies.base import SamplingParams
from drift_train.rollout import RolloutConfig

PARITY_ENV_ID = "drift-test/OnlineRLParity-v0"

# one torch thread (conftest): the tiny model gains nothing from a second one, and on shared cores the two
# contend (test_hf_cache, test_evaluate and test_drift_vs_online_rl measured 4-8x slower with two at load 8)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    returns[groups == 3] = 0.1  # tied groups, with a value whose float mean is off by an ulp
    returns[groups == 7] = 0.81
    got = group_advantages(returns, groups)
    want = naive_advantages(returns.tolist(), groups.tolist())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.all(got[groups == 3] == 0.0) and np.all(
        got[groups == 7] == 0.0
    )  # exactly 0: skipped in training
    for g in range(12):  # standardised: mean 0 and (population) std ~1 in every untied group
        a = got[groups == g]
        assert abs(a.mean()) < 1e-12
        assert a.std() == pytest.approx(1.0, abs=1e-4) or np.all(a == 0.0)


def test_group_advantages_small_cases() -> None:
    np.testing.assert_allclose(
        group_advantages(np.array([1.0, 0.0]), np.array([0, 0])), [1.0, -1.0], atol=1e-5
    )
    assert group_advantages(np.array([0.1, 0.1, 0.1]), np.array([0, 0, 0])).tolist() == [0.0, 0.0, 0.0]
    assert group_advantages(np.array([]), np.array([], dtype=int)).shape == (0,)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="samples must be >= 2"):
        OnlineRLConfig(model="m", rollout=replace(default_rollout(), samples=1)).validate()
    with pytest.raises(ValueError, match="steps must be >= 1"):
        OnlineRLConfig(model="m", steps=0).validate()
    with pytest.raises(ValueError, match="model is required"):
        OnlineRLConfig().validate()


@pytest.fixture(scope="module")
def parity_env_id() -> str:
    return register_parity_env(PARITY_ENV_ID)


def test_two_steps_update_the_model_and_save_it(
    tiny_model_dir: Path, parity_env_id: str, tmp_path: Path
) -> None:
    out = tmp_path / "online_rl"
    config = OnlineRLConfig(
        rollout=RolloutConfig(
            env_id=parity_env_id,
            env_kwargs={"max_turns": 2},
            samples=4,
            seed=1,
            sampling=SamplingParams(temperature=1.0, max_new_tokens=6),
        ),
        model=str(tiny_model_dir),
        output_dir=str(out),
        steps=2,
        tasks_per_step=3,
        learning_rate=1e-2,
    )
    summary = train_online_rl(config, progress=False)

    log = summary["log"]
    assert [e["step"] for e in log] == [1, 2]
    assert 0 < log[0]["generated_tokens"] < log[1]["generated_tokens"] == summary["generated_tokens"]
    assert sum(e["trained_trajectories"] for e in log) > 0  # some groups had distinct returns
    assert all(0.0 <= e["success"] <= 1.0 and math.isfinite(e["loss"]) for e in log)

    saved = json.loads((out / "online_rl_log.json").read_text())
    assert saved["generated_tokens"] == summary["generated_tokens"] and saved["log"] == log
    assert saved["config"]["rollout"]["env_id"] == parity_env_id and saved["config"]["steps"] == 2

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
    rc = main(
        [
            "--model",
            str(tiny_model_dir),
            "--env",
            "drift/MathFeedback-v0",
            "--env-kwargs",
            json.dumps({"difficulty": "easy", "max_turns": 1}),
            "--output-dir",
            str(out),
            "--steps",
            "1",
            "--tasks-per-step",
            "2",
            "--samples",
            "2",
            "--max-new-tokens",
            "4",
        ]
    )
    assert rc == 0
    log = json.loads((out / "online_rl_log.json").read_text())["log"]
    assert log[0]["trained_trajectories"] == 0 and log[0]["loss"] == 0.0 and log[0]["success"] == 0.0
    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


def naive_ppo_kl(
    logp: list[float], old: list[float], adv: list[float], ref: list[float], eps: float, beta: float, n: float
) -> float:
    """−(1/N) Σ min(ρA, clip(ρ)A) + β (1/N) Σ (e^δ − δ − 1), token by token, δ = ref − logp."""
    total = 0.0
    for lp, lo, a, lr in zip(logp, old, adv, ref, strict=True):
        ratio = math.exp(lp - lo)
        total -= min(ratio * a, min(max(ratio, 1 - eps), 1 + eps) * a)
        delta = lr - lp
        total += beta * (math.exp(delta) - delta - 1)
    return total / n


def test_policy_loss_matches_naive_ppo_with_kl() -> None:
    rng = np.random.default_rng(3)
    logp, old, ref = (torch.tensor(rng.normal(-2.0, 0.4, 50)) for _ in range(3))
    adv = torch.tensor(rng.normal(0.0, 1.0, 50))
    loss, stats = policy_loss(logp, old, adv, ref, clip_epsilon=0.2, kl_coef=0.05, normaliser=60)
    want = naive_ppo_kl(logp.tolist(), old.tolist(), adv.tolist(), ref.tolist(), 0.2, 0.05, 60)
    assert float(loss) == pytest.approx(want, rel=1e-10)
    ratios = torch.exp(logp - old)
    outside = ((ratios > 1.2) & (adv > 0)) | ((ratios < 0.8) & (adv < 0))  # where the clipped side is the min
    assert stats["clipped"] == int(outside.sum()) > 0
    assert stats["k3"] > 0


def test_policy_loss_without_stabilisers_is_reinforce() -> None:
    # ρ ≡ 1 at π_old = π_θ: the gradient is −(1/N) Σ A ∇log π, the weighted-SFT gradient with weight A
    logp = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    adv = torch.tensor([1.5, -0.5, 0.25])
    loss, stats = policy_loss(logp, logp.detach(), adv, clip_epsilon=None, kl_coef=0.0, normaliser=4)
    loss.backward()
    assert torch.allclose(logp.grad, -adv / 4)
    assert stats == {"clipped": 0.0, "k3": 0.0}
    # clipping changes nothing at ρ = 1 either
    logp.grad = None
    policy_loss(logp, logp.detach(), adv, clip_epsilon=0.2, kl_coef=0.0, normaliser=4)[0].backward()
    assert torch.allclose(logp.grad, -adv / 4)


def test_stabilised_steps_clip_and_keep_kl(tiny_model_dir: Path, parity_env_id: str, tmp_path: Path) -> None:
    out = tmp_path / "ppo"
    config = OnlineRLConfig(
        rollout=RolloutConfig(
            env_id=parity_env_id,
            env_kwargs={"max_turns": 2},
            samples=4,
            seed=1,
            sampling=SamplingParams(temperature=1.0, max_new_tokens=6),
        ),
        model=str(tiny_model_dir),
        output_dir=str(out),
        steps=2,
        tasks_per_step=3,
        learning_rate=3e-2,
        ppo_epochs=2,
        minibatches=2,
        clip_epsilon=0.2,
        kl_coef=0.1,
        eval_every=1,
    )
    calls = []

    def evaluate(policy) -> dict:
        calls.append(policy)
        return {"success_at_1": 0.5}

    summary = train_online_rl(config, progress=False, evaluate=evaluate)
    log = summary["log"]
    # zero-advantage trajectories train too under the KL term, so every trajectory is in the batch
    assert all(e["trained_trajectories"] == 3 * 4 for e in log)
    # 4 updates per batch at a large rate move π_θ off π_old and π_ref: some tokens clip, the KL is > 0
    assert sum(e["clip_fraction"] for e in log) > 0
    assert log[-1]["kl"] > 0 and log[0]["kl"] >= 0
    assert all(e["cpu_s"] > 0 for e in log) and log[0]["cpu_s"] < log[1]["cpu_s"]
    evals = summary["evals"]
    assert [e["step"] for e in evals] == [0, 1, 2] and len(calls) == 3
    assert evals[0]["generated_tokens"] == 0 and evals[-1]["generated_tokens"] == summary["generated_tokens"]
    assert evals[-1]["cpu_s"] == pytest.approx(summary["cpu_s"])


def test_stabiliser_options_are_validated() -> None:
    with pytest.raises(ValueError, match="clip_epsilon"):
        OnlineRLConfig(model="m", clip_epsilon=1.5).validate()
    with pytest.raises(ValueError, match="kl_coef"):
        OnlineRLConfig(model="m", kl_coef=-0.1).validate()
    with pytest.raises(ValueError, match="minibatches"):
        OnlineRLConfig(model="m", minibatches=0).validate()


def test_the_flags_fill_the_nested_rollout_config_with_drift_rollouts_names() -> None:
    from drift_train.commands.online_rl import build_parser

    parser = build_parser()
    argv = ["--model", "m", "--env", "drift/MultipleChoice-v0", "--env_kwargs", '{"max_turns": 2}']
    argv += ["--samples", "3", "--temperature", "0.5", "--max-new-tokens", "7", "--seed", "4", "--top-k", "5"]
    config = parser.build(OnlineRLConfig, parser.parse_args([*argv, "--tasks-per-step", "6", "--steps", "2"]))
    assert (config.model, config.steps, config.tasks_per_step) == ("m", 2, 6)
    assert config.rollout == replace(
        default_rollout(),
        env_id="drift/MultipleChoice-v0",
        env_kwargs={"max_turns": 2},
        samples=3,
        seed=4,
        sampling=SamplingParams(temperature=0.5, top_k=5, max_new_tokens=7),
    )
    # unset flags keep the baseline's defaults (G = 8, temperature 1, 16 tokens), not RolloutConfig's
    defaults = parser.build(OnlineRLConfig, parser.parse_args(["--model", "m"]))
    assert defaults == OnlineRLConfig(model="m")
    # each step's episodes: tasks_per_step tasks from the offset, one chunk, a per-step seed
    step = config.step_rollout(2, task_offset=12)
    assert (step.num_tasks, step.task_offset, step.batch_size, step.seed) == (6, 12, 18, 4 * 100_003 + 2)
    assert step.sampling == config.rollout.sampling and step.env_kwargs == config.rollout.env_kwargs
