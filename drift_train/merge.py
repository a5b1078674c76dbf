"""Shards of one rollout job and their merge.

``drift rollout --shard i/N`` runs share ``i`` (0-based) of ``N``: the rollout's chunks (whole
``prompt_id`` groups, see :mod:`drift_train.rollout`) dealt out in turn, chunk ``c`` to shard
``c % N``, so each shard runs exactly the batches the unsharded run would have run, and its records
are those of the unsharded run (every backend, the hf backend's batch-seeded sampling included). Each
record's ``meta.shard`` says ``"i/N"``.

:func:`merge_shards` reads shard files and checks that they are one job: every
``(prompt_id, traj_idx)`` exactly once, every group complete (``traj_idx`` 0..K-1, one K), one
``env_id``, ``env_kwargs`` and sampling config (``meta.sampling`` and ``meta.seed``) throughout, and,
when the records name their shards, every shard of the ``N`` present. It refuses with the file and line
at fault. :func:`read_records` is what ``drift weights``, ``drift train`` and ``drift eval --records``
read: one file as before, or a comma-separated list or glob of shard files, merged and checked.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drift_train.trajectories import TrajectoryError, read_trajectories, write_trajectories

__all__ = ["expand_paths", "merge_shards", "parse_shard", "read_records", "shard_chunks", "write_merged"]

_GLOB_CHARS = set("*?[")
# what must be one value across a job's records: (label, how to read it from a record)
_JOB_FIELDS = (
    ("env_id", lambda r: r.get("env_id")),
    ("env_kwargs", lambda r: r.get("env_kwargs")),
    ("meta.sampling", lambda r: (r.get("meta") or {}).get("sampling")),
    ("meta.seed", lambda r: (r.get("meta") or {}).get("seed")),
)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``; ``ValueError`` naming the expected form otherwise."""
    parts = str(text).strip().split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/N, e.g. 0/4 (the first of 4 shards)") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: i counts from 0, so 0 <= i < N (e.g. 0/4 ... 3/4)")
    return index, count


def shard_chunks(chunks: Sequence[Any], shard: tuple[int, int]) -> list[Any]:
    """The chunks of shard ``(i, N)``: every N-th, from the i-th. ``ValueError`` when it gets none."""
    index, count = shard
    mine = list(chunks[index::count])
    if not mine:
        raise ValueError(
            f"--shard {index}/{count}: this rollout has only {len(chunks)} chunk(s) (whole groups, "
            f"--batch-size episodes each), so shard {index} would be empty; use fewer shards or a smaller "
            "--batch-size (the same one for every shard)"
        )
    return mine


