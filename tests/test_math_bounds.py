"""Every MathFeedback step is bounded: extraction linear in the reply, checks within a CPU budget and a wall backstop, worker memory capped.

Timings here are generous "no hang" bounds only; the measured figures come from
``benchmarks/env_throughput.py --bounds-only``.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import threading
import time
from pathlib import Path

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.math._verify_worker import ParseCache
from drift_envs.math.answers import MAX_READ_CHARS, extract_answer, find_boxed
from drift_envs.math.env import MAX_QUOTED_ANSWER
from drift_envs.math.verifier import MathVerifier, UndecidedError

BOMB = "9^{9^{9^{9}}}"  # an integer with ~10^8 digits: sympy grinds in C until the worker is killed


def _within(seconds: float, fn, *args):
    """``fn(*args)`` run in a thread; fails the test if it has not returned after ``seconds``."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} did not return within {seconds} s"
    return out["value"]


# ---- extraction ----------------------------------------------------------------------------------

_REF_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_REF_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _reference_all_boxes(text: str) -> list[tuple[int, int, str]]:
    """The obvious quadratic reading: from each box, walk to its closing brace; (start, end, content)."""
    found = []
    for m in _REF_BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "\\" and i + 1 < len(text):
                i += 2
                continue
            depth += (text[i] == "{") - (text[i] == "}")
            i += 1
        if depth == 0:
            found.append((m.start(), i, text[m.end() : i - 1]))
    return found


def _reference_find_boxed(text: str) -> list[tuple[int, str]]:
    """The boxes that lie inside no other box."""
    boxes = _reference_all_boxes(text)
    return [(s, c) for s, e, c in boxes if not any(s2 < s and s < e2 for s2, e2, _ in boxes)]


def _reference_unwrap(content: str) -> str:
    """Peel boxes that wrap the whole content, one at a time."""
    while True:
        inner = content.strip()
        whole = [c for s, e, c in _reference_all_boxes(inner) if s == 0 and e == len(inner)]
        if not whole:
            return content
        content = whole[0]


def _reference_extract(text: str) -> str | None:
    candidates = []
    tags = list(_REF_TAG.finditer(text))
    if tags:
        boxed = _reference_find_boxed(tags[-1].group(1))
        candidates.append((tags[-1].start(), _reference_unwrap(boxed[-1][1]) if boxed else tags[-1].group(1)))
    boxed = _reference_find_boxed(text)
    if boxed:
        candidates.append((boxed[-1][0], _reference_unwrap(boxed[-1][1])))
    if not candidates:
        return None
    return max(candidates, key=lambda c: c[0])[1].strip() or None


def test_extraction_matches_the_quadratic_reference_on_random_replies():
    rng = random.Random(0)
    atoms = [
        "\\boxed{",
        "\\fbox {",
        "{",
        "}",
        "\\",
        "\\{",
        "\\}",
        "7",
        " ",
        "<answer>",
        "</answer>",
        "<ANSWER>",
        "</Answer>",
        "\\\\",
        "x",
    ]
    for _ in range(30_000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 16)))
        assert find_boxed(text) == _reference_find_boxed(text), text
        assert extract_answer(text) == _reference_extract(text), text


