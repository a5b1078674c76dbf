"""The hf backend's KV-cache machinery: prefix reuse across turns, continuous refill, in-place cache.

The reference for every check is plain ``model.generate`` on one conversation at a time (no padding,
no cache tricks): greedy replies must be the same whatever the batching, refilling and reuse did.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, MistralConfig, MistralForCausalLM

from drift_train.policies import SamplingParams
from drift_train.policies.hf import HFPolicy
from drift_train.policies.kv_cache import BLOCK, PrefixCache, supports_growing_cache

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=24)

# one torch thread (conftest): the tiny model gains nothing from a second one, and on shared cores the two
# contend; the multi-turn cases took 383 s with two threads and 62 s with one at load 8-10
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _reference(policy: HFPolicy, model, conversation) -> str:
    ids = torch.tensor([policy.render([conversation])[0]])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=GREEDY.max_new_tokens,
            eos_token_id=policy.eos_token_ids,
            pad_token_id=policy.pad_token_id,
        )[0, ids.shape[1] :].tolist()
    if out and out[-1] in policy.eos_token_ids:
        out = out[:-1]
    return policy.tokenizer.decode(out, skip_special_tokens=True)


def _conversations() -> list[list[dict]]:
    # different lengths (so waves pad and rows end at different steps) and three identical prompts
    convs = [[{"role": "user", "content": f"Compute {i} + {i * i * 7}." + " and more" * i}] for i in range(7)]
    return convs + [[{"role": "user", "content": "Compute 1 + 3."}]] * 3


@pytest.mark.parametrize("batch_size", [3, 16])
def test_multi_turn_greedy_equals_one_conversation_at_a_time(tiny_model_dir, batch_size):
    """Three turns through one policy: turn 2 and 3 reuse cached prefixes, batch 3 refills mid-call."""
    policy = HFPolicy(str(tiny_model_dir), batch_size=batch_size)
    reference_model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    conversations = _conversations()
    for turn in range(3):
        replies = [c.text for (c,) in policy.generate(conversations, GREEDY)]
        assert replies == [_reference(policy, reference_model, c) for c in conversations], f"turn {turn + 1}"
        conversations = [
            c + [{"role": "assistant", "content": r}, {"role": "user", "content": "Wrong, again."}]
            for c, r in zip(conversations, replies, strict=True)
        ]
    cache = policy._prefix_cache
    assert cache.hits >= 2 * 7 and cache.reused_tokens > 0  # turns 2 and 3 found their histories


def test_prefix_cache_off_gives_the_same_replies(tiny_model_dir):
    on, off = (
        HFPolicy(str(tiny_model_dir), batch_size=4),
        HFPolicy(str(tiny_model_dir), batch_size=4, prefix_cache_mb=0),
    )
    assert off._prefix_cache is None
    conversations = _conversations()
    for _ in range(2):
        a, b = on.generate(conversations, GREEDY), off.generate(conversations, GREEDY)
        assert a == b
        conversations = [
            c + [{"role": "assistant", "content": x.text}, {"role": "user", "content": "No."}]
            for c, (x,) in zip(conversations, a, strict=True)
        ]


def test_changed_weights_empty_the_prefix_cache(tiny_model_dir):
    """An optimizer step changes the weights in place: cached keys/values must not be reused."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    policy = HFPolicy(model, tokenizer=AutoTokenizer.from_pretrained(tiny_model_dir), batch_size=4)
    conversations = _conversations()[:4]
    first = [c.text for (c,) in policy.generate(conversations, GREEDY)]
    assert len(policy._prefix_cache) > 0
    follow_up = [
        c + [{"role": "assistant", "content": r}, {"role": "user", "content": "No."}]
        for c, r in zip(conversations, first, strict=True)
    ]
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # in place, as an optimizer does
    hits = policy._prefix_cache.hits
    replies = [c.text for (c,) in policy.generate(follow_up, GREEDY)]
    assert policy._prefix_cache.hits == hits  # nothing reused: the cache was emptied first
    assert replies == [_reference(policy, model, c) for c in follow_up]


def test_reset_prefix_cache_forgets(tiny_model_dir):
    policy = HFPolicy(str(tiny_model_dir), batch_size=4)
    policy.generate(_conversations()[:2], GREEDY)
    assert len(policy._prefix_cache) == 2
    policy.reset_prefix_cache()
    assert len(policy._prefix_cache) == 0 and policy._prefix_cache.nbytes == 0


def test_sliding_window_models_fall_back_to_the_dynamic_cache(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        sliding_window=8,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = MistralForCausalLM(config).eval()
    assert not supports_growing_cache(model)
    policy = HFPolicy(model, tokenizer=tokenizer, batch_size=3)
    assert policy._prefix_cache is None
    conversations = _conversations()
    replies = [c.text for (c,) in policy.generate(conversations, GREEDY)]
    assert replies == [_reference(policy, model, c) for c in conversations]


# ---- the prefix index on its own ----------------------------------------------------------------


def _kv(n: int, fill: float = 0.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.full((2, n, 4), fill), torch.full((2, n, 4), fill))]  # one layer, 2 heads, dim 4


