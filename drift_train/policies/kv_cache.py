"""KV-cache pieces of the ``hf`` backend: a per-call cache that grows in place, and a prefix cache.

Multi-turn rollouts send the same conversation back every turn, one reply and one feedback message
longer. Re-encoding the whole history each turn makes prefill the largest cost of a rollout on a
small model (and its padded batch grows with the longest conversation). :class:`PrefixCache` keeps
the keys and values of each finished sequence (prompt + reply) so the next turn only encodes what is
new, the way vLLM's automatic prefix caching does; :class:`GrowingLayer` holds one call's keys and
values in a buffer sized for the whole call, so a decode step writes one column instead of copying
the cache (``DynamicCache`` concatenates, which costs a copy of the whole cache every token).

Cached keys and values are only valid for the weights that produced them: :func:`weights_fingerprint`
changes whenever a parameter is modified in place (an optimizer step) or replaced, and the policy
drops the prefix cache when it does.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import transformers
from transformers.cache_utils import DynamicLayer

BLOCK = 16  # tokens per hashed block of the prefix index

# --------------------------------------------------------------------------------------------------
# The adapter: every use of transformers' cache internals by the hf backend goes through the functions
# below (DynamicCache(config=...).layers, DynamicLayer's keys/values/is_initialized/lazy_initialization,
# batch_select_indices, and the forward's cache keyword), so a transformers release that changes them
# breaks here, in one place, and loudly.

# [low, high): the transformers releases these internals are written and tested against (pyproject pins the same)
TRANSFORMERS_SUPPORTED = ("4.56", "5.40")
UNTESTED_ENV = "DRIFT_ALLOW_UNTESTED_TRANSFORMERS"


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def check_transformers_version(version: str | None = None) -> None:
    """Raise ``RuntimeError`` when transformers ``version`` (default: the installed one) is outside
    :data:`TRANSFORMERS_SUPPORTED`, unless ``$DRIFT_ALLOW_UNTESTED_TRANSFORMERS=1``: the hf backend drives
    cache internals that change between releases, and an untested one could sample silently wrong."""
    version = version or transformers.__version__
    low, high = TRANSFORMERS_SUPPORTED
    if _version_tuple(low) <= _version_tuple(version) < _version_tuple(high):
        return
    if os.environ.get(UNTESTED_ENV) == "1":
        return
    raise RuntimeError(
        f"hf backend: transformers {version} is outside the range its KV-cache code is tested on "
        f"(>={low},<{high}); install a supported release (pip install 'transformers>={low},<{high}') or set "
        f"{UNTESTED_ENV}=1 to try it anyway (tests/test_hf_cache.py checks sampling against model.generate)"
    )


@functools.lru_cache(maxsize=64)
def _cache_keyword(forward_owner: type) -> str:
    """``cache`` (transformers >= 5.2x) or ``past_key_values`` (earlier): the forward's cache argument."""
    parameters = inspect.signature(forward_owner.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def forward_with_cache(model: Any, cache: Any, **inputs: Any) -> Any:
    """``model(**inputs, use_cache=True)`` with ``cache`` passed under the keyword this release uses."""
    return model(**inputs, use_cache=True, **{_cache_keyword(type(model)): cache})


def new_cache(model: Any, capacity: int | None = None) -> Any:
    """A ``DynamicCache`` for ``model``; with ``capacity``, its layers are :class:`GrowingLayer` buffers."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    if capacity is not None:
        cache.layers = [GrowingLayer(capacity) for _ in cache.layers]
    return cache


def cache_layers(cache: Any) -> list:
    """The cache's per-layer objects (keys and values as ``layer.keys``, ``layer.values``)."""
    return cache.layers


def replace_layers(cache: Any, layers: list) -> None:
    """Swap the cache's per-layer objects (e.g. for freshly merged :class:`GrowingLayer` buffers)."""
    cache.layers = layers


def select_rows(cache: Any, rows: torch.Tensor) -> None:
    """Keep only ``rows`` of every layer, in that order (duplicates allowed)."""
    cache.batch_select_indices(rows)


def trim_columns(cache: Any, columns: int) -> None:
    """Stop attending to the first ``columns`` cached columns of every layer."""
    for layer in cache.layers:
        if isinstance(layer, GrowingLayer):
            layer.trim(columns)
        else:  # a plain DynamicLayer: a view of the columns kept
            layer.keys, layer.values = layer.keys[:, :, columns:], layer.values[:, :, columns:]


class GrowingLayer(DynamicLayer):
    """One attention layer's keys and values in a buffer preallocated for a whole generate call.

    ``update`` writes the new columns in place and returns views of the filled part, so a decode step
    costs one column write instead of ``torch.cat`` over the whole cache. A call that starts from
    cached prefixes fills the first columns with :meth:`start` and :meth:`write_rows` before the forward.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.offset = 0  # first buffer column in use (columns before it were trimmed away)
        self.length = 0  # one past the last buffer column in use

    def start(self, batch: int, like: tuple[torch.Tensor, torch.Tensor], length: int) -> None:
        """Allocate ``batch`` rows shaped like ``like`` (a cached row's keys, values), the first ``length``
        columns zeroed (to be filled with :meth:`write_rows`)."""
        keys, values = like
        self._allocate(batch, keys, values, zeroed=length)
        self._set_length(length)

    def write_rows(self, first: int, start: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Copy a block of rows (``[n, kv_heads, length, head_dim]``) to rows ``first:first+n``, columns ``start:``."""
        self._keys[first : first + keys.shape[0], :, start : start + keys.shape[2]] = keys
        self._values[first : first + values.shape[0], :, start : start + values.shape[2]] = values

    def _allocate(self, batch: int, keys: torch.Tensor, values: torch.Tensor, zeroed: int) -> None:
        # keys/values: any tensors whose last three dimensions are [kv_heads, length, head_dim]. Columns
        # past ``zeroed`` are left uninitialised: ``update`` writes each of them before it is ever read.
        self.dtype, self.device = keys.dtype, keys.device
        self._keys = keys.new_empty((batch, keys.shape[-3], self.capacity, keys.shape[-1]))
        self._values = values.new_empty((batch, values.shape[-3], self.capacity, values.shape[-1]))
        if zeroed:
            self._keys[:, :, :zeroed].zero_()
            self._values[:, :, :zeroed].zero_()
        self.offset = 0
        self.is_initialized = True

    def _set_length(self, length: int) -> None:
        self.length = length
        self.keys = self._keys[:, :, self.offset : length]
        self.values = self._values[:, :, self.offset : length]

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self._allocate(key_states.shape[0], key_states, value_states, zeroed=0)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if self.length + key_states.shape[2] > self.capacity:  # not expected (the caller sizes the buffer)
            self._rebase(self._keys.shape[0], None, extra=max(key_states.shape[2], self.capacity))
        end = self.length + key_states.shape[2]
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self._set_length(end)
        return self.keys, self.values

    def _rebase(self, batch: int, rows: torch.Tensor | None, extra: int) -> None:
        """New buffers holding (the ``rows`` of) the columns in use from column 0, with ``extra`` columns free."""
        used = self.length - self.offset
        keys, values = self.keys, self.values
        if rows is not None:
            keys, values = keys.index_select(0, rows), values.index_select(0, rows)
        self.capacity = used + extra
        self._allocate(batch, keys, values, zeroed=0)
        self._keys[:, :, :used] = keys
        self._values[:, :, :used] = values
        self._set_length(used)

    def get_seq_length(self) -> int:
        return self.length - self.offset

    def trim(self, columns: int) -> None:
        """Stop attending to the first ``columns`` columns in use (padding in every row): no copy."""
        self.offset += columns
        self._set_length(self.length)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:  # copies only the columns in use; the free ones stay free
            self._rebase(indices.numel(), indices, extra=self.capacity - self.length)

    def row(self, index: int, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of one row's keys and values at ``positions`` (columns in use): ``[kv_heads, n, head_dim]``."""
        return (
            self.keys[index].index_select(1, positions).contiguous(),
            self.values[index].index_select(1, positions).contiguous(),
        )


def supports_growing_cache(model: Any) -> bool:
    """True when the model's own dynamic cache is made of plain full-attention layers only.

    Sliding-window, linear-attention and other special layers keep their own bookkeeping; for those
    models the backend falls back to ``DynamicCache`` and no prefix cache.
    """
    from transformers import DynamicCache

    try:
        layers = DynamicCache(config=model.config).layers
    except Exception:  # noqa: BLE001 - an unusual config: take the safe path
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def weights_fingerprint(model: Any) -> int:
    """Changes when any parameter or buffer is modified in place or replaced (cached keys go stale)."""
    return hash(tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers())))


@dataclass(eq=False)
class _Entry:
    tokens: tuple[int, ...]
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: [kv_heads, len(tokens), head_dim]
    nbytes: int
    blocks: list[int] = field(default_factory=list)


def _block_hashes(tokens: Sequence[int], limit: int | None = None) -> list[int]:
    """Chained hashes of the full ``BLOCK``-token blocks of ``tokens``: the k-th stands for ``tokens[:BLOCK*(k+1)]``."""
    out, h = [], 0
    end = len(tokens) if limit is None else min(limit, len(tokens))
    for start in range(0, end - BLOCK + 1, BLOCK):
        h = hash((h, tuple(tokens[start : start + BLOCK])))
        out.append(h)
    return out


class PrefixCache:
    """Keys and values of earlier sequences, found by longest common token prefix; LRU within a byte budget.

    Entries are indexed by chained hashes of their ``BLOCK``-token blocks (as vLLM's automatic prefix
    caching does), so a lookup costs one pass over the prompt however many entries there are. An
    entry that a newer one extends is dropped: the newer one answers the same lookups.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = int(budget_bytes)
        self.nbytes = 0
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._index: dict[int, dict[int, None]] = {}
        self.hits = self.lookups = self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._index.clear()
        self.nbytes = 0

    def longest(self, tokens: Sequence[int]) -> tuple[_Entry | None, int]:
        """The entry sharing the longest prefix with ``tokens``, and that prefix's length."""
        best: _Entry | None = None
        for h in _block_hashes(tokens):
            ids = self._index.get(h)
            if not ids:
                break
            best = self._entries[next(reversed(ids))]
        if best is None:
            return None, 0
        n = min(len(best.tokens), len(tokens))
        matched = 0
        while matched < n and best.tokens[matched] == tokens[matched]:  # verifies the hashes, then extends
            matched += 1
        return best, matched

    def lookup(self, tokens: Sequence[int]) -> tuple[_Entry | None, int]:
        """Like :meth:`longest`, but leaves at least the last token to encode (its logits are needed)."""
        self.lookups += 1
        entry, matched = self.longest(tokens)
        matched = min(matched, len(tokens) - 1)
        if entry is None or matched <= 0:
            return None, 0
        self.hits += 1
        self.reused_tokens += matched
        self._entries.move_to_end(id(entry))
        return entry, matched

    def insert(self, tokens: Sequence[int], kv: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Store ``kv`` for ``tokens``, dropping entries it extends and the least recently used over budget."""
        tokens = tuple(tokens)
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        if nbytes > self.budget_bytes or not tokens:
            return
        while True:
            entry, matched = self.longest(tokens)
            if entry is None:
                break
            if matched == len(tokens):  # already held (as it is or inside a longer entry)
                self._entries.move_to_end(id(entry))
                return
            if matched < len(entry.tokens):
                break
            self._remove(entry)  # a prefix of the new entry: superseded
        entry = _Entry(tokens=tokens, kv=kv, nbytes=nbytes, blocks=_block_hashes(tokens))
        key = id(entry)
        self._entries[key] = entry
        for h in entry.blocks:
            self._index.setdefault(h, {})[key] = None
        self.nbytes += nbytes
        while self.nbytes > self.budget_bytes:
            self._remove(next(iter(self._entries.values())))

    def _remove(self, entry: _Entry) -> None:
        key = id(entry)
        del self._entries[key]
        self.nbytes -= entry.nbytes
        for h in entry.blocks:
            ids = self._index.get(h)
            if ids is not None:
                ids.pop(key, None)
                if not ids:
                    del self._index[h]
