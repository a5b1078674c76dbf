"""``drift tiny-model --out DIR``: build the embedded tiny model folder (:mod:`drift_train.tiny`)."""

from __future__ import annotations

import json
import sys

from drift_train.commands._args import DataclassArgumentParser
from drift_train.tiny import BPE_TEMPLATES, TOKENIZERS, TinyModelConfig, build_tiny_model

__all__ = ["TINY_MODEL_FLAGS", "build_parser", "main"]

TINY_MODEL_FLAGS = {
    "tokenizer": {
        "choices": TOKENIZERS,
        "help": "char: character level with generation blocks; bpe: byte-level BPE trained here, with a "
        "real model's template",
    },
    "template": {
        "choices": sorted(BPE_TEMPLATES),
        "help": "bpe only: chatml (Qwen2.5 layout, default), qwen3 (drops earlier <think>), llama3",
    },
}


def build_parser():
    """The ``drift tiny-model`` parser: ``--out`` and one flag per :class:`TinyModelConfig` field."""
    parser = DataclassArgumentParser(
        prog="drift tiny-model",
        description="Build the embedded tiny causal LM (character-level tokenizer, chat template) into a folder.",
    )
    parser.add_argument("--out", required=True, help="folder to write (created if missing)")
    parser.add_dataclass(TinyModelConfig, options=TINY_MODEL_FLAGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift tiny-model --out DIR``: write the tiny model folder."""
    parser = build_parser()
    args = parser.parse_args(argv)
    config = parser.build(TinyModelConfig, args)
    try:
        config.validate()
    except ValueError as err:
        print(f"drift tiny-model: {err}", file=sys.stderr)
        return 2
    out = build_tiny_model(args.out, config)
    info = json.loads((out / "drift_tiny.json").read_text())
    print(
        f"wrote tiny Llama model ({info['num_parameters']:,} parameters, {config.tokenizer} tokenizer"
        f"{f', {config.template} template' if config.template else ''}) to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
