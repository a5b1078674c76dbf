"""Task sources of ``drift/MultipleChoice-v0`` (kind ``"choice"``): a procedural generator and files.

Every task is a :class:`~drift_envs.core.Task` whose ``answer`` is the correct letter and whose
``meta`` holds ``options`` (the option texts, in the order shown), ``answer_index`` and the schema.

- ``procedural`` (the offline default): arithmetic, largest/smallest-number and which-is-prime
  questions with plausible distractors, a pure function of (seed, split, index). The train and test
  splits are disjoint by content: an item belongs to the split its question and option set hash to.
- ``file``: a local ``.jsonl``/``.json``/``.parquet`` file or a Hugging Face dataset id, in one of the
  schemas of :data:`SCHEMAS` (detected from the fields of the first row, or forced with ``schema=``):

  ==============  ===========================================================================
  ``gpqa``        ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3`` (GPQA). The options are
                  shuffled, deterministically per item (its ``Record ID`` or question) and seed.
  ``mmlu``        ``question``, ``choices``, ``answer`` (index 0.., or a letter): MMLU
  ``mmlu_redux``  MMLU's fields plus ``error_type`` (MMLU-Redux), which is kept in ``meta``
  ``mmlu_pro``    ``question``, ``options``, ``answer`` (letter) and/or ``answer_index`` (MMLU-Pro)
  ==============  ===========================================================================
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection
from dataclasses import dataclass
from typing import ClassVar

from drift_envs.choice.answers import LETTERS, letter_of
from drift_envs.core import Task
from drift_envs.sources.base import FileSourceConfig, SourceConfig, TaskSource, register_source
from drift_envs.sources.records import DataError, Row, load_rows, require_field, require_location

__all__ = [
    "KINDS",
    "SCHEMAS",
    "ChoiceFile",
    "ChoiceFileConfig",
    "ProceduralChoice",
    "ProceduralChoiceConfig",
    "choice_task",
    "detect_schema",
]

KINDS = ("arithmetic", "extreme", "prime")
SCHEMAS = ("gpqa", "mmlu", "mmlu_redux", "mmlu_pro")
PROCEDURAL_SPLITS = ("train", "test")


def choice_task(task_id: str, question: str, options: list[str], answer_index: int, **meta) -> Task:
    """A multiple-choice task: ``answer`` is the letter of ``options[answer_index]``."""
    return Task(
        task_id=task_id,
        prompt=question,
        answer=letter_of(answer_index),
        meta={"options": list(options), "answer_index": answer_index, **meta},
    )


# ---- procedural ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProceduralChoiceConfig(SourceConfig):
    """Knobs of the procedural multiple-choice generator.

    Args:
        kinds: question kinds to draw from (uniformly): ``arithmetic`` (``What is 17 + 25?``),
            ``extreme`` (which number is the largest/smallest), ``prime`` (which number is prime).
        num_options: options per question (2..10).
        max_value: largest operand / option value (at least 10).
        size: tasks per split.
    """

    kinds: tuple[str, ...] = KINDS
    num_options: int = 4
    max_value: int = 50
    size: int = 100_000

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad knob."""
        super().validate()
        kinds = tuple(self.kinds) if isinstance(self.kinds, (list, tuple)) else (self.kinds,)
        if not kinds or any(k not in KINDS for k in kinds):
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {self.kinds!r}")
        if not isinstance(self.num_options, int) or not 2 <= self.num_options <= len(LETTERS):
            raise ValueError(f"num_options must be an int in 2..{len(LETTERS)}, got {self.num_options!r}")
        if not isinstance(self.max_value, int) or self.max_value < 10:
            raise ValueError(f"max_value must be an int >= 10, got {self.max_value!r}")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a positive int, got {self.size!r}")
        if self.split not in PROCEDURAL_SPLITS:
            raise ValueError(
                f"the procedural choice source has splits {PROCEDURAL_SPLITS}, got {self.split!r}"
            )


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def _content_split(question: str, options: list[str]) -> str:
    """The split an item belongs to, from its question and its option *set* (the order is irrelevant)."""
    key = question + "\x00" + "\x00".join(sorted(options))
    return PROCEDURAL_SPLITS[hashlib.sha256(key.encode()).digest()[0] & 1]


