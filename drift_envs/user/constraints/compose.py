"""A constructive witness: :func:`compose_reply` builds one reply that meets a whole set of constraints.

Composing knows no kind. Each constraint adds its part to a :class:`Draft` (its ``compose`` method:
words the body must hold, a phrase at the start or the end, a layout, a transformation of the whole
text) in ``compose_order``; the draft is then rendered with more or less filler until every
constraint holds. The reply is plain filler around the required pieces, so it proves a set is
satisfiable and serves as the env's oracle; a request check makes its body a clause (a verb and an
article after the first word, :attr:`Draft.clause`), which is all the sense it has.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from drift_envs.user.constraints.base import Constraint, compatible
from drift_envs.user.constraints.text import NUMBER_WORDS, count_words, is_number_char, words

__all__ = ["Draft", "compose_reply"]

_FILLER = (
    "this is a short and clear answer that covers the main point well and keeps things simple "
    "for the reader who wants a quick useful reply about the topic at hand today"
).split()


# the words that make a composed body a clause (see Draft.clause), in order of preference
_CLAUSE_VERBS = ("is", "has", "was", "can")
_CLAUSE_ARTICLES = ("the", "a", "this", "of")


@functools.lru_cache(maxsize=8192)
def _neutral(word: str) -> bool:
    """No number word and no digit: filler that no numbers constraint objects to (cached: the
    same few hundred words come up in every composed reply)."""
    return word.casefold() not in NUMBER_WORDS and not any(is_number_char(ch) for ch in word)


@dataclass
class Draft:
    """A reply under construction, in the parts constraints fill in.

    The rendered text is, in order: ``head`` (joined by spaces), then the ``body`` words — the
    required ones followed by filler from ``pool``, edited by each of ``body_edits`` — as one
    sentence (ending in a full stop when ``stop``) or as ``bullets`` lines; then each of ``endings``
    and each of ``wrappers`` applied to the whole text in turn. Filler avoids ``banned`` words, number
    words and digits; the filler length is searched within ``min_words..max_words``.
    """

    head: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    body_edits: list[Callable[[list[str], Draft], list[str]]] = field(default_factory=list)
    bullets: int = 0
    single_line: bool = False
    stop: bool = True
    endings: list[Callable[[str, Draft], str]] = field(default_factory=list)
    wrappers: list[Callable[[str, Draft], str]] = field(default_factory=list)
    #: ``"lower"``/``"upper"`` once a case constraint has claimed the text (wrappers may read it)
    case: str | None = None
    banned: set[str] = field(default_factory=set)
    min_words: int = 0
    max_words: float = math.inf
    pool: list[str] = field(default_factory=list)
    #: the body must read as a clause (a request check asks it): a verb and an article after its
    #: first word, so "moon gravity ocean" renders "moon is the gravity ocean"
    clause: bool = False

    def fill(self, topic_words: Sequence[str]) -> None:
        """Choose the filler words: the topic's and a neutral text's, minus banned words, number
        words and anything with a digit (so no kind that forbids those needs to say so)."""
        banned_pieces = {piece.casefold() for b in self.banned for piece in words(b)}
        self.pool = [
            w
            for w in [*(piece for t in topic_words for piece in words(t)), *_FILLER]
            if _neutral(w) and w.casefold() not in banned_pieces
        ] or ["okay"]

    def filler(self, i: int) -> str:
        """The ``i``-th filler word (the pool, cycled)."""
        return self.pool[i % len(self.pool)]

    def _as_clause(self, body: list[str]) -> list[str]:
        """``body`` with a verb and an article after its first word (the first of each not banned)."""
        banned = {b.casefold() for b in self.banned}
        glue = [
            next((w for w in choices if w not in banned), choices[0])
            for choices in (_CLAUSE_VERBS, _CLAUSE_ARTICLES)
        ]
        return [*body[:1], *glue, *body[1:]] if body else body

    def render(self, extra: int) -> str:
        """The text with ``extra`` filler words in the body."""
        pool = self.pool
        body = [*self.body, *(pool[i % len(pool)] for i in range(extra))]
        for edit in self.body_edits:
            body = edit(body, self)
        if self.bullets:
            n = self.bullets
            items = [body[i::n] or [self.filler(i)] for i in range(n)]
            if self.clause:
                items[0] = self._as_clause(items[0])
            text = " ".join(self.head)
            text = (text + "\n" if text else "") + "\n".join(f"- {' '.join(item)}" for item in items)
        else:
            if self.clause:
                body = self._as_clause(body)
            parts = [*self.head, " ".join(body) + ("." if body and self.stop else "")]
            text = " ".join(p for p in parts if p)
        for end in self.endings:
            text = end(text, self)
        for wrap in self.wrappers:
            text = wrap(text, self)
        return text


def compose_reply(constraints: Sequence[Constraint], topic_words: Sequence[str] = ()) -> str | None:
    """A reply that satisfies every constraint in ``constraints``, or None when none is found.

    None for a set that conflicts (:func:`~drift_envs.user.constraints.base.compatible`) or holds a
    kind declared ``composable = False``. ``topic_words`` flavour the filler.
    """
    if not compatible(constraints) or not all(c.composable for c in constraints):
        return None
    draft = Draft()
    for c in sorted(constraints, key=lambda c: (c.compose_order, c.kind)):
        c.compose(draft)
    draft.fill(topic_words)
    lo, hi = draft.min_words, draft.max_words
    base = count_words(draft.render(0))
    start = max(0, lo - base, min(6, hi - base) if hi != math.inf else 6)
    # try the preferred filler length first, then its neighbours
    for extra in sorted(range(0, int(start) + 12), key=lambda e: (abs(e - start), e)):
        reply = draft.render(extra)
        if all(c.check(reply) for c in constraints):
            return reply
    return None
