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

The reply is read as a reader sees it: normalised once by
:func:`drift_envs.user.constraints.normalize.normalize_reply` (NFKC, so full-width ``Ｂ`` is ``B``;
format characters such as zero-width spaces and bidi overrides removed; small capitals and Greek or
Cyrillic look-alikes mapped to the Latin letters they are drawn as), then without accents (``Ḃ`` is
``B``), and the options with it.

**After the answer, another option may appear only to be rejected.** From the first committed span
on (the text after a box or tag, the rest of the reply after ``Answer:``, the rest of an answer
phrase inside a tag) every mention of another option (its letter, a list of letters ``B or D``, or
its place: ``the second option``, ``option 2``) is an *offered alternative*, which makes the reply
name several options, unless it is rejected. A mention is rejected when the words of its own stretch
of the sentence (from the last comma or conjunction before it to the next one that introduces
another mention) say "wrong" an odd number of times (``not``, ``n't``, ``never``, ``neither``/``nor``,
``wrong``, ``incorrect``, ``too small``, ``different``, ``ruled out``, ``hardly``...; ``rather than``,
``instead of``, ``unlike``, ``over`` right before it), nothing there hedges (``or``, ``else``,
``maybe``, ``possibly``, ``might``, ``could``, ``also``, ``if``, ``unless``, a final ``too``...) and
the sentence is not a question. So ``\boxed{C}, not A``, ``C because A is too small``, ``neither A
nor B fits``, ``I don't think B is right`` keep C, while ``(or B)``, ``possibly B``, ``C; if not,
B``, ``not B?``, ``not not B``, ``B isn't wrong``, ``I don't think B is wrong``, ``B is wrong but
possible`` and a second letter alone (``C`` then ``B`` on its own line) name both. A mention that
neither rejects nor offers (``\boxed{C} since A gives 37``) counts as offered too: after committing,
a reply says only why the others are wrong; it does not keep them in play. Letters inside the chosen
option's own text (``D. Both A and B``) are not mentions. An option's *text* (or a lower-case letter)
is an offered alternative where it stands as an answer in its own clause, hedge words aside
(``(or maybe Berlin)``, ``Berlin could be too``, ``else b``), not where it is part of a sentence. A
letter joined to the answer by ``or``/``/`` just before it (``B or \boxed{A}``) is offered as well.
Text before the answer is reasoning and is not read: ``B is tempting, but the answer is \boxed{A}``
chose A.

**The reply must stand by the option it names.** Around the chosen letter,
:func:`drift_envs.commitment.commitment` (the reading every env shares) looks for a denial, an
exclusion or an alternative named by its place: ``Answer: C (wrong)``, ``C is wrong``, ``C ❌``,
``~~C~~``, ``anything but C``, ``C... just kidding``, ``C or the one after``, ``C or the next
letter``. Such a reply chose nothing (:attr:`ChoiceReading.uncommitted` says why) and is wrong.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

