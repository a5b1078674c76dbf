"""The rollout engine and ``drift rollout`` on the tiny model: our envs and one registered here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.spaces import Text

from drift_train.commands.rollout import main
from drift_train.policies import Completion, PolicyBase, SamplingParams, make_policy
from drift_train.rollout import RolloutConfig, iter_rollouts, rollout, summarize
from drift_train.trajectories import TrajectoryWriter, read_trajectories, validate_groups

REPO = Path(__file__).resolve().parents[1]
TEST_ENV_ID = "drift-test/Parity-v0"
PENALTY = -0.25


class ParityEnv(gym.Env):
    """A plain Gymnasium env that follows the drift contract without using ``drift_envs.core``.

    Task i asks for a reply whose length has parity ``i % 2``; an empty reply is a format error.
    With a random tiny model about half the replies are right, so episodes end at every turn.
    """

    metadata = {"render_modes": []}

    def __init__(self, max_turns: int = 3, num_tasks: int = 50, format_penalty: float = PENALTY):
        self.max_turns = max_turns
        self.format_penalty = format_penalty
        self._num_tasks = num_tasks
        self.observation_space = Text(10_000)
        self.action_space = Text(10_000)

    def num_tasks(self) -> int:
        return self._num_tasks

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.index = int((options or {})["index"])
        self.turn = 0
        self.done = False
        self.nonce = int(self.np_random.integers(1000))  # env randomness: must be shared within a group
        self.messages = [
            {"role": "system", "content": "Reply."},
            {
                "role": "user",
                "content": f"Task {self.index} ({self.nonce}): reply with "
                f"{'an odd' if self.index % 2 else 'an even'} length.",
            },
        ]
        return self.messages[-1]["content"], self._info()

    def _info(self):
        return {
            "task_id": f"parity-{self.index}",
            "turn": self.turn,
            "max_turns": self.max_turns,
            "messages": [dict(m) for m in self.messages],
        }

    def step(self, action):
        if not isinstance(action, str):
            raise TypeError("action must be a str")
        if self.done:
            raise RuntimeError("episode finished; call reset()")
        self.turn += 1
        format_ok = len(action) > 0
        correct = format_ok and len(action) % 2 == self.index % 2
        reward = float(correct) + (0.0 if format_ok else self.format_penalty)
        terminated = correct
        truncated = not correct and self.turn >= self.max_turns
        self.done = terminated or truncated
        self.messages.append({"role": "assistant", "content": action})
        obs = "" if self.done else "Wrong parity."
        if obs:
            self.messages.append({"role": "user", "content": obs})
        info = self._info()
        info.update(
            correct=correct,
            format_ok=format_ok,
            answer=str(len(action) % 2) if format_ok else None,
            repeated=False,
            feedback={"kind": "binary", "text": obs},
        )
        return obs, reward, terminated, truncated, info


if TEST_ENV_ID not in gym.registry:
    gym.register(id=TEST_ENV_ID, entry_point=ParityEnv)

SAMPLING = SamplingParams(max_new_tokens=6)


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    with make_policy("hf", str(tiny_model_dir)) as p:
        yield p


def strip_times(records):
    """Records without their wall-clock timestamp (the one field two identical runs differ in)."""
    out = []
    for r in records:
        r = json.loads(json.dumps(r))
        r["meta"].pop("created_at")
        out.append(r)
    return sorted(out, key=lambda r: (r["prompt_id"], r["traj_idx"]))


def test_custom_env_rollout_records(policy):
    config = RolloutConfig(
        env_id=TEST_ENV_ID, num_tasks=6, samples=3, sampling=SAMPLING, seed=1, batch_size=6
    )
    records, stats = rollout(policy, config)
    assert len(records) == 18 and stats.episodes == 18
    validate_groups(records, samples=3)
    assert sorted({r["prompt_id"] for r in records}) == list(range(6))
    outcomes = set()
    for r in records:
        turns = len(r["turn_rewards"])
        assistant = [m["content"] for m in r["messages"] if m["role"] == "assistant"]
        assert r["messages"][0] == {"role": "system", "content": "Reply."}
        assert [m["role"] for m in r["messages"][1:]] == ["user", "assistant"] * turns
        # the record agrees with the env's own rule, turn by turn
        expected = [int(len(a) > 0 and len(a) % 2 == r["prompt_id"] % 2) for a in assistant]
        assert list(r["verifier"].values()) == expected
        assert r["t_star"] == (turns if expected[-1] else None)
        assert turns == 3 or r["t_star"] == turns
        empty = sum(1 for a in assistant if not a)
        assert r["format_penalty"] == pytest.approx(PENALTY * empty)
        assert list(r["turn_rewards"].values()) == [float(v) for v in expected]  # penalty kept apart
        assert r["answer_norms"] == [str(len(a) % 2) if a else None for a in assistant]
        assert r["meta"]["backend"] == "hf" and r["meta"]["sampling"]["max_new_tokens"] == 6
        assert sum(t["tokens"] for t in r["meta"]["turns"]) > 0
        outcomes.add(r["t_star"])
    assert len(outcomes) >= 2  # some solved, some not (or solved at different turns)
    # all K samples of a task replay the same task, env randomness included
    for prompt_id in range(6):
        firsts = {r["messages"][1]["content"] for r in records if r["prompt_id"] == prompt_id}
        assert len(firsts) == 1
    assert stats.generated_tokens == sum(t["tokens"] for r in records for t in r["meta"]["turns"])
    assert stats.generate_calls >= 3  # one call per turn per chunk


def test_lockstep_one_generate_call_per_turn(tiny_model_dir):
    """Every turn is one batched call over the chunk's live episodes, which shrinks as episodes end."""

    class CountingPolicy(PolicyBase):
        backend = "hf"

        def __init__(self, inner):
            self.inner, self.model_id, self.calls = inner, inner.model_id, []

        def generate(self, conversations, params, seeds=None):
            self.calls.append(len(conversations))
            return self.inner.generate(conversations, params, seeds)

    counting = CountingPolicy(make_policy("hf", str(tiny_model_dir)))
    config = RolloutConfig(env_id=TEST_ENV_ID, num_tasks=4, samples=2, sampling=SAMPLING, batch_size=8)
    records = list(iter_rollouts(counting, config))
    assert counting.calls[0] == 8
    assert counting.calls == sorted(counting.calls, reverse=True)
    assert len(counting.calls) == max(len(r["turn_rewards"]) for r in records)
    for turn, live in enumerate(counting.calls, start=1):
        assert live == sum(1 for r in records if len(r["turn_rewards"]) >= turn)


