"""``hf`` backend: a transformers causal LM, batched with left padding, on CPU or GPU."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drift_train.policies.base import (
    Completion,
    Conversation,
    PolicyBase,
    PolicyError,
    SamplingParams,
    combine_seeds,
    cut_at_stop,
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
    Models whose cache has sliding-window or other special layers run without it.
    """

    backend = "hf"

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

        from drift_train.policies.kv_cache import PrefixCache, supports_growing_cache

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not prefix_cache_mb >= 0:
            raise ValueError(f"prefix_cache_mb must be >= 0 (0 turns the prefix cache off), got {prefix_cache_mb}")
        self.batch_size = batch_size
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        if isinstance(model, (str, os.PathLike)):
            self.model_id = str(model)
            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
            if dtype == "auto":
                torch_dtype = (torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported()
                               else torch.float32)
            else:
                torch_dtype = getattr(torch, dtype, None)
                if not isinstance(torch_dtype, torch.dtype):
                    raise ValueError(f"dtype must be 'auto' or a torch dtype name like 'bfloat16', got {dtype!r}")
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
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(self.model_id, trust_remote_code=trust_remote_code)
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
        self._growing_cache = supports_growing_cache(self.model)
        self._prefix_cache = (PrefixCache(int(prefix_cache_mb * 2**20))
                              if self._growing_cache and prefix_cache_mb > 0 else None)
        self._fingerprint: int | None = None

    def render(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        """Prompt token ids of each conversation (chat template + generation prompt)."""
        texts = [
            self.tokenizer.apply_chat_template(
                list(c), tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
            )
            for c in conversations
        ]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams, seeds: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        """Return ``params.n`` completions per conversation (see :class:`HFPolicy`)."""
        self._check_inputs(conversations, params, seeds)
        prompts = self.render(conversations)
        # one row per (conversation, sample); longest first so each prefill wave holds similar lengths
        rows = [(c, k) for c in range(len(prompts)) for k in range(params.n)]
        rows.sort(key=lambda row: -len(prompts[row[0]]))
        base_seeds = list(seeds) if seeds is not None else None
        if base_seeds is None and params.seed is not None:
            base_seeds = [params.seed]
        results: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        seed = None if base_seeds is None else combine_seeds(base_seeds, 0)
        completions = self._generate_batch([prompts[c] for c, _ in rows], params, seed)
        for (c, k), completion in zip(rows, completions, strict=True):
            results[c][k] = completion
        return results  # type: ignore[return-value]

    def _generate_batch(self, prompts: list[list[int]], params: SamplingParams, seed: int | None) -> list[Completion]:
        generated, stopped = self._decode(prompts, params, seed)
        eos = set(self.eos_token_ids)
        completions = []
        for ids, by_stop_string in zip(generated, stopped, strict=True):
            ended = bool(ids) and ids[-1] in eos
            text = self.tokenizer.decode(ids[:-1] if ended else ids, skip_special_tokens=True)
            reason = "stop" if ended or by_stop_string else "length"
            if params.stop:
                text, found = cut_at_stop(text, params.stop)
                reason = "stop" if found or ended else reason
            completions.append(Completion(text=text, num_tokens=len(ids), finish_reason=reason))
        return completions

    def _prefill(self, rows: list[int], prompts: list[list[int]], capacity_extra: int, prefix) -> _Batch:
        """Encode ``prompts`` (of ``rows``; each distinct one once, reusing cached prefixes) into a new batch.

        Layout of row i in the cache: ``[pad][cached prefix c_i] [pad][new suffix s_i]``, the first
        block ``C = max c_i`` wide, the second ``S = max s_i``; the attention mask hides the pads and
        position ids count only real tokens, so the padding in the middle changes nothing.
        """
        import torch
        from transformers import DynamicCache

        from drift_train.policies.kv_cache import GrowingLayer

        model, device = self.model, self.device
        distinct: dict[tuple[int, ...], int] = {}
        row_of = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
        keys = list(distinct)
        hits = [prefix.lookup(k) if prefix is not None else (None, 0) for k in keys]
        cached = [n for _, n in hits]
        width_c = max(cached)
        width_s = max(len(k) - n for k, n in zip(keys, cached, strict=True))
        n = len(keys)
        input_ids = torch.full((n, width_s), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, width_c + width_s), dtype=torch.long)
        for i, (k, c) in enumerate(zip(keys, cached, strict=True)):
            suffix = k[c:]
            input_ids[i, width_s - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
            mask[i, width_c - c : width_c] = 1
            mask[i, width_c + width_s - len(suffix) :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if self._growing_cache:
            capacity = width_c + width_s + capacity_extra
            cache = DynamicCache(config=model.config)
            cache.layers = [GrowingLayer(capacity) for _ in cache.layers]
            if width_c:
                like = next(entry for entry, _ in hits if entry is not None).kv
                for layer, (k0, v0) in zip(cache.layers, like, strict=True):
                    layer.start(n, (k0, v0), width_c)
                for i, (entry, c) in enumerate(hits):
                    if entry is not None:
                        for layer, (k0, v0) in zip(cache.layers, entry.kv, strict=True):
                            layer.write(i, width_c - c, k0[:, :c], v0[:, :c])
        else:
            cache = DynamicCache(config=model.config)
        extra = {"logits_to_keep": 1} if self._accepts_logits_to_keep else {}
        out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions[:, width_c:],
                    past_key_values=cache, use_cache=True, **extra)
        logits = out.logits[:, -1, :]
        if n < len(prompts):  # duplicated prompts (K samples of one task): copy the encoded rows
            index = torch.tensor(row_of, device=device)
            cache.batch_select_indices(index)
            logits, mask, positions = logits[index], mask[index], positions[index]
        return _Batch(cache=cache, rows=list(rows), alive=torch.ones(len(rows), dtype=torch.bool, device=device),
                      mask=mask, positions=positions[:, -1], logits=logits)

    def _decode(self, prompts: list[list[int]], params: SamplingParams, seed: int | None):
        """Sample every prompt's reply with at most ``batch_size`` sequences decoding at once.

        A KV-cache loop with continuous refill: rows leave the batch as they end (``model.generate``
        would keep computing them until the longest one ends), and once a quarter of the slots are
        free the next waiting prompts are encoded and join the running batch, so the batch stays
        full until the prompts run out. Ended rows ride along, masked out, until enough of them
        have gathered that compacting the cache (a copy) pays for itself. Each finished sequence's
        keys and values go to the prefix cache for the next turn. Returns each row's token ids
        (end-of-turn token included) and whether a stop string ended it.
        """
        import torch

        model = self.model
        device = self.device
        generator = None
        if seed is not None:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
        eos = torch.tensor(self.eos_token_ids, device=device)
        generated: list[list[int]] = [[] for _ in prompts]
        stopped = [False] * len(prompts)
        prefix = self._live_prefix_cache()
        # admission order: longest part still to encode first, so each prefill wave pads little
        todo = [len(p) - (prefix.longest(p)[1] if prefix is not None else 0) for p in prompts]
        pending = deque(sorted(range(len(prompts)), key=lambda r: -todo[r]))
        refill_at = max(1, self.batch_size // _COMPACT_AT)
        state: _Batch | None = None
        with torch.inference_mode():
            while True:
                live = 0 if state is None else int(state.alive.sum())
                free = self.batch_size - live
                if pending and (live == 0 or (self._growing_cache and free >= min(refill_at, len(pending)))):
                    admit = [pending.popleft() for _ in range(min(free, len(pending)))]
                    new = self._prefill(admit, [prompts[r] for r in admit], params.max_new_tokens, prefix)
                    if state is not None and live:
                        state = self._merge(state, new, prompts, generated, prefix, params.max_new_tokens)
                    else:
                        if state is not None:
                            self._store(prefix, state, prompts, generated, range(len(state.rows)))
                        state = new
                if state is None:
                    break
                tokens = _sample(state.logits, params, generator)
                finished = torch.isin(tokens, eos)
                flags = finished.tolist()
                for slot, (row, token, is_live) in enumerate(zip(state.rows, tokens.tolist(), state.alive.tolist(),
                                                                 strict=True)):
                    if not is_live:
                        continue
                    reply = generated[row]
                    reply.append(token)
                    if flags[slot]:
                        continue
                    if len(reply) >= params.max_new_tokens:
                        flags[slot] = True
                    elif params.stop and _ends_in_stop(self.tokenizer, reply, params.stop):
                        flags[slot] = stopped[row] = True
                state.alive &= ~torch.tensor(flags, device=device)
                dead = len(state.rows) - int(state.alive.sum())
                if dead == len(state.rows):  # every row ended: the next wave (if any) starts afresh
                    self._store(prefix, state, prompts, generated, range(len(state.rows)))
                    state = None
                    continue
                if dead and dead * _COMPACT_AT >= len(state.rows):
                    keep = state.alive.nonzero().squeeze(1)
                    state = self._compact(state, keep, prompts, generated, prefix)
                    tokens = tokens[keep]
                state.mask = torch.cat([state.mask, state.alive[:, None].to(state.mask.dtype)], dim=1)
                state.positions = state.positions + 1
                out = model(input_ids=tokens[:, None], attention_mask=state.mask,
                            position_ids=state.positions[:, None], past_key_values=state.cache, use_cache=True)
                state.logits = out.logits[:, -1, :]
        return generated, stopped

    def _compact(self, state: _Batch, keep, prompts, generated, prefix) -> _Batch:
        """Only the rows ``keep`` (the live ones), after storing the others in the prefix cache."""
        self._store(prefix, state, prompts, generated, (~state.alive).nonzero().squeeze(1).tolist())
        state.cache.batch_select_indices(keep)
        return _Batch(cache=state.cache, rows=[state.rows[i] for i in keep.tolist()], alive=state.alive[keep],
                      mask=state.mask[keep], positions=state.positions[keep], logits=state.logits[keep])

    def _merge(self, old: _Batch, new: _Batch, prompts, generated, prefix, max_new_tokens: int) -> _Batch:
        """One batch of ``old``'s live rows and ``new``'s rows, right-aligned (left padding) in a fresh cache."""
        import torch

        from drift_train.policies.kv_cache import GrowingLayer

        ended = (~old.alive).nonzero().squeeze(1).tolist()
        if ended:
            self._store(prefix, old, prompts, generated, ended)
        keep = old.alive.nonzero().squeeze(1)
        width_old, width_new = old.mask.shape[1], new.mask.shape[1]
        width = max(width_old, width_new)
        n_old = keep.numel()
        layers = []
        for old_layer, new_layer in zip(old.cache.layers, new.cache.layers, strict=True):
            layer = GrowingLayer(width + max_new_tokens)
            layer.start(n_old + len(new.rows), (new_layer.keys[0], new_layer.values[0]), width)
            layer.write_rows(0, width - width_old, old_layer.keys.index_select(0, keep),
                             old_layer.values.index_select(0, keep))
            layer.write_rows(n_old, width - width_new, new_layer.keys, new_layer.values)
            layers.append(layer)
        old.cache.layers = layers
        mask = old.mask.new_zeros((n_old + len(new.rows), width))
        mask[:n_old, width - width_old :] = old.mask[keep]
        mask[n_old:, width - width_new :] = new.mask
        return _Batch(cache=old.cache, rows=[old.rows[i] for i in keep.tolist()] + new.rows,
                      alive=torch.cat([old.alive[keep], new.alive]), mask=mask,
                      positions=torch.cat([old.positions[keep], new.positions]),
                      logits=torch.cat([old.logits[keep], new.logits]))

    def _store(self, prefix, state: _Batch, prompts, generated, slots) -> None:
        """Put the given slots' sequences (prompt + reply fed so far) and their keys/values in the prefix cache."""
        if prefix is None:
            return
        for slot in slots:
            row = state.rows[slot]
            tokens = prompts[row] + generated[row][:-1]  # the last sampled token was never fed
            where = state.mask[slot].nonzero().squeeze(1)
            if where.numel() != len(tokens):  # bookkeeping mismatch: storing would poison later turns
                raise RuntimeError(f"hf backend: cache row holds {where.numel()} tokens, expected {len(tokens)}")
            prefix.insert(tokens, [layer.row(slot, where) for layer in state.cache.layers])

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


@dataclass
class _Batch:
    """The sequences decoding together: slot i holds prompt ``rows[i]``; cache, mask, positions, logits by slot."""

    cache: Any
    rows: list[int]
    alive: Any  # bool tensor: False once the slot's reply ended (its row rides along until compaction)
    mask: Any  # attention mask over the cache's columns
    positions: Any  # position id of each slot's last fed token
    logits: Any  # next-token logits of each slot


# compact the decode batch (a copy of its whole cache) once a quarter of its rows have ended; until
# then the ended rows ride along, masked out, which costs less than copying at every ending
_COMPACT_AT = 4


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
    tail = tokenizer.decode(ids[-(max(len(s) for s in stop) + 8):], skip_special_tokens=True)
    return any(s and s in tail for s in stop)
