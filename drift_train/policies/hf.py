"""``hf`` backend: a transformers causal LM, batched with left padding, on CPU or GPU."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from drift_train.policies.base import (
    Completion,
    Conversation,
    PolicyBase,
    PolicyError,
    SamplingParams,
    Tools,
    check_inputs,
    combine_seeds,
    cut_at_stop,
)
from drift_train.policies.kv_cache import (
    GrowingLayer,
    cache_layers,
    forward_with_cache,
    new_cache,
    replace_layers,
    select_rows,
    trim_columns,
)


class HFPolicy(PolicyBase):
    """Sample replies from a transformers causal LM.

    Conversations are rendered with the tokenizer's chat template, sorted by prompt length (so each
    micro-batch carries little padding), left padded, and sampled in micro-batches of
    ``batch_size`` sequences with a KV-cache loop that drops rows as they end (``model.generate``
    would keep computing them). Sampling uses a ``torch.Generator`` seeded from ``seeds``, so the
    global RNG is untouched. ``model`` is a folder or hub id, or an already loaded
    ``PreTrainedModel`` (then pass its ``tokenizer`` too, or it is loaded from the model's name).

    Prefix caching: the keys and values of every finished sequence (prompt + reply) are kept, up to
    ``prefix_cache_mb`` megabytes on the model's device (least recently used dropped first), so the
    next turn of a conversation only encodes its new messages, and identical prompts in one call (K
    samples of a task) are encoded once. Changing the weights (an optimizer step, loading a state
    dict) empties it; ``reset_prefix_cache()`` does so explicitly; ``prefix_cache_mb=0`` turns it off.
    Models whose cache has sliding-window or other special layers run without it. Tokens listed in
    the model's ``generation_config.suppress_tokens`` are never sampled, as with ``model.generate``.

    Tools: a conversation's ``tools`` (OpenAI function schemas) go to the chat template as ``tools=``;
    conversations without tools render exactly as before, so templates without tool support work.
    """

    backend = "hf"
    has_token_ids = True
    has_sessions = True

    def __init__(
        self,
        model: Any,
        *,
        tokenizer: Any = None,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int = 64,
        chat_template_kwargs: dict | None = None,
        trust_remote_code: bool = False,
        prefix_cache_mb: float = 1024.0,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from drift_train.policies.kv_cache import (
            PrefixCache,
            check_transformers_version,
            supports_growing_cache,
        )

        check_transformers_version()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not prefix_cache_mb >= 0:
            raise ValueError(
                f"prefix_cache_mb must be >= 0 (0 turns the prefix cache off), got {prefix_cache_mb}"
            )
        self.batch_size = batch_size
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        if isinstance(model, (str, os.PathLike)):
            self.model_id = str(model)
            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
            if dtype == "auto":
                torch_dtype = (
                    torch.bfloat16
                    if device.startswith("cuda") and torch.cuda.is_bf16_supported()
                    else torch.float32
                )
            else:
                torch_dtype = getattr(torch, dtype, None)
                if not isinstance(torch_dtype, torch.dtype):
                    raise ValueError(
                        f"dtype must be 'auto' or a torch dtype name like 'bfloat16', got {dtype!r}"
                    )
            try:
                self.model = AutoModelForCausalLM.from_pretrained(
                    self.model_id, dtype=torch_dtype, trust_remote_code=trust_remote_code
                ).to(device)
            except OSError as err:
                raise PolicyError(f"hf backend: cannot load model {self.model_id!r}: {err}") from err
        else:
            self.model = model
            self.model_id = str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
            if device is not None:
                self.model.to(device)
        self.model.eval()
        self.device = next(self.model.parameters()).device
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(
            self.model_id, trust_remote_code=trust_remote_code
        )
        if not getattr(self.tokenizer, "chat_template", None):
            raise PolicyError(f"hf backend: the tokenizer of {self.model_id!r} has no chat template")
        eos = self.model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos:
            eos.append(self.tokenizer.eos_token_id)
        if not eos:
            raise PolicyError(f"hf backend: {self.model_id!r} defines no end-of-sequence token")
        self.eos_token_ids = eos
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = eos[0] if pad is None else pad
        # tokens the model's generation config never lets model.generate sample (honoured here too)
        suppress = [int(t) for t in (getattr(self.model.generation_config, "suppress_tokens", None) or [])]
        if set(suppress) & set(eos):
            raise PolicyError(f"hf backend: {self.model_id!r} suppresses its own end-of-sequence token")
        self._suppress = (
            torch.tensor(sorted(set(suppress)), dtype=torch.long, device=self.device) if suppress else None
        )
        self._growing_cache = supports_growing_cache(self.model)
        self._prefix_cache = (
            PrefixCache(int(prefix_cache_mb * 2**20)) if self._growing_cache and prefix_cache_mb > 0 else None
        )
        self._fingerprint: int | None = None

    def ids_tokenizer(self) -> Any:
        """The tokenizer that renders the prompts and decodes the sampled ids."""
        return self.tokenizer

    def render(
        self, conversations: Sequence[Conversation], tools: Sequence[Tools | None] | None = None
    ) -> list[list[int]]:
        """Prompt token ids of each conversation (chat template + generation prompt, its tools if any)."""
        texts = [
            self.tokenizer.apply_chat_template(
                list(c),
                tokenize=False,
                add_generation_prompt=True,
                **({} if tools is None or tools[i] is None else {"tools": tools[i]}),
                **self.chat_template_kwargs,
            )
            for i, c in enumerate(conversations)
        ]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
        *,
        tools: Sequence[Tools | None] | None = None,
        envs: Sequence[Any] | None = None,
    ) -> list[list[Completion]]:
        """Return ``params.n`` completions per conversation (see :class:`HFPolicy`); ``envs`` is unused."""
        check_inputs(conversations, params, seeds, tools)
        base_seeds = list(seeds) if seeds is not None else None
        if base_seeds is None and params.seed is not None:
            base_seeds = [params.seed]
        decoder = self._decoder(params, None if base_seeds is None else combine_seeds(base_seeds, 0))
        # one row per (conversation, sample)
        prompts = self.render(conversations, tools)
        for c, prompt in enumerate(prompts):
            for k in range(params.n):
                decoder.add((c, k), prompt)
        results: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        while decoder.busy:
            for (c, k), completion in decoder.poll():
                results[c][k] = completion
        return results  # type: ignore[return-value]

    def session(self, params: SamplingParams, seed: int | None = None) -> HFSession:
        """A continuous-batching session: submit conversations any time, collect replies as they end.

        The rollout engine uses this to let each episode take its next turn as soon as its reply is
        done, instead of waiting for the slowest reply of the turn (see :class:`HFSession`).
        """
        params.validate()
        if params.n != 1:
            raise ValueError("a session samples one completion per conversation (params.n must be 1)")
        return HFSession(self._decoder(params, seed), self.render)

    def _decoder(self, params: SamplingParams, seed: int | None) -> _Decoder:
        """A decoder over this policy's model, handed everything it needs (it reads nothing else of ours)."""
        setup = DecodeSetup(
            model=self.model,
            tokenizer=self.tokenizer,
            device=self.device,
            eos_token_ids=tuple(self.eos_token_ids),
            pad_token_id=self.pad_token_id,
            batch_size=self.batch_size,
            suppress=self._suppress,
            growing_cache=self._growing_cache,
            logits_to_keep=self._accepts_logits_to_keep,
            prefix=self._live_prefix_cache(),
        )
        return _Decoder(setup, params, seed)

    def _live_prefix_cache(self):
        """The prefix cache, emptied first if the weights changed since it was filled; None when off."""
        from drift_train.policies.kv_cache import weights_fingerprint

        if self._prefix_cache is None:
            return None
        fingerprint = weights_fingerprint(self.model)
        if fingerprint != self._fingerprint:
            self._prefix_cache.clear()
            self._fingerprint = fingerprint
        return self._prefix_cache

    def reset_prefix_cache(self) -> None:
        """Forget every cached prefix (the rollout engine calls this at the start of each chunk)."""
        if self._prefix_cache is not None:
            self._prefix_cache.clear()

    @property
    def _accepts_logits_to_keep(self) -> bool:
        import inspect

        if not hasattr(self, "_logits_to_keep"):
            self._logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        return self._logits_to_keep


class HFSession:
    """Continuous batching over conversations submitted at any time (from :meth:`HFPolicy.session`).

    ``submit(key, conversation)`` queues a conversation; ``poll()`` decodes until some replies have
    ended and returns them as ``(key, Completion)`` pairs (an empty list once nothing is queued or
    running). Up to the policy's ``batch_size`` sequences decode together; a submitted conversation
    joins the running batch at the next refill, and its history is found in the prefix cache. One
    generator seeded with ``seed`` drives all sampling, so the same submissions in the same order
    give the same replies.
    """

    def __init__(self, decoder: _Decoder, render: Callable[..., list[list[int]]]) -> None:
        self._decoder = decoder
        self._render = render  # HFPolicy.render: conversations (+ tools) -> prompt ids

    def submit(
        self, key: Any, conversation: Conversation, *, tools: Tools | None = None, env: Any = None
    ) -> None:
        """Queue ``conversation`` (offered ``tools``); its reply comes back from :meth:`poll` under ``key``.
        ``env`` is unused (the hf backend does not need the episode's env)."""
        check_inputs([conversation], self._decoder.params, None, [tools])
        self._decoder.add(key, self._render([conversation], [tools])[0])

    def poll(self) -> list[tuple[Any, Completion]]:
        """Decode until some replies end; returns them (empty when nothing is queued or running)."""
        return self._decoder.poll()

    @property
    def busy(self) -> bool:
        """True while a submitted conversation still waits for its reply."""
        return self._decoder.busy


class _Decoder:
    """Sample replies with at most ``setup.batch_size`` sequences decoding at once (continuous refill).

    A KV-cache loop: rows leave the batch as they end (``model.generate`` would keep computing them
    until the longest one ends), and once a quarter of the slots are free the waiting prompts (the
    longest part still to encode first, so each prefill wave pads little) are encoded and join the
    running batch, so it stays full while there is work. Ended rows ride along, masked out, until
    enough of them have gathered that compacting the cache (a copy) pays for itself. Each finished
    sequence's keys and values go to the prefix cache, for the conversation's next turn.
    """

    def __init__(self, setup: DecodeSetup, params: SamplingParams, seed: int | None) -> None:
        import torch

        self.setup, self.params = setup, params
        self.device = setup.device
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator(device=self.device)
            self.generator.manual_seed(seed)
        self.eos = torch.tensor(setup.eos_token_ids, device=self.device)
        self.prefix = setup.prefix
        self.prompts: dict[int, list[int]] = {}
        self.keys: dict[int, Any] = {}
        self.generated: dict[int, list[int]] = {}
        self.stopped: dict[int, bool] = {}
        self.todo: dict[int, int] = {}
        self.pending: list[int] = []
        self.state: _Batch | None = None
        self.next_row = 0
        self.refill_at = max(1, setup.batch_size // _REFILL_AT)

    @property
    def busy(self) -> bool:
        return bool(self.pending) or self.state is not None

    def add(self, key: Any, prompt: list[int]) -> None:
        row = self.next_row
        self.next_row += 1
        self.keys[row], self.prompts[row] = key, prompt
        self.generated[row], self.stopped[row] = [], False
        cached = self.prefix.longest(prompt)[1] if self.prefix is not None else 0
        self.todo[row] = len(prompt) - cached
        self.pending.append(row)

    def poll(self) -> list[tuple[Any, Completion]]:
        """Decode until a quarter of the slots' replies ended, or every running reply did."""
        import torch

        done: list[tuple[Any, Completion]] = []
        with torch.inference_mode():
            while self.busy:
                self._admit()
                state = self.state
                if state is None:
                    break
                done.extend((self.keys.pop(row), self._completion(row)) for row in self._sample_step(state))
                if not bool(state.alive.any()):  # every row ended: the next wave (if any) starts afresh
                    self._store(state, range(len(state.rows)))
                    self.state = None
                    if done and not self.pending:
                        break
                    continue
                dead = len(state.rows) - int(state.alive.sum())
                if dead * _COMPACT_AT >= len(state.rows):
                    keep = state.alive.nonzero().squeeze(1)
                    tokens = state.tokens[keep]
                    self.state = state = self._compact(state, keep)
                    state.tokens = tokens
                    _trim_padding(state)
                self._forward(state)
                if len(done) >= self.refill_at:
                    break
        return done

    def _admit(self) -> None:
        setup = self.setup
        live = 0 if self.state is None else int(self.state.alive.sum())
        free = setup.batch_size - live
        if not self.pending or free <= 0:
            return
        if live and not (setup.growing_cache and free >= min(self.refill_at, len(self.pending))):
            return
        if self.state is not None:
            # ended rows leave before the prefill, so a follow-up turn admitted now finds their keys/values
            self._store(self.state, (~self.state.alive).nonzero().squeeze(1).tolist())
        self.pending.sort(key=lambda r: -self.todo[r])
        admit, self.pending = self.pending[:free], self.pending[free:]
        new = self._prefill(admit)
        self.state = self._merge(self.state, new) if live else new

    def _sample_step(self, state: _Batch) -> list[int]:
        """Sample one token for every live row; returns the rows whose reply just ended."""
        import torch

        params = self.params
        logits = state.logits
        if self.setup.suppress is not None:
            logits = logits.index_fill(-1, self.setup.suppress, float("-inf"))
        tokens = _sample(logits, params, self.generator)
        flags = torch.isin(tokens, self.eos).tolist()
        ended = []
        for slot, (row, token, is_live) in enumerate(
            zip(state.rows, tokens.tolist(), state.alive.tolist(), strict=True)
        ):
            if not is_live:
                flags[slot] = False
                continue
            reply = self.generated[row]
            reply.append(token)
            if not flags[slot]:
                if len(reply) >= params.max_new_tokens:
                    flags[slot] = True
                elif params.stop and _ends_in_stop(self.setup.tokenizer, reply, params.stop):
                    flags[slot] = self.stopped[row] = True
            if flags[slot]:
                ended.append(row)
        state.alive &= ~torch.tensor(flags, device=self.device)
        state.tokens = tokens
        return ended

    def _forward(self, state: _Batch) -> None:
        import torch

        state.mask = torch.cat([state.mask, state.alive[:, None].to(state.mask.dtype)], dim=1)
        state.positions = state.positions + 1
        out = forward_with_cache(
            self.setup.model,
            state.cache,
            input_ids=state.tokens[:, None],
            attention_mask=state.mask,
            position_ids=state.positions[:, None],
        )
        state.logits = out.logits[:, -1, :]

    def _completion(self, row: int) -> Completion:
        params, setup = self.params, self.setup
        ids = self.generated[row]
        by_stop_string = self.stopped[row]
        ended = bool(ids) and ids[-1] in setup.eos_token_ids
        text = setup.tokenizer.decode(ids[:-1] if ended else ids, skip_special_tokens=True)
        reason = "stop" if ended or by_stop_string else "length"
        if params.stop:
            text, found = cut_at_stop(text, params.stop)
            reason = "stop" if found or ended else reason
        return Completion(
            text=text,
            num_tokens=len(ids),
            finish_reason=reason,
            token_ids=tuple(ids),
            prompt_ids=tuple(self.prompts[row]),
        )

    def _prefill(self, rows: list[int]) -> _Batch:
        """Encode the prompts of ``rows`` (each distinct one once, reusing cached prefixes) into a new batch.

        Row i needs ``s_i`` tokens encoded after its cached prefix; the input block is ``S = max s_i``
        wide, and a row with a shorter suffix encodes the last ``S - s_i`` tokens of its prefix again
        instead of padding (same cost, no gap). So each row is one run of real tokens, left padded:
        ``[pad][cached: max(0, len_i - S)][input: min(len_i, S)]``.
        """
        import torch

        setup, prefix = self.setup, self.prefix
        model, device = setup.model, setup.device
        prompts = [self.prompts[r] for r in rows]
        distinct: dict[tuple[int, ...], int] = {}
        row_of = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
        keys = list(distinct)
        hits = [prefix.lookup(k) if prefix is not None else (None, 0) for k in keys]
        width_s = max(len(k) - c for k, (_, c) in zip(keys, hits, strict=True))
        cached = [
            max(0, len(k) - width_s) if entry is not None else 0
            for k, (entry, _) in zip(keys, hits, strict=True)
        ]
        width_c = max(cached)
        n = len(keys)
        input_ids = torch.full((n, width_s), setup.pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, width_c + width_s), dtype=torch.long)
        for i, (k, c) in enumerate(zip(keys, cached, strict=True)):
            suffix = k[c:]
            input_ids[i, width_s - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
            mask[i, width_c - c : width_c] = 1
            mask[i, width_c + width_s - len(suffix) :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if setup.growing_cache:
            cache = new_cache(model, capacity=width_c + width_s + self.params.max_new_tokens)
            if width_c:
                like = next(entry for entry, _ in hits if entry is not None).kv
                for layer, (k0, v0) in zip(cache_layers(cache), like, strict=True):
                    layer.start(n, (k0, v0), width_c)
                for i, ((entry, _), c) in enumerate(zip(hits, cached, strict=True)):
                    if c:
                        for layer, (k0, v0) in zip(cache_layers(cache), entry.kv, strict=True):
                            layer.write_rows(i, width_c - c, k0[None, :, :c], v0[None, :, :c])
        else:
            cache = new_cache(model)
        extra = {"logits_to_keep": 1} if setup.logits_to_keep else {}
        out = forward_with_cache(
            model,
            cache,
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions[:, width_c:],
            **extra,
        )
        logits = out.logits[:, -1, :]
        if n < len(prompts):  # duplicated prompts (K samples of one task): copy the encoded rows
            index = torch.tensor(row_of, device=device)
            select_rows(cache, index)
            logits, mask, positions = logits[index], mask[index], positions[index]
        return _Batch(
            cache=cache,
            rows=list(rows),
            alive=torch.ones(len(rows), dtype=torch.bool, device=device),
            mask=mask,
            positions=positions[:, -1],
            logits=logits,
        )

    def _compact(self, state: _Batch, keep) -> _Batch:
        """Only the rows ``keep`` (the live ones), after storing the others in the prefix cache."""
        self._store(state, (~state.alive).nonzero().squeeze(1).tolist())
        select_rows(state.cache, keep)
        return _Batch(
            cache=state.cache,
            rows=[state.rows[i] for i in keep.tolist()],
            alive=state.alive[keep],
            mask=state.mask[keep],
            positions=state.positions[keep],
            logits=state.logits[keep],
        )

    def _merge(self, old: _Batch, new: _Batch) -> _Batch:
        """One batch of ``old``'s live rows (its ended ones already stored) and ``new``'s rows,
        right-aligned (left padding) in a fresh cache."""
        import torch

        keep = old.alive.nonzero().squeeze(1)
        old.mask = old.mask[keep]
        lead = _leading_padding(old.mask)  # columns only the ended rows used
        old.mask = old.mask[:, lead:]
        width_old, width_new = old.mask.shape[1], new.mask.shape[1]
        width = max(width_old, width_new)
        n_old = keep.numel()
        layers = []
        for old_layer, new_layer in zip(cache_layers(old.cache), cache_layers(new.cache), strict=True):
            layer = GrowingLayer(width + self.params.max_new_tokens)
            layer.start(n_old + len(new.rows), (new_layer.keys[0], new_layer.values[0]), width)
            layer.write_rows(
                0,
                width - width_old,
                old_layer.keys[:, :, lead:].index_select(0, keep),
                old_layer.values[:, :, lead:].index_select(0, keep),
            )
            layer.write_rows(n_old, width - width_new, new_layer.keys, new_layer.values)
            layers.append(layer)
        replace_layers(old.cache, layers)
        mask = old.mask.new_zeros((n_old + len(new.rows), width))
        mask[:n_old, width - width_old :] = old.mask
        mask[n_old:, width - width_new :] = new.mask
        return _Batch(
            cache=old.cache,
            rows=[old.rows[i] for i in keep.tolist()] + new.rows,
            alive=torch.cat([old.alive[keep], new.alive]),
            mask=mask,
            positions=torch.cat([old.positions[keep], new.positions]),
            logits=torch.cat([old.logits[keep], new.logits]),
        )

    def _store(self, state: _Batch, slots) -> None:
        """The given (ended) slots leave the batch: their sequences (prompt + reply fed so far) and
        keys/values go to the prefix cache, and the decoder forgets them."""
        for slot in slots:
            row = state.rows[slot]
            prompt, reply = self.prompts.pop(row), self.generated.pop(row)
            self.stopped.pop(row)
            self.todo.pop(row)
            if self.prefix is None:
                continue
            tokens = prompt + reply[:-1]  # the last sampled token was never fed
            where = state.mask[slot].nonzero().squeeze(1)
            if where.numel() != len(tokens):  # bookkeeping mismatch: storing would poison later turns
                raise RuntimeError(
                    f"hf backend: cache row holds {where.numel()} tokens, expected {len(tokens)}"
                )
            self.prefix.insert(tokens, [layer.row(slot, where) for layer in cache_layers(state.cache)])


def _leading_padding(mask) -> int:
    """How many leading columns no row attends to."""
    used = mask.any(0)
    return int(used.int().argmax()) if bool(used.any()) else mask.shape[1]


def _trim_padding(state: _Batch) -> None:
    """Drop the leading columns no row attends to (left by rows that left the batch): attention skips them."""
    lead = _leading_padding(state.mask)
    if not lead:
        return
    state.mask = state.mask[:, lead:]
    trim_columns(state.cache, lead)


@dataclass(frozen=True)
class DecodeSetup:
    """What a :class:`_Decoder` needs from its policy, handed over explicitly."""

    model: Any
    tokenizer: Any  # decodes replies (and checks stop strings)
    device: Any
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    batch_size: int  # sequences decoding at once
    suppress: Any  # long tensor of ids never sampled, or None
    growing_cache: bool  # the model's cache can take rows that join mid-decode
    logits_to_keep: bool  # model.forward accepts logits_to_keep
    prefix: Any  # the live PrefixCache, or None when prefix caching is off


@dataclass
class _Batch:
    """The sequences decoding together: slot i holds prompt ``rows[i]``; cache, mask, positions, logits by slot."""

    cache: Any
    rows: list[int]
    alive: Any  # bool tensor: False once the slot's reply ended (its row rides along until compaction)
    mask: Any  # attention mask over the cache's columns
    positions: Any  # position id of each slot's last fed token
    logits: Any  # next-token logits of each slot
    tokens: Any = None  # the tokens just sampled, fed at the next forward


# compact the decode batch (a copy of its whole cache) once a quarter of its rows have ended; until
# then the ended rows ride along, masked out, which costs less than copying at every ending
_COMPACT_AT = 4
_REFILL_AT = 4


def _sample(logits, params: SamplingParams, generator):
    """One token per row: greedy at temperature 0, else temperature, top-k, top-p, then a draw."""
    import torch

    if params.temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / params.temperature
    if 0 < params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        # drop a token once the tokens before it already cover top_p (the first always stays)
        drop = sorted_probs.cumsum(-1) - sorted_probs > params.top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def _ends_in_stop(tokenizer, ids: list[int], stop: Sequence[str]) -> bool:
    # a stop string can only be completed by the newest token: decode a tail long enough to hold it
    tail = tokenizer.decode(ids[-(max(len(s) for s in stop) + 8) :], skip_special_tokens=True)
    return any(s and s in tail for s in stop)
