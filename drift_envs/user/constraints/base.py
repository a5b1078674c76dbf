"""What every constraint kind shares: the :class:`Constraint` base class, the registry, specs.

A kind is one frozen dataclass registered with :func:`register_constraint`. It carries all its own
knowledge:

* checking: ``_evaluate(reply) -> Check`` (the verdict plus a JSON-able detail);
* texts: ``describe()`` (the instruction stated up front) and ``_corrections(persona, detail)``;
* drawing: ``sample(rng, ctx)`` and ``difficulty`` for the procedural task generator;
* conflicts: ``excludes`` (kinds it never holds with), :meth:`Constraint.fixed_words` and
  :meth:`Constraint.required_texts` (what it forces into every satisfying reply, which other kinds'
  conflict tests read), and ``_conflicts`` for value-dependent conflicts;
* composing: :meth:`Constraint.compose` adds its part to a :class:`~drift_envs.user.constraints.compose.Draft`
  so that :func:`~drift_envs.user.constraints.compose.compose_reply` can build a reply meeting a whole
  set. A kind that cannot say how to satisfy itself declares ``composable = False``; the task
  generator then refuses to draw it (it can still be used in task files).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from drift_envs.user.constraints.normalize import normalize_reply
from drift_envs.user.constraints.text import has_word

if TYPE_CHECKING:
    from drift_envs.user.constraints.compose import Draft

__all__ = [
    "CONSTRAINTS",
    "PERSONAS",
    "Check",
    "Constraint",
    "ConstraintSpecError",
    "SampleContext",
    "compatible",
    "constraint_from_dict",
    "register_constraint",
]

PERSONAS = ("precise", "terse", "vague")


class ConstraintSpecError(ValueError):
    """A constraint spec (dict from a task file or from code) is malformed; says which field and why."""


@dataclass(frozen=True)
class Check:
    """The result of one constraint on one reply: ``ok`` plus a JSON-able ``detail``."""

    ok: bool
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SampleContext:
    """What the task generator knows when it draws constraints for one request.

    ``topic_words`` are words a good answer would naturally use (candidates for required or
    forbidden words); ``list_items`` is how many items a list request asks for (0 when the request
    is not a list); ``summary`` is True for summaries of a given text.
    """

    topic_words: tuple[str, ...] = ("answer",)
    list_items: int = 0
    summary: bool = False


# ---- the base class and the registry ------------------------------------------------------------

CONSTRAINTS: dict[str, type[Constraint]] = {}


def register_constraint(cls: type[Constraint]) -> type[Constraint]:
    """Class decorator: make ``cls`` available under ``cls.kind`` in specs and the task generator.

    A kind must either implement :meth:`Constraint.compose` or declare ``composable = False``, so no
    kind is silently left out of the generator.
    """
    if not getattr(cls, "kind", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'kind'")
    if cls.kind in CONSTRAINTS and CONSTRAINTS[cls.kind] is not cls:
        raise ValueError(f"constraint kind {cls.kind!r} is already registered by {CONSTRAINTS[cls.kind]!r}")
    if cls.composable and cls.compose is Constraint.compose:
        raise TypeError(
            f"{cls.__name__} ({cls.kind!r}) implements no compose(): say how a reply satisfies it, or "
            "declare composable = False (the task generator then never draws it)"
        )
    CONSTRAINTS[cls.kind] = cls
    return cls


@dataclass(frozen=True)
class Constraint:
    """A checkable preference. Subclasses set ``kind`` and implement ``_evaluate`` and the texts.

    ``difficulty`` (``"easy"``, ``"medium"``, ``"hard"``) steers the procedural generator: easy
    constraints hold for many ordinary replies, so even a tiny model succeeds now and then.
    ``excludes`` lists kinds that can never hold together with this one.
    """

    kind: ClassVar[str] = ""
    difficulty: ClassVar[str] = "medium"
    excludes: ClassVar[frozenset[str]] = frozenset()

    # -- checking
    def evaluate(self, reply: str, *, normalized: bool = False) -> Check:
        """Check ``reply`` as a reader sees it (:func:`~drift_envs.user.constraints.normalize.normalize_reply`:
        look-alike letters, invisible characters and comma-like marks mapped); a reply without any word
        fails every constraint. ``normalized=True`` says the caller normalised it already (the env
        normalises each reply once, before all its checks)."""
        if not isinstance(reply, str):
            raise TypeError(f"{self.label()}: expected the reply as a str, got {type(reply).__name__}")
        if not normalized:
            reply = normalize_reply(reply)
        if not has_word(reply):
            return Check(False, {"empty": True})
        return self._evaluate(reply)

    def check(self, reply: str) -> bool:
        """True when ``reply`` satisfies the constraint."""
        return self.evaluate(reply).ok

    def _evaluate(self, reply: str) -> Check:
        raise NotImplementedError

    # -- texts
    def describe(self) -> str:
        """The instruction as a user states it up front, e.g. ``"Use at most 20 words."``."""
        raise NotImplementedError

    def _corrections(self, persona: str, detail: dict) -> list[str]:
        raise NotImplementedError

    def corrections(self, persona: str, detail: dict | None = None) -> list[str]:
        """Natural corrections a ``"precise"`` or ``"terse"`` user may say when the check failed.

        ``detail`` is the ``Check.detail`` of the failing reply; precise phrasings quote it (the
        actual word count, the offending word). An empty reply gets a request to answer at all.
        """
        if persona not in ("precise", "terse"):
            raise ValueError(f"corrections exist for personas 'precise' and 'terse', not {persona!r}")
        detail = dict(detail or {})
        if detail.get("empty"):
            if persona == "terse":
                return ["Empty reply. " + self.describe(), "Say something. " + self.describe()]
            return [
                "I didn't get any answer from you. " + self.describe(),
                "Your reply was empty. Please answer the request. " + self.describe(),
            ]
        return self._corrections(persona, detail)

    def label(self) -> str:
        """A short stable name such as ``max_words(n=20)``, used in ``info`` and logs."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.kind}({args})"

    # -- specs
    def params(self) -> dict:
        """The parameters as plain JSON values."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values}

    def to_dict(self) -> dict:
        """The JSON spec ``{"type": kind, **params}`` (inverse of :func:`constraint_from_dict`)."""
        return {"type": self.kind, **self.params()}

    # -- conflicts
    def conflicts_with(self, other: Constraint) -> bool:
        """True when this constraint and ``other`` can never both hold (symmetric)."""
        if self.kind == other.kind:
            return True
        if other.kind in self.excludes or self.kind in other.excludes:
            return True
        return self._conflicts(other) or other._conflicts(self)

    def _conflicts(self, other: Constraint) -> bool:
        """Value-dependent conflicts (e.g. a word limit below the number of bullets)."""
        return False

    # -- what it forces into a reply, and how to satisfy it
    #: False for a kind that cannot say how to satisfy itself: never drawn by the task generator
    composable: ClassVar[bool] = True
    #: where the kind's part goes when a reply is composed (lower first; see compose.Draft)
    compose_order: ClassVar[int] = 0

    def fixed_words(self) -> int:
        """Words every satisfying reply contains (a lower bound that word limits conflict with)."""
        return 0

    def required_texts(self) -> tuple[str, ...]:
        """Literal texts every satisfying reply contains (keywords, start and end phrases, ...)."""
        return ()

    def compose(self, draft: Draft) -> None:
        """Add this constraint's part to ``draft`` (a reply under construction)."""
        raise NotImplementedError(f"{type(self).__name__} cannot compose a reply (composable = False)")

    # -- sampling
    @classmethod
    def sample(cls, rng: random.Random, ctx: SampleContext) -> Constraint:
        """A random instance suited to the request described by ``ctx``."""
        return cls()

    # -- validation of a parsed spec
    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        pass


