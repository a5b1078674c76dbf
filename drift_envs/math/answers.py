"""Answer extraction and cheap normalisation for math replies.

(Longer than the ~600 lines a module keeps to, on purpose: its one job is reading what a reply states
as its answer, and its readers — answer sites, boxes and tags, final numbers, alternatives, "one value"
— call one another's helpers on the same text and must agree; split, they would import each other.
Each reader opens with a ``# ----`` section header.)

Extraction finds what the model committed to (the last ``<answer>…</answer>`` or ``\\boxed{…}``, or
with ``answer_format="final_number"`` the last number, see :func:`extract_final_number`);
normalisation makes the common written forms of one answer compare equal as strings, and
:func:`as_number` reads plain numbers (``1,234``, ``-3.5``, ``3/4``, ``\\frac{3}{4}``) exactly, so most
checks never reach the symbolic verifier.

A reply commits to one answer only: every answer tag and box is a candidate, and tags and boxes
naming different answers commit to none (:func:`extract_committed`, like several boxes that disagree);
so does a box joined to another value by an alternative (``\\boxed{7} \\lor 6``, ``x = 6 \\lor
\\boxed{7}``, ``<answer>7</answer> or 6``), and a box whose ``\\text{}`` offers one
(:func:`box_text_hedge`, ``\\boxed{7 \\text{ or 6}}``, ``\\boxed{7 \\text{ is wrong}}``: math-verify
drops the text). Last, the reply must stand by its answer, as :mod:`drift_envs.commitment` reads it for
every env: a box, tag or final number that the reply denies, excludes or retracts (``definitely not
\\boxed{7}``, ``anything but 7``, ``7 is wrong``, ``~~7~~``, ``7 ❌``, ``7... just kidding``, ``It is
\\boxed{7}. Not.``), or after which it offers one other value in a short sentence with a word that keeps
it open (``\\boxed{7} unless it is 6``, ``\\boxed{7}; if not, 6``, ``\\boxed{7}. 6 also works.``,
``\\boxed{7} vs 6``: a number that is no operand of a calculation, and only one: a sentence listing
several explains), commits to none.

Every place a reply states an answer is read (:func:`canonical_sites`): each box-like command
(``\\fbox``, ``\\framebox``, ``\\colorbox``, a spaced or brace-less ``\\boxed``, a box inside a box),
each spelling of the answer tag (``<answer >``, one left open, a stray closing tag) and each
``Answer:``/``Final answer:``/``The answer is`` line; they must all state the same answer. And an
answer is one value, or a plain chain of equal values (:func:`not_one_value`: ``x = 6 \\ne x = 7``,
``7 \\approx 6``, ``x=6 \\quad x=7`` are two statements; a final number after ``≥``, ``=>`` or ``at
least`` is a bound).

What is read is bounded whatever the reply: only its last :data:`MAX_READ_CHARS` characters (a final
answer sits at the end of a reply), and a reply with more than :data:`MAX_BOXES` boxes has not
committed to an answer (:attr:`Committed.uncommitted`). Both keep a step's in-process work to
milliseconds, so a 3 MB reply costs no more than a 32 KB one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from drift_envs.commitment import DENIAL_WORD_RE, commitment
from drift_envs.number_words import NUMBER_PHRASE_RE, NUMBER_WORD, words_to_numbers

__all__ = [
    "ANSWER_FORMATS",
    "MAX_ANSWER_CHARS",
    "MAX_BOXES",
    "MAX_NESTING",
    "MAX_READ_CHARS",
    "Committed",
    "as_boxed",
    "FinalNumber",
    "as_number",
    "extract_answer",
    "extract_committed",
    "extract_final_number",
    "find_boxed",
    "box_text_hedge",
    "canonical_sites",
    "loose_tag_contents",
    "boxes_have_connective",
    "has_connective",
    "nesting_depth",
    "normalize_answer",
    "not_one_value",
]

ANSWER_FORMATS = ("auto", "tag", "boxed", "final_number")

#: a reply is read from its last this many characters: extraction and the text a check parses stay small
MAX_READ_CHARS = 32_768
#: more boxes than this in the part of the reply the answer comes from: no committed answer (math-verify
#: itself joins at most 6 adjacent boxes into one answer)
MAX_BOXES = 32
#: an answer longer than this, or nested deeper, is no final answer: judged wrong without parsing it
#: (sympy would spend the whole CPU budget on ``(((...1...)))`` or a 15,000-term sum)
MAX_ANSWER_CHARS = 8_000
MAX_NESTING = 64

# the tags alone: a fixed-length alternation scans a reply once, where ``<answer>(.*?)</answer>`` rescans
# the rest of the reply from every unclosed ``<answer>`` (quadratic in the reply length)
_TAG_TOKEN_RE = re.compile(r"<(/?)answer>", re.IGNORECASE)
# every spelling of the tag a reader of the reply sees as one (``<answer >``, ``< /answer>``)
_LOOSE_TAG_RE = re.compile(r"<\s*(/?)\s*answer\s*>", re.IGNORECASE)
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
    #: why the reply has not committed to ``answer`` although it names one (it is then wrong), or None:
    #: more than :data:`MAX_BOXES` boxes (``boxes`` then holds the last :data:`MAX_BOXES`, ``several`` is
    #: None), more than :data:`MAX_BOXES` answer tags, tags and boxes naming different answers, an
    #: alternative joining the answer to another value, or a hedged final number
    #: (:attr:`FinalNumber.uncommitted`)
    uncommitted: str | None = None


def extract_committed(text: str, answer_format: str = "auto") -> Committed | None:
    """The answer a reply committed to (see :func:`extract_answer`), with its boxes; None when it has none.

    It has not committed (:attr:`Committed.uncommitted`) when its answer tags and the boxes outside them
    name different answers, whatever ``answer_format`` reads (``<answer>6</answer><answer>7</answer>``,
    ``<answer>6</answer> \\boxed{7}``), or when an alternative joins its last tag or box to another
    value: after it on its line, or on the next line opening with ``or``/``maybe``... (``\\boxed{7}
    \\lor 6``, ``\\boxed{7} (or maybe 6)``, ``\\boxed{7}, not 6``), or just before it (``x = 6 \\lor
    \\boxed{7}``), or when the reply does not stand by its last tag or box (:func:`_not_standing`:
    ``definitely not \\boxed{7}``, ``\\boxed{7} is wrong``, ``\\boxed{7} unless it is 6``). Boxes
    without tags are read together as before (a set, when they differ).

    With ``answer_format="final_number"`` this is the number :func:`extract_final_number` reads (no boxes).
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
    text = canonical_sites(text[-MAX_READ_CHARS:])
    if answer_format == "final_number":
        final = extract_final_number(text)
        return Committed(final.answer, uncommitted=final.uncommitted) if final is not None else None
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
    hedge = (
        _several_containers(text)
        or _nested_box(text)
        or _stated_elsewhere(text, answer)
        or _joined_value(text, answer)
        or _not_standing(text, answer)
    )
    if hedge is not None:
        contents = tuple(content.strip() for content in boxes[-MAX_BOXES:])
        return Committed(answer, contents, None, uncommitted=hedge)
    if len(boxes) > MAX_BOXES:
        many = f"it has {len(boxes)} boxes (more than {MAX_BOXES})"
        return Committed(answer, tuple(c.strip() for c in boxes[-MAX_BOXES:]), None, uncommitted=many)
    contents = tuple(content.strip() for content in boxes)
    return Committed(answer, contents, as_boxed(scope) if len(contents) > 1 else None)


