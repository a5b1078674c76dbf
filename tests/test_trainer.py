"""The trainer on the real tiny model: rendering, normalisation invariances, DDP, LoRA, resume, end to end."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from drift_train.commands.train import parse_config
from drift_train.commands.weights import main as weights_main
from drift_train.data import DriftCollator, RenderConfig, assistant_spans, build_dataset
from drift_train.losses import IGNORE_INDEX, drift_loss
from drift_train.trainer import DriftConfig, DriftTrainer, train
from drift_train.trajectories import write_trajectories
from drift_train.weights import WeightConfig, add_weights

REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------
# data


def synthetic_records(groups: int = 4, k: int = 4, seed: int = 0) -> list[dict]:
    """Valid trajectory records (docs/design.md schema) with mixed success, 1-3 turns and varied lengths."""
    rng = random.Random(seed)
    records = []
    for g in range(groups):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        for j in range(k):
            messages = [
                {"role": "system", "content": "Give the final answer in \\boxed{}."},
                {"role": "user", "content": f"Compute {a} + {b}."},
            ]
            rewards, answers, t_star = {}, [], None
            for t in range(1, 4):
                guess = a + b if rng.random() < 0.35 else rng.randint(1, 200)
                padding = " Let me think." * rng.randint(0, 4)
                messages.append({"role": "assistant", "content": f"{padding} \\boxed{{{guess}}}"})
                answers.append(str(guess))
                rewards[f"t{t}"] = float(guess == a + b)
                if guess == a + b:
                    t_star = t
                    break
                if t < 3:
                    messages.append({"role": "user", "content": "Incorrect. Please think again."})
            records.append(
                {
                    "prompt_id": g,
                    "traj_idx": j,
                    "env_id": "drift/MathFeedback-v0",
                    "env_kwargs": {},
                    "task_id": f"synthetic/{g}",
                    "messages": messages,
                    "turn_rewards": rewards,
                    "verifier": {key: int(r) for key, r in rewards.items()},
                    "t_star": t_star,
                    "answer_norms": answers,
                    "format_penalty": 0.0,
                    "meta": {"seed": seed},
                }
            )
    return records


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: the tiny model on one thread


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def weighted_records():
    records, _ = add_weights(synthetic_records(), WeightConfig(per_turn=True))
    return records


def test_last_turn_labels_are_the_final_assistant_reply(tokenizer, weighted_records) -> None:
    record = next(r for r in weighted_records if len(r["turn_rewards"]) == 3)
    dataset = build_dataset([record], tokenizer, RenderConfig(), "wsft")
    example = dataset[0]
    trained = [
        t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE_INDEX
    ]
    assert tokenizer.decode(trained) == record["messages"][-1]["content"] + "<|im_end|>"
    trained_weights = [
        w
        for w, label in zip(example["token_weights"], example["labels"], strict=True)
        if label != IGNORE_INDEX
    ]
    assert trained_weights == [pytest.approx(record["weight"])] * len(trained)
    # the whole history is in the input
    assert tokenizer.decode(example["input_ids"]).startswith("<|im_start|>system\n")


def test_all_turns_with_per_turn_weights(tokenizer, weighted_records) -> None:
    record = next(
        r
        for r in weighted_records
        if len(r["turn_rewards"]) == 3 and len(set(r["turn_weights"].values())) > 1
    )
    config = RenderConfig(assistant_turns="all", per_turn_weights=True)
    example = build_dataset([record], tokenizer, config, "wsft")[0]
    ids, spans = assistant_spans(tokenizer, record["messages"])
    assert len(spans) == 3
    for k, (start, end) in enumerate(spans):
        assert tokenizer.decode(ids[start:end]) == record["messages"][2 + 2 * k]["content"] + "<|im_end|>"
        assert example["token_weights"][start:end] == [pytest.approx(record["turn_weights"][f"t{k + 1}"])] * (
            end - start
        )
    assert sum(label != IGNORE_INDEX for label in example["labels"]) == sum(e - s for s, e in spans)


def test_prefix_rendering_fallback_finds_the_same_replies(
    tiny_model_dir, tokenizer, weighted_records
) -> None:
    plain = AutoTokenizer.from_pretrained(tiny_model_dir)
    plain.chat_template = plain.chat_template.replace("{%- generation -%}", "").replace(
        "{%- endgeneration -%}", ""
    )
    assert "endgeneration" not in plain.chat_template
    messages = weighted_records[0]["messages"]
    ids, spans = assistant_spans(tokenizer, messages)
    plain_ids, plain_spans = assistant_spans(plain, messages)
    assert plain_ids == ids
    for (start, end), (p_start, p_end) in zip(spans, plain_spans, strict=True):
        assert p_start == start and plain.decode(ids[p_start:p_end]).startswith(
            tokenizer.decode(ids[start:end])
        )


def test_truncation_drops_whole_old_turns_and_keeps_system_prompt_and_own_prompt(
    tokenizer, weighted_records
) -> None:
    record = max(
        (r for r in weighted_records if len(r["turn_rewards"]) == 3),
        key=lambda r: len(json.dumps(r["messages"])),
    )
    messages = record["messages"]  # system, user, a1, feedback, a2, feedback, a3
    full = build_dataset([record], tokenizer, RenderConfig(), "sft")[0]
    trained = [t for t, label in zip(full["input_ids"], full["labels"], strict=True) if label != IGNORE_INDEX]
    # room for the system prompt, the last feedback and the reply, but not for every older turn
    keep_last = tokenizer.apply_chat_template([messages[0], *messages[3:6]], add_generation_prompt=True)
    shortest = tokenizer.apply_chat_template([messages[0], messages[5]], add_generation_prompt=True)
    limit = len(_ids(keep_last)) + len(trained)
    assert len(full["input_ids"]) > limit
    with pytest.warns(UserWarning, match="lost their oldest turns"):
        dataset = build_dataset([record], tokenizer, RenderConfig(max_length=limit), "sft")
    cut = dataset[0]
    assert dataset.stats.truncated == 1 and len(cut["input_ids"]) <= limit
    assert cut["input_ids"] == _ids(keep_last) + trained  # the newest older turn (a2) fitted; a1 did not
    assert [
        t for t, label in zip(cut["input_ids"], cut["labels"], strict=True) if label != IGNORE_INDEX
    ] == trained
    text = tokenizer.decode(cut["input_ids"])
    assert text.startswith("<|im_start|>system\n" + messages[0]["content"])
    assert messages[1]["content"] not in text and messages[2]["content"] not in text
    # one token less than system + own prompt + reply: skipped and counted, never a headless tail
    too_small = len(_ids(shortest)) + len(trained) - 1
    with pytest.raises(ValueError, match="1 turns too long"):
        build_dataset([record], tokenizer, RenderConfig(max_length=too_small), "sft")
    ok = build_dataset([record, weighted_records[0]], tokenizer, RenderConfig(max_length=too_small), "sft")
    assert ok.stats.skipped_too_long >= 1 and all(e["record_index"] == 1 for e in ok.examples)


def _ids(encoded) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def test_dataset_filters_by_loss_mode(tokenizer) -> None:
    records, _ = add_weights(synthetic_records(), WeightConfig(equal_groups="drop"))
    successes = sum(r["t_star"] is not None for r in records)
    rft = build_dataset(records, tokenizer, RenderConfig(), "rft")
    assert len(rft) == successes and rft.stats.skipped_unsuccessful == len(records) - successes
    wsft = build_dataset(records, tokenizer, RenderConfig(), "wsft")
    assert len(wsft) == sum(r["weight"] > 0 for r in records)
    assert len(build_dataset(records, tokenizer, RenderConfig(), "sft")) == len(records)
    with pytest.raises(ValueError, match=r"record 0: no `weight` field; run `drift weights`"):
        build_dataset(synthetic_records(), tokenizer, RenderConfig(), "wsft")


def test_padding_free_batch_gives_the_padded_loss(tiny_model_dir, tokenizer, weighted_records) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    examples = list(
        build_dataset(weighted_records[:6], tokenizer, RenderConfig(assistant_turns="all"), "wsft")
    )
    masked = DriftCollator(tokenizer.pad_token_id)(examples)
    padded = DriftCollator(tokenizer.pad_token_id, attention_mask=False)(examples)
    packed = DriftCollator(tokenizer.pad_token_id, padding_free=True)(examples)
    assert packed["input_ids"].shape[0] == 1 and (padded["input_ids"] == tokenizer.pad_token_id).any()
    assert "attention_mask" not in padded and "attention_mask" in masked
    with torch.no_grad():
        reference = drift_loss(
            model(
                input_ids=masked["input_ids"], attention_mask=masked["attention_mask"], use_cache=False
            ).logits,
            masked["labels"],
            masked["token_weights"],
            "wsft",
        )[0]
        a = drift_loss(
            model(input_ids=padded["input_ids"], use_cache=False).logits,
            padded["labels"],
            padded["token_weights"],
            "wsft",
        )[0]
        b = drift_loss(
            model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits,
            packed["labels"],
            packed["token_weights"],
            "wsft",
        )[0]
    torch.testing.assert_close(a, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b, reference, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# one optimizer step: invariances


def sgd_config(out: Path, model: Path, **overrides) -> DriftConfig:
    """One plain-SGD step, no clipping, data in file order: the update is exactly −lr × gradient."""
    settings = dict(
        output_dir=str(out),
        model=str(model),
        loss="wsft",
        max_steps=1,
        optim="sgd",
        learning_rate=1.0,
        max_grad_norm=0.0,
        lr_scheduler_type="constant",
        train_sampling_strategy="sequential",
        save_strategy="no",
        report_to="none",
        logging_steps=1,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    settings.update(overrides)
    return DriftConfig(**settings)


def one_step_update(model_dir: Path, records: list[dict], config: DriftConfig) -> dict[str, torch.Tensor]:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    dataset = build_dataset(records, tokenizer, config.render_config(), config.loss)
    trainer = DriftTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    return {k: v.detach() - before[k] for k, v in trainer.model.named_parameters()}


def assert_same_update(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    scale = max(float(v.abs().max()) for v in a.values())
    assert scale > 1e-4, "the step did not move the weights; the comparison would be empty"
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5 * scale, msg=name)


def test_micro_batch_and_accumulation_do_not_change_the_update(
    tiny_model_dir, tokenizer, weighted_records, tmp_path
) -> None:
    records = weighted_records[:8]
    big = one_step_update(tiny_model_dir, records, sgd_config(tmp_path / "a", tiny_model_dir))
    small = one_step_update(
        tiny_model_dir,
        records,
        sgd_config(
            tmp_path / "b", tiny_model_dir, per_device_train_batch_size=2, gradient_accumulation_steps=4
        ),
    )
    assert_same_update(big, small)

    # the check is sensitive: averaging per-micro-batch means (the common mistake) gives another update
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    examples = list(build_dataset(records, tokenizer, RenderConfig(), "wsft"))
    collate = DriftCollator(tokenizer.pad_token_id)
    for i in range(0, 8, 2):
        batch = collate(examples[i : i + 2])
        logits = model(input_ids=batch["input_ids"]).logits
        (drift_loss(logits, batch["labels"], batch["token_weights"], "wsft")[0] / 4).backward()
    wrong = {k: -p.grad for k, p in model.named_parameters()}
    with pytest.raises(AssertionError):
        assert_same_update(big, wrong)


def test_padding_free_and_gradient_checkpointing_give_the_same_update(
    tiny_model_dir, weighted_records, tmp_path
) -> None:
    records = weighted_records[:6]
    reference = one_step_update(tiny_model_dir, records, sgd_config(tmp_path / "a", tiny_model_dir))
    packed = one_step_update(
        tiny_model_dir,
        records,
        sgd_config(tmp_path / "b", tiny_model_dir, padding_free=True, gradient_checkpointing=True),
    )
    assert_same_update(reference, packed)


def _load_state(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in AutoModelForCausalLM.from_pretrained(folder).state_dict().items()}


@pytest.mark.parametrize("average_tokens", ["true", "false"])
def test_two_process_ddp_equals_one_process(
    tiny_model_dir, weighted_records, tmp_path, average_tokens
) -> None:
    records = weighted_records[:8]
    # the two ranks get different numbers of supervised tokens, so a per-rank normaliser would show
    halves = [
        sum(len(m["content"]) for r in part for m in r["messages"][-1:])
        for part in (records[:4], records[4:])
    ]
    assert halves[0] != halves[1]
    data = write_trajectories(records, tmp_path / "data.jsonl")
    flags = [
        "--data",
        str(data),
        "--model",
        str(tiny_model_dir),
        "--loss",
        "wsft",
        "--max_steps",
        "1",
        "--optim",
        "sgd",
        "--learning_rate",
        "1.0",
        "--max_grad_norm",
        "0",
        "--lr_scheduler_type",
        "constant",
        "--train_sampling_strategy",
        "sequential",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--average_tokens_across_devices",
        average_tokens,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "drift_train.commands.train",
        *flags,
        "--ddp_backend",
        "gloo",
        "--output_dir",
        str(tmp_path / "ddp"),
        "--per_device_train_batch_size",
        "4",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (
        train(
            parse_config(
                [*flags, "--output_dir", str(tmp_path / "single"), "--per_device_train_batch_size", "8"]
            )
        )["steps"]
        == 1
    )
    base, ddp, single = (_load_state(p) for p in (tiny_model_dir, tmp_path / "ddp", tmp_path / "single"))
    assert_same_update({k: ddp[k] - base[k] for k in base}, {k: single[k] - base[k] for k in base})


# --------------------------------------------------------------------------------------------------
# checkpoints, LoRA, configuration


def test_resume_from_checkpoint_matches_an_uninterrupted_run(
    tiny_model_dir, weighted_records, tmp_path
) -> None:
    data = write_trajectories(weighted_records, tmp_path / "data.jsonl")
    common = [
        "--data",
        str(data),
        "--model",
        str(tiny_model_dir),
        "--loss",
        "wsft",
        "--max_steps",
        "4",
        "--per_device_train_batch_size",
        "4",
        "--learning_rate",
        "3e-3",
        "--save_steps",
        "2",
        "--train_sampling_strategy",
        "sequential",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
    ]
    train(parse_config([*common, "--output_dir", str(tmp_path / "full")]))
    assert (tmp_path / "full" / "checkpoint-2").is_dir()
    resumed = train(
        parse_config(
            [
                *common,
                "--output_dir",
                str(tmp_path / "resumed"),
                "--resume_from_checkpoint",
                str(tmp_path / "full" / "checkpoint-2"),
            ]
        )
    )
    assert resumed["steps"] == 4
    full, again = _load_state(tmp_path / "full"), _load_state(tmp_path / "resumed")
    for name in full:
        torch.testing.assert_close(again[name], full[name], msg=name)
    base = _load_state(tiny_model_dir)
    assert any(not torch.equal(full[k], base[k]) for k in base)


def test_lora_trains_and_saves_a_plain_merged_model(tiny_model_dir, weighted_records, tmp_path) -> None:
    data = write_trajectories(weighted_records, tmp_path / "data.jsonl")
    out = tmp_path / "lora"
    metrics = train(
        parse_config(
            [
                "--data",
                str(data),
                "--model",
                str(tiny_model_dir),
                "--loss",
                "drift-otr",
                "--otr_num_samples",
                "16",
                "--use_peft",
                "--lora_r",
                "4",
                "--learning_rate",
                "5e-3",
                "--max_steps",
                "2",
                "--per_device_train_batch_size",
                "4",
                "--save_strategy",
                "no",
                "--report_to",
                "none",
                "--output_dir",
                str(out),
                "--disable_tqdm",
                "true",
            ]
        )
    )
    assert metrics["steps"] == 2
    assert not (out / "adapter_config.json").exists()
    merged, base = _load_state(out), _load_state(tiny_model_dir)
    assert set(merged) == set(base)
    changed = [k for k in base if not torch.equal(merged[k], base[k])]
    assert changed and all("proj" in k for k in changed)  # only the adapted linear layers moved


def test_yaml_config_with_command_line_overrides(tiny_model_dir, tmp_path) -> None:
    config_file = tmp_path / "train.yaml"
    config_file.write_text(
        f"data: rollouts.jsonl\nmodel: {tiny_model_dir}\nloss: otr\notr_num_samples: 64\n"
        "learning_rate: 2.0e-5\nassistant_turns: all\noutput_dir: " + str(tmp_path / "o") + "\n"
    )
    config = parse_config(
        ["--config", str(config_file), "--otr-num-samples", "32", "--gradient_accumulation_steps", "2"]
    )
    assert (config.loss, config.otr_num_samples, config.learning_rate) == ("otr", 32, 2e-5)
    assert config.assistant_turns == "all" and config.gradient_accumulation_steps == 2
    assert config.otr_config().num_samples == 32
    assert parse_config([str(config_file), "--loss", "sft"]).loss == "sft"  # positional YAML, flag wins
    config_file.write_text("lossy: sft\n")
    with pytest.raises(SystemExit):
        parse_config(["--config", str(config_file)])
    with pytest.raises(SystemExit):
        parse_config(["--data", "x.jsonl", "--model", "m", "--loss", "dpo"])
    with pytest.raises(ValueError, match=r"negative_reward \(β\) must be ≤ 0"):
        parse_config(["--data", "x.jsonl", "--model", "m", "--otr_negative_reward", "0.5"])


def test_drift_train_command_reports_unweighted_data(tiny_model_dir, tmp_path, capsys) -> None:
    from drift_train.cli import main as drift

    data = write_trajectories(synthetic_records(groups=1), tmp_path / "rollouts.jsonl")
    code = drift(
        [
            "train",
            "--data",
            str(data),
            "--model",
            str(tiny_model_dir),
            "--loss",
            "wsft",
            "--output-dir",
            str(tmp_path / "out"),
            "--report_to",
            "none",
        ]
    )
    assert code == 2
    assert "no `weight` field; run `drift weights`" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.safetensors").exists()


# --------------------------------------------------------------------------------------------------
# end to end: rollouts -> weights -> every loss mode


def supervised_nll(model_dir: Path, dataset) -> float:
    """Teacher-forced mean −log π(x_t) over the dataset's supervised tokens."""
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    batch = DriftCollator(tokenizer.pad_token_id)(list(dataset))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], use_cache=False).logits
    return float(drift_loss(logits, batch["labels"], None, "sft")[0])