def test_continuous_schedule_needs_a_policy_with_sessions(tiny_model_dir):
    class BatchOnly(PolicyBase):  # the protocol without sessions, as the vllm and openai backends are
        backend, model_id = "test", "x"

        def __init__(self, inner):
            self.inner = inner

        def generate(self, conversations, params, seeds=None):
            return self.inner.generate(conversations, params, seeds)

    batch_only = BatchOnly(make_policy("hf", str(tiny_model_dir)))
    with pytest.raises(ValueError, match="needs a policy with sessions"):
        list(iter_rollouts(batch_only, RolloutConfig(env_id=TEST_ENV_ID, num_tasks=1, schedule="continuous")))
    with pytest.raises(ValueError, match="schedule must be one of"):
        RolloutConfig(env_id=TEST_ENV_ID, schedule="eager").validate()
    records = list(
        iter_rollouts(batch_only, RolloutConfig(env_id=TEST_ENV_ID, num_tasks=1, sampling=SAMPLING))
    )
    assert records[0]["meta"]["schedule"] == "lockstep"  # the default
    assert "tools" not in records[0]["meta"]  # an env without tools: nothing recorded, none passed


def test_a_policy_outside_the_protocol_is_refused_with_the_fix():
    class Bare:  # what the protocol asked for before its optional capabilities were declared
        backend, model_id = "bare", "x"

        def generate(self, conversations, params, seeds=None):
            raise AssertionError("never called")

        def close(self):
            pass

    with pytest.raises(
        TypeError, match=r"Bare does not implement the Policy protocol \(missing needs_env.*PolicyBase"
    ):
        list(iter_rollouts(Bare(), RolloutConfig(env_id=TEST_ENV_ID, num_tasks=1)))


