"""Words: required keywords, forbidden words, a keyword repeated."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from drift_envs.user.constraints.base import (
    Check,
    Constraint,
    SampleContext,
    check_phrase,
    check_positive_int,
    check_word_list,
    quote_list,
    register_constraint,
)
from drift_envs.user.constraints.compose import Draft
from drift_envs.user.constraints.text import contains_word, count_word, count_words

__all__ = ["ForbiddenWords", "IncludeKeywords", "KeywordFrequency"]


@register_constraint
@dataclass(frozen=True)
class IncludeKeywords(Constraint):
    """Every word of ``words`` appears (whole word, any case).

    IFEval: ``KeywordChecker``, which searches the keyword as a substring. Difference, deliberate:
    whole words only, so "moon" is not found in "Moonlight" (a user who asks for "moon" wants the
    word; a substring would also let "cat" pass in "category").
    """

    words: tuple[str, ...]
    kind: ClassVar[str] = "include_keywords"
    difficulty: ClassVar[str] = "easy"

    def __post_init__(self) -> None:
        if isinstance(self.words, list):
            object.__setattr__(self, "words", tuple(self.words))
        super().__post_init__()

    def _validate(self) -> None:
        check_word_list("IncludeKeywords", "words", self.words)

    def _evaluate(self, reply: str) -> Check:
        missing = [w for w in self.words if not contains_word(reply, w)]
        return Check(not missing, {"missing": missing})

    def describe(self) -> str:
        if len(self.words) == 1:
            return f'Use the word "{self.words[0]}" in your answer.'
        return f"Include the words {quote_list(self.words)}."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        missing = detail.get("missing") or list(self.words)
        q = quote_list(missing)
        if persona == "terse":
            return [f"Missing: {q}.", f"Use {q}.", f"Where's {q}?"]
        word = "word" if len(missing) == 1 else "words"
        return [
            f"Please work the {word} {q} into your answer.",
            f"You left out {q} — I'd like that in there.",
            f"Could you mention {q}? It's missing.",
        ]

    compose_order: ClassVar[int] = 10  # first in the body

    def fixed_words(self) -> int:
        return sum(count_words(w) for w in self.words)

    def required_texts(self) -> tuple[str, ...]:
        return self.words

    def compose(self, draft: Draft) -> None:
        draft.body.extend(self.words)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        k = 1 if len(ctx.topic_words) < 3 else rng.choice([1, 1, 2])
        return cls(tuple(rng.sample(list(ctx.topic_words), k)))


@register_constraint
@dataclass(frozen=True)
class ForbiddenWords(Constraint):
    """None of ``words`` appears (whole word, any case).

    IFEval: ``ForbiddenWords`` (``\\b``-delimited, any case), the same test. Difference, shared by
    every kind here: a reply with no word at all fails (IFEval lets ``** **`` pass).
    """

    words: tuple[str, ...]
    kind: ClassVar[str] = "forbidden_words"

    def __post_init__(self) -> None:
        if isinstance(self.words, list):
            object.__setattr__(self, "words", tuple(self.words))
        super().__post_init__()

    def _validate(self) -> None:
        check_word_list("ForbiddenWords", "words", self.words)

    def _evaluate(self, reply: str) -> Check:
        found = [w for w in self.words if contains_word(reply, w)]
        return Check(not found, {"found": found})

    def describe(self) -> str:
        if len(self.words) == 1:
            return f'Do not use the word "{self.words[0]}".'
        return f"Avoid the words {quote_list(self.words)}."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        found = detail.get("found") or list(self.words)
        q = quote_list(found)
        if persona == "terse":
            return [f"No {q}.", f"Drop {q}.", f"Don't say {q}."]
        return [
            f"Please don't use {q} — find another way to say it.",
            f"I'd rather you avoid {q}. Can you rephrase?",
            f"Could you rewrite it without {q}?",
        ]

    def _conflicts(self, other: Constraint) -> bool:
        return any(contains_word(text, b) for text in other.required_texts() for b in self.words)

    def compose(self, draft: Draft) -> None:
        draft.banned.update(w.casefold() for w in self.words)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls((rng.choice(list(ctx.topic_words)),))


@register_constraint
@dataclass(frozen=True)
class KeywordFrequency(Constraint):
    """``word`` appears at least ``n`` times (whole word, any case).

    IFEval: ``KeywordFrequencyChecker(relation="at least")``, which counts substring matches.
    Difference, deliberate: whole words, as in :class:`IncludeKeywords` ("Moonlight" is no "moon").
    """

    word: str
    n: int
    kind: ClassVar[str] = "keyword_frequency"

    def _validate(self) -> None:
        check_phrase("KeywordFrequency", "word", self.word)
        check_positive_int("KeywordFrequency", "n", self.n)

    def _evaluate(self, reply: str) -> Check:
        count = count_word(reply, self.word)
        return Check(count >= self.n, {"count": count, "limit": self.n})

    def describe(self) -> str:
        return f'Use the word "{self.word}" at least {self.n} times.'

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        w, n, got = self.word, self.n, detail.get("count", 0)
        if persona == "terse":
            return [f'"{w}" {n}+ times.', f'More "{w}" — {n} times.', f'Say "{w}" at least {n} times.']
        return [
            f'Please use the word "{w}" at least {n} times; I count {got}.',
            f'Could you mention "{w}" more often? I\'d like it at least {n} times.',
            f'"{w}" should come up {n} times or more — can you work it in?',
        ]

    compose_order: ClassVar[int] = 30  # after the keywords and capitals in the body

    def fixed_words(self) -> int:
        return self.n * count_words(self.word)

    def required_texts(self) -> tuple[str, ...]:
        return (self.word,)

    def compose(self, draft: Draft) -> None:
        draft.body.extend([self.word] * self.n)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice(list(ctx.topic_words)), rng.choice([2, 3]))
