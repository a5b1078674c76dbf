"""drift envs inside SkyRL-gym (the real skyrl-gym package): registry, init, step, rewards, errors."""

from __future__ import annotations

import gymnasium as gym
import pytest

skyrl_gym = pytest.importorskip("skyrl_gym", reason="the [skyrl] extra: pip install 'drift-toolkit[skyrl]'")

from skyrl_gym.envs.base_text_env import BaseTextEnv  # noqa: E402

import drift_envs  # noqa: E402
import drift_envs.integrations.skyrl as drift_skyrl  # noqa: E402 - registers the drift ids with skyrl-gym

MATH = ("drift/MathFeedback-v0", {"max_turns": 3, "feedback": "hint"})
CODE = ("drift/CodeFeedback-v0", {"max_turns": 3, "feedback": "first_failure"})


def test_every_drift_id_is_in_skyrl_registry() -> None:
    assert set(drift_envs.ENV_IDS) <= set(skyrl_gym.registry)
    env_id, kwargs = MATH
    row = drift_skyrl.task_rows(env_id, "test", 1, **kwargs)[0]
    env = skyrl_gym.make(env_id, env_config={}, extras=row)
    assert isinstance(env, BaseTextEnv) and isinstance(env, skyrl_gym.Env)
    assert env.spec.id == env_id


def naive_return(rewards: list[float], penalty: float, answers: list, gamma=0.9, lam=0.5) -> float:
    """docs/design.md's R, written out: Σ γ^(t-1) r_t + format_penalty − λ (1 − unique/answers)."""
    given = [a for a in answers if a is not None]
    unique = len({a for a in given if a}) / len(given) if given else 1.0
    return sum(gamma**t * r for t, r in enumerate(rewards)) + penalty - lam * (1 - unique)


@pytest.mark.parametrize("env_id, kwargs", [MATH, CODE], ids=["math", "code"])
def test_episode_steps_like_the_gym_env(env_id: str, kwargs: dict) -> None:
    """A wrong reply, a reply without an answer, then the right one: SkyRL sees the gym env's own
    feedback as user messages, its rewards and its end, and the DRIFT return of those steps."""
    row = drift_skyrl.task_rows(env_id, "test", 3, seed=4, **kwargs)[2]
    # the kwargs through env_config, as SkyRL-train's YAML section gives them (no split: the env's default)
    env = skyrl_gym.make(
        env_id, env_config=dict(kwargs), extras={"task_index": 2, "env_seed": row["env_seed"]}
    )
    opening, meta = env.init(row["prompt"])
    assert opening == row["prompt"] and opening[-1]["role"] == "user"
    assert meta["task_id"] == row["task_id"]
    test_env = gym.make(env_id, **kwargs)
    obs, info = test_env.reset(seed=row["env_seed"], options={"index": 2})
    assert opening == info["messages"]
    right = test_env.unwrapped.oracle_reply()
    wrong = "def nothing():\n    return None" if "Code" in env_id else "\\boxed{-12345}"
    replies = [wrong, "I am not sure.", right]
    rewards, answers = [], []
    for t, reply in enumerate(replies, start=1):
        out = env.step(reply)
        obs, reward, terminated, truncated, info = test_env.step(reply)
        rewards.append(reward)
        answers.append(info.get("answer"))
        assert out["reward"] == reward
        assert out["done"] == (terminated or truncated)
        if out["done"]:
            assert out["observations"] == [] and t == 3 and terminated
        else:
            assert out["observations"] == [{"role": "user", "content": obs}] and obs
        assert out["metadata"]["correct"] == info["correct"]
    assert rewards[0] == 0.0 and rewards[1] < 0 and rewards[2] == 1.0
    penalty = rewards[1]
    expected = naive_return([0.0, 0.0, 1.0], penalty, answers)
    assert out["metadata"]["episode_return"] == pytest.approx(expected)
    assert env.get_metrics() == {"solved": 1.0, "turns": 3, "episode_return": pytest.approx(expected)}
    env.close()
    test_env.close()


def test_rows_carry_their_own_kwargs_and_bad_rows_are_refused() -> None:
    env_id, kwargs = MATH
    row = drift_skyrl.task_rows(env_id, "train", 2, **kwargs)[1]
    assert row["env_class"] == env_id and row["env_kwargs"] == {**kwargs, "split": "train"}
    env = skyrl_gym.make(env_id, env_config={}, extras=row)
    opening, _ = env.init(row["prompt"])
    assert opening == row["prompt"]
    assert env.max_turns == 3
    with pytest.raises(ValueError, match="task_index"):
        skyrl_gym.make(env_id, env_config={}, extras={"max_turns": 3})
    other = skyrl_gym.make(env_id, env_config={}, extras={"task_index": 1})  # test split: another task
    with pytest.raises(ValueError, match="not what the env"):
        other.init(row["prompt"])
    with pytest.raises(RuntimeError, match="before reset"):
        skyrl_gym.make(env_id, env_config={}, extras={"task_index": 1}).step("\\boxed{1}")
