"""``drift online-rl --model DIR --env ID [...]``: the online RL baseline (:mod:`drift_train.online_rl`).

Its episode flags are ``drift rollout``'s (:func:`drift_train.commands.rollout.rollout_options`:
``--env``, ``--env-kwargs``, ``--samples``, ``--temperature``, ``--max-new-tokens``, ``--seed``, ...),
generated from :attr:`OnlineRLConfig.rollout`; the per-step ones (tasks, offset, batch) are the loop's.
"""

from __future__ import annotations

import sys

from drift_train import online_rl
from drift_train.commands._args import DataclassArgumentParser, missing_model_folder, resolve_model
from drift_train.commands.rollout import config_line, rollout_options
from drift_train.online_rl import OnlineRLConfig, train_online_rl

__all__ = ["build_parser", "main"]

# set by the loop each step (OnlineRLConfig.step_rollout): no flag
PER_STEP = {"num_tasks", "task_offset", "batch_size"}


def build_parser():
    """The ``drift online-rl`` parser: one flag per :class:`OnlineRLConfig` field, the nested
    ``rollout`` flattened into ``drift rollout``'s episode flags."""
    parser = DataclassArgumentParser(prog="drift online-rl", description=online_rl.__doc__)
    rollout, excluded = rollout_options(
        "rollout.",
        {
            "samples": {"help": "G, trajectories per task (the group advantages are normalised within)"},
            "seed": {"help": "seeds the rollouts (seed * 100003 + step), the init order and the shuffles"},
        },
    )
    parser.add_dataclass(
        OnlineRLConfig,
        options={
            **rollout,
            "model": {"required": True, "help": "model folder or hub id; 'tiny' for the embedded tiny model"},
            "output_dir": {"help": "where the log and the final model go"},
        },
        exclude=excluded | {f"rollout.{name}" for name in PER_STEP},
        defaults=OnlineRLConfig(),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift online-rl --model DIR --env ID [...]`` (also ``python -m drift_train.commands.online_rl``)."""
    from rich.console import Console

    parser = build_parser()
    args = parser.parse_args(argv)
    missing = missing_model_folder(args.model)
    if missing:
        print(f"drift online-rl: {missing}", file=sys.stderr)
        return 2
    config = parser.build(OnlineRLConfig, args, model=resolve_model(args.model))
    try:
        config.validate()
    except ValueError as err:
        print(f"drift online-rl: {err}", file=sys.stderr)
        return 2
    # the full config is in <output_dir>/online_rl_log.json ("config"), beside the model
    Console().print(
        config_line(config.step_rollout(0, 0), "online-rl step 1 episodes"), highlight=False, soft_wrap=True
    )
    try:
        train_online_rl(config)
    except OSError as err:  # transformers: a hub id that cannot be reached, a broken folder, a full disk
        print(f"drift online-rl: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
