"""DRIFT vs online multi-turn RL on the tiny model: success and cost, over several seeds.

    python benchmarks/drift_vs_online_rl.py --seeds 0 1 2 --out-dir runs/drift_vs_online_rl

For each seed, from the same pretrained tiny reference (the quickstart's, cached):
- reference rollouts (K per task) -> DRIFT weights -> fine-tune with sft, rft, wsft (DRIFT), drift-otr, otr;
- the online RL baseline (drift_train.online_rl: GRPO-style, rollouts from the current policy each step);
- every model evaluated on the same held-out tasks.
Reported per method: mean ± std over seeds of success@1 and success@T, wall-clock seconds (DRIFT methods:
their share of the rollouts plus training; online RL: its whole loop) and generated tokens. The claim tested:
DRIFT reaches online RL's success@T at <= 1/3 of its wall-clock. Results: results.json and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from drift_train.online_rl import OnlineRLConfig, train_online_rl
from drift_train.quickstart import (
    QuickstartConfig,
    evaluate_stage,
    pretrain_reference,
    rollout_stage,
    train_stage,
)

METHODS = ("sft", "rft", "wsft", "drift-otr", "otr")


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    """Run every method for every seed and write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", help="QuickstartConfig YAML (env, sizes); defaults to the quickstart's")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), help="DRIFT-family losses to run (none: RL only)")
    parser.add_argument("--rl-steps", type=int, default=40)
    parser.add_argument("--rl-tasks-per-step", type=int, default=32)
    parser.add_argument("--rl-learning-rate", type=float, default=None,
                        help="online RL learning rate (default: the DRIFT fine-tuning rate of the config)")
    parser.add_argument("--out-dir", default="runs/drift_vs_online_rl")
    args = parser.parse_args()
    base = QuickstartConfig.from_yaml(args.config) if args.config else QuickstartConfig()
    root = Path(args.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    console = Console()
    reference = Path(base.model) if base.model else pretrain_reference(base, console)
    runs: dict[str, list[dict]] = {}
    T = 0

    def record(name: str, metrics: dict, wall_s: float, tokens: int) -> None:
        nonlocal T
        T = metrics["max_turns"]
        runs.setdefault(name, []).append({
            "success_at_1": metrics["success_at"]["1"]["value"], "success_at_T": metrics["success_at"][str(T)]["value"],
            "wall_s": wall_s, "generated_tokens": tokens})

    for seed in args.seeds:
        out = root / f"seed{seed}"
        out.mkdir(parents=True, exist_ok=True)
        console.rule(f"[bold]seed {seed}")
        record("reference", evaluate_stage(base, "reference", reference, out, seed + 1), 0.0, 0)
        stage = rollout_stage(base, reference, out, seed) if args.methods else None
        for method in args.methods:
            model_dir, train_s = train_stage(base, reference, stage["data"], method, out, seed)
            # every DRIFT-family method pays for the whole rollout set once plus its own training
            record(method, evaluate_stage(base, method, model_dir, out, seed + 1), stage["seconds"] + train_s,
                   stage["generated_tokens"])
        rl = train_online_rl(OnlineRLConfig(
            env_id=base.env_id, env_kwargs={**base.env_kwargs, "split": "train"}, model=str(reference),
            output_dir=str(out / "model_online_rl"), steps=args.rl_steps, tasks_per_step=args.rl_tasks_per_step,
            samples=base.samples, temperature=base.rollout_temperature, max_new_tokens=base.max_new_tokens,
            learning_rate=args.rl_learning_rate or base.learning_rate, seed=seed))
        record("online_rl", evaluate_stage(base, "online_rl", out / "model_online_rl", out, seed + 1), rl["wall_s"],
               rl["generated_tokens"])
        (root / "runs.json").write_text(json.dumps(runs, indent=2))

    table = Table(title=f"DRIFT vs online RL, {base.env_id}, seeds {args.seeds} (mean ± std)")
    for col in ("method", "success@1", f"success@{T}", "wall-clock (s)", "generated tokens"):
        table.add_column(col, justify="right")
    summary = {}
    for name, rows in runs.items():
        s1, sT = _mean_std([r["success_at_1"] for r in rows]), _mean_std([r["success_at_T"] for r in rows])
        wall, tokens = _mean_std([r["wall_s"] for r in rows]), _mean_std([r["generated_tokens"] for r in rows])
        summary[name] = {"success_at_1": s1, "success_at_T": sT, "wall_s": wall, "generated_tokens": tokens}
        table.add_row(name, f"{s1[0]:.3f} ± {s1[1]:.3f}", f"{sT[0]:.3f} ± {sT[1]:.3f}", f"{wall[0]:.0f} ± {wall[1]:.0f}",
                      f"{tokens[0]:.0f}")
    console.print(table)
    claim = {}
    if "wsft" in summary and "online_rl" in summary:
        drift, rl = summary["wsft"], summary["online_rl"]
        claim = {"drift_success_at_T": drift["success_at_T"][0], "online_rl_success_at_T": rl["success_at_T"][0],
                 "drift_reaches_online_rl": drift["success_at_T"][0] >= rl["success_at_T"][0],
                 "wall_clock_ratio": drift["wall_s"][0] / rl["wall_s"][0],
                 "token_ratio": drift["generated_tokens"][0] / max(rl["generated_tokens"][0], 1)}
        console.print(f"DRIFT (wsft) success@{T} {claim['drift_success_at_T']:.3f} vs online RL "
                      f"{claim['online_rl_success_at_T']:.3f}; wall-clock ratio {claim['wall_clock_ratio']:.2f} "
                      f"(target <= 0.33); generated-token ratio {claim['token_ratio']:.2f}")
    (root / "results.json").write_text(json.dumps({
        "config": asdict(base), "seeds": args.seeds, "rl_steps": args.rl_steps,
        "rl_learning_rate": args.rl_learning_rate or base.learning_rate,
        "rl_tasks_per_step": args.rl_tasks_per_step, "runs": runs, "summary": summary, "claim": claim,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2))


if __name__ == "__main__":
    main()