from drift_envs.commitment import commitment
from drift_envs.math.answers import canonical_sites, find_boxed
from drift_envs.number_words import spelled_integer
from drift_envs.user.constraints.normalize import normalize_reply

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
# words an article never precedes: after them a capital "A" is the option
_NOT_AFTER_ARTICLE = {
    "or", "else", "otherwise", "if", "unless", "maybe", "perhaps", "possibly", "probably", "too",
    "also", "instead", "though", "although", "but", "then", "either", "nor", "not", "rather", "plus",
    "might", "may", "can", "will", "works", "wins", "as", "vs", "versus", "than", "over",
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
    #: why the reply does not stand by the one option it names (``C is wrong``, ``C ❌``, ``C or the
    #: one after``), read by :func:`drift_envs.commitment.commitment`; it then chose nothing
    uncommitted: str | None = None

    @property
    def format_ok(self) -> bool:
        return bool(self.named)

    @property
    def several(self) -> bool:
        return len(self.named) > 1

    @property
    def choice(self) -> int | None:
        """The one option chosen, or None (no option, several, or one the reply does not stand by)."""
        return self.named[0] if len(self.named) == 1 and self.uncommitted is None else None

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


def _tag_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every closed ``<answer>…</answer>`` (``start`` at ``<answer>``,
    ``end`` after ``</answer>``), as the lazy pattern would find them, in one pass."""
    spans, start, open_at = [], None, 0
    for m in _TAG_TOKEN_RE.finditer(text):
        if not m.group(1):
            if start is None:
                start, open_at = m.end(), m.start()
        elif start is not None:
            spans.append((open_at, m.end(), text[start : m.start()]))
            start = None
    return spans


def _box_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every outermost ``\\boxed{…}`` (``end`` after its closing brace)."""
    spans = []
    for start, content in find_boxed(text):
        open_brace = text.index("{", start)
        spans.append((start, open_brace + 1 + len(content) + 1, content))
    return spans


def _phrase_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, span_start, span)``: the rest of the line after every answer phrase (``Answer:``,
    ``the answer is``); ``start`` is where the phrase begins, ``span_start`` where its span does."""
    spans = []
    matches = list(_PHRASE_RE.finditer(text))
    for k, m in enumerate(matches):
        after = matches[k + 1] if k + 1 < len(matches) else None
        # up to the end of the line, the next answer phrase (read on its own) or the window
        stop = min(m.end() + PHRASE_WINDOW, after.start() if after is not None else len(text))
        end = text.find("\n", m.end(), stop)
        span = text[m.end() : end if end >= 0 else stop]
        if span.strip():
            spans.append((m.start(), m.end(), span))
    return spans


def _is_article(letter: str, after_text: str) -> bool:
    """A capital ``A`` or ``I`` followed by an ordinary word is the article or the pronoun
    (``A cat``, ``I think``), not an option's name (``A is correct`` still names A)."""
    if letter not in "AI":
        return False
    after = re.match(r"\s+([a-z]+)", after_text)
    if after is None or after.group(1) in _VERB_AFTER_LETTER:
        return False
    # the article is followed by a noun or an adjective, never by a conjunction or a hedge ("A else B",
    # "A maybe"); the pronoun "I" often is ("I also think"), so only "A" is read as a letter there
    return not (letter == "A" and after.group(1) in _NOT_AFTER_ARTICLE)


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


# ---- alternatives offered after the answer --------------------------------------------------------
# (the rule is the module docstring's; every window below is bounded, so a long tail reads in linear time)

