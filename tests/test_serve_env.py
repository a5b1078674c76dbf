"""``drift serve-env``: a registered env served by OpenEnv's own server (openenv-core, extra [openenv]), in a
real server process on a loopback port, played over its real ``/ws`` sessions and HTTP routes.

One server serves a third party's env (a module on PYTHONPATH, ``module:id``): MathFeedback whose step
sleeps on a reply that starts with ``SLOW`` and whose ``close`` leaves a line in a file, so the tests can
see a slow step holding up only its own session and a dropped session's env being closed.

No skip: scripts/setup.sh installs the [openenv] extra wherever the suite runs, so a missing one fails.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import gymnasium as gym
import pytest
from env_server import serve_env
from websockets.sync.client import connect

import drift_envs  # noqa: F401 - registers the drift ids for the local twin
from drift_envs.remote import RemoteEnvError

SLOW_ENV_MODULE = '''
"""A third party's env: MathFeedback with a slow step and a visible close."""
import os
import time

import gymnasium as gym

from drift_envs.math.env import MathFeedbackEnv


class SlowMathEnv(MathFeedbackEnv):
    def reset(self, **kwargs):
        self.live = True
        return super().reset(**kwargs)

    def step(self, action):
        if isinstance(action, str) and action.startswith("SLOW"):
            time.sleep(float(os.environ["SLOW_STEP_S"]))
        out = super().step(action)
        self.live = not (out[2] or out[3])
        return out

    def close(self):
        with open(os.environ["SLOW_ENV_CLOSES"], "a") as f:
            f.write(f"live={getattr(self, 'live', False)}\\n")
        super().close()


