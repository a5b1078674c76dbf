"""Training a real model on CPU: SmolLM2-135M-Instruct (``--model smollm2-135m-instruct``), LoRA and full.

The records are real: ``tests/data/smollm2_user_rollouts.jsonl`` holds 4 trajectories (2 tasks × 2
samples, 2 turns of at most 16 tokens) that the hf backend sampled from SmolLM2-135M-Instruct in
``drift/UserCorrection-v0``, with their token ids, weighted by ``drift weights``::

    rollout(make_policy("hf", resolve_model("smollm2-135m-instruct")), RolloutConfig(
        env_id="drift/UserCorrection-v0", num_tasks=2, samples=2, max_turns=2,
        sampling=SamplingParams(max_new_tokens=16), seed=0))

SmolLM2's ChatML template has no ``{% generation %}`` blocks, so the text path finds each reply by
prefix rendering; the tests check that both paths supervise exactly the reply and its ``<|im_end|>``
(none for a reply cut by the length limit), never the newline or the next ``<|im_start|>``.
Each training test runs two optimizer steps on short sequences; the saved folder must load with
transformers and, where the vLLM environment exists, with vLLM through ``drift rollout --backend vllm``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import VLLM_MISSING, VLLM_PYTHON, VLLM_START_TIMEOUT_S, BackgroundRun, needs_vllm, wants
from transformers import AutoModelForCausalLM, AutoTokenizer

from drift_train.commands.train import parse_config
from drift_train.data import DriftCollator, RenderConfig, build_dataset
from drift_train.losses import IGNORE_INDEX, drift_loss
from drift_train.tokens import decode_tokens, tokenizer_fingerprint
from drift_train.trainer import train
from drift_train.trajectories import read_trajectories

REPO_ROOT = Path(__file__).resolve().parents[1]
RECORDS = REPO_ROOT / "tests" / "data" / "smollm2_user_rollouts.jsonl"

# one torch thread (conftest): on shared cores a second thread spins at every barrier, and a step of the
# 135M model measured 8x slower in CPU time and in wall time with two threads at load 16 than with one
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2_dir):
    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(read_trajectories(RECORDS))


def _supervised(example: dict) -> list[int]:
    return [t for t in example["labels"] if t != IGNORE_INDEX]


@pytest.mark.parametrize("use_token_ids", [True, False])
def test_chatml_assistant_mask_is_the_reply_and_its_end_marker(
    smollm2_tokenizer, records, use_token_ids
) -> None:
    tokenizer = smollm2_tokenizer
    assert "{% generation %}" not in tokenizer.chat_template  # the case this test is about: prefix rendering
    assert records[0]["meta"]["tokenizer"]["hash"] == tokenizer_fingerprint(tokenizer)["hash"]
    config = RenderConfig(assistant_turns="all", use_token_ids=use_token_ids)
    dataset = build_dataset(records, tokenizer, config, "sft", end_token_ids=[tokenizer.eos_token_id])
    assert dataset.stats.tokenizer_mismatch == 0
    assert (dataset.stats.token_id_records, dataset.stats.text_records) == (
        (len(records), 0) if use_token_ids else (0, len(records))
    )
    end = tokenizer.eos_token
    assert end == "<|im_end|>"
    for example in dataset:
        record = records[example["record_index"]]
        replies = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        reasons = [record["tokens"][f"t{k}"]["finish_reason"] for k in range(1, len(replies) + 1)]
        replies, reasons = (
            [replies[k - 1] for k in example["turns"]],
            [reasons[k - 1] for k in example["turns"]],
        )
        # one run of supervised positions per trained turn, in order
        labels, runs, run = example["labels"], [], []
        for label in labels:
            if label != IGNORE_INDEX:
                run.append(label)
            elif run:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
        assert len(runs) == len(replies)
        for ids, reply, reason in zip(runs, replies, reasons, strict=True):
            expected = reply + (end if reason == "stop" else "")
            assert tokenizer.decode(ids) == expected

    reasons = {turn["finish_reason"] for r in records for turn in r["tokens"].values()}
    assert reasons == {"stop", "length"}  # both cases occur in the fixture
    if use_token_ids:  # the supervised ids are exactly the sampled ones
        for example in dataset:
            turns = decode_tokens(records[example["record_index"]]["tokens"])
            assert _supervised(example) == [t for k in example["turns"] for t in turns[k - 1].completion]


def test_id_and_text_paths_give_the_same_examples_where_the_samples_are_canonical(
    smollm2_tokenizer, records
) -> None:
    """Where the sampled ids are the tokenizer's own encoding of the text, rendering the text gives the
    very same example (ids and labels) as the recorded ids: the last turn given its whole history."""
    tokenizer = smollm2_tokenizer
    by_ids = build_dataset(records, tokenizer, RenderConfig(), "sft")
    by_text = build_dataset(records, tokenizer, RenderConfig(use_token_ids=False), "sft")
    assert len(by_ids) == len(by_text) == len(records)
    compared = 0
    for a, b in zip(by_ids, by_text, strict=True):
        last = decode_tokens(records[a["record_index"]]["tokens"])[-1]
        seen = last.context + last.completion
        if tokenizer.encode(tokenizer.decode(seen), add_special_tokens=False) == seen:
            assert a["input_ids"] == b["input_ids"] and a["labels"] == b["labels"]
            compared += 1
    assert compared >= 1, "no record re-encodes to its sampled ids; the comparison would be empty"


def _train_args(data: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data",
        str(data),
        "--model",
        str(model),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--max_length",
        "256",
        "--logging_steps",
        "1",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--seed",
        "0",
        *extra,
    ]


_MODELS: dict[str, torch.nn.Module] = {}  # folder -> model, read once by this module's tests


@pytest.fixture(scope="module", autouse=True)
def _forget_models():
    yield
    _MODELS.clear()


def _model(model_dir: Path) -> torch.nn.Module:
    """``from_pretrained(model_dir)``, once per folder in this module (the base and the merged LoRA folder
    are each read by several tests; nothing here changes a loaded model)."""
    if str(model_dir) not in _MODELS:
        _MODELS[str(model_dir)] = AutoModelForCausalLM.from_pretrained(model_dir)
    return _MODELS[str(model_dir)]


def _nll(model_dir: Path, dataset) -> float:
    """Teacher-forced mean −log π(x_t) over the dataset's supervised tokens."""
    model = _model(model_dir)
    pad = AutoTokenizer.from_pretrained(model_dir).pad_token_id
    batch = DriftCollator(pad, attention_mask=False)(list(dataset))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], use_cache=False).logits
    return float(drift_loss(logits, batch["labels"], None, "sft")[0])


