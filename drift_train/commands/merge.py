"""``drift merge OUT SHARD...``: the shards of one rollout job (``drift rollout --shard i/N``) as one file.

::

    drift rollout --env drift/MathFeedback-v0 --model tiny --shard 0/2 --out part-0.jsonl
    drift rollout --env drift/MathFeedback-v0 --model tiny --shard 1/2 --out part-1.jsonl
    drift merge rollouts.jsonl 'part-*.jsonl'

Checks every ``(prompt_id, traj_idx)`` is there exactly once, every group complete, and one env and
sampling config throughout, refusing with the file and line at fault (:func:`drift_train.merge.merge_shards`);
writes the records sorted by ``(prompt_id, traj_idx)``. ``OUT`` is written whole or not at all.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from drift_train.commands._args import DataclassArgumentParser

__all__ = ["MergeCommand", "build_parser", "main"]


@dataclass
class MergeCommand:
    """What ``drift merge`` reads and writes.

    Args:
        out: the merged trajectory file (.jsonl or .parquet)
        shards: shard files, globs (quoted: 'part-*.jsonl') or comma-separated lists of them
        overwrite: replace an existing OUT
    """

    out: str = field(metadata={"positional": True})
    shards: list[str] = field(metadata={"positional": True})
    overwrite: bool = False


def build_parser() -> DataclassArgumentParser:
    """The ``drift merge`` parser (:class:`MergeCommand`)."""
    parser = DataclassArgumentParser(
        prog="drift merge",
        description="Merge the shard files of one rollout job (drift rollout --shard i/N) into one file, "
        "checking that every trajectory is there exactly once.",
    )
    parser.add_dataclass(MergeCommand)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift merge OUT SHARD...``: see ``drift merge --help``."""
    from drift_train.merge import write_merged

    parser = build_parser()
    args = parser.parse_args(argv)
    command = parser.build(MergeCommand, args)
    try:
        count = write_merged(command.out, command.shards, overwrite=command.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"drift merge: {err}", file=sys.stderr)
        return 2
    print(f"wrote {count} trajectories from {len(command.shards)} shard argument(s) to {command.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
