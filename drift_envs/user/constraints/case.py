"""Case: all lowercase, all capitals, some words in capitals for emphasis."""

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
from drift_envs.user.constraints.text import reads_as_capital, words

__all__ = ["Lowercase", "MinCapitalWords", "Uppercase"]


@register_constraint
@dataclass(frozen=True)
class Lowercase(Constraint):
    """No upper-case letter anywhere, and at least one lower-case letter.

    IFEval: ``LowercaseLettersEnglishChecker``: ``str.islower()`` (hence the lower-case letter it needs)
    and ``langdetect`` saying English. Difference, deliberate: no language test: the requests are
    English already, and ``langdetect`` is unreliable on short replies ("-- dashes" is not English
    to it) and random unless seeded.
    """

    kind: ClassVar[str] = "lowercase"
    difficulty: ClassVar[str] = "easy"
    excludes: ClassVar[frozenset[str]] = frozenset({"uppercase", "min_capital_words"})

    def _evaluate(self, reply: str) -> Check:
        upper = sorted({w for w in words(reply) if any(ch.isupper() or reads_as_capital(ch) for ch in w)})
        return Check(reply.islower() and not any(map(reads_as_capital, reply)), {"capitalised": upper[:5]})

    def describe(self) -> str:
        return "Write everything in lowercase letters, no capitals at all."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        if persona == "terse":
            return ["All lowercase.", "No capitals.", "Lowercase only, please."]
        example = detail.get("capitalised") or []
        hint = f' (e.g. "{example[0]}")' if example else ""
        return [
            f"Please write it all in lowercase — no capital letters{hint}.",
            f"I asked for no capitals at all. Could you redo it in lowercase?{hint}",
            "Can you make the whole thing lowercase?",
        ]

    compose_order: ClassVar[int] = 100  # the whole text, after every piece is in place

    def compose(self, draft: Draft) -> None:
        draft.case = "lower"
        draft.wrappers.append(lambda text, _: text.lower())


@register_constraint
@dataclass(frozen=True)
class Uppercase(Constraint):
    """No lower-case letter anywhere, and at least one upper-case letter.

    IFEval: ``CapitalLettersEnglishChecker``: ``str.isupper()`` and ``langdetect`` saying English; the
    same without the language test, as in :class:`Lowercase`.
    """

    kind: ClassVar[str] = "uppercase"
    difficulty: ClassVar[str] = "hard"
    excludes: ClassVar[frozenset[str]] = frozenset({"lowercase"})

    def _evaluate(self, reply: str) -> Check:
        lower = sorted({w for w in words(reply) if any(ch.islower() for ch in w)})
        return Check(reply.isupper(), {"lowercase_words": lower[:5]})

    def describe(self) -> str:
        return "Write your entire answer in CAPITAL LETTERS."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        if persona == "terse":
            return ["ALL CAPS.", "Capitals only.", "Uppercase, please."]
        return [
            "Please write the whole answer in capital letters.",
            "I'd like it all in uppercase — every letter.",
            "Could you redo that entirely in CAPS?",
        ]

    compose_order: ClassVar[int] = 100  # the whole text, after every piece is in place

    def compose(self, draft: Draft) -> None:
        draft.case = "upper"
        draft.wrappers.append(lambda text, _: text.upper())


@register_constraint
@dataclass(frozen=True)
class MinCapitalWords(Constraint):
    """At least ``n`` words written entirely in capitals (two letters or more), for emphasis.

    IFEval: ``CapitalWordFrequencyChecker(capital_relation="at least")``, which counts NLTK word tokens
    for which ``str.isupper()`` holds. Difference, deliberate: a word needs two letters, so the
    pronoun "I" and the letters of "U.S." or "P.S." are no emphasis (IFEval counts them).
    """

    n: int
    kind: ClassVar[str] = "min_capital_words"
    difficulty: ClassVar[str] = "hard"
    excludes: ClassVar[frozenset[str]] = frozenset({"lowercase"})

    def _validate(self) -> None:
        check_positive_int("MinCapitalWords", "n", self.n)

    def _evaluate(self, reply: str) -> Check:
        caps = [w for w in words(reply) if sum(ch.isalpha() for ch in w) >= 2 and w.isupper()]
        return Check(len(caps) >= self.n, {"capital_words": len(caps), "limit": self.n})

    def describe(self) -> str:
        word = "word" if self.n == 1 else "words"
        return f"Emphasise at least {self.n} {word} by writing {'it' if self.n == 1 else 'them'} in ALL CAPS."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        n, got = self.n, detail.get("capital_words", 0)
        if persona == "terse":
            return [f"Need {n} ALL-CAPS words.", f"Emphasise {n} words in CAPS.", f"{n}+ words in caps."]
        return [
            f"Please put at least {n} key words in ALL CAPS for emphasis (I see {got}).",
            f"Could you emphasise {n} or more words by writing them in capitals?",
            f"I'd like some emphasis: at least {n} words fully capitalised.",
        ]

    compose_order: ClassVar[int] = 20  # after the keywords in the body

    def fixed_words(self) -> int:
        return self.n

    def compose(self, draft: Draft) -> None:
        draft.body.extend(["NOTE"] * self.n)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice([1, 2, 3]))
