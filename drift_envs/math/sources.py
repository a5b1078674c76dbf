"""Math task sources for MathFeedback: the ``file`` source and its schema registry.

``dataset=`` names resolve through :func:`drift_envs.sources.make_source` with kind ``"math"``:
``None``/``"procedural"`` is :class:`~drift_envs.sources.ProceduralMath`; a local
``.jsonl``/``.json``/``.parquet`` file, a dataset folder or a hub id is :class:`FileMathSource`.

A file's rows follow one schema (detected from the fields of the first row, or named with ``schema=``):

- ``gsm8k``: ``question``, ``answer`` whose last line is ``#### N``
- ``math``: ``problem``, ``answer`` (MATH, MATH-500; ``solution`` with ``\\boxed{}`` when ``answer`` is absent:
  its box, or with several boxes the solution as written, which math-verify reads as all of them)
- ``metamath``: ``query``, ``response`` ending in ``The answer is: X`` (MetaMathQA)
- ``theoremqa``: ``Question``, ``Answer``, ``Answer_type`` (TheoremQA; typed answers, see :mod:`drift_envs.math.theoremqa`)
- ``generic``: ``problem`` (or ``question``/``prompt``), ``answer``

A new schema is one adapter (a row -> ``(problem, gold answer)``) under :func:`math_schema`, with a
test of the fields that tell it apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from drift_envs.core import Task
from drift_envs.math.answers import find_boxed
from drift_envs.sources import (
    DataError,
    FileSourceConfig,
    Row,
    TaskSource,
    load_rows,
    register_source,
    require_field,
    require_location,
)

__all__ = ["MATH_SCHEMAS", "FileMathConfig", "FileMathSource", "MathSchema", "detect_schema", "math_schema"]

_ID_FIELDS = ("unique_id", "task_id", "id", "idx")


@dataclass(frozen=True)
class MathSchema:
    """How rows of one schema become tasks.

    Args:
        name: what ``schema=`` calls it.
        adapt: a row -> ``(problem, gold answer)``; raises :class:`DataError` naming the row and field.
        detect: whether a row's fields (``row.data``) follow this schema.
        expects: the fields, in words, for the error when no schema fits.
        fallback: detected only when no other schema fits (a loose test such as ``generic``'s).
        meta_fields: row fields copied into ``Task.meta`` when present.
    """

    name: str
    adapt: Callable[[Row], tuple[str, str]]
    detect: Callable[[dict], bool]
    expects: str
    fallback: bool = False
    meta_fields: tuple[str, ...] = ("level", "subject", "type")


#: schema name -> :class:`MathSchema`, in detection order (fallbacks are tried last)
MATH_SCHEMAS: dict[str, MathSchema] = {}


def math_schema(
    name: str,
    *,
    detect: Callable[[dict], bool],
    expects: str,
    fallback: bool = False,
    meta_fields: tuple[str, ...] = ("level", "subject", "type"),
) -> Callable[[Callable[[Row], tuple[str, str]]], Callable[[Row], tuple[str, str]]]:
    """Register the decorated adapter as schema ``name`` of math files (see :class:`MathSchema`)."""

    def register(adapt: Callable[[Row], tuple[str, str]]) -> Callable[[Row], tuple[str, str]]:
        MATH_SCHEMAS[name] = MathSchema(name, adapt, detect, expects, fallback, meta_fields)
        return adapt

    return register


def detect_schema(row: Row) -> str:
    """The schema a row follows, judged from its fields; :class:`DataError` when none fits."""
    ordered = sorted(MATH_SCHEMAS.values(), key=lambda s: s.fallback)  # stable: registration order
    for schema in ordered:
        if schema.detect(row.data):
            return schema.name
    raise DataError(
        f"{row.where}: cannot tell the schema from fields {sorted(row.data)}; expected "
        + ", ".join(s.expects for s in ordered)
    )


@math_schema(
    "gsm8k",
    detect=lambda d: "question" in d and isinstance(d.get("answer"), str) and "####" in d["answer"],
    expects="GSM8K (question, answer with '#### N')",
)
def _gsm8k(row: Row) -> tuple[str, str]:
    answer = require_field(row, "answer")
    if "####" not in answer:
        raise DataError(f"{row.where}: field 'answer' has no '#### N' final line (GSM8K schema)")
    return require_field(row, "question"), answer.rsplit("####", 1)[1].strip().replace(",", "")


_METAMATH_RE = re.compile(r"The answer is:?\s*(.+?)\s*$", re.DOTALL)


@math_schema(
    "metamath", detect=lambda d: "query" in d and "response" in d, expects="MetaMathQA (query, response)"
)
def _metamath(row: Row) -> tuple[str, str]:
    m = _METAMATH_RE.search(require_field(row, "response"))
    if not m:
        raise DataError(
            f"{row.where}: field 'response' does not end in 'The answer is: X' (MetaMathQA schema)"
        )
    return require_field(row, "query"), m.group(1).strip()


@math_schema(
    "math",
    detect=lambda d: "problem" in d and ("answer" in d or "solution" in d),
    expects="MATH (problem, answer)",
)
def _math(row: Row) -> tuple[str, str]:
    problem = require_field(row, "problem")
    if row.data.get("answer") not in (None, ""):
        return problem, str(row.data["answer"]).strip()
    solution = require_field(row, "solution")
    boxed = find_boxed(solution)
    if not boxed:
        raise DataError(f"{row.where}: no 'answer' field and no \\boxed{{}} in 'solution' (MATH schema)")
    if len(boxed) > 1:  # "\boxed{1} and \boxed{-2}": the gold is all of them, as math-verify reads the text
        return problem, solution.strip()
    return problem, boxed[-1][1].strip()


_PROBLEM_FIELDS = ("problem", "question", "prompt")


@math_schema(
    "generic",
    detect=lambda d: any(k in d for k in _PROBLEM_FIELDS) and "answer" in d,
    expects="generic (problem, answer)",
    fallback=True,
)
def _generic(row: Row) -> tuple[str, str]:
    key = next((k for k in _PROBLEM_FIELDS if k in row.data), "problem")
    answer = require_field(row, "answer", (str, int, float))
    return require_field(row, key), str(answer).strip()


@dataclass(frozen=True)
class FileMathConfig(FileSourceConfig):
    """Where the rows of a :class:`FileMathSource` come from: ``path`` (a local file, used whole, a
    dataset folder or a hub id), ``schema`` (one of :data:`MATH_SCHEMAS`, detected when None) and
    ``dataset_name`` (``"main"`` for ``openai/gsm8k``); see
    :class:`~drift_envs.sources.base.FileSourceConfig`."""

    schemas: ClassVar[Collection[str]] = MATH_SCHEMAS  # the registry itself: schemas added later count


@register_source("math", "file")
class FileMathSource(TaskSource):
    """Math tasks from a local file or a hub dataset; every row kept is validated when the source is built.

    A row's id is its ``unique_id``/``task_id``/``id``/``idx`` field, else ``<file stem>/<split>/<row>``.
    """

    config_class = FileMathConfig
    config: FileMathConfig

    def __init__(self, config: FileMathConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        c = self.config
        assert c.path is not None  # validate() refused None
        require_location(c.path, self.kind)
        rows = load_rows(c.path, split=c.split, name=c.dataset_name)
        if not rows:
            raise DataError(f"{c.path}: no rows (split {c.split!r})")
        rows = rows[: c.max_tasks]  # rows past max_tasks are neither adapted nor checked
        self.schema = MATH_SCHEMAS[c.schema or detect_schema(rows[0])]
        label = Path(c.path).stem if Path(c.path).suffix else c.path
        tasks: list[Task] = []
        seen: set[str] = set()
        for i, row in enumerate(rows):
            problem, answer = self.schema.adapt(row)
            if not answer:
                raise DataError(f"{row.where}: empty gold answer ({self.schema.name} schema)")
            raw_id = next((row.data[k] for k in _ID_FIELDS if row.data.get(k) not in (None, "")), None)
            task_id = str(raw_id) if raw_id is not None else f"{label}/{c.split}/{i}"
            if task_id in seen:
                raise DataError(f"{row.where}: duplicate task id {task_id!r}")
            seen.add(task_id)
            meta = {k: row.data[k] for k in self.schema.meta_fields if k in row.data}
            tasks.append(Task(task_id, problem, answer, {"source": label, **meta}))
        self.tasks = tasks


# schemas kept in their own modules register on import (they use math_schema, defined above)
import drift_envs.math.theoremqa  # noqa: E402, F401  (the "theoremqa" schema)