class ParityOracle(PolicyBase):
    """A scripted policy that reads each episode's env (``needs_env``): always the right parity."""

    backend, model_id = "scripted", "parity-oracle"
    needs_env = True

    def __init__(self):
        self.env_batches = []

    def generate(self, conversations, params, seeds=None, *, envs=None):
        self.env_batches.append(envs)
        replies = []
        for conversation, env in zip(conversations, envs, strict=True):
            task = env.unwrapped.index  # the live episode's own state, not a copy
            assert f"Task {task} " in conversation[1]["content"]
            replies.append([Completion(text="xx"[: 2 - task % 2], num_tokens=1, finish_reason="stop")])
        return replies


def test_needs_env_hands_the_live_episodes_envs_to_the_policy():
    oracle = ParityOracle()
    config = RolloutConfig(env_id=TEST_ENV_ID, num_tasks=5, samples=2, batch_size=4)
    records = list(iter_rollouts(oracle, config))
    assert len(records) == 10 and all(r["t_star"] == 1 for r in records)
    # one batch per chunk (2 tasks x 2 samples, then 2 x 2, then 1 x 2), each env a distinct live episode
    assert [len(envs) for envs in oracle.env_batches] == [4, 4, 2]
    assert all(len({id(env) for env in envs}) == len(envs) for envs in oracle.env_batches)


class PrefetchParityEnv(ParityEnv):
    """ParityEnv with the PrefetchingEnv capability; logs prefetches and steps in one shared list."""

    log: list = []

    def prefetch(self, action):
        type(self).log.append(("prefetch", self.index, action))

    def step(self, action):
        type(self).log.append(("step", self.index, action))
        return super().step(action)


def test_prefetching_envs_start_every_check_before_the_first_step():
    if "drift-test/PrefetchParity-v0" not in gym.registry:
        gym.register(id="drift-test/PrefetchParity-v0", entry_point=PrefetchParityEnv)
    PrefetchParityEnv.log = []
    config = RolloutConfig(env_id="drift-test/PrefetchParity-v0", num_tasks=3, samples=1, batch_size=3)
    records = list(iter_rollouts(ParityOracle(), config))
    assert len(records) == 3
    # one turn, one batch: three prefetches with the replies the steps then get, then three steps
    assert [kind for kind, *_ in PrefetchParityEnv.log] == ["prefetch"] * 3 + ["step"] * 3
    assert PrefetchParityEnv.log[:3] == [("prefetch", i, a) for _, i, a in PrefetchParityEnv.log[3:]]


class EndlessParityEnv(ParityEnv):
    """Breaks the contract: never ends an episode (a wrong reply is never truncated)."""

    def step(self, action):
        obs, reward, _, _, info = super().step(action)
        self.done = False
        return obs or "Again.", reward, False, False, info


def test_an_env_that_never_ends_is_stopped_at_the_turn_guard():
    from drift_train.rollout import MAX_TURNS_GUARD

    class AlwaysWrong(ParityOracle):
        def generate(self, conversations, params, seeds=None, *, envs=None):
            self.env_batches.append(envs)
            return [
                [Completion(text="xx"[: 1 + env.unwrapped.index % 2], num_tokens=1, finish_reason="stop")]
                for env in envs
            ]

    if "drift-test/EndlessParity-v0" not in gym.registry:
        gym.register(id="drift-test/EndlessParity-v0", entry_point=EndlessParityEnv)
    wrong = AlwaysWrong()
    config = RolloutConfig(env_id="drift-test/EndlessParity-v0", num_tasks=1, samples=1, max_turns=1)
    with pytest.raises(RuntimeError, match=rf"ran past {MAX_TURNS_GUARD} turns without ending"):
        list(iter_rollouts(wrong, config))
    assert len(wrong.env_batches) == MAX_TURNS_GUARD  # exactly that many turns were taken


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "parity",
            "description": "The parity of a number.",
            "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        },
    }
]


class ToolParityEnv(ParityEnv):
    """ParityEnv that offers tools through ``info["tools"]`` (odd tasks only: tools vary per episode)."""

    def _info(self):
        return {**super()._info(), **({"tools": TOOLS} if self.index % 2 else {})}