#: characters around an option's mention read to decide whether it is rejected or offered
CONTEXT_WINDOW = 200
# words that keep an option in play: it is offered as an alternative, not ruled out (or the reply
# changes its mind: "no wait, B", "never mind, B", "no doubt B")
_HEDGES = frozenset(
    "or else otherwise maybe perhaps possibly possible plausible plausibly probably likely might could "
    "may would alternatively alternative also if unless whether equally instead second backup "
    "acceptable conceivably arguably doubt undoubtedly doubtless wait actually mind oops correction "
    "scratch kidding joking".split()
)
# modals that reject, not hedge, when negated ("B could not be right"); "if not B" still hedges
_NEGATABLE_MODALS = frozenset("could might may would".split())
# words that say an option is wrong; a predicate rejects when it holds an odd number of them
_NEGATIVES = frozenset(
    "not n't no never none nor neither wrong wrongly incorrect false invalid impossible unlikely "
    "inconsistent incompatible excluded exclude excludes eliminated eliminate eliminates rejected "
    "reject rejects fails fail failed cannot worse less fewer different mistaken erroneous "
    "nope isnt arent wasnt werent dont doesnt didnt cant couldnt wouldnt shouldnt wont aint hasnt "
    "havent eliminating excluding rejecting hardly scarcely barely seldom rarely dismiss dismissed "
    "dismissing discard discarded discarding ignore ignored drop dropped disqualified refuted disproved "
    "disproven untrue unsupported inapplicable irrelevant nonsense bogus".split()
)
# after these, "too" is "also" (a hedge: "B too would work"), not "excessively" ("B is too small")
_NOT_EXCESS = frozenset(
    "would could might may can will should is are was were be works work fits fit seems seem i it as "
    "and or but though so then maybe perhaps possibly".split()
)
# "out" rejects after these ("ruled out"), not in "stands out"
_OUT_AFTER = frozenset("ruled rule rules ruling crossed cross crosses struck".split())
# words stripped from both ends of a clause before asking whether what is left is an option
_FILLERS = _HEDGES | frozenset(
    "though although but either too is it its it's be was were as well even just then so and plus "
    "option choice letter answer the my i think say pick choose go with correct right valid works "
    "work fits fit good fine ok okay can will should".split()
)
_ABBREVIATION_RE = re.compile(r"\b(?:e\.\s?g|i\.\s?e|a\.\s?m|p\.\s?m|cf|etc|viz|vs)\.", re.IGNORECASE)
_APOSTROPHES = str.maketrans({c: "'" for c in "\u2019\u2018\u02bc`\u00b4\u2032"})
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")
_BOUNDARY_RE = re.compile(r"[!?;\n]|\.(?!\d)")
# a letter's mention that is joined to the next one in a list: "B, D", "B or D", "B/D", "(B) and (D)"
_GROUP_JOIN_RE = re.compile(
    r"\s*[)\]]?\s*(?:,|/|&|\|)?\s*(?:\b(?:and|or|nor)\b)?\s*[(\[]?\s*(?:(?:option|choice)\s+)?",
    re.IGNORECASE,
)
# a preposition that rejects what follows it, right before a mention ("rather than option B", "over (B)")
_REJECTING_BEFORE_RE = re.compile(
    r"\b(?:than|unlike|over|except|instead\s+of)\s*(?:\bthe\s+)?"
    r"(?:\b(?:option|choice|answer|letter)\s*)?[(\[]?\s*$",
    re.IGNORECASE,
)
_BREAK_RE = re.compile(
    r"[,:]|\b(?:and|but|or|nor|neither|while|whereas|though|although|because|since|so|yet)\b", re.IGNORECASE
)
_GLUED_LETTER_RE = re.compile(r"(?<![A-Za-z])(?i:or|nor|and|else)([A-J])(?![A-Za-z0-9'])")
_PLACES = {
    w: k
    for k, words in enumerate(
        ("first one", "second two", "third three", "fourth four", "fifth five", "sixth six",
         "seventh seven", "eighth eight", "ninth nine", "tenth ten")
    )
    for w in words.split()
}  # fmt: skip
_ORDINAL_RE = re.compile(
    r"\b(?:(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)\s+"
    r"(?:option|choice|one|alternative)|(?:option|choice)\s*(?:#|no\.?|number)?\s*"
    r"(10|[1-9]|one|two|three|four|five|six|seven|eight|nine|ten))\b",
    re.IGNORECASE,
)
_CLAUSE_SPLIT_RE = re.compile(
    r"[,;:!?()\[\]{}\n]|\.(?!\d)|(?=\b(?:or|else|otherwise|though|although|but|nor|because|since)\b)",
    re.IGNORECASE,
)
# an option joined to the answer that follows it: "B or \boxed{A}", "Berlin / the answer is A"
_ALTERNATIVE_BEFORE_RE = re.compile(
    r"^(.*?)\s*,?\s*(?:\b(?:or|else|otherwise)\b|/|\|)\s*(?:(?:maybe|possibly|perhaps|probably|even)\s+)*"
    r"(?:(?:the|my)\s+)?(?:(?:final|correct|right|real|true)\s+)?$",
    re.IGNORECASE | re.DOTALL,
)


def _words(text: str) -> list[str]:
    """Lower-case words, ``n't`` split off (``couldn't`` -> ``could``, ``n't``)."""
    words = []
    for w in _WORD_RE.findall(text.lower()):
        if w.endswith("n't") and len(w) > 3:
            words += [w[:-3], "n't"]
        else:
            words.append(w)
    return words


def _hedged(words: list[str]) -> bool:
    """Whether ``words`` keep an option in play: a hedge (``could``, ``if``), but not a negated modal
    (``could not be right`` rejects), or a final ``too`` (``B too``)."""
    for k, w in enumerate(words):
        nxt = words[k + 1] if k + 1 < len(words) else None
        if w == "instead" and nxt == "of":  # "C instead of A" rejects A
            continue
        if w in _HEDGES and not (w in _NEGATABLE_MODALS and nxt in ("not", "n't")):
            return True
        if w == "too" and (nxt is None or nxt in _NOT_EXCESS):
            return True
    return False


def _negations(words: list[str]) -> int:
    """How many times ``words`` say "wrong" (``too small`` and ``ruled out`` count once each)."""
    count = 0
    for k, w in enumerate(words):
        nxt = words[k + 1] if k + 1 < len(words) else None
        if w in _NEGATIVES:
            count += 1
        elif w == "too" and nxt is not None and nxt not in _NOT_EXCESS:
            count += 1
        elif w == "out" and k > 0 and words[k - 1] in _OUT_AFTER:
            count += 1
        elif w == "far" and nxt == "from":  # "far from wrong"
            count += 1
    return count


