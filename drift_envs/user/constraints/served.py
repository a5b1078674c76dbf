"""Whether a reply serves the request at all: the check every procedural task adds to its preferences.

The hidden preferences (length, case, commas, ...) say nothing about the request, so filler that
ignores it ("this is a short and clear answer") could meet them all. Each procedural task therefore
carries one more check, made from its request (see :mod:`drift_envs.user.tasks`):

* :class:`OnTopic` for writing, questions and summaries: the reply names at least one word of the
  request's own vocabulary (the topic written about, the terms an answer to the question uses, the
  people and things of the text summarised);
* :class:`ListItems` for list requests: the reply holds the number of items asked for, as list lines
  (``- towel``, ``2. hat``), as a numbered run (``1) towel 2) hat``), or, in running prose, by naming
  that many of the things the request is about.

They are constraints (checked, described and voiced by the simulated user like any other, last in
the order the user addresses them) but no registered kind: the task generator never draws them, and
a task file states its own constraints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from drift_envs.user.constraints.base import (
    Check,
    Constraint,
    check_positive_int,
    check_word_list,
    constraint_from_dict,
)
from drift_envs.user.constraints.compose import Draft
from drift_envs.user.constraints.text import contains_word

__all__ = ["SERVED_CHECKS", "ListItems", "OnTopic", "served_from_dict"]

# A list line: a bullet (-, *, •, +) or an enumerator (1. 1) (1) a.) then text; a reply wrapped in
# quotes may open its first line with the quote.
_LIST_LINE_RE = re.compile(r"^\s*[\"“']?\s*(?:[-*•+]|\d{1,2}[.)]|\(\d{1,2}\)|[a-zA-Z][.)])\s+\S")
_INLINE_NUMBER_RE = re.compile(r"(?<![\w.])\(?(\d{1,2})[.)](?=\s+\S)")
_ABOUT_KINDS = ("topic", "question", "text")


def _named(words: tuple[str, ...], reply: str) -> list[str]:
    return [w for w in words if contains_word(reply, w)]


@dataclass(frozen=True)
class OnTopic(Constraint):
    """The reply names at least one of ``words`` (whole words, any case): it is about the request.

    ``about`` is what was asked, as the user says it back: a topic (``"the moon"``), a question
    (``"Why is the sky blue?"``) or a text (``"the story about Mara"``), per ``request_kind``.
    """

    words: tuple[str, ...]
    about: str
    request_kind: str = "topic"
    kind: ClassVar[str] = "on_topic"
    difficulty: ClassVar[str] = "easy"
    compose_order: ClassVar[int] = 95  # after the forbidden words are known

    def __post_init__(self) -> None:
        if isinstance(self.words, list):
            object.__setattr__(self, "words", tuple(self.words))
        super().__post_init__()

    def _validate(self) -> None:
        check_word_list("OnTopic", "words", self.words)
        if self.request_kind not in _ABOUT_KINDS:
            raise ValueError(f"OnTopic.request_kind must be one of {_ABOUT_KINDS}, got {self.request_kind!r}")

    def _evaluate(self, reply: str) -> Check:
        return Check(bool(_named(self.words, reply)), {})

    def describe(self) -> str:
        if self.request_kind == "question":
            return f"Answer the question: {self.about}"
        if self.request_kind == "text":
            return f"Summarise {self.about}."
        return f"Write about {self.about}."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        a = self.about
        if self.request_kind == "question":
            if persona == "terse":
                return [
                    "That doesn't answer my question.",
                    f"Answer it: {a}",
                    "Off topic. Answer the question.",
                ]
            return [
                f"That doesn't answer what I asked. My question was: {a}",
                f"I don't see an answer to my question in there. {a}",
                f"Could you actually answer the question? I asked: {a}",
            ]
        if self.request_kind == "text":
            if persona == "terse":
                return [
                    "That's not a summary of the text.",
                    "Summarise the text I gave you.",
                    "Off topic: summarise the text.",
                ]
            return [
                f"That doesn't summarise the text at all. I wanted the gist of {a}.",
                f"Please summarise what I sent you: {a}. This reads like something else.",
                f"I can't find {a} in your summary. Could you summarise the actual text?",
            ]
        if persona == "terse":
            return [f"Off topic. It's about {a}.", f"Stick to {a}.", f"That's not about {a}."]
        return [
            f"That isn't about {a} at all — I asked for something about {a}.",
            f"Hmm, I wanted this to be about {a}. Could you write about that?",
            f"This doesn't mention {a}. Please stay on the topic I asked about.",
        ]

    def fixed_words(self) -> int:
        return 1

    def _conflicts(self, other: Constraint) -> bool:
        banned = (
            {w.casefold() for w in getattr(other, "words", ())} if other.kind == "forbidden_words" else set()
        )
        return all(w.casefold() in banned for w in self.words)

    def compose(self, draft: Draft) -> None:
        if any(w.casefold() == b.casefold() for w in self.words for b in draft.body):
            return
        word = next(w for w in self.words if w.casefold() not in draft.banned)
        draft.body.append(word)


@dataclass(frozen=True)
class ListItems(Constraint):
    """The reply holds ``n`` items: exactly ``n`` list lines, or a numbered run ``1. … n.`` (and no
    ``n+1``), or (without list lines) running prose that names ``n`` of ``words``, the things the
    request is about."""

    n: int
    words: tuple[str, ...]
    about: str = ""
    kind: ClassVar[str] = "list_items"
    difficulty: ClassVar[str] = "easy"
    compose_order: ClassVar[int] = 95

    def __post_init__(self) -> None:
        if isinstance(self.words, list):
            object.__setattr__(self, "words", tuple(self.words))
        super().__post_init__()

    def _validate(self) -> None:
        check_positive_int("ListItems", "n", self.n)
        check_word_list("ListItems", "words", self.words)

    def count(self, reply: str) -> tuple[int, str]:
        """The items of ``reply`` and how they were counted (``"lines"``, ``"numbered"``, ``"named"``)."""
        lines = sum(1 for line in reply.splitlines() if _LIST_LINE_RE.match(line))
        run = 0
        for k in (int(m) for m in _INLINE_NUMBER_RE.findall(reply)):
            if k == run + 1:
                run = k
        if run >= 2 and run > lines:  # "1) towel 2) hat" on one line is a list of two
            return run, "numbered"
        if lines:
            return lines, "lines"
        return len({w.casefold() for w in _named(self.words, reply)}), "named"

    def _evaluate(self, reply: str) -> Check:
        got, how = self.count(reply)
        return Check(got == self.n if how != "named" else got >= self.n, {"items": got, "expected": self.n})

    def describe(self) -> str:
        return f"Give {self.n} items, as the request asks."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        n, got = self.n, detail.get("items", 0)
        if persona == "terse":
            return [f"I asked for {n} items.", f"{n} items, please.", f"Need {n} items, not {got}."]
        return [
            f"I asked for {n} items and I count {got}. Could you list exactly {n}?",
            f"That's not the list I asked for: I wanted {n} items, one per line.",
            f"Please give me the {n} items I asked for (I see {got}).",
        ]

    def fixed_words(self) -> int:
        return self.n

    def _conflicts(self, other: Constraint) -> bool:
        banned = (
            {w.casefold() for w in getattr(other, "words", ())} if other.kind == "forbidden_words" else set()
        )
        return len({w.casefold() for w in self.words} - banned) < self.n

    def compose(self, draft: Draft) -> None:
        """``n`` of the request's things named in the body (a list in prose: no layout needed, so the
        kinds that fix a layout, one line or JSON, still compose)."""
        have = {b.casefold() for b in draft.body}
        named = [w for w in self.words if w.casefold() in have]
        for w in self.words:
            if len(named) >= self.n:
                break
            if w.casefold() not in have and w.casefold() not in draft.banned:
                draft.body.append(w)
                named.append(w)


#: the request checks by kind (a task file's ``"served"`` spec names one)
SERVED_CHECKS: dict[str, type[Constraint]] = {"on_topic": OnTopic, "list_items": ListItems}


def served_from_dict(spec: object, *, where: str = "served") -> Constraint:
    """A request check from its JSON spec (``{"type": "on_topic", "words": [...], "about": ...}``)."""
    return constraint_from_dict(spec, where=where, registry=SERVED_CHECKS)
