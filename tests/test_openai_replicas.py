"""The ``openai`` backend over several servers: least-outstanding spread, failover, readmission, one real kill."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from parity_env import register_parity_env

from drift_train.policies import PolicyError, SamplingParams, make_policy
from drift_train.rollout import RolloutConfig, rollout
from drift_train.trajectories import read_trajectories, validate_groups

CONVERSATION = [{"role": "user", "content": "Hello"}]
PARITY_ENV_ID = "drift-test/ParityReplicas-v0"


class _Replica(BaseHTTPRequestHandler):
    """A chat-completions server that answers after ``server.delay_s`` and counts what it answered."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.server.delay_s)
        with self.server.lock:
            self.server.answered += 1
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": f"from {self.server.name}"},
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _Server:
    def __init__(self, name: str, delay_s: float = 0.0, port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _Replica)
        self.httpd.name, self.httpd.delay_s, self.httpd.answered = name, delay_s, 0
        self.httpd.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def answered(self) -> int:
        return self.httpd.answered

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    started: list[_Server] = []

    def start(name: str, delay_s: float = 0.0, port: int = 0) -> _Server:
        started.append(_Server(name, delay_s, port))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_base_url_lists(servers):
    a, b = servers("a"), servers("b")
    with make_policy("openai", "m", base_url=f" {a.url}, {b.url}") as policy:
        assert policy.describe() == {
            "backend": "openai",
            "model": "m",
            "base_url": f"{a.url},{b.url}",
            "replicas": 2,
        }
    with pytest.raises(PolicyError, match="entry 2 is empty"):
        make_policy("openai", "m", base_url=f"{a.url},,{b.url}")
    with pytest.raises(PolicyError, match="more than once"):
        make_policy("openai", "m", base_url=f"{a.url},{a.url}")
    with pytest.raises(PolicyError, match="'127.0.0.1:9' is not a URL"):
        make_policy("openai", "m", base_url=f"{a.url},127.0.0.1:9")


def test_equal_replicas_share_the_load(servers):
    a, b = servers("a", delay_s=0.05), servers("b", delay_s=0.05)
    with make_policy("openai", "m", base_url=f"{a.url},{b.url}", max_concurrency=8) as policy:
        policy.generate([CONVERSATION] * 16, SamplingParams(max_new_tokens=2))
    assert (a.answered, b.answered) == (8, 8)


def test_requests_go_to_the_replica_with_fewest_in_flight(servers):
    # round-robin would send half the requests to the slow replica; least-outstanding sends almost none
    slow, fast = servers("slow", delay_s=0.4), servers("fast", delay_s=0.0)
    with make_policy("openai", "m", base_url=f"{slow.url},{fast.url}", max_concurrency=4) as policy:
        out = policy.generate([CONVERSATION] * 40, SamplingParams(max_new_tokens=2))
    assert len(out) == 40 and slow.answered + fast.answered == 40
    assert slow.answered <= 8, (slow.answered, fast.answered)


def test_a_replica_that_refuses_connections_is_taken_out(servers, caplog):
    good, dead = servers("good"), f"http://127.0.0.1:{_closed_port()}/v1"
    # max_retries=0: a failover that counted as a retry would fail the call
    with make_policy(
        "openai", "m", base_url=f"{dead},{good.url}", max_retries=0, max_concurrency=4
    ) as policy:
        with caplog.at_level(logging.WARNING, logger="drift_train.policies.openai"):
            out = policy.generate([CONVERSATION] * 12, SamplingParams(max_new_tokens=2, n=2))
        stats = policy.replica_stats()
    assert [len(row) for row in out] == [2] * 12
    assert {c.text for row in out for c in row} == {"from good"}
    assert good.answered == 24
    assert stats[0]["url"] == dead and not stats[0]["in_service"] and stats[0]["answered"] == 0
    assert stats[0]["out_reason"].startswith("APIConnectionError")
    assert stats[1]["in_service"] and stats[1]["outstanding"] == 0
    assert f"replica {dead} stopped answering" in caplog.text and "1 of 2 left in service" in caplog.text


def test_no_replica_left_names_every_replica():
    a, b = (f"http://127.0.0.1:{_closed_port()}/v1" for _ in range(2))
    with make_policy(
        "openai", "m", base_url=f"{a},{b}", max_retries=1, backoff_s=0.01, timeout_s=2
    ) as policy:
        with pytest.raises(PolicyError) as failure:
            policy.generate([CONVERSATION], SamplingParams(max_new_tokens=2))
    message = str(failure.value)
    assert "failed 2 times; last error APIConnectionError" in message
    assert "no other replica left (taken out: http://127.0.0.1:" in message and a in message and b in message


