"""Leaderboard: several models x several envs -> leaderboard.json, a Markdown table and a PNG of curves.

    python benchmarks/leaderboard.py \\
        --model reference=runs/quickstart/model_reference --model drift=runs/quickstart/model_wsft \\
        --env drift/MathFeedback-v0 --env-kwargs '{"difficulty": "easy", "feedback": "hint", "max_turns": 3}' \\
        --num-tasks 500 --out-dir runs/leaderboard

``--env`` and ``--env-kwargs`` pair up in order (a missing ``--env-kwargs`` means ``{}``). Rows are sorted
by success@T within each env; the PNG has one panel of success-within-t curves per env.

Every ``±`` is a standard error clustered by task (``drift_train.evaluate``: the ``--samples`` episodes of
one task are not independent). Every model runs on the same tasks, so its gap to the env's top model is
reported as a paired difference, ``Δ success@T vs #1``, with the paired s.e. of the per-task differences
(``vs_top`` in ``leaderboard.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from drift_train.commands._args import DataclassArgumentParser
from drift_train.commands.rollout import ROLLOUT_EXCLUDED, ROLLOUT_OPTIONS
from drift_train.evaluate import eval_config, evaluate_model, format_metric, metrics_table, paired_differences
from drift_train.policies import make_policy
from drift_train.rollout import RolloutConfig


def add_paired_gaps(entries: list[dict], records_of: dict[str, list[dict]]) -> None:
    """Set ``vs_top`` on the entries of one env: success@T minus the top model's, paired over the same
    tasks (None for the top model itself)."""
    top = max(entries, key=lambda e: e["success_at_T"])
    for e in entries:
        T = e["metrics"]["max_turns"]
        e["vs_top"] = (
            None
            if e is top
            else paired_differences(records_of[e["model"]], records_of[top["model"]], T)["success_at"][str(T)]
        )


def markdown_table(entries: list[dict]) -> str:
    """One Markdown table per env, rows sorted by success@T (best first)."""
    lines = []
    for env in dict.fromkeys(e["env"] for e in entries):
        rows = sorted((e for e in entries if e["env"] == env), key=lambda e: -e["success_at_T"])
        T = rows[0]["metrics"]["max_turns"]
        lines += [
            f"### {env}",
            "",
            "| rank | model | "
            + " | ".join(f"success@{t}" for t in range(1, T + 1))
            + f" | correction | non-repeat | format err | Δ success@{T} vs #1 (paired) |",
            "|---|---|" + "---|" * (T + 4),
        ]
        for rank, e in enumerate(rows, start=1):
            m = e["metrics"]
            cells = [format_metric(m["success_at"][str(t)]) for t in range(1, T + 1)]
            cells += [
                format_metric(m["correction_rate"]),
                format_metric(m["non_repeat_ratio"]),
                format_metric(m["format_error_rate"]),
                "—" if e.get("vs_top") is None else format_metric(e["vs_top"]),
            ]
            lines.append(f"| {rank} | {e['model']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(entries: list[dict], path: Path) -> Path:
    """One panel per env with a success-within-t curve per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(e["env"] for e in entries))
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 4), dpi=120, squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for e in sorted((e for e in entries if e["env"] == env), key=lambda e: -e["success_at_T"]):
            ts = sorted(int(t) for t in e["metrics"]["success_at"])
            ax.errorbar(
                ts,
                [e["metrics"]["success_at"][str(t)]["value"] for t in ts],
                yerr=[e["metrics"]["success_at"][str(t)]["se"] for t in ts],
                marker="o",
                capsize=3,
                label=e["model"],
            )
        ax.set_title(env)
        ax.set_xlabel("turns t")
        ax.set_ylabel("success within t turns")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def build_parser() -> DataclassArgumentParser:
    """The leaderboard's flags: the models and envs, and ``drift eval``'s rollout flags (one generated set:
    every :class:`~drift_train.rollout.RolloutConfig` field, sampling flattened) with its defaults but 200 tasks."""
    parser = DataclassArgumentParser(description=__doc__)
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH (repeatable)")
    parser.add_argument("--env", action="append", required=True, help="env id (repeatable)")
    parser.add_argument("--env-kwargs", action="append", default=[], help="JSON, paired with --env in order")
    parser.add_argument("--backend", default="hf", help="hf, openai or vllm")
    parser.add_argument("--out-dir", default="runs/leaderboard")
    parser.add_dataclass(
        RolloutConfig,
        defaults=eval_config(num_tasks=200),
        options={
            **ROLLOUT_OPTIONS,
            "num_tasks": {"help": "tasks per env"},
            "samples": {"help": "episodes per task (s.e. are clustered by task)"},
        },
        exclude={"env_id", "env_kwargs", *ROLLOUT_EXCLUDED},  # per env: --env / --env-kwargs
    )
    return parser


def main() -> None:
    """Evaluate every (model, env) pair and write the leaderboard files."""
    parser = build_parser()
    args = parser.parse_args()
    models = []
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"--model expects NAME=PATH, got {spec!r}")
        models.append((name, path))
    if len(args.env_kwargs) > len(args.env):
        parser.error("more --env-kwargs than --env")
    env_kwargs = [json.loads(k) for k in args.env_kwargs] + [{}] * (len(args.env) - len(args.env_kwargs))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    entries = []
    for env, kwargs in zip(args.env, env_kwargs, strict=True):
        records_of: dict[str, list[dict]] = {}
        for name, path in models:
            console.print(f"[bold]{name}[/bold] on {env}")
            config = parser.build(RolloutConfig, args, env_id=env, env_kwargs=kwargs)
            policy = make_policy(args.backend, path)
            try:
                metrics, records_of[name] = evaluate_model(policy, config)
            finally:
                policy.close()
            T = metrics["max_turns"]
            entries.append(
                {
                    "model": name,
                    "path": path,
                    "env": env,
                    "env_kwargs": kwargs,
                    "metrics": metrics,
                    "success_at_T": metrics["success_at"][str(T)]["value"],
                }
            )
        add_paired_gaps([e for e in entries if e["env"] == env], records_of)
        console.print(
            metrics_table({e["model"]: e["metrics"] for e in entries if e["env"] == env}, title=env)
        )
    entries.sort(key=lambda e: (e["env"], -e["success_at_T"]))
    (out / "leaderboard.json").write_text(json.dumps(entries, indent=2))
    (out / "leaderboard.md").write_text(markdown_table(entries))
    png = plot(entries, out / "leaderboard.png")
    console.print(f"leaderboard -> {out / 'leaderboard.json'}, {out / 'leaderboard.md'}, {png}")


if __name__ == "__main__":
    main()
