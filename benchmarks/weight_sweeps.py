"""β and γ sweeps on ONE stored rollout set: every point re-weighted, trained and evaluated, no new rollouts.

    python benchmarks/weight_sweeps.py --setting quickstart --out-dir runs/weight_sweeps/quickstart
    python benchmarks/weight_sweeps.py --setting hint5 --out-dir runs/weight_sweeps/hint5

The experiment no online method can offer: the reference's rollouts are collected once (``rollouts.jsonl``,
reused when present), then for each β (at γ = 0.9) and each γ (at β = 0.1) the same file is re-weighted
(:func:`drift_train.weights.add_weights`), the reference is fine-tuned with DRIFT's weighted SFT (``wsft``),
and the model is evaluated on the held-out tasks. RFT (train on successes only, equal weights) and SFT
(everything, equal weights) are trained on the same file as the two ends: β → ∞ is SFT, small β puts all of
a group's weight on its best trajectory (best-of-group, close to RFT where one success per group exists).

Every point reports success@1 and success@T with the s.e. clustered by task, its difference to RFT with
the paired s.e. over the same tasks (``drift_train.evaluate``), the weight diagnostics (ESS), and the CPU
time (``time.process_time``, torch on one thread) of its training. Settings: ``quickstart`` (the quickstart's
env: hint feedback, 3 turns) and ``hint5`` (hint feedback, 5 turns: successes spread over more turns, so the
return separates a fast solver from a slow one and weights can differ from RFT's 0/1 filter). Both use the
quickstart's cached pretrained reference. Results: ``results.json`` and ``weight_sweeps.png`` (one figure).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

SETTINGS = {
    "quickstart": {},
    "hint5": {"env_kwargs": {"difficulty": "tiny", "feedback": "hint", "max_turns": 5, "system_prompt": ""}},
}
BETAS = (0.01, 0.03, 0.1, 0.3, 1.0, 10.0)
GAMMAS = (0.5, 0.9, 1.0)


def _point(
    config,
    reference: Path,
    records: list[dict],
    out: Path,
    name: str,
    method: str,
    seed: int,
    weight_config=None,
) -> dict:
    """Weight (wsft only), train, evaluate one point; returns its metrics, diagnostics and CPU seconds."""
    from drift_train.quickstart import evaluate_stage, train_stage
    from drift_train.trajectories import write_trajectories
    from drift_train.weights import WeightConfig, add_weights

    done = out / f"point_{name}.json"
    if done.exists():  # resumable: a point is trained once
        return json.loads(done.read_text())
    weighted, summary = add_weights(records, weight_config or WeightConfig())
    data = write_trajectories(weighted, out / f"data_{name}.jsonl")
    started = time.process_time()
    model_dir, _ = train_stage(config, reference, data, method, out / name, seed)
    train_cpu = time.process_time() - started
    metrics = evaluate_stage(config, name, model_dir, out, seed + 1)
    point = {
        "name": name,
        "method": method,
        "weights": summary if method == "wsft" else None,
        "metrics": metrics,
        "train_cpu_s": train_cpu,
    }
    done.write_text(json.dumps(point, indent=2))
    (data).unlink()  # the weighted copy is re-derivable from rollouts.jsonl
    return point


def run_setting(
    setting: str, out: Path, betas, gammas, seed: int, eval_tasks: int | None, train_seed: int | None = None
) -> dict:
    """One setting's sweeps; writes ``results.json`` under ``out``. ``seed`` draws the rollouts (when
    ``out/rollouts.jsonl`` is not there yet), ``train_seed`` (default ``seed``) the training and evaluation."""
    import torch
    from rich.console import Console

    from drift_train.evaluate import paired_differences
    from drift_train.policies import make_policy
    from drift_train.quickstart import (
        QuickstartConfig,
        evaluate_stage,
        pretrain_reference,
        reference_rollout_config,
    )
    from drift_train.rollout import rollout
    from drift_train.trajectories import read_trajectories
    from drift_train.weights import WeightConfig

    torch.set_num_threads(1)
    console = Console()
    base = QuickstartConfig()
    reference = pretrain_reference(base, console)  # the quickstart's, cached: pretrained on its env
    config = replace(base, **SETTINGS[setting], model=str(reference))
    if eval_tasks:
        config = replace(config, eval_tasks=eval_tasks)
    out.mkdir(parents=True, exist_ok=True)
    rollouts = out / "rollouts.jsonl"
    rollout_cpu = None
    if not rollouts.exists():
        started = time.process_time()
        policy = make_policy("hf", str(reference), batch_size=256)
        try:
            rollout(policy, reference_rollout_config(config, seed), rollouts, overwrite=True, progress=True)
        finally:
            policy.close()
        rollout_cpu = time.process_time() - started
    records = list(read_trajectories(rollouts))
    rollout_seed = (
        records[0]["meta"].get("seed") if records and isinstance(records[0].get("meta"), dict) else seed
    )
    seed = seed if train_seed is None else train_seed
    T = config.env_kwargs["max_turns"]
    ref_metrics = evaluate_stage(config, "reference", reference, out, seed + 1)
    points = {
        "rft": _point(config, reference, records, out, "rft", "rft", seed),
        "sft": _point(config, reference, records, out, "sft", "sft", seed),
    }
    sweeps: dict[str, list[dict]] = {"beta": [], "gamma": []}
    for beta in betas:
        name = f"wsft_beta{beta:g}_gamma0.9"
        points[name] = _point(config, reference, records, out, name, "wsft", seed, WeightConfig(beta=beta))
        sweeps["beta"].append({"beta": beta, "gamma": 0.9, "point": name})
    for gamma in gammas:
        name = f"wsft_beta0.1_gamma{gamma:g}"
        points[name] = _point(
            config, reference, records, out, name, "wsft", seed, WeightConfig(beta=0.1, gamma=gamma)
        )
        sweeps["gamma"].append({"beta": 0.1, "gamma": gamma, "point": name})
    rft_records = list(read_trajectories(out / "eval_rft.jsonl"))
    for name, point in points.items():  # paired over the same held-out tasks and eval seed
        mine = list(read_trajectories(out / f"eval_{name}.jsonl"))
        d = paired_differences(mine, rft_records, T)
        point["vs_rft"] = {"success_at_1": d["success_at"]["1"], "success_at_T": d["success_at"][str(T)]}
    result = {
        "setting": setting,
        "env_id": config.env_id,
        "env_kwargs": config.env_kwargs,
        "max_turns": T,
        "eval_tasks": config.eval_tasks,
        "rollout_tasks": config.rollout_tasks,
        "samples": config.samples,
        "train_seed": seed,
        "rollout_seed": rollout_seed,
        "reference_model": str(reference),
        "rollout_cpu_s": rollout_cpu,
        "reference": ref_metrics,
        "points": points,
        "sweeps": sweeps,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    plot_sweeps(result, out / "weight_sweeps.png")
    _print(result, console)
    return result


def plot_sweeps(result: dict, path: Path) -> Path:
    """β (log x) and γ panels, success@1 and success@T with ±1 clustered s.e. error bars; RFT, SFT and the
    reference as horizontal bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = result["max_turns"]
    points = result["points"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100, sharey=True)
    for ax, knob in zip(axes, ("beta", "gamma"), strict=True):
        xs = [p[knob] for p in result["sweeps"][knob]]
        for key, label, color in (("1", "success@1", "tab:blue"), (str(T), f"success@{T}", "tab:orange")):
            ys = [points[p["point"]]["metrics"]["success_at"][key]["value"] for p in result["sweeps"][knob]]
            es = [
                points[p["point"]]["metrics"]["success_at"][key]["se"] or 0.0 for p in result["sweeps"][knob]
            ]
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, color=color, label=f"DRIFT wsft {label}")
            for name, style in (("rft", "--"), ("sft", ":")):
                m = points[name]["metrics"]["success_at"][key]
                ax.axhline(
                    m["value"],
                    color=color,
                    linestyle=style,
                    linewidth=1,
                    label=f"{name.upper()} {label}" if knob == "beta" else None,
                )
                ax.axhspan(m["value"] - (m["se"] or 0), m["value"] + (m["se"] or 0), color=color, alpha=0.06)
            ref = result["reference"]["success_at"][key]["value"]
            ax.axhline(
                ref,
                color=color,
                linestyle="-.",
                linewidth=0.8,
                alpha=0.6,
                label=f"reference {label}" if knob == "beta" else None,
            )
        if knob == "beta":
            ax.set_xscale("log")
            ax.set_xlabel("β (γ = 0.9)   small β: best-of-group, β → ∞: SFT")
        else:
            ax.set_xlabel("γ (β = 0.1)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out success (± s.e., clustered by task)")
    axes[0].legend(fontsize=7, loc="lower left", ncol=2)
    fig.suptitle(
        f"{result['setting']}: {result['env_kwargs'].get('feedback')} feedback, {T} turns; one rollout set "
        f"({result['rollout_tasks']} tasks × {result['samples']}), {result['eval_tasks']} held-out tasks",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _print(result: dict, console) -> None:
    from rich.table import Table

    from drift_train.evaluate import format_metric

    T = result["max_turns"]
    table = Table(
        title=f"weight sweeps, {result['setting']} (± s.e. clustered by task; Δ vs RFT ± paired s.e.)"
    )
    for col in ("point", "success@1", f"success@{T}", "Δ@1 vs RFT", f"Δ@{T} vs RFT", "ESS/K", "train CPU s"):
        table.add_column(col, justify="right")
    for name, p in result["points"].items():
        m, d = p["metrics"]["success_at"], p["vs_rft"]
        ess = f"{p['weights']['ess_fraction_mean']:.2f}" if p["weights"] else "—"
        table.add_row(
            name,
            format_metric(m["1"]),
            format_metric(m[str(T)]),
            format_metric(d["success_at_1"]),
            format_metric(d["success_at_T"]),
            ess,
            f"{p['train_cpu_s']:.0f}",
        )
    console.print(table)


def main() -> None:
    """Run the sweeps of one or more settings."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="quickstart")
    parser.add_argument("--betas", type=float, nargs="+", default=list(BETAS))
    parser.add_argument("--gammas", type=float, nargs="*", default=list(GAMMAS))
    parser.add_argument("--seed", type=int, default=0, help="seed of the rollouts")
    parser.add_argument(
        "--train-seed",
        type=int,
        default=None,
        help="seed of training and evaluation (default --seed); with a copy of another run's "
        "rollouts.jsonl in --out-dir, the same rollouts trained again with another seed",
    )
    parser.add_argument(
        "--eval-tasks", type=int, default=None, help="held-out tasks (default: the quickstart's 500)"
    )
    parser.add_argument("--out-dir", default=None, help="default runs/weight_sweeps/SETTING")
    args = parser.parse_args()
    out = Path(args.out_dir or f"runs/weight_sweeps/{args.setting}")
    run_setting(args.setting, out, args.betas, args.gammas, args.seed, args.eval_tasks, args.train_seed)


if __name__ == "__main__":
    main()
