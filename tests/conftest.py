"""Shared fixtures: the tiny model folder, a real ``transformers serve`` process, the shared data folder."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SERVER_START_TIMEOUT_S = float(os.environ.get("DRIFT_TEST_SERVER_TIMEOUT", "180"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded tiny model, built once per test session into a temporary folder."""
    from drift_train.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module: the tiny model gains nothing from a second one, and on shared
    cores the threads contend (use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def require_full_isolation(sandbox) -> dict:
    """The sandbox's isolation report, or skip: the case needs the 'full' level (root + namespaces)."""
    iso = sandbox.isolation
    if iso["level"] != "full":
        pytest.skip(f"needs the 'full' isolation level (root + namespaces); this sandbox has {iso}")
    return iso


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/data`` beside the repo (public benchmark files); skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(path: Path, n: int = 40) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-n:])


def start_server(command: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """Start a server process with its output in ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_until_healthy(
    process: subprocess.Popen, base: str, log_path: Path, name: str, timeout_s: float = SERVER_START_TIMEOUT_S
) -> None:
    """Poll ``{base}/health`` until it answers 200; fail the test with the log's tail if the process exits
    first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"{name} exited with code {process.returncode} before it was ready; log {log_path}:\n"
                f"{_log_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} not ready after {timeout_s:.0f}s; log {log_path}:\n{_log_tail(log_path)}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def openai_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real ``transformers serve`` process on ``tiny_model_dir``; yields its base URL (``.../v1``).

    The server binds a free loopback port, preloads the tiny model, and is terminated at teardown.
    The model name to send in requests is ``str(tiny_model_dir)``. Skips when the serving extra
    (FastAPI + Uvicorn: ``pip install "transformers[serving]"``) is not installed; a server that
    has its dependencies but fails to start fails the test with the tail of its log.
    """
    missing = [m for m in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f'`transformers serve` needs {", ".join(missing)}: pip install "transformers[serving]"')
    port = _free_port()
    log_path = tmp_path_factory.mktemp("transformers-serve") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
    command = [
        sys.executable,
        "-m",
        "transformers.cli.transformers",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--log-level",
        "warning",
        str(tiny_model_dir),
    ]
    process = start_server(command, env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base, log_path, "`transformers serve`")
        yield f"{base}/v1"
    finally:
        _stop_by_pid(process.pid)


@dataclass
class ServedReplica:
    """One ``transformers serve`` process started by :func:`openai_replicas`."""

    url: str  # base URL, ending in /v1
    pid: int
    log_path: Path


def _stop_by_pid(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; no-op for a process that is already gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    return
            except ChildProcessError:
                return
            time.sleep(0.1)


@pytest.fixture
def openai_replicas(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """``start(n)`` starts ``n`` ``transformers serve`` processes on ``tiny_model_dir``, each on its own free
    loopback port, and returns them as :class:`ServedReplica` once every one answers ``/health``.

    They start at once and are awaited together (``DRIFT_TEST_SERVER_TIMEOUT`` seconds in all); every
    process still running at teardown is stopped by its PID. Skips like ``openai_server`` without the
    serving extra.
    """
    missing = [m for m in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f'`transformers serve` needs {", ".join(missing)}: pip install "transformers[serving]"')
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        "OMP_NUM_THREADS": "1",
    }
    started: list[ServedReplica] = []

    def start(n: int) -> list[ServedReplica]:
        batch = []
        folder = tmp_path_factory.mktemp("transformers-serve-replicas")
        for i in range(n):
            port = _free_port()
            log_path = folder / f"server-{i}.log"
            command = [
                sys.executable,
                "-m",
                "transformers.cli.transformers",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--device",
                "cpu",
                "--log-level",
                "warning",
                str(tiny_model_dir),
            ]
            process = start_server(command, env, log_path)
            replica = ServedReplica(f"http://127.0.0.1:{port}/v1", process.pid, log_path)
            started.append(replica)
            batch.append((replica, process))
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S  # they start together: one budget for all
        for replica, process in batch:
            wait_until_healthy(
                process,
                replica.url.removesuffix("/v1"),
                replica.log_path,
                "`transformers serve`",
                timeout_s=max(1.0, deadline - time.monotonic()),
            )
        return [replica for replica, _ in batch]

    yield start
    for replica in started:
        _stop_by_pid(replica.pid)


def drift_rollout_records(
    env_id: str,
    env_kwargs: dict,
    model_dir: Path,
    out: Path,
    *,
    num_tasks: int = 2,
    samples: int = 2,
    max_new_tokens: int = 8,
) -> list[dict]:
    """``drift rollout`` run in-process on a small job (exit 0 asserted); the records it wrote."""
    import json

    from drift_train.cli import main as drift_main
    from drift_train.trajectories import read_trajectories

    argv = ["rollout", "--env", env_id, "--env-kwargs", json.dumps(env_kwargs), "--model", str(model_dir)]
    argv += ["--num-tasks", str(num_tasks), "--samples", str(samples)]
    argv += ["--max-new-tokens", str(max_new_tokens), "--no-progress", "--out", str(out)]
    assert drift_main(argv) == 0
    return list(read_trajectories(out))