def _letter_groups(text: str, n: int) -> list[tuple[int, int, set[int]]]:
    """``(start, end, options)`` of every list of option letters standing alone (``B``, ``B or D``)."""
    tokens = []
    for m in _LETTER_TOKEN_RE.finditer(text):
        index = LETTERS.index(m.group(1))
        if index >= n or text[max(0, m.start() - 1) : m.start()] == "\u00b0":  # 25 °C is a unit
            continue
        tokens.append((m.start(), m.end(), index))
    for m in _GLUED_LETTER_RE.finditer(text):  # "orB" reads "or B"
        if LETTERS.index(m.group(1)) < n:
            tokens.append((m.start(1), m.end(1), LETTERS.index(m.group(1))))
    for m in _ORDINAL_RE.finditer(text):  # "the second option", "option 2": an option named by place
        word = (m.group(1) or m.group(2)).lower()
        index = n - 1 if word == "last" else _PLACES.get(word, int(word) - 1 if word.isdigit() else -1)
        if 0 <= index < n:
            tokens.append((m.start(), m.end(), index))
    tokens.sort()
    groups: list[tuple[int, int, set[int]]] = []
    for start, end, index in tokens:
        if _is_article(LETTERS[index], text[end : end + 40]) and not (
            # in a list of letters an "A" is a letter whatever follows it ("B A ro", "B, A cannot be");
            # the pronoun stays a pronoun ("B, I think, is wrong")
            index == 0 and groups and _GROUP_JOIN_RE.fullmatch(text, groups[-1][1], start)
        ):
            continue
        if groups and _GROUP_JOIN_RE.fullmatch(text, groups[-1][1], start):
            groups[-1] = (groups[-1][0], end, groups[-1][2] | {index})
        else:
            groups.append((start, end, {index}))
    return groups


def _between_split(text: str, lo: int, hi: int) -> int:
    """Where the words between two mentions stop being about the first and start being about the
    second: at the last comma or conjunction (``A is wrong, and B ...``, ``neither A nor B``)."""
    last = None
    for last in _BREAK_RE.finditer(text, max(lo, hi - CONTEXT_WINDOW), hi):  # noqa: B007 (the last one)
        pass
    # without a break the words are the second's ("C (not B)"): a mention of its own
    return last.start() if last is not None else lo


def _rejected(text: str, start: int, end: int, pre_lo: int, pred_hi: int) -> bool:
    """Whether the letters at ``text[start:end]`` are ruled out there (see the module docstring):
    the words before them (from ``pre_lo``) and after them (up to ``pred_hi``) in their sentence say
    "wrong" an odd number of times, and nothing there hedges or asks."""
    lo = max(pre_lo, start - CONTEXT_WINDOW)
    cut = [m.end() for m in _BOUNDARY_RE.finditer(text, lo, start)]
    pre = text[cut[-1] if cut else lo : start]
    hi = min(pred_hi, end + CONTEXT_WINDOW)
    stop = _BOUNDARY_RE.search(text, end, hi)
    pred = text[end : stop.start() if stop else hi]
    if stop is not None and text[stop.start()] == "?":  # "not B?" asks, it does not rule out
        return False
    pre_words, pred_words = _words(pre), _words(pred)
    if _hedged(pre_words) or _hedged(pred_words):  # "if not B", "or not B", "B is wrong but possible"
        return False
    # "rather than B", "over B", "unlike B" reject where they stand right before it, and only there
    # ("B is no worse than C" is not a rejection of B)
    before = 1 if _REJECTING_BEFORE_RE.search(pre) else 0
    return (_negations(pre_words) + _negations(pred_words) + before) % 2 == 1


def _clause_options(clause: str, options: list[str]) -> set[int]:
    """The options a clause offers by standing as an answer once hedge words are stripped from its
    ends (``or maybe Berlin``, ``Berlin could be too``, ``else b``); a negated clause offers none."""
    if len(clause) > CONTEXT_WINDOW:
        return set()
    spans = [(m.start(), m.end(), m.group().strip(_EDGE_PUNCT).lower()) for m in re.finditer(r"\S+", clause)]
    while spans and spans[0][2] in _FILLERS:
        spans.pop(0)
    while spans and spans[-1][2] in _FILLERS:
        spans.pop()
    if not spans or spans[0][2] in _NEGATIVES or spans[0][2] == "too":
        return set()
    rest = clause[spans[0][0] : spans[-1][1]]
    spelled = spelled_integer(rest)
    if spelled is not None:  # "forty-seven" names the option "47"
        rest = str(spelled)
    if any(LETTERS.index(m.group(1)) < len(options) for m in _LETTER_TOKEN_RE.finditer(rest)):
        # option letters in capitals are read with their context, as lists of letters
        return set()
    return _exact(rest, options) or set()


