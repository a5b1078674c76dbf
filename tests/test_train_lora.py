"""LoRA with every loss mode on the tiny model: trains, merges into a plain folder, and the merged model is
the adapted one (full fine-tuning with every loss is ``test_trainer``'s end-to-end test; SmolLM2 is
``test_train_smollm2``)."""

from __future__ import annotations

import pytest
import torch
from test_trainer import synthetic_records
from transformers import AutoModelForCausalLM, AutoTokenizer

from drift_train.commands.train import parse_config
from drift_train.data import DriftCollator, RenderConfig, build_dataset
from drift_train.losses import LOSS_MODES, drift_loss
from drift_train.trainer import train
from drift_train.trajectories import write_trajectories
from drift_train.weights import add_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("loss", LOSS_MODES)
def test_lora_with_every_loss_trains_and_merges(loss, tiny_model_dir, tmp_path) -> None:
    records, _ = add_weights(synthetic_records(groups=3, k=4))
    data = write_trajectories(records, tmp_path / "data.jsonl")
    out = tmp_path / "out"
    metrics = train(
        parse_config(
            [
                "--data",
                str(data),
                "--model",
                str(tiny_model_dir),
                "--loss",
                loss,
                "--use_peft",
                "--lora_r",
                "4",
                "--lora_dropout",
                "0",
                "--otr_num_samples",
                "32",
                "--learning_rate",
                "5e-3",
                "--max_steps",
                "3",
                "--per_device_train_batch_size",
                "4",
                "--save_strategy",
                "no",
                "--report_to",
                "none",
                "--disable_tqdm",
                "true",
                "--output_dir",
                str(out),
            ]
        )
    )
    assert metrics["steps"] == 3
    assert not (out / "adapter_config.json").exists()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    merged = AutoModelForCausalLM.from_pretrained(out)
    changed = [k for k, v in base.state_dict().items() if not torch.equal(merged.state_dict()[k], v)]
    assert changed and all(k.endswith("proj.weight") for k in changed)
    tokenizer = AutoTokenizer.from_pretrained(out)
    dataset = build_dataset(records, tokenizer, RenderConfig(), loss)
    batch = DriftCollator(tokenizer.pad_token_id, attention_mask=False)(list(dataset))
    with torch.no_grad():
        nll = [
            float(drift_loss(m(input_ids=batch["input_ids"]).logits, batch["labels"], None, "sft")[0])
            for m in (base, merged)
        ]
    assert nll[1] < nll[0], nll  # every mode raises the trained tokens' likelihood
