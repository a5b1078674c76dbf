"""What a reply looks like to a reader: one normalisation, applied once per reply before every check.

Constraint checks read code points, so characters that look alike but differ defeat them: a
zero-width space or a Greek omicron inside a forbidden word (``mο\u200bon``), U+201A ``‚`` for a comma,
small capitals that pass a lowercase check while reading as capitals, full-width or mathematical
letters. :func:`normalize_reply` maps a reply to what a reader sees, in this order:

1. Unicode NFKC: compatibility forms become their plain letters (full-width ``ｍｏｏｎ``, mathematical
   ``𝐦𝐨𝐨𝐧``, circled ``ⓜ``, ligatures ``ﬁ``, superscript letters, the small comma ``﹐``); number
   symbols (``²``, ``①``, ``½``) are kept as they are: a reader does not read ``x²`` as ``x2``;
2. format characters (Unicode category ``Cf``: zero-width space and joiners, soft hyphen, word
   joiner, byte-order mark, bidi controls) are removed: they are invisible, so ``mo\u200bon`` reads
   ``moon``;
3. combining marks (``Mn``/``Me``) left on an ASCII letter after NFKC (no precomposed form exists, as
   in ``m\u0336oon``) are removed: the letter underneath is what is read;
4. :func:`confusables`: Greek and Cyrillic letters drawn like Latin ones become those Latin letters
   (``ο``→``o``, ``е``→``e``, ``Н``→``H``), Latin small capitals become the capital they look like
   (``ᴍ``→``M``: they read as capitals, so a lowercase check fails on them), comma-like punctuation
   becomes ``,`` (U+201A ``‚``, U+201E ``„``, and every punctuation character whose Unicode name says
   COMMA: Arabic, ideographic, Armenian, ... commas), other hyphens become ``-``.

The table is built here from Unicode data (:mod:`unicodedata` names) plus a short hand-written list
of Greek and Cyrillic look-alikes; it is this project's own and deliberately small: it covers the
letters of the Latin alphabet, not every confusable Unicode knows. Case is kept (``Ο``→``O``).
"""

from __future__ import annotations

import functools
import unicodedata

__all__ = ["confusables", "normalize_reply"]

# Greek and Cyrillic letters whose glyphs are those of Latin letters in common fonts (pairs of
# look-alike, Latin); case is kept by listing both cases where both exist.
_LOOKALIKES = (
    # Greek capitals and small letters
    "ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX ϜF Ϲc ϳj "
    "αa βb γy ιi κk νv οo ρp τt υu χx ϲc ϵe ϱp ϰk "
    # Cyrillic capitals and small letters
    "ЁË АA ВB ЕE ЅS ІI ЇI ЈJ КK МM НH ОO РP СC ТT УY ХX ԚQ ԜW ӀI Һh "
    "аa вb еe ѕs іi їi јj кk мm нh оo рp сc тt уy хx ԁd ԛq ԝw һh ӏl ё\u00eb ѐ\u00e8 "
    # Latin letters that are not ASCII but read as ASCII ones
    "ıi ȷj ɡg ɑa ɩi ʋu"
)


def _build_confusables() -> dict[int, str]:
    table: dict[int, str] = {}
    for pair in _LOOKALIKES.split():
        table[ord(pair[0])] = pair[1:]
    for code in range(0x80, 0x10000):  # the Basic Multilingual Plane holds every character mapped here
        if 0x3400 <= code < 0xA000 or 0xAC00 <= code < 0xE000:  # CJK ideographs, Hangul, surrogates
            continue
        ch = chr(code)
        if unicodedata.category(ch)[0] not in "LP":
            continue
        name = unicodedata.name(ch, "")
        if name.startswith("LATIN LETTER SMALL CAPITAL ") and len(name) == len(
            "LATIN LETTER SMALL CAPITAL X"
        ):
            table[code] = name[-1]  # reads as the capital it is drawn as
        elif "COMMA" in name.split() and unicodedata.category(ch).startswith("P"):
            table[code] = ","
        elif unicodedata.category(ch) == "Pd" and "HYPHEN" in name:
            table[code] = "-"
    table[0x201A] = ","  # SINGLE LOW-9 QUOTATION MARK, drawn as a comma
    table[0x201E] = ","  # DOUBLE LOW-9 QUOTATION MARK
    return table


@functools.lru_cache(maxsize=1)
def confusables() -> dict[int, str]:
    """The look-alike table (code point -> replacement), built from Unicode data on first use."""
    return _build_confusables()


def normalize_reply(text: str) -> str:
    """``text`` as a reader sees it (NFKC, no format characters or stray combining marks, look-alike
    letters and commas mapped; see the module docstring). Idempotent."""
    if text.isascii():
        return text
    # NFKC piece by piece around "other number" characters (category No: ², ①, ½): a superscript two
    # is a symbol a reader does not read as the digit 2 (so a no-digits preference keeps accepting x²),
    # and no such character can hide a letter
    pieces: list[str] = []
    run: list[str] = []
    for ch in text:
        if unicodedata.category(ch) == "No":
            pieces.append(unicodedata.normalize("NFKC", "".join(run)))
            pieces.append(ch)
            run = []
        else:
            run.append(ch)
    pieces.append(unicodedata.normalize("NFKC", "".join(run)))
    text = "".join(pieces)
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        if category in ("Mn", "Me") and out and out[-1].isascii() and out[-1].isalpha():
            continue
        out.append(ch)
    return "".join(out).translate(confusables())