def test_tools_from_info_reach_the_policy_per_conversation_and_the_record(policy):
    if "drift-test/ToolParity-v0" not in gym.registry:
        gym.register(id="drift-test/ToolParity-v0", entry_point=ToolParityEnv)

    class ToolRecorder(PolicyBase):
        backend, model_id = "test", "tool-recorder"

        def __init__(self):
            self.tool_batches = []

        def generate(self, conversations, params, seeds=None, *, tools=None):
            self.tool_batches.append(tools)
            return [[Completion(text="", num_tokens=0, finish_reason="stop")] for _ in conversations]

    recorder = ToolRecorder()
    config = RolloutConfig(env_id="drift-test/ToolParity-v0", num_tasks=2, samples=2, max_turns=2)
    records = list(iter_rollouts(recorder, config))
    # tasks 0 and 1, two samples each, in episode order: no tools for task 0, TOOLS for task 1
    assert recorder.tool_batches == [[None, None, TOOLS, TOOLS]] * 2
    for r in records:
        assert r["meta"].get("tools") == (TOOLS if r["prompt_id"] % 2 else None)
    # the hf backend takes them too (the tiny model's template ignores tools), in both schedules
    for schedule in ("lockstep", "continuous"):
        config = RolloutConfig(
            env_id="drift-test/ToolParity-v0", num_tasks=2, samples=1, sampling=SAMPLING, schedule=schedule
        )
        tools_by_task = {r["prompt_id"]: r["meta"].get("tools") for r in iter_rollouts(policy, config)}
        assert tools_by_task == {0: None, 1: TOOLS}


@pytest.mark.parametrize("schedule", ["lockstep", "continuous"])
def test_same_seed_same_file_and_other_seed_differs(policy, tmp_path, schedule):
    def run(seed, name):
        config = RolloutConfig(
            env_id=TEST_ENV_ID,
            num_tasks=4,
            samples=2,
            sampling=SAMPLING,
            seed=seed,
            batch_size=4,
            schedule=schedule,
        )
        rollout(policy, config, tmp_path / name)
        return strip_times(read_trajectories(tmp_path / name))

    a, b, c = run(3, "a.jsonl"), run(3, "b.jsonl"), run(4, "c.jsonl")
    assert a == b
    assert [r["messages"] for r in a] != [r["messages"] for r in c]


@pytest.mark.parametrize("schedule", ["lockstep", "continuous"])
def test_resume_after_a_cut_write_matches_an_uninterrupted_run(policy, tmp_path, schedule):
    config = RolloutConfig(
        env_id=TEST_ENV_ID, num_tasks=6, samples=2, sampling=SAMPLING, seed=5, batch_size=4, schedule=schedule
    )
    full, _ = rollout(policy, config, tmp_path / "full.jsonl")
    # an interrupted run: a few records written, then half a line when the process died
    partial = tmp_path / "partial.jsonl"
    with TrajectoryWriter(partial) as writer:
        for i, record in enumerate(iter_rollouts(policy, config)):
            if i == 5:
                break
            writer.write(record)
    with open(partial, "a") as handle:
        handle.write(json.dumps(full[0])[:100])
    records, stats = rollout(policy, config, partial, resume=True)
    assert stats.skipped == 5 and stats.episodes == 7
    on_disk = list(read_trajectories(partial))
    assert len(on_disk) == 12
    assert strip_times(on_disk) == strip_times(full) == strip_times(records)
    # resuming a finished file generates nothing
    _, again = rollout(policy, config, partial, resume=True)
    assert again.episodes == 0 and again.generate_calls == 0 and again.skipped == 12


def test_resume_refuses_a_file_from_other_settings(policy, tmp_path):
    config = RolloutConfig(env_id=TEST_ENV_ID, num_tasks=2, samples=2, sampling=SAMPLING, seed=0)
    rollout(policy, config, tmp_path / "r.jsonl")
    other = RolloutConfig(env_id=TEST_ENV_ID, num_tasks=2, samples=2, sampling=SAMPLING, seed=1)
    with pytest.raises(ValueError, match=r"cannot resume: the file was written with meta.seed=0"):
        rollout(policy, other, tmp_path / "r.jsonl", resume=True)
    with pytest.raises(FileExistsError, match="resume"):
        rollout(policy, config, tmp_path / "r.jsonl")


