"""The trajectory record: one JSON object per multi-turn episode, stored as JSONL or Parquet.

Fields (docs/design.md), a superset of the DRIFT reference release's rows::

    prompt_id      int | str   group id: the K samples of one task share it
    traj_idx       int         0..K-1 inside the group
    env_id         str | None  e.g. "drift/MathFeedback-v0"
    env_kwargs     dict        kwargs the env was made with
    task_id        str         the env's id of the task
    messages       list        the whole conversation [{"role", "content"}], system prompt included;
                               tool envs add OpenAI shapes: assistant "tool_calls", "tool" messages
                               with "tool_call_id" and "name" (checked by validate_record)
    turn_rewards   dict        {"t1": r1, "t2": r2, ...}: per-turn reward without the format penalty
    verifier       dict        {"t1": 0|1, ...}: was turn t's answer correct
    t_star         int | None  first correct turn (1-based), None when never correct
    answer_norms   list        extracted, normalised answer of each turn (None where none was found)
    format_penalty float       sum of the per-turn format penalties (<= 0)
    meta           dict        model, backend, sampling params, seeds, schema version, timestamps, ...
    undecided_turns list       optional: the turns (1-based, increasing) whose verdict the env's checker
                               could not reach in time (``info["undecided"]``); each is scored as the
                               env scored it (verifier 0, reward 0, no format penalty). Absent when
                               no turn was undecided, so such records are the same as before the field

Rows of the reference release carry only some of these (``prompt_id``, ``messages``,
``turn_rewards``, ``verifier``, ``t_star``, ``answer_norms``, ``format_penalty``), sometimes with
dicts and lists stored as JSON strings; :func:`read_trajectories` fills in the rest
(``traj_idx`` by order inside the group, ``verifier``/``t_star`` from each other). The release pads
``turn_rewards``/``verifier`` with zeros up to ``max_turns``: the zeros after the last assistant turn
are dropped as padding (``meta.max_turns`` keeps the budget; a non-zero one is refused), and its
``answer_norms`` (one entry per executed action) may have any length. Every row is validated, and a
bad one is rejected with its file, line and field; so are rows that would silently change the weights
of their group: a repeated ``(prompt_id, traj_idx)``, members that disagree on ``task_id``/``env_id``/
``env_kwargs``, ``1`` next to ``"1"``, a positive ``format_penalty``.

:class:`TrajectoryWriter` appends one line per record and flushes it, so an interrupted rollout
loses at most the line being written (which the next writer on the file trims away).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
ROLES = ("system", "user", "assistant", "tool")
_TURN_KEY = re.compile(r"^t([1-9][0-9]*)$")
# reward_details: the release's per-turn record (actions, format penalty), which per-turn credit and
# the format-error rate read
_JSON_FIELDS = (
    "messages",
    "turn_rewards",
    "verifier",
    "answer_norms",
    "env_kwargs",
    "meta",
    "tokens",
    "reward_details",
    "undecided_turns",
)
# columns stored as JSON text in Parquet, so files with different turn counts and kwargs share a schema
_PARQUET_JSON_COLUMNS = ("turn_rewards", "verifier", "env_kwargs", "meta", "tokens")

__all__ = [
    "SCHEMA_VERSION",
    "TrajectoryError",
    "TrajectoryWriter",
    "group_by_prompt",
    "normalize_record",
    "read_trajectories",
    "turn_keys",
    "undecided_turns",
    "validate_groups",
    "validate_record",
    "write_trajectories",
]


class TrajectoryError(ValueError):
    """A trajectory row is malformed; carries the file, line (1-based) and field at fault."""

    def __init__(
        self,
        problem: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path or "<records>"
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {problem}")


def turn_keys(num_turns: int) -> list[str]:
    """``["t1", ..., "tT"]``."""
    return [f"t{t}" for t in range(1, num_turns + 1)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _turn_dict(value: Any, field: str, err) -> dict[str, Any]:
    """Turn-indexed values as an ordered {"t1": ..} dict; accepts a dict or a list."""
    if isinstance(value, list):
        return {f"t{i}": v for i, v in enumerate(value, start=1)}
    if not isinstance(value, dict):
        raise err(f"must be a dict {{'t1': ..., 't2': ...}} or a list, got {type(value).__name__}", field)
    numbered = {}
    for key, v in value.items():
        match = _TURN_KEY.match(str(key))
        if not match:
            raise err(f"key {key!r} is not of the form 't1', 't2', ...", field)
        numbered[int(match.group(1))] = v
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise err(f"keys {sorted(value)} must be t1..t{len(numbered)} without gaps", field)
    return {f"t{t}": numbered[t] for t in range(1, len(numbered) + 1)}


def normalize_record(
    row: dict, *, path: str | os.PathLike | None = None, line: int | None = None, traj_idx: int | None = None
) -> dict:
    """Return ``row`` as a complete, validated record of this schema.

    Accepts the reference release's rows: JSON-string fields are decoded, list-valued
    ``turn_rewards``/``verifier`` become ``{"t1": ...}`` dicts, a missing ``verifier`` is read off
    ``t_star`` (or off ``turn_rewards >= 1`` when ``t_star`` is absent or null too), a missing
    ``t_star`` off ``verifier``, a missing ``traj_idx`` is taken from the argument. Raises :class:`TrajectoryError`.
    """

    def err(problem: str, field: str | None = None) -> TrajectoryError:
        return TrajectoryError(problem, path=path, line=line, field=field)

    if not isinstance(row, dict):
        raise err(f"a trajectory must be a JSON object, got {type(row).__name__}")
    record = dict(row)
    for field in _JSON_FIELDS:
        if isinstance(record.get(field), str):
            try:
                record[field] = json.loads(record[field])
            except json.JSONDecodeError as e:
                raise err(f"is a string but not valid JSON ({e.msg} at char {e.pos})", field) from None
    for field in ("prompt_id", "messages", "turn_rewards"):
        if record.get(field) is None:
            raise err("is missing", field)
    if "undecided_turns" in record and record["undecided_turns"] is None:
        # a Parquet column holds every row's value; rows without undecided turns read back as null
        del record["undecided_turns"]
    for field in ("turn_rewards", "verifier", "reward_details"):
        if isinstance(record.get(field), dict):
            # Parquet struct columns hold the union of all rows' turn keys; unused ones read back as None
            record[field] = {k: v for k, v in record[field].items() if v is not None}
    record["turn_rewards"] = _turn_dict(record["turn_rewards"], "turn_rewards", err)
    if record.get("format_penalty") is None and record.get("trajectory_penalty") is not None:
        # the release's weight_sft.py reads this older name when format_penalty is absent
        record["format_penalty"] = record["trajectory_penalty"]
    taken = _assistant_turns(record.get("messages"))
    padded_to = None
    if taken and len(record["turn_rewards"]) > taken:
        padded_to = len(record["turn_rewards"])
        record["turn_rewards"] = _strip_padding(record["turn_rewards"], taken, "turn_rewards", err)
    num_turns = len(record["turn_rewards"])
    if record.get("traj_idx") is None:
        if traj_idx is None:
            raise err("is missing", "traj_idx")
        record["traj_idx"] = traj_idx
    t_star = record.get("t_star")
    if t_star is not None and not _is_int(t_star):
        raise err(f"must be an int or null, got {t_star!r}", "t_star")
    if record.get("verifier") is None:
        if t_star is not None:
            record["verifier"] = {k: int(t_star == t) for t, k in enumerate(turn_keys(num_turns), start=1)}
        else:  # a null t_star may only mean "column absent" (Parquet): trust the rewards
            record["verifier"] = {
                k: int(_is_number(r) and r >= 1.0) for k, r in record["turn_rewards"].items()
            }
            record.pop("t_star", None)
    else:
        record["verifier"] = _turn_dict(record["verifier"], "verifier", err)
        record["verifier"] = {k: int(v) if isinstance(v, bool) else v for k, v in record["verifier"].items()}
        if taken and len(record["verifier"]) > taken:
            padded_to = max(padded_to or 0, len(record["verifier"]))
            record["verifier"] = _strip_padding(record["verifier"], taken, "verifier", err)
    if "t_star" not in record:
        record["t_star"] = next(
            (t for t, k in enumerate(record["verifier"], start=1) if record["verifier"][k] == 1), None
        )
    record.setdefault("env_id", None)
    record.setdefault("env_kwargs", {})
    if record.get("task_id") is None:
        record["task_id"] = str(record["prompt_id"])
    if record.get("answer_norms") is None:
        record["answer_norms"] = [None] * num_turns
    if record.get("format_penalty") is None:
        record["format_penalty"] = 0.0
    if record.get("meta") is None:
        record["meta"] = {}
    if padded_to is not None and isinstance(record["meta"], dict):
        # the turn budget the padding stood for: success@1..T of `drift eval --records` runs to it
        record["meta"] = {**record["meta"], "max_turns": record["meta"].get("max_turns", padded_to)}
    validate_record(record, path=path, line=line)
    return record


def _assistant_turns(messages: Any) -> int | None:
    """Assistant messages in a (not yet validated) conversation; None when it is malformed (left to
    :func:`validate_record` to report)."""
    if not isinstance(messages, list):
        return None
    count = 0
    for message in messages:  # one pass: this runs on every row read
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            return None
        count += role == "assistant"
    return count


def _strip_padding(turns: dict[str, Any], taken: int, field: str, err) -> dict[str, Any]:
    """The first ``taken`` turns of a turn dict padded with zeros to ``max_turns`` (the release pads
    ``turn_rewards`` and ``verifier`` with ``setdefault`` for t1..t5); refuses a padded turn that is
    not zero, since it would be a reward for a reply that is not in ``messages``."""
    for key in list(turns)[taken:]:
        value = turns[key]
        if not (_is_number(value) and value == 0):
            raise err(
                f"the row has {taken} assistant messages but {field} has {len(turns)} turns, and {key} = "
                f"{value!r} is not padding: turns after the last one taken must be 0 (is a reply missing "
                "from messages?)",
                f"{field}.{key}",
            )
    return {key: turns[key] for key in list(turns)[:taken]}


def _check_tool_message(message: dict, field: str, err) -> None:
    """The OpenAI tool shapes: an assistant's ``tool_calls`` (``[{"id", "type": "function", "function":
    {"name", "arguments"}}]``, arguments an object or its JSON string) and a ``tool`` message's
    ``tool_call_id`` and ``name``."""
    if message["role"] == "tool":
        for key in ("tool_call_id", "name"):
            if not isinstance(message.get(key), str) or not message[key]:
                raise err(
                    f"a tool message needs a non-empty str {key!r}, got {message.get(key)!r}",
                    f"{field}.{key}",
                )
        return
    calls = message["tool_calls"]
    if message["role"] != "assistant":
        raise err(
            f"only assistant messages carry tool_calls, not {message['role']!r} ones", f"{field}.tool_calls"
        )
    if not isinstance(calls, list):
        raise err(f"must be a list of calls, got {type(calls).__name__}", f"{field}.tool_calls")
    for j, call in enumerate(calls):
        where = f"{field}.tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            raise err('must be {"id", "type": "function", "function": {"name", "arguments"}}', where)
        if not isinstance(call.get("id", ""), str):
            raise err(f"must be a str, got {type(call.get('id')).__name__}", f"{where}.id")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise err(f"must be a non-empty str, got {fn.get('name')!r}", f"{where}.function.name")
        arguments = fn.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                raise err("is a str that is not valid JSON", f"{where}.function.arguments") from None
        if not isinstance(arguments, dict):
            raise err(
                f"must be an object (or its JSON string), got {type(arguments).__name__}",
                f"{where}.function.arguments",
            )


def validate_record(record: dict, *, path: str | os.PathLike | None = None, line: int | None = None) -> None:
    """Check a complete record against the schema; raise :class:`TrajectoryError` at the first bad field."""

    def err(problem: str, field: str | None = None) -> TrajectoryError:
        return TrajectoryError(problem, path=path, line=line, field=field)

    if not isinstance(record, dict):
        raise err(f"a trajectory must be a JSON object, got {type(record).__name__}")
    required = (
        "prompt_id",
        "traj_idx",
        "env_id",
        "env_kwargs",
        "task_id",
        "messages",
        "turn_rewards",
        "verifier",
        "t_star",
        "answer_norms",
        "format_penalty",
        "meta",
    )
    for field in required:
        if field not in record:
            raise err("is missing", field)
    prompt_id = record["prompt_id"]
    if not (_is_int(prompt_id) or isinstance(prompt_id, str)):
        raise err(f"must be an int or a str, got {type(prompt_id).__name__}", "prompt_id")
    if prompt_id == "":
        raise err("is empty: it names the group whose samples are weighted against each other", "prompt_id")
    if not _is_int(record["traj_idx"]) or record["traj_idx"] < 0:
        raise err(f"must be a non-negative int, got {record['traj_idx']!r}", "traj_idx")
    if record["env_id"] is not None and not isinstance(record["env_id"], str):
        raise err(f"must be a str or null, got {type(record['env_id']).__name__}", "env_id")
    for field in ("env_kwargs", "meta"):
        if not isinstance(record[field], dict):
            raise err(f"must be a dict, got {type(record[field]).__name__}", field)
    if not isinstance(record["task_id"], str):
        raise err(f"must be a str, got {type(record['task_id']).__name__}", "task_id")

    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise err("must be a non-empty list of {'role', 'content'} objects", "messages")
    for i, message in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(message, dict):
            raise err(f"must be an object with 'role' and 'content', got {type(message).__name__}", field)
        if message.get("role") not in ROLES:
            raise err(f"role must be one of {ROLES}, got {message.get('role')!r}", f"{field}.role")
        if not isinstance(message.get("content"), str):
            raise err(f"must be a str, got {type(message.get('content')).__name__}", f"{field}.content")
        if "tool_calls" in message or message["role"] == "tool":
            _check_tool_message(message, field, err)

    rewards = record["turn_rewards"]
    if not isinstance(rewards, dict) or not rewards:
        raise err("must be a non-empty dict {'t1': r1, ...}", "turn_rewards")
    num_turns = len(rewards)
    keys = turn_keys(num_turns)
    if list(rewards) != keys:
        raise err(f"keys must be {keys} in order, got {list(rewards)}", "turn_rewards")
    for key, value in rewards.items():
        if not _is_number(value):
            raise err(f"must be a finite number, got {value!r}", f"turn_rewards.{key}")
    verifier = record["verifier"]
    if not isinstance(verifier, dict) or list(verifier) != keys:
        got = list(verifier) if isinstance(verifier, dict) else type(verifier).__name__
        raise err(f"keys must match turn_rewards ({keys}), got {got}", "verifier")
    for key, value in verifier.items():
        if value not in (0, 1):
            raise err(f"must be 0 or 1, got {value!r}", f"verifier.{key}")
    assistant_turns = sum(1 for m in messages if m["role"] == "assistant")
    if assistant_turns != num_turns:
        raise err(
            f"has {assistant_turns} assistant messages but turn_rewards has {num_turns} turns", "messages"
        )
    t_star = record["t_star"]
    first_correct = next((t for t, k in enumerate(keys, start=1) if verifier[k] == 1), None)
    if t_star is not None and (not _is_int(t_star) or not 1 <= t_star <= num_turns):
        raise err(f"must be null or an int in 1..{num_turns}, got {t_star!r}", "t_star")
    if t_star != first_correct:
        raise err(
            f"is {t_star!r} but the first turn the verifier marks correct is {first_correct!r}", "t_star"
        )
    if t_star is not None and num_turns > t_star:
        # an episode ends at its first correct turn: rewards recorded after it would add return no
        # episode earned (a solved trajectory padded with more rewarded turns outweighs its group)
        raise err(
            f"has {num_turns} turns but the episode was solved at turn {t_star} (t_star), where it ends",
            "turn_rewards",
        )
    answers = record["answer_norms"]
    # our records hold one entry per turn (None: no answer); the release appends one per executed
    # action, so a format error leaves no entry and one turn may add several: any length there
    ours = "schema_version" in record["meta"]
    if not isinstance(answers, list) or (ours and len(answers) != num_turns):
        got = len(answers) if isinstance(answers, list) else type(answers).__name__
        raise err(f"must be a list with one entry per turn ({num_turns}), got {got}", "answer_norms")
    for i, answer in enumerate(answers):
        if answer is not None and not isinstance(answer, str):
            raise err(f"must be a str or null, got {type(answer).__name__}", f"answer_norms[{i}]")
    if not _is_number(record["format_penalty"]):
        raise err(f"must be a finite number, got {record['format_penalty']!r}", "format_penalty")
    if record["format_penalty"] > 0:
        raise err(
            f"is {record['format_penalty']!r} but must be <= 0: it is the sum of the per-turn format "
            "penalties (the release writes -0.1 per reply without an answer), and a positive value would "
            "reward format errors",
            "format_penalty",
        )
    if "undecided_turns" in record:
        _check_undecided(record["undecided_turns"], rewards, verifier, err)
    if record.get("tokens") is not None:
        from drift_train.tokens import check_tokens

        problem = check_tokens(record["tokens"], num_turns)
        if problem is not None:
            raise err(problem[1], problem[0])


def _check_undecided(turns: Any, rewards: dict, verifier: dict, err) -> None:
    """``undecided_turns``: increasing 1-based turn numbers within the record, each scored as the
    contract scores an undecided step (verifier 0, reward 0): a turn marked undecided but rewarded or
    judged correct contradicts itself, and would train or evaluate on a verdict nobody reached."""
    field = "undecided_turns"
    if not isinstance(turns, list):
        raise err(f"must be a list of turn numbers (1-based), got {type(turns).__name__}", field)
    previous = 0
    for i, turn in enumerate(turns):
        where = f"{field}[{i}]"
        if not _is_int(turn) or not 1 <= turn <= len(rewards):
            raise err(f"must be a turn number in 1..{len(rewards)}, got {turn!r}", where)
        if turn <= previous:
            raise err(f"turn numbers must increase without repeats, got {turn} after {previous}", where)
        previous = turn
        key = f"t{turn}"
        if verifier[key] != 0 or rewards[key] != 0:
            raise err(
                f"turn {turn} is undecided but verifier.{key} = {verifier[key]!r} and turn_rewards.{key} = "
                f"{rewards[key]!r}: an undecided step has no verdict, so it is scored 0 and not correct",
                where,
            )


def undecided_turns(record: dict) -> list[int]:
    """The turns of ``record`` whose verdict was undecided (``undecided_turns``; [] when absent)."""
    return list(record.get("undecided_turns") or [])


def _iter_jsonl(path: Path, allow_partial_tail: bool) -> Iterator[tuple[int, Any]]:
    with open(path, "rb") as handle:
        data = handle.read()
    lines = data.split(b"\n")
    complete_until = len(lines) - 1  # the piece after the last "\n" (empty for a clean file)
    for number, raw in enumerate(lines, start=1):
        if number > complete_until and not raw.strip():
            break
        if not raw.strip():
            continue
        if number > complete_until and allow_partial_tail:
            return  # no newline: a write that was cut off (the writer trims it), even if it parses
        try:
            yield number, json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            detail = f"{e.msg} at char {e.pos}" if isinstance(e, json.JSONDecodeError) else str(e)
            raise TrajectoryError(f"not valid JSON ({detail})", path=path, line=number) from None


def _iter_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def read_trajectories(
    path: str | os.PathLike, *, validate: bool = True, allow_partial_tail: bool = False
) -> Iterator[dict]:
    """Yield the records of a ``.jsonl`` or ``.parquet`` file, normalised and validated.

    Line numbers in errors are file lines for JSONL and 1-based row numbers for Parquet.
    ``allow_partial_tail`` skips a last JSONL line without its final newline, which is what an
    interrupted rollout leaves behind (and what :class:`TrajectoryWriter` trims before appending). With ``validate=False``
    the raw rows are yielded untouched.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no trajectory file at {path}")
    rows = _iter_parquet(path) if path.suffix == ".parquet" else _iter_jsonl(path, allow_partial_tail)
    next_idx: dict[Any, int] = defaultdict(int)
    groups = _GroupCheck(path)
    for number, row in rows:
        if not validate:
            yield row
            continue
        prompt_id = row.get("prompt_id") if isinstance(row, dict) else None
        key = prompt_id if isinstance(prompt_id, (int, str)) else None
        record = normalize_record(row, path=path, line=number, traj_idx=next_idx[key])
        next_idx[key] = max(next_idx[key], record["traj_idx"] + 1) if key is not None else 0
        groups.add(record, number, present=row)
        yield record


