"""Task sources of ``drift/UserCorrection-v0``: a request plus the user's hidden constraints.

Two sources, both indexable:

* :class:`ProceduralUserTasks` builds task ``i`` from ``Random(f"...:{seed}:{i}")`` alone, so any task
  can be regenerated from ``(seed, index)`` (requests for short writing, lists, answers to questions and
  summaries of a given text, each with constraints drawn so that they can all hold together);
* :class:`JsonlUserTasks` reads a JSONL file, one task per line::

      {"task_id": "t1", "request": "Describe autumn.", "constraints": [{"type": "max_words", "n": 20},
       {"type": "lowercase"}], "revealed": 1, "meta": {}}

  ``task_id`` (default ``<file stem>-<line>``), ``revealed`` and ``meta`` are optional. A bad line is
  rejected with the file, line number and field.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drift_envs.user.constraints import (
    CONSTRAINTS,
    Constraint,
    ConstraintSpecError,
    SampleContext,
    compatible,
    compose_reply,
    constraint_from_dict,
)

__all__ = [
    "DIFFICULTY_WEIGHTS",
    "JsonlUserTasks",
    "ProceduralUserTasks",
    "TaskFileError",
    "UserTask",
    "draw_constraints",
    "kinds_up_to",
    "request_split",
    "tasks_from_records",
    "write_jsonl",
]

# How often the generator draws a constraint of each difficulty (easy ones keep small models in reach).
DIFFICULTY_WEIGHTS = {"easy": 4.0, "medium": 2.0, "hard": 1.0}


class TaskFileError(ValueError):
    """A task record is malformed; the message names the file (or record), the line and the field."""


@dataclass(frozen=True)
class UserTask:
    """One task: what the user asks for and the constraints the reply must meet.

    ``revealed`` is how many of the constraints (the first ones) the user states up front, or None to
    leave it to the env's ``revealed`` kwarg.
    """

    task_id: str
    request: str
    constraints: tuple[Constraint, ...]
    revealed: int | None = None
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSONL record of this task (inverse of :func:`tasks_from_records`)."""
        record: dict[str, Any] = {
            "task_id": self.task_id,
            "request": self.request,
            "constraints": [c.to_dict() for c in self.constraints],
        }
        if self.revealed is not None:
            record["revealed"] = self.revealed
        if self.meta:
            record["meta"] = self.meta
        return record


# ---- procedural requests --------------------------------------------------------------------------

_TOPICS: list[tuple[str, tuple[str, ...]]] = [
    ("the ocean", ("ocean", "waves", "tide", "salt", "shore")),
    ("autumn", ("leaves", "autumn", "harvest", "cool", "orange")),
    ("a city at night", ("lights", "streets", "night", "city", "quiet")),
    ("learning to cook", ("kitchen", "recipe", "taste", "cook", "practice")),
    ("a rainy day", ("rain", "umbrella", "clouds", "puddles", "grey")),
    ("hiking in the mountains", ("trail", "summit", "boots", "mountain", "view")),
    ("a cup of coffee", ("coffee", "morning", "bitter", "warm", "mug")),
    ("starting a new job", ("team", "nervous", "desk", "learn", "colleagues")),
    ("the moon", ("moon", "night", "silver", "craters", "orbit")),
    ("a small garden", ("garden", "soil", "seeds", "flowers", "water")),
    ("a favourite song", ("melody", "song", "rhythm", "voice", "chorus")),
    ("a long train journey", ("train", "window", "station", "tickets", "journey")),
]

_WRITING = [
    "Write a short note to a friend about {topic}.",
    "Write a few lines of poetry about {topic}.",
    "Describe {topic} to someone who has never experienced it.",
    "Write a short blog post introduction about {topic}.",
    "Write a product description for a scented candle inspired by {topic}.",
]

_LISTS: list[tuple[str, tuple[str, ...]]] = [
    ("List {n} things to pack for a beach holiday.", ("sunscreen", "towel", "hat", "swimsuit", "water")),
    ("Give me {n} tips for sleeping better.", ("sleep", "screens", "routine", "dark", "caffeine")),
    ("Suggest {n} ways to save water at home.", ("water", "shower", "leaks", "garden", "tap")),
    ("Name {n} hobbies that can be done indoors.", ("reading", "painting", "puzzles", "music", "baking")),
    ("List {n} ideas for a rainy weekend.", ("films", "games", "baking", "books", "museum")),
    ("Give {n} tips for learning a new language.", ("practice", "vocabulary", "listen", "speak", "daily")),
]

_QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("Why is the sky blue?", ("light", "sky", "blue", "scattering", "sun")),
    ("What causes the tides?", ("moon", "tides", "gravity", "ocean", "pull")),
    ("How do bees make honey?", ("bees", "nectar", "honey", "hive", "flowers")),
    ("Why do leaves change colour in autumn?", ("leaves", "chlorophyll", "autumn", "colour", "sunlight")),
    ("How does a fridge keep food cold?", ("heat", "fridge", "cold", "gas", "food")),
    ("What is the water cycle?", ("water", "evaporation", "rain", "clouds", "cycle")),
    ("Why do we need sleep?", ("sleep", "brain", "rest", "memory", "body")),
    ("How does a bicycle stay upright?", ("bicycle", "balance", "wheels", "speed", "steering")),
]

_NAMES = ("Mara", "Tomas", "Aiko", "Lena", "Sipho", "Ravi", "Ines", "Olek")
_TOWNS = ("Harbourside", "Millbrook", "Eastvale", "Kestrel Bay", "Northfield", "Stonebridge")
_STORIES: list[tuple[str, tuple[str, ...]]] = [
    (
        "{name} opened a small bakery in {town} in {year}. At first only a few neighbours came by, "
        "but word spread about the cinnamon bread. Within {k} years the bakery had {m} staff and a "
        "queue outside on weekends. {name} still kneads the first batch by hand every morning.",
        ("bakery", "bread", "{name}", "{town}", "queue"),
    ),
    (
        "In {year} the town council of {town} voted to close the old library. {name}, a retired "
        "teacher, collected {m} signatures in {k} weeks and organised readings in the square. The "
        "council reversed its decision, and the library now opens on Sundays as well.",
        ("library", "council", "{name}", "signatures", "{town}"),
    ),
    (
        "{name} had never sailed before buying a second-hand boat in {year}. After {k} months of "
        "lessons in {town}, {name} crossed the bay alone and raised money for the local lifeboat "
        "crew. The trip took {m} hours because the wind dropped halfway.",
        ("boat", "sailed", "{name}", "wind", "lifeboat"),
    ),
]
_SUMMARY_REQUESTS = [
    "Summarise the following text:\n\n{text}",
    "Read this and give me a summary:\n\n{text}",
    "What is the gist of this story?\n\n{text}",
]

_CATEGORIES = ("writing", "list", "answer", "summary")

SPLITS = ("train", "test")


def _test_requests() -> frozenset[str]:
    """The fixed-template requests of the test split, about a quarter of each category.

    Every template and every topic appears in both splits, never in the same combination: a writing
    request is held out when (template + topic) % 4 == 1, a list when (template + n) % 3 == 0, a
    question when its position % 4 == 1.
    """
    held: set[str] = set()
    for w, template in enumerate(_WRITING):
        held.update(template.format(topic=topic) for t, (topic, _) in enumerate(_TOPICS) if (w + t) % 4 == 1)
    for li, (template, _) in enumerate(_LISTS):
        held.update(template.format(n=n) for n in (3, 4, 5) if (li + n) % 3 == 0)
    held.update(question for q, (question, _) in enumerate(_QUESTIONS) if q % 4 == 1)
    return frozenset(held)


_TEST_REQUESTS = _test_requests()


def request_split(request: str, category: str) -> str:
    """The split a procedural request belongs to (``"train"`` or ``"test"``); no request is in both.

    Summaries, whose texts are too many to list, go by a SHA-256 of the text: a quarter to test.
    """
    if category == "summary":
        digest = hashlib.sha256(request.encode("utf-8")).digest()
        return "test" if digest[0] % 4 == 0 else "train"
    return "test" if request in _TEST_REQUESTS else "train"


def _request(rng: random.Random) -> tuple[str, SampleContext, str]:
    """Draw a request; returns (text, sampling context, category)."""
    category = rng.choice(_CATEGORIES)
    if category == "writing":
        topic, vocab = rng.choice(_TOPICS)
        return rng.choice(_WRITING).format(topic=topic), SampleContext(topic_words=vocab), category
    if category == "list":
        template, vocab = rng.choice(_LISTS)
        n = rng.choice([3, 4, 5])
        return template.format(n=n), SampleContext(topic_words=vocab, list_items=n), category
    if category == "answer":
        question, vocab = rng.choice(_QUESTIONS)
        return question, SampleContext(topic_words=vocab), category
    story, vocab_t = rng.choice(_STORIES)
    values = {
        "name": rng.choice(_NAMES),
        "town": rng.choice(_TOWNS),
        "year": rng.randint(1975, 2020),
        "k": rng.randint(2, 9),
        "m": rng.randint(12, 400),
    }
    vocab = tuple(v.format(**values) for v in vocab_t)
    text = rng.choice(_SUMMARY_REQUESTS).format(text=story.format(**values))
    return text, SampleContext(topic_words=vocab, summary=True), category


