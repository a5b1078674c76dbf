"""``hf`` backend: a transformers causal LM, batched with left padding, on CPU or GPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
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
    """Sample replies with ``model.generate``.

    Conversations are rendered with the tokenizer's chat template, sorted by prompt length (so each
    micro-batch carries little padding), left padded, and sampled in micro-batches of
    ``batch_size`` sequences with a KV-cache loop that drops rows as they end (``model.generate``
    would keep computing them). Sampling uses a ``torch.Generator`` seeded from ``seeds``, so the
    global RNG is untouched. ``model`` is a folder or hub id, or an already loaded
    ``PreTrainedModel`` (then pass its ``tokenizer`` too, or it is loaded from the model's name).
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
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
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
        # one row per (conversation, sample); longest first so micro-batches hold similar lengths
        rows = [(c, k) for c in range(len(prompts)) for k in range(params.n)]
        rows.sort(key=lambda row: -len(prompts[row[0]]))
        base_seeds = list(seeds) if seeds is not None else None
        if base_seeds is None and params.seed is not None:
            base_seeds = [params.seed]
        results: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        for batch_number, start in enumerate(range(0, len(rows), self.batch_size)):
            batch = rows[start : start + self.batch_size]
            seed = None if base_seeds is None else combine_seeds(base_seeds, batch_number)
            completions = self._generate_batch([prompts[c] for c, _ in batch], params, seed)
            for (c, k), completion in zip(batch, completions, strict=True):
                results[c][k] = completion
        return results  # type: ignore[return-value]

    def _generate_batch(self, prompts: list[list[int]], params: SamplingParams, seed: int | None) -> list[Completion]:
        import torch

        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            input_ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention_mask[i, width - len(prompt) :] = 1
        generated, stopped = self._decode(input_ids.to(self.device), attention_mask.to(self.device), params, seed)
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

    def _decode(self, input_ids, attention_mask, params: SamplingParams, seed: int | None):
        """Sample with a KV cache, dropping rows from the batch as soon as they end.

        ``model.generate`` keeps computing finished rows until the longest one ends; with sampled
        replies of very different lengths that is most of the work, so this loop compacts the
        batch (and its cache) instead. Returns each row's token ids (end-of-turn token included)
        and whether a stop string ended it.
        """
        import torch
        from transformers import DynamicCache

        model = self.model
        generator = None
        if seed is not None:
            generator = torch.Generator(device=input_ids.device)
            generator.manual_seed(seed)
        eos = torch.tensor(self.eos_token_ids, device=input_ids.device)
        batch = input_ids.shape[0]
        generated: list[list[int]] = [[] for _ in range(batch)]
        stopped = [False] * batch
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=model.config)
        extra = {"logits_to_keep": 1} if self._accepts_logits_to_keep else {}
        with torch.inference_mode():
            out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        past_key_values=cache, use_cache=True, **extra)
            logits = out.logits[:, -1, :]
            rows = torch.arange(batch, device=input_ids.device)
            positions = position_ids[:, -1]
            mask = attention_mask
            for step in range(params.max_new_tokens):
                tokens = _sample(logits, params, generator)
                finished = torch.isin(tokens, eos)
                for row, token in zip(rows.tolist(), tokens.tolist(), strict=True):
                    generated[row].append(token)
                if params.stop:
                    for i, row in enumerate(rows.tolist()):
                        if not finished[i] and _ends_in_stop(self.tokenizer, generated[row], params.stop):
                            finished[i] = True
                            stopped[row] = True
                if step == params.max_new_tokens - 1:
                    break
                if finished.any():
                    keep = (~finished).nonzero().squeeze(1)
                    if keep.numel() == 0:
                        break
                    cache.batch_select_indices(keep)
                    rows, tokens, positions, mask = rows[keep], tokens[keep], positions[keep], mask[keep]
                mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
                positions = positions + 1
                out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=positions[:, None],
                            past_key_values=cache, use_cache=True)
                logits = out.logits[:, -1, :]
        return generated, stopped

    @property
    def _accepts_logits_to_keep(self) -> bool:
        import inspect

        if not hasattr(self, "_logits_to_keep"):
            self._logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        return self._logits_to_keep


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
