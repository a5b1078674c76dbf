"""Tool calls in a reply: Hermes/Qwen ``<tool_call>`` blocks, argument checking against a JSON schema.

A reply carries calls as blocks ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (what
Qwen chat templates produce; several per reply). OpenAI's structured shape inside a block
(``{"type": "function", "function": {"name", "arguments": "<json string>"}}``) is read too, so a
server's structured ``tool_calls`` written back as blocks parse the same way. Parsing is one forward
scan with ``str.find`` (linear in the reply length); a block that is not valid JSON, nests too deep,
or lacks a name is a :class:`CallFormatError`, never an exception that escapes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CALL_CLOSE",
    "CALL_OPEN",
    "CallFormatError",
    "ParsedReply",
    "ToolCall",
    "canonical_calls",
    "check_arguments",
    "format_calls",
    "normalize_argument",
    "normalize_tool_name",
    "parse_reply",
    "same_call",
]

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


class CallFormatError(ValueError):
    """A ``<tool_call>`` block that cannot be read as a call; the message says what to fix."""


@dataclass(frozen=True)
class ToolCall:
    """One call: a tool name and its arguments (a JSON object)."""

    name: str
    arguments: dict = field(default_factory=dict)

    def signature(self) -> str:
        """``name({"a": 1})`` with sorted keys: equal calls have equal signatures."""
        return f"{self.name}({json.dumps(self.arguments, sort_keys=True, ensure_ascii=False)})"

    def to_dict(self) -> dict:
        """``{"name", "arguments"}``."""
        return {"name": self.name, "arguments": dict(self.arguments)}


@dataclass
class ParsedReply:
    """A reply split into its calls and the text around them."""

    calls: list[ToolCall]
    text: str  # the reply without its <tool_call> blocks, stripped
    error: str | None = None  # the first malformed block, explained; None when every block parsed


def _call_from_json(blob: str) -> ToolCall:
    try:
        data = json.loads(blob)
    except json.JSONDecodeError as e:
        raise CallFormatError(
            f"the <tool_call> block is not valid JSON ({e.msg} at column {e.colno})"
        ) from None
    except RecursionError:
        raise CallFormatError("the <tool_call> block nests too deeply to be a call") from None
    if not isinstance(data, dict):
        raise CallFormatError(
            f'a <tool_call> block must hold a JSON object {{"name": ..., "arguments": {{...}}}}, got '
            f"{type(data).__name__}"
        )
    if isinstance(data.get("function"), dict):  # OpenAI's structured shape
        data = data["function"]
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise CallFormatError(f'a <tool_call> block needs "name": a tool name string, got {name!r}')
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI sends arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (json.JSONDecodeError, RecursionError):
            raise CallFormatError(f'the "arguments" string of the call to {name} is not valid JSON') from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise CallFormatError(
            f'"arguments" of the call to {name} must be a JSON object, got {type(arguments).__name__}'
        )
    return ToolCall(name, arguments)


def parse_reply(reply: str) -> ParsedReply:
    """The calls of ``reply`` in order, its text without them, and the first format error (if any).

    One forward scan: each ``<tool_call>`` is matched with the next ``</tool_call>``; an unclosed
    block, or a block whose body is not a call, is reported in ``error`` (the calls before it are kept
    so the caller can say how many parsed, but a reply with an error should not be executed).
    """
    calls: list[ToolCall] = []
    text_parts: list[str] = []
    error = None
    pos = 0
    while True:
        start = reply.find(CALL_OPEN, pos)
        if start < 0:
            text_parts.append(reply[pos:])
            break
        text_parts.append(reply[pos:start])
        body_start = start + len(CALL_OPEN)
        end = reply.find(CALL_CLOSE, body_start)
        if end < 0:
            error = error or f"a {CALL_OPEN} block is never closed with {CALL_CLOSE}"
            break
        body = reply[body_start:end]
        if error is None:
            if CALL_OPEN in body:
                error = f"a {CALL_OPEN} block opens inside another one"
            else:
                try:
                    calls.append(_call_from_json(body.strip()))
                except CallFormatError as e:
                    error = str(e)
        pos = end + len(CALL_CLOSE)
    if error is None and CALL_CLOSE in "".join(text_parts):
        error = f"a {CALL_CLOSE} appears without its {CALL_OPEN}"
    return ParsedReply(calls, "".join(text_parts).strip(), error)


def format_calls(calls: list[ToolCall] | list[dict]) -> str:
    """Calls as Hermes blocks, one per line (the format :func:`parse_reply` reads)."""
    blocks = []
    for call in calls:
        c = (
            call.to_dict()
            if isinstance(call, ToolCall)
            else {"name": call["name"], "arguments": call["arguments"]}
        )
        blocks.append(f"{CALL_OPEN}\n{json.dumps(c, ensure_ascii=False)}\n{CALL_CLOSE}")
    return "\n".join(blocks)


def canonical_calls(calls: list[ToolCall]) -> str:
    """One string for a reply's calls (its ``answer`` in trajectory records): signatures joined by ``; ``."""
    return "; ".join(c.signature() for c in calls)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer() and math.isfinite(value)
    if kind == "number" and isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, _JSON_TYPES.get(kind, (object,)))


def check_arguments(arguments: dict, parameters: dict) -> str | None:
    """The first way ``arguments`` break the JSON-schema ``parameters`` (an ``object`` schema with
    ``properties``, ``required``, per-property ``type``/``enum``/``minimum``; extra arguments refused
    unless ``additionalProperties`` is true), or None when they fit."""
    properties = parameters.get("properties") or {}
    for name in parameters.get("required") or []:
        if name not in arguments:
            return f"missing required argument {name!r}"
    for name, value in arguments.items():
        spec = properties.get(name)
        if spec is None:
            if parameters.get("additionalProperties", False):
                continue
            known = ", ".join(sorted(properties)) or "none"
            return f"unexpected argument {name!r} (this tool takes: {known})"
        kind = spec.get("type")
        if isinstance(kind, str) and not _type_ok(value, kind):
            return f"argument {name!r} must be of type {kind}, got {type(value).__name__} {value!r}"[:300]
        if "enum" in spec and value not in spec["enum"]:
            return f"argument {name!r} must be one of {spec['enum']}, got {value!r}"[:300]
        if "minimum" in spec and _type_ok(value, "number") and value < spec["minimum"]:
            return f"argument {name!r} must be at least {spec['minimum']}, got {value!r}"
    return None


def normalize_argument(value: Any) -> Any:
    """An argument value as calls are compared: strings stripped and lower-cased, containers element-wise."""
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, (list, tuple)):
        return [normalize_argument(v) for v in value]
    if isinstance(value, dict):
        return {str(k).lower(): normalize_argument(v) for k, v in value.items()}
    return value


def normalize_tool_name(name: str) -> str:
    """A tool name as calls are compared: lower case, runs of ``_``/``-``/space as one ``_``."""
    return re.sub(r"[^\w]", "", re.sub(r"[_\-\s]+", "_", str(name).strip().lower()))


def same_call(a: ToolCall, b: ToolCall) -> bool:
    """The same tool with the same arguments (after :func:`normalize_argument`), nothing more or less."""
    return normalize_tool_name(a.name) == normalize_tool_name(b.name) and normalize_argument(
        a.arguments
    ) == normalize_argument(b.arguments)
