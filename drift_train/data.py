"""Trajectory records -> token ids, assistant-only labels and per-token weights, and the batch collator.

Two ways to get the tokens of a record, the first that applies wins:

* **ids** (the record's ``tokens`` field, see :mod:`drift_train.tokens`, written with a tokenizer whose
  content hash equals the training tokenizer's): the supervised tokens of a trained turn are exactly
  its sampled ``completion_ids`` (a generated end token included, none added to a reply cut by the
  length limit), and its context is exactly the ids the model saw. Turns whose context extends the
  previous one share a sequence; where a template rewrote history (Qwen3 drops earlier ``<think>``),
  each trained turn is its own example in its own context.
* **text** (reference-release files, other tools, another tokenizer): ``messages`` are rendered with
  the model's chat template and the recorded ``chat_template_kwargs``. A turn's tokens come from the
  template's ``{% generation %}`` masks (``return_assistant_tokens_mask=True``) or, without them, by
  prefix rendering (the tokens between ``messages[:k]`` + generation prompt and ``messages[:k+1]``);
  either way nothing after the end-of-turn marker is supervised (the newline ChatML puts after
  ``<|im_end|>`` is the template's, not the model's), and a reply whose recorded ``finish_reason`` is
  ``length`` gets no end marker. Templates that are not prefix-consistent render each trained turn
  as its own example.

Tool-use records (``meta.tools``: the env's function schemas) render with the template's ``tools=``;
their ``tool`` messages (call results) are context, never supervised, like every non-assistant turn,
and an assistant turn's ``tool_calls`` are part of its supervised tokens (the template writes them).

By default only the last assistant turn is trained, given the whole history (the reference recipe);
``assistant_turns="all"`` trains every assistant turn. A conversation longer than ``max_length``
loses its oldest whole turns (never the system prompt, nor the trained turn's own prompt); an example
whose trained turn does not fit even so is skipped and counted (``skipped_too_long``), never trained
as a headless tail.

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

from drift_train.facts import record_facts, trajectory_succeeded
from drift_train.losses import IGNORE_INDEX, WEIGHTED_MODES
from drift_train.tokens import decode_tokens, tokenizer_fingerprint

ASSISTANT_TURNS = ("last", "all")
_GENERATION_BLOCK = re.compile(r"{%-?\s*generation\s*-?%}")


@dataclass(frozen=True)
class RenderConfig:
    """How records become training sequences."""

    max_length: int = 2048  # tokens; longer conversations lose their oldest whole turns
    assistant_turns: str = "last"  # "last": the final assistant turn given the history; "all": every turn
    weight_field: str = "weight"  # where the trajectory weight lives in a record
    per_turn_weights: bool = False  # weight each assistant turn k by record["turn_weights"]["t{k}"]
    use_token_ids: bool = True  # train on a record's recorded ids when its tokenizer matches (else the text)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that is out of range."""
        if self.max_length < 2:
            raise ValueError(f"max_length must be ≥ 2, got {self.max_length}")
        if self.assistant_turns not in ASSISTANT_TURNS:
            raise ValueError(
                f"assistant_turns must be one of {ASSISTANT_TURNS}, got {self.assistant_turns!r}"
            )


def _template_has_generation_blocks(tokenizer) -> bool:
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default", "")
    return isinstance(template, str) and _GENERATION_BLOCK.search(template) is not None


def _ids(encoded: Any) -> list[int]:
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return list(encoded)


class TemplateError(ValueError):
    """The chat template does not render a conversation prefix-consistently."""


