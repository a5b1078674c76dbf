r"""Whether a reply commits to the answer it states: the one reading every env's answer check uses.

An env finds the answer in a reply (a box, an answer tag, an ``Answer:`` line, the last number) and
then asks this module, given the reply and the span ``text[start:end]`` of that answer, whether the
reply stands by it. It does not when, around that span, it

* **denies or retracts it**: a negation right before it (``not 7``, ``definitely not \boxed{7}``,
  ``never``, ``no``); a verdict right after it (``7 is wrong``, ``7 is incorrect``, ``7 isn't right``,
  ``7 (wrong)``, ``7 (no)``); a retraction after it in its own or the next sentence (``7... just
  kidding``, ``7, jk``, ``7 (sarcasm)``, ``7 /s``, ``7 lol no``); a next sentence that is nothing but
  a denial (``7? No.``, ``It is \boxed{7}. Not.``, ``7. Wrong.``); a strike-through (``~~7~~``,
  ``<s>7</s>``, ``\sout{7}``); or a cross mark beside it in its clause (``7 ❌``, ``✘ 7``, ``✗``,
  ``✕``, ``✖``, ``❎``, ``🚫``, ``⛔``; ``×`` is multiplication and is not one);
* **excludes it**: ``anything but 7``, ``everything except 7``, ``all but 7``, ``other than 7``,
  ``far from 7``, ``hardly 7``, ``scarcely``, ``barely``, ``rather than``, ``instead of``,
  ``excluding``, or a negation sign glued to it (``~rainy``, ``!3410``, ``¬7``: a sign right before the
  value, itself after a space, a colon or the start; ``is~\boxed{7}``, TeX's tie, is no sign);
* **offers another answer in prose**: after the answer, in the rest of its sentence or in the next
  one, a word that keeps an alternative open (``unless``, ``if not``, ``otherwise``, ``or``, ``vs``,
  ``versus``, ``also``, ``too``, ``equally``, ``could``, ``might``, ``maybe``, ``possibly``,
  ``plausible``, ``alternatively``, ``else``, ``instead``, ``though``, ``if I'm wrong``...) *and*,
  within :data:`NEAR` characters of it, in a sentence of at most :data:`MAX_HEDGE_CHARS` characters
  (a longer one is explanation: ``Note that since 14 is a factor of 42, all of the factors of 14 are
  also factors of 42``; a value further on is the explanation's: ``\boxed{7}. 18 - 11 = 7 could also
  be checked by adding 11 to 7``), another value, as the env reads values (its ``names_other`` callback: math reads numbers that are no
  operands, ToolUse other values of the answer's kind, ReasoningGym any word but the answer): ``\boxed{7}
  unless it is 6``, ``\boxed{7}; if not, 6``, ``\boxed{7}. 6 also works.``, ``\boxed{7} vs 6``; or,
  whatever the env reads as a value, an alternative named by its place (``C or the one after``, ``7
  or the next number``, ``g or the other one``).

Text further from the answer is not read: the working before it, and what a reply says two sentences
on (``\boxed{7}. We check: 3 + 4 = 7. Other values could not work.``). What counts as "right before"
and "right after" is the answer's own clause: a sentence end (``.``, ``!``, ``?`` before white space,
a line break) or a clause mark (``,`` ``;`` ``:``) bounds it, so ``The answer is not 5, it is 7``
commits to 7, while ``7, not really`` and ``7 is wrong`` do not.

Every read is bounded (a window of at most :data:`WINDOW` characters on each side), so a check costs
microseconds whatever the reply's length.

>>> commitment("The answer is 7.", 14, 15) is None
True
>>> commitment("The answer is anything but 7.", 27, 28)
"it excludes its answer ('anything but')"
>>> commitment("Answer: 7 (wrong)", 8, 9)
"it takes its answer back ('(wrong)')"
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "CROSS_MARKS",
    "DENIAL_WORD_RE",
    "MAX_HEDGE_CHARS",
    "NEAR",
    "WINDOW",
    "alternative_after",
    "commitment",
    "denial",
]

#: how many characters on each side of an answer are read
WINDOW = 300
#: a sentence after the answer longer than this is explanation, not a second answer offered
#: (``Note that since 14 is a factor of 42, all of the factors of 14 are also factors of 42.``)
MAX_HEDGE_CHARS = 80
#: how near a word that keeps an alternative open the other value must stand (characters either side)
NEAR = 16
#: marks that cross a value out (``×`` is not one: it is multiplication)
CROSS_MARKS = "❌✘✗✕✖❎🚫⛔☒⊘👎🗙⛌"
_CROSS_RE = re.compile(f"[{CROSS_MARKS}]")

#: words that say a value is wrong or taken back, wherever they stand in a short text (a box's
#: ``\text{}``, a tag's content beside the answer)
DENIAL_WORD_RE = re.compile(
    r"(?<![^\W_])(?:wrong|incorrect|false|untrue|invalid|kidding|joking|jk|j/k|sarcasm|sarcastic|nope)(?![^\W_])"
    f"|[{CROSS_MARKS}]",
    re.IGNORECASE,
)

# what may stand between a denial and the value it denies: spaces, math delimiters, an opening bracket,
# markdown emphasis, quotes
_GAP = r"[\s$(\[{*_\"'`“”‘’]*(?:\\\(|\\\[|<answer>)?[\s$(\[{*_\"'`“”‘’]*"
# right before the answer: a word or phrase that denies or excludes what follows it
_EXCLUDING = (
    r"(?:anything|everything|anyone|all|something|any\s+value|any\s+number|whatever)\s+"
    r"(?:but|except(?:\s+for)?|other\s+than|save|besides)"
    r"|other\s+than|except(?:\s+for)?|excluding|far\s+from|hardly|scarcely|barely|rather\s+than|instead\s+of"
    r"|besides|apart\s+from|aside\s+from|leaving\s+out|minus\s+the"
    r"|nothing\s+like|anything\s+other\s+than"
)
_NEGATING = (
    r"not|never|no|neither|nor|isn't|isnt|is\s+not|aren't|wasn't|was\s+not|cannot\s+be|can't\s+be"
    r"|couldn't\s+be|won't\s+be|not\s+equal\s+to|unequal\s+to"
)
_DENY_BEFORE_RE = re.compile(
    rf"(?<![^\W_])(?P<word>{_EXCLUDING}|{_NEGATING})(?:\s+(?:exactly|quite|really|even|just|simply|the\s+answer|equal\s+to))?"
    rf"\s*[:,]?{_GAP}$",
    re.IGNORECASE,
)
# a negation sign glued to the value, the sign itself after a space, a colon, a bracket or the start
_SIGN_BEFORE_RE = re.compile(r"(?:^|(?<=[\s:(\[{>]))[~!¬]$")
_STRIKE_BEFORE_RE = re.compile(
    r"(?:~~|<s>|<del>|<strike>|\\(?:sout|st|xout|cancel|xcancel|bcancel)\s*\{)\s*$", re.I
)
_STRIKE_AFTER_RE = re.compile(r"^\s*(?:~~|</s>|</del>|</strike>)", re.IGNORECASE)

# right after the answer (past closing brackets, delimiters and an answer tag's end): a verdict on it
_CLOSE = r"(?:[\s$)\]}*_\"'`”’]|\\\)|\\\]|</answer>)*"
_VERDICT = (
    r"wrong|incorrect|false|untrue|invalid|mistaken|a\s+mistake|an\s+error|a\s+lie|a\s+joke|nonsense|bogus"
    r"|a\s+typo|a\s+guess|made\s+up|retracted|withdrawn|void"
    r"|not\s+(?:right|correct|true|valid|it|the\s+(?:right\s+|correct\s+)?answer)"
)
_VERDICT_AFTER_RE = re.compile(
    rf"^{_CLOSE}(?:,\s*)?(?:is|was|are|'s|would\s+be|seems|looks|sounds|must\s+be|is\s+probably)\s+"
    rf"(?:(?:definitely|certainly|surely|clearly|obviously|totally|completely|actually|just|so|very|quite)\s+)?"
    rf"(?P<word>{_VERDICT})(?![^\W_])"
    rf"|^{_CLOSE}(?P<word2>(?:isn't|isnt|wasn't|ain't)\s+(?:the\s+)?(?:right|correct|true|valid|it|answer))",
    re.IGNORECASE,
)
_ASIDE_AFTER_RE = re.compile(r"^" + _CLOSE + r"\s*aside(?![^\W_])(?!\s+from)", re.IGNORECASE)
_BRACKETED_DENIAL_RE = re.compile(
    r"^" + _CLOSE + r"[,:;\-–—]?\s*(?P<word>[(\[]\s*(?:wrong|incorrect|false|not|no|nope|x|not\s+really"
    r"|wrong\s+answer|just\s+kidding|kidding|joking|jk|j/k|sarcasm|/s|lol|lol\s+no|retracted|withdrawn"
    r"|as\s+if|typo|scratch\s+that|strike\s+that|disregard(?:\s+that)?|ignore\s+(?:that|this)|void)\s*[.!]*\s*[)\]])",
    re.IGNORECASE,
)
# a retraction after the answer, in its own sentence or the next
_RETRACTION_RE = re.compile(
    r"(?<![^\W_])(?:just\s+kidding|kidding|just\s+joking|joking|jk|j/k|sarcasm|sarcastically|psych|lol\s+no"
    r"|not\s+really|nah|april\s+fools?|disregard(?:\s+(?:that|this|it))?|retracted|retract(?:ed|ing)?"
    r"|scratch\s+that|strike\s+that|never\s*mind|ignore\s+(?:that|this|it)|yeah\s+right|as\s+if|typo"
    r"|take\s+(?:that|it)\s+back|not\s+serious(?:ly)?)(?![^\W_])|(?:^|\s)/s(?![^\W_])",
    re.IGNORECASE,
)
# a next "sentence" that is nothing but a denial: "7? No.", "\boxed{7}. Not.", "7... nope"
_BARE_DENIAL_RE = re.compile(
    r"^" + _CLOSE + r"(?:[.?!…,;]+|\n)\s*(?:no|not|nope|nah|never|wrong|false|incorrect|untrue|not\s+really"
    r"|not\s+(?:quite|that|it)|(?:that|this|it)(?:'s|\s+is|\s+was)\s+(?:wrong|incorrect|false|not\s+it|a\s+lie))"
    r"\s*[.!…]*\s*(?:$|\n)",
    re.IGNORECASE,
)
# where the answer's clause ends (a sentence end or a clause mark) and where a sentence ends
_CLAUSE_END_RE = re.compile(r"[,;:]|[.!?…](?=\s|$)|\n")
_SENTENCE_END_RE = re.compile(r"[.!?…](?=\s|$)|\n")
# "vs." and "e.g." end no sentence
_ABBREVIATION_RE = re.compile(r"\b(?:vs|e\.g|i\.e|cf|etc|approx)\.", re.IGNORECASE)

# words that keep another answer open after this one
_ALTERNATIVE_WORDS_RE = re.compile(
    r"(?<![^\W_])(?:unless|if\s+not|otherwise|alternatively|alternative|or|vs|versus|also|too|equally"
    r"|could|might|maybe|perhaps|possibly|possible|plausible|plausibly|either|else|instead|though|although"
    r"|or\s+else|backup|second\s+guess|if\s+(?:i'?m|i\s+am|that'?s|this\s+is|it'?s)\s+(?:wrong|not)"
    r"|except\s+(?:if|when|that)|works\s+as\s+well|as\s+well|fallback|fall\s+back|failing\s+that"
    r"|close\s+second|runner[\s-]up|(?:just\s+)?as\s+likely|likely|probably|second\s+choice)(?![^\W_])"
    r"|(?:^|\s)[/|](?=\s)",
    re.IGNORECASE,
)
# an alternative named by its place, not its value ("or the one after", "or the next letter")
_INDIRECT_RE = re.compile(
    r"(?<![^\W_])(?:or|maybe|possibly|perhaps|else|otherwise|vs|versus|unless\s+it'?s)\s+(?:maybe\s+|possibly\s+)?"
    r"(?:the\s+)?(?:(?:next|previous|preceding|following|other|adjacent|neighbouring|neighboring|last|first)"
    r"(?![^\W_])|one\s+(?:after|before|above|below|more|less|higher|lower|up|down)(?![^\W_])"
    r"|another(?![^\W_])|(?:one|letter|option|number|value|choice)\s+(?:after|before|above|below))",
    re.IGNORECASE,
)


# a value joined right after the answer ("\boxed{7}, 6", "\boxed{7} and 6", "\boxed{7} [6]", "\boxed{7}/6")
_JOINED_AFTER_RE = re.compile(
    r"^" + _CLOSE + r"(?:\s*(?:[,;/&+]|\band\b|\bplus\b)\s*|\s*[\[(]\s*)", re.IGNORECASE
)


def _clause_before(text: str, start: int) -> str:
    """The text of the answer's clause before it (from the last clause mark before it, or :data:`WINDOW`)."""
    lo = max(0, start - WINDOW)
    cut = lo
    for m in _SENTENCE_END_RE.finditer(text, lo, start):
        cut = m.end()
    return text[cut:start]


