"""Answer extraction and cheap normalisation for math replies.

Extraction finds what the model committed to (the last ``<answer>…</answer>`` or ``\\boxed{…}``);
normalisation makes the common written forms of one answer compare equal as strings, and
:func:`as_number` reads plain numbers (``1,234``, ``-3.5``, ``3/4``, ``\\frac{3}{4}``) exactly, so most
checks never reach the symbolic verifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ANSWER_FORMATS",
    "Committed",
    "as_number",
    "extract_answer",
    "extract_committed",
    "find_boxed",
    "normalize_answer",
]

ANSWER_FORMATS = ("auto", "tag", "boxed")

# the tags alone: a fixed-length alternation scans a reply once, where ``<answer>(.*?)</answer>`` rescans
# the rest of the reply from every unclosed ``<answer>`` (quadratic in the reply length)
_TAG_TOKEN_RE = re.compile(r"<(/?)answer>", re.IGNORECASE)
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _closing_braces(text: str) -> dict[int, int]:
    """The position of the ``}`` closing each ``{`` of ``text`` that is closed, in one pass.

    A backslash escapes the next character, so ``\\{`` and ``\\}`` neither open nor close a group.
    """
    closing: dict[int, int] = {}
    open_at: list[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            open_at.append(i)
        elif c == "}" and open_at:
            closing[open_at.pop()] = i
        i += 1
    return closing


def _box_spans(text: str) -> tuple[list[tuple[int, int, int]], dict[int, int]]:
    """``(start, content_start, content_end)`` of every closed box that lies in no other box, and the brace map."""
    matches = list(_BOXED_RE.finditer(text))
    if not matches:
        return [], {}
    closing = _closing_braces(text)
    spans: list[tuple[int, int, int]] = []
    for m in matches:
        end = closing.get(m.end() - 1)
        if end is not None and (not spans or m.start() > spans[-1][2]):
            spans.append((m.start(), m.end(), end))
    return spans, closing


def find_boxed(text: str) -> list[tuple[int, str]]:
    """Every ``\\boxed{…}`` in ``text`` that lies in no other box, as ``(start, content)``, braces matched.

    A box inside a box is part of its content (``\\boxed{\\boxed{1} + 2}`` is one box), so the contents
    never overlap and the whole takes time linear in ``len(text)`` (braces are matched in one pass).
    An unclosed box is ignored: a reply cut off mid-answer has not committed to anything.
    """
    spans, _ = _box_spans(text)
    return [(start, text[a:b]) for start, a, b in spans]


def _unwrapped(text: str, closing: dict[int, int], a: int, b: int) -> str:
    """The content ``text[a:b]`` of a box, without boxes that wrap all of it (``\\boxed{\\boxed{1}}`` is 1)."""
    while True:
        i, j = a, b - 1
        while i <= j and text[i].isspace():
            i += 1
        while j >= i and text[j].isspace():
            j -= 1
        m = _BOXED_RE.match(text, i)
        if m is None or m.end() > j or closing.get(m.end() - 1) != j:
            return text[a:b]
        a, b = m.end(), j


def _last_tag(text: str) -> tuple[int, str] | None:
    """``(start, content)`` of the last ``<answer>…</answer>``, as ``re.finditer`` of the lazy pattern finds them."""
    last, open_match = None, None
    for m in _TAG_TOKEN_RE.finditer(text):
        if not m.group(1):
            if open_match is None:
                open_match = m
        elif open_match is not None:
            last = (open_match.start(), text[open_match.end() : m.start()])
            open_match = None
    return last


@dataclass(frozen=True)
class Committed:
    """What a reply committed to: its final ``answer`` and, when it holds several boxes, the text to read.

    ``boxes`` are the contents of every ``\\boxed{}`` in the part of the reply the answer came from
    (the reply, or its last answer tag). With two or more, ``several`` is that part of the reply: a
    reply like ``\\boxed{1}, \\boxed{2}, \\boxed{3}`` answers a set, and which boxes belong together is
    math-verify's reading of the text, so the check hands it the text rather than one box.
    """

    answer: str
    boxes: tuple[str, ...] = ()
    several: str | None = None


def extract_committed(text: str, answer_format: str = "auto") -> Committed | None:
    """The answer a reply committed to (see :func:`extract_answer`), with its boxes; None when it has none."""
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
    candidates: list[tuple[int, str, str, list[str]]] = []  # (start, answer, scope, box contents)
    if answer_format in ("auto", "tag"):
        tag = _last_tag(text)
        if tag is not None:
            start, inner = tag
            spans, closing = _box_spans(inner)
            boxes = [inner[a:b] for _, a, b in spans]
            answer = _unwrapped(inner, closing, spans[-1][1], spans[-1][2]) if spans else inner
            candidates.append((start, answer, inner, boxes))
    if answer_format in ("auto", "boxed"):
        spans, closing = _box_spans(text)
        if spans:
            boxes = [text[a:b] for _, a, b in spans]
            candidates.append(
                (spans[-1][0], _unwrapped(text, closing, spans[-1][1], spans[-1][2]), text, boxes)
            )
    if not candidates:
        return None
    _, answer, scope, boxes = max(candidates, key=lambda c: c[0])
    answer = answer.strip()
    if not answer:
        return None
    contents = tuple(content.strip() for content in boxes)
    return Committed(answer, contents, scope if len(contents) > 1 else None)


def extract_answer(text: str, answer_format: str = "auto") -> str | None:
    """The answer a reply committed to, or None when it has none.

    ``"tag"``: the last ``<answer>…</answer>``; ``"boxed"``: the last ``\\boxed{…}``; ``"auto"``: whichever
    of the two comes last. A ``\\boxed{}`` inside the last answer tag wins over the tag's text.
    """
    committed = extract_committed(text, answer_format)
    return committed.answer if committed is not None else None


_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")
_SPACES_RE = re.compile(r"\s+|\\[,;:! ]|\\quad|\\qquad|~")
_DFRAC_RE = re.compile(r"\\[dt]frac")
# Commas are thousands separators only where the number reads no other way: a first group without a
# leading zero, then groups of exactly three digits (``1,234``, ``7,425,000``, ``1,000.5``), as math-verify
# reads them. ``0,111`` is a decimal comma to math-verify (0.111), never 111; ``1,22`` is the pair {1, 22};
# both are left to it.
_THOUSANDS_RE = re.compile(r"^[-+]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$")


def normalize_answer(answer: str) -> str:
    """A canonical string form of an answer, for exact comparison.

    Strips math delimiters, ``\\left``/``\\right``, spacing commands, ``\\text{}`` wrappers, degree
    signs, trailing full stops, ``x =`` prefixes and thousands separators. It never changes meaning:
    two answers with equal normal forms are equal, while unequal forms still go to the verifier.
    """
    s = answer.strip()
    s = s.strip("$").strip()
    if s.startswith("\\(") and s.endswith("\\)"):
        s = s[2:-2]
    s = s.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = _DFRAC_RE.sub(r"\\frac", s)
    s = _TEXT_WRAP_RE.sub(r"\1", s)
    s = s.replace("^\\circ", "").replace("^{\\circ}", "").replace("°", "")
    s = _SPACES_RE.sub("", s)
    s = s.rstrip(".")
    if re.match(r"^[a-zA-Z]=[^a-zA-Z=,]+$", s):  # "x=5" -> "5", but "y=2x+3" keeps its meaning
        s = s[2:]
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    return s


_INT_RE = re.compile(r"^[-+]?\d+$")
_DEC_RE = re.compile(r"^[-+]?(\d+\.\d*|\.\d+)$")
_SLASH_RE = re.compile(r"^([-+]?\d+)/(\d+)$")
_FRAC_RE = re.compile(r"^(-?)\\frac\{?([-+]?\d+)\}?\{?(\d+)\}?$")


def as_number(normalized: str) -> Fraction | None:
    """The exact value of a normalised plain number (integer, decimal, ``a/b``, ``\\frac{a}{b}``), else None."""
    s = normalized
    if len(s) > 40:  # long digit strings are not worth a fast path, and guard against huge ints
        return None
    try:
        if _INT_RE.match(s) or _DEC_RE.match(s):
            return Fraction(s)
        m = _SLASH_RE.match(s)
        if m:
            return Fraction(int(m.group(1)), int(m.group(2))) if int(m.group(2)) else None
        m = _FRAC_RE.match(s)
        if m:
            num, den = int(m.group(2)), int(m.group(3))
            if not den:
                return None
            value = Fraction(num, den)
            return -value if m.group(1) else value
    except (ValueError, ZeroDivisionError):
        return None
    return None