def _special_texts(tokenizer) -> list[str]:
    """The text of every special token of ``tokenizer`` (``<|im_end|>``, ``<|im_start|>``, ...)."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    texts = {t.content for t in decoder.values() if getattr(t, "special", False)}
    texts.update(getattr(tokenizer, "all_special_tokens", None) or [])
    return sorted((t for t in texts if t), key=len, reverse=True)


def _slot_special_texts(value: Any, specials: list[str], texts: list[str]) -> Any:
    """``value`` (a message, or a part of one: tool calls, their arguments) with every string that spells a
    special token replaced by a slot ``\ue000i\ue001``; ``texts[i]`` is the string. Roles stay."""
    if isinstance(value, str):
        if any(t in value for t in specials):
            texts.append(value)
            return f"\ue000{len(texts) - 1}\ue001"
        return value
    if isinstance(value, dict):
        return {k: v if k == "role" else _slot_special_texts(v, specials, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_slot_special_texts(v, specials, texts) for v in value]
    return value


def spells_special_tokens(tokenizer, messages: Sequence[dict]) -> bool:
    """Whether some message's text (its content, a tool call's name or arguments...) spells a special
    token of ``tokenizer``: tokenizing the rendered conversation would turn those characters into the
    special id (an end of turn, a new user turn) that nobody sampled."""
    texts: list[str] = []
    _slot_special_texts(list(messages), _special_texts(tokenizer), texts)
    return bool(texts)


# stands for a message's text while the template renders (private-use characters: never in a template)
_SLOT = re.compile("\ue000(\\d+)\ue001")


class SpecialTextError(TemplateError):
    """A message spells a special token and its text cannot be tokenized apart from the template's."""


def _render_text_as_text(
    tokenizer,
    messages: Sequence[dict],
    slotted: list,
    texts: list[str],
    template_kwargs: dict,
    generation_prompt: bool,
) -> list[int]:
    """The conversation's ids with every message text that spells a special token tokenized as text
    (``split_special_tokens``): the template's own markers stay special ids, characters a message spells
    never become one. The template renders slots in place of those texts; the pieces are tokenized apart
    and joined. Raises :class:`SpecialTextError` when the template rewrites such a text (escapes it as
    JSON, trims it) or the tokenizer does not tokenize the pieces apart to the same text. ``slotted`` and
    ``texts`` are :func:`_slot_special_texts`' result for ``messages``."""
    text = tokenizer.apply_chat_template(
        slotted, tokenize=False, add_generation_prompt=generation_prompt, **template_kwargs
    )
    whole = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=generation_prompt, **template_kwargs
    )
    if _SLOT.sub(lambda m: texts[int(m.group(1))], text) != whole:
        raise SpecialTextError(
            "a message spells a special token and the chat template rewrites that text, so its characters "
            "cannot be kept apart from the template's markers; record token ids at rollout time"
        )
    ids: list[int] = []
    for k, piece in enumerate(_SLOT.split(text)):
        if k % 2:  # a message's text
            ids += _ids(tokenizer(texts[int(piece)], add_special_tokens=False, split_special_tokens=True))
        elif piece:
            ids += _ids(tokenizer(piece, add_special_tokens=False))
    if tokenizer.decode(ids) != whole:  # e.g. a tokenizer that adds a space before each piece
        raise SpecialTextError(
            "a message spells a special token and this tokenizer does not tokenize the conversation's "
            "pieces apart to the same text; record token ids at rollout time"
        )
    return ids


def _render(
    tokenizer, messages: Sequence[dict], template_kwargs: dict, *, generation_prompt: bool = False
) -> list[int]:
    texts: list[str] = []
    slotted = _slot_special_texts(list(messages), _special_texts(tokenizer), texts)
    if texts:  # some message spells a special token: its text is tokenized as text
        return _render_text_as_text(tokenizer, messages, slotted, texts, template_kwargs, generation_prompt)
    return _ids(
        tokenizer.apply_chat_template(
            list(messages), tokenize=True, add_generation_prompt=generation_prompt, **template_kwargs
        )
    )


