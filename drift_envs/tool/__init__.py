"""``drift/ToolUse-v0``: multi-turn tool calling over a simulated world (see :class:`ToolUseEnv`)."""

from drift_envs.tool.calls import ToolCall, format_calls, parse_reply
from drift_envs.tool.env import ToolUseEnv
from drift_envs.tool.tasks import DOMAINS, ProceduralToolTasks, Request, ToolTask

__all__ = [
    "DOMAINS",
    "ProceduralToolTasks",
    "Request",
    "ToolCall",
    "ToolTask",
    "ToolUseEnv",
    "format_calls",
    "parse_reply",
]
