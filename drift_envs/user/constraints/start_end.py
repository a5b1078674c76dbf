"""Start and end: the reply opens or closes with a given phrase."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from drift_envs.user.constraints.base import (
    Check,
    Constraint,
    SampleContext,
    check_phrase,
    register_constraint,
)
from drift_envs.user.constraints.compose import Draft
from drift_envs.user.constraints.text import count_words

__all__ = ["EndsWith", "StartsWith"]


@register_constraint
@dataclass(frozen=True)
class StartsWith(Constraint):
    """The reply begins with ``phrase`` (any case, leading spaces ignored).

    IFEval: ``ConstrainedStartChecker``, which is case-sensitive and accepts the phrase at the start of
    any line. Differences, deliberate: the reply itself must start with it ("start your reply with"),
    in any case, so the phrase stays satisfiable together with :class:`Uppercase`/:class:`Lowercase`.
    """

    phrase: str
    kind: ClassVar[str] = "starts_with"
    excludes: ClassVar[frozenset[str]] = frozenset({"json_object", "quotation"})

    def _validate(self) -> None:
        check_phrase("StartsWith", "phrase", self.phrase)

    def _evaluate(self, reply: str) -> Check:
        head = reply.lstrip()[: len(self.phrase)]
        ok = reply.lstrip().casefold().startswith(self.phrase.casefold())
        return Check(ok, {"starts": head})

    def describe(self) -> str:
        return f'Start your reply with "{self.phrase}".'

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        p = self.phrase
        if persona == "terse":
            return [f'Start with "{p}".', f'Open with "{p}".', f'First words: "{p}".']
        return [
            f'Please begin your reply with "{p}".',
            f'Could you open with the words "{p}"?',
            f'I\'d like the answer to start exactly with "{p}".',
        ]

    compose_order: ClassVar[int] = 60  # first in the head, before a title

    def fixed_words(self) -> int:
        return count_words(self.phrase)

    def required_texts(self) -> tuple[str, ...]:
        return (self.phrase,)

    def compose(self, draft: Draft) -> None:
        draft.head.insert(0, self.phrase)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice(["Sure", "Here you go", "Dear friend", "In short", "Well"]))


@register_constraint
@dataclass(frozen=True)
class EndsWith(Constraint):
    """The reply ends with ``phrase`` (any case; trailing spaces and closing double quotes ignored).

    IFEval: ``EndChecker``, the same test (it strips spaces and ``"`` from both ends).
    """

    phrase: str
    kind: ClassVar[str] = "ends_with"
    excludes: ClassVar[frozenset[str]] = frozenset({"json_object", "quotation"})

    def _validate(self) -> None:
        check_phrase("EndsWith", "phrase", self.phrase)

    def _evaluate(self, reply: str) -> Check:
        ok = reply.strip().strip('"').casefold().endswith(self.phrase.casefold())
        return Check(ok, {})

    def describe(self) -> str:
        return f'End your reply with the exact phrase "{self.phrase}", with nothing after it.'

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        p = self.phrase
        if persona == "terse":
            return [f'End with "{p}".', f'Finish on "{p}".', f'Last words: "{p}".']
        return [
            f'Please end with the exact phrase "{p}" — nothing after it.',
            f'Could you finish your reply with "{p}"?',
            f'The reply should close with "{p}". Can you fix the ending?',
        ]

    compose_order: ClassVar[int] = 90  # the last ending, after a postscript

    def fixed_words(self) -> int:
        return count_words(self.phrase)

    def required_texts(self) -> tuple[str, ...]:
        return (self.phrase,)

    def compose(self, draft: Draft) -> None:
        draft.stop = False  # no full stop before the phrase, so a one-sentence limit still holds
        draft.endings.append(lambda text, _: text + " " + self.phrase)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice(["Thanks!", "Hope this helps.", "That is all.", "Cheers", "Any questions?"]))
