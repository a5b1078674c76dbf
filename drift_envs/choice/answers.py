r"""Reading which option a multiple-choice reply chose.

A reply *commits* through an explicit form — ``\boxed{C}``, ``<answer>C</answer>`` — or, when it has
none, through an answer phrase (``Answer: C``, ``The answer is (C)``), or by being nothing but a letter
or an option's text. Inside a committed span an option is named by its letter (``C``, ``(C)``,
``C.``, ``option C``, ``C. <its text>``) or by its text.

Every committed span of the strongest form present is read, and the options they name are pooled:
a reply naming one option chose it; a reply naming several (``A or B``, ``\boxed{A}\boxed{B}``,
``ABCD``, every option's text in one tag) chose none of them and is wrong, never lucky. The DRIFT
release's ``normalize_choice_answer`` takes the last letter anywhere in the reply, which a model
that writes ``A or B`` would game; this module does not.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from drift_envs.math.answers import find_boxed

__all__ = ["LETTERS", "ChoiceReading", "letter_of", "read_choice"]

#: option letters, in order; MMLU-Pro has up to ten options (A-J), nothing we adapt has more
LETTERS = "ABCDEFGHIJ"

# the tags alone, scanned once: ``<answer>(.*?)</answer>`` would rescan the rest of the reply from every
# unclosed ``<answer>`` (quadratic: 20,000 of them took 50 s)
_TAG_TOKEN_RE = re.compile(r"<(/?)answer>", re.IGNORECASE)
#: characters of a line read after an answer phrase: its head names the option, the rest is explanation
PHRASE_WINDOW = 300
# "Answer: C", "Final answer - (C)", "the correct answer is C", "The answer would be option C."
# (matched without consuming the rest of the line, so "my first answer was A, the answer is B" finds both)
_PHRASE_RE = re.compile(
    r"(?<![</])\banswer\b(?!>)(?:\s+(?:is|would\s+be|will\s+be|should\s+be))?\s*[:=\-–]?\s*(?:is\s+)?",
    re.IGNORECASE,
)
_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|textit)\s*\{([^{}]*)\}")
_PREFIX_RE = re.compile(r"^(?:the\s+)?(?:option|choice|letter|answer)\s*[:#]?\s*", re.IGNORECASE)
# a letter, optionally in brackets and followed by a full stop/colon/paren, then optional text
_LETTER_HEAD_RE = re.compile(r"^[(\[{]?\s*([A-Ja-j])\s*[)\]}]?(?:\s*[.:,;)\-–]\s*|\s+|$)(.*)$", re.DOTALL)
# a list of letters only: "A or B", "A, B and C", "A/B", "ABCD", "(A)(B)"
# one way to match each input (a separator, or whitespace, or nothing between letters), so no backtracking blow-up
_LETTER_LIST_RE = re.compile(
    r"^[(\[]?[A-J][)\]]?(?:(?:\s*(?:,|/|&|\||;|\b(?i:or|and)\b)\s*|\s+)?[(\[]?[A-J][)\]]?)*$"
)
_LIST_SPLIT_RE = re.compile(r"\s*(?:,|;|/|\||&|\bor\b|\band\b)\s*", re.IGNORECASE)
_CONJUNCTION_RE = re.compile(r"\b(?:or|and)\b", re.IGNORECASE)
_SINGLE_LETTER_RE = re.compile(r"[(\[]?\s*([A-Ja-j])\s*[)\]]?")
_LETTER_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9'’])([A-J])(?![A-Za-z0-9'’])")
# words after which a capital "A" or "I" is still an option's name ("A is correct", "I seems right")
_VERB_AFTER_LETTER = {
    "is", "was", "seems", "looks", "appears", "must", "should", "would", "could", "fits", "matches",
    "and", "or", "holds", "gives", "it",
}  # fmt: skip
_EDGE_PUNCT = string.punctuation.replace("%", "").replace("-", "")


def letter_of(index: int) -> str:
    """The letter of option ``index`` (0 -> ``A``)."""
    if not 0 <= index < len(LETTERS):
        raise ValueError(f"option index {index} out of range 0..{len(LETTERS) - 1}")
    return LETTERS[index]


@dataclass(frozen=True)
class ChoiceReading:
    """What a reply chose: ``named`` are the option indices it names (sorted).

    ``format_ok`` is False when the reply names no option at all; ``several`` when it names more than
    one. ``answer`` is the normalised answer: the letter (``"C"``), the letters joined by commas when
    several (``"A,B"``), or None.
    """

    named: tuple[int, ...]
    form: str | None = None

    @property
    def format_ok(self) -> bool:
        return bool(self.named)

    @property
    def several(self) -> bool:
        return len(self.named) > 1

    @property
    def choice(self) -> int | None:
        """The one option chosen, or None (no option, or several)."""
        return self.named[0] if len(self.named) == 1 else None

    @property
    def answer(self) -> str | None:
        return ",".join(LETTERS[i] for i in self.named) if self.named else None


def _norm_text(text: str) -> str:
    """Option text for comparison: lower case, one space, punctuation stripped from the ends of each
    word but kept inside it (``2.5 eV`` and ``25 eV`` stay apart; ``Paris.`` is ``paris``)."""
    text = _WRAP_RE.sub(r"\1", text).replace("$", "")
    words = (w.strip(_EDGE_PUNCT) for w in text.lower().split())
    return " ".join(w for w in words if w)


def _clean(span: str) -> str:
    s = _WRAP_RE.sub(r"\1", span).strip().strip("$*").strip()
    while len(s) >= 2 and s[0] + s[-1] in ("()", "[]", "{}") and s.count(s[0]) == 1:
        s = s[1:-1].strip()
    s = _PREFIX_RE.sub("", s).strip()
    return s.rstrip(".;!").strip()


def _text_matches(text: str, options: list[str]) -> set[int]:
    """The options whose text equals ``text`` (``options`` are normalised texts, as everywhere below)."""
    norm = _norm_text(text)
    return {i for i, opt in enumerate(options) if norm and opt == norm}


def _exact(span: str, options: list[str]) -> set[int] | None:
    """What a span names when it is *only* a letter, a list of letters, ``letter + text`` or an option's
    text; None when it is something else (a sentence)."""
    s = _clean(span)
    if not s:
        return None
    n = len(options)
    single = _SINGLE_LETTER_RE.fullmatch(s)
    if single is not None and LETTERS.index(single.group(1).upper()) < n:
        return {
            LETTERS.index(single.group(1).upper())
        }  # a letter is a letter, even where an option reads "A"
    by_text = _text_matches(s, options)
    if by_text:
        return by_text
    parts = [p for p in _LIST_SPLIT_RE.split(s) if p.strip()]
    if len(parts) > 1:  # "Paris, Berlin", "4 or 2": every part is an option (its text or its letter)
        named_parts = [_text_matches(p, options) or _exact(p, options) for p in parts]
        if all(named_parts):
            return set().union(*named_parts)
    head = _LETTER_HEAD_RE.match(s)
    if head is not None:
        letter, rest = head.group(1), head.group(2).strip().rstrip(".")
        index = LETTERS.index(letter.upper())
        if index < n and (letter.isupper() or not rest):
            if not rest:
                return {index}
            if len(rest) <= 1 and not rest.isalnum():
                return {index}
            named = _text_matches(rest, options)
            if named:  # "C. Paris": the text must be C's; another option's text makes it two choices
                return named | {index}
            if _LETTER_LIST_RE.match(s) is None:
                # "C is right": rest is prose; fall through to the scan
                return None
    if _LETTER_LIST_RE.match(s):
        letters = {LETTERS.index(c) for c in re.findall(r"[A-J]", _CONJUNCTION_RE.sub(" ", s))}
        if letters and max(letters) < n:
            return letters
    return None


def _scan(span: str, options: list[str]) -> set[int]:
    """The options a sentence inside a committed span names: letters standing alone and option texts
    written out in it."""
    n = len(options)
    named: set[int] = set()
    text = _WRAP_RE.sub(r"\1", span)
    for m in _LETTER_TOKEN_RE.finditer(text):
        index = LETTERS.index(m.group(1))
        if index >= n:
            continue
        if not _is_article(m.group(1), text[m.end() : m.end() + 40]):
            named.add(index)
    norm = f" {_norm_text(text)} "
    for i, o in enumerate(options):
        # a one-character option text ("1") is too likely to appear by accident inside a sentence
        if len(o) > 1 and f" {o} " in norm:
            named.add(i)
    return named


def _tag_spans(text: str) -> list[str]:
    """The contents of every closed ``<answer>…</answer>``, as the lazy pattern would find them, in one pass."""
    spans, start = [], None
    for m in _TAG_TOKEN_RE.finditer(text):
        if not m.group(1):
            if start is None:
                start = m.end()
        elif start is not None:
            spans.append(text[start : m.start()])
            start = None
    return spans


def _phrase_spans(text: str) -> list[str]:
    """The rest of the line after every answer phrase (``Answer:``, ``the answer is``)."""
    spans = []
    matches = list(_PHRASE_RE.finditer(text))
    for k, m in enumerate(matches):
        after = matches[k + 1] if k + 1 < len(matches) else None
        # up to the end of the line, the next answer phrase (read on its own) or the window
        stop = min(m.end() + PHRASE_WINDOW, after.start() if after is not None else len(text))
        end = text.find("\n", m.end(), stop)
        span = text[m.end() : end if end >= 0 else stop]
        if span.strip():
            spans.append(span)
    return spans


def _is_article(letter: str, after_text: str) -> bool:
    """A capital ``A`` or ``I`` followed by an ordinary word is the article or the pronoun
    (``A cat``, ``I think``), not an option's name (``A is correct`` still names A)."""
    if letter not in "AI":
        return False
    after = re.match(r"\s+([a-z]+)", after_text)
    return after is not None and after.group(1) not in _VERB_AFTER_LETTER


