"""What a reply looks like to a reader: one normalisation, applied once per reply before every check.

Constraint checks read code points, so characters that look alike but differ defeat them: a
zero-width space or a Greek omicron inside a forbidden word (``mο\u200bon``), U+201A ``‚`` for a comma,
small capitals that pass a lowercase check while reading as capitals, full-width or mathematical
letters. :func:`normalize_reply` maps a reply to what a reader sees, in this order:

1. display order: a right-to-left override (U+202E ... U+202C, or to the end of the line) shows its
   characters reversed, so ``\u202enoom\u202c`` is read ``moon``, as displayed (an override makes every
   character inside right-to-left; nested spans are reversed as units). Embeddings and isolates
   (U+202A/B, U+2066-8) keep the letters of each word in order, so they are only removed;
2. Unicode NFKC: compatibility forms become their plain letters (full-width ``ｍｏｏｎ``, mathematical
   ``𝐦𝐨𝐨𝐧``, circled ``ⓜ``, ligatures ``ﬁ``, superscript letters, the small comma ``﹐``); number
   symbols (``²``, ``①``, ``½``) are kept as they are (the no-digits check reads their numeric value);
3. invisible characters (category ``Cf``: zero-width space and joiners, soft hyphen, bidi controls;
   the combining grapheme joiner, variation selectors, Khmer inherent vowels) are removed, except
   between two letters or digits, where one U+2060 WORD JOINER stands for them: a word counter
   reads it as a word break (``the\u200bmoon`` is two words for a word limit) and
   :func:`~drift_envs.user.constraints.text.contains_word` reads the text both with it removed and as
   a space (``mo\u200bon`` is ``moon``, ``the\u200bmoon`` holds ``moon``). Hangul fillers (U+3164,
   U+115F, U+1160, U+FFA0) and the blank braille pattern render as blanks: a space where no letter
   or digit comes before them, otherwise read like an invisible character (``m\u115foon`` holds
   ``moon``, ``the\u3164moon`` is two words);
4. :func:`confusables` maps each character: letters of Greek, Cyrillic, Armenian, Coptic, Cherokee
   and Lisu drawn like Latin ones become those Latin letters (``ο``→``o``, ``օ``→``o``, ``ꓳ``→``O``), precomposed
   ones keep their accent (``ӧ``→``ö``); Latin small capitals and Cherokee small letters (drawn as
   small capitals) become the capital they look like (they read as capitals, so a lowercase check
   fails on them); a Latin letter in a frame (negative squared ``🅼``, regional indicator ``🇲``: any
   name ending in LATIN CAPITAL/SMALL LETTER X) and the sideways ``ᴑ`` become the letter;
   comma-like marks become ``,`` (every character but a number whose name says COMMA, in any
   script, modifier letters and combining marks included, U+201A ``‚``, U+201E ``„``, the cedilla ``¸``, the Greek lower numeral sign ``͵``, the low
   accents ``ˏ ˎ``, the Arabic decimal and thousands separators); the modifier letters that are
   spacing marks, not letter shapes (``ʼ``, ``ˈ``, ``ː``, ``ˆ``: every "MODIFIER LETTER" whose
   name says neither SMALL nor CAPITAL), and the saltillo ``ꞌ`` become ``'``; other hyphens become ``-``;
5. a combining mark (``Mn``/``Me``) is read with the letter under it: on a letter that reads as Latin
   (after step 4) it is dropped unless it composes with it (``m\u0336oon`` and ``м\u0336`` read ``m``;
   ``e`` + acute is ``é``); a mark with no letter under it (at the start, after a space or a
   punctuation mark) is dropped, or read as a comma when it is one (combining comma below, cedilla).

Comparisons of words (forbidden, required, counted: :func:`~drift_envs.user.constraints.text.contains_word`)
go one step further, in the spirit of Unicode TR39's confusable skeletons: both sides lose their
accents (NFD, marks dropped) and are case-folded, and a zero digit of any script inside a word reads
as the letter ``o`` (``m00n``, Lao ``m໐໐n``).

The table is built here from Unicode data (:mod:`unicodedata` names and decompositions) plus a
hand-written list of look-alikes (this project's own, from the glyphs; no external data): it covers
the letters of the Latin alphabet, not every confusable Unicode knows. Case is kept (``Ο``→``O``).
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["INVISIBLE_BREAK", "confusables", "display_order", "normalize_reply"]

#: what an invisible character between two letters or digits becomes (see the module docstring)
INVISIBLE_BREAK = "\u2060"

# Letters whose glyphs are those of Latin letters in common fonts (pairs of look-alike, Latin);
# case is kept by listing both cases where both exist.
_LOOKALIKES = (
    # Greek capitals and small letters
    "ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX ϜF Ϲc ϳj "
    "αa βb γy ιi κk νv οo ρp τt υu χx ϲc ϵe ϱp ϰk "
    # Cyrillic capitals and small letters
    "АA ВB ЕE ЅS ІI ЈJ КK МM НH ОO РP СC ТT УY ХX ԚQ ԜW ӀI ҮY Ԍ G "
    "аa вb еe ѕs іi јj кk мm нh оo рp сc тt уy хx ԁd ԛq ԝw һh ӏl үy ԍg "
    # Armenian
    "ՕO ՍU ԼL օo ոn սu հh զq ցg "
    # Coptic (Greek-derived capitals and small letters)
    "ⲀA ⲁa ⲂB ⲈE ⲎH ⲒI ⲔK ⲘM ⲚN ⲞO ⲟo ⲢP ⲣp ⲤC ⲥc ⲦT ⲨY ⲬX ⲭx "
    # Lisu (Fraser) letters, drawn as Latin capitals
    "ꓐB ꓑP ꓓD ꓔT ꓖG ꓗK ꓙJ ꓚC ꓜZ ꓝF ꓟM ꓠN ꓡL ꓢS ꓣR ꓦV ꓧH ꓪW ꓫX ꓬY ꓮA ꓰE ꓲI ꓳO ꓴU "
    # Cherokee capitals (their small letters, U+AB70.., are drawn as small capitals: mapped alike)
    "ᎠD ᎡR ᎢT ᎥI ᎩY ᎪA ᎫJ ᎬE ᎷM ᎻH ᏀG ᏂH ᏃZ ᏏB ᏒR ᏚS ᏙV ᏞL ᏟC ᏢP ᏦK ᏴB "
    # Latin letters that are not ASCII but read as ASCII ones
    "ıi ȷj ɡg ɑa ɩi ʋu ǀl"
)
# LA (U+13B3) reads W; listed apart because the pair list above is keyed by its first character
_EXTRA = {0x13B3: "W"}
# Blank-rendering letters and symbols: read as a space
_BLANKS = {0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800}
# Invisible characters that are not of category Cf
_INVISIBLE_NAMES = ("VARIATION SELECTOR", "GRAPHEME JOINER", "KHMER VOWEL INHERENT")
# Characters drawn as a comma whose names do not say COMMA
_COMMA_LIKE = {0x201A, 0x201E, 0x00B8, 0x0375, 0x02CF, 0x02CE, 0x02CC, 0x066B, 0x066C, 0x0326, 0x0327}
# A Latin letter in a frame or another plane (negative squared, squared, parenthesized, regional
# indicator ``🇲``): the name ends in the letter; it reads as that letter (capital unless SMALL)
_FRAMED_LETTER_RE = re.compile(
    r"^(?:[A-Z ]+ )?(?:LATIN (CAPITAL|SMALL) LETTER|REGIONAL INDICATOR SYMBOL LETTER) ([A-Z])$"
)
# Rotated letters that look the same rotated (``ᴑ`` LATIN SMALL LETTER SIDEWAYS O)
_SIDEWAYS_RE = re.compile(r"^LATIN (CAPITAL|SMALL) LETTER SIDEWAYS (O)$")
# Code points scanned for look-alikes: the BMP and the Supplementary Multilingual Plane (framed
# letters, historic scripts' commas such as MEDEFAIDRIN COMMA) but CJK ideographs and Hangul syllables
_SCAN = (range(0x80, 0x3400), range(0xA000, 0xAC00), range(0xF900, 0x20000))

# Bidi controls: openers of embeddings/overrides (closed by PDF) and isolates (closed by PDI)
_EMBED_OPENERS = {"\u202a", "\u202b", "\u202d", "\u202e"}
_ISOLATE_OPENERS = {"\u2066", "\u2067", "\u2068"}
_PDF, _PDI, _RLO = "\u202c", "\u2069", "\u202e"
_BIDI = _EMBED_OPENERS | _ISOLATE_OPENERS | {_PDF, _PDI}


@functools.lru_cache(maxsize=8192)
def _invisible(ch: str) -> bool:
    """Format characters, and the few combining marks that draw nothing (cached: replies repeat
    their characters)."""
    category = unicodedata.category(ch)
    return category == "Cf" or (
        category == "Mn" and any(n in unicodedata.name(ch, "") for n in _INVISIBLE_NAMES)
    )


def _build_confusables() -> dict[int, str]:
    table: dict[int, str] = {}
    for pair in _LOOKALIKES.split():
        table[ord(pair[0])] = pair[1:]
    table.update(_EXTRA)
    for code in (c for r in _SCAN for c in r):  # CJK ideographs and Hangul syllables map to nothing
        ch = chr(code)
        category = unicodedata.category(ch)
        name = unicodedata.name(ch, "")
        if not name:
            continue
        framed = _FRAMED_LETTER_RE.match(name) or _SIDEWAYS_RE.match(name)
        if framed and code not in table and len(unicodedata.normalize("NFKC", ch)) == 1:
            letter = framed.group(2)
            table[code] = letter.lower() if framed.group(1) == "SMALL" else letter
        elif name.startswith("CHEROKEE SMALL LETTER "):
            capital = ch.upper()
            if ord(capital) in table:
                table[code] = table[ord(capital)].upper()  # drawn as a small capital: reads as one
        elif name.startswith("LATIN LETTER SMALL CAPITAL ") and len(name) == len(
            "LATIN LETTER SMALL CAPITAL X"
        ):
            table[code] = name[-1]  # reads as the capital it is drawn as
        elif code in _COMMA_LIKE or ("COMMA" in name.split() and category[0] != "N"):
            # every character whose name says COMMA, in any script or as a mark (turned, reversed,
            # combining comma above): a reader sees a comma; a number symbol (DIGIT ONE COMMA) stays
            # the number it is
            table[code] = ","
        elif (
            category == "Lm"
            and name.startswith("MODIFIER LETTER")
            and not {"SMALL", "CAPITAL"} & set(name.split())
        ):
            # a spacing mark that Unicode files as a letter (ʼ ʻ ˈ ː ˆ): it joined words (theʼmoon)
            table[code] = "'"
        elif name == "LATIN SMALL LETTER SALTILLO" or name == "LATIN CAPITAL LETTER SALTILLO":
            table[code] = "'"
        elif category == "Pd" and "HYPHEN" in name:
            table[code] = "-"
    # precomposed look-alikes keep their accent on the Latin letter (Cyrillic ӧ reads ö)
    for code in range(0x80, 0x10000):
        if code in table or 0x3400 <= code < 0xA000 or 0xAC00 <= code < 0xE000:
            continue
        decomposed = unicodedata.normalize("NFD", chr(code))
        if len(decomposed) > 1 and ord(decomposed[0]) in table and unicodedata.category(chr(code))[0] == "L":
            table[code] = unicodedata.normalize("NFC", table[ord(decomposed[0])] + decomposed[1:])
    return table


@functools.lru_cache(maxsize=1)
def confusables() -> dict[int, str]:
    """The look-alike table (code point -> replacement), built from Unicode data on first use."""
    return _build_confusables()


def _close_span(stack: list[tuple[str, list[str]]]) -> None:
    """Close the innermost open span: an override's items are shown reversed, others in order."""
    opener, items = stack.pop()
    stack[-1][1].append("".join(reversed(items)) if opener == _RLO else "".join(items))