def assistant_spans(
    tokenizer, messages: Sequence[dict], chat_template_kwargs: dict | None = None
) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of the rendered conversation and one ``[start, end)`` span per assistant message, in order.

    The spans are the template's: they may include tokens after the end-of-turn marker (see
    :meth:`Renderer.examples`, which trims them). Raises :class:`TemplateError` when the template has no
    generation blocks and does not render the conversation prefix-consistently.
    """
    kwargs = dict(chat_template_kwargs or {})
    n_assistant = sum(m["role"] == "assistant" for m in messages)
    if _template_has_generation_blocks(tokenizer) and not spells_special_tokens(tokenizer, messages):
        encoded = tokenizer.apply_chat_template(
            list(messages), tokenize=True, return_dict=True, return_assistant_tokens_mask=True, **kwargs
        )
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
    ids = _render(tokenizer, messages, kwargs)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:index], kwargs, generation_prompt=True)
        upto = _render(tokenizer, messages[: index + 1], kwargs)
        if ids[: len(upto)] != upto or upto[: len(prompt)] != prompt:
            raise TemplateError("the chat template does not render this conversation prefix-consistently")
        spans.append((len(prompt), len(upto)))
    return ids, spans


@dataclass
class RenderStats:
    """What happened to the records while rendering (shown to the user, and in tests)."""

    rendered: int = 0  # examples
    skipped_zero_weight: int = 0
    skipped_unsuccessful: int = 0
    skipped_undecided: int = 0  # rft: solved, but an earlier turn has no verdict (drift_train.facts)
    skipped_no_assistant: int = 0
    skipped_special_text: int = 0  # text path: a message spells a special token that cannot be kept as text
    skipped_too_long: int = 0  # trained turns that do not fit max_length even with all older turns dropped
    truncated: int = 0  # examples that lost their oldest turns
    token_id_records: int = 0  # records trained from their recorded ids
    text_records: int = 0  # records trained from their rendered text
    tokenizer_mismatch: int = 0  # records with ids from another (or an unverifiable) tokenizer: text used
    supervised_tokens: int = 0
    notes: list[str] = field(default_factory=list)


def _where(record: dict, index: int) -> str:
    line = record.get("_line")
    return f"record {index}{f' (line {line})' if line else ''}"


@dataclass
class _Sequence:
    """Token ids and where each assistant turn's trained tokens lie (turn k -> [start, end))."""

    ids: list[int]
    spans: dict[int, tuple[int, int]]


