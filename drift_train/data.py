"""Trajectory records -> token ids, assistant-only labels and per-token weights, and the batch collator.

A record's ``messages`` are rendered with the model's own chat template. The supervised tokens are the
assistant turns, found with the template's ``{% generation %}`` masks
(``apply_chat_template(..., return_assistant_tokens_mask=True)``); for templates without them, by
prefix rendering (the tokens added between ``messages[:k]`` + generation prompt and ``messages[:k+1]``).
By default only the last assistant turn is trained, given the whole history (the reference recipe);
``assistant_turns="all"`` trains every assistant turn. Long histories are truncated from the left.

Each supervised token carries the weight of its trajectory (``weight`` from ``drift weights``), or its
turn's weight (``turn_weights``) with ``per_turn_weights=True``; the loss multiplies by it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from drift_train.losses import IGNORE_INDEX
from drift_train.weights import trajectory_succeeded

ASSISTANT_TURNS = ("last", "all")
_GENERATION_BLOCK = re.compile(r"{%-?\s*generation\s*-?%}")


@dataclass(frozen=True)
class RenderConfig:
    """How records become training sequences."""

    max_length: int = 2048  # tokens; longer conversations lose their oldest tokens (left truncation)
    assistant_turns: str = "last"  # "last": the final assistant turn given the history; "all": every turn
    weight_field: str = "weight"  # where the trajectory weight lives in a record
    per_turn_weights: bool = False  # weight each assistant turn k by record["turn_weights"]["t{k}"]

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that is out of range."""
        if self.max_length < 2:
            raise ValueError(f"max_length must be ≥ 2, got {self.max_length}")
        if self.assistant_turns not in ASSISTANT_TURNS:
            raise ValueError(f"assistant_turns must be one of {ASSISTANT_TURNS}, got {self.assistant_turns!r}")


def _template_has_generation_blocks(tokenizer) -> bool:
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default", "")
    return isinstance(template, str) and _GENERATION_BLOCK.search(template) is not None


def _ids(encoded: Any) -> list[int]:
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return list(encoded)


