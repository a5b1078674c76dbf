"""``openai`` backend: any OpenAI-compatible chat server (``vllm serve``, ``transformers serve``, hosted APIs)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from drift_train.policies.base import (
    Completion,
    Conversation,
    PolicyBase,
    PolicyError,
    SamplingParams,
    Tools,
    check_inputs,
    cut_at_stop,
)

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
SESSION_HEADER = "X-Session-ID"  # what vllm-router's consistent_hash policy (and others) route on

logger = logging.getLogger(__name__)


def rendezvous_order(episode_id: str, urls: Sequence[str]) -> list[int]:
    """The replicas (indices into ``urls``) in the order an episode prefers them: rendezvous (highest
    random weight) hashing of ``episode_id`` with each URL, best first.

    An episode's first choice depends only on its id and the URLs, not on the list's order or on
    other episodes; when a replica leaves, only the episodes that preferred it move, each to its own
    second choice, so the others keep their prefix caches.
    """

    def weight(url: str) -> bytes:
        return hashlib.blake2b(f"{episode_id}\x00{url}".encode(), digest_size=8).digest()

    return sorted(range(len(urls)), key=lambda i: weight(urls[i]), reverse=True)


def parse_base_urls(base_url: str) -> list[str]:
    """``"http://a/v1,http://b/v1"`` -> one URL per replica; raises ``PolicyError`` on an empty or repeated entry."""
    urls = [part.strip() for part in str(base_url).split(",")]
    for i, url in enumerate(urls):
        if not url:
            raise PolicyError(f"openai backend: --base-url {base_url!r}: entry {i + 1} is empty")
        if "://" not in url:
            raise PolicyError(
                f"openai backend: --base-url entry {url!r} is not a URL (expected http://host:port/v1)"
            )
    repeated = sorted({url for url in urls if urls.count(url) > 1})
    if repeated:
        raise PolicyError(f"openai backend: --base-url names {repeated[0]} more than once")
    return urls


class _Replica:
    """One server of the set: its client, the requests in flight on it, and whether it is in service."""

    def __init__(self, index: int, url: str, client: Any) -> None:
        self.index = index
        self.url = url
        self.client = client
        self.outstanding = 0  # requests sent and not yet answered
        self.answered = 0  # requests it answered (any HTTP status)
        self.out_reason: str | None = None  # why it was taken out; None while in service
        self.readmit_at = math.inf  # when a taken-out replica gets one trial request
        self.probing = False  # that trial request is in flight


class OpenAIPolicy(PolicyBase):
    """Sample replies from ``POST {base_url}/chat/completions``, many requests at once.

    ``max_concurrency`` requests run in parallel on a thread pool. Connection errors, timeouts,
    rate limits and 5xx answers are retried up to ``max_retries`` times with exponential backoff
    (``backoff_s * 2**attempt``, jittered, capped at ``max_backoff_s``); anything else (bad model
    name, bad request, auth) fails at once with the server's message. Servers that ignore ``n``
    (``transformers serve``) are topped up with further requests. ``base_url`` defaults to
    ``$OPENAI_BASE_URL``; ``api_key`` to ``$OPENAI_API_KEY`` (or a placeholder for local servers).

    Several servers: ``base_url`` may name several replicas of the same model, separated by commas.
    Each request goes to the replica with the fewest requests in flight (ties in turn). A replica
    that stops answering (connection refused or reset, timeout) is taken out of service and the
    request is sent again to another replica at once, without counting as a retry; every
    ``readmit_after_s`` seconds a taken-out replica gets one trial request and is back in service if
    it answers. The last replica in service is never taken out: its failures are retried with
    backoff as above, and when they run out the error lists every replica and why it left.

    Episodes (``needs_episode_ids``): the rollout engine names the episode of each conversation
    (``episode_ids=``, ``"<prompt_id>:<traj_idx>"``). Every request of an episode carries it in the
    ``session_header`` header (``X-Session-ID``; ``""`` sends none), so a router in front
    (``vllm-router --policy consistent_hash``) keeps the episode on one server, and over several
    ``base_url``s the episode stays on one replica (:func:`rendezvous_order`), whose prefix cache
    holds its history. When that replica is taken out, the episode moves to its next choice in
    service and stays there for the rest of the rollout chunk (until :meth:`reset_prefix_cache`),
    even if its first replica is readmitted. Requests without an episode id are spread as above.

    Tools: a conversation's ``tools`` go in its request as ``tools``; when the server answers with
    structured ``tool_calls`` the reply's text carries each call as a Hermes block
    ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` after any content (one per call, in
    order), the format every tool-using env parses, whatever the server's parser did.
    """

    backend = "openai"
    needs_episode_ids = True  # generate() gets episode_ids=: the session header and sticky replicas
    has_token_ids = True  # when the server returns them (vLLM's does); a record notes a turn without them

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 20.0,
        extra_body: dict | None = None,
        readmit_after_s: float = 30.0,
        return_token_ids: bool = True,
        tokenizer: Any = None,
        chat_template_kwargs: dict | None = None,
        session_header: str = SESSION_HEADER,
    ) -> None:
        try:
            import openai
        except ImportError as err:  # pragma: no cover - openai is in the [train] extra
            raise PolicyError(
                "the openai backend needs the openai client: pip install 'drift-toolkit[train]'"
            ) from err
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.model_id = str(model)
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise PolicyError(
                "openai backend: no server given; pass base_url=... (--base-url) or set OPENAI_BASE_URL"
            )
        self.base_urls = parse_base_urls(base_url)
        self.base_url = ",".join(self.base_urls)
        self.readmit_after_s = readmit_after_s
        self.session_header = str(session_header).strip()
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.extra_body = dict(extra_body or {})
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        if self.chat_template_kwargs:
            self.extra_body.setdefault("chat_template_kwargs", self.chat_template_kwargs)
        # vLLM's server (>= 0.10.2) returns the prompt's and each choice's token ids when asked; a server
        # that refuses the field is asked once more without it, and from then on never again
        self.return_token_ids = return_token_ids
        self._tokenizer_spec = tokenizer
        self._openai = openai
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        # retries are ours (max_retries=0), so every attempt is counted, reported, and can change replica
        self._replicas = [
            _Replica(i, url, openai.OpenAI(base_url=url, api_key=key, timeout=timeout_s, max_retries=0))
            for i, url in enumerate(self.base_urls)
        ]
        self._replica_lock = threading.Lock()
        self._turn = 0  # where the next tie between equally loaded replicas starts
        self._moved: dict[str, _Replica] = {}  # episode id -> the replica it moved to (it stays there)
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="drift-openai")
        self._jitter = random.Random(0)
        self._jitter_lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        """Backend, model, the server URLs (comma-separated, as given) and how many replicas they are."""
        return {**super().describe(), "base_url": self.base_url, "replicas": len(self._replicas)}

    def replica_stats(self) -> list[dict[str, Any]]:
        """Per replica: ``url``, ``in_service``, ``outstanding`` and ``answered`` requests, ``out_reason``."""
        with self._replica_lock:
            return [
                {
                    "url": r.url,
                    "in_service": r.out_reason is None,
                    "outstanding": r.outstanding,
                    "answered": r.answered,
                    "out_reason": r.out_reason,
                }
                for r in self._replicas
            ]

    def _acquire(self, episode_id: str | None = None) -> _Replica:
        """The replica for the next request: an episode's own (:meth:`_episode_replica`), else a due trial
        of a taken-out one, else the least loaded in service."""
        with self._replica_lock:
            if episode_id is not None:
                chosen = self._episode_replica(episode_id)
            else:
                now = time.monotonic()
                trial = next(
                    (
                        r
                        for r in self._replicas
                        if r.out_reason is not None and not r.probing and r.readmit_at <= now
                    ),
                    None,
                )
                if trial is not None:
                    trial.probing = True
                    chosen = trial
                else:
                    n = len(self._replicas)
                    chosen = min(
                        (r for r in self._replicas if r.out_reason is None),
                        key=lambda r: (r.outstanding, (r.index - self._turn) % n),
                    )
                    self._turn = chosen.index + 1
            chosen.outstanding += 1
            return chosen

    def _episode_replica(self, episode_id: str) -> _Replica:
        """Where an episode's request goes (the replica lock held): the replica it moved to, while in
        service; else its first choice when in service (or due for a trial request, which it then is);
        else its best choice in service, where it then stays."""
        moved = self._moved.get(episode_id)
        if moved is not None and moved.out_reason is None:
            return moved
        order = [self._replicas[i] for i in rendezvous_order(episode_id, self.base_urls)]
        first = order[0]
        if moved is None and first.out_reason is None:
            return first
        if moved is None and not first.probing and first.readmit_at <= time.monotonic():
            first.probing = True  # a new episode whose first choice is due for a trial: this is it
            return first
        chosen = next(r for r in order if r.out_reason is None)
        self._moved[episode_id] = chosen
        return chosen

    def _release(self, replica: _Replica, answered: bool) -> None:
        with self._replica_lock:
            replica.outstanding -= 1
            if answered:
                replica.answered += 1
            if replica.probing:
                replica.probing = False
                if answered:
                    logger.warning("openai backend: replica %s answers again; back in service", replica.url)
                    replica.out_reason, replica.readmit_at = None, math.inf
                else:
                    replica.readmit_at = time.monotonic() + self.readmit_after_s

    def _take_out(self, replica: _Replica, err: Exception) -> bool:
        """Take a replica that stopped answering out of service; False when it is the last one in service."""
        with self._replica_lock:
            if replica.out_reason is not None:
                return True  # already out (another request saw it fail first, or this was its trial)
            if not any(r.out_reason is None for r in self._replicas if r is not replica):
                return False
            replica.out_reason = _connection_failure(err)
            replica.readmit_at = time.monotonic() + self.readmit_after_s
            left = sum(r.out_reason is None for r in self._replicas)
        logger.warning(
            "openai backend: replica %s stopped answering (%s); taken out, %d of %d left in service",
            replica.url,
            replica.out_reason,
            left,
            len(self._replicas),
        )
        return True

    def ids_tokenizer(self) -> Any:
        """The served model's tokenizer when it can be named: ``tokenizer=`` (a folder, hub id or tokenizer
        object) or, failing that, ``model`` when it is a local folder; None when it cannot be loaded here
        (training then uses the text: ids it cannot check are never trusted)."""
        spec = self._tokenizer_spec
        if spec is None and os.path.isdir(self.model_id):
            spec = self.model_id
        if not isinstance(spec, (str, os.PathLike)):
            return spec
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(spec))
        except Exception:  # noqa: BLE001 - any failure means: cannot verify the ids
            return None

    def reset_prefix_cache(self) -> None:
        """Forget where moved episodes went: the rollout engine calls this between chunks, when every
        episode of the last one has ended (the servers' own caches are theirs to manage)."""
        with self._replica_lock:
            self._moved.clear()

    def close(self) -> None:
        """Stop the worker threads and the HTTP clients."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for replica in self._replicas:
            replica.client.close()

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
        *,
        tools: Sequence[Tools | None] | None = None,
        envs: Sequence[Any] | None = None,
        episode_ids: Sequence[str] | None = None,
    ) -> list[list[Completion]]:
        """Return ``params.n`` completions per conversation; requests run concurrently. ``envs`` is unused;
        ``episode_ids`` (one per conversation) name each conversation's episode (class docstring)."""
        check_inputs(conversations, params, seeds, tools)
        if episode_ids is not None and len(episode_ids) != len(conversations):
            raise ValueError(
                f"episode_ids has {len(episode_ids)} entries for {len(conversations)} conversations"
            )
        futures = [
            self._pool.submit(
                self._complete,
                list(c),
                params,
                None if seeds is None else int(seeds[i]),
                None if tools is None else tools[i],
                None if episode_ids is None else str(episode_ids[i]),
            )
            for i, c in enumerate(conversations)
        ]
        return [f.result() for f in futures]

    def _complete(
        self,
        messages: list,
        params: SamplingParams,
        seed: int | None,
        tools: Tools | None = None,
        episode_id: str | None = None,
    ) -> list[Completion]:
        completions: list[Completion] = []
        request = 0
        while len(completions) < params.n:
            wanted = params.n - len(completions)
            request_seed = None if seed is None else seed + request
            completions += self._request(messages, params, wanted, request_seed, tools, episode_id)[:wanted]
            request += 1
        return completions

    def _request(
        self,
        messages: list,
        params: SamplingParams,
        n: int,
        seed: int | None,
        tools: Tools | None = None,
        episode_id: str | None = None,
    ) -> list[Completion]:
        body: dict[str, Any] = dict(
            model=self.model_id,
            messages=_wire_messages(messages),
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
        )
        if tools is not None:
            body["tools"] = tools
        if params.temperature > 0 and params.top_p < 1:
            body["top_p"] = params.top_p
        if n > 1:
            body["n"] = n
        if seed is not None:
            body["seed"] = seed
        if params.stop:
            body["stop"] = list(params.stop)
        extra = dict(self.extra_body)
        if params.top_k:
            extra["top_k"] = params.top_k  # vLLM and TGI read it from the body; OpenAI ignores it
        headers = (
            {self.session_header: episode_id} if episode_id is not None and self.session_header else None
        )
        openai = self._openai
        attempt = 0
        while True:
            if self.return_token_ids:
                extra["return_token_ids"] = True
            else:
                extra.pop("return_token_ids", None)
            replica = self._acquire(episode_id)
            answered = False
            try:
                response = replica.client.chat.completions.create(
                    **body, extra_body=extra or None, extra_headers=headers
                )
                answered = True
                break
            except (openai.APIConnectionError, openai.APIStatusError) as err:
                status = getattr(err, "status_code", None)
                answered = status is not None
                if status in (400, 422) and "return_token_ids" in extra:
                    self.return_token_ids = (
                        False  # the server does not know the field: plain requests from now on
                    )
                    continue  # not counted as an attempt
                retryable = status is None or status in RETRYABLE_STATUS
                if not retryable:
                    hint = " (is the model name one the server serves?)" if status == 404 else ""
                    raise PolicyError(
                        f"openai backend: {replica.url} answered {status} for model {self.model_id!r}{hint}: "
                        f"{_error_message(err)}"
                    ) from err
                if status is None and self._take_out(replica, err):
                    continue  # sent again at once to a replica in service; not counted as an attempt
                if attempt == self.max_retries:
                    what = f"HTTP {status}" if status is not None else type(err).__name__
                    gone = [
                        f"{r['url']} ({r['out_reason']})" for r in self.replica_stats() if not r["in_service"]
                    ]
                    left = f"; no other replica left (taken out: {', '.join(gone)})" if gone else ""
                    raise PolicyError(
                        f"openai backend: request to {replica.url} (model {self.model_id!r}) failed "
                        f"{self.max_retries + 1} times; last error {what}: {_error_message(err)}{left}"
                    ) from err
            finally:
                self._release(replica, answered)
            with self._jitter_lock:  # the backoff is spent outside the replica's in-flight count
                jitter = 0.5 + self._jitter.random()
            time.sleep(min(self.max_backoff_s, self.backoff_s * 2**attempt) * jitter)
            attempt += 1
        choices = sorted(response.choices, key=lambda c: c.index)
        if not choices:
            raise PolicyError(
                f"openai backend: {replica.url} returned no choices for model {self.model_id!r}"
            )
        usage = getattr(response, "usage", None)
        total = getattr(usage, "completion_tokens", None)
        texts = [_reply_text(c.message) for c in choices]
        prompt_ids = _int_ids(getattr(response, "prompt_token_ids", None))
        completions = []
        for i, (choice, text) in enumerate(zip(choices, texts, strict=True)):
            token_ids = _int_ids(getattr(choice, "token_ids", None))
            if total is None:
                tokens = 0
            elif len(choices) == 1:
                tokens = int(total)
            else:  # usage is per request: split it by characters
                share = len(text) / max(1, sum(len(t) for t in texts))
                tokens = round(total * share) if i < len(choices) - 1 else 0
            reason = "length" if choice.finish_reason == "length" else "stop"
            if params.stop:
                text, found = cut_at_stop(text, params.stop)
                reason = "stop" if found else reason
            if token_ids is not None:
                tokens = len(token_ids)
            ids = (
                dict(token_ids=token_ids, prompt_ids=prompt_ids)
                if token_ids is not None and prompt_ids
                else {}
            )
            completions.append(Completion(text=text, num_tokens=tokens, finish_reason=reason, **ids))
        if total is not None and len(choices) > 1 and completions[-1].token_ids is None:
            last = completions[-1]  # the last one takes the rounding remainder
            used = sum(c.num_tokens for c in completions[:-1])
            completions[-1] = Completion(last.text, max(0, int(total) - used), last.finish_reason)
        return completions


def _wire_messages(messages: list) -> list:
    """The conversation as the OpenAI API takes it: a tool call's ``arguments`` is a JSON *string*
    there, while our records (and chat templates) keep it as an object. Other messages pass as they are."""
    out = []
    for message in messages:
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if calls and any(not isinstance((c.get("function") or {}).get("arguments"), str) for c in calls):
            wired = []
            for call in calls:
                function = dict(call.get("function") or {})
                if not isinstance(function.get("arguments"), str):
                    function["arguments"] = json.dumps(function.get("arguments") or {}, ensure_ascii=False)
                wired.append({**call, "function": function})
            message = {**message, "tool_calls": wired}
        out.append(message)
    return out


def _reply_text(message: Any) -> str:
    """The reply's content, then each structured tool call as a Hermes ``<tool_call>`` block."""
    parts = [message.content] if message.content else []
    for call in getattr(message, "tool_calls", None) or []:
        function = getattr(call, "function", None)
        if function is None:  # a non-function tool call (custom tools): nothing an env could parse
            continue
        try:
            arguments = json.loads(function.arguments) if function.arguments else {}
        except (TypeError, ValueError):
            arguments = function.arguments  # not JSON: passed on as the server sent it
        block = json.dumps({"name": function.name, "arguments": arguments}, ensure_ascii=False)
        parts.append(f"<tool_call>{block}</tool_call>")
    return "\n".join(parts)


def _int_ids(value: Any) -> tuple[int, ...] | None:
    """A server's token-id list as a tuple of ints, or None when absent or not a list of ints."""
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in value
    ):
        return None
    return tuple(value)


def _connection_failure(err: Exception) -> str:
    """``APIConnectionError: Connection error. (ConnectError: [Errno 111] Connection refused)``: the client's
    message says only that the connection failed; the transport's cause says how."""
    cause = err.__cause__ or err.__context__
    detail = f" ({type(cause).__name__}: {cause})" if cause is not None and str(cause) else ""
    return f"{type(err).__name__}: {_error_message(err)}{detail}"


def _error_message(err: Exception) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        message = (
            inner.get("message") if isinstance(inner, dict) else body.get("message") or body.get("detail")
        )
        if message:
            return str(message)
    return str(err) or type(err).__name__