def _clause_after(text: str, end: int) -> str:
    """The text of the answer's clause after it (to the next clause mark or sentence end)."""
    window = text[end : end + WINDOW]
    m = _CLAUSE_END_RE.search(window)
    return window[: m.start()] if m else window


def _sentences_after(text: str, end: int, count: int = 2) -> str:
    """The rest of the answer's sentence and the ``count - 1`` non-empty sentences after it."""
    window = _ABBREVIATION_RE.sub(lambda m: m.group(0)[:-1] + " ", text[end : end + WINDOW])
    stop, seen, at = len(window), 0, 0
    for m in _SENTENCE_END_RE.finditer(window):
        # the answer's own sentence counts even when empty; a later one only when it holds words
        if at == 0 or window[at : m.start()].strip(" \t$)}]*_\"'`"):
            seen += 1
        at = m.end()
        if seen >= count:
            stop = m.start()
            break
    return window[:stop]


def denial(text: str, start: int, end: int) -> str | None:
    """Why ``text`` denies, retracts or excludes its answer ``text[start:end]``, or None (see the
    module docstring for the forms read)."""
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"answer span ({start}, {end}) is not within the reply (length {len(text)})")
    before = _clause_before(text, start)
    if _STRIKE_BEFORE_RE.search(before) or _STRIKE_AFTER_RE.match(text[end : end + 20]):
        return "it strikes its answer through"
    m = _DENY_BEFORE_RE.search(before[-80:])
    if m is not None:
        word = " ".join(m.group("word").lower().split())
        kind = "negates" if re.fullmatch(_NEGATING, word, re.IGNORECASE) else "excludes"
        return f"it {kind} its answer ({word!r})"
    glued = text[max(0, start - 2) : start]  # read raw: a "!" before the value ends no sentence
    if _SIGN_BEFORE_RE.search(glued) and glued != "~~":
        return f"it negates its answer with a sign ({glued[-1]!r})"
    cross_before = _CROSS_RE.search(_clause_before_marks(before))
    clause_after = _clause_after(text, end)
    cross_after = _CROSS_RE.search(clause_after[:60])
    if cross_before or cross_after:
        return f"it crosses its answer out ({(cross_before or cross_after).group(0)!r})"
    after = text[end : end + WINDOW]
    if _ASIDE_AFTER_RE.match(after):
        return "it excludes its answer ('aside')"
    for pattern in (_VERDICT_AFTER_RE, _BRACKETED_DENIAL_RE):
        m = pattern.match(after)
        if m is not None:
            word = m.groupdict().get("word") or m.groupdict().get("word2") or m.group(0)
            return f"it takes its answer back ({' '.join(word.split())!r})"
    if _BARE_DENIAL_RE.match(after):
        return f"it denies its answer in the next sentence ({after.strip()[:30]!r})"
    m = _RETRACTION_RE.search(_sentences_after(text, end))
    if m is not None:
        return f"it takes its answer back ({m.group(0).strip()!r})"
    return None


