"""What recording token ids costs and what rendering from them saves.

Two measurements, each side by side in one run on the embedded tiny model (and any ``--model``; hf backend,
``drift/MathFeedback-v0``, hint feedback, 3 turns):

* **rollout**: the same rollout (same seeds, so the same replies) with ``record_tokens`` on and off,
  alternated ``--repeats`` times; generated tokens per second of CPU time, and bytes per trajectory
  of the JSONL line (with ids: the ``tokens`` field, delta-encoded contexts).
* **render**: records per second of ``build_dataset`` (``assistant_turns="all"``) on the id path vs
  the text path (the same records with ``tokens`` removed, so the chat template is rendered and
  tokenised), for the character-level tokenizer and the byte-level BPE (``--tokenizer bpe``).

Usage::

    python benchmarks/token_ids.py                  # prints the tables
    python benchmarks/token_ids.py --json out.json  # also saves the numbers
    python benchmarks/token_ids.py --model smollm2-135m-instruct  # and a row for a real model (its BPE, ChatML)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from drift_train.data import RenderConfig, build_dataset  # noqa: E402
from drift_train.models import resolve_model  # noqa: E402
from drift_train.policies import SamplingParams, make_policy  # noqa: E402
from drift_train.rollout import RolloutConfig, rollout  # noqa: E402
from drift_train.tiny import build_tiny_model  # noqa: E402

ENV_ID = "drift/MathFeedback-v0"
ENV_KWARGS = {"difficulty": "easy", "feedback": "hint", "max_turns": 3}


def measure_rollout(model_dir: Path, args: argparse.Namespace) -> dict:
    """tokens/s (CPU clock) and bytes per trajectory with and without ids, alternating runs."""
    policy = make_policy("hf", str(model_dir), batch_size=64)
    results: dict[str, list] = {"ids": [], "text": []}
    sizes: dict[str, float] = {}
    for _ in range(args.repeats):
        for mode in ("ids", "text"):
            config = RolloutConfig(
                env_id=ENV_ID,
                env_kwargs=ENV_KWARGS,
                num_tasks=args.tasks,
                samples=args.samples,
                seed=0,
                batch_size=64,
                record_tokens=mode == "ids",
                sampling=SamplingParams(temperature=1.0, max_new_tokens=args.max_new_tokens),
            )
            started = time.process_time()
            records, stats = rollout(policy, config)
            seconds = time.process_time() - started
            results[mode].append(stats.generated_tokens / seconds)
            sizes[mode] = statistics.mean(len(json.dumps(r, ensure_ascii=False)) + 1 for r in records)
            sizes[f"{mode}_turns"] = statistics.mean(len(r["turn_rewards"]) for r in records)
            if mode == "ids":
                sizes["tokens_field"] = statistics.mean(len(json.dumps(r["tokens"])) for r in records)
                full = [sum(len(json.dumps(t)) for t in _full_contexts(r)) for r in records]
                sizes["tokens_field_without_deltas"] = statistics.mean(full)
                kept = records
    policy.close()
    return {
        "tokens_per_s": {k: statistics.median(v) for k, v in results.items()},
        "bytes": sizes,
        "records": kept,
    }


def _full_contexts(record: dict) -> list[dict]:
    """The tokens field as it would be stored with a full prompt_ids on every turn (no deltas)."""
    from drift_train.tokens import decode_tokens

    return [
        {"completion_ids": t.completion, "finish_reason": t.finish_reason, "prompt_ids": t.context}
        for t in decode_tokens(record["tokens"])
    ]


def measure_render(tokenizer, records: list[dict], repeats: int) -> dict:
    """records/s of build_dataset on the id path and the text path (median of ``repeats``)."""
    plain = [{k: v for k, v in r.items() if k != "tokens"} for r in records]
    out = {}
    for mode, data in (("ids", records), ("text", plain)):
        rates = []
        for _ in range(repeats):
            started = time.process_time()
            dataset = build_dataset(data, tokenizer, RenderConfig(assistant_turns="all"), "sft")
            rates.append(len(data) / (time.process_time() - started))
        out[mode] = statistics.median(rates)
        out[f"{mode}_supervised_tokens"] = dataset.stats.supervised_tokens
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="also measure this model (any drift rollout --model: smollm2-135m-instruct, a folder, a .gguf file)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    console = Console(width=160)
    report: dict = {"machine": platform.processor() or platform.machine(), "args": vars(args)}
    kinds = ["char", "bpe", *args.model]
    with tempfile.TemporaryDirectory() as tmp:
        for tokenizer_kind in kinds:
            if tokenizer_kind in ("char", "bpe"):
                folder = build_tiny_model(Path(tmp) / tokenizer_kind, tokenizer=tokenizer_kind)
            else:
                folder = Path(resolve_model(tokenizer_kind))
            measured = measure_rollout(folder, args)
            render = measure_render(
                AutoTokenizer.from_pretrained(folder), measured.pop("records"), args.repeats
            )
            report[tokenizer_kind] = {**measured, "render_records_per_s": render}
    table = Table(title=f"token ids: {args.tasks} tasks x {args.samples} samples, {ENV_ID} {ENV_KWARGS}")
    for column in (
        "tokenizer",
        "rollout tok/s ids",
        "rollout tok/s text",
        "ratio",
        "bytes/traj ids",
        "bytes/traj text",
        "render rec/s ids",
        "render rec/s text",
        "render ratio",
    ):
        table.add_column(column, justify="right")
    for kind in kinds:
        r = report[kind]
        tps, size, render = r["tokens_per_s"], r["bytes"], r["render_records_per_s"]
        table.add_row(
            kind,
            f"{tps['ids']:,.0f}",
            f"{tps['text']:,.0f}",
            f"{tps['ids'] / tps['text']:.3f}",
            f"{size['ids']:,.0f}",
            f"{size['text']:,.0f}",
            f"{render['ids']:,.0f}",
            f"{render['text']:,.0f}",
            f"{render['ids'] / render['text']:.2f}x",
        )
    console.print(table)
    for kind in kinds:
        size = report[kind]["bytes"]
        console.print(
            f"{kind}: tokens field {size['tokens_field']:,.0f} bytes/trajectory delta-encoded, "
            f"{size['tokens_field_without_deltas']:,.0f} with a full context every turn; "
            f"{size['ids_turns']:.2f} turns/trajectory"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
