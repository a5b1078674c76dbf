"""Length: at most / at least a number of words, at most a number of sentences."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from drift_envs.user.constraints.base import (
    Check,
    Constraint,
    SampleContext,
    check_positive_int,
    register_constraint,
)
from drift_envs.user.constraints.compose import Draft
from drift_envs.user.constraints.text import count_sentences, count_words

__all__ = ["MaxSentences", "MaxWords", "MinWords"]


@register_constraint
@dataclass(frozen=True)
class MaxWords(Constraint):
    """At most ``n`` words.

    IFEval: ``NumberOfWords(relation="less than", num_words=n + 1)``. Difference, deliberate: a word is
    letters or digits joined by ``'`` or ``-`` (:func:`words`), so ``don't`` and ``well-known`` are one
    word each, as a reader counts them; IFEval's ``\\w+`` tokens make them two.
    """

    n: int
    kind: ClassVar[str] = "max_words"
    difficulty: ClassVar[str] = "easy"

    def _validate(self) -> None:
        check_positive_int("MaxWords", "n", self.n)

    def _evaluate(self, reply: str) -> Check:
        count = count_words(reply)
        return Check(count <= self.n, {"words": count, "limit": self.n})

    def describe(self) -> str:
        return f"Keep your answer to at most {self.n} words."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        n, got = self.n, detail.get("words", "too many")
        if persona == "terse":
            return [f"Too long. Max {n} words.", f"Shorter — under {n + 1} words.", f"{n} words max."]
        return [
            f"That's too long: {got} words. Please keep it to at most {n} words.",
            f"Could you cut it down? I need {n} words or fewer, and this has {got}.",
            f"Please shorten your reply to no more than {n} words (it is {got} words now).",
        ]

    def _conflicts(self, other: Constraint) -> bool:
        return other.fixed_words() > self.n

    def compose(self, draft: Draft) -> None:
        draft.max_words = min(draft.max_words, self.n)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        base = 40 if ctx.list_items else 25
        return cls(rng.choice([base, base + 10, base + 20, 15 if not ctx.list_items else base]))


@register_constraint
@dataclass(frozen=True)
class MinWords(Constraint):
    """At least ``n`` words.

    IFEval: ``NumberOfWords(relation="at least", num_words=n)``; words are counted as in
    :class:`MaxWords` (``don't`` is one word, two to IFEval).
    """

    n: int
    kind: ClassVar[str] = "min_words"

    def _validate(self) -> None:
        check_positive_int("MinWords", "n", self.n)

    def _evaluate(self, reply: str) -> Check:
        count = count_words(reply)
        return Check(count >= self.n, {"words": count, "limit": self.n})

    def describe(self) -> str:
        return f"Write at least {self.n} words."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        n, got = self.n, detail.get("words", "too few")
        if persona == "terse":
            return [f"Too short. At least {n} words.", f"Longer please — {n}+ words.", f"Min {n} words."]
        return [
            f"That's a bit short ({got} words). I'd like at least {n} words.",
            f"Could you expand on it? Please write no fewer than {n} words; you wrote {got}.",
            f"I need more detail: at least {n} words, please.",
        ]

    def fixed_words(self) -> int:
        return self.n

    def compose(self, draft: Draft) -> None:
        draft.min_words = max(draft.min_words, self.n)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice([20, 30, 40, 50]))


@register_constraint
@dataclass(frozen=True)
class MaxSentences(Constraint):
    """At most ``n`` sentences (line breaks also end a sentence).

    IFEval: ``NumberOfSentences(relation="less than", num_sentences=n + 1)``, which counts with NLTK's
    Punkt; so does :func:`sentences` (abbreviations, decimals, URLs and version numbers do not end a
    sentence). Differences, deliberate and listed in :func:`sentences`: line breaks and CJK full
    stops end a sentence, and a break after ``e.g.``/``i.e.``/``etc.`` before a lower-case word does not.
    """

    n: int
    kind: ClassVar[str] = "max_sentences"
    excludes: ClassVar[frozenset[str]] = frozenset({"bullet_count", "postscript", "title", "json_object"})

    def _validate(self) -> None:
        check_positive_int("MaxSentences", "n", self.n)

    def _evaluate(self, reply: str) -> Check:
        count = count_sentences(reply)
        return Check(count <= self.n, {"sentences": count, "limit": self.n})

    def describe(self) -> str:
        if self.n == 1:
            return "Answer in a single sentence."
        return f"Use no more than {self.n} sentences."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        n, got = self.n, detail.get("sentences", "too many")
        unit = "sentence" if n == 1 else "sentences"
        if persona == "terse":
            return [f"Max {n} {unit}.", f"Too many sentences — {n} at most.", f"{n} {unit}, no more."]
        return [
            f"You used {got} sentences; please keep it to {n} {unit} at most.",
            f"Can you say that in no more than {n} {unit}?",
            f"Too many sentences ({got}). I asked for at most {n}.",
        ]

    def compose(self, draft: Draft) -> None:
        """Nothing to add: a composed body is one sentence, and the kinds that add sentences or
        lines (bullets, a postscript, a title, JSON) are in ``excludes``."""

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice([1, 2, 3]))
