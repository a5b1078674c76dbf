"""The embedded default model: a tiny causal LM with a character-level tokenizer.

Every code path in the project (rollouts, training, evaluation, the ``openai`` backend through
``transformers serve``) loads models with ``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained``.
This module writes a folder those calls accept, so the whole pipeline runs end to end on a laptop
with no model hub:

* a standard ``Llama`` architecture, randomly initialised from a fixed seed, a few hundred thousand
  to a few million parameters (Llama rather than Qwen2 because ``AutoTokenizer`` swaps in its own
  byte-level ``Qwen2Tokenizer`` for any ``qwen2`` config, whatever ``tokenizer_config.json`` says);
* a character-level ``PreTrainedTokenizerFast`` whose vocabulary is printable ASCII plus newline and
  tab (any other character becomes ``<|unk|>``), and a ChatML-style chat template whose assistant
  turns sit inside ``{% generation %}`` blocks, so
  ``apply_chat_template(..., return_assistant_tokens_mask=True)`` returns the assistant mask.

``tiny_model_path()`` builds the default folder once into a cache (``$DRIFT_CACHE``, default
``~/.cache/drift``) and returns it afterwards; ``drift tiny-model --out DIR`` writes one anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import string
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

PAD_TOKEN = "<|pad|>"
UNK_TOKEN = "<|unk|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN, IM_START, IM_END, END_OF_TEXT]

# Printable ASCII without the vertical whitespace that string.printable also lists, plus "\n" and "\t".
CHARACTERS = [c for c in string.printable if c not in "\r\x0b\x0c"]

# ChatML layout. Assistant content and its end marker are the generated part: the end marker is what
# the model must learn to emit to stop, so it belongs inside the mask.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Bump when the folder layout or defaults change so cached copies are rebuilt.
FORMAT_VERSION = 2  # 2: generation_config.suppress_tokens (no pad/unk/im_start inside replies)


@dataclass(frozen=True)
class TinyModelConfig:
    """Size of the tiny model. The defaults give about 0.8 M parameters."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 16384
    seed: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that does not make sense."""
        for name in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size",
                     "max_position_embeddings"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads={self.num_heads} is not divisible by num_kv_heads={self.num_kv_heads}")


def build_tokenizer():
    """Return the character-level ``PreTrainedTokenizerFast`` with the chat template set."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    # BPE without merges is exactly character level; no pre-tokenizer, so spaces and newlines are
    # ordinary characters, and the Fuse decoder joins tokens back without inserting spaces.
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK_TOKEN, fuse_unk=False))
    backend.add_special_tokens(SPECIAL_TOKENS)
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        eos_token=IM_END,
        bos_token=None,
        padding_side="left",
        model_max_length=16384,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(out_dir: str | os.PathLike, config: TinyModelConfig | None = None, **overrides) -> Path:
    """Write a tiny randomly-initialised causal LM and its tokenizer to ``out_dir`` and return the path.

    ``config`` (or keyword overrides of :class:`TinyModelConfig` fields, e.g. ``hidden_size=64``)
    sets the size. The weights are a pure function of the config (``seed`` included), so two builds
    with the same config are identical. The folder loads with ``AutoModelForCausalLM`` and
    ``AutoTokenizer.from_pretrained``.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig

    config = TinyModelConfig(**{**asdict(config or TinyModelConfig()), **overrides})
    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer()
    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    eot = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=im_end,
        bos_token_id=None,
    )
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_config(model_config, dtype=torch.float32)
    # Special tokens that can never be part of a reply's text (decoding drops them, so a reply that
    # sampled one would not say what the model generated) are suppressed, as model.generate does.
    never = sorted(tokenizer.convert_tokens_to_ids([t for t in SPECIAL_TOKENS if t not in (IM_END, END_OF_TEXT)]))
    model.generation_config = GenerationConfig(
        eos_token_id=[im_end, eot], pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=256, suppress_tokens=never,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    (out / "drift_tiny.json").write_text(json.dumps(
        {"format_version": FORMAT_VERSION, "config": asdict(config), "num_parameters": n_params}, indent=2
    ) + "\n")
    return out


def default_cache_dir() -> Path:
    """Where cached artefacts live: ``$DRIFT_CACHE`` if set, else ``~/.cache/drift``."""
    return Path(os.environ.get("DRIFT_CACHE") or Path.home() / ".cache" / "drift").expanduser()


def tiny_model_path(cache_dir: str | os.PathLike | None = None, **overrides) -> Path:
    """Return the folder of the cached tiny model with this config, building it on first use.

    The folder name carries a hash of the config, so different sizes coexist. Building goes to a
    temporary sibling that is renamed into place, so concurrent callers (parallel test workers)
    never see a half-written folder.
    """
    config = TinyModelConfig(**overrides)
    config.validate()
    key = hashlib.sha256(json.dumps([FORMAT_VERSION, asdict(config)], sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"tiny-model-{key}"
    if (target / "drift_tiny.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        build_tiny_model(staging, config)
        try:
            staging.rename(target)
        except OSError:
            # someone else finished first; theirs is identical
            if not (target / "drift_tiny.json").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    """``drift tiny-model --out DIR``: write the tiny model folder."""
    defaults = TinyModelConfig()
    parser = argparse.ArgumentParser(
        prog="drift tiny-model",
        description="Build the embedded tiny causal LM (character-level tokenizer, chat template) into a folder.",
    )
    parser.add_argument("--out", required=True, help="folder to write (created if missing)")
    parser.add_argument("--hidden-size", type=int, default=defaults.hidden_size)
    parser.add_argument("--num-layers", type=int, default=defaults.num_layers)
    parser.add_argument("--num-heads", type=int, default=defaults.num_heads)
    parser.add_argument("--num-kv-heads", type=int, default=defaults.num_kv_heads)
    parser.add_argument("--intermediate-size", type=int, default=defaults.intermediate_size)
    parser.add_argument("--max-position-embeddings", type=int, default=defaults.max_position_embeddings)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    config = TinyModelConfig(
        hidden_size=args.hidden_size, num_layers=args.num_layers,
        num_heads=args.num_heads, num_kv_heads=args.num_kv_heads, intermediate_size=args.intermediate_size,
        max_position_embeddings=args.max_position_embeddings, seed=args.seed,
    )
    try:
        config.validate()
    except ValueError as err:
        print(f"drift tiny-model: {err}", file=sys.stderr)
        return 2
    out = build_tiny_model(args.out, config)
    info = json.loads((out / "drift_tiny.json").read_text())
    print(f"wrote tiny Llama model ({info['num_parameters']:,} parameters) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
