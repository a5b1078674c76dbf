"""Multi-turn evaluation: how often, and how fast, a model recovers from its mistakes given feedback.

Metrics (each with a standard error) from trajectory records of any env:

- ``success@t`` — share of episodes solved within ``t`` turns, ``t = 1..T``;
- ``acc_turn[t]`` — per-turn conditional accuracy: solved at turn ``t`` among episodes still unsolved
  at its start;
- ``correction_rate`` — solved eventually among episodes wrong at turn 1;
- ``mean_turns_to_success`` — among solved episodes;
- ``non_repeat_ratio`` — distinct answers / answers given, averaged over episodes with an answer;
- ``format_error_rate`` — share of replies with no extractable answer.

Each metric is ``{"value", "se", "n"}``; with no observations (``n == 0``) value and se are None.

``drift eval --model PATH --env ID --num-tasks N --out metrics.json`` rolls the model out (greedy by
default) and writes the metrics, with one row per task in ``metrics.tasks.jsonl`` beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["evaluate_model", "format_metric", "main", "metrics_table", "multiturn_metrics", "per_task_results", "plot_success_curves"]


# A metric with no observations has value and se None (JSON null): NaN would make the metrics files
# invalid JSON (RFC 8259) for strict readers such as JavaScript's JSON.parse.
def _proportion(hits: int, n: int) -> dict[str, float | None]:
    if not n:
        return {"value": None, "se": None, "n": 0}
    p = hits / n
    return {"value": p, "se": math.sqrt(p * (1 - p) / n), "n": n}


def _mean(values: Sequence[float]) -> dict[str, float | None]:
    n = len(values)
    if not n:
        return {"value": None, "se": None, "n": 0}
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return {"value": mean, "se": math.sqrt(var / n), "n": n}


def _turns(record: dict) -> list[int]:
    """Verifier bits in turn order (``{"t1": 1, ...}`` in the record)."""
    verifier = record["verifier"]
    return [int(verifier[k]) for k in sorted(verifier, key=lambda k: int(k[1:]))]


def multiturn_metrics(records: Sequence[dict], max_turns: int | None = None) -> dict[str, Any]:
    """The multi-turn metrics of a set of trajectory records (one episode each)."""
    if not records:
        raise ValueError("no trajectories to evaluate")
    bits = [_turns(r) for r in records]
    T = max_turns or max(len(b) for b in bits)
    first_success = [next((i + 1 for i, b in enumerate(bs) if b), None) for bs in bits]
    n = len(records)
    success_at = {t: _proportion(sum(1 for s in first_success if s is not None and s <= t), n) for t in range(1, T + 1)}
    acc_turn = {}
    for t in range(1, T + 1):
        at_risk = [s for s, bs in zip(first_success, bits, strict=True) if (s is None or s >= t) and len(bs) >= t]
        acc_turn[t] = _proportion(sum(1 for s in at_risk if s == t), len(at_risk))
    wrong_first = [s for s in first_success if s != 1]
    solved = [s for s in first_success if s is not None]
    ratios, answers_total, format_errors = [], 0, 0
    for r in records:
        answers = list(r.get("answer_norms") or [])
        given = [a for a in answers if a is not None]
        answers_total += len(answers)
        format_errors += len(answers) - len(given)
        if given:
            ratios.append(len(set(given)) / len(given))
    return {
        "num_episodes": n,
        "max_turns": T,
        "success_at": {str(t): v for t, v in success_at.items()},
        "acc_turn": {str(t): v for t, v in acc_turn.items()},
        "correction_rate": _proportion(sum(1 for s in wrong_first if s is not None), len(wrong_first)),
        "mean_turns_to_success": _mean([float(s) for s in solved]),
        "non_repeat_ratio": _mean(ratios),
        "format_error_rate": _proportion(format_errors, answers_total),
    }


def per_task_results(records: Sequence[dict]) -> list[dict]:
    """One row per task: samples, solved count, first successful turn of each sample."""
    by_task: dict[str, list[dict]] = {}
    for r in records:
        by_task.setdefault(str(r["task_id"]), []).append(r)
    rows = []
    for task_id, group in by_task.items():
        rows.append({
            "task_id": task_id,
            "samples": len(group),
            "solved": sum(1 for r in group if r.get("t_star") is not None),
            "t_star": [r.get("t_star") for r in group],
            "answers": [r.get("answer_norms") for r in group],
        })
    return rows


def format_metric(m: dict) -> str:
    """``value ± se`` of a metric dict (``—`` when it has no observations)."""
    return "—" if m["n"] == 0 else f"{m['value']:.3f} ± {m['se']:.3f}"


def metrics_table(rows: dict[str, dict], title: str = "multi-turn evaluation"):
    """A rich table with one row per named metrics dict (success@1..T, correction, repeats, format)."""
    from rich.table import Table

    T = max(m["max_turns"] for m in rows.values())
    table = Table(title=title)
    table.add_column("model")
    for t in range(1, T + 1):
        table.add_column(f"success@{t}", justify="right")
    for col in ("correction", "non-repeat", "format err"):
        table.add_column(col, justify="right")
    for name, m in rows.items():
        cells = [format_metric(m["success_at"][str(t)]) if str(t) in m["success_at"] else "—" for t in range(1, T + 1)]
        cells += [format_metric(m["correction_rate"]), format_metric(m["non_repeat_ratio"]), format_metric(m["format_error_rate"])]
        table.add_row(name, *cells)
    return table


def plot_success_curves(metrics: dict[str, dict], path: str | os.PathLike, title: str = "") -> Path:
    """A PNG of success-within-t curves (with ±1 s.e. bands), one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, m in metrics.items():
        ts = sorted(int(t) for t in m["success_at"])
        values = [m["success_at"][str(t)]["value"] for t in ts]
        ses = [m["success_at"][str(t)]["se"] for t in ts]
        ax.plot(ts, values, marker="o", label=name)
        ax.fill_between(ts, [v - s for v, s in zip(values, ses, strict=True)],
                        [v + s for v, s in zip(values, ses, strict=True)], alpha=0.15)
    ax.set_xlabel("turns t")
    ax.set_ylabel("success within t turns")
    ax.set_xticks(sorted({int(t) for m in metrics.values() for t in m["success_at"]}))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def evaluate_model(model: Any, env_id: str, *, env_kwargs: dict | None = None, num_tasks: int = 100,
                   samples: int = 1, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 64,
                   max_turns: int | None = None, backend: str = "hf", seed: int = 0, batch_size: int = 256,
                   task_offset: int = 0, out_trajectories: str | Path | None = None, progress: bool = True,
                   policy: Any = None) -> tuple[dict, list[dict]]:
    """Roll ``model`` out in ``env_id`` and return ``(metrics, records)``; greedy when temperature is 0.

    ``policy`` may be an already built backend (then ``model``/``backend`` only label the run).
    """
    from drift_train.policies import SamplingParams, make_policy
    from drift_train.rollout import RolloutConfig, rollout

    config = RolloutConfig(
        env_id=env_id, env_kwargs=dict(env_kwargs or {}), num_tasks=num_tasks, samples=samples,
        task_offset=task_offset, max_turns=max_turns, seed=seed, batch_size=batch_size,
        sampling=SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens),
    )
    owned = policy is None
    policy = policy if policy is not None else make_policy(backend, model)
    try:
        records, _ = rollout(policy, config, out_trajectories, overwrite=True, progress=progress)
    finally:
        if owned:
            policy.close()
    return multiturn_metrics(records, _turn_budget(env_id, config.effective_env_kwargs)), records


