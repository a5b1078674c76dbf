"""Training throughput: DRIFT's trainer vs TRL's SFTTrainer (tiny model full, SmolLM2 LoRA), OTR step time, weights.

The tiny-model runs use the embedded tiny model, the same synthetic multi-turn conversations, the same batch size,
optimizer and number of steps, in one process one after the other, torch on ``--threads`` threads (1).
Each optimizer step is timed in wall time and in the process's CPU time; the comparisons use CPU time,
which measures the work a step needs even when other jobs share the machine (wall time is reported too).
Only steps after the first ``--warmup`` are timed; dataset preparation is outside the timing for both.

* **wsft vs TRL SFT**: input tokens (padding excluded) per second of ``DriftTrainer`` with
  ``--loss wsft`` against ``trl.SFTTrainer`` doing plain SFT on the same conversations (assistant-only
  loss, fp32, no activation checkpointing). Each side gets its best of padded and padding-free
  batches. Target: wsft / TRL >= 1.2.
* **OTR step time**: time per optimizer step of ``otr`` (K = 256 samples per position) and
  ``otr-exact`` against ``wsft``, all with padded batches (the trainer's default). Target: <= 1.15x.
* **weights**: ``drift_train.weights`` over 1 M synthetic trajectories, from records as dicts to
  weights per group. Target: <= 5 s.
* **LoRA on a real model** (``--lora-model``, default ``smollm2-135m-instruct``): ``drift train
  --use_peft --loss wsft`` against ``trl.SFTTrainer`` with a ``peft_config``, the same LoRA (r 16,
  alpha 32, dropout 0.05, all linear layers), the same conversations, ``--lora-max-length``,
  ``--lora-batch-size`` and steps, padded batches, fp32, no activation checkpointing. SmolLM2's
  template has no generation blocks, which TRL's ``assistant_only_loss`` needs, so TRL gets the
  conversations in its prompt-completion form (the history as the prompt, the last assistant reply as
  the completion): what ``drift train`` supervises by default. Target: drift / TRL >= 1.0.

Usage::

    python benchmarks/train_throughput.py                  # defaults below, prints a table
    python benchmarks/train_throughput.py --json out.json  # also save the numbers
    python benchmarks/train_throughput.py --only lora      # the SmolLM2 LoRA comparison alone
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402

from drift_train.data import DriftCollator, build_dataset  # noqa: E402
from drift_train.tiny import tiny_model_path  # noqa: E402
from drift_train.trainer import DriftConfig, DriftTrainer  # noqa: E402
from drift_train.weights import WeightConfig, add_weights, compute_weights, records_to_inputs  # noqa: E402


def conversations(n_groups: int, k: int, seed: int = 0) -> list[dict]:
    """Trajectory records of 1-3 turn arithmetic dialogues with mixed outcomes (a few hundred tokens each)."""
    rng = random.Random(seed)
    records = []
    for g in range(n_groups):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        for j in range(k):
            messages = [
                {"role": "system", "content": "Solve the problem. Give the final answer in \\boxed{}."},
                {"role": "user", "content": f"Compute {a} + {b}. Show your work."},
            ]
            rewards = {}
            for t in range(1, 4):
                guess = a + b if rng.random() < 0.4 else rng.randint(20, 2000)
                work = " ".join(
                    f"Step {s}: add the digits carefully and carry over." for s in range(rng.randint(2, 6))
                )
                messages.append(
                    {"role": "assistant", "content": f"{work} So the answer is \\boxed{{{guess}}}."}
                )
                rewards[f"t{t}"] = float(guess == a + b)
                if guess == a + b or t == 3:
                    break
                messages.append(
                    {"role": "user", "content": "Incorrect. Please think again and check each digit."}
                )
            records.append(
                {
                    "prompt_id": g,
                    "traj_idx": j,
                    "messages": messages,
                    "turn_rewards": rewards,
                    "t_star": next((int(key[1:]) for key, r in rewards.items() if r), None),
                    "answer_norms": None,
                    "format_penalty": 0.0,
                }
            )
    weighted, _ = add_weights(records)
    return weighted


class StepClock(TrainerCallback):
    """Wall time and CPU time of each optimizer step.

    On a shared machine the wall time of a step mostly measures the neighbours; the process's CPU time
    (with torch on one thread) measures the work the step needed, so the comparisons use it.
    """

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._start = (0.0, 0.0)

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])


class CountingCollator:
    """Wraps a collator and records the real (non-padding) input tokens of every batch.

    The count is the examples' own lengths, taken before collation: a padded batch without an attention
    mask cannot tell padding from text where the pad token is also a text token (SmolLM2 pads with
    ``<|im_end|>``)."""

    def __init__(self, collator) -> None:
        self.collator = collator
        self.tokens: list[int] = []

    def __call__(self, examples):
        self.tokens.append(sum(len(e["input_ids"]) for e in examples))
        return self.collator(examples)


def common_args(out: str, args: argparse.Namespace) -> dict:
    return dict(
        output_dir=out,
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=1e-4,
        optim="adamw_torch",
        save_strategy="no",
        report_to="none",
        logging_steps=10_000,
        disable_tqdm=True,
        seed=0,
        dataloader_pin_memory=False,
        train_sampling_strategy="sequential",
    )


def measure(trainer, clock: StepClock, counter: CountingCollator, warmup: int) -> dict:
    trainer.add_callback(clock)
    trainer.train()
    steps = len(clock.cpu)
    cpu, wall, tokens = clock.cpu[warmup:], clock.wall[warmup:], counter.tokens[warmup:steps]
    return {
        "tokens_per_cpu_s": sum(tokens) / sum(cpu),
        "cpu_s_per_step": sum(cpu) / len(cpu),
        "tokens_per_s": sum(tokens) / sum(wall),
        "wall_s_per_step": sum(wall) / len(wall),
        "tokens_per_step": sum(tokens) / len(tokens),
        "steps_timed": len(cpu),
    }


def run_drift(
    model_dir: Path, records: list[dict], loss: str, args: argparse.Namespace, padding_free: bool
) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = DriftConfig(
        **common_args(tempfile.mkdtemp(), args),
        model=str(model_dir),
        loss=loss,
        padding_free=padding_free,
        otr_num_samples=256,
        max_length=args.max_length,
    )
    dataset = build_dataset(records, tokenizer, config.render_config(), loss)
    # the collator DriftTrainer builds for itself, wrapped to count tokens
    collator = DriftCollator(tokenizer.pad_token_id, padding_free=padding_free, attention_mask=False)
    counter = CountingCollator(collator)
    trainer = DriftTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, data_collator=counter
    )
    return measure(trainer, StepClock(), counter, args.warmup)


def run_trl(model_dir: Path, records: list[dict], args: argparse.Namespace, padding_free: bool) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    dataset = Dataset.from_list([{"messages": r["messages"]} for r in records])
    # TRL refuses max_length with padding-free batches unless it packs; our conversations are shorter anyway
    config = SFTConfig(
        **common_args(tempfile.mkdtemp(), args),
        assistant_only_loss=True,
        max_length=None if padding_free else args.max_length,
        padding_free=padding_free,
        dataset_num_proc=1,
        # TRL defaults to bf16 and activation checkpointing; both slow a CPU down
        bf16=False,
        gradient_checkpointing=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    # the dataloader is built lazily in train(), so it picks up the counting collator
    return measure(trainer, StepClock(), counter, args.warmup)


LORA = dict(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear")


def lora_args(out: str, args: argparse.Namespace) -> dict:
    return {
        **common_args(out, args),
        "per_device_train_batch_size": args.lora_batch_size,
        "max_steps": args.lora_steps,
    }


def run_drift_lora(model_dir: str, records: list[dict], args: argparse.Namespace, padding_free: bool) -> dict:
    """``drift train --use_peft --loss wsft``: the model and adapters as ``drift train`` loads them."""
    from drift_train.trainer import load_model_and_tokenizer, model_end_token_ids

    config = DriftConfig(
        **lora_args(tempfile.mkdtemp(), args),
        model=model_dir,
        loss="wsft",
        padding_free=padding_free,
        max_length=args.lora_max_length,
        use_peft=True,
        lora_r=LORA["r"],
        lora_alpha=LORA["lora_alpha"],
        lora_dropout=LORA["lora_dropout"],
        lora_target_modules=[LORA["target_modules"]],
    )
    model, tokenizer = load_model_and_tokenizer(config)
    dataset = build_dataset(
        records, tokenizer, config.render_config(), "wsft", end_token_ids=model_end_token_ids(model)
    )
    collator = DriftCollator(tokenizer.pad_token_id, padding_free=padding_free, attention_mask=False)
    counter = CountingCollator(collator)
    trainer = DriftTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, data_collator=counter
    )
    return measure(trainer, StepClock(), counter, args.warmup)


def run_trl_lora(model_dir: str, records: list[dict], args: argparse.Namespace) -> dict:
    """TRL's ``SFTTrainer`` with the same LoRA, on the same conversations as prompt + last reply."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = []
    for r in records:
        last = max(i for i, m in enumerate(r["messages"]) if m["role"] == "assistant")
        rows.append({"prompt": r["messages"][:last], "completion": [r["messages"][last]]})
    config = SFTConfig(
        **lora_args(tempfile.mkdtemp(), args),
        completion_only_loss=True,
        max_length=args.lora_max_length,
        dataset_num_proc=1,
        bf16=False,
        gradient_checkpointing=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=LoraConfig(**LORA, task_type="CAUSAL_LM"),
        )
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    return measure(trainer, StepClock(), counter, args.warmup)


