"""MathFeedback ``step`` throughput vs calling math-verify directly on the same (gold, reply) pairs.

Run from the repository root:

    python benchmarks/env_throughput.py [--data ../shared/data/math500.jsonl] [--timeout 2.0]

Three workloads, one process, side by side:
- MATH-500 gold answers written as a model would (``... \\boxed{gold}``), and the same with a perturbed
  answer (last digit bumped): env ``step`` vs ``math_verify.verify(parse("$gold$"), parse(reply))``;
- procedural tasks (gold and perturbed): the env's step alone (the direct call is shown too).
Also reports the slowest single step, which must stay under ``timeout + 0.5`` s.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    """Run the benchmark and print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "math500.jsonl"))
    parser.add_argument("--timeout", type=float, default=2.0, help="the env's timeout_s")
    parser.add_argument("--procedural", type=int, default=1000, help="number of procedural tasks")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    console = Console()
    results = []
    workloads = []
    math_env = gym.make("drift/MathFeedback-v0", dataset=args.data, timeout_s=args.timeout, max_turns=1).unwrapped
    tasks = [math_env.get_task(i) for i in range(math_env.num_tasks())]
    workloads.append(("MATH-500 gold", math_env, [(i, f"So the answer is \\boxed{{{t.answer}}}.") for i, t in enumerate(tasks)], tasks))
    workloads.append(("MATH-500 perturbed", math_env, [(i, f"So the answer is \\boxed{{{perturb(str(t.answer))}}}.") for i, t in enumerate(tasks)], tasks))
    # the pattern of a multi-turn rollout: per task, three different wrong answers and then the right one
    episodes = [(i, f"So the answer is \\boxed{{{perturb(str(t.answer), k) if k else t.answer}}}.")
                for i, t in enumerate(tasks) for k in (1, 2, 3, 0)]
    workloads.append(("MATH-500 episodes (3 wrong, 1 right)", math_env, episodes, [tasks[i] for i, _ in episodes]))
    proc_env = gym.make("drift/MathFeedback-v0", timeout_s=args.timeout, max_turns=1).unwrapped
    ptasks = [proc_env.get_task(i) for i in range(args.procedural)]
    workloads.append(("procedural gold", proc_env, [(i, f"\\boxed{{{t.answer}}}") for i, t in enumerate(ptasks)], ptasks))
    workloads.append(("procedural perturbed", proc_env, [(i, f"\\boxed{{{perturb(str(t.answer))}}}") for i, t in enumerate(ptasks)], ptasks))

    # warm the verifier pool so a worker's one-off start-up is not billed to the first workload
    math_env.reset(options={"index": 0})
    math_env.step("\\boxed{x^2+1}")

    for name, env, pairs, task_list in workloads:
        env_s, slowest, env_ok = env_pass(env, pairs)
        direct_s, direct_ok = direct_pass([(t.answer, reply) for t, (_, reply) in zip(task_list, pairs, strict=True)])
        n = len(pairs)
        results.append({
            "workload": name, "n": n, "env_steps_per_s": n / env_s, "direct_checks_per_s": n / direct_s,
            "speedup": direct_s / env_s, "slowest_step_s": slowest, "env_correct": env_ok, "direct_correct": direct_ok,
        })

    table = Table(title=f"MathFeedback step vs direct math-verify (timeout_s={args.timeout})")
    for col in ("workload", "n", "env steps/s", "direct checks/s", "speed-up", "slowest step (s)", "correct env/direct"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(r["workload"], str(r["n"]), f"{r['env_steps_per_s']:.0f}", f"{r['direct_checks_per_s']:.0f}",
                      f"{r['speedup']:.1f}x", f"{r['slowest_step_s']:.3f}", f"{r['env_correct']}/{r['direct_correct']}")
    console.print(table)
    m500 = [r for r in results if r["workload"] in ("MATH-500 gold", "MATH-500 perturbed")]
    overall = sum(r["n"] / r["direct_checks_per_s"] for r in m500) / sum(r["n"] / r["env_steps_per_s"] for r in m500)
    bound = args.timeout + 0.5
    worst = max(r["slowest_step_s"] for r in results)
    console.print(f"MATH-500 gold+perturbed, each task checked once, cold: {overall:.1f}x (target >= 2x)")
    console.print(f"slowest step {worst:.3f} s (bound: timeout + 0.5 s = {bound:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "math500_speedup": overall, "slowest_step_s": worst}, indent=2))


if __name__ == "__main__":
    main()
