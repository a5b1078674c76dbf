"""Any registered env inside TRL's ``GRPOTrainer(environment_factory=...)`` (tested with trl 1.16.0).

TRL's seam: an environment is a stateful object; the trainer builds one per rollout (pooled and reused),
calls ``reset(**row)`` with the dataset row, offers the object's public methods to the model as tools,
and, when the class defines ``get_reward()``, calls it once per finished rollout for the reward.

Here the one tool is ``submit(reply)``: it steps the env with the reply and returns the env's feedback,
so a model that calls it again after a wrong answer plays a multi-turn episode. ``get_reward()`` is the
episode's DRIFT return (:meth:`drift_envs.integrations.episode.Episode.episode_return`: γ-discounted
turn rewards, the format penalty, the repeated-answer penalty). A rollout that never calls ``submit``
gave no answer and is scored as one reply without a readable answer: the env's ``format_penalty``.

**Feedback is a tool message, not a user turn.** TRL 1.16's environment loop
(``GRPOTrainer._tool_call_loop``) appends each tool call's result as ``{"role": "tool", "name": ...,
"content": <what submit returned>}`` after the assistant message that made the call, renders that with the
chat template and lets the model continue; nothing else is added to the conversation (``reset`` may only
extend the prompt's last message, before the first reply). So through ``environment_factory`` our feedback reaches the model
as a tool result, while our envs' conversations (``info["messages"]``, ``drift rollout``, DRIFT's
training data) have it as a user turn: a model trained here sees the same words in another role, and only
models whose chat template renders tool calls (TRL checks ``supports_tool_calling``) and whose tool calls
TRL can parse (its ``add_response_schema`` knows Qwen, Llama 3.1+, GLM, gpt-oss, ...) can play.

**The rollout_func path: feedback as user turns.** ``GRPOTrainer(rollout_func=...)`` hands the generation
to a function ``(prompts, trainer) -> {"prompt_ids", "completion_ids", "logprobs", ...}``.
:func:`rollout_func` makes one that plays each prompt's episode in the env with the trainer's own model:
it samples a reply (TRL's generation config: temperature, top-p/k, ...; ``max_new_tokens`` tokens a reply),
steps the env with it, appends the env's feedback as a **user turn** rendered by the chat template, and
samples the next reply from those exact ids, until the env ends the episode. It returns the first
prompt's ids, the rest of the episode as the completion (replies and feedback), ``env_mask`` (1 on the
sampled tokens, 0 on the feedback's, so only the model's tokens enter the loss), the sampling
log-probabilities (0 on feedback tokens), and ``env_reward`` (the episode's DRIFT return, as
``get_reward()`` computes it) with ``drift_record`` (the episode's record) for the reward functions;
:func:`env_reward` is the reward function that passes ``env_reward`` on. Any chat model works, tool
calling or not::

    from trl import GRPOConfig, GRPOTrainer
    from drift_envs.integrations.trl import env_reward, rollout_func, task_dataset

    trainer = GRPOTrainer(
        model="Qwen/Qwen2.5-0.5B-Instruct",
        args=GRPOConfig(output_dir="out", max_completion_length=256),
        train_dataset=task_dataset("drift/MathFeedback-v0", split="train", n=512, max_turns=3),
        rollout_func=rollout_func("drift/MathFeedback-v0", max_turns=3),
        reward_funcs=env_reward,
    )

The tool path, for models that call tools::

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

import copy
import json
import re
from collections.abc import Sequence
from typing import Any

from drift_envs.integrations.episode import DEFAULT_DIVERSITY_LAMBDA, DEFAULT_GAMMA, Episode, task_rows

__all__ = [
    "DriftRolloutFunc",
    "DriftToolEnv",
    "env_reward",
    "environment_factory",
    "rollout_func",
    "task_dataset",
]


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


# what stands in for the last reply when rendering the feedback turn: the text after it is the feedback's
_REPLY_MARK = "\u2063DRIFT-REPLY\u2063"


def _prompt_key(messages: Sequence[dict]) -> str:
    return json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)


class DriftRolloutFunc:
    """The callable :func:`rollout_func` makes: ``(prompts, trainer) -> dict`` for ``GRPOTrainer``.

    Each prompt (one per rollout: TRL's sampler already repeats a task ``num_generations`` times) is
    looked up in the trainer's train (or eval) dataset, whose rows (from :func:`task_dataset`) name the
    task index and env seed; identical openings are the same task to the model, and the first such row is
    the one played. Counters for cost accounting: ``generated_tokens`` (sampled tokens, end tokens
    included, as ``drift rollout`` counts them), ``episodes`` and ``calls``.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict,
        *,
        gamma: float,
        diversity_lambda: float,
        max_new_tokens: int | None,
    ) -> None:
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        self.gamma = float(gamma)
        self.diversity_lambda = float(diversity_lambda)
        self.max_new_tokens = max_new_tokens
        self.generated_tokens = 0
        self.episodes = 0
        self.calls = 0
        self._pool: list[Episode] = []  # one env per concurrent rollout, reused across calls
        self._tasks: dict[int, dict[str, dict]] = {}  # id(dataset) -> prompt key -> row

    def close(self) -> None:
        """Close the pooled envs (CodeFeedback stops its sandbox workers)."""
        for episode in self._pool:
            episode.close()
        self._pool.clear()

    def _task_table(self, trainer: Any) -> dict[str, dict]:
        table: dict[str, dict] = {}
        for dataset in (trainer.train_dataset, getattr(trainer, "eval_dataset", None)):
            if dataset is None:
                continue
            datasets = dataset.values() if isinstance(dataset, dict) else [dataset]
            for data in datasets:
                if id(data) not in self._tasks:
                    columns = set(getattr(data, "column_names", None) or [])
                    if not {"prompt", "task_index", "env_seed"} <= columns:
                        raise ValueError(
                            f"{self.env_id}: rollout_func needs dataset rows that name their task (columns "
                            f"prompt, task_index, env_seed), got columns {sorted(columns)}; build the dataset "
                            "with drift_envs.integrations.trl.task_dataset"
                        )
                    rows: dict[str, dict] = {}
                    for row in data.select_columns(["prompt", "task_index", "env_seed"]):
                        rows.setdefault(_prompt_key(row["prompt"]), row)
                    self._tasks[id(data)] = rows
                for key, row in self._tasks[id(data)].items():
                    table.setdefault(key, row)
        return table

    def __call__(self, prompts: list, trainer: Any) -> dict:
        """Play one episode per prompt with ``trainer``'s model; returns what ``GRPOTrainer`` takes."""
        if getattr(trainer, "use_vllm", False):
            raise ValueError(
                "drift's rollout_func samples with the trainer's own model (transformers generate); "
                "set GRPOConfig(use_vllm=False)"
            )
        tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
        table = self._task_table(trainer)
        while len(self._pool) < len(prompts):
            self._pool.append(Episode(self.env_id, self.env_kwargs))
        episodes = self._pool[: len(prompts)]
        for episode, prompt in zip(episodes, prompts, strict=True):
            row = table.get(_prompt_key(prompt))
            if row is None:
                raise ValueError(
                    f"{self.env_id}: the prompt {prompt!r} is no row of the trainer's datasets; "
                    "rollout_func plays the tasks of task_dataset() rows"
                )
            episode.reset(index=row["task_index"], seed=row["env_seed"])
            opening = [[m["role"], m["content"]] for m in episode.messages]
            if opening != [[m["role"], m["content"]] for m in prompt]:
                raise ValueError(
                    f"{self.env_id}: task {row['task_index']} opens with {episode.messages!r}, not with the "
                    f"row's prompt {prompt!r}; build the dataset with task_dataset() and the same split and "
                    "env kwargs as rollout_func()"
                )
        prompt_ids = [self._render(tokenizer, e.messages) for e in episodes]
        contexts = [list(ids) for ids in prompt_ids]
        completion_ids: list[list[int]] = [[] for _ in prompts]
        env_mask: list[list[int]] = [[] for _ in prompts]
        logprobs: list[list[float]] = [[] for _ in prompts]
        live = list(range(len(prompts)))
        eos = set(_eos_ids(trainer, tokenizer))
        while live:
            sampled = self._sample(trainer, tokenizer, [contexts[i] for i in live])
            still = []
            for i, (ids, lps) in zip(live, sampled, strict=True):
                self.generated_tokens += len(ids)
                completion_ids[i] += ids
                env_mask[i] += [1] * len(ids)
                logprobs[i] += lps
                contexts[i] += ids
                ended = bool(ids) and ids[-1] in eos
                reply = tokenizer.decode(ids[:-1] if ended else ids, skip_special_tokens=True)
                episode = episodes[i]
                episode.step(reply)
                if episode.done:
                    continue
                feedback = self._feedback_ids(tokenizer, episode.messages, ended, ids[-1] if ended else None)
                completion_ids[i] += feedback
                env_mask[i] += [0] * len(feedback)
                logprobs[i] += [0.0] * len(feedback)
                contexts[i] += feedback
                still.append(i)
            live = still
        self.episodes += len(prompts)
        self.calls += 1
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": completion_ids,
            "logprobs": logprobs,
            "env_mask": env_mask,
            "env_reward": [e.episode_return(self.gamma, self.diversity_lambda) for e in episodes],
            "drift_record": [e.record() for e in episodes],
        }

    @staticmethod
    def _render(tokenizer: Any, messages: list[dict], **kw: Any) -> list[int]:
        text = tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            tokenize=False,
            add_generation_prompt=True,
            **kw,
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def _feedback_ids(
        self, tokenizer: Any, messages: list[dict], ended: bool, end_id: int | None
    ) -> list[int]:
        """The ids the chat template puts after the last reply: its end of turn (unless the model sampled
        it), the feedback's user turn and the next generation prompt."""
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        marked = [dict(m) for m in messages]
        marked[last]["content"] = _REPLY_MARK
        text = tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in marked],
            tokenize=False,
            add_generation_prompt=True,
        )
        if text.count(_REPLY_MARK) != 1:
            raise ValueError(
                f"{self.env_id}: the chat template does not render the last reply as written, so the feedback's "
                "tokens after it cannot be found; rollout_func needs a template that keeps assistant content"
            )
        suffix = text.split(_REPLY_MARK, 1)[1]
        if ended and end_id is not None:
            end_text = tokenizer.decode([end_id])
            # the sampled end token already closed the reply: the template's copy of it is not added again
            if end_text and suffix.startswith(end_text):
                suffix = suffix[len(end_text) :]
        return list(tokenizer(suffix, add_special_tokens=False)["input_ids"])

    def _sample(
        self, trainer: Any, tokenizer: Any, contexts: list[list[int]]
    ) -> list[tuple[list[int], list[float]]]:
        """One reply per context from the trainer's model with TRL's generation config; each reply cut after
        its first end token, with the log-probability of each sampled token under the sampling distribution
        (the processed scores: temperature, top-p/k applied)."""
        import torch
        from trl.models import unwrap_model_for_generation

        config = copy.deepcopy(trainer.generation_config)
        config.max_new_tokens = self.max_new_tokens or trainer.max_completion_length
        config.output_scores = True
        config.return_dict_in_generate = True
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else config.pad_token_id
        width = max(len(c) for c in contexts)
        device = trainer.accelerator.device
        input_ids = torch.tensor([[pad_id] * (width - len(c)) + c for c in contexts], device=device)
        attention = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts], device=device)
        with (
            unwrap_model_for_generation(
                trainer.model_wrapped,
                trainer.accelerator,
                gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
                generation_kwargs=getattr(trainer, "generation_kwargs", None),
                gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
            ) as model,
            torch.no_grad(),
        ):
            out = model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config)
        new = out.sequences[:, width:].tolist()
        steps = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in out.scores], dim=1)  # (B, T, V)
        token_lp = steps.gather(-1, out.sequences[:, width:, None]).squeeze(-1).tolist()
        eos = set(_eos_ids(trainer, tokenizer))
        replies = []
        for ids, lps in zip(new, token_lp, strict=True):
            end = next((t + 1 for t, tok in enumerate(ids) if tok in eos), len(ids))
            replies.append((ids[:end], [float(x) for x in lps[:end]]))
        return replies


