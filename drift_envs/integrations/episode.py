"""One episode of a registered env, recorded as ``drift rollout`` records it, for the trainer adapters.

The adapters (TRL, verifiers, SkyRL-gym) each hand the model's replies to an :class:`Episode` and read
back the feedback, the per-step reward and, when the episode is over, its return. The episode keeps
what the rollout engine (:mod:`drift_train.rollout`) keeps per turn — the reward without the format
penalty, the penalty apart, the verdict, the extracted answer, undecided turns — so its
:meth:`Episode.record` is a trajectory record and :meth:`Episode.episode_return` is DRIFT's return of
that record, computed by :func:`drift_train.weights.trajectory_returns` itself:
``R = Σ_t γ^(t-1) r_t + format_penalty − λ·(1 − unique_answers/answers)`` (γ=0.9, λ=0.5 by default).

Task rows (:func:`task_rows`) name a task by its index and carry the env seed ``drift rollout --seed S``
gives that task (``combine_seeds([S, index])``), so an adapter's episode on row ``i`` is the engine's
episode on ``prompt_id=i`` and the same replies get the same rewards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

DEFAULT_GAMMA = 0.9  # γ of DRIFT's return (the reference release's default; drift_train.weights.WeightConfig)
DEFAULT_DIVERSITY_LAMBDA = 0.5  # λ, the repeated-answer penalty (idem)


def make_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)`` with the ``drift/*`` ids registered; a bad id or kwarg is a
    ``ValueError`` naming both."""
    import drift_envs  # noqa: F401 - registers the drift/* ids

    env_kwargs = dict(env_kwargs or {})
    try:
        return gym.make(env_id, disable_env_checker=True, **env_kwargs)
    except (gym.error.Error, TypeError) as err:
        raise ValueError(f"cannot make env {env_id!r} with kwargs {env_kwargs}: {err}") from err


def env_seed(seed: int, index: int) -> int:
    """The env seed ``drift rollout --seed seed`` resets task ``index`` with."""
    from drift_train.policies.base import combine_seeds  # numpy only: no torch

    return combine_seeds([seed, index])


def task_rows(
    env_id: str,
    split: str = "train",
    n: int | None = None,
    *,
    seed: int = 0,
    start: int = 0,
    **env_kwargs: Any,
) -> list[dict]:
    """Rows for tasks ``start .. start+n-1`` of ``env_id`` (``split`` and ``env_kwargs`` go to the env):
    ``prompt`` (the opening messages, system prompt included), ``task_index``, ``task_id`` and
    ``env_seed`` (the seed ``drift rollout --seed seed`` resets that task with). ``n=None``: every task
    from ``start``. Raises ``ValueError`` when the env has fewer tasks than asked for."""
    env = make_env(env_id, {**env_kwargs, "split": split})
    try:
        available = env.unwrapped.num_tasks() if hasattr(env.unwrapped, "num_tasks") else None
        if n is None:
            if available is None:
                raise ValueError(f"{env_id} does not say how many tasks it has (num_tasks()); pass n")
            n = available - start
        if n <= 0 or start < 0:
            raise ValueError(f"n={n} tasks from start={start}: nothing to serve")
        if available is not None and start + n > available:
            raise ValueError(
                f"{env_id} (split={split!r}) has {available} tasks; start={start} + n={n} goes past the end"
            )
        rows = []
        for index in range(start, start + n):
            seed_i = env_seed(seed, index)
            _, info = env.reset(seed=seed_i, options={"index": index})
            rows.append(
                {
                    "prompt": [dict(m) for m in info["messages"]],
                    "task_index": index,
                    "task_id": str(info["task_id"]),
                    "env_seed": seed_i,
                }
            )
        return rows
    finally:
        env.close()