def test_config_errors(policy):
    with pytest.raises(ValueError, match="samples"):
        RolloutConfig(env_id=TEST_ENV_ID, samples=0).validate()
    with pytest.raises(ValueError, match="has 50 tasks"):
        list(iter_rollouts(policy, RolloutConfig(env_id=TEST_ENV_ID, num_tasks=10, task_offset=45)))
    with pytest.raises(ValueError, match="cannot make env 'drift-test/Nope-v0'"):
        list(iter_rollouts(policy, RolloutConfig(env_id="drift-test/Nope-v0", num_tasks=1)))
    with pytest.raises(ValueError, match="cannot make env .*unexpected keyword argument 'bogus'"):
        list(iter_rollouts(policy, RolloutConfig(env_id=TEST_ENV_ID, env_kwargs={"bogus": 1}, num_tasks=1)))


class NoMessagesEnv(ParityEnv):
    """Breaks the contract: info carries no conversation."""

    def _info(self):
        return {"task_id": f"parity-{self.index}"}


def test_env_without_messages_is_named(policy):
    if "drift-test/NoMessages-v0" not in gym.registry:
        gym.register(id="drift-test/NoMessages-v0", entry_point=NoMessagesEnv)
    with pytest.raises(ValueError, match=r"info from reset\(\) has no 'messages' list"):
        list(iter_rollouts(policy, RolloutConfig(env_id="drift-test/NoMessages-v0", num_tasks=1)))


def test_summary_numbers():
    def rec(pid, verdicts, answers=None):
        keys = [f"t{i}" for i in range(1, len(verdicts) + 1)]
        return {
            "prompt_id": pid,
            "turn_rewards": dict.fromkeys(keys, 0.0),
            "verifier": dict(zip(keys, verdicts, strict=True)),
            "t_star": next((i for i, v in enumerate(verdicts, 1) if v), None),
            "answer_norms": answers or ["a"] * len(verdicts),
            "meta": {},
        }

    summary = summarize(
        [rec(0, [1]), rec(0, [0, 1]), rec(1, [0, 0, 0], ["a", None, None]), rec(1, [0, 0, 1])]
    )
    assert summary["episodes"] == 4 and summary["groups"] == 2
    assert summary["reached"] == [4, 3, 2]
    assert summary["turn_accuracy"] == [0.25, pytest.approx(1 / 3), 0.5]
    assert summary["success_within"] == [0.25, 0.5, 0.75]
    assert summary["format_error_rate"] == pytest.approx(2 / 9)


# ---- the drift suite ------------------------------------------------------------------------------

SUITE = [
    ("drift/MathFeedback-v0", {}),
    ("drift/CodeFeedback-v0", {}),
    ("drift/UserCorrection-v0", {}),
]


@pytest.mark.parametrize(("env_id", "kwargs"), SUITE, ids=[e for e, _ in SUITE])
def test_suite_env_end_to_end(policy, tmp_path, env_id, kwargs):
    from drift_train.rollout import make_env

    try:
        env = make_env(env_id, {**kwargs, "max_turns": 2})
    except (ValueError, ModuleNotFoundError, ImportError) as err:
        pytest.skip(f"{env_id} is not available yet: {err}")
    config = RolloutConfig(
        env_id=env_id,
        env_kwargs=kwargs,
        num_tasks=3,
        samples=2,
        max_turns=2,
        sampling=SamplingParams(max_new_tokens=24),
        batch_size=6,
    )
    records, _ = rollout(policy, config, tmp_path / "r.jsonl")
    on_disk = list(read_trajectories(tmp_path / "r.jsonl"))
    assert strip_times(on_disk) == strip_times(records)
    validate_groups(on_disk, samples=2)
    for r in on_disk:
        task = env.unwrapped.get_task(r["prompt_id"])
        assert r["task_id"] == task.task_id
        assert r["messages"][1 if r["messages"][0]["role"] == "system" else 0][
            "content"
        ] == env.unwrapped.first_message(task)
        assert 1 <= len(r["turn_rewards"]) <= 2
        assert r["env_kwargs"] == {**kwargs, "max_turns": 2}
    env.close()


