"""English number words read as numbers: the one reader every env's answer check uses.

A reply may spell a value instead of writing it (``forty-seven``, ``one hundred and five``, ``seven point
two``, ``minus three``); a check that reads digits only would miss a second value offered in words, or
an answer given in words. Math (hedged alternatives), MultipleChoice (an option named in words) and
ToolUse (a value spelled out) read them here, so the three agree on what a phrase names.

>>> words_to_numbers("one thousand three hundred and seventy")
['1370']
>>> words_to_numbers("seven point two or seven point three")  # "or" is not a number word: two phrases
['7.2', '7.3']
>>> words_to_numbers("one two")  # a unit cannot continue a unit: two numbers
['1', '2']
>>> [m.group(0) for m in NUMBER_PHRASE_RE.finditer("Twenty-one, not thirty")]
['Twenty-one', 'thirty']
>>> spelled_integer("minus forty-seven"), spelled_integer("forty-seven apples")
(-47, None)
"""

from __future__ import annotations

import re

UNITS: dict[str, int] = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
TENS: dict[str, int] = {
    w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)
}
SCALES: dict[str, int] = {"thousand": 1_000, "million": 1_000_000}
#: one number word (longest first, so ``seventeen`` is not read as ``seven``)
NUMBER_WORD = "|".join(sorted([*UNITS, *TENS, "hundred", *SCALES], key=len, reverse=True))
#: a run of number words (joined by spaces, hyphens or ``and``; ``point`` for decimals), any case
NUMBER_PHRASE_RE = re.compile(
    rf"(?<![^\W_])(?:{NUMBER_WORD})(?:(?:\s+and\s+|[\s\-]+)(?:{NUMBER_WORD}|point))*(?![^\W_])",
    re.IGNORECASE,
)
_SIGNS = ("minus", "negative")


def words_to_numbers(phrase: str) -> list[str]:
    """The numbers an English number phrase names, as digit strings, in order.

    ``one thousand three hundred seventy`` is ``["1370"]``, ``seven point two`` ``["7.2"]``; a word that
    cannot continue the number before it (``one two``, ``twenty thirty``, ``five hundred six hundred``)
    starts another one. Words that are not number words are skipped.
    """
    words = [w for w in re.split(r"[\s\-]+", phrase.lower()) if w and w != "and"]
    out: list[str] = []
    total, current, last, decimals, seen = 0, 0, "", None, False

    def flush() -> None:
        nonlocal total, current, last, decimals, seen
        if seen:
            out.append(str(total + current) + ("." + decimals if decimals else ""))
        total, current, last, decimals, seen = 0, 0, "", None, False

    for w in words:
        if decimals is not None:
            if w in UNITS and UNITS[w] < 10:
                decimals += str(UNITS[w])
                continue
            flush()
        if w == "point":
            if seen:
                decimals = ""
            continue
        if w in UNITS:
            value = UNITS[w]
            if last in ("unit", "teen") or (last == "tens" and (value >= 10 or not value)):
                flush()
            current += value
            last, seen = ("teen" if value >= 10 else "unit"), True
        elif w in TENS:
            if last in ("unit", "teen", "tens"):
                flush()
            current += TENS[w]
            last, seen = "tens", True
        elif w == "hundred":
            if last == "hundred" or current >= 100:
                flush()
            current = (current or 1) * 100
            last, seen = "hundred", True
        elif w in SCALES:
            scale = SCALES[w]
            if last == "scale" and current == 0 and total and total < scale:
                total *= scale  # "a thousand million"-style stacking: read as one number
            else:
                total += (current or 1) * scale
            current, last, seen = 0, "scale", True
    flush()
    return out


def spelled_integer(text: str) -> int | None:
    """``text`` as an integer when the whole of it is one whole number in words, with an optional sign
    word (``forty-seven``, ``minus three``, ``one hundred and five``), else None."""
    words = [w for w in re.split(r"[\s\-]+", text.lower().strip()) if w]
    if not words or len(words) > 12:
        return None
    sign = -1 if words[0] in _SIGNS else 1
    body = words[1:] if sign < 0 else words
    if not all(w in UNITS or w in TENS or w in SCALES or w in ("hundred", "and") for w in body):
        return None
    if not any(w in UNITS or w in TENS for w in body):
        return None  # "hundred" or "thousand" alone is a word, not an answer
    numbers = words_to_numbers(" ".join(body))
    return sign * int(numbers[0]) if len(numbers) == 1 else None
