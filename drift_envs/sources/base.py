"""One task-source type and one registry: how every ``drift/*`` env gets its tasks.

A *source* is a registered, split-aware, indexable collection of :class:`~drift_envs.core.Task`:

- its knobs are a config dataclass (a subclass of :class:`SourceConfig`, which already holds ``seed``,
  ``split`` and ``max_tasks``) with ``validate()``;
- ``source[i]`` is a pure function of (config, ``i``) — the same task on every machine and every run;
- ``source.index_of(task_id)`` maps an id back to its index (procedural sources parse their ids);
- it is registered under a *kind* (the family of envs whose tasks it makes: ``"math"``, ``"code"``,
  ``"user"``, ...) and a name, and an env's ``dataset=`` kwarg resolves through :func:`make_source`.

A new source is one file and one registration line::

    from dataclasses import dataclass
    from drift_envs.core import Task
    from drift_envs.sources import SourceConfig, TaskSource, register_source

    @dataclass(frozen=True)
    class SquaresConfig(SourceConfig):
        size: int = 100

    @register_source("math", "squares")
    class Squares(TaskSource):
        config_class = SquaresConfig

        def __len__(self):
            return self.limit(self.config.size)

        def make_task(self, index):
            n = index + 1 + (1000 if self.config.split == "train" else 0)
            return Task(self.task_id(index), f"Compute {n}^2.", str(n * n))

    # gym.make("drift/MathFeedback-v0", dataset="squares", split="train")

``dataset=`` values that are not a registered name (a local ``.jsonl``/``.json``/``.parquet`` path or a
hub id) go to the kind's ``"file"`` source, with the value as its ``path``. Rows of local files are read
by :func:`drift_envs.sources.records.load_rows`, whose :class:`~drift_envs.sources.records.DataError`
names the file, the line and the field.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from drift_envs.core import Task

__all__ = [
    "DEFAULT_SOURCE",
    "FILE_SOURCE",
    "FileSourceConfig",
    "SOURCES",
    "SourceConfig",
    "TaskSource",
    "make_source",
    "register_source",
    "registered_sources",
    "source_factory",
]

#: the source a kind uses when ``dataset`` is None
DEFAULT_SOURCE = "procedural"
#: the source a kind uses when ``dataset`` is a path or a hub id rather than a registered name
FILE_SOURCE = "file"


@dataclass(frozen=True)
class SourceConfig:
    """What every source is configured by; subclasses add their own fields (with defaults).

    Args:
        seed: generator seed (procedural sources); files ignore it.
        split: which split to serve (``"train"``/``"test"``, or a hub dataset's own split names).
        max_tasks: keep only the first N tasks (None: all of them).
    """

    seed: int = 0
    split: str = "test"
    max_tasks: int | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field. Subclasses call ``super().validate()``."""
        name = type(self).__name__
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"{name}.seed must be an int, got {self.seed!r}")
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"{name}.split must be a non-empty str, got {self.split!r}")
        if self.max_tasks is not None and (
            not isinstance(self.max_tasks, int) or isinstance(self.max_tasks, bool) or self.max_tasks < 1
        ):
            raise ValueError(f"{name}.max_tasks must be a positive int or None, got {self.max_tasks!r}")

    @classmethod
    def from_options(cls, source: str, **options: Any) -> SourceConfig:
        """A validated config from keyword options; ``None`` values mean "the default".

        An option that is not a field of this config and is not None is refused with a message that
        names the source and its fields (``difficulty`` given to a file source, for instance).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k, v in options.items() if k not in known and v is not None)
        if unknown:
            raise ValueError(
                f"source {source!r} takes no option(s) {unknown}; its options are {sorted(known)}"
            )
        config = cls(**{k: v for k, v in options.items() if k in known and v is not None})
        config.validate()
        return config


@dataclass(frozen=True)
class FileSourceConfig(SourceConfig):
    """The config of a kind's ``"file"`` source: tasks from a local file or a hub dataset.

    Subclasses set ``schemas`` (the row schemas their adapters read) and keep these fields.

    Args:
        path: a local ``.jsonl``/``.json``/``.parquet`` file (one set of tasks, used whole whatever
            ``split`` says: keep one file per split), a dataset folder or a hub id (read at ``split``
            through ``datasets.load_dataset``).
        schema: one of ``schemas``; detected from the first row when None.
        dataset_name: the hub dataset's config name, if any.
    """

    schemas: ClassVar[Collection[str]] = ()

    path: str | None = None
    schema: str | None = None
    dataset_name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.path, Path):
            object.__setattr__(self, "path", str(self.path))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        super().validate()
        name = type(self).__name__
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"{name}.path must be a file path or a hub id, got {self.path!r}")
        if self.schema is not None and self.schemas and self.schema not in self.schemas:
            raise ValueError(
                f"{name}.schema must be one of {tuple(self.schemas)} or None, got {self.schema!r}"
            )


class TaskSource:
    """Base class of task sources: ``len(source)``, ``source[i] -> Task``, ``index_of(task_id)``.

    Subclasses set ``config_class`` and implement :meth:`make_task` (a pure function of
    ``self.config`` and ``index``) and ``__len__`` (use :meth:`limit` so ``max_tasks`` applies).
    Sources that hold a list of tasks can instead set ``self.tasks`` in ``__init__`` and leave both
    to the base. ``index_of`` scans once and caches; procedural sources may override it to parse ids.
    """

    config_class: ClassVar[type[SourceConfig]] = SourceConfig
    #: the registered (kind, name), filled in by :func:`register_source`
    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def __init__(self, config: SourceConfig | None = None, **options: Any) -> None:
        if config is None:
            config = self.config_class.from_options(self.name or type(self).__name__, **options)
        elif options:
            raise TypeError(f"{type(self).__name__}: pass either a config or options, not both")
        elif not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        else:
            config.validate()
        self.config = config
        self.tasks: list[Task] | None = None
        self._ids: dict[str, int] | None = None

    # ---- what a subclass provides ---------------------------------------------------------------
    def make_task(self, index: int) -> Task:
        """The task at ``index`` (already bounds-checked)."""
        if self.tasks is None:
            raise NotImplementedError(f"{type(self).__name__} must implement make_task or set self.tasks")
        return self.tasks[index]

    def __len__(self) -> int:
        if self.tasks is None:
            raise NotImplementedError(f"{type(self).__name__} must implement __len__ or set self.tasks")
        return self.limit(len(self.tasks))

    # ---- shared -------------------------------------------------------------------------------
    @property
    def split(self) -> str:
        return self.config.split

    @property
    def seed(self) -> int:
        return self.config.seed

    def limit(self, size: int) -> int:
        """``size`` capped by ``max_tasks``."""
        return size if self.config.max_tasks is None else min(size, self.config.max_tasks)

    def id_prefix(self) -> str:
        """What every generated task id of this source starts with (the index follows):
        ``<name>/<seed>/<split>/`` unless a source keeps ids of its own format."""
        return f"{self.name or type(self).__name__}/{self.config.seed}/{self.config.split}/"

    def task_id(self, index: int) -> str:
        """The id of generated task ``index``: :meth:`id_prefix` + the index. The one place a
        generated id is written; :meth:`index_of` is the one place it is read."""
        return f"{self.id_prefix()}{index}"

    def __getitem__(self, index: int) -> Task:
        if isinstance(index, bool) or not isinstance(index, int):
            try:
                index = int(index.__index__())  # numpy integers
            except AttributeError:
                raise TypeError(f"task index must be an int, got {type(index).__name__}") from None
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f"{type(self).__name__}: task index {index} out of range 0..{n - 1}")
        return self.make_task(index)

    def __iter__(self) -> Iterator[Task]:
        for i in range(len(self)):
            yield self[i]

    def index_of(self, task_id: str) -> int:
        """The index of the task with id ``task_id``; ``KeyError`` when there is none.

        A generated source (no ``self.tasks`` list) reads the index off the id (no scan, no task
        built); a source holding a list of tasks (a file) looks the id up in a map built once.
        """
        task_id = str(task_id)
        if self.tasks is None:
            prefix = self.id_prefix()
            tail = task_id[len(prefix) :]
            if (
                task_id.startswith(prefix)
                and tail.isdigit()
                and str(int(tail)) == tail
                and int(tail) < len(self)
            ):
                return int(tail)
            raise KeyError(
                f"{type(self).__name__}: no task with task_id {task_id!r}; this source's ids are "
                f"{prefix}<index> with index < {len(self)}"
            )
        if self._ids is None:
            self._ids = {task.task_id: i for i, task in enumerate(self.tasks[: len(self)])}
        try:
            return self._ids[task_id]
        except KeyError:
            raise KeyError(f"{type(self).__name__}: no task with task_id {task_id!r}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


#: (kind, name) -> source factory (a TaskSource subclass, or any callable taking the options), or the
#: ``"module:attribute"`` it is imported from on first use
SOURCES: dict[tuple[str, str], Callable[..., Any] | str] = {}


def register_source(kind: str, name: str, factory: Callable[..., Any] | str | None = None) -> Any:
    """Register a source under ``(kind, name)``; usable as a class decorator or called with ``factory``.

    ``factory(**options)`` must return a source (``len``, ``[i]``, ``index_of``); a
    :class:`TaskSource` subclass is one. ``factory`` may also be the string ``"module:attribute"``: the
    module is then imported only when the source is first made, so registering costs no import (the
    built-in sources register so, when ``drift_envs`` is imported: see
    :func:`drift_envs.registration.register_builtin_sources`), and the module's own
    ``@register_source(kind, name)`` then fills the entry in. Registering a taken (kind, name) with a
    different factory is an error (so two packages cannot silently shadow each other).
    """
    if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
        raise ValueError(f"register_source needs a non-empty kind and name, got {kind!r}, {name!r}")
    if isinstance(factory, str) and factory.count(":") != 1:
        raise ValueError(
            f"register_source({kind!r}, {name!r}): a lazy factory is 'module:attribute', got {factory!r}"
        )

    def register(obj: Any) -> Any:
        current = SOURCES.get((kind, name))
        if current is not None and current is not obj and current != _path_of(obj):
            same = getattr(current, "__qualname__", None) == getattr(obj, "__qualname__", 0) and getattr(
                current, "__module__", None
            ) == getattr(obj, "__module__", 0)
            # a lazy entry stays when its module, imported, registers the object it names
            lazy_filled = isinstance(obj, str) and obj == _path_of(current)
            if not same and not lazy_filled:  # re-running a module (a notebook cell) re-registers: fine
                raise ValueError(f"a {kind!r} source named {name!r} is already registered ({current!r})")
            if lazy_filled:
                return obj
        if isinstance(obj, type) and issubclass(obj, TaskSource):
            obj.kind, obj.name = kind, name
        SOURCES[(kind, name)] = obj
        return obj

    return register(factory) if factory is not None else register


def _path_of(obj: Any) -> str | None:
    """``"module:qualname"`` of a class or function (what a lazy entry names), else None."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}:{qualname}" if isinstance(module, str) and isinstance(qualname, str) else None


