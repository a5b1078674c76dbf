"""The one protocol every rollout backend implements, and the types it speaks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

Message = dict[str, Any]  # {"role": "system"|"user"|"assistant"|"tool", "content": str, ...}
Conversation = Sequence[Message]
Tools = list[dict[str, Any]]  # OpenAI function schemas: [{"type": "function", "function": {...}}, ...]


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
class Session(Protocol):
    """Conversations submitted at any time, replies collected as they end (continuous batching).

    ``submit(key, conversation, tools=..., env=...)`` queues a conversation; ``poll()`` returns
    ``(key, Completion)`` pairs of replies that ended (an empty list once nothing is queued or
    running); ``busy`` is True while a submitted conversation still waits for its reply.
    """

    @property
    def busy(self) -> bool:
        """True while a submitted conversation still waits for its reply."""
        ...

    def submit(
        self, key: Any, conversation: Conversation, *, tools: Tools | None = None, env: Any = None
    ) -> None:
        """Queue ``conversation`` (offered ``tools``; ``env`` its live episode); its reply comes back under ``key``."""
        ...

    def poll(self) -> list[tuple[Any, Completion]]:
        """Some replies that ended since the last poll (empty when nothing is queued or running)."""
        ...


@runtime_checkable
class Policy(Protocol):
    """A batch of conversations + sampling parameters -> ``n`` completions per conversation.

    ``seeds`` (one int per conversation, optional) make sampling reproducible: backends that seed
    each request (vLLM, OpenAI-compatible servers) use them per conversation; ``hf``, whose sampler
    shares one RNG across a batch, derives one seed from the whole list, so the same batch with the
    same seeds gives the same completions.

    ``tools`` (optional, one entry per conversation: a list of OpenAI function schemas or None) are
    the tools each conversation may call; backends hand them to the chat template (``tools=``) or the
    server, and a reply that calls tools carries them as Hermes blocks
    ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` in its text.

    Optional capabilities are declared here, with defaults in :class:`PolicyBase`, so callers never
    probe for them: ``needs_env`` (``generate`` and sessions get the live episodes' env objects as
    ``envs=`` / ``env=``: scripted policies built on ``env.unwrapped.oracle_reply()``),
    ``has_sessions`` (:meth:`session` opens a continuous-batching :class:`Session`),
    ``has_token_ids`` (completions carry ids; :meth:`token_meta` names their tokenizer),
    :meth:`describe` (what records say about the policy) and :meth:`reset_prefix_cache`.
    ``needs_episode_ids`` (:class:`PolicyBase`; not required of a policy written before it): ``generate``
    gets ``episode_ids=``, one ``"<prompt_id>:<traj_idx>"`` per conversation (the openai backend's
    session header and sticky replicas).
    """

    backend: str
    model_id: str
    needs_env: bool
    has_sessions: bool
    has_token_ids: bool

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
        *,
        tools: Sequence[Tools | None] | None = None,
        envs: Sequence[Any] | None = None,
    ) -> list[list[Completion]]:
        """Return ``params.n`` completions for each conversation, in input order."""
        ...

    def session(self, params: SamplingParams, seed: int | None = None) -> Session:
        """A continuous-batching session (policies with ``has_sessions``)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What to record about this policy in trajectory metadata."""
        ...

    def token_meta(self) -> dict[str, Any]:
        """What trajectory ``meta`` says about token ids (see :meth:`PolicyBase.token_meta`)."""
        ...

    def reset_prefix_cache(self) -> None:
        """Forget cached prompt prefixes (a no-op for backends without a cache of their own)."""
        ...

    def close(self) -> None:
        """Release what the backend holds (threads, GPU memory)."""
        ...


def missing_members(policy: Any) -> list[str]:
    """The members of the :class:`Policy` protocol that ``policy`` lacks (empty for a complete policy)."""
    methods = [name for name, value in vars(Policy).items() if callable(value) and not name.startswith("_")]
    return [name for name in (*Policy.__annotations__, *methods) if not hasattr(policy, name)]


class PolicyBase:
    """Shared plumbing: context-manager support, argument checks, and the defaults of every optional
    capability of :class:`Policy` (a subclass sets or overrides only what it has)."""

    backend = "base"
    model_id = ""
    needs_env = False  # True: generate() gets envs=, session submits get env= (the live episodes)
    needs_episode_ids = False  # True: generate() gets episode_ids= ("<prompt_id>:<traj_idx>" each)
    has_sessions = False  # True: session() opens a continuous-batching Session
    chat_template_kwargs: Mapping[str, Any] = MappingProxyType({})  # extra chat-template arguments
    _token_meta: dict[str, Any] | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release resources; the default holds none."""

    def describe(self) -> dict[str, Any]:
        """What to record about this policy in trajectory metadata."""
        return {"backend": self.backend, "model": self.model_id}

    def session(self, params: SamplingParams, seed: int | None = None) -> Session:
        """A continuous-batching session; the default backend has none (it runs lock-step)."""
        raise PolicyError(f"the {self.backend} backend has no sessions; it runs lock-step")

    def reset_prefix_cache(self) -> None:
        """Forget cached prefixes; the default keeps none."""

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
        if self._token_meta is None:
            from drift_train.tokens import tokenizer_fingerprint

            tokenizer = self.ids_tokenizer()
            self._token_meta = {
                "tokenizer": (
                    tokenizer_fingerprint(tokenizer)
                    if tokenizer is not None
                    else {"name": self.model_id, "hash": None}
                ),
                "chat_template_kwargs": dict(self.chat_template_kwargs),
            }
        return self._token_meta

    @staticmethod
    def _check_inputs(
        conversations: Sequence[Conversation],
        params: SamplingParams,
        seeds: Sequence[int] | None,
        tools: Sequence[Tools | None] | None = None,
    ) -> None:
        check_inputs(conversations, params, seeds, tools)


def check_inputs(
    conversations: Sequence[Conversation],
    params: SamplingParams,
    seeds: Sequence[int] | None,
    tools: Sequence[Tools | None] | None = None,
) -> None:
    """Raise ``ValueError`` naming the first bad argument of a ``generate`` call."""
    params.validate()
    if seeds is not None and len(seeds) != len(conversations):
        raise ValueError(f"got {len(seeds)} seeds for {len(conversations)} conversations")
    if tools is not None:
        if len(tools) != len(conversations):
            raise ValueError(f"got {len(tools)} tool lists for {len(conversations)} conversations")
        for i, schemas in enumerate(tools):
            if schemas is not None and not (
                isinstance(schemas, list) and all(isinstance(t, dict) for t in schemas)
            ):
                raise ValueError(
                    f"conversation {i}: tools must be None or a list of OpenAI function schemas (dicts), "
                    f"got {schemas!r:.200}"
                )
    for i, conversation in enumerate(conversations):
        if not conversation:
            raise ValueError(f"conversation {i} is empty")
        for j, message in enumerate(conversation):
            # an assistant message that calls tools may have no text (OpenAI's content: null)
            content_ok = isinstance(message, dict) and (
                isinstance(message.get("content"), str)
                or (message.get("content") is None and bool(message.get("tool_calls")))
            )
            if not content_ok or "role" not in message:
                raise ValueError(
                    f"conversation {i}, message {j}: expected {{'role': str, 'content': str}}, got {message!r:.200}"
                )


class LockstepSession:
    """A :class:`Session` over ``policy.generate``: each poll answers everything submitted since the
    last one in a single batched call (lock-step turns, the trivial case of continuous batching).

    ``seed_of(key)`` gives each submission's sampling seed, so a conversation's reply does not depend
    on the order of the others (on backends that seed per request). ``tools`` are passed only when
    some submission has them and ``envs`` only to policies that declare ``needs_env``, so a policy
    written before those arguments existed keeps working with envs that offer no tools.
    ``episode_of(key)`` names each submission's episode, passed as ``episode_ids`` to policies that
    declare ``needs_episode_ids``.
    """

    def __init__(
        self,
        policy: Policy,
        params: SamplingParams,
        seed_of: Callable[[Any], int],
        episode_of: Callable[[Any], str] | None = None,
    ) -> None:
        self.policy, self.params, self.seed_of, self.episode_of = policy, params, seed_of, episode_of
        self._queue: list[tuple[Any, Conversation, Tools | None, Any]] = []

    @property
    def busy(self) -> bool:
        """True while a submitted conversation waits for the next poll."""
        return bool(self._queue)

    def submit(
        self, key: Any, conversation: Conversation, *, tools: Tools | None = None, env: Any = None
    ) -> None:
        """Queue ``conversation`` for the next batched call."""
        self._queue.append((key, conversation, tools, env))

    def poll(self) -> list[tuple[Any, Completion]]:
        """One ``generate`` call over every queued conversation; their replies in submission order."""
        queue, self._queue = self._queue, []
        if not queue:
            return []
        extra: dict[str, Any] = {}
        if any(tools is not None for _, _, tools, _ in queue):
            extra["tools"] = [tools for _, _, tools, _ in queue]
        if self.policy.needs_env:
            extra["envs"] = [env for *_, env in queue]
        # read with a default: needs_episode_ids is no protocol member, so older policies stay Policies
        if self.episode_of is not None and getattr(self.policy, "needs_episode_ids", False):
            extra["episode_ids"] = [self.episode_of(key) for key, *_ in queue]
        completions = self.policy.generate(
            [conversation for _, conversation, _, _ in queue],
            self.params,
            [self.seed_of(key) for key, *_ in queue],
            **extra,
        )
        return [(key, first) for (key, *_), (first, *_) in zip(queue, completions, strict=True)]


def combine_seeds(seeds: Sequence[int], *salt: int) -> int:
    """One 63-bit seed from a list of seeds (order matters), e.g. for a batch sampled with one RNG."""
    entropy = [int(s) % (1 << 63) for s in seeds] + [int(s) % (1 << 63) for s in salt]
    hi, lo = (int(x) for x in np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32))
    return (hi << 31) ^ lo


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; returns (text, whether one was found)."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)