def display_order(text: str) -> str:
    """``text`` with each right-to-left override span in the order it is displayed (reversed), every
    bidi control removed; a line break ends every open span (see the module docstring, step 1)."""
    if not any(ch in _BIDI for ch in text):
        return text
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        # a stack of open spans: (opener, items); an item is a character or a rendered nested span
        stack: list[tuple[str, list[str]]] = [("", [])]
        close = functools.partial(_close_span, stack)
        for ch in line:
            if ch in _EMBED_OPENERS or ch in _ISOLATE_OPENERS:
                stack.append((ch, []))
            elif ch == _PDF:
                if len(stack) > 1 and stack[-1][0] in _EMBED_OPENERS:
                    close()
            elif ch == _PDI:
                if any(o in _ISOLATE_OPENERS for o, _ in stack[1:]):
                    while stack[-1][0] not in _ISOLATE_OPENERS:
                        close()
                    close()
            elif ch in "\r\n" and len(stack) > 1:
                while len(stack) > 1:
                    close()
                stack[-1][1].append(ch)
            else:
                stack[-1][1].append(ch)
        while len(stack) > 1:
            close()
        out.append("".join(stack[0][1]))
    return "".join(out)


def _latin_base(ch: str) -> bool:
    base = unicodedata.normalize("NFD", ch)[0]
    return base.isascii() and base.isalnum()