def test_prefix_index_longest_match_and_supersede():
    cache = PrefixCache(budget_bytes=10**9)
    base = list(range(3 * BLOCK + 5))
    cache.insert(base, _kv(len(base)))
    entry, n = cache.longest(base + [999, 1000])
    assert entry is not None and n == len(base)
    # lookup always leaves the last prompt token to encode
    assert cache.lookup(base)[1] == len(base) - 1
    # a divergence inside the second block: the match stops exactly there
    other = base[: BLOCK + 3] + [777] + base[BLOCK + 4 :]
    assert cache.longest(other)[1] == BLOCK + 3
    # shorter than one block: never matched (nothing to hash)
    assert cache.longest(base[: BLOCK - 1]) == (None, 0)
    # an extension supersedes its prefix; the prefix is still found inside it
    longer = base + list(range(500, 540))
    cache.insert(longer, _kv(len(longer)))
    assert len(cache) == 1
    assert cache.longest(base)[1] == len(base)
    # inserting something already held inside a longer entry stores nothing new
    cache.insert(base, _kv(len(base)))
    assert len(cache) == 1


def test_prefix_index_evicts_least_recently_used_within_budget():
    per_entry = 2 * 2 * (2 * BLOCK) * 4 * 4  # keys + values, 2 heads x 32 tokens x dim 4, float32
    cache = PrefixCache(budget_bytes=2 * per_entry)
    a, b, c = ([k] * (2 * BLOCK) for k in (1, 2, 3))
    cache.insert(a, _kv(len(a)))
    cache.insert(b, _kv(len(b)))
    cache.lookup(a + [0])  # a is now the most recently used
    cache.insert(c, _kv(len(c)))
    assert cache.longest(b)[0] is None  # b was evicted, not a
    assert cache.longest(a)[1] == len(a) and cache.longest(c)[1] == len(c)
    assert cache.nbytes == 2 * per_entry
    cache.insert(list(range(10 * BLOCK)), _kv(10 * BLOCK))  # larger than the whole budget: not stored
    assert cache.nbytes == 2 * per_entry


def test_suppressed_tokens_are_never_sampled(tiny_model_dir):
    """The tiny model's generation config suppresses pad/unk/im_start, as model.generate would: with a
    character-level tokenizer every sampled token is then one character of the reply (or its end)."""
    policy = HFPolicy(str(tiny_model_dir), batch_size=8)
    assert policy._suppress is not None and policy._suppress.numel() == 3
    hot = SamplingParams(temperature=3.0, max_new_tokens=40)  # flat: special tokens would show up often
    out = policy.generate(_conversations(), hot, seeds=list(range(10)))
    for (completion,) in out:
        ended = completion.finish_reason == "stop"
        assert len(completion.text) == completion.num_tokens - int(ended), completion


def test_session_replies_as_they_end_and_takes_follow_ups(tiny_model_dir):
    """A session (the engine's continuous schedule) gives each conversation the greedy reply plain
    ``generate`` gives, even when follow-up turns join while other replies are still decoding."""
    policy = HFPolicy(str(tiny_model_dir), batch_size=4)
    reference_model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    session = policy.session(GREEDY)
    conversations = dict(enumerate(_conversations()))
    turns = dict.fromkeys(conversations, 0)
    for key, conversation in conversations.items():
        session.submit(key, conversation)
    polls = 0
    while session.busy:
        replies = session.poll()
        polls += 1
        for key, completion in replies:
            assert completion.text == _reference(policy, reference_model, conversations[key]), (
                key,
                turns[key],
            )
            turns[key] += 1
            if turns[key] < 2:  # a second turn, submitted while the others decode
                conversations[key] = conversations[key] + [
                    {"role": "assistant", "content": completion.text},
                    {"role": "user", "content": "No."},
                ]
                session.submit(key, conversations[key])
    assert all(t == 2 for t in turns.values())
    assert polls > 2  # replies came back in several waves, not all at the end
    with pytest.raises(ValueError, match="one completion per conversation"):
        policy.session(SamplingParams(n=2))


def test_transformers_outside_the_supported_range_fails_loudly(monkeypatch) -> None:
    """The cache adapter names the releases it is tested on; pyproject pins the same; others are refused."""
    import re
    from pathlib import Path

    from drift_train.policies.kv_cache import TRANSFORMERS_SUPPORTED, UNTESTED_ENV, check_transformers_version

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    pin = re.search(r'"transformers>=([\d.]+),<([\d.]+)"', pyproject)
    assert pin is not None and pin.groups() == TRANSFORMERS_SUPPORTED
    check_transformers_version()  # the installed release is inside the range
    low, high = TRANSFORMERS_SUPPORTED
    monkeypatch.delenv(UNTESTED_ENV, raising=False)
    for version in (high, high + ".1", "4.55.4", "6.0.0"):
        with pytest.raises(RuntimeError, match=rf"transformers {re.escape(version)} is outside"):
            check_transformers_version(version)
    monkeypatch.setenv(UNTESTED_ENV, "1")
    check_transformers_version(high)
