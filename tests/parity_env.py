"""A tiny env for tests of the trainer side: task i is solved by a non-empty reply whose length has parity i % 2.

Sampled replies of a random tiny model solve some episodes and fail others at every turn, so groups have
distinct returns, metrics are non-trivial and advantages are non-zero (MathFeedback would give 0 everywhere).
Importable from test files (pytest puts ``tests/`` on ``sys.path``) and, as ``parity_env:ParityEnv``, from
a subprocess started with ``tests/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import gymnasium as gym

from drift_envs import Feedback, MultiTurnTextEnv, Task, Verdict


class ParityEnv(MultiTurnTextEnv):
    """Task i: reply with a text whose length has parity i % 2 (``num_tasks`` tasks)."""

    def __init__(self, *, num_tasks: int = 40, **kwargs) -> None:
        super().__init__(**kwargs)
        self._num_tasks = num_tasks

    def num_tasks(self) -> int:
        return self._num_tasks

    def get_task(self, index: int) -> Task:
        return Task(
            task_id=f"parity-{index}",
            prompt=f"Reply with {'an odd' if index % 2 else 'an even'} length.",
            answer=index % 2,
            meta={},
        )

    def first_message(self, task: Task) -> str:
        return task.prompt

    def verify(self, task: Task, action: str) -> Verdict:
        text = action.strip()
        return Verdict(
            correct=bool(text) and len(text) % 2 == task.answer, format_ok=bool(text), answer=text or None
        )

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        return Feedback(text="Wrong parity, try again.", kind="binary")


def register_parity_env(env_id: str, **kwargs) -> str:
    """Register :class:`ParityEnv` under ``env_id`` (once) with default kwargs; returns the id."""
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=ParityEnv, kwargs=kwargs)
    return env_id