# Every other command that draws a box round its argument, as TeX reads it: ``\framebox[w][p]``,
# ``\colorbox{c}``, ``\fcolorbox{f}{c}`` (``\boxed`` and ``\fbox``, spaced or not, are read as they are)
_BOX_LIKE_RE = re.compile(
    r"\\framebox(?![A-Za-z])\s*(?:\[[^\]\n]{0,40}\]\s*){0,2}\{"
    r"|\\colorbox\s*\{[^{}\n]{0,40}\}\s*\{|\\fcolorbox\s*\{[^{}\n]{0,40}\}\s*\{[^{}\n]{0,40}\}\s*\{"
)
# ... and without braces TeX boxes the next token: one character (``\boxed 6``, ``\boxed6``) or one command
_BRACELESS_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*(\\[A-Za-z]+|[^\s{\\])")


def canonical_sites(text: str) -> str:
    """``text`` with every place it states an answer in a spelling the box and tag readers see: each
    other box-like command as ``\\boxed{``, a brace-less box as ``\\boxed{x}``, each answer tag spelled
    with spaces as ``<answer>``/``</answer>``. (:func:`as_boxed` spells ``\\fbox {`` for math-verify.)
    """
    text = _BOX_LIKE_RE.sub(lambda _: "\\boxed{", text)
    text = _BRACELESS_BOX_RE.sub(lambda m: "\\boxed{" + m.group(1) + "}", text)
    # a tag spelled with spaces becomes the plain tag; one without keeps its case (it is read as it is)
    return _LOOSE_TAG_RE.sub(
        lambda m: m.group(0) if not any(c.isspace() for c in m.group(0)) else f"<{m.group(1)}answer>", text
    )


def as_boxed(text: str) -> str:
    """``text`` with every box spelled ``\\boxed{``, the one spelling math-verify reads (to it
    ``\\fbox{6} \\boxed{7}`` and ``\\boxed {6} \\boxed{7}`` were 7)."""
    return _BOXED_RE.sub(lambda _: "\\boxed{", text)


def _nested_box(text: str) -> str | None:
    """Why a box holds another box that names a different answer (``\\boxed{6 \\boxed{7}}``,
    ``\\boxed{\\boxed{7}, 6}``), or None: each box is a place the reply states an answer, the outer one
    with its inner boxes read as their contents, and all of them must agree."""
    spans, closing = _box_spans(text)
    for _, a, b in spans[-MAX_BOXES:]:
        content = _unwrapped(text, closing, a, b)
        inner = find_boxed(content)
        if not inner:
            continue
        outer = _BOXED_RE.sub("", content).replace("}", " ") if len(content) < 2000 else content
        keys = {_answer_key(box) for _, box in inner} | {_answer_key(_container_answer_flat(content))}
        if len(keys) > 1:
            return f"it boxes {outer.strip()[:40]!r} round another box: several answers"
    return None


def _container_answer_flat(content: str) -> str:
    """A box's content with each inner box read as its content (``6 \\boxed{7}`` is ``6 7``)."""
    spans, _ = _box_spans(content)
    out, at = [], 0
    for start, a, b in spans:
        out.append(content[at:start])
        out.append(content[a:b])
        at = b + 1
    out.append(content[at:])
    return "".join(out)


# "Answer: 6" opening a line, "**Final answer:** 6", "The answer is 6.": a line stating an answer in
# words ("we check our answer: 17 * 44 = 748" states none)
_STATED_RE = re.compile(
    r"(?:(?:^|\n)[ \t>#*_-]*answer\s*(?:\*\*|__)?\s*[:：]|\bfinal\s+answer\s*(?:\*\*|__)?\s*[:：]"
    r"|\bthe\s+(?:final\s+)?answer\s+is\b)[ \t*_:]*([^\n]{1,200})",
    re.IGNORECASE,
)


def _stated_elsewhere(text: str, answer: str) -> str | None:
    """Why a line of the reply states an answer other than its box or tag, or None.

    ``Answer: 6`` (``Final answer: 6``, ``The answer is 6.``) is a place the reply states its answer
    as much as a box is: with ``\\boxed{7}`` it names two. A line holding a box or a tag is that
    container, read already; a stated number that differs from a number answer is a second answer.
    """
    own = as_number(normalize_answer(answer))
    if own is None:
        return None  # only numbers are compared: the words after "answer:" may describe a text answer
    for m in list(_STATED_RE.finditer(text))[-MAX_BOXES:]:
        stated = m.group(1)
        container = re.search(r"\\boxed|<answer>", stated)
        if container is not None:
            # the line's box or tag is read already; what stands before it may state another value
            # ("**Answer: 6** \boxed{7}"), unless it leads into it ("Answer: 2 + 5 = \boxed{7}")
            stated = stated[: container.start()]
            if not stated.strip(" \t$*_:(") or stated.rstrip(" \t$*_(").endswith(("=", "is")):
                continue
        stated = re.split(r"(?<=[^\d\s])[.!?](?:\s|$)|[.!?]\s", stated + " ", maxsplit=1)[0]
        values = _nearest_value(stated.replace("$", " ").replace("*", " "), last=False)
        if values and values != {own}:
            shown = ", ".join(str(v) for v in sorted(values))
            return f"it states another answer ({shown}) beside its box or tag: {m.group(0).strip()[:60]!r}"
    return None


def _all_tags(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every closed ``<answer>…</answer>``, paired as :func:`_last_tag` pairs them."""
    tags, open_match = [], None
    for m in _TAG_TOKEN_RE.finditer(text):
        if not m.group(1):
            if open_match is None:
                open_match = m
        elif open_match is not None:
            tags.append((open_match.start(), m.end(), text[open_match.end() : m.start()]))
            open_match = None
    return tags


def _answer_key(answer: str) -> tuple[str, object]:
    """What two containers must share to name the same answer: the value of a plain number, else the
    normal form (``7``, ``7.0`` and ``x = 7`` agree)."""
    normal = normalize_answer(answer)
    value = as_number(normal)
    return ("number", value) if value is not None else ("text", normal)


def _container_answer(text: str) -> str:
    """The answer one container (a tag's content, or a box's) names: its boxes joined, or its text."""
    spans, closing = _box_spans(text)
    if not spans:
        return text
    if len(spans) == 1:
        return _unwrapped(text, closing, spans[0][1], spans[0][2])
    return ", ".join(normalize_answer(text[a:b]) for _, a, b in spans)


def loose_tag_contents(text: str) -> list[str]:
    """What a tag left open at the end (``<answer>7</answer><answer>6``) or a stray closing tag
    (``<answer>7</answer>6</answer>``) encloses, beside closed tags: a reader sees an answer there too."""
    found, open_at, last_end = [], None, None
    for m in list(_TAG_TOKEN_RE.finditer(text))[: 2 * MAX_BOXES + 2]:
        if not m.group(1):
            if open_at is None:
                open_at = m.end()
        elif open_at is not None:
            open_at, last_end = None, m.end()
        elif last_end is not None:  # a closing tag that closes no tag: it closes the stretch after the last
            found.append(text[last_end : m.start()])
            last_end = m.end()
    if open_at is not None and last_end is not None:
        found.append(text[open_at:])
    return [inner for inner in found if inner.strip()]


def _several_containers(text: str) -> str | None:
    """Why a reply with answer tags names several different answers, or None.

    Every ``<answer>`` tag is a candidate, and so are the boxes outside the tags (together, as the set
    math-verify reads them); two candidates that differ (``<answer>6</answer><answer>7</answer>``,
    ``<answer>6</answer> \\boxed{7}``) commit to neither. A reply with boxes only is read as before.
    """
    tags = _all_tags(text)
    if not tags:
        return None
    if len(tags) > MAX_BOXES:
        return f"it has {len(tags)} answer tags (more than {MAX_BOXES})"
    outside, at = [], 0
    for start, end, _ in tags:
        outside.append(text[at:start])
        at = end
    outside.append(text[at:])
    candidates = [_container_answer(inner).strip() for _, _, inner in tags]
    candidates += [_container_answer(inner).strip() for inner in loose_tag_contents(text)]
    spans_outside = [span for part in outside for span in _box_spans(part)[0]]
    if spans_outside:
        candidates.append(_container_answer(" ".join(outside)).strip())
    if len(candidates) < 2:
        return None
    keys = {_answer_key(c) for c in candidates if c}
    if len(keys) > 1:
        shown = ", ".join(repr(c[:40]) for c in candidates[:4])
        return f"it names several different answers in its answer tags and boxes ({shown})"
    return None


def _container_ends(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every top-level box and every answer tag, in order of their ends."""
    spans, _ = _box_spans(text)
    ends = [(start, b + 1) for start, _, b in spans] + [(a, b) for a, b, _ in _all_tags(text)]
    return sorted(ends, key=lambda e: e[1])


# the next line goes on with the answer when it opens with an alternative (``\n or maybe 6``)
_ALTERNATIVE_LINE_RE = re.compile(
    r"\s*(?:\(|\$|\\text\s*\{)?\s*(?:or|else|maybe|perhaps|possibly|alternatively|otherwise)\b", re.IGNORECASE
)
#: alternatives after an answer read (each reads to the end of the line: bounded work)
MAX_ALTERNATIVES = 16
# a bar after an answer offers another ("\\boxed{7} | 6"); elsewhere it is more often |x|
_BAR_RE = re.compile(r"(?<!\|)\|(?!\|)")
#: how far before a container a value joined to it by an alternative is looked for
_JOIN_WINDOW = 40


def _differs(values: set[Fraction], answer: str) -> bool:
    """True when ``values`` hold a value other than ``answer`` (any value, when ``answer`` is no number)."""
    value = as_number(normalize_answer(answer))
    return bool(values) and (value is None or values != {value})


def _joined_value(text: str, answer: str) -> str | None:
    """Why the last answer container is joined to another value, or None.

    After it, on its line (and the next line when that opens with ``or``/``maybe``/``else``...), an
    alternative (``or``, ``maybe``, ``not``, ``\\lor``...) followed by a value other than the answer
    (``\\boxed{7} \\lor 6``, ``\\boxed{7} (or maybe 6)``, ``<answer>7</answer> or 6``); or just before it,
    a value and an alternative (``x = 6 \\lor \\boxed{7}``, ``6 or \\boxed{7}``).
    """
    containers = _container_ends(text)
    if not containers:
        return None
    start, end = containers[-1]
    line_end = text.find("\n", end)
    if line_end == -1:
        line_end = len(text)
    elif _ALTERNATIVE_LINE_RE.match(text, line_end + 1):
        following = text.find("\n", line_end + 1)
        line_end = following if following != -1 else len(text)
    after = text[end:line_end][:2000]
    marks = list(_ALTERNATIVE_RE.finditer(after)) + list(_BAR_RE.finditer(after))
    for mark in marks[:MAX_ALTERNATIVES]:
        # the first value after the alternative, up to the end of the line (``or maybe 6``)
        values = _offered(mark, after[mark.end() :])
        if _differs(values, answer):
            return f"it offers another value after its answer ({after.strip()[:60]!r})"
    line_start = text.rfind("\n", 0, start) + 1
    before = text[max(line_start, start - 2000) : start]
    joined = False
    while True:
        trimmed = before.rstrip(" \t$(")
        trimmed = trimmed[:-2] if trimmed.endswith("\\(") else trimmed
        mark = next(reversed(list(_ALTERNATIVE_RE.finditer(trimmed, max(0, len(trimmed) - 20)))), None)
        if mark is None or mark.end() != len(trimmed) or mark.group(0).lower() == "not":
            break
        before, joined = trimmed[: mark.start()], True
    if joined and _differs(_nearest_value(before[-_JOIN_WINDOW:], last=True), answer):
        return f"it joins another value to its answer ({before.strip()[-40:]!r})"
    return None


# an operator next to a number makes it an operand ("3 + 4 = 7"); a dash after a dash is punctuation
# ("\boxed{7} -- 6 also works")
_OPERAND_BEFORE_RE = re.compile(r"(?:[\w)}]\s*(?:[-+*/×÷^=≠·<>]|\\times|\\cdot|\\div)|[+*/×÷^=≠·<>])\s*\$?$")
_OPERAND_AFTER_RE = re.compile(r"^\$?\s*\)*\s*(?:[-+*/×÷^=≠·<>]|\\times|\\cdot|\\div)\s*[\w(\\]")


def _names_other_value(answer: str):
    """The math reading of "another value" for :func:`drift_envs.commitment.commitment`: exactly one
    number (digits or English words) that differs from ``answer`` and is no operand of a calculation."""

    def names_other(stretch: str) -> bool:
        stretch = stretch[:_VALUE_WINDOW]
        values: set[Fraction] = set()
        for m in _PLAIN_NUMBER_RE.finditer(stretch):
            before, after = stretch[max(0, m.start() - _OPERATOR_WINDOW) : m.start()], stretch[m.end() :]
            if _OPERAND_BEFORE_RE.search(before) or _OPERAND_AFTER_RE.match(after[:_OPERATOR_WINDOW]):
                continue
            value = _value(m.group(0))
            if value is not None:
                values.add(value)
        for words in _NUMBER_WORDS_RE.findall(stretch):
            values |= _words_values(words)
        # one other value is a second candidate; several are a list the sentence explains ("the 3
        # factors 10, 25 and 50 ... as well")
        own = as_number(normalize_answer(answer))
        return len(values - {own}) == 1

    return names_other


def _not_standing(text: str, answer: str) -> str | None:
    """Why the reply does not stand by its last box or tag (:func:`drift_envs.commitment.commitment`:
    ``definitely not \boxed{7}``, ``\boxed{7} is wrong``, ``~~\boxed{7}~~``, ``\boxed{7} ❌``,
    ``\boxed{7}... just kidding``, ``\boxed{7} unless it is 6``, ``\boxed{7}. 6 also works.``), or None."""
    containers = _container_ends(text)
    if not containers:
        return None
    start, end = containers[-1]
    return commitment(text, start, end, _names_other_value(answer))


def box_text_hedge(content: str) -> str | None:
    """Why a box's ``\\text{}`` offers another answer, or None: an alternative or negation word inside it
    (``\\boxed{7 \\text{ or 6}}``, ``\\boxed{7 \\text{, not 6}}``), or a number inside it beside a number
    outside it (``\\boxed{7 \\text{ (6)}}``); ``7 \\text{ apples}`` names one answer. math-verify drops
    the text, so the check never sees it."""
    texts = [m.group(1) for m in _TEXT_WRAP_RE.finditer(content)]
    if not texts:
        return None
    for inner in texts:
        word = _BOX_TEXT_ALTERNATIVE_RE.search(inner)
        if word is not None:
            return f"its box offers an alternative in text ({word.group(0)!r})"
        word = DENIAL_WORD_RE.search(inner)  # "\boxed{7 \text{ is wrong}}", "\text{(wrong)}"
        if word is not None:
            return f"its box takes its answer back in text ({word.group(0)!r})"
    rest = _TEXT_WRAP_RE.sub(" ", content)
    if not any(ch.isdigit() for ch in rest):
        return None  # the text is the answer (\\text{7 apples})
    named: set[Fraction] = set()
    for inner in texts:
        named |= {v for v in map(_value, _PLAIN_NUMBER_RE.findall(inner)) if v is not None}
        for words in _NUMBER_WORDS_RE.findall(inner):
            named |= _words_values(words)
    outside = as_number(normalize_answer(rest))
    if named and (outside is None or named != {outside}):
        return "its box names a second number in text"
    return None


def extract_answer(text: str, answer_format: str = "auto") -> str | None:
    """The answer a reply committed to, or None when it has none.

    ``"tag"``: the last ``<answer>…</answer>``; ``"boxed"``: the last ``\\boxed{…}``; ``"auto"``: whichever
    of the two comes last. A ``\\boxed{}`` inside the last answer tag wins over the tag's text.
    ``"final_number"``: the last number (:func:`extract_final_number`).
    """
    committed = extract_committed(text, answer_format)
    return committed.answer if committed is not None else None


_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
# a word in a box's text that offers another answer or takes this one back
_BOX_TEXT_ALTERNATIVE_RE = re.compile(
    r"\b(?:or|not|else|maybe|either|possibly|perhaps|probably|otherwise|alternatively)\b|n't\b",
    re.IGNORECASE,
)
_SPACES_RE = re.compile(r"\s+|\\[,;:! ]|\\quad|\\qquad|~")
_DFRAC_RE = re.compile(r"\\[dt]frac")
# Commas are thousands separators only where the number reads no other way: a first group without a
# leading zero, then groups of exactly three digits (``1,234``, ``7,425,000``, ``1,000.5``), as math-verify
# reads them. ``0,111`` is a decimal comma to math-verify (0.111), never 111; ``1,22`` is the pair {1, 22};
# both are left to it.
_THOUSANDS_RE = re.compile(r"^[-+]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$")
# ... and only where no space follows a comma: math-verify reads ``32, 349`` and ``1,\,000`` as pairs
# (``12,\!000``, a negative space, is still a separator)
_COMMA_SPACE_RE = re.compile(r",(?:\s|\\[,;: ]|\\quad|\\qquad|~)")


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
    spaced_commas = _COMMA_SPACE_RE.search(s) is not None
    s = _SPACES_RE.sub("", s)
    s = s.rstrip(".")
    if re.match(r"^[a-zA-Z]=[^a-zA-Z=,]+$", s):  # "x=5" -> "5", but "y=2x+3" keeps its meaning
        s = s[2:]
    if not spaced_commas and _THOUSANDS_RE.match(s):
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


# ---- statements that are not one value -------------------------------------------------------------

# Logical connectives. math-verify's LaTeX reading keeps the last operand of each (``x=6 \lor x=7`` and
# ``x=6 \implies x=7`` read as 7, ``\neg x=7`` as 7), so a disjunction, an implication or a negation of
# values would pass as its last value.
_CONNECTIVE_RE = re.compile(
    r"\\(?:lor|vee|land|wedge|lnot|neg|implies|impliedby|iff|to|gets|rightarrow|leftarrow"
    r"|leftrightarrow|Rightarrow|Leftarrow|Leftrightarrow|Longrightarrow|Longleftarrow"
    r"|Longleftrightarrow|longrightarrow|longleftarrow|longleftrightarrow|mapsto)(?![A-Za-z])"
    r"|[∨∧¬⇒⇐⇔→←↔⟹⟸⟺]"
)


def _top_level(text: str) -> str:
    """``text`` without what lies inside braces (``\\lim_{x \\to 0}`` keeps no ``\\to``), in one pass."""
    out, depth, i, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "{}":
            if depth == 0:
                out.append(text[i : i + 2])
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(c)
        i += 1
    return "".join(out)


#: a gap between two boxes up to this long is where a connective joins them (``\boxed{6} \lor \boxed{7}``);
#: a longer one is prose between an early box and a late one
MAX_JOINING_GAP = 40


def boxes_have_connective(text: str) -> bool:
    """:func:`has_connective` for a reply with several boxes: in any box, or in a short gap between two
    (a longer gap is the reasoning between them, whose ``\\Rightarrow`` joins no answers)."""
    spans, _ = _box_spans(text)
    if any(has_connective(text[a:b]) for _, a, b in spans):
        return True
    gaps = (text[spans[i][2] + 1 : spans[i + 1][0]] for i in range(len(spans) - 1))
    return any(len(gap) <= MAX_JOINING_GAP and has_connective(gap) for gap in gaps)


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``()``, ``[]`` and ``{}`` in ``text`` (unbalanced closers ignored)."""
    depth = deepest = 0
    for c in text:
        if c in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")]}" and depth:
            depth -= 1
    return deepest


def has_connective(text: str) -> bool:
    """True when ``text`` joins statements with a logical connective outside braces.

    ``\\lor``/``\\vee``, ``\\land``/``\\wedge``, ``\\neg``/``\\lnot``, ``\\implies``, ``\\Rightarrow``,
    ``\\to``, ``\\iff`` and their kin (and the Unicode signs): ``x=6 \\lor x=7`` is not the answer 7.
    Inside braces they are notation (``\\lim_{x \\to 0}``), not a statement about the answer.
    """
    return _CONNECTIVE_RE.search(_top_level(text)) is not None


# ---- "final number" replies (lm-eval's GSM8K flexible extraction, made to commit) -----------------

#: lm-evaluation-harness ``gsm8k.yaml``, filter ``flexible-extract``: its regex, last match (group_select -1)
FLEXIBLE_EXTRACT_RE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
# a sentence ends at . ! or ? before white space, or at a line break
_SENTENCE_END_RE = re.compile(r"(?<!\bvs)(?<!\bVs)\.(?=\s)|[!?](?=\s)|\n")  # "6 vs. 7" is one sentence
# a final sentence opening with an alternative goes on with the one before ("It is 6. Or 7")
_OPENS_ALTERNATIVE_RE = re.compile(
    r"[\s(\[*_\"'$]*(?:or|else|maybe|perhaps|possibly|otherwise|alternatively|vs|versus|unless|if\s+not)\b",
    re.IGNORECASE,
)
# a number next to an arithmetic operator is an operand of a calculation, not a candidate answer
_OPERATOR_BEFORE_RE = re.compile(r"(?:[-+*/×÷^=≠·(]|\\times|\\cdot|\\div)\s*$")
# the answer itself after one of these is an operand: the reply ends on an expression (``14 / 7``)
_ARITHMETIC_BEFORE_RE = re.compile(r"(?:[-+*/×÷^·]|\\times|\\cdot|\\div)\s*$")
_OPERATOR_AFTER_RE = re.compile(r"^\s*\)*\s*(?:[-+*/×÷^=≠·]|\\times|\\cdot|\\div)")
_NEGATION_RE = re.compile(r"\b(?:not|never|neither|nor|cannot|no)\b|n't\b|≠|\\neq?\b", re.IGNORECASE)
_CLAUSE_END_RE = re.compile(r"[,;:]")
# a run of numbers and operators (the characters of lm-eval's numbers too); one with "=" is a calculation.
# A single character class: maximal runs are found in linear time.
_ARITHMETIC_RUN_RE = re.compile(r"[-+*/×÷()$0-9.,\s=]+")
_PLAIN_NUMBER_RE = re.compile(r"-?\d+(?:\.\d*)?|-?\.\d+")
#: how far around a number its operator is looked for
_OPERATOR_WINDOW = 16


@dataclass(frozen=True)
class FinalNumber:
    """The number a free-text reply ends on (``answer``), and why it does not count, if it does not.

    ``uncommitted``: None when the reply committed to ``answer``; else the reason it did not (its
    final sentence names another value, negates the answer, or holds a false calculation).
    """

    answer: str
    uncommitted: str | None = None


def _clean_number(match: str) -> str:
    """lm-eval's GSM8K answer cleaning (``regexes_to_ignore``): no ``,``, no ``$``, no final ``.``."""
    return match.replace(",", "").replace("$", "").removesuffix(".")


def _value(number: str) -> Fraction | None:
    try:
        return Fraction(number)
    except (ValueError, ZeroDivisionError):
        return None


#: a final sentence with a longer chain of equalities than this has not committed to its last side
MAX_EQUALITIES = 32
#: a final sentence naming more numbers than this is a list, not a commitment (and is not read further)
MAX_SENTENCE_NUMBERS = 64


def _calculation_is_false(calculation: str) -> bool:
    """True when the sides of ``a op b = c = ...`` (``+ - * / × ÷``, parentheses) evaluate to different
    values, or the chain has more than :data:`MAX_EQUALITIES` equalities (too long to be a commitment)."""
    sides = [side.strip() for side in calculation.split("=")]
    if len(sides) > MAX_EQUALITIES + 1:
        return True
    values = set()
    for side in sides:
        if not side:
            continue
        expr = side.replace("×", "*").replace("÷", "/").replace("$", "").replace(",", "")
        if len(expr) > 200 or "**" in expr:
            return False  # not a calculation this judges
        value = _value(expr) if _PLAIN_NUMBER_RE.fullmatch(expr) else _evaluate(expr)
        if value is None:
            return False  # not plain arithmetic: nothing to judge
        values.add(value)
    return len(values) > 1


def _evaluate(expr: str) -> Fraction | None:
    """The exact value of plain arithmetic (numbers, ``+ - * /``, parentheses), or None."""
    import ast

    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            a, b = value(node.left), value(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            return a / b
        raise ValueError("not plain arithmetic")

    try:
        return value(tree.body)
    except (ValueError, ZeroDivisionError, RecursionError):
        return None


def extract_final_number(text: str) -> FinalNumber | None:
    """The number a free-text reply ends on, read as lm-eval's GSM8K ``flexible-extract`` reads it; None if none.

    The rule, exactly:

    1. The answer is the last match of lm-eval's regex ``(-?[$0-9.,]{2,})|(-?[0-9]+)`` that holds a
       digit (lm-eval also takes a match without one, such as ``...``), cleaned as its GSM8K metric
       cleans it: ``,`` and ``$`` removed, a final ``.`` dropped (``$1,234.`` is ``1234``). Its value
       is then judged like any answer (``7.0`` equals ``7``; lm-eval compares strings).
    2. The reply commits to it only when the answer is no operand (``-14 / 7`` and ``1 + 6`` end on an
       expression; ``= 7`` is fine) and its final sentence (from the last ``.``/``!``/``?`` before
       white space, or the last line break, before the answer) names at most
       :data:`MAX_SENTENCE_NUMBERS` numbers and no other value: any other number
       there that is not an operand of a calculation (a number next to ``+ - * / × ÷ ^ =``) and
       differs from the answer is a second candidate (``6 or 7``, ``between 6 and 7``, ``7, not 6``).
    3. ... the clause holding the answer (between ``,``/``;``/``:`` or sentence ends) does not negate
       it (``not``, ``n't``, ``never``, ``no``, ``neither``, ``nor``, ``cannot``, ``≠``): ``not 7``;
    4. ... and every calculation in the final sentence is true: ``18 - 11 = 7`` is fine, ``6 = 7`` and
       ``18 - 11 = 6 = 7`` are not (plain arithmetic, evaluated exactly; a chain of more than
       :data:`MAX_EQUALITIES` equalities counts as false);
    5. ... no two different values stand either side of an alternative in the final sentence (``or``,
       ``either``, ``maybe``, ``else``, ``\\lor``...), operands or not: each side's arithmetic is
       evaluated and English number words are values (``6 + 0 or 7``, ``x = 6 or x = 7``, ``six or 7``
       are wrong; ``7 or seven`` is fine); and no variable is given two values (``x=6, x=7``).

    6. The final sentence takes in the one before it when it opens with an alternative (``It is 6. Or
       7``, ``Six. Or seven: 7``) or the one before is a question (``6?\n7``); ``vs.`` ends no sentence.
    7. ... and the reply stands by the answer (:func:`drift_envs.commitment.commitment`): ``anything
       but 7``, ``7 is wrong``, ``~~7~~``, ``7 ❌``, ``7... just kidding``, ``7? No.`` are wrong.

    A reply that fails 2-7 is wrong whatever its answer; :attr:`FinalNumber.uncommitted` says why.
    Only the last number can win, so a reply listing every candidate gains nothing by it.
    """
    matches = [m for m in FLEXIBLE_EXTRACT_RE.finditer(text) if any(ch.isdigit() for ch in m.group(0))]
    if not matches:
        return None
    last = matches[-1]
    answer = _clean_number(last.group(0))
    # the final sentence: from the last sentence end before the answer to the end of the reply
    ends = [0, *(end.end() for end in _SENTENCE_END_RE.finditer(text, 0, last.start()))]
    start = ends.pop()
    # the sentence before goes with it when the final one opens with an alternative ("It is 6. Or 7")
    # or the one before asks ("6?\n7": a question offers its value, the next line another)
    while (
        ends
        and (_OPENS_ALTERNATIVE_RE.match(text, start) or text[:start].rstrip().endswith("?"))
        and start - ends[-1] <= _VALUE_WINDOW
    ):
        start = ends.pop()
    sentence_matches = [m for m in matches if m.start() >= start]
    before_answer = text[max(start, last.start() - _OPERATOR_WINDOW) : last.start()]
    if _ARITHMETIC_BEFORE_RE.search(before_answer):
        return FinalNumber(answer, "it ends on an expression, not a value")
    if len(sentence_matches) > MAX_SENTENCE_NUMBERS:
        return FinalNumber(answer, f"its final sentence names {len(sentence_matches)} numbers")
    bound = _stated_as_bound(text[max(start, last.start() - _VALUE_WINDOW) : last.start()])
    if bound is not None:
        return FinalNumber(answer, bound)
    answer_value = _value(answer)
    for m in sentence_matches[:-1]:
        other = _clean_number(m.group(0))
        if other == answer or (answer_value is not None and _value(other) == answer_value):
            continue
        before = text[max(start, m.start() - _OPERATOR_WINDOW) : m.start()]
        after = text[m.end() : m.end() + _OPERATOR_WINDOW]
        if _OPERATOR_BEFORE_RE.search(before) or _OPERATOR_AFTER_RE.match(after):
            continue
        return FinalNumber(answer, f"its final sentence also names {other}")
    clause_start = start
    for end in _CLAUSE_END_RE.finditer(text, start, last.start()):
        clause_start = end.end()
    clause_end = _CLAUSE_END_RE.search(text, last.end())
    sentence_end = _SENTENCE_END_RE.search(text, last.end())
    stop = (
        min(m.start() for m in (clause_end, sentence_end) if m) if (clause_end or sentence_end) else len(text)
    )
    if _NEGATION_RE.search(text[clause_start:stop]):
        return FinalNumber(answer, "it negates its answer")
    stop = sentence_end.start() if sentence_end else len(text)
    for run in _ARITHMETIC_RUN_RE.finditer(text, start, stop):
        if "=" in run.group(0) and _calculation_is_false(run.group(0)):
            return FinalNumber(answer, f"it states a false calculation ({run.group(0).strip()})")
    hedge = _alternative_values(text[start:]) or _reassigned(text[start:])
    if hedge is not None:
        return FinalNumber(answer, hedge)
    # the shared reading (drift_envs.commitment): "anything but 7", "7 is wrong", "~~7~~", "7 ❌"
    # the number without lm-eval's trailing "." or "," ("7." in "7. Incorrect."): what follows is read
    end = last.start() + len(last.group(0).rstrip(".,"))
    hedge = commitment(text, last.start(), end, _names_other_value(answer))
    if hedge is not None:
        return FinalNumber(answer, hedge)
    return FinalNumber(answer)


# What may stand right before a stated value: prose (a letter), the start of its line, ``:``, ``,``,
# ``#``, an opening bracket or quote, markdown or math delimiters, or ``=`` after a value (``x = 7``,
# ``18 - 11 = 7``). Anything else there (``≥ 7``, ``6 => 7``, ``6 -> 7``, ``6 =/= 7``, ``~7``, ``±7``)
# relates the value to something: a bound or an implication, not the value.
_BEFORE_VALUE_CHARS = ":;,.!?#([{)]}\"'`*$_\n-–—"
# ... and the English for a bound ("at least 7", "no more than 7")
_BOUND_WORDS_RE = re.compile(
    r"\b(?:at\s+(?:least|most)|(?:more|less|fewer|greater|smaller|larger|higher|lower)\s+than|up\s+to"
    r"|(?:no|not)\s+(?:more|less|fewer)\s+than|exceeds|exceeding|over|under|below|above)\s*$",
    re.IGNORECASE,
)


def _stated_as_bound(before: str) -> str | None:
    """Why the value after ``before`` is stated as a bound or an implication, not as the value, or None."""
    trimmed = before.rstrip(" \t$*_")
    if not trimmed:
        return None
    if _BOUND_WORDS_RE.search(trimmed):
        return f"it states a bound, not a value ({trimmed[-20:].strip()!r})"
    last = trimmed[-1]
    if last == "=":
        side = trimmed[:-1].rstrip(" \t$*")
        if not side or side[-1].isalnum() or side[-1] in ")]}%":
            return None
        return f"it relates values with {trimmed[-4:].strip()!r}, not an equality"
    if last.isalnum() or last in _BEFORE_VALUE_CHARS:
        return None
    return f"it relates its value with {last!r} (a bound or an implication), not the value"


# ---- alternatives: two values offered as one answer -------------------------------------------------

# "six", "twenty-one", "one hundred and five", "seven point two": English number words name values too
_NUMBER_WORDS_RE = NUMBER_PHRASE_RE
_WORD = NUMBER_WORD
# a word or sign that offers another value in place of the one before it
_ALTERNATIVE_RE = re.compile(
    r"\b(?:or|else|either|maybe|perhaps|possibly|alternatively|otherwise|not)\b"
    r"|\\(?:lor|vee)(?![A-Za-z])|∨|\|\|",
    re.IGNORECASE,
)
# a run of arithmetic: numbers, operators, parentheses, equals signs (one character class: linear time)
_OPERAND_RUN_RE = re.compile(r"(?:[-+*/×÷()$0-9.,=^·\s]|\\times|\\cdot|\\div)+")


def _words_values(words: str) -> set[Fraction]:
    """The values English number words name (``six``, ``twenty-one``, ``one hundred and five``; ``one
    two`` names two), read by the one reader of :mod:`drift_envs.number_words`."""
    return {Fraction(n) for n in words_to_numbers(words)}


def _side_values(side: str) -> set[Fraction]:
    """The value of one side of an equality: plain arithmetic evaluated, else every number in it."""
    expr = side.replace("×", "*").replace("÷", "/").replace("·", "*").replace("$", "")
    expr = expr.replace("\\times", "*").replace("\\cdot", "*").replace("\\div", "/").replace(",", "")
    expr = expr.strip().strip("^")
    if not expr or len(expr) > 200 or "**" in expr:
        return {v for v in (_value(n) for n in _PLAIN_NUMBER_RE.findall(expr[:200])) if v is not None}
    for candidate in (expr, expr.replace("(", "").replace(")", "")):
        value = _evaluate(candidate)
        if value is not None:
            return {value}
    return {v for v in (_value(n) for n in _PLAIN_NUMBER_RE.findall(expr)) if v is not None}


def _run_values(run: str, last: bool) -> set[Fraction]:
    """What a run of arithmetic offers: its last side (before an alternative) or first side (after one)."""
    sides = [side for side in run.split("=") if any(ch.isdigit() for ch in side)]
    if not sides:
        return set()
    return _side_values(sides[-1] if last else sides[0])


#: how far from an alternative the value it offers is looked for
_VALUE_WINDOW = 200


def _nearest_value(segment: str, last: bool) -> set[Fraction]:
    """The values of the value nearest the end (``last``) or the start of ``segment``: a run of
    arithmetic or English number words."""
    # the value next to an alternative is near it: a bounded window keeps each look constant-time
    segment = segment[-_VALUE_WINDOW:] if last else segment[:_VALUE_WINDOW]
    found: list[tuple[int, set[Fraction]]] = []
    for m in _OPERAND_RUN_RE.finditer(segment):
        if any(ch.isdigit() for ch in m.group(0)):
            found.append((m.end() if last else m.start(), _run_values(m.group(0), last)))
            if not last:
                break
    for m in _NUMBER_WORDS_RE.finditer(segment):
        values = _words_values(m.group(0))
        if values:
            found.append((m.end() if last else m.start(), values))
            if not last:
                break
    if not found:
        return set()
    return (max if last else min)(found, key=lambda f: f[0])[1]


# "not" takes back only the value right after it ("7, not 6"); "not a multiple of 3" offers no 3
_VALUE_NEXT_RE = re.compile(
    rf"[\s$({{]*(?:\\\(|\\boxed\s*\{{|\\text\s*\{{)?[\s$({{]*(?:[-+]?\.?\d|(?:{_WORD})\b)", re.IGNORECASE
)


def _offered(mark: re.Match[str], following: str) -> set[Fraction]:
    """The value an alternative ``mark`` offers in the ``following`` text (nothing, after a "not" not
    followed at once by a value)."""
    if mark.group(0).lower() == "not" and not _VALUE_NEXT_RE.match(following):
        return set()
    return _nearest_value(following, last=False)


def _alternative_values(sentence: str) -> str | None:
    """Why ``sentence`` offers two values as alternatives (``6 or 7``, ``x = 6 \\lor x = 7``, ``six or 7``,
    ``6 + 0 or 7``), or None: the values nearest each side of an alternative word or sign differ,
    whether or not they are operands (each side's arithmetic is evaluated)."""
    sentence = sentence[:MAX_READ_CHARS]
    marks = list(_ALTERNATIVE_RE.finditer(sentence))
    if len(marks) > MAX_SENTENCE_NUMBERS:
        return f"its final sentence offers {len(marks)} alternatives"
    bounds = [0, *(m.start() for m in marks), len(sentence)]  # bounds[i + 1]: where mark i starts
    for i, mark in enumerate(marks):
        # the value on each side, across a run of alternatives with nothing between them ("or maybe 6")
        after: set[Fraction] = set()
        for j in range(i + 1, min(i + 4, len(marks) + 1)):  # at most 3 marks on: linear in the sentence
            after = _offered(mark, sentence[mark.end() : bounds[j + 1]])
            if after:
                break
        if not after:
            continue
        before: set[Fraction] = set()
        for j in range(i - 1, max(i - 4, -2), -1):
            before = _nearest_value(sentence[marks[j].end() if j >= 0 else 0 : mark.start()], last=True)
            if before:
                break
        if mark.group(0).lower() == "not" and not before:
            continue  # "not 7" alone is a negation, judged elsewhere
        if len(before | after) > 1:
            shown = ", ".join(str(v) for v in sorted(before | after))
            return f"it offers alternative values ({shown}) around {mark.group(0)!r}"
    return None


_ASSIGNMENT_RE = re.compile(r"(?<![A-Za-z\\])([A-Za-z])\s*=(?!=)([^=,;:]*)")


def _reassigned(sentence: str) -> str | None:
    """Why ``sentence`` assigns one variable two different values (``x=6, x=7``), or None."""
    values: dict[str, set[Fraction]] = {}
    for m in _ASSIGNMENT_RE.finditer(sentence[:MAX_READ_CHARS]):
        run = _OPERAND_RUN_RE.match(m.group(2))
        if run is None or not any(ch.isdigit() for ch in run.group(0)):
            continue
        side = _side_values(run.group(0))
        if len(side) == 1:
            values.setdefault(m.group(1), set()).update(side)
    for name, seen in values.items():
        if len(seen) > 1:
            return f"it gives {name} several values ({', '.join(str(v) for v in sorted(seen))})"
    return None


# ---- one answer: a single value, or an assignment chain ---------------------------------------------

# What a value is made of, outside braces: digits, letters, arithmetic, brackets, commas (a tuple or a
# set is one value), ``|x|``, a prime, a percent, a math delimiter; and the LaTeX commands that build a value. Anything
# else between two values (a relation such as ``\ne`` or ``\approx``, ``\therefore``, ``\pm``, ``\in``,
# ``\ldots``, ``:=``, ``=>``, ``&``, a wide space or a line break) joins two statements, not one value.
_VALUE_CHAR_RE = re.compile(r"[A-Za-z0-9\s.,+\-*/^_()\[\]|'%!$]")
_VALUE_COMMANDS = frozenset(
    "frac dfrac tfrac cfrac sqrt cdot times div pi infty circ degree left right big Big bigg Bigg text "
    "textbf textit textrm textnormal mathrm mathbf mathit mathsf mathbb mathcal boldsymbol operatorname "
    "mbox hbox displaystyle sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln lg exp "
    "lim sum prod int binom dbinom tbinom overline bar hat vec dot ddot tilde widetilde underline prime "
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi "
    "omicron rho varrho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma "
    "Upsilon Phi Psi Omega langle rangle lfloor rfloor lceil rceil vert lvert rvert Vert lVert rVert "
    "ell hbar emptyset varnothing dagger boxed".split()
)
# one thin (or negative) space sits inside a value (``2\,\text{m}``, ``12,\!000``); so does an escaped
# brace, percent or dollar
_VALUE_SYMBOLS = frozenset(["\\,", "\\!", "\\{", "\\}", "\\%", "\\$", "\\_", "\\ "])
_LATEX_TOKEN_RE = re.compile(r"\\(?:[A-Za-z]+|.)|.", re.DOTALL)
# a run of spacing wider than one thin space separates two values (``x=6 \quad x=7``, ``x=6 \,\, x=7``)
_WIDE_SPACE_RE = re.compile(
    r"(?:\s*(?:\\[,;: !>]|\\quad|\\qquad|\\enspace|~)){2,}|\\[;:>]|\\q?quad|\\enspace"
)


def _wide_space(_: re.Match[str]) -> str:
    """One wide space in place of a run of spacing (what :data:`_WIDE_SPACE_RE` finds)."""
    return " \\quad "


# a list separator: a comma, or "and" in text, with any spacing around it (``a = 19, \quad b = 2``,
# ``(5, 8) \quad \text{and} \quad (8, 5)``): the values it separates are one list
_LIST_SEPARATOR_RE = re.compile(
    r"(?:\s|\\[,;:! ]|\\q?quad|~)*(?:(?<!\\),|\\text\s*\{\s*(?:,\s*)?and\s*\})(?:\s|\\[,;:! ]|\\q?quad|~)*"
)


def _value_outline(text: str) -> str:
    """``text`` with each braced group as ``{}``, list separators as ``,`` and wide spacing as ``\\quad``.

    ``\\`` right before a letter is a doubled escape (``\\left``, as math-verify reads it), not a
    line break.
    """
    text = re.sub(r"\\\\(?=[A-Za-z])", lambda _: "\\", text)
    text = _LIST_SEPARATOR_RE.sub(",", text)
    out, depth, i, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            if depth == 0:
                out.append(text[i : i + 2])
            i += 2
            continue
        if c == "{":
            if depth == 0:
                out.append("{}")
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(c)
        i += 1
    return _WIDE_SPACE_RE.sub(_wide_space, "".join(out))


def _joiners(outline: str) -> list[str]:
    """The tokens of an outline (:func:`_value_outline`) that are no part of a value: what joins two."""
    found = ["=="] if "==" in outline else []  # an empty side is no chain of equal values
    for m in _LATEX_TOKEN_RE.finditer(outline):
        token = m.group(0)
        if token in "={}" or _VALUE_CHAR_RE.fullmatch(token) or token in _VALUE_SYMBOLS:
            continue
        if token.startswith("\\") and token[1:] in _VALUE_COMMANDS:
            continue
        found.append(token)
    return found


#: two plain numbers either side of ``\approx`` are one answer when this close (relative)
APPROX_TOLERANCE = 0.05
_APPROX_RE = re.compile(r"\\approx(?![A-Za-z])|≈")


def _false_approximation(outline: str) -> str | None:
    """Why a chain with ``\approx`` states a false approximation between two numbers (``7 \approx 6``)."""
    sides = _APPROX_RE.split(outline)
    for left, right in zip(sides, sides[1:], strict=False):
        a = as_number(normalize_answer(left.split("=")[-1]))
        b = as_number(normalize_answer(right.split("=")[0]))
        if a is not None and b is not None and abs(a - b) > APPROX_TOLERANCE * max(abs(a), abs(b)):
            return f"it states {a} \\approx {b}, which is false"
    return None


def not_one_value(pred: str, gold: str) -> str | None:
    """Why ``pred`` is not one answer for a ``gold`` that is one value, or None.

    An answer is a single value (a tuple, a set or a list of values is one), or a plain chain of
    equalities or approximations (``x = 7``, ``18 - 11 = 7``, ``x \\approx 7``; whether the sides of an
    equality agree is the verifier's to judge, those of an approximation are judged here:
    ``7 \\approx 6`` is false). Anything else that stands between two values outside braces (a
    relation, an operator that is no arithmetic, a wide space or a line break: ``x = 6 \\ne x = 7``,
    ``x=6 \\quad x=7``, ``6 \\pm 7``, ``x = 6 := x = 7``) makes it two statements, which math-verify
    would read as its last value. A gold that is itself such a statement (``x \\in [0, 1]``,
    ``1 \\pm \\sqrt{2}``, ``x < 1``) leaves the reading to math-verify. A numeral in a base that
    cannot hold its digits (``7_6``) is no number (math-verify drops the base and reads 7).
    """
    normal = normalize_answer(pred)
    base = _NUMERAL_BASE_RE.match(normal)
    if base is not None:
        digits, radix = base.group(1), int(base.group(2))
        if 2 <= radix <= 36 and any(int(d, 36) >= radix for d in digits):
            return f"{digits} is no numeral in base {radix}"
    gold_outline = _value_outline(gold)
    if _joiners(gold_outline) or "=" in gold_outline or _APPROX_RE.search(gold_outline):
        return None  # a relation or a statement: math-verify's reading of relations decides
    # "x \\in [-2, 7]" gives a set as "x = 7" gives a value: an assignment to one variable
    outline = _MEMBERSHIP_RE.sub("", _value_outline(pred), count=1)
    false = _false_approximation(outline)
    if false is not None:
        return false
    outline = _APPROX_RE.sub("=", outline)
    # a joiner with a value on one side only ("\approx 7", "\pm 3" read as a sign) joins nothing
    for m in _LATEX_TOKEN_RE.finditer(outline):
        token = m.group(0)
        if token not in _joiners(token) and not (token == "=" and outline[m.end() : m.end() + 1] == "="):
            continue
        before, after = outline[: m.start()], outline[m.end() :]
        if re.search(r"[A-Za-z0-9]", before) and re.search(r"[A-Za-z0-9]", after):
            return f"it joins two values with {token!r}, not one answer"
    return None


_MEMBERSHIP_RE = re.compile(r"^\s*[A-Za-z](?:_(?:\{\}|\w))?\s*\\in(?![A-Za-z])")
_NUMERAL_BASE_RE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")
