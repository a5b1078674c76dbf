"""MathFeedback ``step`` throughput vs calling math-verify directly on the same (gold, reply) pairs.

Run from the repository root:

    python benchmarks/env_throughput.py [--data ../shared/data/math500.jsonl] [--timeout 2.0]

Three workloads, one process, side by side:
- MATH-500 gold answers written as a model would (``... \\boxed{gold}``), and the same with a perturbed
  answer (last digit bumped): env ``step`` vs ``math_verify.verify(parse("$gold$"), parse(reply))``;
- procedural tasks (gold and perturbed): the env's step alone (the direct call is shown too).
Also reports the slowest single step, which must stay under ``timeout + 0.5`` s.

Then the bounds of issue 11.4 (``--bounds-only`` runs just these): answer extraction on adversarial
replies of growing length (``\\boxed{`` and ``<answer>`` repeated, unclosed), which must grow linearly;
the worst step of each thread when threads send answers that overrun the verifier
(``9^{9^{9^{9}}}``-style) beside an honest thread, which must stay under ``timeout + 0.5`` s; and the
resident memory of a verifier worker after distinct long answers (its parse cache is capped).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import gymnasium as gym
from rich.console import Console
from rich.table import Table

import drift_envs  # noqa: F401  (registers the ids)

ROOT = Path(__file__).resolve().parents[1]


def perturb(answer: str, k: int = 1) -> str:
    """Bump the last digit by ``k`` (or append ``+k``): a wrong answer in the gold's own style."""
    for i in range(len(answer) - 1, -1, -1):
        if answer[i].isdigit():
            return answer[:i] + str((int(answer[i]) + k) % 10) + answer[i + 1 :]
    return answer + f"+{k}"


def env_pass(env, pairs) -> tuple[float, float, int]:
    """Seconds for reset+step over ``pairs`` of (index, reply); the slowest step; correct count."""
    slowest, correct = 0.0, 0
    start = time.perf_counter()
    for index, reply in pairs:
        env.reset(options={"index": index})
        t = time.perf_counter()
        correct += env.step(reply)[4]["correct"]
        slowest = max(slowest, time.perf_counter() - t)
    return time.perf_counter() - start, slowest, correct


def direct_pass(golds_and_replies) -> tuple[float, int]:
    """Seconds for ``verify(parse(gold), parse(reply))`` over the pairs, and the correct count."""
    from math_verify import parse, verify

    correct = 0
    start = time.perf_counter()
    for gold, reply in golds_and_replies:
        correct += bool(verify(parse(f"${gold}$"), parse(reply)))
    return time.perf_counter() - start, correct