gym.register(id="drift-test/SlowMath-v0", entry_point=SlowMathEnv)
'''
ENV_ID = "slow_math_env:drift-test/SlowMath-v0"
ENV_KWARGS = {"max_turns": 3, "feedback": "hint"}
SLOW_STEP_S = 3.0
MAX_SESSIONS = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One ``drift serve-env`` of the slow third-party env, two sessions at most."""
    folder = tmp_path_factory.mktemp("serve-env")
    (folder / "slow_math_env.py").write_text(SLOW_ENV_MODULE)
    closes = folder / "closes.txt"
    closes.touch()
    served = serve_env(
        ENV_ID,
        ENV_KWARGS,
        folder,
        max_sessions=MAX_SESSIONS,
        pythonpath=folder,
        extra_env={"SLOW_STEP_S": str(SLOW_STEP_S), "SLOW_ENV_CLOSES": str(closes)},
    )
    served.closes = closes
    served.folder = folder
    yield served
    served.stop()


def _ws(url: str):
    return connect(url.replace("http://", "ws://") + "/ws", open_timeout=10, proxy=None)


def _call(ws, message: dict, timeout: float = 60.0) -> dict:
    ws.send(json.dumps(message))
    return json.loads(ws.recv(timeout=timeout))


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _local_twin(folder: Path):
    """The same third-party env made in this process (as the server makes it)."""
    sys.path.insert(0, str(folder))
    try:
        return gym.make(ENV_ID, **ENV_KWARGS)
    finally:
        sys.path.remove(str(folder))


def test_health_schema_and_metadata_routes_as_openenv_serves_them(server) -> None:
    assert _get(f"{server.url}/health") == {"status": "healthy"}
    schema = _get(f"{server.url}/schema")
    assert schema["action"]["properties"]["message"]["type"] == "string"
    assert "message" in schema["action"]["required"]
    assert {"text", "info", "terminated", "truncated", "done", "reward"} <= set(
        schema["observation"]["properties"]
    )
    assert _get(f"{server.url}/metadata")["name"] == ENV_ID


def test_a_ws_session_plays_the_env_exactly_as_the_local_env(server, monkeypatch) -> None:
    """Observation text, info (JSON), reward and done of each call equal the local env's, through a
    wrong reply, a reply without an answer and the oracle's reply."""
    monkeypatch.setenv("SLOW_STEP_S", "0")
    monkeypatch.setenv("SLOW_ENV_CLOSES", str(server.folder / "local-closes.txt"))
    local = _local_twin(server.folder)
    obs, info = local.reset(seed=11, options={"index": 5})
    with _ws(server.url) as ws:
        answer = _call(ws, {"type": "reset", "data": {"seed": 11, "options": {"index": 5}}})
        assert answer["type"] == "observation"
        data = answer["data"]
        assert data["observation"]["text"] == obs and data["done"] is False
        assert data["observation"]["info"] == json.loads(json.dumps(info))
        state = _call(ws, {"type": "state"})["data"]
        assert state["oracle_reply"] == local.unwrapped.oracle_reply()
        assert state["num_tasks"] == local.unwrapped.num_tasks() and state["max_turns"] == 3
        for reply in ["\\boxed{-12345}", "I do not know", local.unwrapped.oracle_reply()]:
            obs, reward, terminated, truncated, info = local.step(reply)
            data = _call(ws, {"type": "step", "data": {"message": reply}})["data"]
            assert data["observation"]["text"] == obs
            assert data["reward"] == reward and type(data["reward"]) is float
            assert data["done"] == (terminated or truncated)
            assert (data["observation"]["terminated"], data["observation"]["truncated"]) == (
                terminated,
                truncated,
            )
            assert data["observation"]["info"] == json.loads(json.dumps(info))
        assert terminated and data["observation"]["info"]["correct"] is True
    local.close()


def test_openenvs_own_client_plays_a_session(server) -> None:
    """OpenEnv's GenericEnvClient (its code, not ours) resets with seed and options and steps a reply."""
    from openenv.core import GenericEnvClient

    with GenericEnvClient(base_url=server.url).sync() as client:
        result = client.reset(seed=3, options={"index": 2})
        assert result.done is False and result.observation["info"]["index"] == 2
        assert result.observation["text"].startswith(
            result.observation["info"]["messages"][-1]["content"][:20]
        )
        result = client.step({"message": "\\boxed{-12345}"})
        assert result.reward == 0.0 and result.observation["info"]["correct"] is False
        assert client.state()["turn"] == 1


def test_bad_requests_get_errors_that_say_what_was_wrong(server) -> None:
    with _ws(server.url) as ws:
        error = _call(ws, {"type": "step", "data": {"message": "\\boxed{1}"}})
        assert error["type"] == "error" and "step before reset" in error["data"]["message"]
        error = _call(ws, {"type": "reset", "data": {"seed": 1, "index": 3}})
        assert "unknown ['index']" in error["data"]["message"] and "options" in error["data"]["message"]
        error = _call(ws, {"type": "reset", "data": {"options": {"idx": 3}}})
        assert "unknown ['idx']" in error["data"]["message"]
        error = _call(ws, {"type": "reset", "data": {"options": {"index": 10**9}}})
        assert "out of range" in error["data"]["message"]
        error = _call(ws, {"type": "reset", "data": {"seed": "seven"}})
        assert "seed must be an int" in error["data"]["message"]
        assert _call(ws, {"type": "reset", "data": {"options": {"index": 0}}})["type"] == "observation"
        error = _call(ws, {"type": "step", "data": {"message": 42}})
        assert error["data"]["code"] == "VALIDATION_ERROR" and error["data"]["errors"][0]["loc"] == [
            "message"
        ]
        error = _call(ws, {"type": "step", "data": {"reply": "x"}})
        assert error["data"]["code"] == "VALIDATION_ERROR"
        # the session survives its bad requests
        assert _call(ws, {"type": "step", "data": {"message": "\\boxed{1}"}})["type"] == "observation"
    # HTTP: a fresh env per request (OpenEnv), so /step cannot continue a /reset: a 400 that says so
    status, body = _post(f"{server.url}/reset", {"seed": 1, "options": {"index": 2}})
    assert status == 200 and body["observation"]["info"]["index"] == 2
    status, body = _post(f"{server.url}/step", {"action": {"message": "\\boxed{1}"}})
    assert status == 400 and "/ws" in body["detail"] and "fresh env" in body["detail"]
    status, body = _post(f"{server.url}/reset", {"options": {"index": 1}, "task": 3})
    assert status == 400 and "unknown ['task']" in body["detail"]


def test_a_slow_step_holds_up_only_its_own_session(server) -> None:
    with _ws(server.url) as slow, _ws(server.url) as fast:
        _call(slow, {"type": "reset", "data": {"options": {"index": 0}}})
        _call(fast, {"type": "reset", "data": {"options": {"index": 1}}})
        started = time.monotonic()
        slow.send(json.dumps({"type": "step", "data": {"message": "SLOW \\boxed{1}"}}))
        time.sleep(0.2)  # the slow step is on the server now
        for _ in range(3):
            assert (
                _call(fast, {"type": "step", "data": {"message": "\\boxed{-12345}"}})["type"] == "observation"
            )
            _call(fast, {"type": "reset", "data": {"options": {"index": 1}}})
        fast_done = time.monotonic() - started
        answer = json.loads(slow.recv(timeout=60))
        slow_done = time.monotonic() - started
    assert answer["type"] == "observation"
    assert slow_done >= SLOW_STEP_S - 0.1
    assert fast_done < SLOW_STEP_S - 1.0, f"the fast session waited {fast_done:.2f}s behind the slow step"


def _closes(server) -> list[str]:
    return server.closes.read_text().splitlines()


def test_a_dropped_session_frees_its_env_and_its_slot(server) -> None:
    """Sessions A and B fill the server (--max-sessions 2), so C is refused; A's client vanishes
    mid-episode (its socket closed, no close message): the server closes A's env and C gets in."""
    a, b = _ws(server.url).__enter__(), _ws(server.url).__enter__()  # held open across the steps below
    try:
        _call(a, {"type": "reset", "data": {"options": {"index": 0}}})
        _call(a, {"type": "step", "data": {"message": "\\boxed{-12345}"}})  # mid-episode
        _call(b, {"type": "reset", "data": {"options": {"index": 1}}})
        before = _closes(server)
        with _ws(server.url) as c:
            refused = json.loads(c.recv(timeout=30))
        assert refused["type"] == "error" and refused["data"]["code"] == "CAPACITY_REACHED"
        with pytest.raises(RemoteEnvError, match="larger --max-sessions or .* smaller --batch-size"):
            gym.make("drift/Remote-v0", url=server.url)
        a.socket.close()  # the client is gone: no close frame, no close message
        deadline = time.monotonic() + 20
        while True:
            with _ws(server.url) as c:
                answer = _call(c, {"type": "reset", "data": {"options": {"index": 2}}}, timeout=30)
            if answer["type"] == "observation" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer["type"] == "observation", answer
        after = _closes(server)[len(before) :]
        assert "live=True" in after, f"A's env was not closed mid-episode: {after}"
    finally:
        b.close()


def test_the_command_refuses_a_bad_env_or_kwargs_with_exit_2(capsys: pytest.CaptureFixture) -> None:
    from drift_train.commands import serve_env as command

    cases = [
        (["--env", "drift/NoSuchEnv-v0", "--port", "8"], "drift/NoSuchEnv-v0"),
        (["--env", "drift/MathFeedback-v0", "--env-kwargs", '{"max_turns": 0}', "--port", "8"], "max_turns"),
        (["--env", "drift/MathFeedback-v0", "--env-kwargs", '{"nope": 1}', "--port", "8"], "nope"),
        (["--env", "drift/MathFeedback-v0", "--env-kwargs", "[1]", "--port", "8"], "not a JSON object"),
        (["--env", "drift/MathFeedback-v0", "--port", "0"], "--port"),
        (["--env", "drift/MathFeedback-v0", "--port", "8", "--max-sessions", "0"], "--max-sessions"),
    ]
    for argv, named in cases:
        try:
            code = command.main(argv)
        except SystemExit as stop:  # argparse's own refusals
            code = stop.code
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert named in err, (argv, err)