def expand_paths(spec: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The files a trajectory argument names: a path, a glob (``'shards/run-*.jsonl'``, quoted so the
    program expands it), or a comma-separated list of either, or a sequence of them. A glob that
    matches nothing, a missing file, or a file named twice is a ``FileNotFoundError``/``ValueError``."""
    entries = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    parts = [p.strip() for entry in entries for p in str(entry).split(",")]
    paths: list[Path] = []
    for part in parts:
        if not part:
            raise ValueError(f"{spec!r}: an empty entry in the list of trajectory files")
        if _GLOB_CHARS & set(part):
            matched = sorted(glob.glob(part))
            if not matched:
                raise FileNotFoundError(f"{part}: no trajectory file matches this pattern")
            paths += [Path(m) for m in matched]
        else:
            paths.append(Path(part))
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no trajectory file at {path}")
    seen: set[Path] = set()
    for path in paths:
        if path.resolve() in seen:
            raise ValueError(f"{path} is named twice; each shard counts once")
        seen.add(path.resolve())
    return paths


def _sort_key(record: dict) -> tuple:
    prompt_id = record["prompt_id"]
    return (isinstance(prompt_id, str), prompt_id, record["traj_idx"])


def merge_shards(paths: Sequence[str | os.PathLike]) -> list[dict]:
    """The records of shard files as one job, sorted by ``(prompt_id, traj_idx)``; raises
    :class:`~drift_train.trajectories.TrajectoryError` with the file and line at fault (module docstring)."""
    if not paths:
        raise ValueError("no shard files to merge")
    records: list[dict] = []
    where: dict[tuple, tuple[Path, int]] = {}  # (prompt_id, traj_idx) -> (file, line) of its record
    job: dict[str, tuple[Any, Path, int]] = {}  # field -> (value, file, line) of the first record
    shards: dict[str, set[int]] = {}  # "N" -> the shard indices seen
    shard_of: dict[Path, tuple[str, int]] = {}
    for path in map(Path, paths):
        lines = _record_lines(path)
        for record, line in zip(read_trajectories(path), lines, strict=True):
            key = (type(record["prompt_id"]).__name__, record["prompt_id"], record["traj_idx"])
            if key in where:
                first, at = where[key]
                raise TrajectoryError(
                    f"(prompt_id={record['prompt_id']!r}, traj_idx={record['traj_idx']}) is also at "
                    f"{first}:{at}: each trajectory must be in exactly one shard",
                    path=path,
                    line=line,
                    field="traj_idx",
                )
            where[key] = (path, line)
            for name, read in _JOB_FIELDS:
                value = read(record)
                if name not in job:
                    job[name] = (value, path, line)
                elif _canonical(job[name][0]) != _canonical(value):
                    first_value, first, at = job[name]
                    raise TrajectoryError(
                        f"is {value!r} but {first}:{at} has {first_value!r}: shards of one job share one "
                        "env and sampling config (run every shard with the same flags)",
                        path=path,
                        line=line,
                        field=name,
                    )
            shard = (record.get("meta") or {}).get("shard")
            if shard is not None:
                index, count = parse_shard(shard)
                if shard_of.setdefault(path, (str(count), index)) != (str(count), index):
                    raise TrajectoryError(
                        f"is {shard!r} but earlier records of this file are shard "
                        f"{shard_of[path][1]}/{shard_of[path][0]}: one file per shard",
                        path=path,
                        line=line,
                        field="meta.shard",
                    )
                shards.setdefault(str(count), set()).add(index)
            records.append(record)
    if len(shards) > 1:
        raise ValueError(f"the files are shards of different splits (N = {', '.join(sorted(shards))})")
    for count, seen in shards.items():
        missing = sorted(set(range(int(count))) - seen)
        if missing:
            raise ValueError(
                f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: no file given holds them"
            )
    records.sort(key=_sort_key)
    _check_complete(records, where)
    return records


def _check_complete(records: list[dict], where: dict) -> None:
    """Every group has traj_idx 0..K-1 with one K for all: a group cut short means a shard was cut short."""
    groups: dict[tuple, list[int]] = {}
    for record in records:
        groups.setdefault((type(record["prompt_id"]).__name__, record["prompt_id"]), []).append(
            record["traj_idx"]
        )
    k = max(len(members) for members in groups.values())
    for (kind, prompt_id), members in groups.items():
        if sorted(members) != list(range(k)):
            path, line = where[(kind, prompt_id, members[0])]
            raise TrajectoryError(
                f"group prompt_id={prompt_id!r} has traj_idx {sorted(members)}, expected 0..{k - 1} like the "
                "other groups: a shard is incomplete (resume it with --resume) or missing",
                path=path,
                line=line,
                field="traj_idx",
            )


def _record_lines(path: Path) -> list[int]:
    """The line (JSONL) or row (Parquet) number of each record ``read_trajectories`` yields, in order."""
    if path.suffix == ".parquet":
        return list(range(1, sum(1 for _ in read_trajectories(path, validate=False)) + 1))
    with open(path, "rb") as handle:
        return [number for number, raw in enumerate(handle, start=1) if raw.strip()]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def read_records(spec: str | os.PathLike | Sequence[str | os.PathLike]) -> list[dict]:
    """The records a trajectory argument names (:func:`expand_paths`): one file read as it is
    (:func:`~drift_train.trajectories.read_trajectories`), several merged and checked (:func:`merge_shards`)."""
    paths = expand_paths(spec)
    if len(paths) == 1:
        return list(read_trajectories(paths[0]))
    return merge_shards(paths)


def write_merged(
    out: str | os.PathLike, paths: Sequence[str | os.PathLike], *, overwrite: bool = False
) -> int:
    """Merge shard files into ``out`` (JSONL or Parquet); returns the record count. ``out`` is written
    whole or not at all (a temporary file renamed over it), never one of the inputs, and an existing
    ``out`` is replaced only with ``overwrite``."""
    out = Path(out)
    inputs = expand_paths(paths)
    if any(out.resolve() == p.resolve() for p in inputs):
        raise ValueError(f"{out} is one of the shards; write the merge to another file")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    records = merge_shards(inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=out.suffix)
    os.close(handle)
    try:
        write_trajectories(records, temporary)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return len(records)
