"""``drift eval``: multi-turn evaluation of a model in an env, or of a trajectory file without a model.

The metrics are :mod:`drift_train.evaluate`'s. The rollout flags are ``drift rollout``'s, one generated
set (:func:`drift_train.commands.rollout.add_rollout_arguments`: every sampling, backend and display
flag), with evaluation's defaults (:func:`drift_train.evaluate.eval_config`: greedy, one sample per task).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from drift_train.commands._args import DataclassArgumentParser
from drift_train.commands.rollout import (
    PolicyFlags,
    add_rollout_arguments,
    config_line,
    config_path,
    load_policy,
    write_config,
)
from drift_train.evaluate import (
    _turn_budget,
    eval_config,
    evaluate_model,
    metrics_table,
    multiturn_metrics,
    paired_differences,
    per_task_results,
    records_turn_budget,
    undecided_note,
)
from drift_train.rollout import RolloutConfig

__all__ = ["EvalCommand", "build_parser", "main"]


@dataclass
class EvalCommand(PolicyFlags):
    """What ``drift eval`` takes besides :class:`~drift_train.rollout.RolloutConfig` and the backend options:
    a model rolled out in an env (``--model``, ``--env``), or a trajectory file (``--records``).

    Args:
        out: metrics JSON; per-task rows go to <out stem>.tasks.jsonl
        records: compute the metrics from this trajectory file (.jsonl or .parquet, ours or the DRIFT
            release's) instead of rolling a model out; the shards of one rollout (comma-separated, or a quoted
            glob) are merged and checked as `drift merge` does
        baseline: trajectory file of another model on the same tasks: adds the paired differences
            (this minus baseline) with their paired s.e. as vs_baseline
        tool_decay: decay factor of the MTU-Bench tool metrics (soft_turn_success_rate; tool-use envs)
    """

    out: str = field(kw_only=True)
    records: str | None = None
    baseline: str | None = None
    tool_decay: float = 0.9


# drift eval's flags of RolloutConfig that read differently from drift rollout's
EVAL_OPTIONS = {
    "env_id": {"help": "registered env id, e.g. drift/MathFeedback-v0 (required unless --records)"},
    "num_tasks": {"help": "tasks to evaluate"},
    "task_offset": {"help": "first task index (held-out ranges)"},
    "samples": {"help": "episodes per task"},
    "max_turns": {"help": "turn budget (default: the env's; with --records, the one the records state)"},
    "batch_size": {"help": "episodes per chunk"},
}


def build_parser() -> DataclassArgumentParser:
    """The ``drift eval`` parser: :class:`EvalCommand` and ``drift rollout``'s rollout and backend flags."""
    parser = DataclassArgumentParser(
        prog="drift eval",
        description="Multi-turn evaluation of a model in an env, "
        "or of a trajectory file (--records) without a model.",
    )
    add_rollout_arguments(
        parser,
        EvalCommand,
        defaults=eval_config(),
        options=EVAL_OPTIONS,
        command_options={
            "model": {
                "help": "model folder or hub id; 'tiny' for the embedded tiny model (required unless --records)"
            }
        },
    )
    return parser


def _records_metrics(args, records: list[dict]) -> dict:
    """The metrics of a trajectory file, to the turn budget ``--max-turns`` or the records (or their env) state."""
    budget = args.max_turns or records_turn_budget(records)
    env_ids = {r.get("env_id") for r in records}
    if budget is None and len(env_ids) == 1 and None not in env_ids:  # ask the env the records name
        env_id = env_ids.pop()
        try:
            budget = _turn_budget(env_id, records[0].get("env_kwargs") or {})
        except Exception as e:  # noqa: BLE001 - any failure to build the env means the same to the user
            raise ValueError(
                f"{args.records}: the records name env {env_id!r}, which could not be made "
                f"to read its turn budget ({e}); pass --max-turns"
            ) from None
    return multiturn_metrics(records, budget, tool_decay=args.tool_decay)


def main(argv: list[str] | None = None) -> int:
    """``drift eval``: roll a model out in an env (or read its trajectories) and save its multi-turn metrics."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = parser.build(EvalCommand, args)
    if command.records is None and (command.model is None or args.env_id is None):
        parser.error(
            "give --model and --env to roll a model out, or --records FILE to evaluate existing trajectories"
        )
    from rich.console import Console

    from drift_train.merge import read_records
    from drift_train.policies import PolicyError
    from drift_train.trajectories import read_trajectories

    out = Path(command.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if command.records is not None:
            records = read_records(command.records)
            if not records:
                raise ValueError(f"{command.records}: no records")
            metrics = _records_metrics(args, records)
            metrics["records"] = str(command.records)
            label = Path(command.records).stem
        else:
            config = parser.build(RolloutConfig, args)
            config.validate()
            try:
                policy = load_policy(args)  # --model tiny: the embedded model; a load failure: one line
            except PolicyError as err:
                raise ValueError(str(err)) from err
            # printed once the policy loads (a failure stays one line); the full config goes beside --out,
            # not in each record's meta (records stay as they were)
            Console(stderr=True).print(config_line(config, "eval"), highlight=False, soft_wrap=True)
            write_config(config_path(out), rollout=config, command=command)
            try:
                metrics, records = evaluate_model(
                    policy,
                    config,
                    out_trajectories=out.with_name(out.stem + ".trajectories.jsonl"),
                    progress=command.progress,
                    tool_decay=command.tool_decay,
                )
            finally:
                policy.close()
            metrics["model"], metrics["env"], metrics["env_kwargs"] = (
                command.model,
                config.env_id,
                config.env_kwargs,
            )
            label = Path(command.model).name or command.model
        if command.baseline is not None:
            baseline = list(read_trajectories(command.baseline))
            metrics["vs_baseline"] = {
                "baseline": str(command.baseline),
                **paired_differences(records, baseline, metrics["max_turns"], tool_decay=command.tool_decay),
            }
    except (ValueError, FileNotFoundError) as err:
        print(f"drift eval: {err}", file=sys.stderr)
        return 2
    out.write_text(json.dumps(metrics, indent=2))
    tasks_path = out.with_name(out.stem + ".tasks.jsonl")
    with open(tasks_path, "w") as f:
        for row in per_task_results(records):
            f.write(json.dumps(row) + "\n")
    console = Console()
    console.print(metrics_table({label: metrics}, title=args.env_id or str(command.records)))
    if metrics["num_undecided_turns"]:
        console.print(undecided_note(metrics))
    if "vs_baseline" in metrics:
        T = metrics["max_turns"]
        d = metrics["vs_baseline"]["success_at"][str(T)]
        if d["value"] is not None:
            z = d["value"] / d["se"] if d["se"] else float("nan")
            console.print(
                f"vs baseline: success@{T} {d['value']:+.3f} ± {d['se'] or 0:.3f} (paired over "
                f"{d['tasks']} tasks, {z:+.1f} SE)"
            )
    print(f"metrics -> {out}\nper-task results -> {tasks_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
