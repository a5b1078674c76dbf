"""Punctuation and numbers: no commas, no digits, numbers as digits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from drift_envs.user.constraints.base import Check, Constraint, register_constraint
from drift_envs.user.constraints.compose import Draft
from drift_envs.user.constraints.text import NUMBER_WORDS, has_word, is_number_char, words

__all__ = ["NoCommas", "NoDigits", "NumbersAsDigits"]

_COMMAS = ",，،﹐﹑、"


@register_constraint
@dataclass(frozen=True)
class NoCommas(Constraint):
    """No comma of any script (``,`` ``，`` ``،`` ``、`` …).

    IFEval: ``CommaChecker`` (ASCII ``,`` only); the commas of other scripts count here too.
    """

    kind: ClassVar[str] = "no_commas"
    difficulty: ClassVar[str] = "easy"

    def _evaluate(self, reply: str) -> Check:
        count = sum(reply.count(c) for c in _COMMAS)
        return Check(count == 0, {"commas": count})

    def describe(self) -> str:
        return "Do not use any commas."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        got = detail.get("commas", "some")
        if persona == "terse":
            return ["No commas.", "Lose the commas.", "Commas aren't allowed."]
        return [
            f"Please don't use commas at all — I count {got}.",
            "Could you rewrite it without any commas?",
            "I'd prefer no commas anywhere. Can you rephrase?",
        ]

    def compose(self, draft: Draft) -> None:
        """Nothing to add: composed text joins words with spaces, never commas."""


@register_constraint
@dataclass(frozen=True)
class NoDigits(Constraint):
    """Numbers written out in words: no character that writes a number (a digit of any script, or a
    number symbol such as ``²``, ``③``, ``⒈`` or ``½``: :func:`~drift_envs.user.constraints.text.is_number_char`).

    IFEval has no such instruction.
    """

    kind: ClassVar[str] = "no_digits"
    difficulty: ClassVar[str] = "easy"
    excludes: ClassVar[frozenset[str]] = frozenset({"numbers_as_digits"})

    def _evaluate(self, reply: str) -> Check:
        digits = [ch for ch in reply if is_number_char(ch)]
        return Check(not digits, {"digits": "".join(digits[:10])})

    def describe(self) -> str:
        return "Spell out every number in words; do not use digits."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        if persona == "terse":
            return ["No digits.", "Spell numbers out.", "Words, not digits."]
        return [
            "Please write numbers out in words instead of digits.",
            "Could you spell out the numbers? No digits, please.",
            'I\'d like no digits at all — write "three", not "3".',
        ]

    def _conflicts(self, other: Constraint) -> bool:
        return any(is_number_char(ch) for t in other.required_texts() for ch in t)

    def compose(self, draft: Draft) -> None:
        """Nothing to add: composed filler holds no digit."""


@register_constraint
@dataclass(frozen=True)
class NumbersAsDigits(Constraint):
    """Numbers written with digits: no number words such as "three" or "twenty".

    IFEval has no such instruction.
    """

    kind: ClassVar[str] = "numbers_as_digits"
    excludes: ClassVar[frozenset[str]] = frozenset({"no_digits"})

    def _evaluate(self, reply: str) -> Check:
        found = sorted(
            {w.casefold() for w in words(reply) if any(p in NUMBER_WORDS for p in w.casefold().split("-"))}
        )
        return Check(not found, {"number_words": found[:5]})

    def describe(self) -> str:
        return 'Write all numbers with digits (3, 12), never as words such as "three" or "one".'

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        found = detail.get("number_words") or []
        if persona == "terse":
            return ["Digits for numbers.", "Use digits, not number words.", "Numbers as digits."]
        example = f' (you wrote "{found[0]}")' if found else ""
        return [
            f"Please write numbers with digits, not words{example}.",
            f"Could you use digits for every number?{example}",
            "I'd like numerals — 3, not three.",
        ]

    def _conflicts(self, other: Constraint) -> bool:
        return any(self.evaluate(t).detail.get("number_words") for t in other.required_texts() if has_word(t))

    def compose(self, draft: Draft) -> None:
        """Nothing to add: composed filler holds no number word."""