@register_source("choice", "procedural")
class ProceduralChoice(TaskSource):
    """Procedural multiple-choice questions; ``source[i]`` is the same task on every machine.

    Item ``i`` of a split is the first draw of ``Random("drift-choice:<seed>:<i>:<attempt>")``,
    ``attempt = 0, 1, ...``, whose content hashes to that split, so the splits never share a question.
    """

    config_class = ProceduralChoiceConfig

    def __len__(self) -> int:
        return self.limit(self.config.size)

    def make_task(self, index: int) -> Task:
        c = self.config
        kinds = tuple(c.kinds) if isinstance(c.kinds, (list, tuple)) else (c.kinds,)
        for attempt in range(256):
            rng = random.Random(f"drift-choice:{c.seed}:{index}:{attempt}")
            kind = kinds[rng.randrange(len(kinds))]
            question, correct, distractors = getattr(self, f"_{kind}")(rng)
            options = [correct, *distractors]
            if _content_split(question, options) != c.split:
                continue
            rng.shuffle(options)
            return choice_task(self.task_id(index), question, options, options.index(correct), kind=kind)
        raise RuntimeError(f"no {c.split} item found for index {index} in 256 draws")  # p = 2**-256

    def _distinct(
        self, rng: random.Random, correct: int, candidates: list[int], lo: int, hi: int
    ) -> list[str]:
        """``num_options - 1`` distinct wrong values: the plausible ``candidates`` first, then random ones."""
        chosen: list[int] = []
        pool = [v for v in dict.fromkeys(candidates) if v != correct]
        rng.shuffle(pool)
        for v in pool:
            if len(chosen) == self.config.num_options - 1:
                break
            chosen.append(v)
        while len(chosen) < self.config.num_options - 1:
            v = rng.randint(lo, hi)
            if v != correct and v not in chosen:
                chosen.append(v)
        return [str(v) for v in chosen]

    def _arithmetic(self, rng: random.Random) -> tuple[str, str, list[str]]:
        m = self.config.max_value
        a, b = rng.randint(1, m), rng.randint(1, m)
        ops = {"+": a + b, "-": a - b, "*": a * b}
        op = rng.choice(list(ops))
        correct = ops[op]
        near = [correct + d for d in (1, -1, 2, -2, 10, -10)] + [v for k, v in ops.items() if k != op]
        spread = max(10, abs(correct))
        return (
            f"What is {a} {op} {b}?",
            str(correct),
            self._distinct(rng, correct, near, correct - spread, correct + spread),
        )

    def _extreme(self, rng: random.Random) -> tuple[str, str, list[str]]:
        values = rng.sample(range(1, self.config.max_value * 2 + 1), self.config.num_options)
        word, pick = rng.choice((("largest", max), ("smallest", min)))
        correct = pick(values)
        return (
            f"Which of these numbers is the {word}?",
            str(correct),
            [str(v) for v in values if v != correct],
        )

    def _prime(self, rng: random.Random) -> tuple[str, str, list[str]]:
        hi = max(self.config.max_value, 12 * self.config.num_options)
        correct = rng.choice([n for n in range(2, hi + 1) if _is_prime(n)])
        composites = rng.sample(
            [n for n in range(4, hi + 1) if not _is_prime(n)], self.config.num_options - 1
        )
        return "Which of these numbers is prime?", str(correct), [str(v) for v in composites]


# ---- files and hub datasets ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChoiceFileConfig(FileSourceConfig):
    """A local file or a hub dataset of multiple-choice rows: ``path``, ``schema`` (one of
    :data:`SCHEMAS`; detected from the first row's fields when None) and ``dataset_name`` (the hub
    config: ``gpqa_diamond``, a MMLU subject, ...); see :class:`~drift_envs.sources.base.FileSourceConfig`."""

    schemas: ClassVar[Collection[str]] = SCHEMAS


def detect_schema(row: Row) -> str:
    """The schema of a row, from its fields; :class:`DataError` naming the fields when none fits."""
    keys = set(row.data)
    if "Correct Answer" in keys and any(k.startswith("Incorrect Answer") for k in keys):
        return "gpqa"
    if "options" in keys and ("answer_index" in keys or "answer" in keys):
        return "mmlu_pro"
    if "choices" in keys and "answer" in keys:
        return "mmlu_redux" if "error_type" in keys else "mmlu"
    raise DataError(
        f"{row.where}: cannot tell the multiple-choice schema from fields {sorted(keys)}; expected "
        "GPQA (Question, Correct Answer, Incorrect Answer 1..3), MMLU (question, choices, answer) or "
        "MMLU-Pro (question, options, answer/answer_index); pass schema= to force one"
    )


def _option_list(row: Row, field: str) -> list[str]:
    value = require_field(row, field, (list, tuple))
    options = [str(o).strip() for o in value]
    if len(options) < 2 or any(not o for o in options):
        raise DataError(f"{row.where}: field {field!r} needs at least two non-empty options, got {value!r}")
    if len(options) > len(LETTERS):
        raise DataError(f"{row.where}: field {field!r} has {len(options)} options; at most {len(LETTERS)}")
    return options


