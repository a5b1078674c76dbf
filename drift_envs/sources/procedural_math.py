"""The offline default task source: procedural math problems, a pure function of (seed, split, index).

Three kinds — integer arithmetic, linear equations, fraction arithmetic — whose answers come in
several written forms (``7``, ``-3/4``, ``\\frac{-3}{4}``, ``-0.75``), so answer checking is exercised
the way real models exercise it. Difficulty is a handful of knobs, with named presets.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from fractions import Fraction

from drift_envs.core import Task

__all__ = ["DIFFICULTY_PRESETS", "KINDS", "ProceduralMath", "ProceduralMathConfig"]

KINDS = ("arithmetic", "linear", "fraction")


@dataclass(frozen=True)
class ProceduralMathConfig:
    """Knobs of the procedural math generator.

    Args:
        kinds: which problem kinds to draw from (uniformly): ``arithmetic``, ``linear``, ``fraction``.
        min_value, max_value: range of the operands (and of the unknown in linear equations).
        num_terms: operands per arithmetic expression (2 = ``a + b``).
        operators: operators arithmetic may use, out of ``+-*``.
        integer_solutions: linear equations always have integer solutions when True.
        size: number of tasks per split (indices ``0..size-1``).
        seed: generator seed; the train and test splits of one seed never share a task stream.
    """

    kinds: tuple[str, ...] = KINDS
    min_value: int = 1
    max_value: int = 20
    num_terms: int = 2
    operators: str = "+-*"
    integer_solutions: bool = False
    size: int = 100_000
    seed: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad knob."""
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


DIFFICULTY_PRESETS: dict[str, dict] = {
    # sums of two numbers in 0..5 (36 distinct problems): what the embedded tiny model learns in minutes
    "tiny": {"kinds": ("arithmetic",), "min_value": 0, "max_value": 5, "num_terms": 2, "operators": "+"},
    # single-step sums and differences of small numbers
    "easy": {"kinds": ("arithmetic",), "min_value": 0, "max_value": 9, "num_terms": 2, "operators": "+-"},
    "medium": {},
    "hard": {"min_value": 2, "max_value": 99, "num_terms": 4},
}


def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


class ProceduralMath:
    """An indexable source of procedural math tasks; ``source[i]`` is the same task on every machine."""

    def __init__(self, config: ProceduralMathConfig | None = None, split: str = "test", **overrides) -> None:
        config = config or ProceduralMathConfig()
        if overrides:
            known = {f.name for f in fields(ProceduralMathConfig)}
            unknown = set(overrides) - known
            if unknown:
                raise ValueError(
                    f"unknown procedural math option(s) {sorted(unknown)}; known: {sorted(known)}"
                )
            if "kinds" in overrides and isinstance(overrides["kinds"], (list, str)):
                kinds = overrides["kinds"]
                overrides["kinds"] = (kinds,) if isinstance(kinds, str) else tuple(kinds)
            config = ProceduralMathConfig(**{**asdict(config), **overrides})
        config.validate()
        self.config = config
        self.split = split

    @classmethod
    def from_difficulty(
        cls, difficulty: str | dict | None, split: str = "test", **overrides
    ) -> ProceduralMath:
        """A source from a preset name (``easy``/``medium``/``hard``) or a dict of knobs, plus overrides."""
        if difficulty is None:
            knobs: dict = {}
        elif isinstance(difficulty, str):
            if difficulty not in DIFFICULTY_PRESETS:
                raise ValueError(
                    f"difficulty must be one of {sorted(DIFFICULTY_PRESETS)} or a dict, got {difficulty!r}"
                )
            knobs = dict(DIFFICULTY_PRESETS[difficulty])
        elif isinstance(difficulty, dict):
            knobs = dict(difficulty)
        else:
            raise TypeError(f"difficulty must be a preset name or a dict, got {type(difficulty).__name__}")
        return cls(None, split, **{**knobs, **overrides})

    def __len__(self) -> int:
        return self.config.size

    def __getitem__(self, index: int) -> Task:
        if not 0 <= index < len(self):
            raise IndexError(f"procedural math index {index} out of range 0..{len(self) - 1}")
        c = self.config
        # str seeds hash with SHA-512 inside random.Random: stable across runs and machines
        rng = random.Random(f"drift-math:{c.seed}:{self.split}:{index}")
        kind = c.kinds[rng.randrange(len(c.kinds))]
        prompt, answer = getattr(self, f"_{kind}")(rng)
        return Task(
            task_id=f"procedural-math/{c.seed}/{self.split}/{index}",
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
