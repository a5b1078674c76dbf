"""Structure: bullet points, a JSON object, quotation marks, a title, a postscript, one line."""

from __future__ import annotations

import json
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
from drift_envs.user.constraints.text import has_word, strip_code_fence

__all__ = ["BulletCount", "JsonObject", "Postscript", "Quotation", "SingleLine", "Title"]

_BULLET_RE = re.compile(r"^\s*[-*•]\s+\S")


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
        check_positive_int("BulletCount", "n", self.n)

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

    def fixed_words(self) -> int:
        return self.n

    def compose(self, draft: Draft) -> None:
        draft.bullets = self.n

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
            value = json.loads(strip_code_fence(reply))
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

    compose_order: ClassVar[int] = 120  # the outermost wrapper

    def compose(self, draft: Draft) -> None:
        def wrap(text: str, d: Draft) -> str:
            return json.dumps({"ANSWER" if d.case == "upper" else "answer": text}, ensure_ascii=False)

        draft.wrappers.append(wrap)


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

    compose_order: ClassVar[int] = 110  # around the finished text (case applied), inside JSON

    def compose(self, draft: Draft) -> None:
        draft.wrappers.append(lambda text, _: f'"{text}"')


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

    compose_order: ClassVar[int] = 70  # after a start phrase

    def fixed_words(self) -> int:
        return 1

    def compose(self, draft: Draft) -> None:
        draft.head.append("<<Note>>")


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
        return Check(m is not None and has_word(m.group(1)), {})

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

    compose_order: ClassVar[int] = 80  # after the body, before an end phrase

    def fixed_words(self) -> int:
        return 3  # "P", "S" and a word after it

    def required_texts(self) -> tuple[str, ...]:
        return ("P", "S")

    def compose(self, draft: Draft) -> None:
        def add(text: str, d: Draft) -> str:
            sep = " " if d.single_line or not d.bullets else "\n"
            return text + sep + "P.S. " + d.filler(0)

        draft.endings.append(add)


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

    def compose(self, draft: Draft) -> None:
        draft.single_line = True  # a composed body is one line already; bullets are excluded
