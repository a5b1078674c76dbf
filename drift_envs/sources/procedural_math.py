"""The offline default task source: procedural math problems, a pure function of (seed, split, index).

Three kinds — integer arithmetic, linear equations, fraction arithmetic — whose answers come in
several written forms (``7``, ``-3/4``, ``\\frac{-3}{4}``, ``-0.75``), so answer checking is exercised
the way real models exercise it. Difficulty is a handful of knobs, with named presets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from drift_envs.core import Task
from drift_envs.sources.base import SourceConfig, TaskSource, register_source

__all__ = ["DIFFICULTY_PRESETS", "KINDS", "SPLITS", "ProceduralMath", "ProceduralMathConfig"]

KINDS = ("arithmetic", "linear", "fraction")
SPLITS = ("train", "test")
#: the first part of every task id, ``procedural-math/<seed>/<split>/<index>`` (records keep these ids)
ID_PREFIX = "procedural-math"

DIFFICULTY_PRESETS: dict[str, dict] = {
    # sums of two numbers in 0..5 (36 distinct problems): what the embedded tiny model learns in minutes
    "tiny": {"kinds": ("arithmetic",), "min_value": 0, "max_value": 5, "num_terms": 2, "operators": "+"},
    # single-step sums and differences of small numbers
    "easy": {"kinds": ("arithmetic",), "min_value": 0, "max_value": 9, "num_terms": 2, "operators": "+-"},
    "medium": {},
    "hard": {"min_value": 2, "max_value": 99, "num_terms": 4},
}


def difficulty_knobs(difficulty: str | dict | None) -> dict:
    """The knobs a ``difficulty`` names: a preset of :data:`DIFFICULTY_PRESETS`, a dict of knobs, or None."""
    if difficulty is None:
        return {}
    if isinstance(difficulty, str):
        if difficulty not in DIFFICULTY_PRESETS:
            raise ValueError(
                f"difficulty must be one of {sorted(DIFFICULTY_PRESETS)} or a dict, got {difficulty!r}"
            )
        return dict(DIFFICULTY_PRESETS[difficulty])
    if isinstance(difficulty, dict):
        return dict(difficulty)
    raise TypeError(f"difficulty must be a preset name or a dict, got {type(difficulty).__name__}")


@dataclass(frozen=True)
class ProceduralMathConfig(SourceConfig):
    """Knobs of the procedural math generator (besides ``seed``, ``split``, ``max_tasks``).

    Args:
        kinds: which problem kinds to draw from (uniformly): ``arithmetic``, ``linear``, ``fraction``.
        min_value, max_value: range of the operands (and of the unknown in linear equations).
        num_terms: operands per arithmetic expression (2 = ``a + b``).
        operators: operators arithmetic may use, out of ``+-*``.
        integer_solutions: linear equations always have integer solutions when True.
        size: number of tasks per split (indices ``0..size-1``; ``max_tasks`` caps it further).

    The train and test splits of one seed never share a task stream. :meth:`from_options` also takes
    ``difficulty`` (a preset name or a dict of these knobs), which explicit knobs override.
    """

    kinds: tuple[str, ...] = KINDS
    min_value: int = 1
    max_value: int = 20
    num_terms: int = 2
    operators: str = "+-*"
    integer_solutions: bool = False
    size: int = 100_000

    def __post_init__(self) -> None:
        # kinds arrive as a list from JSON/YAML env kwargs, or as one name
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        object.__setattr__(self, "kinds", kinds)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad knob."""
        super().validate()
        if self.split not in SPLITS:
            raise ValueError(f"procedural math split must be one of {SPLITS}, got {self.split!r}")
        if not self.kinds or any(k not in KINDS for k in self.kinds):
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {self.kinds!r}")
        if not self.min_value <= self.max_value:
            raise ValueError(f"min_value ({self.min_value}) must be <= max_value ({self.max_value})")
        if self.max_value < 1:
            raise ValueError(f"max_value must be >= 1, got {self.max_value}")
        if self.num_terms < 2:
            raise ValueError(f"num_terms must be >= 2, got {self.num_terms}")
        if not self.operators or set(self.operators) - set("+-*"):
            raise ValueError(f"operators must be a non-empty subset of '+-*', got {self.operators!r}")
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")

    @classmethod
    def from_options(cls, source: str, difficulty: str | dict | None = None, **options: Any) -> SourceConfig:
        """A validated config from ``difficulty`` (preset or dict) overridden by explicit knobs."""
        return super().from_options(source, **{**difficulty_knobs(difficulty), **options})


def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


@register_source("math", "procedural")
class ProceduralMath(TaskSource):
    """Procedural math tasks; ``source[i]`` is the same task on every machine for one (seed, split, i).

    ``ProceduralMath(difficulty="easy", split="train", max_value=7)``, or with a
    :class:`ProceduralMathConfig`. Task ids read ``procedural-math/<seed>/<split>/<index>``.
    """

    config_class = ProceduralMathConfig
    config: ProceduralMathConfig

    def __len__(self) -> int:
        return self.limit(self.config.size)

    def id_prefix(self) -> str:
        """``procedural-math/<seed>/<split>/``: the ids records on disk refer to."""
        return f"{ID_PREFIX}/{self.config.seed}/{self.config.split}/"

    def make_task(self, index: int) -> Task:
        c = self.config
        # str seeds hash with SHA-512 inside random.Random: stable across runs and machines
        rng = random.Random(f"drift-math:{c.seed}:{c.split}:{index}")
        kind = c.kinds[rng.randrange(len(c.kinds))]
        prompt, answer = getattr(self, f"_{kind}")(rng)
        return Task(
            task_id=self.task_id(index),
            prompt=prompt,
            answer=answer,
            meta={"kind": kind, "source": "procedural"},
        )

    def _value(self, rng: random.Random) -> int:
        return rng.randint(self.config.min_value, self.config.max_value)

    def _arithmetic(self, rng: random.Random) -> tuple[str, str]:
        terms = [str(self._value(rng))]
        for _ in range(self.config.num_terms - 1):
            terms += [rng.choice(self.config.operators), str(self._value(rng))]
        expression = " ".join(terms)
        # operands and operators are generated here, never user input: evaluating them is safe
        value = eval(expression, {"__builtins__": {}}, {})  # noqa: S307
        return f"Compute {expression}.", str(value)

    def _linear(self, rng: random.Random) -> tuple[str, str]:
        a = self._value(rng) * rng.choice((1, -1)) or 1
        b = self._value(rng) * rng.choice((1, -1))
        if self.config.integer_solutions or rng.random() < 0.5:
            x = Fraction(self._value(rng) * rng.choice((1, -1)))
            c = a * x + b
        else:
            c = Fraction(self._value(rng) * rng.choice((1, -1)))
            x = (c - b) / a
        lhs = f"{'' if a == 1 else '-' if a == -1 else a}x"
        lhs += f" + {b}" if b > 0 else f" - {-b}" if b < 0 else ""
        return f"Solve for x: {lhs} = {_fraction_text(Fraction(c))}.", _fraction_text(x)

    def _fraction(self, rng: random.Random) -> tuple[str, str]:
        hi = max(2, self.config.max_value)
        p, q = (
            Fraction(rng.randint(1, hi), rng.randint(2, hi)),
            Fraction(rng.randint(1, hi), rng.randint(2, hi)),
        )
        op = rng.choice(self.config.operators)
        value = p + q if op == "+" else p - q if op == "-" else p * q
        text = f"{p.numerator}/{p.denominator} {op} {q.numerator}/{q.denominator}"
        return f"Compute {text}. Give the answer as a fraction in lowest terms.", _fraction_text(value)
