"""Any registered env inside TRL's ``GRPOTrainer(environment_factory=...)`` (tested with trl 1.16.0).

TRL's seam: an environment is a stateful object; the trainer builds one per rollout (pooled and reused),
calls ``reset(**row)`` with the dataset row, offers the object's public methods to the model as tools,
and, when the class defines ``get_reward()``, calls it once per finished rollout for the reward.

Here the one tool is ``submit(reply)``: it steps the env with the reply and returns the env's feedback,
so a model that calls it again after a wrong answer plays a multi-turn episode. ``get_reward()`` is the
episode's DRIFT return (:meth:`drift_envs.integrations.episode.Episode.episode_return`: γ-discounted
turn rewards, the format penalty, the repeated-answer penalty). A rollout that never calls ``submit``
gave no answer and is scored as one reply without a readable answer: the env's ``format_penalty``.

**Feedback is a tool message, not a user turn.** TRL 1.16's environment loop only appends the results
of tool calls (``{"role": "tool", ...}``) to the conversation; it has no way for an environment to add a
user message after a reply. Our envs' conversations (``info["messages"]``, ``drift rollout``, DRIFT's
training data) have the feedback as a user turn, so a model trained here sees the same words in another
role, and only models whose chat template renders tool calls (TRL checks ``supports_tool_calling``) and
whose tool calls TRL can parse (its ``add_response_schema`` knows Qwen, Llama 3.1+, GLM, gpt-oss, ...)
can play. Where feedback must be a user turn, TRL's other seam is ``GRPOTrainer(rollout_func=...)``: the
function generates whole episodes itself and returns the completion ids with an ``env_mask`` that
leaves the feedback tokens out of the loss — our rollout engine (:mod:`drift_train.rollout`) plays
exactly those episodes; this module does not ship such a function yet.

    from trl import GRPOConfig, GRPOTrainer
    from drift_envs.integrations.trl import environment_factory, task_dataset

    trainer = GRPOTrainer(
        model="Qwen/Qwen2.5-0.5B-Instruct",
        args=GRPOConfig(output_dir="out", max_tool_calling_iterations=3),
        train_dataset=task_dataset("drift/MathFeedback-v0", split="train", n=512, max_turns=3),
        environment_factory=environment_factory("drift/MathFeedback-v0", max_turns=3),
    )
"""

from __future__ import annotations

import re
from typing import Any

from drift_envs.integrations.episode import DEFAULT_DIVERSITY_LAMBDA, DEFAULT_GAMMA, Episode, task_rows

__all__ = ["DriftToolEnv", "environment_factory", "task_dataset"]


class DriftToolEnv:
    """Base of the classes :func:`environment_factory` makes: one env, one episode per rollout.

    Its public methods are what TRL exposes (``reset``, ``get_reward``, and the tool ``submit``);
    everything else is private so TRL does not offer it as a tool. The played episode is
    ``self.episode`` (its ``replies``, ``messages`` and ``record()``).
    """

    env_id: str = ""
    env_kwargs: dict = {}
    gamma: float = DEFAULT_GAMMA
    diversity_lambda: float = DEFAULT_DIVERSITY_LAMBDA

    def __init__(self) -> None:
        if not self.env_id:
            raise TypeError(
                "make the class with environment_factory(env_id, **env_kwargs), not DriftToolEnv itself"
            )
        self.episode = Episode(self.env_id, self.env_kwargs)

    def reset(
        self,
        task_index: int | None = None,
        task_id: str | None = None,
        env_seed: int | None = None,
        prompt: list | None = None,
        **row: Any,
    ) -> None:
        """Start the episode of a dataset row (TRL calls ``reset(**row)``; rows from :func:`task_dataset`).

        The row's ``prompt`` is already the env's opening messages, so nothing is added to it (returns
        None); a ``prompt`` that differs from what the env opens with (the rows were made with other env
        kwargs or another split) is a ``ValueError``. Other columns are ignored.
        """
        if task_index is None and task_id is None:
            raise ValueError(
                f"{self.env_id}: the dataset row names no task (columns {sorted(row) + ['prompt'] * (prompt is not None)}); "
                "build the dataset with drift_envs.integrations.trl.task_dataset, whose rows carry task_index"
            )
        self.episode.reset(index=task_index, task_id=task_id, seed=env_seed)
        if prompt is not None:
            opening = [{"role": m["role"], "content": m["content"]} for m in self.episode.messages]
            given = [{"role": m["role"], "content": m["content"]} for m in prompt]
            if given != opening:
                raise ValueError(
                    f"{self.env_id}: the row of task {task_index if task_id is None else task_id!r} has the prompt "
                    f"{given!r}, but the env (kwargs {self.env_kwargs}) opens that task with {opening!r}; build the "
                    "dataset with task_dataset() and the same env kwargs as environment_factory()"
                )
        return None

    def submit(self, reply: str) -> str:
        """Submit your reply to the task; the environment checks it and answers with feedback.

        Args:
            reply: Your whole reply to the task, with the final answer written as the task asks.

        Returns:
            The environment's feedback on the reply (whether it is correct, and what was wrong).
        """
        if self.episode.done:
            raise ValueError("the episode is over: do not submit again")
        feedback, _, _, _, _ = self.episode.step(str(reply))
        return feedback

    def get_reward(self) -> float:
        """The episode's DRIFT return; the env's format penalty when nothing was submitted."""
        if not self.episode.replies:
            return float(getattr(self.episode.env.unwrapped, "format_penalty", 0.0))
        return self.episode.episode_return(self.gamma, self.diversity_lambda)


def environment_factory(
    env_id: str,
    *,
    split: str = "train",
    gamma: float = DEFAULT_GAMMA,
    diversity_lambda: float = DEFAULT_DIVERSITY_LAMBDA,
    **env_kwargs: Any,
) -> type[DriftToolEnv]:
    """A class for ``GRPOTrainer(environment_factory=...)``: each instance plays ``env_id`` made with
    ``split`` (``"train"``, as :func:`task_dataset`) and ``env_kwargs``; ``gamma``/``diversity_lambda``
    are the return's γ and λ (DRIFT's defaults).

    The class is named after the env (``MathFeedback_v0``), which is the name TRL logs its reward under.
    The env is made once here, so a bad id or kwarg fails now rather than inside the trainer.
    """
    env_kwargs = {**env_kwargs, "split": split}
    Episode(env_id, env_kwargs).close()
    name = re.sub(r"\W", "_", env_id.rsplit("/", 1)[-1])
    return type(
        name,
        (DriftToolEnv,),
        {
            "env_id": env_id,
            "env_kwargs": dict(env_kwargs),
            "gamma": float(gamma),
            "diversity_lambda": float(diversity_lambda),
            "__doc__": f"{env_id} ({env_kwargs}) for TRL's environment_factory; see DriftToolEnv.",
        },
    )


def task_dataset(
    env_id: str, split: str = "train", n: int | None = None, *, seed: int = 0, **env_kwargs: Any
):
    """The ``datasets.Dataset`` of tasks ``0..n-1`` of ``env_id`` (``split``, ``env_kwargs``) for
    ``GRPOTrainer(train_dataset=...)``: ``prompt`` (the opening messages), ``task_index``, ``task_id``,
    ``env_seed`` (the seed ``drift rollout --seed seed`` gives the task). Pass the same ``split`` and
    ``env_kwargs`` to :func:`environment_factory`."""
    from datasets import Dataset

    return Dataset.from_list(task_rows(env_id, split, n, seed=seed, **env_kwargs))
