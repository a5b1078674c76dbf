"""Answer extraction and cheap normalisation for math replies.

Extraction finds what the model committed to (the last ``<answer>…</answer>`` or ``\\boxed{…}``);
normalisation makes the common written forms of one answer compare equal as strings, and
:func:`as_number` reads plain numbers (``1,234``, ``-3.5``, ``3/4``, ``\\frac{3}{4}``) exactly, so most
checks never reach the symbolic verifier.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["ANSWER_FORMATS", "as_number", "extract_answer", "find_boxed", "normalize_answer"]

ANSWER_FORMATS = ("auto", "tag", "boxed")

_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def find_boxed(text: str) -> list[tuple[int, str]]:
    """Every ``\\boxed{…}`` in ``text`` as ``(start, content)``, braces matched (nesting allowed).

    An unclosed box is ignored: a reply cut off mid-answer has not committed to anything.
    """
    found = []
    for m in _BOXED_RE.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            c = text[i]
            if c == "\\" and i + 1 < len(text):
                i += 2  # an escaped brace \{ does not open or close a group
                continue
            depth += (c == "{") - (c == "}")
            i += 1
        if depth == 0:
            found.append((m.start(), text[m.end() : i - 1]))
    return found


def extract_answer(text: str, answer_format: str = "auto") -> str | None:
    """The answer a reply committed to, or None when it has none.

    ``"tag"``: the last ``<answer>…</answer>``; ``"boxed"``: the last ``\\boxed{…}``; ``"auto"``: whichever
    of the two comes last. A ``\\boxed{}`` inside the last answer tag wins over the tag's text.
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
    candidates: list[tuple[int, str]] = []
    if answer_format in ("auto", "tag"):
        tags = list(_TAG_RE.finditer(text))
        if tags:
            inner = tags[-1].group(1)
            boxed = find_boxed(inner)
            candidates.append((tags[-1].start(), boxed[-1][1] if boxed else inner))
    if answer_format in ("auto", "boxed"):
        boxed = find_boxed(text)
        if boxed:
            candidates.append(boxed[-1])
    if not candidates:
        return None
    answer = max(candidates, key=lambda c: c[0])[1].strip()
    return answer or None


_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")
_SPACES_RE = re.compile(r"\s+|\\[,;:! ]|\\quad|\\qquad|~")
_DFRAC_RE = re.compile(r"\\[dt]frac")
_THOUSANDS_RE = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")


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