def _index_from(row: Row, field: str, n: int) -> int:
    """An answer index from an int, a digit string or a letter; :class:`DataError` when out of range."""
    value = row.data.get(field)
    if isinstance(value, bool) or value is None:
        raise DataError(f"{row.where}: field {field!r} should be an option index or letter, got {value!r}")
    if isinstance(value, str):
        s = value.strip().strip("()").strip()
        if s.isdigit():
            index = int(s)
        elif len(s) == 1 and s.upper() in LETTERS:
            index = LETTERS.index(s.upper())
        else:
            raise DataError(
                f"{row.where}: field {field!r} should be an option index or letter, got {value!r}"
            )
    else:
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise DataError(
                f"{row.where}: field {field!r} should be an option index or letter, got {value!r}"
            ) from None
    if not 0 <= index < n:
        raise DataError(f"{row.where}: field {field!r} = {value!r} is out of range for {n} options")
    return index


def _row_id(row: Row, *fields: str) -> str | None:
    for f in fields:
        v = row.data.get(f)
        if v is not None and str(v).strip():
            return str(v).strip()
    return None


def _gpqa(row: Row, seed: int) -> tuple[str, list[str], int, dict]:
    question = require_field(row, "Question").strip()
    correct = str(require_field(row, "Correct Answer")).strip()
    wrong = [
        str(row.data[k]).strip()
        for k in sorted(k for k in row.data if k.startswith("Incorrect Answer"))
        if row.data[k] is not None and str(row.data[k]).strip()
    ]
    if not wrong:
        raise DataError(f"{row.where}: no non-empty 'Incorrect Answer N' field")
    options = [correct, *wrong]
    # GPQA lists the correct answer first: shuffle, deterministically per item, so position says nothing
    key = _row_id(row, "Record ID", "id") or question
    rng = random.Random(f"drift-choice-gpqa:{seed}:{key}")
    order = list(range(len(options)))
    rng.shuffle(order)
    meta = {k: row.data[k] for k in ("Subdomain", "High-level domain") if row.data.get(k) is not None}
    return question, [options[i] for i in order], order.index(0), meta


def _mmlu(row: Row, seed: int) -> tuple[str, list[str], int, dict]:
    question = require_field(row, "question").strip()
    options = _option_list(row, "choices")
    index = _index_from(row, "answer", len(options))
    meta = {k: row.data[k] for k in ("subject", "error_type") if row.data.get(k) is not None}
    return question, options, index, meta


def _mmlu_pro(row: Row, seed: int) -> tuple[str, list[str], int, dict]:
    question = require_field(row, "question").strip()
    options = _option_list(row, "options")
    by_index = (
        _index_from(row, "answer_index", len(options)) if row.data.get("answer_index") is not None else None
    )
    by_letter = _index_from(row, "answer", len(options)) if row.data.get("answer") is not None else None
    if by_index is None and by_letter is None:
        raise DataError(f"{row.where}: needs 'answer' (a letter) or 'answer_index'")
    if by_index is not None and by_letter is not None and by_index != by_letter:
        raise DataError(
            f"{row.where}: 'answer' {row.data['answer']!r} and 'answer_index' {row.data['answer_index']!r} disagree"
        )
    meta = {k: row.data[k] for k in ("category", "src") if row.data.get(k) is not None}
    return question, options, by_index if by_index is not None else by_letter, meta


_ADAPTERS = {"gpqa": _gpqa, "mmlu": _mmlu, "mmlu_redux": _mmlu, "mmlu_pro": _mmlu_pro}
_ID_FIELDS = {
    "gpqa": ("Record ID", "id"),
    "mmlu": ("id", "question_id"),
    "mmlu_redux": ("id", "question_id"),
    "mmlu_pro": ("question_id", "id"),
}


@register_source("choice", "file")
class ChoiceFile(TaskSource):
    """Multiple-choice rows from a local file or a hub dataset, adapted by schema (see the module)."""

    config_class = ChoiceFileConfig

    def __init__(self, config: ChoiceFileConfig | None = None, **options) -> None:
        super().__init__(config, **options)
        c = self.config
        require_location(str(c.path), self.kind)  # a misspelt source name is not sent to the hub
        rows = load_rows(str(c.path), c.split, c.dataset_name)
        if not rows:
            raise DataError(f"{c.path}: no rows (split {c.split!r})")
        rows = rows[: c.max_tasks]  # rows past max_tasks are neither adapted nor checked
        self.schema = c.schema or detect_schema(rows[0])
        adapt = _ADAPTERS[self.schema]
        ids = [_row_id(row, *_ID_FIELDS[self.schema]) for row in rows]
        # the rows' own ids when every row has a distinct one, else positions (stable for a fixed file)
        if None in ids or len(set(ids)) != len(ids):
            ids = [str(i) for i in range(len(rows))]
        tasks = []
        for row, row_id in zip(rows, ids, strict=True):
            question, opts, index, meta = adapt(row, c.seed)
            tasks.append(
                choice_task(
                    f"{self.schema}/{c.split}/{row_id}", question, opts, index, schema=self.schema, **meta
                )
            )
        self.tasks = tasks
