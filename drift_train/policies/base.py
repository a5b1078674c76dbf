"""The one protocol every rollout backend implements, and the types it speaks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}
Conversation = Sequence[Message]


class PolicyError(RuntimeError):
    """A backend could not produce completions (missing extra, server error, bad model path, ...)."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one reply. ``temperature=0`` means greedy decoding."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k truncation
    max_new_tokens: int = 256
    n: int = 1  # completions per conversation
    stop: tuple[str, ...] = ()  # cut the reply before the first of these strings
    seed: int | None = None  # used when the caller gives no per-conversation seeds

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first parameter out of range."""
        if not (self.temperature >= 0 and np.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (recorded in every trajectory's ``meta``)."""
        out = asdict(self)
        out["stop"] = list(self.stop)
        return out


@dataclass(frozen=True)
class Completion:
    """One generated reply, and the ids behind it where the backend has them.

    ``token_ids`` are the sampled ids exactly (a generated end token included, nothing added);
    ``prompt_ids`` the context the model saw. Both are None for backends that cannot return ids
    (e.g. an OpenAI-compatible server that does not support ``return_token_ids``).
    """

    text: str
    num_tokens: int  # generated tokens, end-of-turn token included when one was produced
    finish_reason: str  # "stop" (end of turn or stop string) or "length" (hit max_new_tokens)
    token_ids: tuple[int, ...] | None = None
    prompt_ids: tuple[int, ...] | None = None


@runtime_checkable
class Policy(Protocol):
    """A batch of conversations + sampling parameters -> ``n`` completions per conversation.

    ``seeds`` (one int per conversation, optional) make sampling reproducible: backends that seed
    each request (vLLM, OpenAI-compatible servers) use them per conversation; ``hf``, whose sampler
    shares one RNG across a batch, derives one seed from the whole list, so the same batch with the
    same seeds gives the same completions.
    """

    backend: str
    model_id: str

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """Return ``params.n`` completions for each conversation, in input order."""
        ...

    def close(self) -> None:
        """Release what the backend holds (threads, GPU memory)."""
        ...


class PolicyBase:
    """Shared plumbing: context-manager support and argument checks."""

    backend = "base"
    model_id = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release resources; the default holds none."""

    def describe(self) -> dict[str, Any]:
        """What to record about this policy in trajectory metadata."""
        return {"backend": self.backend, "model": self.model_id}

    # backends whose completions carry token ids set this and implement ids_tokenizer()
    has_token_ids = False

    def ids_tokenizer(self) -> Any:
        """The tokenizer the returned ids belong to, or None when it cannot be known here."""
        return None

    def token_meta(self) -> dict[str, Any]:
        """What trajectory ``meta`` says about token ids: ``tokenizer`` (``{"name", "hash"}``, see
        :func:`drift_train.tokens.tokenizer_fingerprint`; the hash is None when the tokenizer cannot be
        known, and training then uses the text) and ``chat_template_kwargs`` when the backend returns
        ids; else ``tokens_unavailable`` with the reason. Computed once per policy."""
        if not self.has_token_ids:
            return {"tokens_unavailable": f"the {self.backend} backend does not return token ids"}
        if getattr(self, "_token_meta", None) is None:
            from drift_train.tokens import tokenizer_fingerprint

            tokenizer = self.ids_tokenizer()
            self._token_meta = {
                "tokenizer": (
                    tokenizer_fingerprint(tokenizer)
                    if tokenizer is not None
                    else {"name": self.model_id, "hash": None}
                ),
                "chat_template_kwargs": dict(getattr(self, "chat_template_kwargs", None) or {}),
            }
        return self._token_meta

    @staticmethod
    def _check_inputs(
        conversations: Sequence[Conversation], params: SamplingParams, seeds: Sequence[int] | None
    ) -> None:
        params.validate()
        if seeds is not None and len(seeds) != len(conversations):
            raise ValueError(f"got {len(seeds)} seeds for {len(conversations)} conversations")
        for i, conversation in enumerate(conversations):
            if not conversation:
                raise ValueError(f"conversation {i} is empty")
            for j, message in enumerate(conversation):
                if (
                    not isinstance(message, dict)
                    or not isinstance(message.get("content"), str)
                    or "role" not in message
                ):
                    raise ValueError(
                        f"conversation {i}, message {j}: expected {{'role': str, 'content': str}}, got {message!r:.200}"
                    )


def combine_seeds(seeds: Sequence[int], *salt: int) -> int:
    """One 63-bit seed from a list of seeds (order matters), e.g. for a batch sampled with one RNG."""
    entropy = [int(s) % (1 << 63) for s in seeds] + [int(s) % (1 << 63) for s in salt]
    hi, lo = (int(x) for x in np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32))
    return (hi << 31) ^ lo


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; returns (text, whether one was found)."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)