def test_a_taken_out_replica_is_readmitted_when_it_answers_again(servers):
    good, port = servers("good"), _closed_port()
    down = f"http://127.0.0.1:{port}/v1"
    with make_policy(
        "openai", "m", base_url=f"{down},{good.url}", readmit_after_s=0.2, max_retries=0
    ) as policy:
        policy.generate([CONVERSATION] * 4, SamplingParams(max_new_tokens=2))
        assert not policy.replica_stats()[0]["in_service"]
        back = servers(
            "back", delay_s=0.2, port=port
        )  # slow, so the trial is still in flight as the rest go out
        policy.generate([CONVERSATION] * 4, SamplingParams(max_new_tokens=2))
        assert back.answered == 0  # not yet due for a trial
        time.sleep(0.3)
        policy.generate([CONVERSATION] * 4, SamplingParams(max_new_tokens=2))
        assert back.answered == 1  # one trial request while it was out
        stats = policy.replica_stats()
        assert stats[0]["in_service"] and stats[0]["out_reason"] is None
        back.httpd.delay_s = good.httpd.delay_s = 0.05
        policy.generate([CONVERSATION] * 8, SamplingParams(max_new_tokens=2))
    assert back.answered == 1 + 4  # back in service: its share of the load


def test_drift_rollout_takes_several_base_urls(servers, tmp_path):
    from drift_train.commands.rollout import main as drift_rollout

    env_id = register_parity_env(PARITY_ENV_ID, num_tasks=12, max_turns=2)
    a, b = servers("a", delay_s=0.02), servers("b", delay_s=0.02)
    out = tmp_path / "cli.jsonl"
    code = drift_rollout(
        [
            "--env",
            env_id,
            "--backend",
            "openai",
            "--model",
            "m",
            "--base-url",
            f"{a.url},{b.url}",
            "--num-tasks",
            "4",
            "--samples",
            "2",
            "--max-turns",
            "1",
            "--max-concurrency",
            "4",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    records = list(read_trajectories(out))
    assert len(records) == 8 and a.answered > 0 and b.answered > 0 and a.answered + b.answered == 8
    assert records[0]["meta"]["base_url"] == f"{a.url},{b.url}" and records[0]["meta"]["replicas"] == 2


# ---- two real `transformers serve` processes, one killed mid-rollout -------------------------------


def test_rollout_survives_a_replica_killed_mid_run(openai_replicas, tiny_model_dir, tmp_path, caplog):
    env_id = register_parity_env(PARITY_ENV_ID, num_tasks=12, max_turns=2)
    first, second = openai_replicas(2)
    out = tmp_path / "rollouts.jsonl"
    config = RolloutConfig(
        env_id=env_id,
        num_tasks=12,
        samples=2,
        max_turns=2,
        batch_size=4,
        sampling=SamplingParams(max_new_tokens=8),
    )
    policy = make_policy(
        "openai",
        str(tiny_model_dir),
        base_url=f"{first.url},{second.url}",
        max_concurrency=4,
        timeout_s=30,
        max_retries=1,
    )
    result: dict = {}

    def run() -> None:
        try:
            result["records"], result["stats"] = rollout(policy, config, out)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
            result["error"] = err

    with policy, caplog.at_level(logging.WARNING, logger="drift_train.policies.openai"):
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while (not out.exists() or out.read_text().count("\n") < 4) and thread.is_alive():
            assert time.monotonic() < deadline, "no records written within 120 s"
            time.sleep(0.05)
        written_before_kill = out.read_text().count("\n")
        before = policy.replica_stats()
        os.kill(second.pid, signal.SIGKILL)
        thread.join(timeout=240)
        assert not thread.is_alive(), "the rollout did not finish within 240 s of the kill"
        after = policy.replica_stats()
    assert "error" not in result, result.get("error")
    assert written_before_kill < 24, "the rollout ended before the replica was killed"
    assert before[1]["answered"] > 0, "the second replica had served nothing before it was killed"
    assert after[1]["in_service"] is False and after[0]["in_service"] is True
    assert after[0]["answered"] > before[0]["answered"]
    assert f"replica {second.url} stopped answering" in caplog.text
    records = list(read_trajectories(out))
    assert len(records) == 24
    assert sorted((r["prompt_id"], r["traj_idx"]) for r in records) == [
        (p, j) for p in range(12) for j in range(2)
    ]
    validate_groups(records, samples=2)
    assert {r["meta"]["base_url"] for r in records} == {f"{first.url},{second.url}"}
    assert {r["meta"]["replicas"] for r in records} == {2}
