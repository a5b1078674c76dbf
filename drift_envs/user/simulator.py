"""Simulated users of ``drift/UserCorrection-v0``: what the user says after a reply.

The verdict (which constraints hold) is always computed by code; a simulated user only turns it into
the next user message:

* :class:`RuleBasedUser` picks a natural correction from the constraint library's phrasings, in a
  persona: ``"precise"`` (names the problem and quotes numbers), ``"terse"`` (a few words) or
  ``"vague"`` (only says the reply is not right; never which constraint failed). With
  ``corrections="first"`` it talks about the first violated constraint, with ``"all"`` about each.
* :class:`LLMUser` asks a chat model behind any OpenAI-compatible endpoint (``vllm serve``,
  ``transformers serve``, a hosted API) to write the message, and keeps every answer in a JSONL
  replay cache keyed on (task, turn, reply), so its episodes replay exactly, even with the server off.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from drift_envs.core import Feedback
from drift_envs.sources.records import DataError, load_rows, require_field
from drift_envs.user.constraints import PERSONAS, Check, Constraint

__all__ = [
    "CORRECTION_MODES",
    "VAGUE_PHRASES",
    "LLMUser",
    "ReplayCache",
    "RuleBasedUser",
    "UserSimulator",
    "UserTurn",
    "make_user",
]

CORRECTION_MODES = ("first", "all")

# The vague persona's whole vocabulary: none of these depends on the task or the failed constraint.
VAGUE_PHRASES = (
    "That's not quite what I wanted. Please try again.",
    "Hmm, no, that isn't right. Can you have another go?",
    "Not what I asked for. Try again, please.",
    "That doesn't work for me. Could you redo it?",
    "No, that's not it. Please give it another try.",
    "Close, but not right yet. Try again.",
    "I'm not happy with that one. Please revise it.",
    "That's not what I had in mind. One more try?",
)
_PRECISE_OPENERS = ("", "Thanks, but ", "Almost there. ", "Good start, but ", "Hmm. ")
_REPEAT_NOTES = {
    "precise": ("You sent the same answer as before. ", "That's the same reply again. "),
    "terse": ("Same as before. ", "Unchanged. "),
}
_ALL_INTROS = ("A few things to fix:", "Please fix these:", "Some changes, please:")
_SUCCESS = "Perfect, that's exactly what I wanted. Thanks!"


@dataclass(frozen=True)
class UserTurn:
    """Everything a simulated user sees after one reply."""

    task_id: str
    request: str
    constraints: tuple[Constraint, ...]
    checks: tuple[Check, ...]
    reply: str
    turn: int
    repeated: bool

    @property
    def failed(self) -> list[tuple[Constraint, Check]]:
        """The violated constraints with their check details, in task order."""
        return [(c, r) for c, r in zip(self.constraints, self.checks, strict=True) if not r.ok]


class UserSimulator(Protocol):
    """Anything that writes the next user message from a :class:`UserTurn`."""

    persona: str

    def respond(self, turn: UserTurn, rng: np.random.Generator) -> Feedback:
        """The user's message after the reply in ``turn``, drawing any randomness from ``rng``."""
        ...


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def check_persona(persona: str, corrections: str) -> None:
    """Raise ``ValueError`` naming ``persona`` or ``corrections`` when it is not a known one."""
    if persona not in PERSONAS:
        raise ValueError(f"persona must be one of {list(PERSONAS)}, got {persona!r}")
    if corrections not in CORRECTION_MODES:
        raise ValueError(f"corrections must be one of {list(CORRECTION_MODES)}, got {corrections!r}")


class RuleBasedUser:
    """A seeded, rule-based user: varied natural corrections in one persona (see the module docstring)."""

    def __init__(self, persona: str = "precise", corrections: str = "first") -> None:
        check_persona(persona, corrections)
        self.persona = persona
        self.corrections = corrections

    def respond(self, turn: UserTurn, rng: np.random.Generator) -> Feedback:
        """The correction for the violated constraints of ``turn`` (a thank-you when none is)."""
        failed = turn.failed
        if not failed:
            return Feedback(_SUCCESS, kind="success", data={"persona": self.persona, "addressed": []})
        if self.persona == "vague":
            return Feedback(
                _pick(VAGUE_PHRASES, rng), kind="binary", data={"persona": "vague", "addressed": []}
            )
        addressed = failed if self.corrections == "all" else failed[:1]
        lines = [_pick(c.corrections(self.persona, r.detail), rng) for c, r in addressed]
        if len(lines) == 1:
            text = lines[0]
            if self.persona == "precise":
                opener = _pick(_PRECISE_OPENERS, rng)
                lower = opener.endswith(", but ") and not text.startswith(("I ", "I'"))
                text = opener + (text[0].lower() + text[1:] if lower else text)
        elif self.persona == "precise":
            text = (
                _pick(_ALL_INTROS, rng) + "\n" + "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
            )
        else:
            text = " ".join(lines)
        if turn.repeated and self.persona in _REPEAT_NOTES:
            text = _pick(_REPEAT_NOTES[self.persona], rng) + text
        return Feedback(
            text,
            kind="correction",
            data={"persona": self.persona, "addressed": [c.label() for c, _ in addressed]},
        )


