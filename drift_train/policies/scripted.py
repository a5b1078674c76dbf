"""A scripted policy: the env's own oracle, made noisy, behind the ordinary :class:`Policy` protocol.

The quickstart pretrains its tiny reference on this teacher's episodes, run by the normal rollout
engine, so its records are the engine's records. It works in any env whose ``oracle_reply()`` gives a
reply (docs/design.md, environment contract) and knows nothing else about the env:

* with probability ``accuracy`` a reply is the oracle's (correct for the current state);
* with probability ``format_errors`` it is a reply the env cannot read an answer from (the empty
  reply, used only where the env's own check says it is a format error);
* otherwise it is a *wrong* reply: the oracle reply of another task of the same env, used only when
  the env's check says it is wrong here and it differs from every earlier reply of the episode (so
  the teacher never repeats itself). Of ``near_miss`` such replies drawn at random, the teacher gives
  the one closest to the right reply (:func:`reply_distance`: numbers by value, other text by how
  much of it differs), so its mistakes look like near misses rather than answers to another
  question (``near_miss=1``: a uniformly drawn wrong reply). With ``spread`` set instead, the wrong
  reply is drawn uniformly from the distinct wrong replies found within distance ``spread`` of the
  right one (the nearest found when none is that close). When no such reply turns up in
  ``max_draws`` draws, the format-error reply stands in for it, and where the env has none, the
  oracle's.

Each reply is a pure function of the seed the engine passes for it (one per episode and turn), so
the same rollout settings give the same episodes whatever the batching. A scripted reply has no
token ids (``has_token_ids`` is False): training renders such records through the text path.
"""

from __future__ import annotations

import difflib
import json
import random
import re
from collections.abc import Sequence
from typing import Any

from drift_train.policies.base import (
    Completion,
    Conversation,
    PolicyBase,
    PolicyError,
    SamplingParams,
    combine_seeds,
)

__all__ = ["OracleTeacher", "reply_distance"]

FORMAT_ERROR_REPLY = ""  # no answer in any env: no \boxed{}, no code block, no word
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def reply_distance(reply: str, other: str) -> float:
    """How far ``other`` is from ``reply``: the numbers in them compared by value (a number one has
    and the other lacks counts 1), plus the rest of the text's share that differs, times its length."""
    numbers = [float(x) for x in _NUMBER.findall(reply)]
    other_numbers = [float(x) for x in _NUMBER.findall(other)]
    numeric = sum(abs(a - b) for a, b in zip(numbers, other_numbers, strict=False))
    numeric += abs(len(numbers) - len(other_numbers))
    text, other_text = _NUMBER.sub("#", reply), _NUMBER.sub("#", other)
    if text == other_text:
        return numeric
    similarity = difflib.SequenceMatcher(None, text, other_text, autojunk=False).ratio()
    return numeric + (1.0 - similarity) * max(len(text), len(other_text))


