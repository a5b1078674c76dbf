"""What serving an env costs: MathFeedback played in-process vs through ``drift serve-env`` over loopback.

Run from the repository root (needs the [openenv] extra):

    python benchmarks/serve_overhead.py [--episodes 500] [--json out.json]

It starts a real ``drift serve-env --env drift/MathFeedback-v0`` process on a free loopback port, then
plays the same episodes twice, one after the other in this process: with ``gym.make`` of the env itself,
and with ``gym.make("drift/Remote-v0", url=...)`` (one ``/ws`` session). Each episode is ``reset`` on task
``i`` and one ``step`` with the oracle's reply (read from a local env beforehand, outside the timing, so
both loops do exactly reset + step). Reported: episodes/s of each and their ratio, and the p50/p90 of a
step's time in each and of the served step's overhead (served minus in-process, pairwise per episode;
target: p50 under 2 ms). One run, after a warm-up; the server is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gymnasium as gym
from rich.console import Console
from rich.table import Table

import drift_envs  # noqa: F401  (registers the ids)

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "drift/MathFeedback-v0"
ENV_KWARGS = {"max_turns": 3, "feedback": "hint"}
TARGET_P50_MS = 2.0


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """``drift serve-env`` of MathFeedback on ``port``, once its ``/health`` answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "drift_train.cli", "serve-env", "--env", ENV_ID]
        + ["--env-kwargs", json.dumps(ENV_KWARGS), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise SystemExit(f"drift serve-env exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("drift serve-env did not answer /health within 120 s") from None
            time.sleep(0.2)


def play(env, replies: list[str], start: int) -> tuple[float, list[float]]:
    """Seconds for reset + oracle step over the episodes, and each step's seconds."""
    steps = []
    began = time.perf_counter()
    for offset, reply in enumerate(replies):
        env.reset(seed=offset, options={"index": start + offset})
        t = time.perf_counter()
        _, reward, terminated, _, _ = env.step(reply)
        steps.append(time.perf_counter() - t)
        if not (terminated and reward == 1.0):
            raise SystemExit(f"the oracle's reply was not solved on task {start + offset}")
    return time.perf_counter() - began, steps


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``, by ``statistics.quantiles``."""
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q * 100) - 1))]


def main(argv: list[str] | None = None) -> int:
    """Measure and print (and optionally save) the served vs in-process figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    n, warm = args.episodes, args.warmup
    oracle_env = gym.make(ENV_ID, **ENV_KWARGS)
    replies = []
    for i in range(warm + n):
        oracle_env.reset(seed=i, options={"index": i})
        replies.append(oracle_env.unwrapped.oracle_reply())
    oracle_env.close()

    port = free_port()
    server = start_server(port)
    try:
        local = gym.make(ENV_ID, **ENV_KWARGS)
        remote = gym.make("drift/Remote-v0", url=f"http://127.0.0.1:{port}")
        play(local, replies[:warm], 0)
        play(remote, replies[:warm], 0)
        local_s, local_steps = play(local, replies[warm:], warm)
        served_s, served_steps = play(remote, replies[warm:], warm)
        local.close()
        remote.close()
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    overhead = [s - lo for s, lo in zip(served_steps, local_steps, strict=True)]
    figures = {
        "episodes": n,
        "in_process_episodes_per_s": n / local_s,
        "served_episodes_per_s": n / served_s,
        "ratio_served_over_in_process": local_s / served_s,
        "in_process_step_ms_p50": 1e3 * statistics.median(local_steps),
        "served_step_ms_p50": 1e3 * statistics.median(served_steps),
        "served_step_overhead_ms_p50": 1e3 * statistics.median(overhead),
        "served_step_overhead_ms_p90": 1e3 * quantile(overhead, 0.9),
        "load_average_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    table = Table(
        title=f"MathFeedback, oracle reply: in-process vs drift serve-env over loopback ({n} episodes)"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    Console().print(table)
    verdict = "within" if figures["served_step_overhead_ms_p50"] < TARGET_P50_MS else "OVER"
    print(
        f"served step overhead p50 {figures['served_step_overhead_ms_p50']:.2f} ms: {verdict} the {TARGET_P50_MS} ms target"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
