"""Token-exact trajectories: the ids the policy saw and sampled, per assistant turn.

A record's optional ``tokens`` field (docs/design.md, trajectory record)::

    {"t1": {"completion_ids": [...], "finish_reason": "stop", "prompt_ids": [...]},
     "t2": {"completion_ids": [...], "finish_reason": "length", "prompt_delta_ids": [...]}, ...}

``completion_ids`` are exactly what was sampled (a generated end token included, nothing added).
The context the model saw at turn k is ``prompt_ids`` when given, else the context of turn k-1, its
``completion_ids``, then ``prompt_delta_ids``; the delta form is used whenever the next prompt does
extend the previous context that way (prefix-consistent chat templates), so storage grows linearly
with the number of turns. Templates that rewrite history (Qwen3 drops earlier ``<think>`` blocks)
get a full ``prompt_ids`` at the turn where the prefix breaks.

``meta["tokenizer"] = {"name", "hash"}`` names the tokenizer; training uses the ids only when its own
tokenizer has the same :func:`tokenizer_fingerprint` hash, and falls back to the text otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FINISH_REASONS = ("stop", "length")

__all__ = [
    "FINISH_REASONS",
    "TurnTokens",
    "check_tokens",
    "decode_tokens",
    "encode_tokens",
    "tokenizer_fingerprint",
]


@dataclass(frozen=True)
class TurnTokens:
    """One assistant turn in ids: what the model saw (``context``) and what it sampled (``completion``).

    ``extends_previous`` is True when ``context`` is the previous turn's context + completion + a delta,
    i.e. both turns fit in one training sequence.
    """

    context: list[int]
    completion: list[int]
    finish_reason: str
    extends_previous: bool


def tokenizer_fingerprint(tokenizer: Any) -> dict[str, str]:
    """``{"name", "hash"}`` of a tokenizer: a sha256 over what maps text to ids and back.

    For fast tokenizers that is the backend's JSON (model, merges, normalizer, pre-tokenizer,
    added tokens) without the run-time truncation and padding settings; for slow ones the vocabulary
    and the added tokens. The chat template is not part of it: it decides how messages become text,
    not which ids a text has, and recorded ids are used as they are.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        payload = json.dumps(spec, sort_keys=True, ensure_ascii=False)
    else:
        payload = json.dumps(
            {"class": type(tokenizer).__name__, "vocab": sorted(tokenizer.get_vocab().items())},
            ensure_ascii=False,
        )
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    return {"name": name, "hash": f"sha256:{digest}"}


def encode_tokens(turns: Sequence[tuple[Sequence[int], Sequence[int], str]]) -> dict[str, dict]:
    """The ``tokens`` field from ``(prompt_ids, completion_ids, finish_reason)`` per assistant turn."""
    out: dict[str, dict] = {}
    context: list[int] | None = None
    for k, (prompt, completion, reason) in enumerate(turns, start=1):
        prompt, completion = [int(t) for t in prompt], [int(t) for t in completion]
        entry: dict[str, Any] = {"completion_ids": completion, "finish_reason": reason}
        if context is not None and prompt[: len(context)] == context:
            entry["prompt_delta_ids"] = prompt[len(context) :]
        else:
            entry["prompt_ids"] = prompt
        out[f"t{k}"] = entry
        context = prompt + completion
    return out


def decode_tokens(tokens: dict[str, dict]) -> list[TurnTokens]:
    """Per-turn contexts and completions of a (valid, see :func:`check_tokens`) ``tokens`` field."""
    turns: list[TurnTokens] = []
    previous: list[int] | None = None
    for k in range(1, len(tokens) + 1):
        entry = tokens[f"t{k}"]
        if "prompt_ids" in entry:
            context, extends = list(entry["prompt_ids"]), False
        else:
            assert previous is not None, "check_tokens rejects a delta on turn 1"
            context, extends = previous + list(entry["prompt_delta_ids"]), True
        completion = list(entry["completion_ids"])
        turns.append(TurnTokens(context, completion, entry["finish_reason"], extends))
        previous = context + completion
    return turns


def check_tokens(tokens: Any, num_turns: int) -> tuple[str, str] | None:
    """``(field, problem)`` for the first thing wrong with a ``tokens`` field, or None when it is valid."""
    if not isinstance(tokens, dict):
        return "tokens", f"must be a dict {{'t1': {{...}}, ...}}, got {type(tokens).__name__}"
    expected = [f"t{k}" for k in range(1, num_turns + 1)]
    if list(tokens) != expected:
        return "tokens", f"keys must be one per assistant turn, {expected}, got {list(tokens)}"
    for k, key in enumerate(expected, start=1):
        entry = tokens[key]
        where = f"tokens.{key}"
        if not isinstance(entry, dict):
            return where, f"must be a dict, got {type(entry).__name__}"
        if entry.get("finish_reason") not in FINISH_REASONS:
            return (
                f"{where}.finish_reason",
                f"must be one of {FINISH_REASONS}, got {entry.get('finish_reason')!r}",
            )
        has_full, has_delta = "prompt_ids" in entry, "prompt_delta_ids" in entry
        if has_full == has_delta:
            return where, "must hold exactly one of prompt_ids and prompt_delta_ids"
        if k == 1 and has_delta:
            return where, "turn 1 has no previous context: it needs prompt_ids, not prompt_delta_ids"
        for name in ("completion_ids", "prompt_ids" if has_full else "prompt_delta_ids"):
            ids = entry.get(name)
            if not isinstance(ids, list) or not all(
                isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids
            ):
                return f"{where}.{name}", "must be a list of non-negative ints"
        if has_full and not entry["prompt_ids"]:
            return f"{where}.prompt_ids", "must not be empty"
    return None