def normalize_reply(text: str) -> str:
    """``text`` as a reader sees it (display order, NFKC, invisible characters removed or read as a
    word break, look-alike letters and commas mapped, stray combining marks read with their letter;
    see the module docstring). Idempotent."""
    if text.isascii():
        return text
    text = display_order(text)
    # NFKC piece by piece around "other number" characters (category No: ², ①, ½): a superscript two
    # stays the symbol it is (NumbersAsDigits and NoDigits read such symbols by their numeric value)
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
    table = confusables()
    out: list[str] = []
    hidden = False  # an invisible character since the last visible one
    for ch in text:
        code = ord(ch)
        if code in _BLANKS and not (out and out[-1].isalnum()):
            out.append(" ")
            hidden = False
            continue
        if code in _BLANKS or _invisible(ch):
            # a blank after a letter or digit reads like an invisible character: a word break
            # between words, a joiner inside one (``m\u115foon`` holds ``moon``)
            hidden = True
            continue
        category = unicodedata.category(ch)
        if category in ("Mn", "Me"):
            base = out[-1] if out and not hidden else ""
            if base and unicodedata.category(base)[0] in "LMN" and not _latin_base(base):
                out.append(ch)  # a mark of its own script (Devanagari vowel signs, Arabic harakat)
            elif base and base.isalnum():
                composed = unicodedata.normalize("NFC", base + ch)
                if len(composed) == 1:
                    out[-1] = composed
                elif table.get(code) == ",":
                    out.append(",")  # a combining comma (above, above right) after a word reads as one
            elif code in table:
                out.append(table[code])  # a combining comma below with no letter under it
            continue
        mapped = table.get(code, ch)
        if hidden:
            if out and out[-1].isalnum() and mapped[:1].isalnum():
                out.append(INVISIBLE_BREAK)
            hidden = False
        out.append(mapped)
    return unicodedata.normalize("NFC", "".join(out))