@pytest.mark.parametrize("unit", ["\\boxed{", "<answer>", "<answer>\\boxed{", "\\boxed{<answer>"])
def test_extraction_of_a_2_mb_adversarial_reply_returns(unit):
    # the quadratic scans took 15 s at 56 KB (boxes) and 175 s at 640 KB (tags): hours at 2 MB
    reply = unit * (2_000_000 // len(unit))
    assert _within(30, extract_answer, reply) is None
    closed = reply + "\\boxed{42}"
    assert _within(30, extract_answer, closed) == "42"


def test_extraction_of_deeply_nested_closed_boxes_returns():
    # every box closed: returning each box's content would be quadratic output (n boxes of size ~n)
    n = 100_000
    reply = "\\boxed{" * n + "7" + "}" * n
    assert _within(30, find_boxed, reply) == [(0, reply[len("\\boxed{") : -1])]
    # a reply is read from its last MAX_READ_CHARS characters: these boxes open before them, so the
    # reply has no closed box there; nested boxes that fit are unwrapped to their content
    assert _within(30, extract_answer, reply) is None
    fits = (MAX_READ_CHARS - 1) // (len("\\boxed{") + 1)
    assert _within(30, extract_answer, "\\boxed{" * fits + "7" + "}" * fits) == "7"


def test_env_step_on_a_huge_adversarial_reply_is_a_format_failure_and_returns():
    env = gym.make("drift/MathFeedback-v0", feedback="hint", timeout_s=1.0).unwrapped
    env.reset(options={"index": 0})
    _, reward, terminated, _, info = _within(30, env.step, "\\boxed{" * 150_000 + "<answer>" * 100_000)
    assert not info["format_ok"] and reward == pytest.approx(-0.1) and not terminated


def test_hint_feedback_quotes_at_most_a_bounded_part_of_a_repeated_answer():
    env = gym.make("drift/MathFeedback-v0", feedback="hint", timeout_s=1.0).unwrapped
    env.reset(options={"index": 0})
    long_answer = "\\boxed{" + "x+" * 5_000 + "1}"
    env.step(long_answer)
    obs, *_, info = env.step(long_answer)
    assert info["repeated"] and len(obs) < MAX_QUOTED_ANSWER + 200


# ---- the verifier pool: a CPU budget decides, the wall clock only bounds the waiting --------------------


def test_a_check_waiting_for_a_busy_pool_is_bounded_and_never_passes_a_bomb():
    # one worker, four threads sending answers that need more than their CPU budget: waiting for the
    # busy worker is load, not the answer, so a call is bounded by attempts * max_wait_s (not by
    # timeout_s as it was when a wall-clock overrun counted as wrong) and ends either over budget
    # (False) or undecided, never True
    verifier = MathVerifier(max_workers=1)
    verifier.warm_up()
    timeout, max_wait, seconds, outcomes = 1.0, 3.0, [], []

    def bomber():
        for _ in range(1):
            t = time.monotonic()
            try:
                outcomes.append(verifier.verify("5", BOMB, timeout, max_wait_s=max_wait))
            except UndecidedError:
                outcomes.append("undecided")
            seconds.append(time.monotonic() - t)

    threads = [threading.Thread(target=bomber) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert len(seconds) == 4 and set(outcomes) <= {False, "undecided"}, outcomes
    assert max(seconds) < verifier.attempts * max_wait + 3.0, seconds  # generous: polling, kills, reaping
    # how many ran out of budget and how many of wall time depends on the machine's load; the counts
    # say which was which
    assert verifier.timeouts == outcomes.count(False)
    assert verifier.undecided == outcomes.count("undecided")
    # the pool recovers: a symbolic check still succeeds once a replacement has started
    assert _within(60, verifier.verify, "\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", 30.0) is True
    verifier.close()


def test_a_fresh_workers_start_up_counts_against_the_wall_backstop_not_the_verdict():
    verifier = MathVerifier(max_workers=1)  # no warm-up: the first check meets a worker still importing
    t = time.monotonic()
    with pytest.raises(UndecidedError):  # 2 attempts of 50 ms: no import is that fast, so no verdict
        verifier.verify("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", 30.0, max_wait_s=0.05)
    assert time.monotonic() - t < 3.0 and verifier.undecided == 1 and verifier.timeouts == 0
    # the starting worker was kept, and answers once its imports are done: start-up is not the answer's cost
    assert _within(60, verifier.verify, "\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", 30.0) is True
    verifier.close()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX job-control signals")
def test_a_stuck_worker_is_replaced_and_the_check_retried():
    verifier = MathVerifier(max_workers=1)
    verifier.warm_up()
    assert verifier._spare is not None and verifier._spare.started.wait(120)  # the retry's worker is ready
    stuck = verifier._idle[0]
    os.kill(stuck.proc.pid, signal.SIGSTOP)  # frozen: it neither answers nor uses CPU
    try:
        # the first attempt stalls (under budget at its backstop, no CPU used: stuck, so killed); the
        # retry runs on the spare
        check = lambda: verifier.verify("x^2", "x \\cdot x", 5.0, max_wait_s=2.0)  # noqa: E731
        assert _within(120, check) is True
        assert verifier.stalls == 1 and verifier.undecided == 0
        stuck.proc.wait(30)  # killed, not left behind
    finally:
        stuck.kill()
    one_try = MathVerifier(max_workers=1, attempts=1)
    one_try.warm_up()
    os.kill(one_try._idle[0].proc.pid, signal.SIGSTOP)
    with pytest.raises(UndecidedError):  # nothing to retry on: undecided, not wrong
        one_try.verify("x^2", "x \\cdot x", 5.0, max_wait_s=1.0)
    assert one_try.undecided == 1 and one_try.timeouts == 0
    verifier.close()
    one_try.close()


def test_threads_stepping_real_envs_with_overrunning_answers_get_stable_verdicts(tmp_path: Path):
    path = tmp_path / "task.jsonl"
    path.write_text(json.dumps({"problem": "p", "answer": "\\frac{\\sqrt{2}}{2}"}) + "\n")
    # the wall backstop is generous: each bomb costs a worker restart (~2.5 CPU s of imports), and on a
    # shared machine those restarts, not the honest check, would use up a short one
    timeout, max_wait, worst, verdicts, errors = 0.3, 60.0, {}, {}, []

    def run(name: str, reply: str) -> None:
        try:
            env = gym.make(
                "drift/MathFeedback-v0",
                dataset=str(path),
                timeout_s=timeout,
                max_wait_s=max_wait,
                max_turns=1,
            ).unwrapped
            for _ in range(2):
                env.reset(options={"index": 0})
                t = time.monotonic()
                info = env.step(reply)[4]
                verdicts.setdefault(name, []).append("undecided" if info["undecided"] else info["correct"])
                worst[name] = max(worst.get(name, 0.0), time.monotonic() - t)
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(f"bomb{i}", f"\\boxed{{{BOMB}}}")) for i in range(2)]
    threads.append(threading.Thread(target=run, args=("honest", "\\boxed{\\frac{1}{\\sqrt{2}}}")))
    for th in threads:
        th.start()
    for th in threads:
        th.join(240)
    assert not errors and not any(th.is_alive() for th in threads)
    assert verdicts["honest"] == [True] * 2, verdicts  # the bombs next to it do not change its verdict
    assert all(set(verdicts[f"bomb{i}"]) <= {False, "undecided"} for i in range(2)), verdicts
    assert max(worst.values()) < 2 * max_wait + 4.0, (
        worst
    )  # generous "no hang"; measured figures: the benchmark