def assistant_spans(tokenizer, messages: Sequence[dict]) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of the rendered conversation and one ``[start, end)`` span per assistant message, in order."""
    n_assistant = sum(m["role"] == "assistant" for m in messages)
    if _template_has_generation_blocks(tokenizer):
        encoded = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True,
                                                return_assistant_tokens_mask=True)
        ids, mask = list(encoded["input_ids"]), list(encoded["assistant_masks"])
        spans, start = [], None
        for position, flag in enumerate([*mask, 0]):
            if flag and start is None:
                start = position
            elif not flag and start is not None:
                spans.append((start, position))
                start = None
        if len(spans) == n_assistant:
            return ids, spans
        # an empty assistant message has no masked tokens; fall through to prefix rendering
    ids = _ids(tokenizer.apply_chat_template(list(messages), tokenize=True))
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _ids(tokenizer.apply_chat_template(list(messages[:index]), tokenize=True,
                                                    add_generation_prompt=True))
        upto = _ids(tokenizer.apply_chat_template(list(messages[:index + 1]), tokenize=True))
        if ids[:len(upto)] != upto or upto[:len(prompt)] != prompt:
            raise ValueError("the chat template does not render conversations prefix-consistently, so assistant "
                             "tokens cannot be located; use a template with {% generation %} blocks")
        spans.append((len(prompt), len(upto)))
    return ids, spans


@dataclass
class RenderStats:
    """What happened to the records while rendering (shown to the user, and in tests)."""

    rendered: int = 0
    skipped_zero_weight: int = 0
    skipped_unsuccessful: int = 0
    skipped_no_assistant: int = 0
    truncated: int = 0
    supervised_tokens: int = 0
    notes: list[str] = field(default_factory=list)


def _where(record: dict, index: int) -> str:
    line = record.get("_line")
    return f"record {index}{f' (line {line})' if line else ''}"


def render_record(tokenizer, record: dict, config: RenderConfig, *, weighted: bool, index: int = 0
                  ) -> dict | None:
    """One record -> ``{"input_ids", "labels", "token_weights", "weight"}`` (lists), or None when nothing is trained.

    ``weighted`` says whether the loss uses weights (wsft, drift-otr); otherwise every weight is 1.
    """
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{_where(record, index)}: field messages must be a non-empty list of "
                         "{'role', 'content'} dicts")
    # trailing feedback after the last assistant turn is never trained on
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        return None
    messages = messages[:last + 1]
    ids, spans = assistant_spans(tokenizer, messages)
    turns = list(range(len(spans)))
    if config.assistant_turns == "last":
        turns = turns[-1:]

    weight = 1.0
    turn_weights = None
    if weighted:
        if config.per_turn_weights:
            turn_weights = record.get("turn_weights")
            if not isinstance(turn_weights, dict):
                raise ValueError(f"{_where(record, index)}: no `turn_weights` field; run "
                                 "`drift weights --per-turn` first or drop --per_turn_weights")
        else:
            if config.weight_field not in record:
                raise ValueError(f"{_where(record, index)}: no `{config.weight_field}` field; run "
                                 "`drift weights` on the rollouts first (or train with --loss sft)")
            weight = float(record[config.weight_field])

    labels = [IGNORE_INDEX] * len(ids)
    token_weights = [0.0] * len(ids)
    for k in turns:
        start, end = spans[k]
        w = float(turn_weights.get(f"t{k + 1}") or 0.0) if turn_weights is not None else weight
        if w == 0.0:
            continue
        labels[start:end] = ids[start:end]
        token_weights[start:end] = [w] * (end - start)
    supervised = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    if not supervised:
        return None
    end = supervised[-1] + 1  # tokens after the last trained one only cost compute
    start = max(0, end - config.max_length)
    ids, labels, token_weights = ids[start:end], labels[start:end], token_weights[start:end]
    labels[0] = IGNORE_INDEX  # nothing predicts the first token (and in a packed row it must not be the previous row)
    token_weights[0] = 0.0
    trained = [w for w, label in zip(token_weights, labels, strict=True) if label != IGNORE_INDEX]
    if not trained:
        return None
    return {"input_ids": ids, "labels": labels, "token_weights": token_weights,
            "weight": sum(trained) / len(trained), "truncated": start > 0}


class TrajectoryDataset(torch.utils.data.Dataset):
    """Rendered training examples (a list of dicts of lists), ready for :class:`DriftCollator`."""

    def __init__(self, examples: list[dict], stats: RenderStats):
        self.examples = examples
        self.stats = stats

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        return self.examples[index]


def build_dataset(records: Sequence[dict], tokenizer, config: RenderConfig, loss_mode: str) -> TrajectoryDataset:
    """Render every usable record for ``loss_mode``: rft keeps successful trajectories only; weighted modes
    drop weight-0 trajectories (e.g. groups dropped by ``drift weights --equal-groups drop``)."""
    config.validate()
    weighted = loss_mode in ("wsft", "drift-otr")
    stats = RenderStats()
    examples = []
    for index, record in enumerate(records):
        if loss_mode == "rft" and not trajectory_succeeded(record):
            stats.skipped_unsuccessful += 1
            continue
        if weighted and not config.per_turn_weights and float(record.get(config.weight_field, 1.0)) == 0.0:
            stats.skipped_zero_weight += 1
            continue
        example = render_record(tokenizer, record, config, weighted=weighted, index=index)
        if example is None:
            stats.skipped_no_assistant += 1
            continue
        stats.truncated += example.pop("truncated")
        stats.supervised_tokens += sum(label != IGNORE_INDEX for label in example["labels"])
        examples.append(example)
    stats.rendered = len(examples)
    if stats.truncated:
        stats.notes.append(f"{stats.truncated} conversations were longer than max_length={config.max_length} "
                           "tokens and lost their oldest tokens")
    if not examples:
        raise ValueError(f"no trainable example among {len(records)} records for loss {loss_mode!r} "
                         f"({stats.skipped_unsuccessful} unsuccessful, {stats.skipped_zero_weight} weight 0, "
                         f"{stats.skipped_no_assistant} without an assistant turn)")
    for note in stats.notes:
        warnings.warn(note, stacklevel=2)
    return TrajectoryDataset(examples, stats)


@dataclass
class DriftCollator:
    """Pad a list of examples into a batch, or pack them into one padding-free row.

    Padded batches: ``input_ids``, ``labels`` (-100 on padding), ``token_weights`` (B, L) and
    ``sequence_weights`` (B,), plus ``attention_mask`` unless ``attention_mask=False``. Padding goes on
    the right, so the mask can be left out: under causal attention a real token only attends to earlier
    positions, which are all real, so the mask changes nothing for the trained tokens, while leaving it
    out lets SDPA take its fused causal kernel instead of a materialised mask (faster, less memory).
    :class:`~drift_train.trainer.DriftTrainer` leaves it out.
    Padding-free (``padding_free=True``): one row of all sequences back to back with ``position_ids``
    restarting at 0 for each, which transformers' attention turns into a block-diagonal mask.
    """

    pad_token_id: int
    padding_free: bool = False
    pad_to_multiple_of: int | None = None
    attention_mask: bool = True

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        """Collate ``examples`` (as produced by :func:`render_record`) into tensors."""
        sequence_weights = torch.tensor([e["weight"] for e in examples], dtype=torch.float32)
        if self.padding_free:
            ids = [t for e in examples for t in e["input_ids"]]
            return {
                "input_ids": torch.tensor([ids]),
                "position_ids": torch.tensor([[p for e in examples for p in range(len(e["input_ids"]))]]),
                "labels": torch.tensor([[t for e in examples for t in e["labels"]]]),
                "token_weights": torch.tensor([[w for e in examples for w in e["token_weights"]]]),
                "sequence_weights": sequence_weights,
            }
        length = max(len(e["input_ids"]) for e in examples)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": torch.full((len(examples), length), self.pad_token_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(examples), length), dtype=torch.long),
            "labels": torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long),
            "token_weights": torch.zeros((len(examples), length), dtype=torch.float32),
            "sequence_weights": sequence_weights,
        }
        for row, e in enumerate(examples):
            n = len(e["input_ids"])
            batch["input_ids"][row, :n] = torch.tensor(e["input_ids"])
            batch["attention_mask"][row, :n] = 1
            batch["labels"][row, :n] = torch.tensor(e["labels"])
            batch["token_weights"][row, :n] = torch.tensor(e["token_weights"])
        if not self.attention_mask:
            del batch["attention_mask"]
        return batch