def draw_constraints(
    rng: random.Random,
    ctx: SampleContext,
    k: int,
    kinds: Sequence[str] | None = None,
    *,
    tries: int = 50,
) -> tuple[Constraint, ...]:
    """Draw ``k`` mutually compatible constraints that :func:`compose_reply` can satisfy together."""
    pool = list(kinds) if kinds is not None else sorted(CONSTRAINTS)
    if k > len(pool):
        raise ValueError(f"num_constraints={k} exceeds the {len(pool)} constraint kinds available")
    weights = [DIFFICULTY_WEIGHTS[CONSTRAINTS[kind].difficulty] for kind in pool]
    for _ in range(tries):
        chosen: list[Constraint] = []
        available = list(zip(pool, weights, strict=True))
        while len(chosen) < k and available:
            kind = rng.choices([a for a, _ in available], weights=[w for _, w in available])[0]
            available = [(a, w) for a, w in available if a != kind]
            candidate = CONSTRAINTS[kind].sample(rng, ctx)
            if compatible([*chosen, candidate]):
                chosen.append(candidate)
        if len(chosen) == k and compose_reply(chosen, ctx.topic_words) is not None:
            return tuple(chosen)
    raise ValueError(f"could not draw {k} compatible constraints from kinds {pool} in {tries} tries")


def kinds_up_to(difficulty: str) -> list[str]:
    """The constraint kinds of ``difficulty`` or easier (``"easy"``, ``"medium"``, ``"hard"``)."""
    order = list(DIFFICULTY_WEIGHTS)
    if difficulty not in order:
        raise ValueError(f"difficulty must be one of {order}, got {difficulty!r}")
    allowed = set(order[: order.index(difficulty) + 1])
    return sorted(kind for kind, cls in CONSTRAINTS.items() if cls.difficulty in allowed)