class OracleTeacher(PolicyBase):
    """A noisy scripted teacher built on ``env.unwrapped.oracle_reply()`` of the episodes' envs.

    ``accuracy``: chance a reply is the oracle's; ``format_errors``: chance it is a format error; the
    rest are wrong replies, the nearest of ``near_miss`` drawn ones (see the module docstring).
    ``seed`` is mixed into every reply's seed.
    ``needs_env``: the rollout engine passes each conversation's env as ``envs=[...]``.

    >>> from drift_train.rollout import RolloutConfig, rollout
    >>> teacher = OracleTeacher(accuracy=0.3)
    >>> records, _ = rollout(teacher, RolloutConfig("drift/MathFeedback-v0", num_tasks=4))  # doctest: +SKIP
    """

    backend = "scripted"
    needs_env = True
    has_token_ids = False

    def __init__(
        self,
        *,
        accuracy: float = 0.3,
        format_errors: float = 0.0,
        near_miss: int = 1,
        spread: float | None = None,
        seed: int = 0,
        max_draws: int = 32,
        model_id: str = "oracle-teacher",
    ) -> None:
        for name, value in (("accuracy", accuracy), ("format_errors", format_errors)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        if accuracy + format_errors > 1.0:
            raise ValueError(
                f"accuracy + format_errors must be at most 1 (the rest are wrong replies), got "
                f"{accuracy} + {format_errors}"
            )
        if near_miss < 1:
            raise ValueError(
                f"near_miss must be >= 1 (wrong replies drawn to pick the nearest of), got {near_miss}"
            )
        if spread is not None and not spread > 0:
            raise ValueError(f"spread must be a positive distance or None, got {spread!r}")
        if max_draws < 1:
            raise ValueError(f"max_draws must be >= 1, got {max_draws}")
        self.accuracy = float(accuracy)
        self.format_errors = float(format_errors)
        self.near_miss = int(near_miss)
        self.spread = None if spread is None else float(spread)
        self.seed = int(seed)
        self.max_draws = int(max_draws)
        self.model_id = model_id
        # one spare env per env config: where other tasks' oracle replies come from
        self._donors: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        """What trajectory metadata records about this teacher."""
        return {
            "backend": self.backend,
            "model": self.model_id,
            "teacher_accuracy": self.accuracy,
            "teacher_format_errors": self.format_errors,
            "teacher_near_miss": self.near_miss,
            "teacher_spread": self.spread,
            "teacher_seed": self.seed,
        }

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
        *,
        tools: Sequence[Any] | None = None,
        envs: Sequence[Any] | None = None,
    ) -> list[list[Completion]]:
        """``params.n`` scripted replies per conversation, for the current state of its env in ``envs``
        (``tools`` are ignored: the oracle knows the reply without them)."""
        self._check_inputs(conversations, params, seeds, tools)
        if envs is None or len(envs) != len(conversations):
            raise PolicyError(
                f"the {self.backend} teacher replies from each episode's env: pass envs=[...], one per "
                f"conversation (got {'none' if envs is None else len(envs)} for {len(conversations)}); "
                "the rollout engine does so for a policy with needs_env = True"
            )
        if seeds is None:
            base = self.seed if params.seed is None else params.seed
            seeds = [combine_seeds([base, i]) for i in range(len(conversations))]
        out = []
        for conversation, seed, env in zip(conversations, seeds, envs, strict=True):
            earlier = {m["content"] for m in conversation if m.get("role") == "assistant"}
            replies = []
            for j in range(params.n):
                rng = random.Random(combine_seeds([seed, self.seed, j]))
                replies.append(self._reply(env, rng, earlier))
            out.append([Completion(text=text, num_tokens=0, finish_reason="stop") for text in replies])
        return out

    def close(self) -> None:
        """Close the spare envs."""
        for donor in self._donors.values():
            donor.close()
        self._donors.clear()

    # ---- one reply ------------------------------------------------------------------------------
    def _reply(self, env: Any, rng: random.Random, earlier: set[str]) -> str:
        base = env.unwrapped
        oracle = base.oracle_reply()
        if oracle is None:
            raise PolicyError(
                f"{_env_name(env)} gives no oracle reply for task {base.task.task_id!r} (oracle_reply() "
                "returned None), so the scripted teacher cannot play it; use an env (or tasks) with an "
                "oracle, or a model as the reference"
            )
        u = rng.random()
        if u < self.accuracy:
            return oracle
        if u >= self.accuracy + self.format_errors:
            wrong = self._wrong_reply(env, rng, earlier, oracle)
            if wrong is not None:
                return wrong
        if self._is_format_error(base, FORMAT_ERROR_REPLY):
            return FORMAT_ERROR_REPLY
        return oracle  # an env that reads an answer from anything and has no other wrong reply

    def _wrong_reply(self, env: Any, rng: random.Random, earlier: set[str], oracle: str) -> str | None:
        """The nearest to ``oracle`` of ``near_miss`` other tasks' oracle replies that are wrong here and
        new in this episode."""
        base = env.unwrapped
        n = base.num_tasks()
        if n < 2:
            return None
        donor = self._donor(env)
        current = base.task_index(base.task.task_id)
        tried: set[str] = set()
        wrong: list[str] = []
        for _ in range(self.max_draws):
            index = rng.randrange(n - 1)
            index += index >= current  # any task but this one
            donor.reset(options={"index": index})
            reply = donor.unwrapped.oracle_reply()
            if reply is None or reply in earlier or reply in tried:
                continue
            tried.add(reply)
            verdict = base.verify(base.task, reply)
            if verdict.format_ok and not verdict.correct:
                wrong.append(reply)
                if self.spread is None and len(wrong) == self.near_miss:
                    break
        if not wrong:
            return None
        if self.spread is not None:
            close = sorted(
                r for r in wrong if reply_distance(oracle, r) <= self.spread
            )  # sorted: seed-stable
            if close:
                return rng.choice(close)
        return min(wrong, key=lambda reply: reply_distance(oracle, reply))  # the first of equals

    @staticmethod
    def _is_format_error(base: Any, reply: str) -> bool:
        return not base.verify(base.task, reply).format_ok

    def _donor(self, env: Any) -> Any:
        """A spare env of the same id and kwargs (resetting it leaves the episode's env alone)."""
        import gymnasium as gym

        spec = env.spec
        if spec is None:
            raise PolicyError(
                f"{type(env.unwrapped).__name__} was not made with gym.make, so the teacher cannot make a "
                "spare copy of it for other tasks' replies"
            )
        key = json.dumps({"id": spec.id, "kwargs": spec.kwargs}, sort_keys=True, default=repr)
        if key not in self._donors:
            self._donors[key] = gym.make(spec.id, disable_env_checker=True, **spec.kwargs)
        return self._donors[key]


def _env_name(env: Any) -> str:
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env.unwrapped).__name__