def _turn_budget(env_id: str, env_kwargs: dict) -> int | None:
    """The env's ``max_turns``: success@1..T must run to the budget even when every episode ended sooner."""
    if env_kwargs.get("max_turns") is not None:
        return int(env_kwargs["max_turns"])
    from drift_train.rollout import make_env

    env = make_env(env_id, env_kwargs)
    try:
        budget = getattr(env.unwrapped, "max_turns", None)
    finally:
        env.close()
    return int(budget) if budget is not None else None


def main(argv: list[str] | None = None) -> int:
    """``drift eval``: roll a model out in an env and save its multi-turn metrics."""
    parser = argparse.ArgumentParser(prog="drift eval", description="Multi-turn evaluation of a model in an env.")
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--env", required=True, help="registered env id, e.g. drift/MathFeedback-v0")
    parser.add_argument("--env-kwargs", default="{}", help="JSON object of env kwargs")
    parser.add_argument("--num-tasks", type=int, default=100)
    parser.add_argument("--task-offset", type=int, default=0, help="first task index (held-out ranges)")
    parser.add_argument("--samples", type=int, default=1, help="episodes per task")
    parser.add_argument("--max-turns", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--backend", default="hf", choices=("hf", "openai", "vllm"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="metrics JSON; per-task rows go to <out stem>.tasks.jsonl")
    args = parser.parse_args(argv)
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as e:
        parser.error(f"--env-kwargs is not valid JSON: {e}")
    if not isinstance(env_kwargs, dict):
        parser.error("--env-kwargs must be a JSON object")
    from rich.console import Console

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    metrics, records = evaluate_model(
        args.model, args.env, env_kwargs=env_kwargs, num_tasks=args.num_tasks, samples=args.samples,
        temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
        max_turns=args.max_turns, backend=args.backend, seed=args.seed, batch_size=args.batch_size,
        task_offset=args.task_offset, out_trajectories=out.with_name(out.stem + ".trajectories.jsonl"),
    )
    metrics["model"], metrics["env"], metrics["env_kwargs"] = args.model, args.env, env_kwargs
    out.write_text(json.dumps(metrics, indent=2))
    tasks_path = out.with_name(out.stem + ".tasks.jsonl")
    with open(tasks_path, "w") as f:
        for row in per_task_results(records):
            f.write(json.dumps(row) + "\n")
    Console().print(metrics_table({Path(args.model).name or args.model: metrics}, title=f"{args.env}"))
    print(f"metrics -> {out}\nper-task results -> {tasks_path}")
    return 0