def registered_sources(kind: str | None = None) -> list[tuple[str, str]]:
    """The registered (kind, name) pairs, sorted; only those of ``kind`` when given (lazy entries
    included: listing them imports nothing)."""
    return sorted(k for k in SOURCES if kind is None or k[0] == kind)


def source_factory(kind: str, name: str) -> Callable[..., Any] | None:
    """The factory registered under ``(kind, name)``, importing its module first for a lazy entry;
    None when there is none."""
    factory = SOURCES.get((kind, name))
    if isinstance(factory, str):
        module, attribute = factory.split(":")
        obj: Any = importlib.import_module(module)  # its @register_source fills the entry in
        for part in attribute.split("."):
            obj = getattr(obj, part)
        if SOURCES.get((kind, name)) == factory:  # a module that does not register itself
            del SOURCES[(kind, name)]
            register_source(kind, name, obj)
        factory = SOURCES[(kind, name)]
    return factory


def make_source(
    kind: str,
    dataset: Any = None,
    *,
    split: str = "test",
    seed: int = 0,
    max_tasks: int | None = None,
    **options: Any,
) -> Any:
    """The source ``dataset`` names for an env of ``kind``.

    ``None`` -> the kind's ``"procedural"`` source; a registered name -> that source; any other string
    or path (a local file, a hub id) -> the kind's ``"file"`` source with ``path=dataset``; an object
    that already is a source (has ``__len__``, ``__getitem__`` and ``index_of``) is used as it is.
    ``options`` are the source's own config fields; ``None`` means the default.
    """
    if dataset is not None and not isinstance(dataset, (str, bytes)) and hasattr(dataset, "index_of"):
        return dataset
    common = {"split": split, "seed": seed, "max_tasks": max_tasks}
    name = DEFAULT_SOURCE if dataset is None else None
    if isinstance(dataset, str) and (kind, dataset) in SOURCES:
        name = dataset
    if name is None:
        name, options = FILE_SOURCE, {**options, "path": dataset}
    factory = source_factory(kind, name)
    if factory is None:
        known = ", ".join(n for k, n in registered_sources(kind)) or "none"
        raise ValueError(f"no {kind!r} task source named {name!r} (registered: {known})")
    return factory(**common, **options)