def _clause_before_marks(before: str) -> str:
    """The last 40 characters of the answer's clause before it, from its last clause mark."""
    tail = before[-40:]
    cut = max(tail.rfind(","), tail.rfind(";"))
    return tail[cut + 1 :]


def alternative_after(text: str, end: int, names_other: Callable[[str], bool] | None = None) -> str | None:
    """Why the text after the answer (ending at ``end``) offers another answer, or None.

    In the rest of the answer's sentence and the next sentence: an alternative named by its place
    (``or the one after``), or a word that keeps an alternative open (``unless``, ``if not``, ``also``,
    ``vs``...) in a sentence of at most :data:`MAX_HEDGE_CHARS` characters, with another value within
    :data:`NEAR` characters of it as ``names_other`` (the env's reading of values) finds one.
    Without ``names_other`` only the first form is read.
    """
    tail = _sentences_after(text, end)
    m = _INDIRECT_RE.search(tail)
    if m is not None:
        return f"it offers another answer by its place ({' '.join(m.group(0).split())!r})"
    if names_other is None:
        return None
    joined = _JOINED_AFTER_RE.match(text[end : end + WINDOW])
    if joined is not None:
        # the value stands right after the joiner: its first token ("\boxed{4}, since 10000 ..." joins none)
        first = re.match(r"[\s$]*[^\s$]+", _clause_after(text, end + joined.end())[:NEAR])
        stretch = first.group(0) if first else ""
        # read past the joiner: "/6" joins 6, it does not divide by it (a box's value ends at its brace)
        if names_other(stretch) and names_other(_sentences_after(text, end + joined.end())):
            return f"it joins another value to its answer ({text[end : end + joined.end() + len(stretch)].strip()!r})"
    # each sentence of the tail that holds such a word is asked on its own: the value must stand there
    at = 0
    for cut in [*_SENTENCE_END_RE.finditer(tail), None]:
        sentence = tail[at : cut.start() if cut else len(tail)]
        at = cut.end() if cut else len(tail)
        if len(sentence.strip()) > MAX_HEDGE_CHARS:
            continue
        for m in list(_ALTERNATIVE_WORDS_RE.finditer(sentence))[:8]:
            # the value offered stands next to the word ("6 also works", "if not, 6", "vs 6"); a number
            # further on is the explanation's ("18 - 11 = 7 could also be checked by adding 11 to 7")
            lo, hi = max(0, m.start() - NEAR), min(len(sentence), m.end() + NEAR)
            while lo > 0 and not sentence[lo - 1].isspace():
                lo -= 1
            while hi < len(sentence) and not sentence[hi].isspace():
                hi += 1
            # ... and it is the sentence's one other value: a sentence naming several explains them
            if names_other(sentence[lo:hi]) and names_other(sentence):
                shown = f"{' '.join(m.group(0).split())!r}: {sentence.strip()[:50]!r}"
                return f"it offers another value after its answer ({shown})"
    return None


def commitment(
    text: str, start: int, end: int, names_other: Callable[[str], bool] | None = None
) -> str | None:
    """Why ``text`` does not commit to its answer ``text[start:end]`` (a denial, an exclusion, or another
    answer offered after it, :func:`denial` and :func:`alternative_after`), or None when it does.

    ``names_other(stretch)`` says whether a stretch of the reply names a value other than the answer,
    as the env reads values; without it, only alternatives named by their place are read.
    """
    return denial(text, start, end) or alternative_after(text, end, names_other)