# ---- the CLI ----------------------------------------------------------------------------------


def test_cli_runs_resumes_and_reports(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    args = [
        "--env",
        "drift/MathFeedback-v0",
        "--env-kwargs",
        '{"feedback": "hint"}',
        "--model",
        str(tiny_model_dir),
        "--num-tasks",
        "2",
        "--samples",
        "2",
        "--max-turns",
        "2",
        "--max-new-tokens",
        "8",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "accuracy at turn" in captured.out and "tok/s" in captured.out
    records = list(read_trajectories(out))
    assert len(records) == 4 and records[0]["env_kwargs"] == {"feedback": "hint", "max_turns": 2}
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert len(list(read_trajectories(out))) == 4
    assert main(args + ["--resume", "--seed", "9"]) == 1
    assert "cannot resume" in capsys.readouterr().err
    assert main(args[:2] + ["--env-kwargs", "[1]"] + args[4:] + ["--overwrite"]) == 2
    assert "not a JSON object" in capsys.readouterr().err


def test_cli_killed_mid_run_then_resumed_matches_uninterrupted(tiny_model_dir, tmp_path):
    """A real ``drift rollout`` process is killed mid-run; ``--resume`` completes the same file."""
    common = [
        "--env",
        TEST_ENV_ID,
        "--model",
        str(tiny_model_dir),
        "--num-tasks",
        "6",
        "--samples",
        "2",
        "--max-new-tokens",
        "6",
        "--batch-size",
        "4",
        "--seed",
        "2",
        "--no-progress",
    ]
    runner = (
        "import sys, gymnasium as gym; sys.path[:0] = [{repo!r}, {tests!r}]; import test_rollout; "
        "from drift_train.cli import main; sys.exit(main(sys.argv[1:]))"
    ).format(repo=str(REPO), tests=str(REPO / "tests"))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    killed = tmp_path / "killed.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", runner, "rollout", *common, "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if killed.exists() and killed.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it could be interrupted: {process.stderr.read()}"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    written = killed.read_text().count("\n")
    assert 2 <= written < 12
    resumed = subprocess.run(
        [sys.executable, "-c", runner, "rollout", *common, "--out", str(killed), "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    full = tmp_path / "full.jsonl"
    assert main(["rollout", *common, "--out", str(full)][1:]) == 0
    resumed_records = list(read_trajectories(killed))
    assert len(resumed_records) == 12
    assert strip_times(resumed_records) == strip_times(read_trajectories(full))


def test_openai_backend_through_the_engine(openai_server, tiny_model_dir, tmp_path):
    """The engine drives a real ``transformers serve`` process like any other backend."""
    with make_policy("openai", str(tiny_model_dir), base_url=openai_server, max_concurrency=4) as remote:
        config = RolloutConfig(
            env_id=TEST_ENV_ID, num_tasks=2, samples=2, max_turns=2, sampling=SamplingParams(max_new_tokens=6)
        )
        records, stats = rollout(remote, config, tmp_path / "openai.jsonl")
    validate_groups(list(read_trajectories(tmp_path / "openai.jsonl")), samples=2)
    assert len(records) == 4 and stats.generated_tokens > 0
    assert {r["meta"]["backend"] for r in records} == {"openai"}
    assert records[0]["meta"]["base_url"] == openai_server
    # transformers serve returns no token ids: the records say so and train from their text
    assert all("tokens" not in r and "no token ids" in r["meta"]["tokens_unavailable"] for r in records)
    assert all(r["meta"]["chat_template_kwargs"] == {} for r in records)  # the text path still applies them
    from transformers import AutoTokenizer

    from drift_train.data import RenderConfig, build_dataset

    dataset = build_dataset(records, AutoTokenizer.from_pretrained(tiny_model_dir), RenderConfig(), "sft")
    assert dataset.stats.text_records == len(records) and dataset.stats.token_id_records == 0
