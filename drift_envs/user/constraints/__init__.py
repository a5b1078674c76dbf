"""Checkable preferences of a simulated user: the constraint library of ``drift/UserCorrection-v0``.

Each constraint kind is one small frozen dataclass that carries everything about it (see
:mod:`~drift_envs.user.constraints.base`):

* ``check(reply) -> bool`` and ``evaluate(reply) -> Check`` (the verdict plus a JSON-able detail such
  as the word count that broke a limit),
* ``describe()``: the instruction as a user would state it up front,
* ``corrections(persona, detail)``: several natural ways a ``"precise"`` or ``"terse"`` user says what
  is wrong (the ``"vague"`` persona never uses them; see :mod:`drift_envs.user.simulator`),
* ``to_dict()`` / :func:`constraint_from_dict`: the JSON spec used in JSONL task files,
* ``sample(rng, ctx)``: a random instance for the procedural task generator,
* ``fixed_words()``/``required_texts()``/``excludes``: what it forces into a reply, which other kinds'
  conflict tests read (:meth:`Constraint.conflicts_with`),
* ``compose(draft)``: its part of a reply that meets a whole set (:func:`compose_reply`, the env's
  oracle and the generator's proof that a drawn set is satisfiable). A kind that cannot say how to
  satisfy itself declares ``composable = False`` and is never drawn.

A new kind is one class with ``@register_constraint``. The kinds live by family: ``length``
(words, sentences), ``keywords`` (required, forbidden, repeated words), ``case``, ``structure``
(bullets, JSON, quotes, title, postscript, one line), ``start_end``, ``punctuation`` (commas, digits,
number words) and ``markup`` (highlights, placeholders).

The inventory follows the kinds of verifiable instructions IFEval popularised, re-thought for a user
who corrects a chat model. Every constraint fails on a reply with no word in it, so an empty reply
never satisfies a task. Each kind's docstring names the IFEval instruction with the same meaning
(lm-eval's ``lm_eval/tasks/ifeval/instructions.py``) and every deliberate difference from it;
``benchmarks/constraint_agreement.py`` measures the agreement per kind on generated replies.
"""

from drift_envs.user.constraints.base import (
    CONSTRAINTS,
    PERSONAS,
    Check,
    Constraint,
    ConstraintSpecError,
    SampleContext,
    compatible,
    constraint_from_dict,
    register_constraint,
)
from drift_envs.user.constraints.case import Lowercase, MinCapitalWords, Uppercase
from drift_envs.user.constraints.compose import Draft, compose_reply
from drift_envs.user.constraints.keywords import ForbiddenWords, IncludeKeywords, KeywordFrequency
from drift_envs.user.constraints.length import MaxSentences, MaxWords, MinWords
from drift_envs.user.constraints.markup import HighlightedSections, Placeholders
from drift_envs.user.constraints.punctuation import NoCommas, NoDigits, NumbersAsDigits
from drift_envs.user.constraints.start_end import EndsWith, StartsWith
from drift_envs.user.constraints.structure import (
    BulletCount,
    JsonObject,
    Postscript,
    Quotation,
    SingleLine,
    Title,
)
from drift_envs.user.constraints.text import count_sentences, count_words, sentences, words

__all__ = [
    "CONSTRAINTS",
    "PERSONAS",
    "BulletCount",
    "Check",
    "Constraint",
    "ConstraintSpecError",
    "Draft",
    "EndsWith",
    "ForbiddenWords",
    "HighlightedSections",
    "IncludeKeywords",
    "JsonObject",
    "KeywordFrequency",
    "Lowercase",
    "MaxSentences",
    "MaxWords",
    "MinCapitalWords",
    "MinWords",
    "NoCommas",
    "NoDigits",
    "NumbersAsDigits",
    "Placeholders",
    "Postscript",
    "Quotation",
    "SampleContext",
    "SingleLine",
    "StartsWith",
    "Title",
    "Uppercase",
    "compatible",
    "compose_reply",
    "constraint_from_dict",
    "count_sentences",
    "count_words",
    "register_constraint",
    "sentences",
    "words",
]