class ProceduralUserTasks:
    """Procedural tasks, a pure function of ``(seed, split, index)``.

    ``split`` is ``"train"`` or ``"test"`` (default): the two share no request (see
    :func:`request_split`), so no prompt of one is in the other. Task ``i`` is the first draw, from a
    stream seeded by (seed, split, i), whose request lies in the split; the test split's first draw
    comes from the stream the generator used before it had splits, so an earlier task whose request
    is in the test split keeps its index and constraints.
    ``num_constraints`` is an int or an inclusive ``(low, high)`` range drawn per task; ``kinds``
    restricts the constraint kinds drawn: a list of kinds, or a difficulty (``"easy"``, ``"medium"``,
    ``"hard"``) for the kinds of that difficulty or easier (default: all registered).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        split: str = "test",
        size: int = 10_000,
        num_constraints: int | tuple[int, int] = 2,
        kinds: Sequence[str] | str | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        lo, hi = (
            (num_constraints, num_constraints) if isinstance(num_constraints, int) else tuple(num_constraints)
        )
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise ValueError(
                f"num_constraints must be a positive int or a (low, high) range, got {num_constraints!r}"
            )
        if isinstance(kinds, str):
            kinds = kinds_up_to(kinds)
        if kinds is not None:
            unknown = sorted(set(kinds) - set(CONSTRAINTS))
            if unknown:
                raise ValueError(f"unknown constraint kinds {unknown}; known: {sorted(CONSTRAINTS)}")
            if hi > len(set(kinds)):
                raise ValueError(
                    f"num_constraints={num_constraints!r} exceeds the {len(set(kinds))} kinds given"
                )
        self.seed = seed
        self.split = split
        self.size = size
        self.num_constraints = (lo, hi)
        self.kinds = tuple(kinds) if kinds is not None else None
        # an episode reads its task several times (reset, verify, feedback); building one takes ~0.2 ms
        self._build = functools.lru_cache(maxsize=4096)(self._make)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> UserTask:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"task index must be an int, got {type(index).__name__}")
        if not 0 <= index < self.size:
            raise IndexError(f"task index {index} out of range for {self.size} procedural tasks")
        return self._build(int(index))

    @property
    def id_prefix(self) -> str:
        """What every task id of this source starts with; the index follows."""
        return f"user-{self.seed}-{self.split}-"

    def _make(self, index: int) -> UserTask:
        for attempt in range(10_000):
            if attempt == 0 and self.split == "test":
                rng = random.Random(f"drift/UserCorrection:{self.seed}:{index}")  # the stream before splits
            else:
                rng = random.Random(f"drift/UserCorrection:{self.seed}:{self.split}:{index}:{attempt}")
            request, ctx, category = _request(rng)
            if request_split(request, category) == self.split:
                break
        else:  # a quarter or more of the draws land in each split
            raise RuntimeError(f"no {self.split} request drawn for index {index}")  # pragma: no cover
        k = rng.randint(*self.num_constraints)
        constraints = draw_constraints(rng, ctx, k, self.kinds)
        return UserTask(
            task_id=f"{self.id_prefix}{index}",
            request=request,
            constraints=constraints,
            meta={"category": category, "topic_words": list(ctx.topic_words)},
        )


# ---- records and JSONL files ----------------------------------------------------------------------

_FIELDS = {"task_id", "request", "constraints", "revealed", "meta"}


def _task_from_record(record: Any, where: str, default_id: str) -> UserTask:
    if not isinstance(record, dict):
        raise TaskFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise TaskFileError(
            f"{where}, field {unknown[0]!r}: unknown field; expected some of {sorted(_FIELDS)}"
        )
    task_id = record.get("task_id", default_id)
    if not isinstance(task_id, (str, int)) or isinstance(task_id, bool) or str(task_id) == "":
        raise TaskFileError(f"{where}, field 'task_id': expected a non-empty string, got {task_id!r}")
    request = record.get("request")
    if not isinstance(request, str) or not request.strip():
        raise TaskFileError(f"{where}, field 'request': expected a non-empty string, got {request!r}")
    specs = record.get("constraints")
    if not isinstance(specs, list) or not specs:
        raise TaskFileError(f"{where}, field 'constraints': expected a non-empty list of constraint objects")
    constraints = []
    for j, spec in enumerate(specs):
        try:
            constraints.append(constraint_from_dict(spec, where=f"constraints[{j}]"))
        except ConstraintSpecError as exc:
            raise TaskFileError(f"{where}, field {exc}") from None
    for a_i, a in enumerate(constraints):
        for b_i in range(a_i + 1, len(constraints)):
            if a.conflicts_with(constraints[b_i]):
                raise TaskFileError(
                    f"{where}, field 'constraints': constraints[{a_i}] {a.label()} and constraints[{b_i}] "
                    f"{constraints[b_i].label()} can never hold together"
                )
    revealed = record.get("revealed")
    if revealed is not None and (not isinstance(revealed, int) or isinstance(revealed, bool) or revealed < 0):
        raise TaskFileError(f"{where}, field 'revealed': expected an integer >= 0, got {revealed!r}")
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise TaskFileError(f"{where}, field 'meta': expected an object, got {type(meta).__name__}")
    return UserTask(str(task_id), request, tuple(constraints), revealed, dict(meta))


def _unique_tasks(located: Iterable[tuple[str, str, Any]], source: str) -> list[UserTask]:
    """Validate ``(where, default_id, record)`` triples; ``where`` locates a record in error messages."""
    tasks: list[UserTask] = []
    first_at: dict[str, str] = {}
    for where, default_id, record in located:
        task = record if isinstance(record, UserTask) else _task_from_record(record, where, default_id)
        if task.task_id in first_at:
            raise TaskFileError(
                f"{where}, field 'task_id': duplicate id {task.task_id!r} (first at {first_at[task.task_id]})"
            )
        first_at[task.task_id] = where
        tasks.append(task)
    if not tasks:
        raise TaskFileError(f"{source}: no tasks")
    return tasks


def tasks_from_records(records: Iterable[Any], *, source: str = "tasks") -> list[UserTask]:
    """Validate task records (dicts in the JSONL format, or :class:`UserTask`) into tasks.

    Errors name ``source``, the record number (1-based) and the field. Task ids must be unique.
    """
    located = ((f"{source} record {i}", f"{source}-{i}", r) for i, r in enumerate(records, start=1))
    return _unique_tasks(located, source)


class JsonlUserTasks:
    """Tasks read from a JSONL file (format in the module docstring); validated when loaded.

    Errors name the file, the line and the field, e.g. ``tasks.jsonl:3, field constraints[1].n: ...``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"UserCorrection task file not found: {self.path}")
        self.tasks = _unique_tasks(self._records(), str(self.path))

    def _records(self) -> Iterator[tuple[str, str, Any]]:
        with self.path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{self.path}:{line_no}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise TaskFileError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
                yield where, f"{self.path.stem}-{line_no}", record

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, index: int) -> UserTask:
        return self.tasks[index]


def write_jsonl(tasks: Iterable[UserTask], path: str | Path) -> Path:
    """Write ``tasks`` as a JSONL task file that :class:`JsonlUserTasks` reads back."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as fh:
        for task in tasks:
            fh.write(json.dumps(task.to_dict(), ensure_ascii=False) + "\n")
    return path
