"""``hf`` backend: transformers ``generate``, batched with left padding, on CPU or GPU."""

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
    micro-batch carries little padding), left padded, and generated in micro-batches of
    ``batch_size`` sequences. ``model`` is a folder or hub id, or an already loaded
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
        kwargs: dict[str, Any] = dict(
            max_new_tokens=params.max_new_tokens,
            pad_token_id=self.pad_token_id,
            eos_token_id=self.eos_token_ids,
        )
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device), **kwargs
                )
        generated = output[:, width:].tolist()
        eos = set(self.eos_token_ids)
        trimmed, counts, reasons = [], [], []
        for ids in generated:
            end = next((j for j, t in enumerate(ids) if t in eos), None)
            if end is None:
                # no end-of-turn token: the tail may still be padding if a stop string ended the row
                while ids and ids[-1] == self.pad_token_id and self.pad_token_id not in eos:
                    ids = ids[:-1]
                trimmed.append(ids)
                counts.append(len(ids))
                # short of the budget means a stop string ended it (HF matches them on token strings)
                reasons.append("length" if len(ids) >= params.max_new_tokens else "stop")
            else:
                trimmed.append(ids[:end])
                counts.append(end + 1)
                reasons.append("stop")
        texts = self.tokenizer.batch_decode(trimmed, skip_special_tokens=True)
        completions = []
        for text, count, reason in zip(texts, counts, reasons, strict=True):
            if params.stop:
                text, found = cut_at_stop(text, params.stop)
                reason = "stop" if found else reason
            completions.append(Completion(text=text, num_tokens=count, finish_reason=reason))
        return completions