def _greedy_ids(model_dir: Path, prompt_ids: list[int], n: int) -> list[int]:
    model = _model(model_dir)
    out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=n, do_sample=False)
    return out[0, len(prompt_ids) :].tolist()


@pytest.fixture(scope="module")
def lora_folder(smollm2_dir, tmp_path_factory) -> tuple[Path, dict]:
    """Two LoRA wsft steps with activation checkpointing, merged into a plain folder (the default)."""
    out = tmp_path_factory.mktemp("smollm2-lora") / "out"
    metrics = train(
        parse_config(
            _train_args(
                RECORDS,
                smollm2_dir,
                out,
                "--loss",
                "wsft",
                "--use_peft",
                "--learning_rate",
                "3e-3",
                "--activation_checkpointing",
            )
        )
    )
    return out, metrics


def test_lora_on_smollm2_saves_a_merged_folder_that_transformers_loads(
    smollm2_dir, smollm2_tokenizer, records, lora_folder
) -> None:
    out, metrics = lora_folder
    assert metrics["steps"] == 2 and metrics["token_id_records"] == len(records)
    assert not (out / "adapter_config.json").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] and "quantization_config" not in config
    base = _model(smollm2_dir).state_dict()
    merged = _model(out).state_dict()
    assert set(merged) == set(base)
    changed = [k for k in base if not torch.equal(merged[k], base[k])]
    # all-linear LoRA moves every attention and MLP projection of the 30 layers, nothing else
    assert len(changed) == 30 * 7 and all(k.endswith("proj.weight") for k in changed)
    dataset = build_dataset(records, smollm2_tokenizer, RenderConfig(), "sft")
    before, after = _nll(smollm2_dir, dataset), _nll(out, dataset)
    assert after < before - 0.05, (before, after)
    prompt = decode_tokens(records[0]["tokens"])[0].context
    assert len(_greedy_ids(out, prompt, 4)) == 4


