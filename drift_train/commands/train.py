"""``drift train``: fine-tune a causal LM on trajectories (:mod:`drift_train.trainer`).

Its flags are generated from :class:`~drift_train.trainer.DriftConfig` by the same generator as every
other command (:mod:`drift_train.commands._args`): DRIFT's own fields and every ``TrainingArguments``
field (``--learning_rate``, ``--report_to``, ``--deepspeed``, ``--gradient_checkpointing``, ...), each in
both spellings, with ``--config FILE.yaml`` (or a leading ``FILE.yaml``) whose values the flags override.
Launchers run this module::

    torchrun --nproc_per_node 8 -m drift_train.commands.train --config train.yaml
    accelerate launch --config_file fsdp.yaml -m drift_train.commands.train --config train.yaml
"""

from __future__ import annotations

import sys

from drift_train.commands._args import (
    DataclassArgumentParser,
    missing_model_folder,
    resolve_model,
)
from drift_train.trainer import DriftConfig, train

__all__ = ["build_parser", "main", "parse_config"]


def build_parser() -> DataclassArgumentParser:
    """The ``drift train`` parser: one flag per :class:`~drift_train.trainer.DriftConfig` field (its
    ``TrainingArguments`` ones included) and ``--config FILE.yaml``."""
    parser = DataclassArgumentParser(
        prog="drift train",
        description="Fine-tune a causal LM on trajectories with DRIFT weights / OTR.",
        config_file=True,
    )
    parser.add_dataclass(DriftConfig)
    return parser


def parse_config(argv: list[str] | None = None) -> DriftConfig:
    """``DriftConfig`` from command-line flags, on top of an optional ``--config FILE.yaml`` or a leading
    ``FILE.yaml`` (flags win). Every flag takes ``--dash-case`` and ``--under_score``; ``--model tiny`` is
    the embedded tiny model; a model folder that does not exist is a usage error (exit 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml")) and not argv[0].startswith("-"):
        argv = [
            "--config",
            *argv,
        ]  # `drift train config.yaml [flags]`, as transformers example scripts accept
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.data or not args.model:
        parser.error("--data and --model are required (on the command line or in the --config file)")
    missing = missing_model_folder(args.model)
    if missing:
        parser.error(missing)
    return parser.build(DriftConfig, args, model=resolve_model(args.model))


def main(argv: list[str] | None = None) -> int:
    """``drift train --data FILE --model PATH --loss MODE --output-dir DIR [TrainingArguments flags]``."""
    config = parse_config(argv)
    try:
        train(config)
    except (ValueError, FileNotFoundError) as err:
        print(f"drift train: {err}", file=sys.stderr)
        return 2
    finally:
        _shutdown_distributed()
    return 0


def _shutdown_distributed() -> None:
    """Tear the process group down before the interpreter exits.

    Left to interpreter shutdown, gloo's worker threads can be destroyed while still joinable and the
    rank aborts with ``terminate called without an active exception`` (SIGABRT) after training succeeded.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
