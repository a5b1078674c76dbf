"""The embedded tiny model: a real transformers folder with a character tokenizer and chat template."""

from __future__ import annotations

import hashlib
import json
import string
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from drift_train.commands.tiny_model import main
from drift_train.tiny import (
    IM_END,
    UNK_TOKEN,
    TinyModelConfig,
    build_tiny_model,
    tiny_model_path,
)

CONVERSATION = [
    {"role": "system", "content": "Answer in \\boxed{}."},
    {"role": "user", "content": "What is 12 * 3?\nThink step by step."},
    {"role": "assistant", "content": "12*3 = 36, so \\boxed{35}"},
    {"role": "user", "content": "Incorrect. Try again."},
    {"role": "assistant", "content": "\\boxed{36}"},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_folder_loads_with_auto_classes(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    assert 100_000 < n_params < 10_000_000
    assert model.config.model_type == "llama"
    info = json.loads((tiny_model_dir / "drift_tiny.json").read_text())
    assert info["num_parameters"] == n_params


def test_character_tokenizer_round_trips_printable_ascii(tokenizer):
    text = string.printable.replace("\r", "").replace("\x0b", "").replace("\x0c", "")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)  # one token per character
    assert tokenizer.decode(ids) == text
    code = "def f(x):\n    return {'a': [x**2, x // 3]}  # ok\n"
    assert tokenizer.decode(tokenizer(code, add_special_tokens=False)["input_ids"]) == code


def test_unknown_characters_map_to_unk(tokenizer):
    ids = tokenizer("a\u00e9\u4e2db", add_special_tokens=False)["input_ids"]
    unk = tokenizer.convert_tokens_to_ids(UNK_TOKEN)
    assert ids[1] == ids[2] == unk
    assert len(ids) == 4
    assert tokenizer.decode(ids, skip_special_tokens=True) == "ab"


def test_chat_template_assistant_mask_covers_exactly_assistant_turns(tokenizer):
    out = tokenizer.apply_chat_template(
        CONVERSATION, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask)
    masked = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert masked == f"12*3 = 36, so \\boxed{{35}}{IM_END}\\boxed{{36}}{IM_END}"
    rendered = tokenizer.decode(ids)
    assert rendered.startswith("<|im_start|>system\nAnswer in \\boxed{}.<|im_end|>\n<|im_start|>user\n")


def test_generation_prompt_and_eos(tokenizer, tiny_model_dir):
    prompt = tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.eos_token == IM_END
    assert tokenizer.padding_side == "left"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert tokenizer.convert_tokens_to_ids(IM_END) in model.generation_config.eos_token_id
    batch = tokenizer.apply_chat_template(
        [CONVERSATION[:2], CONVERSATION[:4]],
        add_generation_prompt=True,
        padding=True,
        return_tensors="pt",
        return_dict=True,
    )
    assert (batch["input_ids"][0, 0] == tokenizer.pad_token_id).item()  # left padded
    torch.manual_seed(0)
    out = model.generate(**batch, max_new_tokens=8, do_sample=True)
    assert out.shape[0] == 2 and out.shape[1] <= batch["input_ids"].shape[1] + 8


def _weights_digest(folder) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_build_is_deterministic_and_configurable(tmp_path):
    a = build_tiny_model(tmp_path / "a", hidden_size=32, num_layers=1, intermediate_size=64)
    b = build_tiny_model(tmp_path / "b", TinyModelConfig(hidden_size=32, num_layers=1, intermediate_size=64))
    c = build_tiny_model(tmp_path / "c", hidden_size=32, num_layers=1, intermediate_size=64, seed=1)
    assert _weights_digest(a) == _weights_digest(b) != _weights_digest(c)
    assert AutoModelForCausalLM.from_pretrained(a).config.hidden_size == 32


def test_invalid_config_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="num_heads"):
        build_tiny_model(tmp_path, hidden_size=30, num_heads=4)


def test_cached_path_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFT_CACHE", str(tmp_path / "cache"))
    first = tiny_model_path(hidden_size=32, num_layers=1, intermediate_size=64)
    assert first.parent == tmp_path / "cache"
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = tiny_model_path(hidden_size=32, num_layers=1, intermediate_size=64)
    assert again == first and (again / "model.safetensors").stat().st_mtime_ns == stamp
    other = tiny_model_path(hidden_size=32, num_layers=1, intermediate_size=64, seed=3)
    assert other != first
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([first.name, other.name])


def test_cli_main_and_dispatcher(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "m"), "--hidden-size", "32", "--num-layers", "1"]) == 0
    assert "parameters" in capsys.readouterr().out
    assert AutoTokenizer.from_pretrained(tmp_path / "m").chat_template
    assert main(["--out", str(tmp_path / "bad"), "--hidden-size", "30"]) == 2
    result = subprocess.run(
        [sys.executable, "-m", "drift_train.cli", "tiny-model", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "--out" in result.stdout


@pytest.mark.parametrize("template", ["chatml", "qwen3", "llama3"])
def test_bpe_tiny_model_cli_builds_a_real_shaped_tokenizer(tmp_path, template) -> None:
    from drift_train.commands.tiny_model import main as tiny_main

    out = tmp_path / template
    assert tiny_main(["--out", str(out), "--tokenizer", "bpe", "--template", template]) == 0
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert len(tokenizer) == 2048 == model.config.vocab_size
    assert "{%- generation" not in tokenizer.chat_template  # no assistant masks, as Qwen2.5's and Llama 3's
    pieces = tokenizer.tokenize("Put your final answer within \\boxed{}.")
    assert len(pieces) < len("Put your final answer within \\boxed{}.") / 2  # merges, not characters
    text = "Ünïcödé and emoji 🙂 survive: byte level"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    assert tokenizer.eos_token == ("<|eot_id|>" if template == "llama3" else "<|im_end|>")
    assert sorted(model.generation_config.eos_token_id) == sorted(
        [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    )
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered.endswith(
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
        if template == "llama3"
        else "<|im_start|>assistant\n"
    )


def test_char_tokenizer_refuses_a_template() -> None:
    from drift_train.tiny import TinyModelConfig

    with pytest.raises(ValueError, match="needs tokenizer='bpe'"):
        TinyModelConfig(template="qwen3").validate()