def extraction_bounds() -> list[dict]:
    """Seconds of ``extract_answer`` on unclosed ``\\boxed{``/``<answer>`` repeated to a given length."""
    from drift_envs.math.answers import extract_answer

    rows = []
    for unit in ("\\boxed{", "<answer>", "<answer>\\boxed{"):
        for size in (56_000, 640_000, 2_560_000):
            reply = unit * (size // len(unit))
            t = time.perf_counter()
            extract_answer(reply)
            rows.append(
                {
                    "reply": f"{unit!r} x {size // len(unit)}",
                    "kb": size // 1000,
                    "seconds": time.perf_counter() - t,
                }
            )
    return rows


BOMBS = ("9^{9^{9^{9}}}", "10^{10^{10^{10}}}", "9^{9^{9^{9^{9}}}}", "8^{8^{8^{8}}}")


def thread_bounds(timeout: float, bombers: int = 3, steps: int = 6) -> list[dict]:
    """The worst step of each of ``bombers`` threads sending overrunning answers and one honest thread.

    Every thread has its own env (the verifier pool is shared, as in a threaded rollout). The honest
    thread's answers need the symbolic verifier (``\\frac{1}{\\sqrt{2}}`` for ``\\frac{\\sqrt{2}}{2}``).
    """
    path = Path(tempfile.mkdtemp()) / "task.jsonl"
    path.write_text(json.dumps({"problem": "p", "answer": "\\frac{\\sqrt{2}}{2}"}) + "\n")
    out: list[dict] = []

    def run(name: str, replies: list[str]) -> None:
        env = gym.make("drift/MathFeedback-v0", dataset=str(path), timeout_s=timeout, max_turns=1).unwrapped
        worst, correct = 0.0, 0
        for reply in replies:
            env.reset(options={"index": 0})
            t = time.perf_counter()
            correct += env.step(reply)[4]["correct"]
            worst = max(worst, time.perf_counter() - t)
        out.append({"thread": name, "steps": len(replies), "worst_step_s": worst, "correct": correct})

    threads = [
        threading.Thread(
            target=run,
            args=(f"bomb {b}", [f"\\boxed{{{BOMBS[(b + i) % len(BOMBS)]}}}" for i in range(steps)]),
        )
        for b in range(bombers)
    ]
    threads.append(threading.Thread(target=run, args=("honest", ["\\boxed{\\frac{1}{\\sqrt{2}}}"] * steps)))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sorted(out, key=lambda r: r["thread"])


def worker_memory(distinct: int = 20, chars: int = 1_000_000) -> dict:
    """Resident MB of one verifier worker before and after ``distinct`` different long answers."""
    from drift_envs.math.verifier import MathVerifier

    def rss_mb(pid: int) -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    verifier = MathVerifier(max_workers=1)
    verifier.warm_up()
    worker = verifier._idle[0]
    before = rss_mb(worker.proc.pid)
    for i in range(distinct):
        verifier.verify(
            "5", str(i + 1) + "0" * chars, 60.0
        )  # distinct plain long numbers: ~2 s each to parse
    after = rss_mb(verifier._idle[0].proc.pid)
    verifier.close()
    return {
        "distinct_answers": distinct,
        "answer_chars": chars,
        "rss_before_mb": before,
        "rss_after_mb": after,
    }


def bounds(console: Console, timeout: float) -> dict:
    """Run and print the issue-11.4 bounds; returns the figures."""
    extraction = extraction_bounds()
    table = Table(title="answer extraction on adversarial replies (linear: 10x the length, ~10x the time)")
    for col in ("reply", "KB", "seconds"):
        table.add_column(col, justify="right")
    for r in extraction:
        table.add_row(r["reply"], str(r["kb"]), f"{r['seconds']:.3f}")
    console.print(table)
    threads = thread_bounds(timeout)
    table = Table(title=f"3 threads with overrunning answers + 1 honest, shared pool (timeout_s={timeout})")
    for col in ("thread", "steps", "worst step (s)", "correct"):
        table.add_column(col, justify="right")
    for r in threads:
        table.add_row(r["thread"], str(r["steps"]), f"{r['worst_step_s']:.3f}", str(r["correct"]))
    console.print(table)
    memory = worker_memory()
    console.print(
        f"verifier worker RSS: {memory['rss_before_mb']:.0f} MB, after {memory['distinct_answers']} distinct "
        f"{memory['answer_chars'] // 1000} KB answers: {memory['rss_after_mb']:.0f} MB"
    )
    return {"extraction": extraction, "threads": threads, "worker_memory": memory}


def main() -> None:
    """Run the benchmark and print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "math500.jsonl"))
    parser.add_argument("--timeout", type=float, default=2.0, help="the env's timeout_s")
    parser.add_argument("--procedural", type=int, default=1000, help="number of procedural tasks")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--bounds-only", action="store_true", help="run only the issue-11.4 bounds")
    args = parser.parse_args()

    console = Console()
    if args.bounds_only:
        figures = bounds(console, args.timeout)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2))
        return
    results = []
    workloads = []
    math_env = gym.make(
        "drift/MathFeedback-v0", dataset=args.data, timeout_s=args.timeout, max_turns=1
    ).unwrapped
    tasks = [math_env.get_task(i) for i in range(math_env.num_tasks())]
    workloads.append(
        (
            "MATH-500 gold",
            math_env,
            [(i, f"So the answer is \\boxed{{{t.answer}}}.") for i, t in enumerate(tasks)],
            tasks,
        )
    )
    workloads.append(
        (
            "MATH-500 perturbed",
            math_env,
            [(i, f"So the answer is \\boxed{{{perturb(str(t.answer))}}}.") for i, t in enumerate(tasks)],
            tasks,
        )
    )
    # the pattern of a multi-turn rollout: per task, three different wrong answers and then the right one
    episodes = [
        (i, f"So the answer is \\boxed{{{perturb(str(t.answer), k) if k else t.answer}}}.")
        for i, t in enumerate(tasks)
        for k in (1, 2, 3, 0)
    ]
    workloads.append(
        ("MATH-500 episodes (3 wrong, 1 right)", math_env, episodes, [tasks[i] for i, _ in episodes])
    )
    proc_env = gym.make("drift/MathFeedback-v0", timeout_s=args.timeout, max_turns=1).unwrapped
    ptasks = [proc_env.get_task(i) for i in range(args.procedural)]
    workloads.append(
        ("procedural gold", proc_env, [(i, f"\\boxed{{{t.answer}}}") for i, t in enumerate(ptasks)], ptasks)
    )
    workloads.append(
        (
            "procedural perturbed",
            proc_env,
            [(i, f"\\boxed{{{perturb(str(t.answer))}}}") for i, t in enumerate(ptasks)],
            ptasks,
        )
    )

    # warm the verifier pool so a worker's one-off start-up is not billed to the first workload
    math_env.reset(options={"index": 0})
    math_env.step("\\boxed{x^2+1}")

    for name, env, pairs, task_list in workloads:
        env_s, slowest, env_ok = env_pass(env, pairs)
        direct_s, direct_ok = direct_pass(
            [(t.answer, reply) for t, (_, reply) in zip(task_list, pairs, strict=True)]
        )
        n = len(pairs)
        results.append(
            {
                "workload": name,
                "n": n,
                "env_steps_per_s": n / env_s,
                "direct_checks_per_s": n / direct_s,
                "speedup": direct_s / env_s,
                "slowest_step_s": slowest,
                "env_correct": env_ok,
                "direct_correct": direct_ok,
            }
        )

    table = Table(title=f"MathFeedback step vs direct math-verify (timeout_s={args.timeout})")
    for col in (
        "workload",
        "n",
        "env steps/s",
        "direct checks/s",
        "speed-up",
        "slowest step (s)",
        "correct env/direct",
    ):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r["workload"],
            str(r["n"]),
            f"{r['env_steps_per_s']:.0f}",
            f"{r['direct_checks_per_s']:.0f}",
            f"{r['speedup']:.1f}x",
            f"{r['slowest_step_s']:.3f}",
            f"{r['env_correct']}/{r['direct_correct']}",
        )
    console.print(table)
    m500 = [r for r in results if r["workload"] in ("MATH-500 gold", "MATH-500 perturbed")]
    overall = sum(r["n"] / r["direct_checks_per_s"] for r in m500) / sum(
        r["n"] / r["env_steps_per_s"] for r in m500
    )
    bound = args.timeout + 0.5
    worst = max(r["slowest_step_s"] for r in results)
    console.print(f"MATH-500 gold+perturbed, each task checked once, cold: {overall:.1f}x (target >= 2x)")
    console.print(f"slowest step {worst:.3f} s (bound: timeout + 0.5 s = {bound:.1f} s)")
    figures = bounds(console, args.timeout)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"results": results, "math500_speedup": overall, "slowest_step_s": worst, **figures}, indent=2
            )
        )


if __name__ == "__main__":
    main()
