"""MTU-Bench-format dialogue files as tool tasks (``dataset=PATH``, the ``("tool", "file")`` source).

Rows as the DRIFT release reads them (``src/benchmark.py``), one dialogue per row:

- the request: ``instruction`` + ``input`` (joined by a newline), or ``question``/``query``/``prompt``;
- the reference calls: ``gold``, a JSON object (or its string) ``{"ToolName": {"param": value}, ...}``
  (``{"": {}}``: no tool is needed), else the ReAct text in ``output``
  (``Action: name`` / ``Action Input: {...}`` pairs);
- or a multi-turn dialogue in ``conversations`` (``messages``): ``{"from"|"role", "value"|"content"}``
  entries; each user entry opens a request, the ReAct actions (or OpenAI ``tool_calls``) of the
  assistant entries after it are its reference calls, and ``observation``/``function``/``tool`` entries
  are the recorded results of those calls, replayed when the model makes the same call;
- optional ``tools`` (OpenAI function schemas, or ``{"name", "description", "parameters"}``; a JSON
  string is read too), ``id``, ``scenario``, ``difficulty``. Without ``tools`` each referenced tool gets
  a schema inferred from its reference arguments.

A file is one set of tasks whatever ``split`` says (keep one file per split). The world of such a task
is a replay: a call that matches a reference call of the current request returns its recorded result
(or ``{"status": "ok"}``), any other call an error; a request is done when every reference call has
been made, and its final reply is free text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from drift_envs.core import Task
from drift_envs.sources.base import SourceConfig, TaskSource, register_source
from drift_envs.sources.records import DataError, Row, load_rows
from drift_envs.tool.calls import ToolCall, check_arguments, same_call
from drift_envs.tool.tasks import Request, ToolTask

__all__ = [
    "MTUBenchConfig",
    "MTUBenchTasks",
    "ReplayWorld",
    "parse_react",
    "parse_react_calls",
    "tool_task_from_row",
]

_USER_ROLES = ("user", "human")
_ASSISTANT_ROLES = ("assistant", "gpt", "bot", "model")
_RESULT_ROLES = ("observation", "function", "tool", "function_response")


def _json_arguments(text: str) -> dict:
    text = text.strip()
    if not text:
        return {}
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return {}
    try:
        value = json.loads(text[start : end + 1])
    except (json.JSONDecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def parse_react(text: str) -> list[tuple[ToolCall, str]]:
    """The ``Action:`` / ``Action Input:`` pairs of a ReAct text, in order, each with the text of the
    ``Observation:`` that follows it ("" when none does); one pass over the lines."""
    calls: list[tuple[ToolCall, str]] = []
    name: str | None = None
    buffer: list[str] | None = None
    observation: list[str] | None = None

    def close() -> None:
        nonlocal name, buffer
        if name:
            calls.append((ToolCall(name, _json_arguments("\n".join(buffer or []))), ""))
        name, buffer = None, None

    def close_observation() -> None:
        nonlocal observation
        if observation is not None and calls:
            calls[-1] = (calls[-1][0], "\n".join(observation).strip())
        observation = None

    for line in str(text).splitlines():
        head = line.strip()
        low = head.lower()
        if low.startswith("action input:"):
            buffer = [head[len("action input:") :]]
        elif low.startswith("action:"):
            close()
            close_observation()
            name = head[len("action:") :].strip().strip("[]\"' ") or None
        elif low.startswith("observation:"):
            close()
            close_observation()
            observation = [head[len("observation:") :]]
        elif low.startswith(("thought:", "final answer:")):
            close()
            close_observation()
        elif buffer is not None:
            buffer.append(line)
        elif observation is not None:
            observation.append(line)
    close()
    close_observation()
    return calls


def parse_react_calls(text: str) -> list[ToolCall]:
    """The calls of a ReAct text (see :func:`parse_react`)."""
    return [call for call, _ in parse_react(text)]


def _gold_calls(row: Row, value: Any) -> list[ToolCall]:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{row.where}: field 'gold' is not valid JSON") from None
    if not isinstance(value, dict):
        raise DataError(f"{row.where}: field 'gold' must be an object {{\"Tool\": {{...}}}}")
    calls = []
    for name, arguments in value.items():
        if str(name).strip():
            calls.append(ToolCall(str(name).strip(), arguments if isinstance(arguments, dict) else {}))
    return calls


def _text(entry: dict) -> str:
    for key in ("content", "value", "text"):
        if isinstance(entry.get(key), str):
            return entry[key]
    return ""


def _structured_calls(entry: dict) -> list[ToolCall]:
    calls = []
    for item in entry.get("tool_calls") or []:
        fn = item.get("function", item) if isinstance(item, dict) else {}
        arguments = fn.get("arguments", {})
        if isinstance(arguments, str):
            arguments = _json_arguments(arguments)
        if isinstance(fn.get("name"), str):
            calls.append(ToolCall(fn["name"], arguments if isinstance(arguments, dict) else {}))
    return calls


def _dialogue(row: Row, entries: list) -> tuple[list[Request], list[tuple[str, ...]]]:
    requests: list[tuple[str, list[ToolCall], list[str]]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(f"{row.where}: conversations[{i}] must be an object, got {type(entry).__name__}")
        role = str(entry.get("role") or entry.get("from") or "").lower()
        if role in _USER_ROLES:
            requests.append((_text(entry), [], []))
        elif not requests:
            continue  # a system prompt before the first request
        elif role in _ASSISTANT_ROLES:
            requests[-1][1].extend(_structured_calls(entry) or parse_react_calls(_text(entry)))
        elif role in _RESULT_ROLES:
            requests[-1][2].append(_text(entry))
    if not requests:
        raise DataError(f"{row.where}: field 'conversations' has no user turn")
    out, observations = [], []
    for text, calls, results in requests:
        if not text.strip():
            raise DataError(f"{row.where}: a user turn of 'conversations' is empty")
        out.append(Request(text.strip(), (tuple(calls),) if calls else (), None))
        observations.append(tuple(results[: len(calls)]) + ("",) * max(0, len(calls) - len(results)))
    return out, observations


def _schemas(row: Row, requests: list[Request]) -> tuple[dict, ...]:
    tools = row.data.get("tools")
    if isinstance(tools, str) and tools.strip():
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError:
            raise DataError(f"{row.where}: field 'tools' is not valid JSON") from None
    schemas = []
    if tools:
        if not isinstance(tools, list):
            raise DataError(f"{row.where}: field 'tools' must be a list of function schemas")
        for i, tool in enumerate(tools):
            fn = tool.get("function", tool) if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise DataError(f"{row.where}: tools[{i}] has no function name")
            parameters = fn.get("parameters") or {"type": "object", "properties": {}}
            schemas.append(
                {
                    "type": "function",
                    "function": {"name": fn["name"], "description": str(fn.get("description", "")),
                                 "parameters": parameters},
                }
            )  # fmt: skip
        return tuple(schemas)
    kinds = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}
    seen: dict[str, dict] = {}
    for call in (c for r in requests for c in r.reference_calls):
        props = seen.setdefault(call.name, {})
        for key, value in call.arguments.items():
            props.setdefault(key, {"type": kinds.get(type(value), "string")})
    for name, props in seen.items():
        parameters = {"type": "object", "properties": props, "additionalProperties": True}
        schemas.append(
            {"type": "function", "function": {"name": name, "description": "", "parameters": parameters}}
        )
    return tuple(schemas)


def tool_task_from_row(row: Row, index: int) -> ToolTask:
    """One MTU-Bench row as a replay :class:`ToolTask`; :class:`DataError` names the row and field."""
    d = row.data
    entries = d.get("conversations") or d.get("messages") or d.get("dialogue")
    if isinstance(entries, list):
        requests, observations = _dialogue(row, entries)
    else:
        parts = [
            str(d[k]).strip() for k in ("instruction", "input") if isinstance(d.get(k), str) and d[k].strip()
        ]
        if not parts:
            key = next((k for k in ("question", "query", "prompt") if isinstance(d.get(k), str)), None)
            if key is None:
                raise DataError(
                    f"{row.where}: no request: expected 'instruction'/'input', 'question' or 'conversations' "
                    f"(fields present: {', '.join(sorted(d)) or 'none'})"
                )
            parts = [d[key].strip()]
        react = parse_react(d.get("output") or "")
        if "gold" in d and d["gold"] not in (None, ""):
            calls = _gold_calls(row, d["gold"])
        else:
            calls = [call for call, _ in react]
        recorded = {json.dumps(c.to_dict(), sort_keys=True): obs for c, obs in react}
        requests = [Request("\n".join(parts), (tuple(calls),) if calls else (), None)]
        observations = [tuple(recorded.get(json.dumps(c.to_dict(), sort_keys=True), "") for c in calls)]
    schemas = _schemas(row, requests)
    names = tuple(s["function"]["name"] for s in schemas)
    task_id = str(d.get("id") if d.get("id") not in (None, "") else f"mtu/{index}")
    meta = {k: d[k] for k in ("scenario", "difficulty") if k in d}
    return ToolTask(
        task_id, "mtu", names, {}, tuple(requests), backend="replay", schemas=schemas,
        observations=tuple(observations), meta=meta,
    )  # fmt: skip


@dataclass(frozen=True)
class MTUBenchConfig(SourceConfig):
    """``path``: an MTU-Bench-format ``.jsonl``/``.json``/``.parquet`` file (or a hub id)."""

    path: str = ""

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.path, str) or not self.path:
            raise ValueError("MTUBenchConfig.path must name a file of MTU-Bench dialogues")


@register_source("tool", "file")
class MTUBenchTasks(TaskSource):
    """The dialogues of an MTU-Bench-format file, in file order."""

    config_class = MTUBenchConfig

    def __init__(self, config: MTUBenchConfig | None = None, **options: Any) -> None:
        if "path" in options and not isinstance(options["path"], str):
            options["path"] = str(options["path"])
        super().__init__(config, **options)
        rows = load_rows(self.config.path, self.config.split)
        if not rows:
            raise DataError(f"{self.config.path}: no dialogues")
        self.tool_tasks = [tool_task_from_row(row, i) for i, row in enumerate(rows)]
        self.tasks: list[Task] = [t.to_task() for t in self.tool_tasks]
        ids = [t.task_id for t in self.tasks]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise DataError(f"{self.config.path}: task id {dup!r} appears more than once")


class ReplayWorld:
    """The world of a replayed dialogue: calls that match the current request's reference calls get
    their recorded results; anything else is an error result."""

    def __init__(self, task: ToolTask) -> None:
        self.task = task
        self.tools = list(task.tools)
        self.request = 0
        self._schemas = {s["function"]["name"]: s["function"].get("parameters") or {} for s in task.schemas}

    def execute(self, call: ToolCall) -> tuple[Any, str | None]:
        """``(result, error)`` as :meth:`drift_envs.tool.world.World.execute`."""
        if call.name not in self._schemas:
            msg = f"unknown tool {call.name!r}; the tools you can call are: {', '.join(self.tools)}"
            return {"error": msg}, msg
        problem = check_arguments(call.arguments, self._schemas[call.name])
        if problem is not None:
            msg = f"{call.name}: {problem}"
            return {"error": msg}, msg
        request = self.task.requests[self.request]
        for k, ref in enumerate(request.reference_calls):
            if same_call(call, ref):
                recorded = self.task.observations[self.request][k]
                try:
                    return (json.loads(recorded) if recorded else {"status": "ok"}), None
                except json.JSONDecodeError:
                    return {"result": recorded}, None
        msg = f"{call.name}: no result for these arguments"
        return {"error": msg}, msg

    def snapshot(self) -> str:
        """A replay has no state to compare: requests are judged by their calls."""
        return ""
