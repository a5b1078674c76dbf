"""The embedded default model: a tiny causal LM with a character-level or byte-level BPE tokenizer.

Every code path in the project (rollouts, training, evaluation, the ``openai`` backend through
``transformers serve``) loads models with ``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained``.
This module writes a folder those calls accept, so the whole pipeline runs end to end on a laptop
with no model hub:

* a standard ``Llama`` architecture, randomly initialised from a fixed seed, a few hundred thousand
  to a few million parameters (Llama rather than Qwen2 because ``AutoTokenizer`` swaps in its own
  byte-level ``Qwen2Tokenizer`` for any ``qwen2`` config, whatever ``tokenizer_config.json`` says);
* ``tokenizer="char"`` (the default): a character-level ``PreTrainedTokenizerFast`` whose vocabulary
  is printable ASCII plus newline and tab (any other character becomes ``<|unk|>``), with a
  ChatML-style template whose assistant turns sit inside ``{% generation %}`` blocks, so
  ``apply_chat_template(..., return_assistant_tokens_mask=True)`` returns the assistant mask;
* ``tokenizer="bpe"``: a byte-level BPE (as Qwen2.5, Llama 3 and GPT-2 use) of a few thousand tokens,
  trained here with the ``tokenizers`` library on text the project generates (its envs' prompts,
  feedback and replies), so merges make one token out of several characters and re-encoding a
  decoded reply need not give the sampled ids back. Its templates are the real models' shapes,
  without generation blocks: ``chatml`` (Qwen2.5's layout), ``qwen3`` (ChatML that drops the
  ``<think>`` part of assistant turns before the last user message, and takes ``enable_thinking``),
  ``llama3`` (header tokens, ``<|eot_id|>`` ends a turn, content trimmed).

``tiny_model_path()`` builds the default folder once into a cache (``$DRIFT_CACHE``, default
``~/.cache/drift``) and returns it afterwards; ``drift tiny-model --out DIR`` writes one anywhere
(``--tokenizer bpe [--template qwen3]`` for the BPE variants).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import string
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
# With ``tools=`` (OpenAI function schemas) the system turn gains a tools section, one schema per line
# (a system turn is added when the conversation has none); an assistant turn's ``tool_calls`` follow
# its content as Hermes ``<tool_call>`` blocks (what drift/ToolUse-v0 parses), inside the generation
# block; ``tool`` results are ordinary turns of role ``tool``, never supervised. A conversation without
# tools renders exactly as before.
TOOLS_INTRO = (
    "# Tools\n"
    'Call a tool with <tool_call>{"name": <tool name>, "arguments": <JSON object>}</tool_call>. You can call:\n'
)
CHAT_TEMPLATE = (
    "{%- set ns = namespace(tools='') -%}"
    "{%- if tools -%}{%- set ns.tools = " + repr(TOOLS_INTRO) + " -%}"
    "{%- for tool in tools -%}{%- set ns.tools = ns.tools + (tool | tojson) + '\\n' -%}{%- endfor -%}"
    "{%- if messages[0]['role'] != 'system' -%}{{- '<|im_start|>system\\n' + ns.tools + '<|im_end|>\\n' -}}"
    "{%- endif -%}{%- endif -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- message['content'] -}}"
    "{%- for call in message['tool_calls'] or [] -%}"
    "{%- set fn = call['function'] if call['function'] is defined else call -%}"
    "{%- if message['content'] or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>\\n{\"name\": ' + (fn['name'] | tojson) + ', \"arguments\": ' -}}"
    "{{- (fn['arguments'] if fn['arguments'] is string else fn['arguments'] | tojson) + '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>' -}}{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- elif message['role'] == 'system' and ns.tools -%}"
    "{{- message['content'] + '\\n\\n' + ns.tools + '<|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# The BPE variants' templates: real models' layouts, without generation blocks.
CHATML_TEMPLATE = (  # Qwen2.5's layout: the newline after <|im_end|> is the template's, never generated
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
QWEN3_TEMPLATE = (  # Qwen3's rules: turns after the last user message keep a <think> block, earlier ones lose it
    "{%- set ns = namespace(last_user=-1) -%}"
    "{%- for message in messages -%}{%- if message['role'] == 'user' -%}{%- set ns.last_user = loop.index0 -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- set content = message['content'] -%}{%- set reasoning = '' -%}"
    "{%- if '</think>' in content -%}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}"
    "{%- endif -%}"
    "{%- if loop.index0 > ns.last_user -%}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content + '<|im_end|>\\n' -}}"
    "{%- else -%}{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{- '<think>\\n\\n</think>\\n\\n' -}}"
    "{%- endif -%}{%- endif -%}"
)
LLAMA3_TEMPLATE = (  # Llama 3's header layout; content is trimmed, as Meta's template does
    "{{- '<|begin_of_text|>' -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim "
    "+ '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}"
)
BPE_TEMPLATES = {"chatml": CHATML_TEMPLATE, "qwen3": QWEN3_TEMPLATE, "llama3": LLAMA3_TEMPLATE}
TOKENIZERS = ("char", "bpe")
BEGIN_OF_TEXT, START_HEADER, END_HEADER, EOT = (
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)
BPE_SPECIAL_TOKENS = [PAD_TOKEN, END_OF_TEXT, IM_START, IM_END, BEGIN_OF_TEXT, START_HEADER, END_HEADER, EOT]

# Bump when the folder layout or defaults change so cached copies are rebuilt.
# 2: generation_config.suppress_tokens (no pad/unk/im_start inside replies); 3: tools in the char template
FORMAT_VERSION = 3


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
    tokenizer: str = "char"  # "char" or "bpe"
    template: str | None = None  # bpe: "chatml" (default), "qwen3", "llama3"; char: its own template only
    bpe_vocab_size: int = 2048

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that does not make sense."""
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}")
        if self.tokenizer == "char" and self.template is not None:
            raise ValueError(
                "the char tokenizer has one template (ChatML with generation blocks); "
                f"template={self.template!r} needs tokenizer='bpe'"
            )
        if self.tokenizer == "bpe" and (self.template or "chatml") not in BPE_TEMPLATES:
            raise ValueError(f"template must be one of {sorted(BPE_TEMPLATES)}, got {self.template!r}")
        if self.tokenizer == "bpe" and not 300 <= self.bpe_vocab_size <= 65536:
            raise ValueError(f"bpe_vocab_size must be in 300..65536, got {self.bpe_vocab_size}")
        for name in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "intermediate_size",
            "max_position_embeddings",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads={self.num_heads} is not divisible by num_kv_heads={self.num_kv_heads}"
            )


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