# ---- memory ---------------------------------------------------------------------------------------


def test_parse_cache_holds_only_short_answers_within_its_character_budget():
    from math_verify import parse

    calls = []

    def parse_counted(text: str):
        calls.append(text)
        return parse("\\boxed{" + text + "}", parsing_timeout=None)

    cache = ParseCache(budget_chars=30, max_chars=10)
    assert cache.get("1+1", parse_counted) and cache.get("1+1", parse_counted)
    assert calls == ["1+1"]  # the second read came from the cache
    long_answer = "1" * 11
    cache.get(long_answer, parse_counted)
    cache.get(long_answer, parse_counted)
    assert calls.count(long_answer) == 2 and len(cache) == 1  # past max_chars: parsed each time, never held
    for i in range(20):
        cache.get(f"{i}+{i}x", parse_counted)
    assert cache.chars <= 30 and len(cache) <= 10
    cache.get("1+1", parse_counted)
    assert calls.count("1+1") == 2  # evicted long ago, least recently used first


def _max_address_space(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            return line.split()[3]
    raise AssertionError("no address-space line in /proc/<pid>/limits")


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs Linux procfs")
def test_workers_run_under_an_address_space_limit_and_retire_past_their_resident_budget():
    verifier = MathVerifier(max_workers=1, memory_mb=1536, retire_mb=1)  # every worker is past 1 MB resident
    verifier.warm_up()
    first = verifier._idle[0]
    assert _max_address_space(first.proc.pid) == str(1536 * 2**20)
    assert verifier.verify("x^2", "x \\cdot x", 30.0) is True
    assert first.retired  # it said so with its answer ...
    first.proc.wait(30)  # ... and is gone (exited, or stopped by the pool)
    assert verifier.verify("x^2", "x \\cdot x", 30.0) is True  # a replacement answers
    assert all(w.proc.pid != first.proc.pid for w in verifier._idle)
    assert verifier.failures == 0
    verifier.close()


@pytest.mark.skipif(not hasattr(signal, "SIGXCPU"), reason="needs POSIX RLIMIT_CPU")
def test_the_kernel_ends_a_worker_past_its_cpu_budget_when_nobody_watches(tmp_path: Path):
    # the pool kills an overrun itself (it watches /proc); where it cannot, RLIMIT_CPU does
    import subprocess
    import sys

    worker = subprocess.Popen(
        [sys.executable, "-m", "drift_envs.math._verify_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert worker.stdout.readline().strip() == "ready"
        worker.stdin.write(json.dumps({"gold": "5", "pred": BOMB, "cpu_s": 0.2}) + "\n")
        worker.stdin.flush()
        assert worker.wait(120) == -signal.SIGXCPU
        assert list(tmp_path.iterdir()) == []  # no core file left behind
    finally:
        worker.kill()
        worker.wait()