class Episode:
    """One env and its current episode: reset on a task, step with replies, score the episode.

    Args:
        env_id: a registered id (``drift/MathFeedback-v0``, or any env that follows the drift contract).
        env_kwargs: the env's keyword arguments.
    """

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> None:
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.env = make_env(env_id, self.env_kwargs)
        self._clear()
        self.started = False

    def _clear(self) -> None:
        self.rewards: list[float] = []  # r_t without the format penalty, as the rollout engine records it
        self.penalties: list[float] = []
        self.verifier: list[int] = []
        self.answers: list[str | None] = []
        self.undecided: list[int] = []
        self.replies: list[str] = []
        self.messages: list[dict] = []
        self.info: dict = {}
        self.terminated = False
        self.truncated = False

    @property
    def done(self) -> bool:
        """The episode ended: solved (``terminated``) or out of turns (``truncated``)."""
        return self.terminated or self.truncated

    def reset(self, *, index: int | None = None, task_id: str | None = None, seed: int | None = None) -> str:
        """Start an episode on task ``index`` (or ``task_id``); returns the first user message."""
        options = {}
        if index is not None:
            options["index"] = int(index)
        if task_id is not None and index is None:
            options["task_id"] = str(task_id)
        self._clear()
        obs, info = self.env.reset(seed=None if seed is None else int(seed), options=options or None)
        self.info = info
        self.messages = list(info["messages"])
        self.started = True
        return obs

    def step(self, reply: str) -> tuple[str, float, bool, bool, dict]:
        """Hand the env one reply; returns ``(feedback, reward, terminated, truncated, info)``.

        ``feedback`` is the env's message about the reply: the observation, or, on the step that ends
        the episode (whose observation is empty by the env contract), ``info["feedback"]["text"]``.
        """
        if not self.started:
            raise RuntimeError(f"{self.env_id}: step() before reset(); reset the episode on a task first")
        if self.done:
            raise RuntimeError(
                f"{self.env_id}: the episode on task {self.info.get('task_id')!r} is over "
                f"({'solved' if self.terminated else 'out of turns'}); reset it before stepping again"
            )
        if not isinstance(reply, str):
            raise TypeError(f"{self.env_id}: a reply must be a str, got {type(reply).__name__}")
        obs, reward, terminated, truncated, info = self.env.step(reply)
        format_ok = bool(info.get("format_ok", True))
        # the engine's split (drift_train.rollout._step_episodes): the penalty apart from the turn reward
        penalty = 0.0 if format_ok else float(getattr(self.env.unwrapped, "format_penalty", 0.0))
        self.rewards.append(float(reward) - penalty)
        self.penalties.append(penalty)
        self.verifier.append(int(bool(info.get("correct", terminated))))
        if info.get("undecided", False):
            self.undecided.append(len(self.rewards))
        answer = info.get("answer")
        self.answers.append(None if answer is None else str(answer))
        self.replies.append(reply)
        self.messages = list(info["messages"])
        self.info = info
        self.terminated, self.truncated = bool(terminated), bool(truncated)
        feedback = obs
        if not feedback and isinstance(info.get("feedback"), dict):
            feedback = str(info["feedback"].get("text", ""))
        return feedback, float(reward), self.terminated, self.truncated, info

    def record(self) -> dict:
        """The episode so far as a trajectory record's scoring fields (``turn_rewards``, ``verifier``,
        ``t_star``, ``answer_norms``, ``format_penalty``, ``undecided_turns`` when any)."""
        keys = [f"t{t}" for t in range(1, len(self.rewards) + 1)]
        record = {
            "prompt_id": self.info.get("index", 0),
            "task_id": self.info.get("task_id"),
            "messages": self.messages,
            "turn_rewards": dict(zip(keys, self.rewards, strict=True)),
            "verifier": dict(zip(keys, self.verifier, strict=True)),
            "t_star": next((t for t, v in enumerate(self.verifier, start=1) if v), None),
            "answer_norms": list(self.answers),
            "format_penalty": round(float(sum(self.penalties)), 12),
        }
        if self.undecided:
            record["undecided_turns"] = list(self.undecided)
        return record

    def episode_return(
        self, gamma: float = DEFAULT_GAMMA, diversity_lambda: float = DEFAULT_DIVERSITY_LAMBDA
    ) -> float:
        """DRIFT's return of the episode so far (:func:`drift_train.weights.trajectory_returns`); 0.0
        before any reply. An undecided turn counts as the env scored it (0), as in the record."""
        from drift_train.weights import records_to_inputs, trajectory_returns  # numpy only: no torch

        if not self.rewards:
            return 0.0
        return float(trajectory_returns(records_to_inputs([self.record()]), gamma, diversity_lambda)[0])

    def close(self) -> None:
        """Close the env (CodeFeedback stops its sandbox workers)."""
        self.env.close()