def test_full_finetuning_on_smollm2_trains_and_reloads(
    smollm2_dir, smollm2_tokenizer, records, tmp_path
) -> None:
    out = tmp_path / "full"
    metrics = train(
        parse_config(_train_args(RECORDS, smollm2_dir, out, "--loss", "sft", "--learning_rate", "1e-5"))
    )
    assert metrics["steps"] == 2
    dataset = build_dataset(records, smollm2_tokenizer, RenderConfig(), "sft")
    before, after = _nll(smollm2_dir, dataset), _nll(out, dataset)
    # Adam's first steps move every weight by about the learning rate: small, or 135 M weights overshoot
    assert after < before - 0.01, (before, after)
    assert AutoTokenizer.from_pretrained(out).chat_template == smollm2_tokenizer.chat_template


VLLM_SERVE_TEST = "test_the_lora_folder_serves_with_vllm_as_drift_rollout_model"


@pytest.fixture(scope="module", autouse=True)
def lora_vllm_rollout(request, tmp_path_factory, one_torch_thread):
    """``drift rollout --backend vllm`` on the merged LoRA folder, started as soon as the folder exists and
    collected by the test that checks it: vLLM's start-up on CPU (tens of seconds, mostly one core) runs
    beside this module's other tests instead of after them. None where vLLM is absent or the run does not
    select that test. After ``one_torch_thread``: autouse fixtures come first, and the LoRA steps it may
    start run on one thread like the rest of the module."""
    if VLLM_MISSING or not wants(request, VLLM_SERVE_TEST):
        yield None
        return
    out, _ = request.getfixturevalue("lora_folder")
    work = tmp_path_factory.mktemp("smollm2-lora-vllm")
    rollouts = work / "vllm.jsonl"
    command = [
        str(Path(VLLM_PYTHON).absolute()),  # the run's cwd is its own folder
        "-m",
        "drift_train.cli",
        "rollout",
        "--backend",
        "vllm",
        "--model",
        str(out),
        "--env",
        "drift/UserCorrection-v0",
        "--num-tasks",
        "1",
        "--samples",
        "1",
        "--max-turns",
        "1",
        "--max-new-tokens",
        "6",
        "--temperature",
        "0",
        "--no-progress",
        "--out",
        str(rollouts),
    ]
    run = BackgroundRun(
        command,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)},
        cwd=work,
        timeout_s=VLLM_START_TIMEOUT_S,
    )
    yield run, rollouts
    run.stop()


@needs_vllm
def test_the_lora_folder_serves_with_vllm_as_drift_rollout_model(lora_folder, lora_vllm_rollout) -> None:
    out, _ = lora_folder
    run, rollouts = lora_vllm_rollout
    done = run.result()
    assert done.returncode == 0, done.stderr[-4000:]
    (record,) = read_trajectories(rollouts)
    (turn,) = decode_tokens(record["tokens"])
    # vLLM's greedy reply from the merged folder is transformers' greedy reply from the same folder
    expected = _greedy_ids(out, turn.context, len(turn.completion))
    assert turn.completion == expected
