"""Markup: markdown highlights and [placeholder] slots."""

from __future__ import annotations

import random
import re
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

__all__ = ["HighlightedSections", "Placeholders"]

_HIGHLIGHT_RE = re.compile(r"\*\*[^\n*]*[^\W_][^\n*]*\*\*|\*[^\n*]*[^\W_][^\n*]*\*")
_PLACEHOLDER_RE = re.compile(r"\[[^\[\]\n]*[^\W_][^\[\]\n]*\]")
_PLACEHOLDER_NAMES = ("name", "date", "place", "time", "address")


@register_constraint
@dataclass(frozen=True)
class HighlightedSections(Constraint):
    """At least ``n`` parts highlighted in markdown, ``*like this*`` or ``**like this**``.

    IFEval: ``HighlightSectionChecker``; here a highlight needs a word inside (``** **`` is none).
    """

    n: int
    kind: ClassVar[str] = "highlighted_sections"

    def _validate(self) -> None:
        check_positive_int("HighlightedSections", "n", self.n)

    def _evaluate(self, reply: str) -> Check:
        count = len(_HIGHLIGHT_RE.findall(reply))
        return Check(count >= self.n, {"highlights": count, "limit": self.n})

    def describe(self) -> str:
        part = "part" if self.n == 1 else "parts"
        return f"Highlight at least {self.n} {part} with markdown, *like this*."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        n, got = self.n, detail.get("highlights", 0)
        if persona == "terse":
            return [
                f"Highlight {n} parts with *asterisks*.",
                f"Need {n} *highlights*.",
                f"{n}+ *highlighted* bits.",
            ]
        return [
            f"Please highlight at least {n} key parts in markdown, *like this* (I see {got}).",
            f"Could you mark {n} or more important phrases with asterisks, e.g. *important*?",
            f"I'd like at least {n} highlighted sections using *markdown emphasis*.",
        ]

    compose_order: ClassVar[int] = 50  # marks body words once the body is complete

    def fixed_words(self) -> int:
        return self.n

    def compose(self, draft: Draft) -> None:
        def highlight(body: list[str], d: Draft) -> list[str]:
            body = list(body)
            plain = [i for i, w in enumerate(body) if not w.startswith("[")]  # placeholders stay plain
            if len(plain) < self.n:
                body += ["key"] * (self.n - len(plain))
                plain = [i for i, w in enumerate(body) if not w.startswith("[")]
            for i in plain[: self.n]:
                body[i] = f"*{body[i]}*"
            return body

        draft.body_edits.append(highlight)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice([1, 2, 3]))


@register_constraint
@dataclass(frozen=True)
class Placeholders(Constraint):
    """At least ``n`` placeholders in square brackets, such as ``[name]``, for a reusable template.

    IFEval: ``PlaceholderChecker``, which counts any ``[...]``. Difference, deliberate: a placeholder
    needs a word inside and stays on one line (``[ ]`` is no slot to fill in).
    """

    n: int
    kind: ClassVar[str] = "placeholders"

    def _validate(self) -> None:
        check_positive_int("Placeholders", "n", self.n)

    def _evaluate(self, reply: str) -> Check:
        count = len(_PLACEHOLDER_RE.findall(reply))
        return Check(count >= self.n, {"placeholders": count, "limit": self.n})

    def describe(self) -> str:
        word = "placeholder" if self.n == 1 else "placeholders"
        return f"Make it a template with at least {self.n} {word} in square brackets, such as [name]."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        n, got = self.n, detail.get("placeholders", 0)
        if persona == "terse":
            return [
                f"Need {n} [placeholders].",
                f"Add {n} [name]-style slots.",
                f"{n}+ bracket placeholders.",
            ]
        return [
            f"Please include at least {n} placeholders in square brackets, like [name] (I count {got}).",
            f"I want to reuse this — could you add {n} or more slots such as [date] or [place]?",
            f"It needs at least {n} [placeholders] in square brackets so I can fill them in.",
        ]

    compose_order: ClassVar[int] = 40  # after the keywords in the body

    def fixed_words(self) -> int:
        return self.n

    def compose(self, draft: Draft) -> None:
        names = _PLACEHOLDER_NAMES
        draft.body.extend(f"[{names[i % len(names)]}]" for i in range(self.n))

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice([1, 2, 3]))