def _offered(text: str, options: list[str], committed: set[int], texts: list[str]) -> set[int]:
    """The options other than ``committed`` that ``text`` (what follows the answer) keeps in play;
    ``texts`` are the options as written (read as the reply is)."""
    text = text.translate(_APOSTROPHES)  # one character for one, so positions stay
    # "e.g." and "i.e." are not the options E, G and I
    text = _ABBREVIATION_RE.sub(lambda m: " " * len(m.group()), text)
    for i in committed:
        # the chosen option's own text may hold letters ("D. Both A and B"): they are not mentions
        words = texts[i].split()
        if _LETTER_TOKEN_RE.search(texts[i]) and 0 < len(texts[i]) <= CONTEXT_WINDOW:
            own = re.compile(r"\W+".join(map(re.escape, words)), re.IGNORECASE)
            text = own.sub(lambda m: " " * len(m.group()), text)
    offered: set[int] = set()
    groups = _letter_groups(text, len(options))
    # the words between two mentions: up to the split they are the first's, after it the second's
    splits = [_between_split(text, groups[k][1], groups[k + 1][0]) for k in range(len(groups) - 1)]
    for k, (start, end, named) in enumerate(groups):
        if not named - committed:
            continue
        pre_lo = splits[k - 1] if k else _between_split(text, 0, start)
        pred_hi = splits[k] if k < len(splits) else len(text)
        if not _rejected(text, start, end, pre_lo, pred_hi):
            offered |= named - committed
    pieces = _CLAUSE_SPLIT_RE.split(text)
    for clause in pieces:
        offered |= _clause_options(clause, options) - committed
    return offered


def _offered_before(prefix: str, options: list[str], committed: set[int]) -> set[int]:
    """The options joined to the answer right before it by ``or``/``/`` (``B or \\boxed{A}``)."""
    prefix = prefix[-CONTEXT_WINDOW:]
    cut = [m.end() for m in _BOUNDARY_RE.finditer(prefix)]
    prefix = prefix[cut[-1] if cut else 0 :]
    m = _ALTERNATIVE_BEFORE_RE.match(prefix)
    if m is None or not m.group(1).strip():
        return set()
    before = m.group(1)
    groups = _letter_groups(before, len(options))
    named: set[int] = set()
    if groups and not before[groups[-1][1] :].strip(" ()[].,"):  # a list of letters that ends the clause
        named = groups[-1][2]
    clause = _CLAUSE_SPLIT_RE.split(before)[-1]
    return (named | _clause_options(clause, options)) - committed


def _as_read(text: str) -> str:
    """``text`` normalised as every reader of replies here does, then without accents: a letter
    with a mark (``Ḃ``, ``B\u0307``) is still read as that letter, here as in the options."""
    text = normalize_reply(text)
    if text.isascii():
        return text
    marked = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in marked if unicodedata.category(c) != "Mn"))