@pytest.fixture(scope="module")
def rollout_file(tiny_model_dir, tmp_path_factory) -> Path:
    """Real rollouts of the tiny model in MathFeedback, through `drift weights`, plus synthetic successes.

    The untrained tiny model never solves a task, so a second file of synthetic trajectories with mixed
    outcomes is concatenated to give rft and the weights something to separate.
    """
    import drift_envs  # noqa: F401  (registers the env ids)
    from drift_train.policies import SamplingParams, make_policy
    from drift_train.rollout import RolloutConfig, rollout

    folder = tmp_path_factory.mktemp("e2e")
    policy = make_policy("hf", str(tiny_model_dir), device="cpu")
    records, _ = rollout(
        policy,
        RolloutConfig(
            env_id="drift/MathFeedback-v0",
            num_tasks=2,
            samples=4,
            max_turns=2,
            sampling=SamplingParams(max_new_tokens=16),
            seed=0,
        ),
        out=folder / "rollouts.jsonl",
    )
    assert len(records) == 8
    synthetic = [dict(r, prompt_id=100 + r["prompt_id"]) for r in synthetic_records(groups=3, seed=1)]
    write_trajectories(records + synthetic, folder / "all.jsonl")
    assert weights_main([str(folder / "all.jsonl"), "--out", str(folder / "weighted.jsonl")]) == 0
    return folder / "weighted.jsonl"


