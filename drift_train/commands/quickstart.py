"""``drift quickstart``: the whole DRIFT loop on the embedded tiny model (:mod:`drift_train.quickstart`)."""

from __future__ import annotations

import sys

from drift_train import quickstart
from drift_train.commands._args import DataclassArgumentParser
from drift_train.commands.rollout import config_line
from drift_train.quickstart import QuickstartConfig, check_held_out, check_teacher, env_preset, run_quickstart

__all__ = ["build_parser", "main"]


def build_parser():
    """The ``drift quickstart`` parser: one flag per :class:`QuickstartConfig` field (both spellings),
    ``--env`` for ``env_id``, and ``--config run.yaml`` whose fields the flags override."""
    parser = DataclassArgumentParser(
        prog="drift quickstart", description=quickstart.__doc__, config_file=True
    )
    preset = "default: the env's own preset (math: the tiny difficulty, hint feedback, 3 turns)"
    parser.add_dataclass(
        QuickstartConfig,
        options={
            "env_id": {"flag": "env", "aliases": ["env_id"], "help": "any registered env id with an oracle"},
            # None: the chosen env's preset, so --env alone never carries math's kwargs to another env
            "env_kwargs": {"default": None, "help": f"JSON object of env kwargs ({preset})"},
            "max_new_tokens": {"default": None, "help": f"reply budget in tokens ({preset})"},
            "model": {
                "help": "a reference model folder or hub id ('tiny': the untrained embedded model); "
                "unset: the embedded tiny model, pretrained on the env's scripted teacher"
            },
        },
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift quickstart [--env ID] [--config run.yaml] [--output-dir DIR] [--seed N] [--FIELD VALUE ...]``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    unset = {name: value for name, value in env_preset(args.env_id).items() if getattr(args, name) is None}
    try:
        config = parser.build(QuickstartConfig, args, **unset)
        check_held_out(config)
        check_teacher(config)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    from rich.console import Console

    console = Console()
    for stage, rollout_config in config.stages.items():  # in full in results.json, "rollouts"
        console.print(config_line(rollout_config, f"quickstart {stage}"), highlight=False, soft_wrap=True)
    run_quickstart(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