def read_choice(text: str, options: list[str]) -> ChoiceReading:
    """Which of ``options`` the reply ``text`` chose (see the module docstring for the rules).

    ``form`` says how it was read: ``"tag"``/``"boxed"`` (explicit), ``"phrase"`` (``Answer: C``),
    ``"bare"`` (the reply is only a letter or an option's text), or None.
    """
    if not isinstance(text, str):
        raise TypeError(f"read_choice expects a str reply, got {type(text).__name__}")
    if not options:
        raise ValueError("read_choice needs at least one option")
    text = _as_read(text)  # once, as a reader sees it: Ｂ is B, Ḃ is B, a bidi override is nothing
    # every box-like command (\\fbox, \\framebox, a spaced or brace-less \\boxed) and tag spelling
    # (<answer >) is the box or tag a reader sees
    text = canonical_sites(text)
    # normalised once: the helpers compare these
    texts = [_as_read(str(o)) for o in options]
    options = [_norm_text(t) for t in texts]
    named: set[int] = set()
    forms = []
    # where the first span that named an option begins (what precedes it is reasoning) and where
    # what follows it begins (read for alternatives)
    first: tuple[int, int] | None = None
    explicit = [("tag", span) for span in _tag_spans(text)]
    explicit += [("boxed", span) for span in _box_spans(text)]
    explicit.sort(key=lambda item: item[1][0])
    for form, (start, end, span) in explicit:
        found = _exact(span, options)
        if found is None:  # a sentence: its own answer phrase if it has one, else every option it names
            phrases = _phrase_spans(span)
            phrased = [_phrase_head(p, options) for _, _, p in phrases]
            if any(phrased):
                found = set().union(*phrased)
                head = next(a for (_, a, _), f in zip(phrases, phrased, strict=True) if f)
                found |= _offered(span[head:], options, found, texts)
            else:
                found = _scan(span, options)
        if found:
            named |= found
            forms.append(form)
            if first is None:
                first = (start, end)
    if forms:  # an answer stated in words beside the box or tag is an answer too ("Answer: B\n\\boxed{C}")
        named |= _stated_beside(text, [item[1] for item in explicit], options)
    if not forms:
        for start, span_start, span in _phrase_spans(text):
            found = _phrase_head(span, options)
            if found:
                named |= found
                forms.append("phrase")
                if first is None:
                    first = (start, span_start)
    if not forms and len(text) <= 400:  # a bare reply: the letter or option text and nothing else
        found = _exact(text, options)
        if found:
            named |= found
            forms.append("bare")
    if first is not None:
        named |= _offered(text[first[1] :], options, named, texts)
        named |= _offered_before(text[: first[0]], options, named)
    form = forms[-1] if len(set(forms)) == 1 else ("+".join(sorted(set(forms))) if forms else None)
    uncommitted = None
    if first is not None and len(named) == 1:
        uncommitted = commitment(text, *_letter_span(text, first, next(iter(named))))
    return ChoiceReading(tuple(sorted(named)), form, uncommitted)


# "I pick B.", "My choice is (B)", "Option B." standing alone as a sentence: an answer stated in words
# ("Option B." only right before a box or tag: alone on its line it is more often a heading of the working)
_CHOSEN_RE = re.compile(
    r"(?:^|(?<=[\n.!?:]))[ \t*_]*(?:(?i:i(?:'ll|\s+will)?\s+(?:pick|choose|select|go\s+with)|my\s+(?:final\s+)?"
    r"(?:choice|pick|answer)\s+is)[ \t*_:]*[(\[]?([A-J])[)\]]?[ \t*_]*[.!]?[ \t*_]*(?=$|\n|\\boxed|<answer>)"
    r"|(?i:option)[ \t*_:]*[(\[]?([A-J])[)\]]?[ \t*_]*[.!]?[ \t*_]*(?=\\boxed|<answer>))"
)


def _stated_beside(text: str, containers: list[tuple[int, int, str]], options: list[str]) -> set[int]:
    """The options the reply states in words outside its boxes and tags: the head of every answer
    phrase (``Answer: B``, ``**Answer: B** \\boxed{C}``, ``The answer is B. \\boxed{C}``) and a sentence
    that only picks one (``I pick B.``, ``Option B.``). A phrase that leads into a box or tag (``the
    answer is \\boxed{C}``) is that container, read already."""

    def inside(at: int) -> bool:
        return any(start <= at < end for start, end, _ in containers)

    named: set[int] = set()
    for start, _, span in _phrase_spans(text):
        if inside(start):
            continue
        lead = re.search(r"\\boxed|<answer>", span)
        head = (span[: lead.start()] if lead else span).strip(" \t*_$:")
        if head:
            named |= _phrase_head(head, options)
    for m in _CHOSEN_RE.finditer(text):
        group = 1 if m.group(1) else 2
        index = LETTERS.index(m.group(group))
        if index < len(options) and not inside(m.start(group)):
            named.add(index)
    return named


def _letter_span(text: str, first: tuple[int, int], index: int) -> tuple[int, int]:
    """Where the chosen option's letter stands in the first span that named it (a tag's or box's
    content, or the line after an answer phrase); the span itself when no letter is there."""
    start, end = first
    if text.startswith(("<", "\\"), start):  # a tag or a box: its content
        stop = end
    else:  # an answer phrase: its line
        start = end
        line_end = text.find("\n", start)
        stop = line_end if line_end >= 0 else len(text)
    for m in _LETTER_TOKEN_RE.finditer(text, start, stop):
        if m.group(1) == LETTERS[index]:
            return m.start(), m.end()
    return first