def write_trajectories(records: Iterable[dict], path: str | os.PathLike) -> Path:
    """Write records to a new ``.jsonl`` or ``.parquet`` file (replacing it); returns the path."""
    path = Path(path)
    records = list(records)
    for i, record in enumerate(records):
        validate_record(record, path=path, line=i + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        # every field any row has, None where a row lacks it: from_pylist takes its columns from the first
        # row only, which silently dropped an optional field (undecided_turns, tokens) that row lacked
        columns = list(dict.fromkeys(k for r in records for k in r))
        rows = [
            {k: (json.dumps(r[k]) if k in _PARQUET_JSON_COLUMNS and k in r else r.get(k)) for k in columns}
            for r in records
        ]
        # prompt_id may be int or str across files; keep each file's own type
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        with open(path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


class TrajectoryWriter:
    """Append records to a JSONL file, one flushed line each.

    Opening a file whose last line was cut off mid-write (an interrupted run) trims that line first,
    so appending never glues a new record onto a broken one. ``fsync=True`` also forces each line
    to disk (slower; for runs that must survive a machine crash, not just a killed process).
    """

    def __init__(self, path: str | os.PathLike, *, fsync: bool = False) -> None:
        self.path = Path(path)
        if self.path.suffix == ".parquet":
            raise ValueError(
                f"{self.path}: rollouts stream to JSONL; convert afterwards with write_trajectories()"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.trimmed_bytes = _trim_partial_tail(self.path)
        self._handle = open(self.path, "a", encoding="utf-8")
        self.count = 0

    def write(self, record: dict) -> None:
        """Validate ``record``, append it as one line and flush."""
        validate_record(record, path=self.path)
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        if self.fsync:
            os.fsync(self._handle.fileno())
        self.count += 1

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _trim_partial_tail(path: Path) -> int:
    """Cut a last line that has no newline (an interrupted write); returns the bytes removed."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        block = min(size, 1 << 16)
        keep = None
        position = size
        while position > 0:
            start = max(0, position - block)
            handle.seek(start)
            chunk = handle.read(position - start)
            if position == size and chunk.endswith(b"\n"):
                return 0
            index = chunk.rfind(b"\n")
            if index >= 0:
                keep = start + index + 1
                break
            position = start
        keep = keep or 0
        handle.truncate(keep)
        return size - keep


def group_by_prompt(records: Iterable[dict]) -> dict[Any, list[dict]]:
    """Records grouped by ``prompt_id`` (groups and members in file order)."""
    groups: dict[Any, list[dict]] = defaultdict(list)
    for record in records:
        groups[record["prompt_id"]].append(record)
    return dict(groups)


# fields every member of a prompt_id group must agree on, where the rows carry them
_GROUP_FIELDS = ("task_id", "env_id", "env_kwargs")


class _GroupCheck:
    """The cross-row checks of the ``prompt_id`` groups, fed one record at a time so that an error
    names the file and line of the row at fault: a repeated ``(prompt_id, traj_idx)``; members that
    disagree on ``task_id``/``env_id``/``env_kwargs``; and ``1`` next to ``"1"``, which are two
    groups here but one in the release (it groups by ``str(prompt_id)``). Each would silently change
    the weights of a whole group."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = path
        self.groups: dict[str, dict] = {}

    def add(self, record: dict, line: int, present: dict | None = None) -> None:
        """Check ``record`` (from ``line``) against the earlier members of its group; ``present`` is the
        raw row, whose keys say which fields the row really carried (the rest were filled in)."""

        def err(problem: str, field: str) -> TrajectoryError:
            return TrajectoryError(problem, path=self.path, line=line, field=field)

        present = record if present is None else present
        prompt_id = record["prompt_id"]
        group = self.groups.get(str(prompt_id))
        if group is None:
            self.groups[str(prompt_id)] = {
                "prompt_id": prompt_id,
                "line": line,
                "traj_idx": {record["traj_idx"]: line},
                "fields": {f: (record[f], line) for f in _GROUP_FIELDS if present.get(f) is not None},
            }
            return
        if type(group["prompt_id"]) is not type(prompt_id):
            raise err(
                f"is {prompt_id!r} but line {group['line']} has {group['prompt_id']!r}: an int and a str "
                "that read the same are one group in the release and two here; use one type",
                "prompt_id",
            )
        first = group["traj_idx"].get(record["traj_idx"])
        if first is not None:
            raise err(
                f"(prompt_id={prompt_id!r}, traj_idx={record['traj_idx']}) already appeared at line {first}: "
                "the same trajectory twice would count twice in its group's weights; drop the copy",
                "traj_idx",
            )
        group["traj_idx"][record["traj_idx"]] = line
        for field in _GROUP_FIELDS:
            if present.get(field) is None:
                continue
            if field not in group["fields"]:
                group["fields"][field] = (record[field], line)
            elif group["fields"][field][0] != record[field]:
                value, at = group["fields"][field]
                raise err(
                    f"is {record[field]!r} but line {at} of the same group (prompt_id={prompt_id!r}) has "
                    f"{value!r}: a group's samples are weighted against each other, so they must come "
                    "from one task of one env",
                    field,
                )


def validate_groups(
    records: Sequence[dict], *, samples: int | None = None, path: str | os.PathLike | None = None
) -> None:
    """Check every ``prompt_id`` group: ``traj_idx`` is 0..K-1 without repeats, one task and env per
    group (``task_id``, ``env_id`` and ``env_kwargs`` agree where present), no int/str ``prompt_id``
    twins, and (when ``samples`` is given) exactly that many members. Raises :class:`TrajectoryError`
    (its line is the record's 1-based position in ``records``)."""
    for prompt_id, members in group_by_prompt(records).items():
        where = f"group prompt_id={prompt_id!r}"
        indices = sorted(r["traj_idx"] for r in members)
        expected = list(range(samples if samples is not None else len(members)))
        if indices != expected:
            raise TrajectoryError(
                f"{where}: traj_idx values {indices}, expected {expected}", field="traj_idx"
            )
        for field in ("task_id", "env_id"):
            values = {json.dumps(r[field]) for r in members}
            if len(values) > 1:
                raise TrajectoryError(f"{where}: members disagree on {field}: {sorted(values)}", field=field)
    check = _GroupCheck(path)
    for i, record in enumerate(records, start=1):
        check.add(record, i)
