"""A real ``drift serve-env`` process for tests: started on a loopback port, stopped by its PID."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import _free_port, _stop_by_pid, start_server, wait_until_healthy

SERVE_START_TIMEOUT_S = 120.0


@dataclass
class ServedEnv:
    """One ``drift serve-env`` process."""

    url: str
    port: int
    pid: int
    log_path: Path
    process: object

    def wait(self) -> ServedEnv:
        """Wait until the server's ``/health`` answers (stopping it and failing the test if it does not)."""
        try:
            wait_until_healthy(
                self.process, self.url, self.log_path, "drift serve-env", timeout_s=SERVE_START_TIMEOUT_S
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM (then SIGKILL) the server by its PID and reap it."""
        _stop_by_pid(self.pid)


def serve_env(
    env_id: str,
    env_kwargs: dict,
    log_dir: Path,
    *,
    port: int | None = None,
    max_sessions: int = 8,
    pythonpath: Path | None = None,
    extra_env: dict | None = None,
    wait: bool = True,
) -> ServedEnv:
    """Start ``drift serve-env`` for ``env_id`` and (``wait``) wait until its ``/health`` answers; with
    ``wait=False`` call :meth:`ServedEnv.wait` later (several servers then start side by side)."""
    port = port or _free_port()
    log_path = log_dir / f"serve-env-{port}.log"
    env = {**os.environ, **(extra_env or {})}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH", "")) if p)
    command = [
        sys.executable,
        "-m",
        "drift_train.cli",
        "serve-env",
        "--env",
        env_id,
        "--env-kwargs",
        json.dumps(env_kwargs),
        "--port",
        str(port),
        "--max-sessions",
        str(max_sessions),
    ]
    process = start_server(command, env, log_path)
    base = f"http://127.0.0.1:{port}"
    served = ServedEnv(base, port, process.pid, log_path, process)
    return served.wait() if wait else served