def _phrase_head(span: str, options: list[str]) -> set[int]:
    """What an answer phrase names: its first word(s) only (``C because ...``), never the explanation."""
    exact = _exact(span, options)
    if exact is not None:
        return exact
    s = _clean(span)
    head = _LETTER_HEAD_RE.match(s)
    named: set[int] = set()
    if (
        head is not None
        and head.group(1).isupper()
        and LETTERS.index(head.group(1)) < len(options)
        and not _is_article(head.group(1), s[1:])
    ):
        named.add(LETTERS.index(head.group(1)))
        # "A or B because ..." names both
        more = re.match(r"^\s*(?:or|and|/|,)\s*[(\[]?([A-J])(?![A-Za-z])", head.group(2))
        if more is not None and LETTERS.index(more.group(1)) < len(options):
            named.add(LETTERS.index(more.group(1)))
        return named
    norm = _norm_text(s)
    for i, o in enumerate(options):
        if o and (norm == o or norm.startswith(o + " ")):
            named.add(i)
    return named


def read_choice(text: str, options: list[str]) -> ChoiceReading:
    """Which of ``options`` the reply ``text`` chose (see the module docstring for the rules).

    ``form`` says how it was read: ``"tag"``/``"boxed"`` (explicit), ``"phrase"`` (``Answer: C``),
    ``"bare"`` (the reply is only a letter or an option's text), or None.
    """
    if not isinstance(text, str):
        raise TypeError(f"read_choice expects a str reply, got {type(text).__name__}")
    if not options:
        raise ValueError("read_choice needs at least one option")
    options = [_norm_text(str(o)) for o in options]  # normalised once: the helpers compare these
    named: set[int] = set()
    forms = []
    explicit = [("tag", span) for span in _tag_spans(text)]
    explicit += [("boxed", content) for _, content in find_boxed(text)]
    for form, span in explicit:
        found = _exact(span, options)
        if found is None:  # a sentence: its own answer phrase if it has one, else every option it names
            phrased = [_phrase_head(p, options) for p in _phrase_spans(span)]
            found = set().union(*phrased) if any(phrased) else _scan(span, options)
        if found:
            named |= found
            forms.append(form)
    if not forms:
        for span in _phrase_spans(text):
            found = _phrase_head(span, options)
            if found:
                named |= found
                forms.append("phrase")
    if not forms and len(text) <= 400:  # a bare reply: the letter or option text and nothing else
        found = _exact(text, options)
        if found:
            named |= found
            forms.append("bare")
    form = forms[-1] if len(set(forms)) == 1 else ("+".join(sorted(set(forms))) if forms else None)
    return ChoiceReading(tuple(sorted(named)), form)
