"""drift envs inside verifiers (the real verifiers package): load_environment, and verifiers' own
evaluate loop against a real ``transformers serve`` process of the tiny model, scored by our env."""

from __future__ import annotations

import gymnasium as gym
import pytest

vf = pytest.importorskip("verifiers", reason="the [verifiers] extra: pip install 'drift-toolkit[verifiers]'")

import drift_envs  # noqa: E402, F401
from drift_envs.integrations.verifiers import load_environment  # noqa: E402

ENV = "drift/MathFeedback-v0"
KWARGS = {"difficulty": "tiny", "max_turns": 2, "feedback": "hint"}


def naive_return(rewards: list[float], penalty: float, answers: list, gamma=0.9, lam=0.5) -> float:
    """docs/design.md's R, written out: Σ γ^(t-1) r_t + format_penalty − λ (1 − unique/answers)."""
    given = [a for a in answers if a is not None]
    unique = len({a for a in given if a}) / len(given) if given else 1.0
    return sum(gamma**t * r for t, r in enumerate(rewards)) + penalty - lam * (1 - unique)


def _content(message) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def test_load_environment_serves_the_env_tasks() -> None:
    env = load_environment(env_id=ENV, num_tasks=3, seed=5, **KWARGS)
    assert isinstance(env, vf.MultiTurnEnv)
    rows = env.get_eval_dataset()
    assert len(rows) == 3
    reference = gym.make(ENV, **KWARGS)  # split "test", as load_environment's default
    for i, row in enumerate(rows):
        assert row["info"]["task_index"] == i
        _, info = reference.reset(seed=row["info"]["env_seed"], options={"index": i})
        assert row["prompt"] == info["messages"]
    with pytest.raises(ValueError, match="cannot make env"):
        load_environment(env_id=ENV, num_tasks=2, no_such_kwarg=1)


def test_evaluate_on_a_served_tiny_model_scores_as_the_env(openai_server: str, tiny_model_dir) -> None:
    """verifiers' evaluate loop plays 3 tasks x 2 rollouts against the served tiny model; every rollout's
    feedback turns and reward are what a fresh gym env gives the same replies."""
    env = load_environment(env_id=ENV, num_tasks=3, **KWARGS)
    results = env.evaluate_sync(
        client=vf.ClientConfig(api_base_url=openai_server, max_retries=0),
        model=str(tiny_model_dir),
        sampling_args={"max_tokens": 16, "temperature": 1.0},
        rollouts_per_example=2,
        max_concurrent=2,
    )
    outputs = results["outputs"]
    assert len(outputs) == 6
    rows = env.get_eval_dataset()
    for out in outputs:
        assert out.get("error") is None, out.get("error")
        row = rows[out["example_id"]]
        completion = out["completion"]
        replies = [_content(m) for m in completion if m["role"] == "assistant"]
        feedback = [_content(m) for m in completion if m["role"] == "user"]
        reference = gym.make(ENV, **KWARGS)
        reference.reset(seed=row["info"]["env_seed"], options={"index": row["info"]["task_index"]})
        rewards, penalty, answers, seen_feedback = [], 0.0, [], []
        for reply in replies:
            obs, reward, terminated, truncated, info = reference.step(reply)
            step_penalty = 0.0 if info["format_ok"] else reference.unwrapped.format_penalty
            rewards.append(reward - step_penalty)
            penalty += step_penalty
            answers.append(info["answer"])
            if obs:
                seen_feedback.append(obs)
        assert terminated or truncated, "the rollout stopped before the env ended the episode"
        assert feedback == seen_feedback  # the env's feedback, as user turns
        assert out["reward"] == pytest.approx(naive_return(rewards, penalty, answers))
        assert out["metrics"]["turns"] == len(replies)
        assert out["metrics"]["solved"] == float(terminated)
    # the random tiny model rarely answers right: most rollouts took the feedback and tried again
    assert any(out["metrics"]["turns"] == 2 for out in outputs)
