"""Whether a reply serves the request at all: the check every procedural task adds to its preferences.

The hidden preferences (length, case, commas, ...) say nothing about the request, so filler that
ignores it ("this is a short and clear answer") could meet them all. Each procedural task therefore
carries one more check, made from its request (see :mod:`drift_envs.user.tasks`):

* :class:`OnTopic` for writing, questions and summaries: the reply names ``min_named`` words of the
  request's own vocabulary (the topic written about, the terms an answer to the question uses, the
  people and things of the text summarised), and does more than repeat the request: a piece of
  writing or an answer holds ``min_new`` distinct words (two letters or more) that are neither words
  of the request nor the vocabulary (so "moon", or the request echoed back, serves nothing); a
  summary has five words or more, three of them beyond the story's things (not a list of names),
  and is no copy of the text (at most 3/4 of its words may lie in runs of three or more words
  copied from the text, so the text or one of its sentences echoed back is no summary);
* :class:`ListItems` for list requests: the reply holds the number of items asked for, as list lines
  (``- towel``, ``2. hat``), as a numbered run (``1) towel 2) hat``), or, in running prose, by naming
  that many of the things the request is about. Listed items are distinct (not only by a number),
  each holds a word of three letters or more that the request does not hold and that is no function
  word (``- a``, ``- the a`` or the request cut into lines are placeholders, not items) and
  ``item_words`` words or more (2 for tips,
  ways and ideas, which are phrases; 1 for things and hobbies); prose holds ``n * item_words`` words.

Both also ask for sentence shape where the reply is prose (:func:`serving_sentences`): one sentence
names the request's things, is a clause (a function word and a verb, or two function words: a run of
keywords such as "sleep screens routine dark caffeine" is none) and neither refuses nor denies (no
"not", "won't", "refuse" before the first thing it names: "i refuse to explain evaporation", "the water
cycle is not evaporation"). List lines are items and are judged as items.

What these checks cannot see: whether the words are sensible. A reply of unrelated real words
that names the topic passes; they stop replies that do nothing but repeat the request or fill slots.

They are constraints (checked, described and voiced by the simulated user like any other, last in
the order the user addresses them) but no registered kind: the task generator never draws them, and
a task file states its own constraints (a spec without the newer fields ``request``, ``min_new``,
``min_named``, ``item_words`` gets their defaults, the checks as they were before those fields).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from drift_envs.user.constraints.base import (
    Check,
    Constraint,
    ConstraintSpecError,
    check_positive_int,
    check_word_list,
    constraint_from_dict,
)
from drift_envs.user.constraints.compose import Draft
from drift_envs.user.constraints.normalize import normalize_reply
from drift_envs.user.constraints.text import NUMBER_WORDS, contains_word, count_words, skeleton, words

__all__ = ["SERVED_CHECKS", "ListItems", "OnTopic", "served_from_dict", "serving_sentences"]

# A list line: a bullet (-, *, •, +) or an enumerator (1. 1) (1) a.) then text; a reply wrapped in
# quotes may open its first line with the quote.
_LIST_LINE_RE = re.compile(r"^\s*[\"“']?\s*(?:[-*•+]|\d{1,2}[.)]|\(\d{1,2}\)|[a-zA-Z][.)])\s+(\S.*)")
_INLINE_NUMBER_RE = re.compile(r"(?<![\w.])\(?(\d{1,2})[.)](?=\s+\S)")
_ABOUT_KINDS = ("topic", "question", "text")


# Plain words a composed reply adds as its own content (no number word, no digit)
_OWN_WORDS = (
    "clear gentle simple calm bright steady quiet warm fresh plain easy kind open soft careful honest "
    "lovely slow patient"
).split()
# Words that say nothing on their own: an item made of them and the request's words is a placeholder
_FUNCTION_WORDS = frozenset(
    "the and for with this that these those are was were you your its not but all any can has had have "
    "our his her she him they them then than from into onto also just very here there what which who".split()
)
# Words that make a run of words a clause: verbs a sentence of an answer, a tip or a summary turns on
# (the auxiliaries, copulas and modals, and the common verbs of explanations), any inflection listed
_VERBS = frozenset(
    "is are was were be been being am has have had do does did can could will would shall should may might "
    "must keep keeps kept help helps helped make makes made cause causes caused turn turns turned get gets "
    "got go goes went come comes came fall falls fell rise rises rose move moves moved pull pulls pulled "
    "form forms formed take takes took give gives gave try tries use uses used avoid avoids "
    "put puts let lets set sets stay stays need needs bring brings brought become becomes became "
    "happen happens happened mean means meant work works worked say says said decide decides decided "
    "vote votes voted save saves saved collect collects collected close closes closed open opens opened "
    "reverse reverses reversed heat heats heated warm warms cool cools cooled drink drinks eat eats "
    "pack packs read reads enjoy enjoys bring carry carries wear wears build builds built grow grows grew "
    "create creates created change changes changed run runs ran".split()
)
# Words that deny or refuse: a sentence that says one of them before it names anything of the request
# refuses or denies it ("i will not give tips about sleep", "the water cycle is not evaporation");
# "no", "nothing", "none" are left out: "nothing beats a warm mug of coffee" serves its request
_NEGATORS = frozenset(
    "not never cannot cant can't won't wont don't dont didn't didnt doesn't doesnt isn't isnt aren't arent "
    "wasn't weren't refuse refuses refused decline declines declined unable unwilling".split()
)
_SENTENCE_SPLIT_RE = re.compile(r"[.!?;\n]+")
_PART_SPLIT_RE = re.compile(r"[,:\u2013\u2014]+|\s-\s")
# Articles, prepositions, pronouns and conjunctions beyond _FUNCTION_WORDS: the glue of a sentence
_ARTICLES = frozenset(
    "a an the of in on at to by as or if so it we i he me my us over under above below through across "
    "about after before during among between beneath beside near around upon along against without "
    "while when where because until since like until who whose how why".split()
)
_SUMMARY_MIN_WORDS = 5
_SUMMARY_OWN = 3  # distinct words beyond the story's things: a summary says what happened to them
_COPY_RUN = 3  # words in a row shared with the text: a copied stretch
_COPY_SHARE = 0.75  # more of the reply than this in copied stretches: a copy
_COPY_MIN_WORDS = 6  # a reply shorter than this is judged by its other checks only


def _named(vocab: tuple[str, ...], reply: str) -> list[str]:
    return [w for w in vocab if contains_word(reply, w)]


def _skeleton_words(text: str) -> list[str]:
    return words(skeleton(normalize_reply(text)).replace("\u2060", " "))


def _new_words(reply: str, request: str, vocab: tuple[str, ...]) -> list[str]:
    """The distinct words (two letters or more) of ``reply`` that are neither words of ``request`` nor
    of ``vocab`` (compared on skeletons)."""
    known = set(_skeleton_words(request)) | {w for v in vocab for w in _skeleton_words(v)}
    seen: dict[str, None] = {}
    for w in _skeleton_words(reply):
        if sum(ch.isalpha() for ch in w) >= 2 and w not in known:
            seen.setdefault(w, None)
    return list(seen)


def _clause_words(sentence: str) -> list[str]:
    """The words of ``sentence`` (normalised, case-folded; apostrophes kept, a typographic one read as
    ``'``: ``won’t`` is ``won't``)."""
    text = skeleton(normalize_reply(sentence)).replace("\u2060", " ").replace("\u2019", "'")
    return re.findall(r"[^\W_]+(?:'[^\W_]+)*", text)


def serving_sentences(reply: str, vocab: tuple[str, ...]) -> list[str]:
    """The sentences of ``reply`` that serve a request about ``vocab``: each names a word of ``vocab``,
    is a clause (a verb of ``_VERBS`` and a function word, or two function words: a run of keywords
    is none) and neither refuses nor denies: one of its parts (between commas, colons, dashes) names a
    word of ``vocab`` with a function word or verb beside it and no negation before it."""
    found = []
    for sentence in _SENTENCE_SPLIT_RE.split(reply):
        got = _clause_words(sentence)
        named = [i for i, w in enumerate(got) if any(contains_word(w, v) for v in vocab)]
        if not named or len(got) < 3:
            continue
        glue = [w for w in got if w in _FUNCTION_WORDS or w in _ARTICLES]
        # a clause: a function word and a verb (a listed one, or an inflected word that names nothing
        # of the request: "the moon hangs low"), or two function words ("silver light over the sea");
        # a run of keywords has neither
        inflected = [
            w for i, w in enumerate(got) if i not in named and w not in glue and w.endswith(("s", "ed"))
        ]
        if not glue or (not any(w in _VERBS for w in got) and not inflected and len(glue) < 2):
            continue
        denied = False  # a negation in an earlier part of the sentence
        for part in _PART_SPLIT_RE.split(sentence):
            if _affirms(_clause_words(part), vocab, denied):
                found.append(sentence.strip())
                break
            denied = denied or any(_negates(w) for w in _clause_words(part))
    return found


def _negates(word: str) -> bool:
    return word in _NEGATORS or word.endswith("n't")


def _affirms(got: list[str], vocab: tuple[str, ...], denied: bool) -> bool:
    """True when the words ``got`` of a part of a sentence (between commas, colons or dashes) name a
    word of ``vocab`` with no negation before it in the part; a part that is no clause of its own (no
    function word, no verb: "the answer is simple: moon") takes the negation of the parts before it
    ("tides don't just happen: the moon pulls the ocean" affirms; "i will not, moon gravity" not)."""
    named = [i for i, w in enumerate(got) if any(contains_word(w, v) for v in vocab)]
    if not named or any(_negates(w) for w in got[: named[0]]):
        return False
    return not denied or any(w in _FUNCTION_WORDS or w in _ARTICLES or w in _VERBS for w in got)


def copied_share(reply: str, source: str) -> float:
    """The share of the words of ``reply`` that lie in runs of three or more words in a row that
    ``source`` holds too (on skeletons): 1.0 for a reply copied from ``source``."""
    got, src = _skeleton_words(reply), _skeleton_words(source)
    if not got:
        return 0.0
    runs = {tuple(src[i : i + _COPY_RUN]) for i in range(len(src) - _COPY_RUN + 1)}
    covered = [False] * len(got)
    for i in range(len(got) - _COPY_RUN + 1):
        if tuple(got[i : i + _COPY_RUN]) in runs:
            covered[i : i + _COPY_RUN] = [True] * _COPY_RUN
    return sum(covered) / len(got)


@dataclass(frozen=True)
class OnTopic(Constraint):
    """The reply is about the request: it names ``min_named`` of ``words`` (whole words, any case) and
    does more than repeat the request (see the module docstring).

    ``about`` is what was asked, as the user says it back: a topic (``"the moon"``), a question
    (``"Why is the sky blue?"``) or a text (``"the story about Mara"``), per ``request_kind``.
    ``request`` is the request's text (for a summary, it holds the text summarised); ``min_new`` the
    distinct words of the reply that must be neither the request's nor ``words`` (writing, answers).
    """

    words: tuple[str, ...]
    about: str
    request_kind: str = "topic"
    request: str = ""
    min_new: int = 0
    min_named: int = 1
    kind: ClassVar[str] = "on_topic"
    difficulty: ClassVar[str] = "easy"
    compose_order: ClassVar[int] = 95  # after the forbidden words are known

    def __post_init__(self) -> None:
        if isinstance(self.words, list):
            object.__setattr__(self, "words", tuple(self.words))
        super().__post_init__()

    def _validate(self) -> None:
        check_word_list("OnTopic", "words", self.words)
        if self.request_kind not in _ABOUT_KINDS:
            raise ValueError(f"OnTopic.request_kind must be one of {_ABOUT_KINDS}, got {self.request_kind!r}")
        if not isinstance(self.request, str):
            raise ConstraintSpecError(f"OnTopic.request must be a string, got {self.request!r}")
        if not isinstance(self.min_new, int) or isinstance(self.min_new, bool) or self.min_new < 0:
            raise ConstraintSpecError(f"OnTopic.min_new must be an integer >= 0, got {self.min_new!r}")
        check_positive_int("OnTopic", "min_named", self.min_named)
        if self.min_named > len({w.casefold() for w in self.words}):
            raise ConstraintSpecError(
                f"OnTopic.min_named must be at most the {len(self.words)} words given, got {self.min_named}"
            )

    def _evaluate(self, reply: str) -> Check:
        named = sorted({w.casefold() for w in _named(self.words, reply)})
        detail: dict = {"named": named[:5]}
        if len(named) < self.min_named:
            return Check(False, {**detail, "reason": "off_topic"})
        if self.request_kind == "text" and self.request:
            if (
                count_words(reply) < _SUMMARY_MIN_WORDS
                or len(_new_words(reply, "", self.words)) < _SUMMARY_OWN
            ):
                return Check(False, {**detail, "reason": "thin"})
            if count_words(reply) >= _COPY_MIN_WORDS and copied_share(reply, self.request) > _COPY_SHARE:
                return Check(False, {**detail, "reason": "copy"})
        if self.min_new:
            new = _new_words(reply, self.request, self.words)
            detail["new_words"] = len(new)
            if len(new) < self.min_new:
                return Check(False, {**detail, "reason": "thin"})
        if not serving_sentences(reply, self.words):
            # a refusal, a denial or a run of keywords names the request without serving it
            return Check(False, {**detail, "reason": "no_sentence"})
        return Check(True, detail)

    def describe(self) -> str:
        if self.request_kind == "question":
            return f"Answer the question: {self.about}"
        if self.request_kind == "text":
            return f"Summarise {self.about}."
        return f"Write about {self.about}."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        reason = detail.get("reason", "off_topic")
        if reason != "off_topic":
            return self._thin_corrections(persona, reason)
        a = self.about
        if self.request_kind == "question":
            if persona == "terse":
                return [
                    "That doesn't answer my question.",
                    f"Answer it: {a}",
                    "Off topic. Answer the question.",
                ]
            return [
                f"That doesn't answer what I asked. My question was: {a}",
                f"I don't see an answer to my question in there. {a}",
                f"Could you actually answer the question? I asked: {a}",
            ]
        if self.request_kind == "text":
            if persona == "terse":
                return [
                    "That's not a summary of the text.",
                    "Summarise the text I gave you.",
                    "Off topic: summarise the text.",
                ]
            return [
                f"That doesn't summarise the text at all. I wanted the gist of {a}.",
                f"Please summarise what I sent you: {a}. This reads like something else.",
                f"I can't find {a} in your summary. Could you summarise the actual text?",
            ]
        if persona == "terse":
            return [f"Off topic. It's about {a}.", f"Stick to {a}.", f"That's not about {a}."]
        return [
            f"That isn't about {a} at all — I asked for something about {a}.",
            f"Hmm, I wanted this to be about {a}. Could you write about that?",
            f"This doesn't mention {a}. Please stay on the topic I asked about.",
        ]

    def _thin_corrections(self, persona: str, reason: str) -> list[str]:
        """What the user says to a reply that names the request but does not serve it: the request's
        words and little else, or (a summary) the text copied back."""
        a = self.about
        if reason == "no_sentence":
            what = {"text": f"a summary of {a}", "question": f"an answer to my question: {a}"}.get(
                self.request_kind, f"something about {a}"
            )
            if persona == "terse":
                return [
                    f"Write {what}. In sentences.",
                    f"That's not {what}. Try again.",
                    f"Give me {what}.",
                ]
            return [
                f"That doesn't give me {what}. Could you write it out in proper sentences?",
                f"I can't use that: I need {what}, written as real sentences, not a refusal or a list of words.",
                f"Please actually do what I asked: {what}.",
            ]
        if self.request_kind == "text":
            if reason == "copy":
                if persona == "terse":
                    return [
                        "That's my text copied back. Summarise it.",
                        "Don't copy it. Summarise.",
                        "Summary, please, not the text again.",
                    ]
                return [
                    f"You've mostly copied the text back. I wanted a summary of {a} in your own words.",
                    f"That's nearly the text I sent you. Could you summarise {a} instead, shorter?",
                    f"Please don't copy it out: summarise {a} in a few sentences of your own.",
                ]
            if persona == "terse":
                return ["Too thin for a summary.", "Summarise it properly.", "That's no summary. Write one."]
            return [
                f"That's too little to be a summary. What happens in {a}?",
                f"Could you actually summarise {a}? A few words don't tell me the gist.",
                f"I need a real summary of {a}, not just a name or two.",
            ]
        if self.request_kind == "question":
            if persona == "terse":
                return [
                    "That's not an answer. Explain.",
                    f"Answer it properly: {a}",
                    "You just repeated my words. Answer.",
                ]
            return [
                f"That just repeats my question back. I'd like an actual answer: {a}",
                f"There's no explanation in there. Could you answer the question? {a}",
                f"Please answer the question in your own words: {a}",
            ]
        if persona == "terse":
            return [
                f"Write something about {a}.",
                f"More than my words back. Write about {a}.",
                f"Actually write about {a}.",
            ]
        return [
            f"You've only repeated my request. Could you actually write something about {a}?",
            f"That's barely anything. I'd like a real piece about {a}, in your own words.",
            f"Please write about {a} properly, not just a word or my own sentence back.",
        ]

    def fixed_words(self) -> int:
        return self.min_named + self.min_new

    def _conflicts(self, other: Constraint) -> bool:
        banned = (
            {w.casefold() for w in getattr(other, "words", ())} if other.kind == "forbidden_words" else set()
        )
        return len({w.casefold() for w in self.words} - banned) < self.min_named

    def compose(self, draft: Draft) -> None:
        """``min_named`` of ``words`` in the body, and ``min_new`` plain words of its own that neither
        the request nor ``words`` holds."""
        have = {b.casefold() for b in draft.body}
        named = [w for w in self.words if w.casefold() in have]
        for w in self.words:
            if len(named) >= self.min_named:
                break
            if w.casefold() not in have and w.casefold() not in draft.banned:
                draft.body.append(w)
                named.append(w)
        own_needed = _SUMMARY_OWN if self.request_kind == "text" and self.request else self.min_new
        if own_needed:
            request = "" if self.request_kind == "text" else self.request
            known = set(_skeleton_words(request)) | {w for v in self.words for w in _skeleton_words(v)}
            own = [
                w
                for w in _OWN_WORDS
                if w not in known and w not in draft.banned and w not in have and w not in NUMBER_WORDS
            ]
            draft.body.extend(own[:own_needed])
        if self.request_kind == "text":
            draft.min_words = max(draft.min_words, _SUMMARY_MIN_WORDS)
        draft.clause = True


@dataclass(frozen=True)
class ListItems(Constraint):
    """The reply holds ``n`` items: exactly ``n`` list lines, or a numbered run ``1. … n.`` (and no
    ``n+1``), or (without list lines) running prose that names ``n`` of ``words``, the things the
    request is about. Listed items are distinct (not only by a number: ``tip 1``, ``tip 2`` repeat one
    item) and each holds ``item_words`` words or more, one of them a word of three letters or more that
    says something (neither a word of the request, ``about``, nor a function word such as "the");
    prose holds ``n * item_words`` words."""

    n: int
    words: tuple[str, ...]
    about: str = ""
    item_words: int = 1
    kind: ClassVar[str] = "list_items"
    difficulty: ClassVar[str] = "easy"
    compose_order: ClassVar[int] = 95

    def __post_init__(self) -> None:
        if isinstance(self.words, list):
            object.__setattr__(self, "words", tuple(self.words))
        super().__post_init__()

    def _validate(self) -> None:
        check_positive_int("ListItems", "n", self.n)
        check_word_list("ListItems", "words", self.words)
        check_positive_int("ListItems", "item_words", self.item_words)

    def items(self, reply: str) -> tuple[list[str], str]:
        """The items of ``reply`` (their texts; for prose, the things named) and how they were found
        (``"lines"``, ``"numbered"``, ``"named"``)."""
        lines = [m.group(1) for line in reply.splitlines() if (m := _LIST_LINE_RE.match(line))]
        run: list[re.Match[str]] = []
        for m in _INLINE_NUMBER_RE.finditer(reply):
            if int(m.group(1)) == len(run) + 1:
                run.append(m)
        if len(run) >= 2 and len(run) > len(lines):  # "1) towel 2) hat" on one line is a list of two
            ends = [m.start() for m in run[1:]] + [len(reply)]
            return [reply[m.end() : e].strip() for m, e in zip(run, ends, strict=True)], "numbered"
        if lines:
            return lines, "lines"
        return sorted({w.casefold() for w in _named(self.words, reply)}), "named"

    def count(self, reply: str) -> tuple[int, str]:
        """The number of items of ``reply`` and how they were counted (see :meth:`items`)."""
        found, how = self.items(reply)
        return len(found), how

    def _thin(self, item: str) -> bool:
        """True for a placeholder rather than an item: too few words, or no word of three letters or
        more that says something (neither a word of the request, ``about``, nor a function word)."""
        asked = set(_skeleton_words(self.about))
        return len(words(item)) < self.item_words or not any(
            sum(ch.isalpha() for ch in w) >= 3 and w not in asked and w not in _FUNCTION_WORDS
            for w in _skeleton_words(item)
        )

    def _evaluate(self, reply: str) -> Check:
        found, how = self.items(reply)
        detail = {"items": len(found), "expected": self.n}
        if how == "named":
            if len(found) < self.n:
                return Check(False, detail)
            if count_words(reply) < self.n * self.item_words:
                return Check(False, {**detail, "thin": True})
            if not serving_sentences(reply, self.words):
                # prose must say something of the things it names: a refusal or a run of keywords
                # lists nothing
                return Check(False, {**detail, "no_sentence": True})
            return Check(True, detail)
        if len(found) != self.n:
            return Check(False, detail)
        if any(self._thin(item) for item in found):
            return Check(False, {**detail, "thin": True})
        # items that differ only by a number ("tip 1", "tip 2") are one item repeated
        keys = [
            " ".join(w for w in _skeleton_words(item) if not any(ch.isdigit() for ch in w)) for item in found
        ]
        if len(set(keys)) < len(keys):
            return Check(False, {**detail, "repeated": True})
        return Check(True, detail)

    def describe(self) -> str:
        return f"Give {self.n} items, as the request asks."

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        n, got = self.n, detail.get("items", 0)
        if detail.get("repeated"):
            if persona == "terse":
                return [f"{n} different items.", "Items repeat.", f"No repeats: {n} distinct items."]
            return [
                f"Some of the items are the same. I'd like {n} different items.",
                f"Please don't repeat items: {n} distinct ones.",
                f"Two of your items say the same thing. Could you give {n} different items?",
            ]
        if detail.get("no_sentence"):
            if persona == "terse":
                return [
                    f"List {n} items.",
                    f"{n} real items, please.",
                    f"That's not a list of {n}. Try again.",
                ]
            return [
                f"That isn't the list I asked for. Could you give me {n} items, one per line?",
                f"Please write out {n} items, each one a proper line, not a string of words.",
                f"I need {n} actual items. Could you list them?",
            ]
        if detail.get("thin"):
            what = "a few words each" if self.item_words > 1 else "a real word each"
            if persona == "terse":
                return [
                    f"Real items, {what}.",
                    f"Those aren't items. {n} real ones.",
                    f"Fill in the {n} items.",
                ]
            return [
                f"Those look like placeholders. Please give me {n} real items, {what}.",
                f"I can't use those items: I need {n} proper ones, {what}.",
                f"Could you write out the {n} items properly ({what})?",
            ]
        if persona == "terse":
            return [f"I asked for {n} items.", f"{n} items, please.", f"Need {n} items, not {got}."]
        return [
            f"I asked for {n} items and I count {got}. Could you list exactly {n}?",
            f"That's not the list I asked for: I wanted {n} items, one per line.",
            f"Please give me the {n} items I asked for (I see {got}).",
        ]

    def fixed_words(self) -> int:
        return self.n * self.item_words

    def _conflicts(self, other: Constraint) -> bool:
        banned = (
            {w.casefold() for w in getattr(other, "words", ())} if other.kind == "forbidden_words" else set()
        )
        return len({w.casefold() for w in self.words} - banned) < self.n

    def compose(self, draft: Draft) -> None:
        """``n`` of the request's things named in the body (a list in prose: no layout needed, so the
        kinds that fix a layout, one line or JSON, still compose), in ``n * item_words`` words."""
        have = {b.casefold() for b in draft.body}
        named = [w for w in self.words if w.casefold() in have]
        for w in self.words:
            if len(named) >= self.n:
                break
            if w.casefold() not in have and w.casefold() not in draft.banned:
                draft.body.append(w)
                named.append(w)
        draft.min_words = max(draft.min_words, self.n * self.item_words)
        draft.clause = True


#: the request checks by kind (a task file's ``"served"`` spec names one)
SERVED_CHECKS: dict[str, type[Constraint]] = {"on_topic": OnTopic, "list_items": ListItems}


# fields added after task files were first written: a spec without them gets these defaults
_LATER_FIELDS = {
    "on_topic": {"request": "", "min_new": 0, "min_named": 1},
    "list_items": {"item_words": 1},
}


def served_from_dict(spec: object, *, where: str = "served") -> Constraint:
    """A request check from its JSON spec (``{"type": "on_topic", "words": [...], "about": ...}``);
    the fields added later (``request``, ``min_new``, ``min_named``, ``item_words``) may be left out."""
    if isinstance(spec, dict) and spec.get("type") in _LATER_FIELDS:
        spec = {**_LATER_FIELDS[spec["type"]], **spec}
    return constraint_from_dict(spec, where=where, registry=SERVED_CHECKS)