def check_positive_int(cls_name: str, name: str, value: Any) -> None:
    """Refuse a spec field that is not a positive int."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConstraintSpecError(f"{cls_name}.{name} must be a positive integer, got {value!r}")


def check_word_list(cls_name: str, name: str, value: Any) -> None:
    """Refuse a spec field that is not a non-empty tuple of words."""
    if not isinstance(value, tuple) or not value:
        raise ConstraintSpecError(f"{cls_name}.{name} must be a non-empty list of words, got {value!r}")
    for w in value:
        if not isinstance(w, str) or not has_word(w):
            raise ConstraintSpecError(f"{cls_name}.{name} must hold words, got {w!r}")


def check_phrase(cls_name: str, name: str, value: Any) -> None:
    """Refuse a spec field that is not a phrase (a word or more, no outer spaces)."""
    if not isinstance(value, str) or not has_word(value) or value != value.strip():
        raise ConstraintSpecError(
            f"{cls_name}.{name} must be a phrase with at least one word and no outer spaces, got {value!r}"
        )


def quote_list(items: Sequence[str]) -> str:
    """``"a"``, ``"a" and "b"``, ``"a", "b" and "c"``."""
    quoted = [f'"{w}"' for w in items]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


# ---- specs ----------------------------------------------------------------------------------------


def constraint_from_dict(
    spec: Any, *, where: str = "constraint", registry: dict[str, type[Constraint]] | None = None
) -> Constraint:
    """Build a constraint from its JSON spec ``{"type": kind, **params}``.

    ``where`` names the spec in error messages (e.g. ``"tasks.jsonl line 3, constraints[1]"``); every
    error is a :class:`ConstraintSpecError` that says which field is wrong and what is expected.
    ``registry`` maps the kinds accepted (default: every registered kind, :data:`CONSTRAINTS`).
    """
    registry = CONSTRAINTS if registry is None else registry
    if not isinstance(spec, dict):
        raise ConstraintSpecError(
            f'{where}: expected an object like {{"type": "max_words", "n": 20}}, got {type(spec).__name__}'
        )
    kind = spec.get("type")
    if kind not in registry:
        raise ConstraintSpecError(
            f"{where}.type: unknown constraint type {kind!r}; known: {sorted(registry)}"
        )
    cls = registry[kind]
    names = [f.name for f in fields(cls)]
    params = {k: v for k, v in spec.items() if k != "type"}
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ConstraintSpecError(
            f"{where}.{unknown[0]}: unknown field for {kind!r}; expected {names or 'none'}"
        )
    missing = [n for n in names if n not in params]
    if missing:
        raise ConstraintSpecError(f"{where}.{missing[0]}: missing field for {kind!r}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        return cls(**params)
    except ConstraintSpecError as exc:
        field_name = next((n for n in names if f".{n} " in str(exc)), None)
        loc = f"{where}.{field_name}" if field_name else where
        raise ConstraintSpecError(f"{loc}: {exc}") from None


def compatible(constraints: Iterable[Constraint]) -> bool:
    """True when no two of ``constraints`` conflict (see :meth:`Constraint.conflicts_with`)."""
    items = list(constraints)
    return all(not a.conflicts_with(b) for i, a in enumerate(items) for b in items[i + 1 :])