# ---- the LLM-backed user --------------------------------------------------------------------------


class ReplayCache:
    """A JSONL file of ``{"key", "text", ...}`` records: answers of an LLM user, replayed by key.

    Read through :func:`~drift_envs.sources.records.load_rows`, so a bad line is a
    :class:`~drift_envs.sources.records.DataError` naming the file, the line and the field.

    Appends are flushed at once, so an interrupted run keeps what it got. A later duplicate of a key
    is ignored (the first answer wins), which keeps replays stable.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.name.endswith(".jsonl"):
            raise ValueError(f"the replay cache is a JSONL file: name it *.jsonl, got {str(path)!r}")
        self._entries: dict[str, dict] = {}
        self._lock = threading.Lock()
        if self.path.exists():
            for row in load_rows(str(self.path)):
                key = require_field(row, "key", str)
                text = row.data.get("text")
                if not isinstance(text, str):  # not require_field: an empty answer is an answer
                    raise DataError(
                        f"{row.where}: field 'text' should be str, got {type(text).__name__} "
                        "(a replay-cache record holds 'key' and 'text')"
                    )
                self._entries.setdefault(key, row.data)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> dict | None:
        """The record stored under ``key``, or None."""
        return self._entries.get(key)

    def put(self, record: dict) -> None:
        """Store ``record`` (must hold ``key`` and ``text``) and append it to the file."""
        with self._lock:
            if record["key"] in self._entries:
                return
            self._entries[record["key"]] = record
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()


_PERSONA_STYLE = {
    "precise": "Say exactly what is wrong and what you want instead, with any numbers involved.",
    "terse": "Be very brief: a few words, like a busy person typing on a phone.",
    "vague": "Only say that the reply is not what you wanted. Do NOT say what is wrong or what you want changed.",
}


class LLMUser:
    """A user simulated by a chat model behind an OpenAI-compatible endpoint, with a replay cache.

    The model is told the request, the user's preferences and which of them the reply broke, and
    writes the next user message. Answers are cached under a key made from the task (id, request and
    constraints), the turn, the reply, the persona, the correction mode and the model name; a cached
    key is never sent to the server, so a run with a full cache needs no server. ``replay_only=True``
    makes a cache miss an error instead of a request. An empty answer from the model falls back to the
    rule-based message (marked ``"fallback": true`` in the feedback data).

    The persona is only asked of the model: unlike :class:`RuleBasedUser`, an LLM told to be vague may
    still name the problem, so studies of feedback informativeness should use the rule-based user.
    """

    prompt_version = 1

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        cache: str | Path | None = None,
        api_key: str | None = None,
        persona: str = "precise",
        corrections: str = "first",
        temperature: float = 0.0,
        max_tokens: int = 96,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        seed: int = 0,
        replay_only: bool = False,
    ) -> None:
        check_persona(persona, corrections)
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not isinstance(base_url, str) or not base_url:
            raise ValueError(
                "user endpoint: base_url must be a URL such as 'http://localhost:8000/v1' (or set "
                f"OPENAI_BASE_URL), got {base_url!r}"
            )
        if not isinstance(model, str) or not model:
            raise ValueError(f"user endpoint: model must be a model name, got {model!r}")
        self.base_url = base_url
        self.model = model
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.persona = persona
        self.corrections = corrections
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.seed = int(seed)
        self.replay_only = bool(replay_only)
        self.cache = ReplayCache(cache) if cache is not None else None
        self._fallback = RuleBasedUser(persona, corrections)
        self._client: Any = None

    @classmethod
    def from_config(cls, config: dict, *, persona: str, corrections: str) -> LLMUser:
        """Build from an env ``user=`` dict such as ``{"base_url": ..., "model": ..., "cache": ...}``."""
        allowed = {
            "base_url",
            "model",
            "cache",
            "api_key",
            "temperature",
            "max_tokens",
            "timeout_s",
            "max_retries",
            "seed",
            "replay_only",
        }
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise ValueError(
                f"user endpoint config: unknown key {unknown[0]!r}; expected some of {sorted(allowed)}"
            )
        if "model" not in config:
            raise ValueError("user endpoint config: missing key 'model' (the model name the server serves)")
        return cls(persona=persona, corrections=corrections, **config)

    def cache_key(self, turn: UserTurn) -> str:
        """The replay key of ``turn``: a hash of (task, turn, reply) and of this user's settings."""
        payload = {
            "task_id": turn.task_id,
            "request": turn.request,
            "constraints": [c.to_dict() for c in turn.constraints],
            "turn": turn.turn,
            "reply": turn.reply,
            "persona": self.persona,
            "corrections": self.corrections,
            "model": self.model,
            "prompt_version": self.prompt_version,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def messages(self, turn: UserTurn) -> list[dict[str, str]]:
        """The chat sent to the model for ``turn``."""
        failed = turn.failed if self.corrections == "all" else turn.failed[:1]
        prefs = "\n".join(f"- {c.describe()}" for c in turn.constraints)
        broken = "\n".join(f"- {c.describe()}" for c, _ in failed)
        system = (
            "You play a user chatting with an AI assistant. Write only your next chat message to the "
            "assistant, one or two sentences, in plain text.\n"
            f"Your request was: {turn.request}\n"
            f"Your preferences:\n{prefs}\n"
            f"The assistant's latest reply breaks these preferences:\n{broken}\n"
            f"{_PERSONA_STYLE[self.persona]}"
        )
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": f"The assistant replied:\n{turn.reply}\n\nYour message:"},
        ]

    def _complete(self, messages: list[dict[str, str]]) -> str:
        if self._client is None:
            try:
                from openai import OpenAI
            except ImportError as exc:  # pragma: no cover - depends on the installation
                raise ImportError("the LLM user needs the 'openai' package: pip install openai") from exc
            self._client = OpenAI(
                base_url=self.base_url,
                api_key=self.api_key,
                timeout=self.timeout_s,
                max_retries=self.max_retries,
            )
        response = self._client.chat.completions.create(
            model=self.model,
            messages=messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )
        content = response.choices[0].message.content if response.choices else None
        return (content or "").strip()

    def respond(self, turn: UserTurn, rng: np.random.Generator) -> Feedback:
        """The model's message for ``turn``, from the replay cache when present."""
        failed = turn.failed
        addressed = failed if self.corrections == "all" else failed[:1]
        data: dict[str, Any] = {
            "persona": self.persona,
            "addressed": [] if self.persona == "vague" else [c.label() for c, _ in addressed],
            "user": "llm",
            "model": self.model,
        }
        if not failed:
            # success needs no model call; the episode ends and the message is never shown
            return Feedback(_SUCCESS, kind="success", data={**data, "addressed": []})
        key = self.cache_key(turn)
        record = self.cache.get(key) if self.cache is not None else None
        if record is not None:
            text, data["cached"] = record["text"], True
        else:
            if self.replay_only:
                raise KeyError(
                    f"LLM user replay_only: no cached answer for task {turn.task_id!r} turn {turn.turn} "
                    f"(key {key[:12]}...) in {self.cache.path if self.cache else 'no cache'}"
                )
            text = self._complete(self.messages(turn))
            data["cached"] = False
            if self.cache is not None:
                self.cache.put(
                    {
                        "key": key,
                        "text": text,
                        "task_id": turn.task_id,
                        "turn": turn.turn,
                        "reply_sha256": hashlib.sha256(turn.reply.encode("utf-8")).hexdigest(),
                        "model": self.model,
                        "persona": self.persona,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                )
        if not text:
            fallback = self._fallback.respond(turn, rng)
            return Feedback(fallback.text, kind=fallback.kind, data={**data, "fallback": True})
        return Feedback(text, kind="binary" if self.persona == "vague" else "correction", data=data)


def make_user(user: Any, *, persona: str, corrections: str) -> UserSimulator:
    """The simulator for an env's ``user=`` kwarg: ``"rules"``, an endpoint dict, or a simulator object."""
    if user == "rules":
        return RuleBasedUser(persona, corrections)
    if isinstance(user, dict):
        return LLMUser.from_config(user, persona=persona, corrections=corrections)
    if hasattr(user, "respond"):
        return user
    raise ValueError(
        f"user must be 'rules', an endpoint config dict like {{'base_url': 'http://localhost:8000/v1', "
        f"'model': 'name', 'cache': 'user_cache.jsonl'}}, or an object with respond(); got {user!r}"
    )
