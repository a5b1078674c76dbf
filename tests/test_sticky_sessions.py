"""Sticky episodes on the ``openai`` backend: every request of an episode carries its session header and
reaches one replica; a replica killed mid-rollout moves its episodes once, and they stay moved.

The replicas are real server processes on 127.0.0.1 (a small chat-completions server, :data:`SERVER`),
each logging what it received, so the assertions are about what the servers saw, not what the client
meant to send; they are stopped by PID.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from parity_env import register_parity_env

from drift_train.policies import SamplingParams, make_policy
from drift_train.rollout import RolloutConfig, rollout
from drift_train.trajectories import read_trajectories, validate_groups

PARITY_ENV_ID = "drift-test/ParitySticky-v0"

# argv: port, log path, seconds per answer. Logs one JSON line per request *before* answering (a request
# that dies with the server is still seen), flushed, with every header and the turn it asks for. The
# empty reply is never right, so every episode runs all its turns.
SERVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log_path, delay_s = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
log = open(log_path, "a", buffering=1)

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        turn = 1 + sum(m.get("role") == "assistant" for m in body["messages"])
        log.write(json.dumps({"headers": {k.lower(): v for k, v in self.headers.items()}, "turn": turn}) + "\n")
        time.sleep(delay_s)
        data = json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ""}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Replica:
    """One :data:`SERVER` process; ``requests()`` is what it logged."""

    def __init__(self, log_path: Path, delay_s: float, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.port), str(log_path), str(delay_s)]
        )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"the replica on port {self.port} exited"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"the replica on port {self.port} did not listen in 30 s"
                time.sleep(0.05)

    def requests(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.endswith("}")]

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def replicas(tmp_path):
    started: list[_Replica] = []

    def start(name: str, delay_s: float = 0.0, port: int | None = None) -> _Replica:
        started.append(_Replica(tmp_path / f"{name}.log", delay_s, port))
        return started[-1]

    yield start
    for replica in started:
        replica.kill()


def _hrw_first(episode: str, urls: list[str]) -> str:
    """Rendezvous hashing written out here: the URL whose blake2b(episode NUL url) is largest."""
    return max(urls, key=lambda url: hashlib.blake2b(f"{episode}\x00{url}".encode(), digest_size=8).digest())


def _turns_by_episode(replica: _Replica, header: str) -> dict[str, list[int]]:
    turns: dict[str, list[int]] = defaultdict(list)
    for request in replica.requests():
        assert header in request["headers"], f"a request to {replica.url} without {header}: {request}"
        turns[request["headers"][header]].append(request["turn"])
    return turns


def test_every_request_of_an_episode_carries_its_header_and_reaches_one_replica(replicas, tmp_path):
    from drift_train.commands.rollout import main as drift_rollout

    env_id = register_parity_env(PARITY_ENV_ID, num_tasks=12, max_turns=3)
    a, b = replicas("a", delay_s=0.01), replicas("b", delay_s=0.01)
    out = tmp_path / "sticky.jsonl"
    argv = ["--env", env_id, "--backend", "openai", "--model", "m", "--base-url", f"{a.url},{b.url}"]
    argv += ["--num-tasks", "8", "--samples", "3", "--max-turns", "3", "--max-concurrency", "6"]
    argv += ["--session-header", "X-Episode", "--out", str(out), "--no-progress"]
    assert drift_rollout(argv) == 0
    records = list(read_trajectories(out))
    assert len(records) == 24
    on_a, on_b = _turns_by_episode(a, "x-episode"), _turns_by_episode(b, "x-episode")
    episodes = {f"{p}:{j}" for p in range(8) for j in range(3)}
    assert set(on_a) | set(on_b) == episodes
    assert not set(on_a) & set(on_b), "an episode's requests reached both replicas"
    for turns in (*on_a.values(), *on_b.values()):
        assert sorted(turns) == [1, 2, 3]  # every turn of the episode, on its one replica
    # each episode on its rendezvous choice, so both replicas get a share and the choice is reproducible
    assert {e for e in episodes if _hrw_first(e, [a.url, b.url]) == a.url} == set(on_a)
    assert on_a and on_b
    assert not any("x-session-id" in r["headers"] for r in a.requests() + b.requests())


def test_without_episode_ids_requests_carry_no_header_and_spread(replicas):
    a, b = replicas("a", delay_s=0.05), replicas("b", delay_s=0.05)
    conversation = [{"role": "user", "content": "Hello"}]
    with make_policy("openai", "m", base_url=f"{a.url},{b.url}", max_concurrency=8) as policy:
        policy.generate([conversation] * 8, SamplingParams(max_new_tokens=2))
        policy.generate([conversation] * 8, SamplingParams(max_new_tokens=2), episode_ids=["7:0"] * 8)
    plain = [r for r in a.requests() + b.requests() if "x-session-id" not in r["headers"]]
    assert len(plain) == 8 and len(a.requests()) >= 4 and len(b.requests()) >= 4
    sticky = [r for r in a.requests() + b.requests() if "x-session-id" in r["headers"]]
    assert len(sticky) == 8 and {r["headers"]["x-session-id"] for r in sticky} == {"7:0"}
    first = a if _hrw_first("7:0", [a.url, b.url]) == a.url else b
    assert sum("x-session-id" in r["headers"] for r in first.requests()) == 8


def test_a_killed_replica_moves_its_episodes_once_and_they_stay_moved(replicas, tmp_path):
    env_id = register_parity_env(PARITY_ENV_ID, num_tasks=12, max_turns=3)
    survivor, doomed = replicas("survivor", delay_s=0.2), replicas("doomed", delay_s=0.2)
    urls = [doomed.url, survivor.url]
    out = tmp_path / "rollouts.jsonl"
    config = RolloutConfig(
        env_id=env_id,
        num_tasks=12,
        samples=2,
        max_turns=3,
        batch_size=4,
        sampling=SamplingParams(max_new_tokens=4),
    )
    # a short readmission delay: the restarted replica is back in service for the later chunks
    policy = make_policy(
        "openai", "m", base_url=",".join(urls), max_concurrency=8, max_retries=0, readmit_after_s=0.3
    )
    result: dict = {}

    def run() -> None:
        try:
            result["records"], _ = rollout(policy, config, out)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
            result["error"] = err

    with policy:
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        # kill it once the first chunk's turn-2 requests reach it: those episodes are mid-way on it
        while not any(r["turn"] == 2 for r in doomed.requests()):
            assert thread.is_alive() and time.monotonic() < deadline, result.get("error", "no turn 2 in 60 s")
            time.sleep(0.01)
        doomed.kill()
        reborn = replicas("reborn", delay_s=0.2, port=doomed.port)  # the same URL, answering again
        thread.join(timeout=120)
        assert not thread.is_alive(), "the rollout did not finish within 120 s"
        stats = policy.replica_stats()
    assert "error" not in result, result.get("error")
    records = list(read_trajectories(out))
    assert sorted((r["prompt_id"], r["traj_idx"]) for r in records) == [
        (p, j) for p in range(12) for j in range(2)
    ]
    validate_groups(records, samples=2)
    before = _turns_by_episode(doomed, "x-session-id")
    after = _turns_by_episode(reborn, "x-session-id")
    kept = _turns_by_episode(survivor, "x-session-id")
    moved = {e for e in before if e in kept}
    assert moved, "no episode was mid-way on the killed replica"
    for episode in moved:
        # on the killed replica up to the turn it died in, then on the survivor to the end, never back
        assert max(before[episode]) <= min(kept[episode]), (episode, before[episode], kept[episode])
        assert sorted(set(before[episode]) | set(kept[episode])) == [1, 2, 3]
        assert episode not in after, f"{episode} went back to the readmitted replica"
    for episode, turns in kept.items():
        if episode not in moved:
            assert sorted(turns) == [1, 2, 3]
    # later episodes that prefer the restarted replica went to it once it was readmitted
    assert after, "the restarted replica got no episodes back"
    for episode, turns in after.items():
        assert _hrw_first(episode, urls) == doomed.url and episode not in kept and sorted(turns) == [1, 2, 3]
    assert stats[0]["in_service"] and stats[1]["in_service"]


# ---- vllm-router (--policy consistent_hash) in front of two real vLLM servers, one killed mid-rollout ----


def test_drift_rollout_through_vllm_router_survives_a_killed_server(tiny_model_dir, tmp_path):
    import shutil
    import urllib.request

    from conftest import (
        VLLM_MISSING,
        VLLM_PYTHON,
        VLLM_START_TIMEOUT_S,
        _free_port,
        _stop_by_pid,
        start_server,
        vllm_env,
        wait_until_healthy,
    )

    if VLLM_MISSING:
        pytest.skip(VLLM_MISSING)
    router_bin = shutil.which("vllm-router")
    if router_bin is None:
        pytest.skip(
            "vllm-router is not installed: pip install 'drift-toolkit[router]' (scripts/setup.sh does)"
        )
    env_id = register_parity_env(PARITY_ENV_ID, num_tasks=12, max_turns=3)
    env = {**vllm_env(), "VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}
    servers = []
    pids: list[int] = []
    try:
        for i in range(2):
            port, log = _free_port(), tmp_path / f"vllm-{i}.log"
            command = [
                VLLM_PYTHON,
                "-m",
                "vllm.entrypoints.openai.api_server",
                "--model",
                str(tiny_model_dir),
            ]
            command += ["--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port)]
            command += ["--seed", "0", "--enforce-eager", "--max-model-len", "2048"]
            command += ["--gpu-memory-utilization", "0.05", "--block-size", "32"]
            # a group of its own: a SIGKILL of the API server alone leaves its engine core running
            process = start_server(command, env, log, new_session=True)
            pids.append(process.pid)
            servers.append((process, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + VLLM_START_TIMEOUT_S  # they start together: one budget for both
        for process, base, log in servers:
            wait_until_healthy(process, base, log, "vLLM's server", max(1.0, deadline - time.monotonic()))
        router_port, router_log = _free_port(), tmp_path / "router.log"
        command = [
            router_bin,
            "--host",
            "127.0.0.1",
            "--port",
            str(router_port),
            "--policy",
            "consistent_hash",
        ]
        command += ["--worker-urls", *(base for _, base, _ in servers), "--log-level", "info"]
        router = start_server(command, env, router_log, new_session=True)
        pids.append(router.pid)
        wait_until_healthy(router, f"http://127.0.0.1:{router_port}", router_log, "vllm-router", 60)

        def served(base: str) -> float:
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
                text = response.read().decode()
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("vllm:request_success_total{")
            )

        out = tmp_path / "rollouts.jsonl"
        config = RolloutConfig(
            env_id=env_id,
            num_tasks=12,
            samples=2,
            max_turns=3,
            batch_size=4,
            sampling=SamplingParams(max_new_tokens=8),
        )
        policy = make_policy(
            "openai",
            "tiny",
            base_url=f"http://127.0.0.1:{router_port}/v1",
            max_concurrency=4,
            timeout_s=60,
            max_retries=6,
            backoff_s=0.5,
        )
        result: dict = {}

        def run() -> None:
            try:
                result["records"], _ = rollout(policy, config, out)
            except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
                result["error"] = err

        with policy:
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 180
            while (not out.exists() or out.read_text().count("\n") < 4) and thread.is_alive():
                assert time.monotonic() < deadline, "no records written within 180 s"
                time.sleep(0.05)
            written_before_kill = out.read_text().count("\n")
            before = [served(base) for _, base, _ in servers]
            os.killpg(servers[1][0].pid, signal.SIGKILL)  # the server and its engine core, as a lost machine
            thread.join(timeout=300)
            assert not thread.is_alive(), "the rollout did not finish within 300 s of the kill"
        assert "error" not in result, result.get("error")
        assert written_before_kill < 24, "the rollout ended before the server was killed"
        assert before[1] > 0, "the killed server had served nothing before it was killed"
        assert served(servers[0][1]) > before[0], "the surviving server took over nothing"
        records = list(read_trajectories(out))
        assert sorted((r["prompt_id"], r["traj_idx"]) for r in records) == [
            (p, j) for p in range(12) for j in range(2)
        ]
        validate_groups(records, samples=2)
        # the router hashed on the header the backend sent, episode by episode
        log = router_log.read_text(errors="replace")
        assert all(f"header:x-session-id:{p}:{j}" in log for p in range(12) for j in range(2))
    finally:
        for pid in reversed(pids):
            _stop_by_pid(pid, timeout_s=30)
            try:  # whatever of its group outlived it (a killed server's engine core)
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