@pytest.mark.parametrize("loss", ["sft", "rft", "wsft", "otr", "otr-exact", "drift-otr"])
def test_end_to_end_every_loss_mode_trains_and_reloads(
    loss, tiny_model_dir, tokenizer, rollout_file, tmp_path
) -> None:
    out = tmp_path / loss
    metrics = train(
        parse_config(
            [
                "--data",
                str(rollout_file),
                "--model",
                str(tiny_model_dir),
                "--loss",
                loss,
                "--output_dir",
                str(out),
                "--max_steps",
                "5",
                "--per_device_train_batch_size",
                "4",
                "--learning_rate",
                "1e-2",
                "--otr_num_samples",
                "64",
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
            ]
        )
    )
    assert metrics["steps"] == 5
    from drift_train.trajectories import read_trajectories

    dataset = build_dataset(list(read_trajectories(rollout_file)), tokenizer, RenderConfig(), loss)
    before, after = supervised_nll(tiny_model_dir, dataset), supervised_nll(out, dataset)
    assert after < before - 0.05, (before, after)

    logged = {
        key for entry in json.loads((out / "trainer_state.json").read_text())["log_history"] for key in entry
    }
    assert "loss" in logged
    assert ({"weight_mean", "weight_ess"} <= logged) == (loss in ("wsft", "drift-otr"))
    assert ("otr_hit_rate" in logged) == (loss in ("otr", "otr-exact", "drift-otr"))
    model = AutoModelForCausalLM.from_pretrained(out)
    reloaded = AutoTokenizer.from_pretrained(out)
    prompt = reloaded.apply_chat_template(
        [{"role": "user", "content": "Compute 1 + 1."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
