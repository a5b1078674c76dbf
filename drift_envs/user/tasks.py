"""Task sources of ``drift/UserCorrection-v0``: a request plus the user's hidden constraints.

Two registered sources (kind ``"user"``, see :mod:`drift_envs.sources.base`):

* ``"procedural"`` (:class:`ProceduralUserTasks`, configured by :class:`ProceduralUserConfig`) builds
  task ``i`` from a stream seeded by ``(seed, split, i)`` alone, so any task can be regenerated from its
  index (requests for short writing, lists, answers to questions and summaries of a given text, each
  with constraints drawn so that they can all hold together); the train and test splits share no
  request. Its ids are ``user-<seed>-<split>-<index>``, built and parsed by :class:`ProceduralUserTasks`.
* ``"file"`` (:class:`UserTaskFile`) reads a local JSONL/JSON/Parquet file or a hub dataset through
  :func:`drift_envs.sources.records.load_rows`, or takes a list of records, one task per row::

      {"task_id": "t1", "request": "Describe autumn.", "constraints": [{"type": "max_words", "n": 20},
       {"type": "lowercase"}], "revealed": 1, "meta": {}}

  ``task_id`` (default ``<file stem>-<line>``), ``revealed``, ``meta`` and ``served`` (the check that a
  reply serves the request, :mod:`drift_envs.user.constraints.served`; procedural tasks written out
  keep theirs) are optional. A bad row is a
  :class:`~drift_envs.sources.records.DataError` naming the file, the line and the field.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drift_envs.core import Task
from drift_envs.sources.base import SourceConfig, TaskSource, register_source
from drift_envs.sources.records import DataError, Row, load_rows, require_field
from drift_envs.user.constraints import (
    CONSTRAINTS,
    Constraint,
    ConstraintSpecError,
    SampleContext,
    compatible,
    compose_reply,
    constraint_from_dict,
    words,
)
from drift_envs.user.constraints.served import ListItems, OnTopic, served_from_dict

__all__ = [
    "DIFFICULTY_WEIGHTS",
    "SPLITS",
    "ProceduralUserConfig",
    "ProceduralUserTasks",
    "TaskFileError",
    "UserFileConfig",
    "UserTask",
    "UserTaskFile",
    "draw_constraints",
    "drawable_kinds",
    "kinds_up_to",
    "request_split",
    "tasks_from_records",
    "write_jsonl",
]

# How often the generator draws a constraint of each difficulty (easy ones keep small models in reach).
DIFFICULTY_WEIGHTS = {"easy": 4.0, "medium": 2.0, "hard": 1.0}

#: the one error type of task files and records (the name this module used before it read rows
#: through :func:`~drift_envs.sources.records.load_rows`)
TaskFileError = DataError


@dataclass
class UserTask(Task):
    """One task: what the user asks for (``prompt``) and the constraints a reply must meet (``answer``).

    ``revealed`` is how many of the constraints (the first ones) the user states up front, or None to
    leave it to the env's ``revealed`` kwarg. ``request`` and ``constraints`` name the two fields the
    way this env speaks of them.
    """

    revealed: int | None = None
    #: the check that the reply serves the request at all (procedural tasks; see
    #: :mod:`drift_envs.user.constraints.served`), checked after ``constraints``; None for file tasks
    served: Constraint | None = None

    @property
    def request(self) -> str:
        """The user's request (the task's prompt)."""
        return self.prompt

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        """The hidden constraints (the task's answer: what counts as right)."""
        return self.answer

    def to_dict(self) -> dict:
        """The JSONL record of this task (inverse of :func:`tasks_from_records`)."""
        record: dict[str, Any] = {
            "task_id": self.task_id,
            "request": self.request,
            "constraints": [c.to_dict() for c in self.constraints],
        }
        if self.revealed is not None:
            record["revealed"] = self.revealed
        if self.served is not None:
            record["served"] = self.served.to_dict()
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

# More of the things each list request is about, beyond its five topic words: a reply naming any
# of them names a list item (ListItems), so a forbidden topic word never leaves too few to name.
_MORE_ITEMS: dict[str, tuple[str, ...]] = {
    "List {n} things to pack for a beach holiday.": ("sunglasses", "sandals", "book", "snacks", "umbrella"),
    "Give me {n} tips for sleeping better.": ("exercise", "bedtime", "alcohol", "naps", "temperature"),
    "Suggest {n} ways to save water at home.": ("dishwasher", "toilet", "rainwater", "bucket", "faucet"),
    "Name {n} hobbies that can be done indoors.": ("knitting", "chess", "writing", "cooking", "yoga"),
    "List {n} ideas for a rainy weekend.": ("cooking", "puzzles", "crafts", "cinema", "podcasts"),
    "Give {n} tips for learning a new language.": ("grammar", "apps", "reading", "tutor", "films"),
}

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

# Words an answer to each question uses (its topic words and a few more forms): the request check of
# a question asks for one that the question itself does not hold, so echoing the question is no answer.
_ANSWER_WORDS: dict[str, tuple[str, ...]] = {
    "Why is the sky blue?": (
        "scatter",
        "scattered",
        "scatters",
        "rayleigh",
        "sunlight",
        "wavelength",
        "wavelengths",
    ),
    "What causes the tides?": ("gravitational", "pulls", "attraction", "sun"),
    "How do bees make honey?": ("enzymes", "evaporate", "evaporation", "pollen", "nectars"),
    "Why do leaves change colour in autumn?": ("pigment", "pigments", "carotenoids", "daylight", "green"),
    "How does a fridge keep food cold?": ("refrigerant", "compressor", "evaporates", "coils", "pump"),
    "What is the water cycle?": ("condensation", "precipitation", "evaporates", "vapour", "vapor"),
    "Why do we need sleep?": ("repair", "memories", "energy", "recover", "health"),
    "How does a bicycle stay upright?": ("momentum", "gyroscopic", "steer", "moving", "motion"),
}

# What a reply must hold beyond the request's own words (OnTopic.min_new): distinct words that
# neither the request nor its vocabulary holds; a list of tips, ways or ideas lists phrases (two
# words an item or more), a list of things or hobbies may list single words
_WRITING_MIN_NEW = 3
_ANSWER_MIN_NEW = 2
_PHRASE_ITEMS = ("tips", "ways", "ideas")

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


def _request(rng: random.Random) -> tuple[str, SampleContext, str, Constraint]:
    """Draw a request; returns (text, sampling context, category, the check that a reply serves it)."""
    category = rng.choice(_CATEGORIES)
    if category == "writing":
        topic, vocab = rng.choice(_TOPICS)
        text = rng.choice(_WRITING).format(topic=topic)
        served = OnTopic(vocab, topic, "topic", request=text, min_new=_WRITING_MIN_NEW)
        return text, SampleContext(topic_words=vocab), category, served
    if category == "list":
        template, vocab = rng.choice(_LISTS)
        n = rng.choice([3, 4, 5])
        text = template.format(n=n)
        item_words = 2 if any(w in template for w in _PHRASE_ITEMS) else 1
        served = ListItems(n, (*vocab, *_MORE_ITEMS[template]), text, item_words)
        return text, SampleContext(topic_words=vocab, list_items=n), category, served
    if category == "answer":
        question, vocab = rng.choice(_QUESTIONS)
        asked = {w.casefold() for w in words(question)}
        answer_words = tuple(w for w in (*vocab, *_ANSWER_WORDS[question]) if w.casefold() not in asked)
        return (
            question,
            SampleContext(topic_words=vocab),
            category,
            OnTopic(answer_words, question, "question", request=question, min_new=_ANSWER_MIN_NEW),
        )
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
    served = OnTopic(vocab, f"the story about {values['name']}", "text", request=text, min_named=2)
    return text, SampleContext(topic_words=vocab, summary=True), category, served


def drawable_kinds() -> list[str]:
    """The registered kinds the generator may draw: those that can compose their part of a reply."""
    return sorted(kind for kind, cls in CONSTRAINTS.items() if cls.composable)


def draw_constraints(
    rng: random.Random,
    ctx: SampleContext,
    k: int,
    kinds: Sequence[str] | None = None,
    *,
    tries: int = 50,
    served: Constraint | None = None,
) -> tuple[Constraint, ...]:
    """Draw ``k`` mutually compatible constraints that :func:`compose_reply` can satisfy together
    (and together with ``served``, the task's request check, when given; it is not among those returned).

    A compatible set that :func:`compose_reply` cannot satisfy is an error (a conflict some kind
    does not declare), never a silent redraw that would keep that combination out of every task.
    """
    fixed = [served] if served is not None else []
    pool = list(kinds) if kinds is not None else drawable_kinds()
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
            if compatible([*fixed, *chosen, candidate]):
                chosen.append(candidate)
        if len(chosen) == k:
            if compose_reply([*chosen, *fixed], ctx.topic_words) is None:
                raise RuntimeError(
                    f"compatible constraints {[c.label() for c in chosen]} have no composed reply: one of "
                    "these kinds must declare the conflict (excludes/_conflicts) or compose differently"
                )
            return tuple(chosen)
    raise ValueError(f"could not draw {k} compatible constraints from kinds {pool} in {tries} tries")


def kinds_up_to(difficulty: str) -> list[str]:
    """The drawable constraint kinds of ``difficulty`` or easier (``"easy"``, ``"medium"``, ``"hard"``)."""
    order = list(DIFFICULTY_WEIGHTS)
    if difficulty not in order:
        raise ValueError(f"difficulty must be one of {order}, got {difficulty!r}")
    allowed = set(order[: order.index(difficulty) + 1])
    return [kind for kind in drawable_kinds() if CONSTRAINTS[kind].difficulty in allowed]


def _check_split(name: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{name}.split must be one of {SPLITS}, got {split!r}")


@dataclass(frozen=True)
class ProceduralUserConfig(SourceConfig):
    """Knobs of the procedural UserCorrection tasks (besides ``seed``, ``split``, ``max_tasks``).

    Args:
        size: tasks per split (indices ``0..size-1``; ``max_tasks`` caps it further).
        num_constraints: constraints per task, an int or an inclusive ``(low, high)`` range drawn per task.
        constraint_kinds: the kinds drawn: a list of kinds, or a difficulty (``"easy"``, ``"medium"``,
            ``"hard"``) for the kinds of that difficulty or easier (default: every drawable kind).
    """

    size: int = 10_000
    num_constraints: int | tuple[int, int] = 2
    constraint_kinds: tuple[str, ...] | str | None = None

    def __post_init__(self) -> None:
        # JSON and YAML give lists; the config stays hashable and comparable
        for name in ("num_constraints", "constraint_kinds"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

    @property
    def constraint_range(self) -> tuple[int, int]:
        """``num_constraints`` as an inclusive ``(low, high)`` range."""
        n = self.num_constraints
        return (n, n) if isinstance(n, int) else (n[0], n[1])

    def kinds(self) -> tuple[str, ...] | None:
        """The kinds to draw from (None: every drawable kind)."""
        if isinstance(self.constraint_kinds, str):
            return tuple(kinds_up_to(self.constraint_kinds))
        return self.constraint_kinds

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        super().validate()
        _check_split("ProceduralUserConfig", self.split)
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ValueError(f"ProceduralUserConfig.size must be a positive integer, got {self.size!r}")
        n = self.num_constraints

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        shaped = is_int(n) or (isinstance(n, tuple) and len(n) == 2 and all(is_int(v) for v in n))
        if not shaped or not 1 <= self.constraint_range[0] <= self.constraint_range[1]:
            raise ValueError(f"num_constraints must be a positive int or a (low, high) range, got {n!r}")
        kinds = self.kinds()  # a bad difficulty raises here
        if kinds is None:
            return
        unknown = sorted(set(kinds) - set(CONSTRAINTS))
        if unknown:
            raise ValueError(f"unknown constraint kinds {unknown}; known: {sorted(CONSTRAINTS)}")
        fixed = sorted(k for k in set(kinds) if not CONSTRAINTS[k].composable)
        if fixed:
            raise ValueError(
                f"constraint kinds {fixed} declare composable = False: the generator cannot make sure a "
                "task holding them is satisfiable, so it never draws them (use them in a task file)"
            )
        if self.constraint_range[1] > len(set(kinds)):
            raise ValueError(f"num_constraints={n!r} exceeds the {len(set(kinds))} kinds given")


@register_source("user", "procedural")
class ProceduralUserTasks(TaskSource):
    """Procedural tasks, a pure function of ``(seed, split, index)``.

    ``split`` is ``"train"`` or ``"test"`` (default): the two share no request (see
    :func:`request_split`), so no prompt of one is in the other. Task ``i`` is the first draw, from a
    stream seeded by (seed, split, i), whose request lies in the split; the test split's first draw
    comes from the stream the generator used before it had splits, so an earlier task whose request
    is in the test split keeps its index and constraints. Options: :class:`ProceduralUserConfig`.
    """

    config_class = ProceduralUserConfig
    config: ProceduralUserConfig

    def __init__(self, config: ProceduralUserConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        self._kinds = self.config.kinds()
        # an episode reads its task several times (reset, verify, feedback); building one takes ~0.2 ms
        self._build = functools.lru_cache(maxsize=4096)(self._make)

    def __len__(self) -> int:
        return self.limit(self.config.size)

    def id_prefix(self) -> str:
        """``user-<seed>-<split>-``: the ids records on disk refer to."""
        return f"user-{self.config.seed}-{self.config.split}-"

    def make_task(self, index: int) -> UserTask:
        """The task at ``index`` (built once, then cached)."""
        return self._build(index)

    def _make(self, index: int) -> UserTask:
        seed, split = self.config.seed, self.config.split
        for attempt in range(10_000):
            if attempt == 0 and split == "test":
                rng = random.Random(f"drift/UserCorrection:{seed}:{index}")  # the stream before splits
            else:
                rng = random.Random(f"drift/UserCorrection:{seed}:{split}:{index}:{attempt}")
            request, ctx, category, served = _request(rng)
            if request_split(request, category) == split:
                break
        else:  # a quarter or more of the draws land in each split
            raise RuntimeError(f"no {split} request drawn for index {index}")  # pragma: no cover
        k = rng.randint(*self.config.constraint_range)
        constraints = draw_constraints(rng, ctx, k, self._kinds, served=served)
        return UserTask(
            self.task_id(index),
            request,
            constraints,
            meta={"category": category, "topic_words": list(ctx.topic_words)},
            served=served,
        )


# ---- records and files ----------------------------------------------------------------------------

_FIELDS = {"task_id", "request", "constraints", "revealed", "meta", "served"}


def _task_from_row(row: Row, default_id: str) -> UserTask:
    where = row.where
    unknown = sorted(set(row.data) - _FIELDS)
    if unknown:
        raise DataError(f"{where}: unknown field {unknown[0]!r}; expected some of {sorted(_FIELDS)}")
    task_id = row.data.get("task_id", default_id)
    if not isinstance(task_id, (str, int)) or isinstance(task_id, bool) or str(task_id) == "":
        raise DataError(f"{where}: field 'task_id' should be a non-empty string, got {task_id!r}")
    request = require_field(row, "request", str)
    specs = require_field(row, "constraints", list)
    if not specs:
        raise DataError(f"{where}: field 'constraints' is empty; give a list of constraint objects")
    constraints = []
    for j, spec in enumerate(specs):
        try:
            constraints.append(constraint_from_dict(spec, where=f"constraints[{j}]"))
        except ConstraintSpecError as exc:
            raise DataError(f"{where}: field {exc}") from None
    for a_i, a in enumerate(constraints):
        for b_i in range(a_i + 1, len(constraints)):
            if a.conflicts_with(constraints[b_i]):
                raise DataError(
                    f"{where}: field 'constraints': constraints[{a_i}] {a.label()} and constraints[{b_i}] "
                    f"{constraints[b_i].label()} can never hold together"
                )
    revealed = row.data.get("revealed")
    if revealed is not None and (not isinstance(revealed, int) or isinstance(revealed, bool) or revealed < 0):
        raise DataError(f"{where}: field 'revealed' should be an integer >= 0, got {revealed!r}")
    meta = row.data.get("meta") or {}
    if not isinstance(meta, dict):
        raise DataError(f"{where}: field 'meta' should be an object, got {type(meta).__name__}")
    served = row.data.get("served")
    if served is not None:
        try:
            served = served_from_dict(served, where="served")
        except ConstraintSpecError as exc:
            raise DataError(f"{where}: field {exc}") from None
    return UserTask(str(task_id), request, tuple(constraints), dict(meta), revealed, served)


def _unique_tasks(located: Iterable[tuple[Row | UserTask, str, str]], source: str) -> list[UserTask]:
    """Validate ``(row or task, where, default_id)`` triples into tasks with unique ids."""
    tasks: list[UserTask] = []
    first_at: dict[str, str] = {}
    for item, where, default_id in located:
        task = item if isinstance(item, UserTask) else _task_from_row(item, default_id)
        if task.task_id in first_at:
            raise DataError(
                f"{where}: field 'task_id': duplicate id {task.task_id!r} (first at {first_at[task.task_id]})"
            )
        first_at[task.task_id] = where
        tasks.append(task)
    if not tasks:
        raise DataError(f"{source}: no tasks")
    return tasks


def tasks_from_records(records: Iterable[Any], *, source: str = "dataset") -> list[UserTask]:
    """Validate task records (dicts in the JSONL format, or :class:`UserTask`) into tasks.

    Errors name ``source``, the record number (1-based) and the field. Task ids must be unique.
    """

    def located() -> Iterable[tuple[Row | UserTask, str, str]]:
        for i, record in enumerate(records, start=1):
            where = f"{source} record {i}"
            if isinstance(record, UserTask):
                yield record, where, record.task_id
            elif isinstance(record, dict):
                yield Row(record, where), where, f"{source}-{i}"
            else:
                raise DataError(f"{where}: expected a task object (dict), got {type(record).__name__}")

    return _unique_tasks(located(), source)


def _file_tasks(path: str | Path, split: str) -> list[UserTask]:
    rows = load_rows(str(path), split=split)
    stem = Path(str(path)).name.split(".")[0]

    def located() -> Iterable[tuple[Row, str, str]]:
        for number, row in enumerate(rows, start=1):
            # a JSONL row is located "<path>:<line>": the default id keeps the line, as ids always had
            tail = row.where.rsplit(":", 1)[-1]
            yield row, row.where, f"{stem}-{tail if tail.isdigit() else number}"

    return _unique_tasks(located(), str(path))


@dataclass(frozen=True)
class UserFileConfig(SourceConfig):
    """A set of UserCorrection tasks from a file, a hub dataset or a list of records.

    Args:
        path: a local ``.jsonl``/``.json``/``.parquet`` file, a hub dataset id, or a list of task
            records (dicts in the file format, or :class:`UserTask`). A file is one set of tasks,
            used whole whatever ``split`` says (keep one file per split); a hub id loads ``split``.
    """

    path: Any = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        super().validate()
        _check_split("UserFileConfig", self.split)
        if self.path is None or isinstance(self.path, (bytes, dict)):
            raise ValueError(
                f"UserFileConfig.path must be a file, a hub id or a list of task records, got {self.path!r}"
            )


@register_source("user", "file")
class UserTaskFile(TaskSource):
    """Tasks read from a file or taken from a list of records (format in the module docstring),
    validated when loaded; errors name the file, the line and the field."""

    config_class = UserFileConfig
    config: UserFileConfig

    def __init__(self, config: UserFileConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        path = self.config.path
        if isinstance(path, (str, Path)):
            self.tasks = _file_tasks(path, self.config.split)
        else:
            self.tasks = tasks_from_records(path)


def write_jsonl(tasks: Iterable[UserTask], path: str | Path) -> Path:
    """Write ``tasks`` as a JSONL task file that the ``"file"`` source reads back."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as fh:
        for task in tasks:
            fh.write(json.dumps(task.to_dict(), ensure_ascii=False) + "\n")
    return path
