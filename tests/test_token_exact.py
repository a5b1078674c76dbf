"""Token-exact trajectories on real-shaped tokenizers: rollout -> record -> render trains exactly what was sampled.

The tiny model is built with a byte-level BPE tokenizer trained offline (``drift tiny-model --tokenizer
bpe``) under three real templates: ChatML without generation blocks (Qwen2.5's layout), a Qwen3-like
template that drops earlier ``<think>`` content, and Llama-3's header layout. The model's output bias is
raised on both end tokens so that, with a short length limit, replies end in every way: the turn's end
marker, ``<|endoftext|>``, or the length limit.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from drift_train.commands.render import main as render_main
from drift_train.data import RenderConfig, Renderer, assistant_spans, build_dataset
from drift_train.losses import IGNORE_INDEX
from drift_train.policies import SamplingParams
from drift_train.policies.hf import HFPolicy
from drift_train.rollout import RolloutConfig, rollout
from drift_train.tiny import END_OF_TEXT, build_tiny_model
from drift_train.tokens import check_tokens, decode_tokens, encode_tokens, tokenizer_fingerprint
from drift_train.trajectories import TrajectoryError, read_trajectories, write_trajectories

TEMPLATES = ("chatml", "qwen3", "llama3")
TEMPLATE_KWARGS = {"chatml": {}, "qwen3": {"enable_thinking": False}, "llama3": {}}
ENV = "drift/MathFeedback-v0"
ENV_KWARGS = {"difficulty": "tiny", "max_turns": 3, "feedback": "binary"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: the tiny model on one thread


@pytest.fixture(scope="module", params=TEMPLATES)
def bpe_run(request, tmp_path_factory):
    """(template, model folder, tokenizer, records) of a real rollout with the BPE tiny model."""
    template = request.param
    folder = build_tiny_model(tmp_path_factory.mktemp(f"bpe-{template}"), tokenizer="bpe", template=template)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ends = model.generation_config.eos_token_id
    assert sorted(ends) == sorted([tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TEXT)])
    bias = torch.zeros(model.config.vocab_size)
    bias[ends] = 4.0  # each end token gets about 4-6% of the mass per step at random init
    model.lm_head.bias = torch.nn.Parameter(bias)
    policy = HFPolicy(
        model, tokenizer=tokenizer, batch_size=32, chat_template_kwargs=TEMPLATE_KWARGS[template]
    )
    config = RolloutConfig(
        env_id=ENV,
        env_kwargs=ENV_KWARGS,
        num_tasks=8,
        samples=3,
        seed=1,
        sampling=SamplingParams(temperature=1.0, max_new_tokens=12),
    )
    records, _ = rollout(policy, config)
    return template, folder, tokenizer, records


def _supervised_runs(example: dict) -> list[list[int]]:
    """The supervised ids of an example, one list per contiguous run (one run per trained turn)."""
    runs, current = [], []
    for token, label in zip(example["input_ids"], example["labels"], strict=True):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def test_records_carry_exactly_the_sampled_ids(bpe_run) -> None:
    template, _, tokenizer, records = bpe_run
    eos, eot = tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    endings = {"marker": 0, "endoftext": 0, "length": 0}
    for record in records:
        assert record["meta"]["tokenizer"] == tokenizer_fingerprint(tokenizer)
        assert record["meta"]["chat_template_kwargs"] == TEMPLATE_KWARGS[template]
        assert check_tokens(record["tokens"], len(record["turn_rewards"])) is None
        turns = decode_tokens(record["tokens"])
        for k, (turn, meta_turn) in enumerate(zip(turns, record["meta"]["turns"], strict=True), start=1):
            assert (
                turn.finish_reason == meta_turn["finish_reason"]
                and len(turn.completion) == meta_turn["tokens"]
            )
            last = turn.completion[-1]
            if turn.finish_reason == "length":
                assert len(turn.completion) == 12 and last not in (eos, eot)
                endings["length"] += 1
            else:
                assert last in (eos, eot)  # the generated end token is kept, nothing is added
                endings["marker" if last == eos else "endoftext"] += 1
            # the context is what the policy renders for the conversation so far
            upto = [i for i, m in enumerate(record["messages"]) if m["role"] == "assistant"][k - 1]
            text = tokenizer.apply_chat_template(
                record["messages"][:upto],
                tokenize=False,
                add_generation_prompt=True,
                **TEMPLATE_KWARGS[template],
            )
            assert turn.context == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert min(endings.values()) >= 1, endings


@pytest.mark.parametrize("turns", ["last", "all"])
def test_render_supervises_exactly_the_completion_ids(bpe_run, turns) -> None:
    template, folder, tokenizer, records = bpe_run
    model_ends = AutoModelForCausalLM.from_pretrained(folder).generation_config.eos_token_id
    dataset = build_dataset(
        records, tokenizer, RenderConfig(assistant_turns=turns), "sft", end_token_ids=model_ends
    )
    assert dataset.stats.token_id_records == len(records) and dataset.stats.text_records == 0
    covered = set()
    for example in dataset.examples:
        record = records[example["record_index"]]
        sampled = decode_tokens(record["tokens"])
        runs = _supervised_runs(example)
        assert runs == [sampled[k - 1].completion for k in example["turns"]]
        first = sampled[example["turns"][0] - 1]
        # the context before the first trained turn is exactly what the model saw
        assert example["input_ids"][: len(first.context)] == first.context
        covered |= {(example["record_index"], k) for k in example["turns"]}
    expected = {
        (i, k)
        for i, r in enumerate(records)
        for k in range(1, len(r["turn_rewards"]) + 1)
        if turns == "all" or k == len(r["turn_rewards"])
    }
    assert covered == expected
    if turns == "all" and template == "qwen3":
        # the thinking-off prompt ends in an empty <think> block that the rendered history leaves out, so
        # every later turn's context rewrites the previous one: each trained turn is its own example
        multi = [r for r in records if len(r["turn_rewards"]) > 1]
        assert multi
        assert all(
            "prompt_ids" in r["tokens"][f"t{k}"] for r in multi for k in range(2, len(r["tokens"]) + 1)
        )
        assert len(dataset) == sum(len(r["turn_rewards"]) for r in records)


def test_prefix_consistent_contexts_are_stored_as_deltas_and_share_one_example(tiny_model_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    policy = HFPolicy(str(tiny_model_dir), batch_size=32)
    config = RolloutConfig(
        env_id=ENV,
        env_kwargs=ENV_KWARGS,
        num_tasks=4,
        samples=2,
        seed=3,
        sampling=SamplingParams(max_new_tokens=12),
    )
    records, _ = rollout(policy, config)
    multi = [r for r in records if len(r["turn_rewards"]) > 1]
    assert multi
    eot = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    chains = 0
    for r in records:
        # character level: re-encoding the history gives the sampled ids back, and the template's
        # <|im_end|> after a length-cut reply only extends the context; a reply that ended in
        # <|endoftext|> is rendered with <|im_end|> instead, so the next context starts afresh
        assert "prompt_ids" in r["tokens"]["t1"]
        sampled = decode_tokens(r["tokens"])
        for k in range(2, len(sampled) + 1):
            assert ("prompt_delta_ids" in r["tokens"][f"t{k}"]) == (sampled[k - 2].completion[-1] != eot)
        chains += 1 + sum(not t.extends_previous for t in sampled[1:])
    assert any(t.extends_previous for r in records for t in decode_tokens(r["tokens"]))
    dataset = build_dataset(records, tokenizer, RenderConfig(assistant_turns="all"), "sft")
    assert len(dataset) == chains
    for example in dataset.examples:
        sampled = decode_tokens(records[example["record_index"]]["tokens"])
        trained = [sampled[k - 1] for k in example["turns"]]
        assert _supervised_runs(example) == [t.completion for t in trained]
        assert example["input_ids"] == trained[-1].context + trained[-1].completion
    stored = sum(len(json.dumps(r["tokens"])) for r in multi)
    full = sum(len(json.dumps([t.context + t.completion for t in decode_tokens(r["tokens"])])) for r in multi)
    assert stored < full


def test_text_path_supervises_nothing_after_the_marker_and_no_marker_after_a_length_cut(bpe_run) -> None:
    template, folder, tokenizer, records = bpe_run
    ends = AutoModelForCausalLM.from_pretrained(folder).generation_config.eos_token_id
    plain = [{k: v for k, v in r.items() if k != "tokens"} for r in records]
    dataset = build_dataset(plain, tokenizer, RenderConfig(assistant_turns="all"), "sft", end_token_ids=ends)
    assert dataset.stats.text_records == len(records)
    end_marker = tokenizer.eos_token_id
    for example in dataset.examples:
        record = plain[example["record_index"]]
        for k, run in zip(example["turns"], _supervised_runs(example), strict=True):
            reason = record["meta"]["turns"][k - 1]["finish_reason"]
            content = [m for m in record["messages"] if m["role"] == "assistant"][k - 1]["content"]
            if reason == "length":
                assert end_marker not in run
                assert tokenizer.decode(run) == (content.strip() if template == "llama3" else content)
            else:
                assert run[-1] == end_marker and end_marker not in run[:-1]  # not the "\n" after it


@pytest.mark.parametrize("bpe_run", ["qwen3"], indirect=True)  # the template that reads enable_thinking
def test_text_path_applies_the_recorded_chat_template_kwargs(bpe_run) -> None:
    template, _, tokenizer, records = bpe_run
    record = {k: v for k, v in records[0].items() if k != "tokens"}
    with_kwargs = Renderer(tokenizer, RenderConfig()).examples(record, weighted=False)[0]
    without = Renderer(tokenizer, RenderConfig()).examples(
        {**record, "meta": {**record["meta"], "chat_template_kwargs": {}}}, weighted=False
    )[0]
    think = tokenizer("<think>\n\n</think>\n\n", add_special_tokens=False)["input_ids"]
    start = next(i for i, label in enumerate(with_kwargs["labels"]) if label != IGNORE_INDEX)
    # recorded enable_thinking=False: the empty think block is the prompt's, as the policy saw it
    assert with_kwargs["input_ids"][start - len(think) : start] == think
    assert _supervised_runs(with_kwargs)[0][: len(think)] != think
    # without the kwargs the template's thinking prompt is shorter and the think block would be trained
    assert _supervised_runs(without)[0][: len(think)] == think


def test_another_tokenizer_falls_back_to_the_text(bpe_run, tiny_model_dir) -> None:
    _, _, _, records = bpe_run
    char = AutoTokenizer.from_pretrained(tiny_model_dir)
    dataset = build_dataset(records, char, RenderConfig(), "sft")
    assert dataset.stats.tokenizer_mismatch == len(records) and dataset.stats.token_id_records == 0


def test_drift_render_cli_writes_what_the_trainer_builds(bpe_run, tmp_path, capsys) -> None:
    _, folder, tokenizer, records = bpe_run
    data = write_trajectories(records, tmp_path / "rollouts.jsonl")
    out = tmp_path / "examples.jsonl"
    assert (
        render_main(
            [
                "--data",
                str(data),
                "--model",
                str(folder),
                "--assistant_turns",
                "all",
                "--out",
                str(out),
                "--show",
                "1",
            ]
        )
        == 0
    )
    shown = capsys.readouterr()
    assert "supervised" in shown.out and "examples from" in shown.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    ends = AutoModelForCausalLM.from_pretrained(folder).generation_config.eos_token_id
    expected = build_dataset(
        list(read_trajectories(data)),
        tokenizer,
        RenderConfig(assistant_turns="all"),
        "sft",
        end_token_ids=ends,
    ).examples
    assert len(rows) == len(expected)
    for row, example in zip(rows, expected, strict=True):
        assert set(row) >= {"record_index", "turn", "input_ids", "labels", "token_weights"}
        for key in ("record_index", "turn", "input_ids", "labels", "token_weights"):
            assert row[key] == example[key]
        sampled = decode_tokens(records[row["record_index"]]["tokens"])
        assert _supervised_runs(row)[-1] == sampled[row["turn"] - 1].completion


def test_tokens_field_delta_encoding_and_validation() -> None:
    turns = [([1, 2, 3], [7, 8, 0], "stop"), ([1, 2, 3, 7, 8, 0, 5, 6], [9], "length"), ([4, 4], [1], "stop")]
    tokens = encode_tokens(turns)
    assert tokens["t1"] == {"completion_ids": [7, 8, 0], "finish_reason": "stop", "prompt_ids": [1, 2, 3]}
    assert tokens["t2"] == {"completion_ids": [9], "finish_reason": "length", "prompt_delta_ids": [5, 6]}
    assert "prompt_ids" in tokens["t3"]  # history rewritten: the full context
    decoded = decode_tokens(tokens)
    assert [t.context for t in decoded] == [p for p, _, _ in turns]
    assert [t.extends_previous for t in decoded] == [False, True, False]
    assert check_tokens(tokens, 3) is None
    assert check_tokens(tokens, 2)[0] == "tokens"
    assert check_tokens({**tokens, "t1": {**tokens["t2"]}}, 3)[0] == "tokens.t1"
    bad = {**tokens, "t2": {**tokens["t2"], "finish_reason": "eos"}}
    assert check_tokens(bad, 3)[0] == "tokens.t2.finish_reason"


def test_reader_names_a_bad_tokens_field(tmp_path, bpe_run) -> None:
    _, _, _, records = bpe_run
    record = json.loads(json.dumps(records[0]))
    record["tokens"]["t1"]["completion_ids"] = ["7"]
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(records[1]) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(TrajectoryError, match=r"bad.jsonl:2: field 'tokens.t1.completion_ids'"):
        list(read_trajectories(path))


def test_generation_block_spans_still_cover_content_and_marker(tiny_model_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    ids, spans = assistant_spans(tokenizer, messages)
    assert tokenizer.decode(ids[spans[0][0] : spans[0][1]]) == "Yo<|im_end|>"


def test_tokens_survive_weights_and_parquet(bpe_run, tmp_path) -> None:
    from drift_train.commands.weights import main as weights_main

    _, _, _, records = bpe_run
    data = write_trajectories(records, tmp_path / "rollouts.jsonl")
    assert weights_main([str(data), "--out", str(tmp_path / "weighted.parquet")]) == 0
    weighted = list(read_trajectories(tmp_path / "weighted.parquet"))
    assert [r["tokens"] for r in weighted] == [r["tokens"] for r in records]
    assert all("weight" in r for r in weighted)
