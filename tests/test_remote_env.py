"""``drift/Remote-v0``: an env served by a real ``drift serve-env`` process, played as a Gymnasium env.

Remote-v0 is not in ``drift_envs.ENV_IDS`` (it needs a server, and ``tests/test_env_contract.py`` runs its
ids without one), so this file holds it to the same contract (docs/design.md) against a served MathFeedback:
``check_env``, the spaces, the ``info`` keys, the misuse errors, valid observations for a hostile reply,
``make_vec`` in both modes. Then ``drift rollout --model tiny`` through it writes the records a local
rollout writes (MathFeedback and CodeFeedback), and a server killed by its PID mid-rollout is a clear
error, after which ``--resume`` against the restarted server completes the file, every record once.

No skip: scripts/setup.sh installs the [openenv] extra wherever the suite runs, so a missing one fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import _free_port, _stop_by_pid, start_server, wait_until_healthy
from env_server import serve_env
from gymnasium.utils.env_checker import check_env

import drift_envs  # noqa: F401 - registers drift/Remote-v0
from drift_envs.core import UnicodeText
from drift_envs.remote import RemoteEnvError, RemoteSessionLost
from drift_train import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MATH = ("drift/MathFeedback-v0", {"max_turns": 3, "feedback": "hint"})
CODE = ("drift/CodeFeedback-v0", {"max_turns": 2})
# the rollouts compared: few episodes of the embedded tiny model (one group per chunk: several flushes)
ROLLOUT_ARGS = {
    "math": ["--num-tasks", "3", "--samples", "2", "--batch-size", "2", "--max-new-tokens", "8"],
    "code": ["--num-tasks", "2", "--samples", "2", "--batch-size", "2", "--max-new-tokens", "8"],
}
LONE = "\ud800"
HOSTILE_REPLY = f"{LONE} \\boxed{{7{LONE}}} " + "filler " * 12_000 + LONE


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """``--model tiny`` is built once into this module's own cache (DRIFT_CACHE), subprocesses included."""
    folder = tmp_path_factory.mktemp("drift-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRIFT_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    """``drift serve-env`` of MathFeedback and of CodeFeedback (real processes, stopped by PID)."""
    folder = tmp_path_factory.mktemp("remote-env")
    started = {}
    try:
        for name, (env_id, kwargs) in (("math", MATH), ("code", CODE)):
            started[name] = serve_env(env_id, kwargs, folder, wait=False)
        for served in started.values():
            served.wait()
        yield started
    finally:
        for served in started.values():
            served.stop()


def _pair(servers, name: str = "math"):
    env_id, kwargs = MATH if name == "math" else CODE
    return gym.make("drift/Remote-v0", url=servers[name].url), gym.make(env_id, **kwargs)


def _utf8(value) -> None:
    json.dumps(value, ensure_ascii=False, default=repr).encode("utf-8")


# --------------------------------------------------------------------------------------------------
# the env contract


def test_remote_env_passes_check_env_and_has_the_served_envs_spaces(servers) -> None:
    remote, local = _pair(servers)
    check_env(remote.unwrapped)
    assert isinstance(remote.observation_space, UnicodeText) and isinstance(remote.action_space, UnicodeText)
    assert remote.observation_space == local.observation_space and remote.action_space == local.action_space
    assert remote.unwrapped.num_tasks() == local.unwrapped.num_tasks()
    assert remote.unwrapped.format_penalty == local.unwrapped.format_penalty
    assert remote.unwrapped.max_turns == 3
    remote.close()
    local.close()


def test_remote_env_gives_the_local_envs_observations_rewards_and_info(servers) -> None:
    remote, local = _pair(servers)
    for env in (remote, local):
        env.reset(seed=1)  # some other episode first: a reset with options replays its task regardless
    got = remote.reset(seed=7, options={"index": 9})
    want = local.reset(seed=7, options={"index": 9})
    assert list(got) == json.loads(json.dumps(want))
    assert {"task_id", "turn", "max_turns", "messages"} <= set(got[1])
    assert remote.unwrapped.oracle_reply() == local.unwrapped.oracle_reply()
    for reply in ["\\boxed{-12345}", "no answer here", local.unwrapped.oracle_reply()]:
        got, want = remote.step(reply), local.step(reply)
        assert list(got) == json.loads(json.dumps(want))
        assert {"correct", "format_ok", "answer", "repeated", "feedback"} <= set(got[4])
        assert got[4]["messages"][0]["role"] == "system"
    assert got[2] is True and got[0] == "" and remote.unwrapped.oracle_reply() is None
    # by task id too
    task_id = got[4]["task_id"]
    assert remote.reset(options={"task_id": task_id})[1]["index"] == 9
    remote.close()
    local.close()


def test_misuse_is_an_error_not_garbage(servers) -> None:
    remote = gym.make("drift/Remote-v0", url=servers["math"].url).unwrapped
    with pytest.raises(RemoteEnvError, match="reset\\(\\) before step"):
        remote.step("\\boxed{1}")
    remote.reset(seed=0, options={"index": 0})
    with pytest.raises(TypeError, match="str"):
        remote.step(42)
    remote.step(remote.oracle_reply())
    with pytest.raises(RemoteEnvError, match="ended"):
        remote.step("\\boxed{1}")
    with pytest.raises(RemoteEnvError, match="out of range"):
        remote.reset(options={"index": 10**9})
    with pytest.raises(RemoteEnvError, match="unknown \\['idx'\\]"):
        remote.reset(options={"idx": 1})
    remote.reset(options={"index": 1})  # the session is still usable after refused requests
    remote.close()
    with pytest.raises(RemoteSessionLost, match="closed env"):
        remote.reset()


def test_prefetch_sends_the_step_ahead_and_step_reads_it(servers) -> None:
    """The rollout engine prefetches a batch of steps (drift_train.rollout.PrefetchingEnv): the answers are
    the local env's; a step with another reply than the prefetched one is refused; a reset after a
    prefetch that no step read starts a clean episode."""
    from drift_train.rollout import PrefetchingEnv

    remote, local = _pair(servers)
    assert isinstance(remote.unwrapped, PrefetchingEnv)
    remote.reset(seed=2, options={"index": 4})
    local.reset(seed=2, options={"index": 4})
    for reply in ["\\boxed{-12345}", local.unwrapped.oracle_reply()]:
        remote.unwrapped.prefetch(reply)
        assert list(remote.step(reply)) == json.loads(json.dumps(local.step(reply)))
    remote.reset(options={"index": 4})
    remote.unwrapped.prefetch("\\boxed{-12345}")
    with pytest.raises(RemoteEnvError, match="another reply than the one prefetch"):
        remote.step("\\boxed{1}")
    remote.reset(options={"index": 5})
    remote.unwrapped.prefetch("\\boxed{-12345}")
    obs, info = remote.reset(seed=2, options={"index": 4})  # the unread answer is settled first
    assert info["index"] == 4 and info["turn"] == 0
    assert remote.step("\\boxed{-1}")[4]["turn"] == 1
    remote.close()
    local.close()


def test_a_hostile_reply_still_gets_valid_observations(servers) -> None:
    remote = gym.make("drift/Remote-v0", url=servers["math"].url)
    obs, info = remote.reset(seed=0)
    assert remote.observation_space.contains(obs)
    for _ in range(2):
        obs, _, terminated, truncated, info = remote.step(HOSTILE_REPLY)
        assert remote.observation_space.contains(obs)
        _utf8(obs)
        _utf8(info)
        if terminated or truncated:
            break
    remote.close()


def test_make_vec_sync_and_async_give_what_single_envs_give(servers) -> None:
    url = servers["math"].url
    env_id, kwargs = MATH
    singles = [gym.make(env_id, **kwargs) for _ in range(2)]
    expected = [e.reset(seed=i)[0] for i, e in enumerate(singles)]
    replies = ("\\boxed{3}", singles[1].unwrapped.oracle_reply())
    steps = [e.step(a) for e, a in zip(singles, replies, strict=True)]
    for mode in ("sync", "async"):
        env = gym.make_vec("drift/Remote-v0", num_envs=2, vectorization_mode=mode, url=url)
        try:
            obs, _ = env.reset(seed=0)
            assert list(obs) == expected, mode
            obs, rewards, terminated, truncated, _ = env.step(replies)
            assert list(obs) == [s[0] for s in steps], mode
            assert list(rewards) == [s[1] for s in steps]
            assert list(terminated) == [s[2] for s in steps] and list(truncated) == [s[3] for s in steps]
        finally:
            env.close()


def test_bad_arguments_and_absent_servers_are_clear_errors(servers) -> None:
    with pytest.raises(ValueError, match="url must look like"):
        gym.make("drift/Remote-v0", url="ftp://127.0.0.1:1")
    with pytest.raises(ValueError, match="needs url"):
        gym.make("drift/Remote-v0", url="")
    with pytest.raises(ValueError, match="max_turns=5 but .* max_turns=3"):
        gym.make("drift/Remote-v0", url=servers["math"].url, max_turns=5)
    assert gym.make("drift/Remote-v0", url=servers["math"].url, max_turns=3).unwrapped.max_turns == 3
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(RemoteSessionLost, match=f"127.0.0.1:{port}.*drift serve-env"):
        gym.make("drift/Remote-v0", url=f"http://127.0.0.1:{port}")
    # a server that accepts the connection and never answers: an error once connect_timeout has passed
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        started = time.monotonic()
        with pytest.raises(RemoteSessionLost, match="cannot open a session"):
            gym.make("drift/Remote-v0", url=f"http://127.0.0.1:{mute.getsockname()[1]}", connect_timeout=1)
        assert time.monotonic() - started < 10


ECHO_SERVER = '''
"""Another project's OpenEnv text env, on OpenEnv's own base classes: it echoes the reply, 2 steps."""
from openenv.core.env_server import Action, Environment, Observation, State, create_fastapi_app


class EchoAction(Action):
    message: str


class EchoObservation(Observation):
    echoed_message: str = ""


class EchoEnv(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def reset(self, seed=None, episode_id=None, **kwargs):
        self.steps = 0
        return EchoObservation(echoed_message=f"hello {seed}")

    def step(self, action, timeout_s=None, **kwargs):
        self.steps += 1
        return EchoObservation(echoed_message=action.message, reward=len(action.message), done=self.steps >= 2)

    @property
    def state(self):
        return State(step_count=getattr(self, "steps", 0))


app = create_fastapi_app(EchoEnv, EchoAction, EchoObservation, max_concurrent_envs=2)
'''


def test_remote_env_plays_another_projects_openenv_server(tmp_path: Path) -> None:
    """A text env served by OpenEnv alone (not drift serve-env): its text field is named, it states no
    task count, turn budget or oracle, and its episode ends on done without saying how."""
    (tmp_path / "echo_server.py").write_text(ECHO_SERVER)
    port = _free_port()
    log = tmp_path / "echo.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "echo_server:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = start_server(command, {**os.environ, "PYTHONPATH": str(tmp_path)}, log)
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}", log, "uvicorn echo_server:app")
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(RemoteEnvError, match="no text field 'text'.*echoed_message"):
            gym.make("drift/Remote-v0", url=url).reset(seed=1)
        env = gym.make("drift/Remote-v0", url=url, observation_field="echoed_message")
        assert env.reset(seed=4) == ("hello 4", {})
        assert not hasattr(env.unwrapped, "num_tasks") and not hasattr(env.unwrapped, "format_penalty")
        assert env.unwrapped.oracle_reply() is None
        assert env.step("abc") == ("abc", 3.0, False, False, {})
        obs, *rest, _ = env.step("long " * 20_000)
        assert tuple(rest) == (100_000.0, True, False)  # done with a reward: solved
        assert len(obs) == env.observation_space.max_length == 65536 and env.observation_space.contains(obs)
        env.reset(seed=5)
        env.step("x")
        assert env.step("")[1:4] == (0.0, False, True)  # done without one: out of turns
        env.close()
    finally:
        _stop_by_pid(process.pid)


# --------------------------------------------------------------------------------------------------
# drift rollout through Remote-v0


def _rollout(out: Path, env_id: str, env_kwargs: dict, name: str, *extra: str) -> None:
    argv = ["rollout", "--model", "tiny", "--env", env_id, "--env-kwargs", json.dumps(env_kwargs)]
    assert cli.main([*argv, *ROLLOUT_ARGS[name], "--out", str(out), "--no-progress", *extra]) == 0


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def local_records(cache, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The local rollouts (``name -> records``) the remote ones must equal, each made once."""
    made = {}

    def get(name: str) -> list[dict]:
        if name not in made:
            env_id, kwargs = MATH if name == "math" else CODE
            out = tmp_path_factory.mktemp(f"local-{name}") / "local.jsonl"
            _rollout(out, env_id, kwargs, name)
            made[name] = _records(out)
        return made[name]

    return get


def _assert_same_records(remote: list[dict], local: list[dict], url: str) -> None:
    key = lambda r: (r["prompt_id"], r["traj_idx"])  # noqa: E731
    assert sorted(map(key, remote)) == sorted(map(key, local)), "every record exactly once"
    by_key = {key(r): r for r in remote}
    for want in local:
        got = by_key[key(want)]
        assert got["meta"]["served_by"] == {"env_id": "drift/Remote-v0", "env_kwargs": {"url": url}}
        strip = lambda r: {k: v for k, v in r.items() if k != "meta"}  # noqa: E731
        assert json.dumps(strip(got)) == json.dumps(strip(want)), key(want)


@pytest.mark.parametrize("name", ["math", "code"])
def test_a_rollout_through_remote_writes_the_local_rollouts_records(
    name: str, servers, local_records, tmp_path: Path
) -> None:
    url = servers[name].url
    out = tmp_path / "remote.jsonl"
    _rollout(out, "drift/Remote-v0", {"url": url}, name)
    _assert_same_records(_records(out), local_records(name), url)


def test_a_killed_server_is_a_clear_error_and_resume_completes_the_file(
    servers, local_records, cache, tmp_path: Path
) -> None:
    served = servers["math"]
    out = tmp_path / "remote.jsonl"
    argv = [
        "rollout",
        "--model",
        "tiny",
        "--env",
        "drift/Remote-v0",
        "--env-kwargs",
        json.dumps({"url": served.url}),
    ]
    argv += [*ROLLOUT_ARGS["math"], "--out", str(out), "--no-progress"]
    # the rollout in a process of its own, so that it can be watched while the server goes away under it
    rollout = subprocess.Popen(
        [sys.executable, "-m", "drift_train.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 180
        while not (out.exists() and len(out.read_text().splitlines()) >= 2):
            assert rollout.poll() is None, rollout.communicate()
            assert time.monotonic() < deadline, "the rollout wrote no records in time"
            time.sleep(0.1)
        os.kill(served.pid, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = rollout.communicate(timeout=120)
    finally:
        if rollout.poll() is None:
            rollout.kill()
            rollout.wait()
    served.stop()  # reap it
    assert rollout.returncode != 0
    assert f"lost the session with the env server at {served.url}" in stderr.splitlines()[-1], stderr[-2000:]
    assert time.monotonic() - killed < 60
    written = len(_records(out))
    assert 2 <= written < 6
    # the server again, on the same port: --resume adds the missing records
    servers["math"] = serve_env(*MATH, served.log_path.parent, port=served.port)
    _rollout(out, "drift/Remote-v0", {"url": served.url}, "math", "--resume")
    _assert_same_records(_records(out), local_records("math"), served.url)