def weights_benchmark(n: int, k: int = 8) -> dict:
    """1 M synthetic trajectories (groups of k, 1-5 turns, answers) -> weights."""
    rng = random.Random(0)
    records = []
    for i in range(n):
        turns = rng.randint(1, 5)
        solved = rng.random() < 0.3
        format_error = rng.randint(0, 1)  # at turn 1, where per-turn credit charges it (answer None)
        records.append(
            {
                "prompt_id": i // k,
                "traj_idx": i % k,
                "turn_rewards": {
                    f"t{t}": (1.0 if solved and t == turns else 0.0) for t in range(1, turns + 1)
                },
                "t_star": turns if solved else None,
                "answer_norms": [
                    None if t == 0 and format_error else str(rng.randint(0, 3)) for t in range(turns)
                ],
                "format_penalty": -0.1 * format_error,
            }
        )
    started, cpu_started = time.perf_counter(), time.process_time()
    inputs = records_to_inputs(records)
    parsed = time.perf_counter()
    result = compute_weights(inputs, WeightConfig())
    done, cpu_done = time.perf_counter(), time.process_time()
    per_turn_started = time.perf_counter()
    compute_weights(records_to_inputs(records, per_turn=True), WeightConfig(per_turn=True))
    per_turn = time.perf_counter() - per_turn_started
    return {
        "trajectories": n,
        "total_s": done - started,
        "total_cpu_s": cpu_done - cpu_started,
        "parse_s": parsed - started,
        "weights_s": done - parsed,
        "per_turn_weights_s": per_turn,
        "groups": result.summary["groups"],
    }


