"""``drift render``: the training examples exactly as ``drift train`` builds them, to look at or to check.

::

    drift render --data rollouts.jsonl --model tiny --assistant_turns all --out examples.jsonl --show 2

Writes one JSON object per example: ``record_index`` (0-based line of the record in ``--data``),
``turn`` (1-based assistant turn; the last trained one when an example trains several), ``turns``,
``source`` (``"ids"``: the recorded token ids; ``"text"``: the rendered messages), ``input_ids``,
``labels`` (-100 where nothing is supervised) and ``token_weights``. ``--show N`` prints the first N
examples with the supervised tokens highlighted. The same :class:`~drift_train.data.Renderer` and
options as ``drift train`` (``--loss``, ``--max_length``, ``--per_turn_weights``, ``--use_token_ids``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

from drift_train.data import ASSISTANT_TURNS, RenderConfig, build_dataset
from drift_train.losses import IGNORE_INDEX, LOSS_MODES

__all__ = ["main", "show_example"]


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """A flag under both spellings, ``--max_length`` and ``--max-length``."""
    spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*spellings, dest=name, **kwargs)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="drift render", description=__doc__.split("\n\n")[0])
    _flag(parser, "data", required=True, help="trajectory file (.jsonl or .parquet)")
    _flag(
        parser,
        "model",
        required=True,
        help="model folder or hub id whose tokenizer trains ('tiny': embedded)",
    )
    _flag(parser, "out", default=None, help="EXAMPLES.jsonl to write (optional with --show)")
    _flag(
        parser,
        "assistant_turns",
        choices=list(ASSISTANT_TURNS),
        default="last",
        help="last: the final assistant turn given the history (default); all: every turn",
    )
    _flag(
        parser,
        "loss",
        choices=["auto", *LOSS_MODES],
        default="auto",
        help="as drift train (rft keeps successes, wsft/drift-otr use weights); auto: wsft when every record "
        "has a weight, else sft",
    )
    _flag(parser, "max_length", type=int, default=2048, help="as drift train --max_length")
    _flag(parser, "weight_field", default="weight", help="record field holding the trajectory weight")
    _flag(parser, "per_turn_weights", action="store_true", help="weight each turn by `turn_weights`")
    _flag(
        parser,
        "use_token_ids",
        choices=["true", "false"],
        default="true",
        help="train on recorded token ids when the tokenizer matches (default true)",
    )
    _flag(
        parser,
        "show",
        type=int,
        default=0,
        metavar="N",
        help="print N examples, supervised tokens highlighted",
    )
    return parser.parse_args(argv)


def show_example(tokenizer, example: dict, console=None) -> None:
    """Print one example: context dim, supervised tokens highlighted, with its record, turn and source."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = console or Console()
    ids, labels = example["input_ids"], example["labels"]
    text = Text()
    for supervised, run in itertools.groupby(
        zip(ids, labels, strict=True), key=lambda p: p[1] != IGNORE_INDEX
    ):
        text.append(
            tokenizer.decode([token for token, _ in run], skip_special_tokens=False),
            style="bold black on green" if supervised else "dim",
        )
    n = sum(label != IGNORE_INDEX for label in labels)
    title = (
        f"record {example['record_index']} · turn {example['turn']} · {example['source']} · "
        f"{n} of {len(ids)} tokens supervised · weight {example['weight']:.4g}"
    )
    console.print(Panel(text, title=title, title_align="left"))


def main(argv: list[str] | None = None) -> int:
    """``drift render --data FILE --model PATH [--assistant_turns last|all] --out EXAMPLES.jsonl [--show N]``."""
    args = _parse_args(argv)
    from rich.console import Console
    from transformers import AutoTokenizer, GenerationConfig

    from drift_train.rollout_cli import resolve_model
    from drift_train.trajectories import TrajectoryError, read_trajectories

    if not args.out and not args.show:
        print("drift render: give --out EXAMPLES.jsonl, --show N, or both", file=sys.stderr)
        return 2
    model = resolve_model(args.model)
    try:
        records = list(read_trajectories(args.data))
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (TrajectoryError, FileNotFoundError, OSError) as err:
        print(f"drift render: {err}", file=sys.stderr)
        return 2
    try:
        eos = GenerationConfig.from_pretrained(model).eos_token_id
    except OSError:  # no generation_config.json: the tokenizer's eos alone
        eos = None
    loss = args.loss
    if loss == "auto":
        loss = "wsft" if records and all(args.weight_field in r for r in records) else "sft"
    config = RenderConfig(
        max_length=args.max_length,
        assistant_turns=args.assistant_turns,
        weight_field=args.weight_field,
        per_turn_weights=args.per_turn_weights,
        use_token_ids=args.use_token_ids == "true",
    )
    try:
        dataset = build_dataset(records, tokenizer, config, loss, end_token_ids=eos)
    except ValueError as err:
        print(f"drift render: {args.data}: {err}", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as handle:
            for example in dataset.examples:
                row = {
                    key: example[key]
                    for key in (
                        "record_index",
                        "turn",
                        "turns",
                        "source",
                        "weight",
                        "input_ids",
                        "labels",
                        "token_weights",
                    )
                }
                handle.write(json.dumps(row) + "\n")
    for example in dataset.examples[: args.show]:
        show_example(tokenizer, example, Console())
    stats = dataset.stats
    console.print(
        f"drift render ({loss}): {len(dataset)} examples from {len(records)} records "
        f"({stats.token_id_records} from token ids, {stats.text_records} from text, "
        f"{stats.tokenizer_mismatch} with another tokenizer's ids), {stats.supervised_tokens:,} supervised "
        f"tokens; truncated {stats.truncated}, skipped too long {stats.skipped_too_long}"
        + (f"; wrote {args.out}" if args.out else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
