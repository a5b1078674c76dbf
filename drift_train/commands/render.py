"""``drift render``: the training examples exactly as ``drift train`` builds them, to look at or to check.

::

    drift render --data rollouts.jsonl --model tiny --assistant-turns all --out examples.jsonl --show 2

Writes one JSON object per example: ``record_index`` (0-based line of the record in ``--data``),
``turn`` (1-based assistant turn; the last trained one when an example trains several), ``turns``,
``source`` (``"ids"``: the recorded token ids; ``"text"``: the rendered messages), ``input_ids``,
``labels`` (-100 where nothing is supervised) and ``token_weights``. ``--show N`` prints the first N
examples with the supervised tokens highlighted. The same :class:`~drift_train.data.Renderer` and
options as ``drift train`` (``--loss``, ``--max-length``, ``--per-turn-weights``, ``--use-token-ids``).
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from drift_train.commands._args import (
    DataclassArgumentParser,
    missing_model_folder,
    model_load_error,
    resolve_model,
)
from drift_train.data import ASSISTANT_TURNS, RenderConfig, build_dataset
from drift_train.losses import IGNORE_INDEX, LOSS_MODES

__all__ = ["main", "show_example"]


@dataclass
class RenderCommand:
    """What ``drift render`` reads, writes and shows (the rendering itself is :class:`RenderConfig`).

    Args:
        data: trajectory file (.jsonl or .parquet)
        model: model folder, hub id, .gguf file, 'tiny' or 'smollm2-135m-instruct', whose tokenizer trains
        out: EXAMPLES.jsonl to write (optional with --show)
        loss: as drift train (rft keeps successes, wsft/drift-otr use weights); auto: wsft when every
            record has a weight, else sft
        show: print N examples, supervised tokens highlighted
    """

    data: str
    model: str
    out: str | None = None
    loss: str = field(default="auto", metadata={"choices": ["auto", *LOSS_MODES]})
    show: int = field(default=0, metadata={"metavar": "N"})


def build_parser() -> DataclassArgumentParser:
    """The ``drift render`` parser: :class:`RenderCommand` and :class:`RenderConfig`, as drift train has them."""
    parser = DataclassArgumentParser(prog="drift render", description=__doc__.split("\n\n")[0])
    parser.add_dataclass(RenderCommand)
    parser.add_dataclass(RenderConfig, options={"assistant_turns": {"choices": list(ASSISTANT_TURNS)}})
    return parser


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
    """``drift render --data FILE --model PATH [--assistant-turns last|all] --out EXAMPLES.jsonl [--show N]``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    config = parser.build(RenderConfig, args)
    from rich.console import Console
    from transformers import AutoTokenizer, GenerationConfig

    from drift_train.trajectories import TrajectoryError, read_trajectories

    if not args.out and not args.show:
        print("drift render: give --out EXAMPLES.jsonl, --show N, or both", file=sys.stderr)
        return 2
    missing = missing_model_folder(args.model)
    if missing:
        print(f"drift render: {missing}", file=sys.stderr)
        return 2
    try:
        model = resolve_model(args.model)  # smollm2-135m-instruct / FILE.gguf: converted once, then cached
    except OSError as err:
        print(f"drift render: {model_load_error(args.model, err)}", file=sys.stderr)
        return 2
    try:
        records = list(read_trajectories(args.data))
    except (TrajectoryError, FileNotFoundError, OSError) as err:
        print(f"drift render: {err}", file=sys.stderr)
        return 2
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as err:
        print(f"drift render: {model_load_error(args.model, err)}", file=sys.stderr)
        return 2
    try:
        eos = GenerationConfig.from_pretrained(model).eos_token_id
    except OSError:  # no generation_config.json: the tokenizer's eos alone
        eos = None
    loss = args.loss
    if loss == "auto":
        loss = "wsft" if records and all(config.weight_field in r for r in records) else "sft"
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
