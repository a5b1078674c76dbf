"""Math task sources for MathFeedback: schema adapters over rows from files or the hub.

Schemas (detected from the fields of the first row, or named with ``schema=``):

- ``gsm8k``: ``question``, ``answer`` whose last line is ``#### N``
- ``math``: ``problem``, ``answer`` (MATH, MATH-500; ``solution`` with ``\\boxed{}`` when ``answer`` is absent)
- ``metamath``: ``query``, ``response`` ending in ``The answer is: X`` (MetaMathQA)
- ``generic``: ``problem`` (or ``question``/``prompt``), ``answer``
"""

from __future__ import annotations

import re
from pathlib import Path

from drift_envs.core import Task
from drift_envs.math.answers import find_boxed
from drift_envs.sources import DataError, ProceduralMath, Row, load_rows, require_field

__all__ = ["SCHEMAS", "FileMathSource", "detect_schema", "make_math_source"]

SCHEMAS = ("gsm8k", "math", "metamath", "generic")
_ID_FIELDS = ("unique_id", "task_id", "id", "idx")


def detect_schema(row: Row) -> str:
    """The schema a row follows, judged from its fields; :class:`DataError` when none fits."""
    d = row.data
    if "question" in d and isinstance(d.get("answer"), str) and "####" in d["answer"]:
        return "gsm8k"
    if "query" in d and "response" in d:
        return "metamath"
    if "problem" in d and ("answer" in d or "solution" in d):
        return "math"
    if any(k in d for k in ("problem", "question", "prompt")) and "answer" in d:
        return "generic"
    raise DataError(
        f"{row.where}: cannot tell the schema from fields {sorted(d)}; expected GSM8K (question, answer with "
        f"'#### N'), MATH (problem, answer), MetaMathQA (query, response) or generic (problem, answer)"
    )


def _gsm8k(row: Row) -> tuple[str, str]:
    answer = require_field(row, "answer")
    if "####" not in answer:
        raise DataError(f"{row.where}: field 'answer' has no '#### N' final line (GSM8K schema)")
    return require_field(row, "question"), answer.rsplit("####", 1)[1].strip().replace(",", "")


def _math(row: Row) -> tuple[str, str]:
    problem = require_field(row, "problem")
    if row.data.get("answer") not in (None, ""):
        return problem, str(row.data["answer"]).strip()
    boxed = find_boxed(require_field(row, "solution"))
    if not boxed:
        raise DataError(f"{row.where}: no 'answer' field and no \\boxed{{}} in 'solution' (MATH schema)")
    return problem, boxed[-1][1].strip()


_METAMATH_RE = re.compile(r"The answer is:?\s*(.+?)\s*$", re.DOTALL)


def _metamath(row: Row) -> tuple[str, str]:
    m = _METAMATH_RE.search(require_field(row, "response"))
    if not m:
        raise DataError(
            f"{row.where}: field 'response' does not end in 'The answer is: X' (MetaMathQA schema)"
        )
    return require_field(row, "query"), m.group(1).strip()


def _generic(row: Row) -> tuple[str, str]:
    key = next(k for k in ("problem", "question", "prompt") if k in row.data)
    answer = require_field(row, "answer", (str, int, float))
    return require_field(row, key), str(answer).strip()


_ADAPTERS = {"gsm8k": _gsm8k, "math": _math, "metamath": _metamath, "generic": _generic}


class FileMathSource:
    """Math tasks from a local file or a hub dataset; every row is validated when the source is built."""

    def __init__(
        self,
        dataset: str,
        split: str = "test",
        schema: str | None = None,
        name: str | None = None,
        max_tasks: int | None = None,
    ) -> None:
        rows = load_rows(dataset, split=split, name=name)
        if not rows:
            raise DataError(f"{dataset}: no rows (split {split!r})")
        if max_tasks is not None:
            rows = rows[:max_tasks]
        if schema is not None and schema not in SCHEMAS:
            raise ValueError(f"schema must be one of {SCHEMAS}, got {schema!r}")
        self.schema = schema or detect_schema(rows[0])
        adapt = _ADAPTERS[self.schema]
        label = Path(dataset).stem if Path(dataset).suffix else dataset
        self.tasks: list[Task] = []
        for i, row in enumerate(rows):
            problem, answer = adapt(row)
            if not answer:
                raise DataError(f"{row.where}: empty gold answer ({self.schema} schema)")
            raw_id = next((row.data[k] for k in _ID_FIELDS if row.data.get(k) not in (None, "")), None)
            task_id = str(raw_id) if raw_id is not None else f"{label}/{split}/{i}"
            meta = {k: row.data[k] for k in ("level", "subject", "type") if k in row.data}
            self.tasks.append(Task(task_id, problem, answer, {"source": label, **meta}))
        seen: set[str] = set()
        for task, row in zip(self.tasks, rows, strict=True):
            if task.task_id in seen:
                raise DataError(f"{row.where}: duplicate task id {task.task_id!r}")
            seen.add(task.task_id)

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, index: int) -> Task:
        return self.tasks[index]


def make_math_source(
    dataset: str | None,
    split: str = "test",
    *,
    schema: str | None = None,
    name: str | None = None,
    difficulty: str | dict | None = None,
    seed: int = 0,
    max_tasks: int | None = None,
):
    """The task source MathFeedback's ``dataset`` kwarg names (None or ``"procedural"``: the generator)."""
    if dataset in (None, "procedural"):
        overrides = {"seed": seed}
        if max_tasks is not None:
            overrides["size"] = max_tasks
        return ProceduralMath.from_difficulty(difficulty, split=split, **overrides)
    if difficulty is not None:
        raise ValueError("difficulty only applies to the procedural dataset")
    return FileMathSource(dataset, split=split, schema=schema, name=name, max_tasks=max_tasks)
