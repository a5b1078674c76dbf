"""Loading raw task rows from local files and the Hugging Face hub, with errors that say where.

Every env turns rows into :class:`~drift_envs.core.Task` objects with its own adapters; this module only
gets the rows, each with a human-readable location (``path:line``) so a bad row can be named.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LOCAL_SUFFIXES", "DataError", "Row", "load_rows", "require_field", "require_location"]

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".jsonl.gz")


class DataError(ValueError):
    """A task file or dataset row is unusable; the message names the file, row and field."""


@dataclass(frozen=True)
class Row:
    """One raw record and where it came from (``where`` reads like ``data.jsonl:17``)."""

    data: dict[str, Any]
    where: str


def require_field(row: Row, name: str, kind: type | tuple[type, ...] = str) -> Any:
    """``row.data[name]``, checked to exist, be non-empty and have type ``kind``; else :class:`DataError`."""
    if name not in row.data or row.data[name] is None:
        present = ", ".join(sorted(row.data)) or "none"
        raise DataError(f"{row.where}: missing field {name!r} (fields present: {present})")
    value = row.data[name]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(f"{row.where}: field {name!r} should be {names}, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise DataError(f"{row.where}: field {name!r} is empty")
    return value


def _jsonl_rows(path: Path, lines: Iterable[str]) -> list[Row]:
    rows = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(data).__name__}")
        rows.append(Row(data, f"{path}:{lineno}"))
    return rows


def _local_rows(path: Path) -> list[Row]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith(".jsonl.gz"):
        import gzip

        with gzip.open(path, "rt", encoding="utf-8") as f:
            return _jsonl_rows(path, f)
    if name.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            return _jsonl_rows(path, f)
    if name.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if isinstance(data, dict):  # {"data": [...]} / {"train": [...]}-style wrappers
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise DataError(f"{path}: expected a JSON list of objects (or an object holding one list)")
            data = lists[0]
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
        rows = []
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise DataError(f"{path}: item {i} is {type(item).__name__}, expected an object")
            rows.append(Row(item, f"{path}[{i}]"))
        return rows
    if name.endswith(".parquet"):
        import datasets

        table = datasets.Dataset.from_parquet(str(path))
        return [Row(dict(r), f"{path} row {i}") for i, r in enumerate(table)]
    raise DataError(f"{path}: unsupported file type; use one of {', '.join(LOCAL_SUFFIXES)}")


def require_location(dataset: str, kind: str) -> None:
    """Refuse a ``dataset=`` value that can be no file, folder or hub id, before the hub is asked.

    A kind's ``file`` source gets every ``dataset=`` that is not a registered name; a bare word that
    is no existing path, has no file suffix and is no ``owner/name`` hub id is most likely a source
    name misspelt (or a source whose module was not imported), so the error lists the registered ones.
    """
    path = Path(dataset).expanduser()
    if path.exists() or path.name.lower().endswith(LOCAL_SUFFIXES) or "/" in dataset or "\\" in dataset:
        return
    from drift_envs.sources.base import registered_sources

    known = ", ".join(name for _, name in registered_sources(kind)) or "none"
    raise ValueError(
        f"no {kind!r} task source named {dataset!r} (registered: {known}); a local file needs one of "
        f"the suffixes {', '.join(LOCAL_SUFFIXES)} and a hub id reads owner/name"
    )


def load_rows(dataset: str, split: str = "test", name: str | None = None) -> list[Row]:
    """Raw rows from a local file (``.jsonl``, ``.json``, ``.parquet``), a dataset folder, or a hub id.

    A hub id goes through ``datasets.load_dataset(dataset, name, split=split)``, so the usual
    ``HF_DATASETS_OFFLINE``/cache settings apply.
    """
    path = Path(dataset).expanduser()
    if path.is_file() or path.name.lower().endswith(LOCAL_SUFFIXES):
        return _local_rows(path)
    # hub ids and local dataset folders both go through datasets.load_dataset
    import datasets

    try:
        table = datasets.load_dataset(dataset, name, split=split)
    except Exception as e:  # the hub, the cache and the builders each raise their own types
        raise DataError(
            f"could not load dataset {dataset!r} (config {name!r}, split {split!r}) with "
            f"datasets.load_dataset: {type(e).__name__}: {e}"
        ) from e
    return [Row(dict(r), f"{dataset}[{split}] row {i}") for i, r in enumerate(table)]