class Renderer:
    """Turns records into training examples for one tokenizer (see the module docstring).

    ``end_token_ids``: the ids that end a reply (the model's ``generation_config.eos_token_id``); the
    tokenizer's ``eos_token_id`` is always among them. The text path uses them to find the end marker.
    """

    def __init__(
        self, tokenizer, config: RenderConfig, *, end_token_ids: Sequence[int] | int | None = None
    ) -> None:
        config.validate()
        self.tokenizer, self.config = tokenizer, config
        ends = (
            []
            if end_token_ids is None
            else [end_token_ids]
            if isinstance(end_token_ids, int)
            else list(end_token_ids)
        )
        if tokenizer.eos_token_id is not None:
            ends.append(tokenizer.eos_token_id)
        self.end_ids = {int(t) for t in ends}
        self.fingerprint = tokenizer_fingerprint(tokenizer)["hash"]
        self.vocab_size = len(tokenizer)

    # -- public -------------------------------------------------------------------------------------

    def examples(
        self, record: dict, *, weighted: bool, index: int = 0, stats: RenderStats | None = None
    ) -> list[dict]:
        """One record -> its training examples: dicts of ``input_ids``, ``labels``, ``token_weights``
        (lists), ``weight`` (mean over trained tokens), ``turn`` (the last trained assistant turn,
        1-based), ``turns``, ``source`` (``"ids"`` or ``"text"``). Empty when nothing is trained.
        ``weighted`` says whether the loss uses weights (wsft, drift-otr); otherwise every weight is 1."""
        stats = stats if stats is not None else RenderStats()
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ValueError(
                f"{_where(record, index)}: field messages must be a non-empty list of "
                "{'role', 'content'} dicts"
            )
        # trailing feedback after the last assistant turn is never trained on
        positions = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
        if not positions:
            return []
        messages = messages[: positions[-1] + 1]
        n_turns = len(positions)
        weights = self._turn_weights(record, n_turns, weighted=weighted, index=index)
        trained = list(range(1, n_turns + 1))
        if self.config.assistant_turns == "last":
            trained = trained[-1:]
        trained = [k for k in trained if weights[k] != 0.0]
        if not trained:
            return []
        meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
        template_kwargs = dict(meta.get("chat_template_kwargs") or {})
        if meta.get("tools"):  # a tool env's schemas (meta.tools), rendered as the rollout rendered them
            template_kwargs["tools"] = meta["tools"]

        turns = self._token_turns(record, n_turns, index=index, stats=stats)
        if turns is not None:
            stats.token_id_records += 1
            source, sequences = "ids", self._id_sequences(turns)
            targets = {k: turns[k - 1].completion for k in range(1, n_turns + 1)}
        else:
            try:
                sequences = self._text_sequences(
                    messages,
                    positions,
                    trained,
                    template_kwargs,
                    self._finish_reasons(record, n_turns),
                    index=index,
                    record=record,
                )
            except SpecialTextError as err:
                stats.skipped_special_text += 1
                if len(stats.notes) < 20:
                    stats.notes.append(f"{_where(record, index)} skipped: {err}")
                return []
            stats.text_records += 1
            source = "text"
            targets = {k: seq.ids[a:b] for seq in sequences for k, (a, b) in seq.spans.items()}

        out = []
        too_long: list[int] = []
        for seq in sequences:
            mine = [k for k in trained if k in seq.spans]
            if not mine:
                continue
            fits = [k for k in mine if seq.spans[k][1] <= self.config.max_length]
            too_long.extend(k for k in mine if k not in fits)
            if fits:  # the turns that fit share one example, cut after the last of them
                end = max(seq.spans[k][1] for k in fits)
                example = self._example(seq.ids[:end], [(seq.spans[k], weights[k]) for k in fits])
                if example is not None:
                    out.append({**example, "turn": fits[-1], "turns": fits, "source": source})
        for k in too_long:  # each trained turn alone, older turns dropped until it fits
            example = self._truncated_example(messages, positions, k, targets[k], weights[k], template_kwargs)
            if example is None:
                stats.skipped_too_long += 1
                continue
            stats.truncated += 1
            out.append({**example, "turn": k, "turns": [k], "source": source})
        out.sort(key=lambda e: e["turn"])
        return out

    # -- weights ------------------------------------------------------------------------------------

    def _turn_weights(self, record: dict, n_turns: int, *, weighted: bool, index: int) -> dict[int, float]:
        config = self.config
        if not weighted:
            return dict.fromkeys(range(1, n_turns + 1), 1.0)
        if config.per_turn_weights:
            turn_weights = record.get("turn_weights")
            if not isinstance(turn_weights, dict):
                raise ValueError(
                    f"{_where(record, index)}: no `turn_weights` field; run "
                    "`drift weights --per-turn` first or drop --per_turn_weights"
                )
            return {k: float(turn_weights.get(f"t{k}") or 0.0) for k in range(1, n_turns + 1)}
        if config.weight_field not in record:
            raise ValueError(
                f"{_where(record, index)}: no `{config.weight_field}` field; run "
                "`drift weights` on the rollouts first (or train with --loss sft)"
            )
        return dict.fromkeys(range(1, n_turns + 1), float(record[config.weight_field]))

    # -- the id path --------------------------------------------------------------------------------

    def _token_turns(self, record: dict, n_turns: int, *, index: int, stats: RenderStats):
        tokens = record.get("tokens")
        if not tokens or not self.config.use_token_ids:
            return None
        meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
        recorded = (
            (meta.get("tokenizer") or {}).get("hash") if isinstance(meta.get("tokenizer"), dict) else None
        )
        if recorded != self.fingerprint:
            stats.tokenizer_mismatch += 1
            return None
        if len(tokens) != n_turns:
            raise ValueError(
                f"{_where(record, index)}: field tokens has {len(tokens)} turns but messages has "
                f"{n_turns} assistant turns"
            )
        turns = decode_tokens(tokens)
        for k, turn in enumerate(turns, start=1):
            bad = next((t for t in (*turn.context, *turn.completion) if not 0 <= t < self.vocab_size), None)
            if bad is not None:
                raise ValueError(
                    f"{_where(record, index)}: field tokens.t{k}: id {bad} is outside the tokenizer's "
                    f"vocabulary of {self.vocab_size}, though its hash matches"
                )
        return turns

    @staticmethod
    def _id_sequences(turns) -> list[_Sequence]:
        sequences: list[_Sequence] = []
        for k, turn in enumerate(turns, start=1):
            if not (turn.extends_previous and sequences):
                sequences.append(_Sequence([], {}))
            seq = sequences[-1]
            # an extending turn's context is the sequence so far + its delta (decode_tokens builds it so)
            seq.ids = turn.context + turn.completion
            seq.spans[k] = (len(turn.context), len(seq.ids))
        return sequences

    # -- the text path ------------------------------------------------------------------------------

    @staticmethod
    def _finish_reasons(record: dict, n_turns: int) -> dict[int, str | None]:
        tokens = record.get("tokens") if isinstance(record.get("tokens"), dict) else {}
        meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
        turns = meta.get("turns") if isinstance(meta.get("turns"), list) else []
        reasons = {}
        for k in range(1, n_turns + 1):
            entry = tokens.get(f"t{k}") if isinstance(tokens.get(f"t{k}"), dict) else None
            turn = turns[k - 1] if k - 1 < len(turns) and isinstance(turns[k - 1], dict) else {}
            reasons[k] = (entry or {}).get("finish_reason") or turn.get("finish_reason")
        return reasons

    def _trim(self, ids: list[int], span: tuple[int, int], finish_reason: str | None) -> tuple[int, int]:
        """The span up to and including the end marker (nothing after it); without it for a length-cut reply."""
        start, end = span
        marker = next((p for p in range(end - 1, start - 1, -1) if ids[p] in self.end_ids), None)
        if marker is None:
            return start, end
        return (start, marker) if finish_reason == "length" else (start, marker + 1)

    def _text_sequences(
        self,
        messages: list,
        positions: list[int],
        trained: list[int],
        template_kwargs: dict,
        reasons: dict[int, str | None],
        *,
        index: int,
        record: dict,
    ) -> list[_Sequence]:
        try:
            ids, spans = assistant_spans(self.tokenizer, messages, template_kwargs)
            return [
                _Sequence(
                    ids, {k: self._trim(ids, span, reasons[k]) for k, span in enumerate(spans, start=1)}
                )
            ]
        except SpecialTextError:
            raise
        except TemplateError:
            pass
        # not prefix-consistent (e.g. history rewritten): each trained turn in its own rendering
        sequences = []
        for k in trained:
            j = positions[k - 1]
            prompt = _render(self.tokenizer, messages[:j], template_kwargs, generation_prompt=True)
            upto = _render(self.tokenizer, messages[: j + 1], template_kwargs)
            if upto[: len(prompt)] != prompt:
                raise ValueError(
                    f"{_where(record, index)}: the chat template renders assistant turn {k} so that "
                    "the conversation up to it does not start with its own prompt, so its tokens cannot "
                    "be located; record token ids at rollout time (the hf and vllm backends do)"
                )
            sequences.append(_Sequence(upto, {k: self._trim(upto, (len(prompt), len(upto)), reasons[k])}))
        return sequences

    # -- examples -----------------------------------------------------------------------------------

    @staticmethod
    def _example(ids: list[int], spans: list[tuple[tuple[int, int], float]]) -> dict | None:
        labels = [IGNORE_INDEX] * len(ids)
        token_weights = [0.0] * len(ids)
        for (start, end), w in spans:
            start = max(
                start, 1
            )  # nothing predicts the first token (and in a packed row it must not be the previous row)
            labels[start:end] = ids[start:end]
            token_weights[start:end] = [w] * (end - start)
        trained = [w for w, label in zip(token_weights, labels, strict=True) if label != IGNORE_INDEX]
        if not trained:
            return None
        return {
            "input_ids": list(ids),
            "labels": labels,
            "token_weights": token_weights,
            "weight": sum(trained) / len(trained),
        }

    def _truncated_example(
        self,
        messages: list,
        positions: list[int],
        k: int,
        target: list[int],
        weight: float,
        template_kwargs: dict,
    ) -> dict | None:
        """Turn ``k``'s target after the shortest history that fits: the system prompt, the newest older
        turns that fit, and turn k's own prompt (the messages since the previous assistant turn)."""
        j = positions[k - 1]
        head = messages[:1] if messages[0].get("role") == "system" else []
        own_start = positions[k - 2] + 1 if k > 1 else len(head)
        own = messages[own_start:j]
        # older turns: each ends with its assistant message
        bounds = [len(head)] + [positions[i] + 1 for i in range(k - 1)]
        rounds = [messages[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        budget = self.config.max_length - len(target)
        if budget < 1:
            return None
        for dropped in range(1, len(rounds) + 1) if rounds else [0]:
            kept = head + [m for r in rounds[dropped:] for m in r] + own
            context = _render(self.tokenizer, kept, template_kwargs, generation_prompt=True)
            if len(context) <= budget:
                return self._example(
                    context + list(target), [((len(context), len(context) + len(target)), weight)]
                )
        return None


class TrajectoryDataset(torch.utils.data.Dataset):
    """Rendered training examples (a list of dicts of lists), ready for :class:`DriftCollator`."""

    def __init__(self, examples: list[dict], stats: RenderStats):
        self.examples = examples
        self.stats = stats

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        return self.examples[index]


def build_dataset(
    records: Sequence[dict],
    tokenizer,
    config: RenderConfig,
    loss_mode: str,
    *,
    end_token_ids: Sequence[int] | int | None = None,
) -> TrajectoryDataset:
    """Render every usable record for ``loss_mode``: rft keeps successful trajectories without an undecided
    turn only; weighted modes drop weight-0 trajectories (e.g. groups dropped by ``drift weights
    --equal-groups drop``, or trajectories with an undecided turn, which it drops by default).
    ``end_token_ids``: the model's end-of-reply ids (``generation_config.eos_token_id``), see :class:`Renderer`."""
    renderer = Renderer(tokenizer, config, end_token_ids=end_token_ids)
    weighted = loss_mode in WEIGHTED_MODES
    stats = RenderStats()
    examples = []
    for index, record in enumerate(records):
        if loss_mode == "rft" and not trajectory_succeeded(record):
            stats.skipped_unsuccessful += 1
            continue
        if loss_mode == "rft" and record_facts(record).undecided_turns:
            # undecided is neither right nor wrong: had that reply been right the episode would have
            # ended there, so the solved path is not a demonstration (drift weights drops it too)
            stats.skipped_undecided += 1
            continue
        if weighted and not config.per_turn_weights and float(record.get(config.weight_field, 1.0)) == 0.0:
            stats.skipped_zero_weight += 1
            continue
        rendered = renderer.examples(record, weighted=weighted, index=index, stats=stats)
        if not rendered and not any(m.get("role") == "assistant" for m in record.get("messages") or []):
            stats.skipped_no_assistant += 1
        for example in rendered:
            example["record_index"] = index
            stats.supervised_tokens += sum(label != IGNORE_INDEX for label in example["labels"])
            examples.append(example)
    stats.rendered = len(examples)
    if stats.truncated:
        stats.notes.append(
            f"{stats.truncated} examples were longer than max_length={config.max_length} tokens "
            "and lost their oldest turns"
        )
    if stats.skipped_too_long:
        stats.notes.append(
            f"{stats.skipped_too_long} trained turns did not fit max_length={config.max_length} "
            "tokens even after dropping every older turn, and were skipped"
        )
    if stats.skipped_undecided:
        stats.notes.append(
            f"{stats.skipped_undecided} solved trajectories have a turn without a verdict "
            "(undecided_turns) and were not trained by rft"
        )
    if stats.tokenizer_mismatch:
        stats.notes.append(
            f"{stats.tokenizer_mismatch} records carry token ids from another tokenizer (or one "
            "that could not be verified); their text was rendered instead"
        )
    if not examples:
        raise ValueError(
            f"no trainable example among {len(records)} records for loss {loss_mode!r} "
            f"({stats.skipped_unsuccessful} unsuccessful, {stats.skipped_undecided} with an undecided turn, "
            f"{stats.skipped_zero_weight} weight 0, "
            f"{stats.skipped_no_assistant} without an assistant turn, "
            f"{stats.skipped_too_long} turns too long for max_length={config.max_length})"
        )
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
        """Collate ``examples`` (as produced by :meth:`Renderer.examples`) into tensors."""
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