def _table(title: str, rows: dict[str, dict]) -> Table:
    table = Table(title=title)
    for column in ("run", "tokens/CPU-s", "CPU-s/step", "tokens/wall-s", "wall-s/step"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for name, row in rows.items():
        table.add_row(
            name,
            f"{row['tokens_per_cpu_s']:,.0f}",
            f"{row['cpu_s_per_step']:.3f}",
            f"{row['tokens_per_s']:,.0f}",
            f"{row['wall_s_per_step']:.3f}",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print (and optionally save) the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", choices=["all", "tiny", "lora"], default="all", help="which comparisons to run"
    )
    parser.add_argument("--groups", type=int, default=32, help="prompt groups of synthetic conversations")
    parser.add_argument("--samples", type=int, default=8, help="trajectories per group")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=4, help="first steps not timed (tiny and LoRA runs)")
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--weights-n", type=int, default=1_000_000)
    parser.add_argument("--lora-model", default="smollm2-135m-instruct", help="model of the LoRA comparison")
    parser.add_argument("--lora-batch-size", type=int, default=4)
    parser.add_argument("--lora-steps", type=int, default=8)
    parser.add_argument("--lora-max-length", type=int, default=1024)
    parser.add_argument(
        "--lora-padding-free", action="store_true", help="also time drift's LoRA run on padding-free batches"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 is steadier on a shared machine; the same for every run)",
    )
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    console = Console()
    targets = Table(title="targets")
    for column in ("quantity", "value", "target"):
        targets.add_column(column)
    records = conversations(args.groups, args.samples)
    rows: dict[str, dict] = {}
    lora_rows: dict[str, dict] = {}
    summary: dict[str, float] = {}
    weights: dict = {}

    if args.only in ("all", "tiny"):
        model_dir = tiny_model_path()
        for name, fn in [
            ("trl-sft padded", lambda: run_trl(model_dir, records, args, padding_free=False)),
            ("drift wsft padded", lambda: run_drift(model_dir, records, "wsft", args, padding_free=False)),
            (
                "drift otr K=256 padded",
                lambda: run_drift(model_dir, records, "otr", args, padding_free=False),
            ),
            (
                "drift otr-exact padded",
                lambda: run_drift(model_dir, records, "otr-exact", args, padding_free=False),
            ),
            ("trl-sft padding-free", lambda: run_trl(model_dir, records, args, padding_free=True)),
            (
                "drift wsft padding-free",
                lambda: run_drift(model_dir, records, "wsft", args, padding_free=True),
            ),
        ]:
            rows[name] = fn()
            print(f"{name}: {json.dumps(rows[name])}", flush=True)
        weights = weights_benchmark(args.weights_n)
        best_trl = max((v["tokens_per_cpu_s"], k) for k, v in rows.items() if k.startswith("trl"))
        best_wsft = max((v["tokens_per_cpu_s"], k) for k, v in rows.items() if "wsft" in k)
        wsft_step = rows["drift wsft padded"]["cpu_s_per_step"]
        summary.update(
            {
                "wsft_vs_trl_tokens_per_cpu_s": best_wsft[0] / best_trl[0],
                "wsft_vs_trl_tokens_per_wall_s": rows[best_wsft[1]]["tokens_per_s"]
                / rows[best_trl[1]]["tokens_per_s"],
                "otr_vs_wsft_step_cpu_time": rows["drift otr K=256 padded"]["cpu_s_per_step"] / wsft_step,
                "otr_exact_vs_wsft_step_cpu_time": rows["drift otr-exact padded"]["cpu_s_per_step"]
                / wsft_step,
                "weights_1m_cpu_s": weights["total_cpu_s"],
                "weights_1m_wall_s": weights["total_s"],
            }
        )
        console.print(_table("training throughput (tiny model, CPU)", rows))
        targets.add_row(
            f"wsft ({best_wsft[1]}) / TRL ({best_trl[1]}) tokens per CPU-second",
            f"{summary['wsft_vs_trl_tokens_per_cpu_s']:.2f}x "
            f"(wall: {summary['wsft_vs_trl_tokens_per_wall_s']:.2f}x)",
            ">= 1.2x",
        )
        targets.add_row(
            "otr (K=256) / wsft CPU time per step", f"{summary['otr_vs_wsft_step_cpu_time']:.2f}x", "<= 1.15x"
        )
        targets.add_row(
            "otr-exact / wsft CPU time per step",
            f"{summary['otr_exact_vs_wsft_step_cpu_time']:.2f}x",
            "<= 1.15x",
        )
        targets.add_row(
            f"weights over {weights['trajectories']:,} trajectories",
            f"{weights['total_cpu_s']:.2f} CPU-s ({weights['total_s']:.2f} wall-s: parse "
            f"{weights['parse_s']:.2f} + weights {weights['weights_s']:.2f})",
            "<= 5 s",
        )

    if args.only in ("all", "lora"):
        from drift_train.models import resolve_model

        lora_dir = resolve_model(args.lora_model)
        runs = [
            ("trl-sft lora padded", lambda: run_trl_lora(lora_dir, records, args)),
            ("drift wsft lora padded", lambda: run_drift_lora(lora_dir, records, args, padding_free=False)),
        ]
        if args.lora_padding_free:
            runs.append(
                (
                    "drift wsft lora padding-free",
                    lambda: run_drift_lora(lora_dir, records, args, padding_free=True),
                )
            )
        for name, fn in runs:
            lora_rows[name] = fn()
            print(f"{name}: {json.dumps(lora_rows[name])}", flush=True)
        trl, ours = lora_rows["trl-sft lora padded"], lora_rows["drift wsft lora padded"]
        summary["lora_wsft_vs_trl_tokens_per_cpu_s"] = ours["tokens_per_cpu_s"] / trl["tokens_per_cpu_s"]
        summary["lora_wsft_vs_trl_tokens_per_wall_s"] = ours["tokens_per_s"] / trl["tokens_per_s"]
        console.print(_table(f"LoRA training throughput ({args.lora_model}, CPU)", lora_rows))
        targets.add_row(
            f"LoRA wsft / TRL LoRA SFT tokens per CPU-second ({args.lora_model})",
            f"{summary['lora_wsft_vs_trl_tokens_per_cpu_s']:.2f}x "
            f"(wall: {summary['lora_wsft_vs_trl_tokens_per_wall_s']:.2f}x)",
            ">= 1.0x",
        )

    console.print(targets)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "runs": rows,
                    "lora_runs": lora_rows,
                    "weights": weights,
                    "summary": summary,
                    "settings": vars(args),
                    "machine": {
                        "platform": platform.platform(),
                        "cpus": os.cpu_count(),
                        "torch": torch.__version__,
                        "threads": torch.get_num_threads(),
                        "load_average_at_end": os.getloadavg(),
                    },
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