def bpe_corpus() -> list[str]:
    """Text the project generates, for training the BPE tokenizer: env prompts, feedback and replies.

    A pure function of the envs' procedural generators, so the same code gives the same tokenizer.
    """
    import gymnasium as gym

    import drift_envs  # noqa: F401 - registers drift/* ids

    texts: list[str] = []
    for difficulty in ("tiny", "easy", "medium", "hard"):
        for feedback in ("hint", "binary"):
            env = gym.make(
                "drift/MathFeedback-v0",
                difficulty=difficulty,
                feedback=feedback,
                split="train",
                max_turns=2,
                disable_env_checker=True,
            )
            for i in range(300):
                _, info = env.reset(options={"index": i})
                texts += [m["content"] for m in info["messages"]]
                reply = f"Let me work it out step by step. The answer is \\boxed{{{(i * 37) % 200 - 50}}}."
                obs, *_ = env.step(reply)
                texts += [
                    reply,
                    obs,
                    f"So the result is {i * 3 + 1}, and I will write \\boxed{{{i * 3 + 1}}}.",
                ]
            env.close()
    env = gym.make("drift/UserCorrection-v0", disable_env_checker=True)
    for i in range(1000):
        obs, info = env.reset(options={"index": i})
        texts += [m["content"] for m in info["messages"]]
        feedback, *_ = env.step("Here is a short answer, as you asked.")
        texts += [feedback, "<think>\nThe user wants something short.\n</think>\n\nHere it is."]
    env.close()
    return texts


@functools.lru_cache(maxsize=4)
def _trained_bpe(vocab_size: int) -> str:
    """The trained byte-level BPE as JSON (trained once per process and size; the templates share it)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=BPE_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(bpe_corpus(), trainer=trainer)
    return backend.to_str()


def build_bpe_tokenizer(template: str = "chatml", vocab_size: int = 2048):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on :func:`bpe_corpus`, with a real model's template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(_trained_bpe(vocab_size))
    eos = EOT if template == "llama3" else IM_END
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        eos_token=eos,
        bos_token=None,
        unk_token=None,
        padding_side="left",
        model_max_length=16384,
    )
    tokenizer.chat_template = BPE_TEMPLATES[template]
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

    if config.tokenizer == "bpe":
        tokenizer = build_bpe_tokenizer(config.template or "chatml", config.bpe_vocab_size)
        specials = BPE_SPECIAL_TOKENS
    else:
        tokenizer = build_tokenizer()
        specials = SPECIAL_TOKENS
    end_of_turn = tokenizer.eos_token_id  # <|im_end|>, or <|eot_id|> for the llama3 template
    end_of_text = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
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
        eos_token_id=end_of_turn,
        bos_token_id=None,
    )
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_config(model_config, dtype=torch.float32)
    # Special tokens that can never be part of a reply's text (decoding drops them, so a reply that
    # sampled one would not say what the model generated) are suppressed, as model.generate does.
    never = sorted(
        tokenizer.convert_tokens_to_ids([t for t in specials if t not in (tokenizer.eos_token, END_OF_TEXT)])
    )
    model.generation_config = GenerationConfig(
        eos_token_id=[end_of_turn, end_of_text],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        max_new_tokens=256,
        suppress_tokens=never,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    (out / "drift_tiny.json").write_text(
        json.dumps(
            {"format_version": FORMAT_VERSION, "config": asdict(config), "num_parameters": n_params}, indent=2
        )
        + "\n"
    )
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
    key = hashlib.sha256(json.dumps([FORMAT_VERSION, asdict(config)], sort_keys=True).encode()).hexdigest()[
        :12
    ]
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


# TinyModelConfig's flags as drift tiny-model explains them