def _eos_ids(trainer: Any, tokenizer: Any) -> list[int]:
    ids = getattr(trainer, "eos_token_ids", None)
    if ids:
        return [int(i) for i in ids]
    return [] if tokenizer.eos_token_id is None else [int(tokenizer.eos_token_id)]


def rollout_func(
    env_id: str,
    *,
    split: str = "train",
    gamma: float = DEFAULT_GAMMA,
    diversity_lambda: float = DEFAULT_DIVERSITY_LAMBDA,
    max_new_tokens: int | None = None,
    **env_kwargs: Any,
) -> DriftRolloutFunc:
    """A function for ``GRPOTrainer(rollout_func=...)`` that plays whole episodes of ``env_id`` (made with
    ``split`` and ``env_kwargs``) with the env's feedback as user turns (module docstring); pair it with
    ``reward_funcs=env_reward`` and a :func:`task_dataset` made with the same split and kwargs.

    ``max_new_tokens``: tokens a reply (default: ``GRPOConfig.max_completion_length``, then per reply, so
    a completion of T turns holds up to T times that plus the feedback). ``gamma``/``diversity_lambda``
    are the return's γ and λ. The env is made once here, so a bad id or kwarg fails now.
    """
    env_kwargs = {**env_kwargs, "split": split}
    Episode(env_id, env_kwargs).close()
    if max_new_tokens is not None and max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1 (or None), got {max_new_tokens}")
    return DriftRolloutFunc(
        env_id, env_kwargs, gamma=gamma, diversity_lambda=diversity_lambda, max_new_tokens=max_new_tokens
    )


def env_reward(completions: list, env_reward: list[float] | None = None, **kwargs: Any) -> list[float]:
    """The reward function of the :func:`rollout_func` path: each episode's DRIFT return, as the rollout
    function computed it (its ``env_reward`` field)."""
    if env_reward is None:
        raise ValueError(
            "env_reward scores the episodes of drift_envs.integrations.trl.rollout_func: pass "
            "GRPOTrainer(rollout_func=rollout_func(env_id, ...)) too"
        )
    return [float(r) for r in env_reward]
