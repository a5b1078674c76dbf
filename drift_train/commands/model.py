"""``drift model import FILE.gguf [--out DIR]``: a GGUF file as an ordinary model folder (:mod:`drift_train.models`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from drift_train.commands._args import DataclassArgumentParser
from drift_train.models import (
    MARKER,
    NAMED_MODELS,
    ModelError,
    gguf_model_path,
    import_gguf,
    named_model_file,
)

__all__ = ["ModelImportCommand", "build_parser", "main"]


@dataclass
class ModelImportCommand:
    """``drift model import FILE.gguf [--out DIR]``.

    Args:
        action: what to do: import (convert a GGUF file into a model folder)
        source: a .gguf file, or a named model (smollm2-135m-instruct)
        out: folder to write (default: the shared cache, keyed by the file's sha256, as --model FILE.gguf uses)
        cache_dir: the cache without --out (default: $DRIFT_CACHE, else ~/.cache/drift)
    """

    action: str = field(metadata={"positional": True, "choices": ["import"]})
    source: str = field(metadata={"positional": True, "metavar": "FILE.gguf"})
    out: str | None = None
    cache_dir: str | None = None


def build_parser():
    """The ``drift model`` parser (``drift model import FILE.gguf --out DIR``)."""
    parser = DataclassArgumentParser(
        prog="drift model",
        description="Convert a GGUF file that transformers can read (or a named model: "
        + ", ".join(NAMED_MODELS)
        + ") into an ordinary model folder: fp32 safetensors, tokenizer, chat template, generation config.",
    )
    parser.add_dataclass(ModelImportCommand)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift model import FILE.gguf [--out DIR]``: convert, print where the folder is."""
    parser = build_parser()
    command = parser.build(ModelImportCommand, parser.parse_args(argv))
    try:
        if command.source in NAMED_MODELS:
            source = named_model_file(command.source)
        else:
            source = Path(command.source)
        if command.out is None:
            out = gguf_model_path(source, command.cache_dir)
        else:
            out = Path(command.out)
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                raise ModelError(f"--out {out}: exists and is not an empty folder; give a new one")
            out = import_gguf(source, out)
    except ModelError as err:
        print(f"drift model import: {err}", file=sys.stderr)
        return 2
    info = json.loads((out / MARKER).read_text())
    print(
        f"wrote {out} ({info['num_parameters']:,} parameters, from {info['source']}, "
        f"sha256 {info['sha256'][:16]})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
