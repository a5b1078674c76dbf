"""``drift online-rl --model DIR --env ID [...]``: the online RL baseline (:mod:`drift_train.online_rl`)."""

from __future__ import annotations

import sys

from drift_train import online_rl
from drift_train.commands._args import DataclassArgumentParser, missing_model_folder, resolve_model
from drift_train.online_rl import OnlineRLConfig, train_online_rl

__all__ = ["build_parser", "main"]


def build_parser():
    """The ``drift online-rl`` parser: one flag per :class:`OnlineRLConfig` field."""
    parser = DataclassArgumentParser(prog="drift online-rl", description=online_rl.__doc__)
    parser.add_dataclass(
        OnlineRLConfig,
        options={
            "env_id": {"flag": "env", "help": "env id, e.g. drift/MathFeedback-v0"},
            "env_kwargs": {"help": "JSON object of env kwargs"},
            "model": {"required": True, "help": "model folder or hub id; 'tiny' for the embedded tiny model"},
            "output_dir": {"help": "where the log and the final model go"},
        },
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift online-rl --model DIR --env ID [...]`` (also ``python -m drift_train.commands.online_rl``)."""
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
    try:
        train_online_rl(config)
    except OSError as err:  # transformers: a hub id that cannot be reached, a broken folder, a full disk
        print(f"drift online-rl: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
