"""Training scale-out on CPU: ``accelerate launch`` with FSDP2 and DeepSpeed configs, LoRA under DDP.

Each launch runs one SGD step (lr 1, no clipping) of ``drift_train.trainer`` on 2 CPU processes over
gloo and compares the update to the same step in one process. The two ranks get different numbers
of supervised tokens, so a per-rank normaliser (or gradients summed instead of averaged) would show.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_trainer import _load_state, assert_same_update, synthetic_records
from transformers import AutoModelForCausalLM

from drift_train.commands.train import parse_config
from drift_train.trainer import train
from drift_train.trajectories import write_trajectories
from drift_train.weights import WeightConfig, add_weights

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "examples" / "accelerate"
HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: the tiny model on one thread


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    records, _ = add_weights(synthetic_records(), WeightConfig(per_turn=True))
    records = records[:8]
    halves = [
        sum(len(m["content"]) for r in part for m in r["messages"][-1:])
        for part in (records[:4], records[4:])
    ]
    assert halves[0] != halves[1]  # the ranks' token counts differ
    return write_trajectories(records, tmp_path_factory.mktemp("scale-out") / "data.jsonl")


def _flags(data: Path, model: Path, *extra: str) -> list[str]:
    return [
        "--data",
        str(data),
        "--model",
        str(model),
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
        *extra,
    ]


def _launch(command: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _accelerate(config: str, flags: list[str], cwd: Path) -> str:
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(CONFIGS / config),
        "--main_process_port",
        "0",
        "-m",
        "drift_train.commands.train",
        *flags,
        "--per_device_train_batch_size",
        "4",
    ]
    return _launch(command, cwd)


@pytest.fixture(scope="module")
def single_update(data_file, tiny_model_dir, tmp_path_factory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("single")
    metrics = train(
        parse_config(
            [
                *_flags(data_file, tiny_model_dir),
                "--output_dir",
                str(out),
                "--per_device_train_batch_size",
                "8",
            ]
        )
    )
    assert metrics["steps"] == 1 and metrics["parallelism"] == "single"
    base, single = _load_state(tiny_model_dir), _load_state(out)
    return {k: single[k] - base[k] for k in base}


def _update(folder: Path, base_dir: Path) -> dict[str, torch.Tensor]:
    base, trained = _load_state(base_dir), _load_state(folder)
    assert set(trained) == set(base)
    return {k: trained[k] - base[k] for k in base}


def test_accelerate_fsdp2_on_two_cpu_processes_equals_one_process(
    data_file, tiny_model_dir, single_update, tmp_path
) -> None:
    out = tmp_path / "fsdp"
    stdout = _accelerate(
        "fsdp_cpu.yaml", [*_flags(data_file, tiny_model_dir), "--output_dir", str(out)], tmp_path
    )
    # really sharded: without DriftTrainer's fix accelerate runs this config as plain DDP on CPU
    assert "FSDP2 x2" in stdout, stdout[-2000:]
    assert (out / "model.safetensors").is_file() and not list(out.glob("pytorch_model_fsdp*"))
    AutoModelForCausalLM.from_pretrained(out)  # a plain model folder
    assert_same_update(_update(out, tiny_model_dir), single_update)


def test_lora_under_two_process_ddp_equals_one_process(data_file, tiny_model_dir, tmp_path) -> None:
    lora = ["--use_peft", "--lora_r", "4", "--lora_dropout", "0"]  # dropout would differ between the runs
    flags = _flags(data_file, tiny_model_dir, *lora)
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
    stdout = _launch(command, tmp_path)
    assert "DDP (gloo) x2" in stdout, stdout[-2000:]
    assert not (tmp_path / "ddp" / "adapter_config.json").exists()  # merged: a plain model folder
    train(
        parse_config([*flags, "--output_dir", str(tmp_path / "single"), "--per_device_train_batch_size", "8"])
    )
    ddp, single = _update(tmp_path / "ddp", tiny_model_dir), _update(tmp_path / "single", tiny_model_dir)
    assert [k for k in ddp if ddp[k].abs().max() > 0] and all(
        "proj" in k for k in ddp if ddp[k].abs().max() > 0
    )
    assert_same_update(ddp, single)


@pytest.mark.skipif(not HAS_DEEPSPEED, reason="DeepSpeed is not installed (pip install deepspeed)")
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_on_two_cpu_processes_equals_one_process(
    stage, data_file, tiny_model_dir, single_update, tmp_path
) -> None:
    out = tmp_path / f"zero{stage}"
    stdout = _accelerate(
        f"deepspeed_zero{stage}.yaml",
        [*_flags(data_file, tiny_model_dir), "--output_dir", str(out)],
        tmp_path,
    )
    assert f"DeepSpeed ZeRO-{stage} x2" in stdout, stdout[-2000:]
    assert_same_update(_update(out, tiny_model_dir), single_update)
