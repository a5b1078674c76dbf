"""Every registered env as a SkyRL-gym env (tested with skyrl-gym 0.4.0).

``import drift_envs.integrations.skyrl`` registers each ``drift/*`` id, under the same id, in skyrl-gym's
registry, so ``skyrl_gym.make("drift/MathFeedback-v0", env_config=..., extras=...)`` works and so does
``env_class: drift/MathFeedback-v0`` in a SkyRL-train dataset. :func:`register_env` adds any other id
that follows the drift contract.

SkyRL-train makes one env per trajectory with ``skyrl_gym.make(env_class, env_config=<the YAML section
environment.skyrl_gym.<env_class>>, extras=<the dataset row's other columns>)``, calls ``init(prompt)``
and then ``step(reply)`` until ``done``. Here:

* ``env_config`` holds the env's kwargs (``max_turns``, ``feedback``, ``split``, ...), and a row's
  ``env_kwargs`` column adds to them;
* ``extras["task_index"]`` (or ``task_id``) picks the task and ``extras["env_seed"]`` seeds it (rows from
  :func:`task_rows`); SkyRL-train also puts its generator's ``max_turns`` in ``extras``: the env's own
  ``max_turns`` kwarg still decides when an episode ends, so keep the generator's at least as large;
* ``init(prompt)`` returns the env's opening messages (system prompt included); a non-empty ``prompt``
  that differs from them is a ``ValueError`` (the rows were made with other kwargs);
* ``step(reply)`` returns the feedback as a user message (no observation once ``done``), the env's
  reward for the step (``1.0`` correct, ``0.0`` wrong, plus ``format_penalty`` without a readable
  answer), ``done`` (solved or out of turns) and, in ``metadata``, the step's verdict, and on the last
  step the episode's DRIFT return (``episode_return``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import skyrl_gym
from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput

from drift_envs.integrations.episode import Episode
from drift_envs.integrations.episode import task_rows as _task_rows
from drift_envs.registration import ENV_IDS

__all__ = ["DriftTextEnv", "register_env", "task_rows"]

ENTRY_POINT = "drift_envs.integrations.skyrl:DriftTextEnv"


def _plain(config: Any) -> dict:
    """An ``env_config`` as a plain dict (SkyRL passes an omegaconf ``DictConfig``)."""
    if config is None:
        return {}
    if isinstance(config, Mapping):
        try:
            from omegaconf import DictConfig, OmegaConf

            if isinstance(config, DictConfig):
                return dict(OmegaConf.to_container(config, resolve=True))
        except ImportError:  # omegaconf is a dependency of skyrl-gym; a plain dict needs nothing
            pass
        return dict(config)
    raise TypeError(f"env_config must be a mapping of the env's kwargs, got {type(config).__name__}")


class DriftTextEnv(BaseTextEnv):
    """A drift env (any registered id) behind SkyRL-gym's ``BaseTextEnv``: ``init`` resets it on the
    row's task, ``step`` hands it one reply (see the module docstring for what comes back).

    Args:
        env_id: the registered id (the skyrl registry passes it for the ids it knows).
        env_config: the env's kwargs (SkyRL-train: the ``environment.skyrl_gym.<env_id>`` section).
        extras: the dataset row's other columns: ``task_index`` or ``task_id``, optional ``env_seed``
            and ``env_kwargs``.
    """

    def __init__(self, env_id: str, env_config: Any = None, extras: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        extras = dict(extras or {})
        self.env_id = env_id
        self.env_kwargs = {**_plain(env_config), **_plain(extras.get("env_kwargs"))}
        self.task_index = extras.get("task_index")
        self.task_id = extras.get("task_id")
        if self.task_index is None and self.task_id is None:
            raise ValueError(
                f"{env_id}: extras name no task (got {sorted(extras)}); each row needs task_index (or task_id): "
                "build the rows with drift_envs.integrations.skyrl.task_rows"
            )
        self.env_seed = extras.get("env_seed")
        self.episode = Episode(env_id, self.env_kwargs)
        self.max_turns = int(getattr(self.episode.env.unwrapped, "max_turns", 0) or 0)

    def init(self, prompt: list | None = None) -> tuple[list[dict], dict[str, Any]]:
        """Reset on the row's task; returns the opening messages and ``{"task_id", "index"}``."""
        self.episode.reset(index=self.task_index, task_id=self.task_id, seed=self.env_seed)
        self.turns = 0
        opening = [dict(m) for m in self.episode.messages]
        if prompt:
            given = [{"role": m["role"], "content": m["content"]} for m in prompt]
            if given != [{"role": m["role"], "content": m["content"]} for m in opening]:
                raise ValueError(
                    f"{self.env_id}: the row's prompt {given!r} is not what the env (kwargs {self.env_kwargs}) opens "
                    f"task {self.task_index if self.task_id is None else self.task_id!r} with ({opening!r}); make "
                    "the rows with task_rows() and the same env kwargs"
                )
        return opening, {"task_id": self.episode.info.get("task_id"), "index": self.episode.info.get("index")}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """Hand the env one reply: feedback as a user message, the step's reward, done, the verdict."""
        feedback, reward, terminated, truncated, info = self.episode.step(action)
        self.turns += 1
        done = terminated or truncated
        metadata = {
            key: info[key]
            for key in ("task_id", "turn", "correct", "format_ok", "answer", "repeated", "undecided")
            if key in info
        }
        metadata["terminated"], metadata["truncated"] = terminated, truncated
        if done:
            metadata["episode_return"] = self.episode.episode_return()
        observations = [] if done else [{"role": "user", "content": feedback}]
        return BaseTextEnvStepOutput(
            observations=observations, reward=reward, done=done, metadata=metadata, postprocessed_action=None
        )

    def get_metrics(self) -> dict[str, Any]:
        """Per episode: solved (0/1), replies given, and the DRIFT return."""
        return {
            "solved": float(self.episode.terminated),
            "turns": self.turns,
            "episode_return": self.episode.episode_return(),
        }

    def close(self) -> None:
        """Close the drift env (CodeFeedback stops its sandbox workers)."""
        self.episode.close()


def register_env(env_id: str) -> None:
    """Register ``env_id`` (a registered Gymnasium id following the drift contract) with skyrl-gym under
    the same id; a no-op when it is there already."""
    if env_id not in skyrl_gym.registry:
        skyrl_gym.register(id=env_id, entry_point=ENTRY_POINT, kwargs={"env_id": env_id})


def task_rows(
    env_id: str, split: str = "train", n: int | None = None, *, seed: int = 0, **env_kwargs: Any
) -> list[dict]:
    """SkyRL-train dataset rows for tasks ``0..n-1``: ``prompt``, ``env_class`` (the id), ``task_index``,
    ``task_id``, ``env_seed`` and ``env_kwargs`` (``split`` included), so each row plays on its own."""
    rows = _task_rows(env_id, split, n, seed=seed, **env_kwargs)
    return [{**row, "env_class": env_id, "env_kwargs": {**env_kwargs, "split": split}} for row in rows]


for _env_id in ENV_IDS:
    register_env(_env_id)
