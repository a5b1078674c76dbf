"""``drift weights IN --out OUT``: add DRIFT importance weights to a trajectory file (:mod:`drift_train.weights`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from drift_train.commands._args import DataclassArgumentParser
from drift_train.merge import read_records
from drift_train.trajectories import validate_groups, write_trajectories
from drift_train.weights import (
    EQUAL_GROUP_MODES,
    NORMALISATIONS,
    UNDECIDED_MODES,
    WeightConfig,
    add_weights,
    print_summary,
    summary_path,
)

__all__ = ["WEIGHT_FLAGS", "WeightsCommand", "build_parser", "main"]


@dataclass
class WeightsCommand:
    """The files ``drift weights`` reads and writes (the weighting itself is :class:`WeightConfig`).

    Args:
        input: trajectory file (.jsonl or .parquet; reference-release rows load too), or the shards of one
            rollout (comma-separated, or a quoted glob 'part-*.jsonl'), merged and checked as `drift merge` does
        out: output file (.jsonl or .parquet)
    """

    input: str = field(metadata={"positional": True})
    out: str


# WeightConfig's fields under the flag names users know (--lambda, --clip), with the choices they take
WEIGHT_FLAGS = {
    "diversity_lambda": {"flag": "lambda", "aliases": ["diversity_lambda"]},
    "clip_max": {"flag": "clip", "aliases": ["clip_max"]},
    "equal_groups": {"choices": EQUAL_GROUP_MODES},
    "normalize": {"choices": NORMALISATIONS},
    "undecided": {"choices": UNDECIDED_MODES},
}


def build_parser():
    """The ``drift weights`` parser: :class:`WeightsCommand` and :class:`WeightConfig`."""
    parser = DataclassArgumentParser(
        prog="drift weights",
        description="Turn trajectory returns into DRIFT importance weights: adds `weight` and `return` "
        "(and `turn_weights` with --per-turn) to every record and saves a summary beside the output.",
    )
    parser.add_dataclass(WeightsCommand)
    parser.add_dataclass(WeightConfig, options=WEIGHT_FLAGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift weights IN --out OUT [options]``: add DRIFT importance weights to a trajectory file."""
    parser = build_parser()
    args = parser.parse_args(argv)
    config = parser.build(WeightConfig, args)
    try:
        config.validate()
        records = read_records(args.input)
        if not records:
            raise ValueError(f"{args.input}: no records")
        validate_groups(records, path=args.input)
        weighted, summary = add_weights(records, config)
    except (ValueError, FileNotFoundError) as err:
        print(f"drift weights: {err}", file=sys.stderr)
        return 2
    summary["input"] = str(args.input)
    write_trajectories(weighted, args.out)
    summary_file = summary_path(args.out)
    summary_file.write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    print(f"wrote {len(weighted)} weighted records to {args.out} and the summary to {summary_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
