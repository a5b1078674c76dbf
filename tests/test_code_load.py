"""Code verdicts that do not depend on the machine's load (issue 23, point 10, for the code sandbox).

A limit counts the check's own time (wall time less its waits for a CPU another process held), so a
correct solution that needs a second of CPU passes at ``timeout_s=3`` however busy the machine is;
what only the machine's load stops is *undecided* (run once more, then recorded as such), never a
timeout or a wrong answer; and a candidate cannot stretch its own clock by making itself wait.

The load is real: CPU burners, each in a session of its own (so each is a scheduling group of its
own where the kernel groups by session), twice as many as the machine has CPUs, killed at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import wait

import pytest
from scripted_replies import ScriptedReplies

from drift_envs.code.env import CodeFeedbackEnv
from drift_envs.code.sandbox import CodeJob, Sandbox, SandboxLimits
from drift_train.rollout import RolloutConfig, rollout

WORK = """
def work(n):
    s = 0
    for i in range(n):
        s += i
    return s
"""


def _own_clock(sb: Sandbox) -> None:
    """Skip where the sandbox says it counts wall time here (not root, no cgroup, no schedstat)."""
    if sb.isolation.get("clock", "own time") != "own time":
        pytest.skip(f"this machine's sandbox counts wall time: {sb.isolation['notes']}")


@pytest.fixture(scope="module")
def busy():
    """CPU burners (2 per CPU, at least 4) for the module's tests, each in its own session."""
    n = max(4, 2 * (os.cpu_count() or 1))
    procs = []
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", "while True: pass"],
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.3)
        yield n
    finally:
        for p in procs:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox(workers=5)
    yield sb
    sb.close()


def _one_cpu_second() -> int:
    """The ``n`` for which ``work(n)`` takes about one second of CPU here (measured in CPU time, which
    the load does not stretch)."""
    ns: dict = {}
    exec(WORK, ns)
    n, spent = 300_000, []
    for _ in range(3):  # the least disturbed of three (a busy core's sibling slows a CPU second too)
        t0 = time.process_time()
        ns["work"](n)
        spent.append(time.process_time() - t0)
    return int(n / max(1e-3, min(spent)))


def test_a_solution_that_needs_one_cpu_second_passes_at_timeout_3_under_load(sandbox, busy):
    _own_clock(sandbox)
    n = _one_cpu_second()
    limits = SandboxLimits(timeout_s=3.0, memory_mb=256)
    jobs = [CodeJob(WORK, [f"assert work({n}) == {n * (n - 1) // 2}"], entry_point="work", limits=limits)]
    t0 = time.monotonic()
    futures = [sandbox.submit(jobs[0]) for _ in range(5)]  # side by side: they load each other too
    results = [f.result() for f in futures]
    wall = time.monotonic() - t0
    seen = (n, wall, [(r.status, r.cpu_s, r.duration_s) for r in results])
    assert [r.status for r in results] == ["passed"] * 5, (seen, [r.to_dict() for r in results])
    # they did need about a second of CPU each, and the busy machine took longer than the limit of
    # 3 s to give it to them: counted in wall time, they would have timed out
    assert min(r.cpu_s for r in results) >= 0.5 and max(r.duration_s for r in results) > 3.0, seen


IN_A_THREAD = (
    WORK.replace("def work(n):", "def _work(n):")
    + """
import threading
def work(n):
    out = []
    t = threading.Thread(target=lambda: out.append(_work(n)))
    t.start()
    t.join()
    return out[0]
"""
)

IN_A_CHILD = (
    WORK.replace("def work(n):", "def _work(n):")
    + """
import os
def work(n):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, str(_work(n)).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    return int(os.read(r, 100))
"""
)


@pytest.mark.parametrize(
    "code",
    [IN_A_THREAD, IN_A_CHILD],
    ids=["thread", "child_process"],
)
def test_work_off_the_main_thread_passes_under_load_too(sandbox, busy, code):
    # the serving thread is blocked in join() or waitpid() (its own time) while the worker waits for
    # a CPU: the clock deducts the waits of every task of the check, not the serving thread's alone
    # (red team of issue 23.10: 3 of 3 were timeouts at 0 CPU seconds, the same loop inline passed)
    _own_clock(sandbox)
    n = _one_cpu_second()
    limits = SandboxLimits(timeout_s=3.0, memory_mb=256)
    job = CodeJob(code, [f"assert work({n}) == {n * (n - 1) // 2}"], entry_point="work", limits=limits)
    results = [f.result() for f in [sandbox.submit(job) for _ in range(5)]]  # side by side
    seen = [(r.status, r.cpu_s, r.duration_s) for r in results]
    assert [r.status for r in results] == ["passed"] * 5, (n, seen, [r.to_dict() for r in results])
    # the busy machine took longer than the limit to give them their second: wall time would time out
    assert max(r.duration_s for r in results) > 3.0, seen


def test_sleeping_and_looping_candidates_still_time_out_after_their_own_limit(sandbox, busy):
    _own_clock(sandbox)
    limits = SandboxLimits(timeout_s=4.0, test_timeout_s=1.0, memory_mb=256)
    sleep = CodeJob(
        "import time\ndef f():\n    time.sleep(100)", ["assert f() == 1"], entry_point="f", limits=limits
    )
    loop = CodeJob(
        "def f():\n    while True:\n        pass",
        ["assert f() == 1", "assert 1 == 1"],
        entry_point="f",
        limits=limits,
    )
    t0 = time.monotonic()
    fs, fl = sandbox.submit(sleep), sandbox.submit(loop)
    wait([fs, fl])
    rs, rl = fs.result(), fl.result()
    # blocked time is the candidate's own: the sleeper times out after about its second
    assert rs.status == "timeout" and rs.tests[0].status == "timeout", rs.to_dict()
    assert 1.0 <= rs.duration_s < 10.0, rs.to_dict()
    # the loop was given its whole second of CPU, however long the busy machine took to give it
    assert rl.status == "timeout" and rl.tests[0].status == "timeout", rl.to_dict()
    assert rl.tests[1].status == "passed" and rl.cpu_s >= 0.9, rl.to_dict()
    assert time.monotonic() - t0 < 30.0


def test_a_check_past_its_backstop_is_undecided_retried_and_recorded(tmp_path, busy):
    # a backstop (0.4 s of wall time) shorter than the limit (5 s of own time): the loop can only end
    # undecided, never as a timeout, and the sandbox runs it twice before saying so
    with Sandbox(workers=1, limits=SandboxLimits(timeout_s=5.0, backstop_s=0.4, memory_mb=256)) as sb:
        _own_clock(sb)
        t0 = time.monotonic()
        r = sb.run(
            "def f():\n    while True:\n        pass", ["assert f() == 1", "assert 1 == 1"], entry_point="f"
        )
        assert r.status == "undecided" and r.undecided and not r.passed, r.to_dict()
        assert r.tests[0].status == "undecided" and "backstop" in r.tests[0].message, r.to_dict()
        assert time.monotonic() - t0 >= 0.8  # two attempts of 0.4 s each
        # a wrong answer stays wrong whatever else was undecided (every test runs)
        r = sb.run(
            "def f(x):\n    while x:\n        pass\n    return 2",
            ["assert f(1) == 1", "assert f(0) == 1"],
            entry_point="f",
        )
        assert r.status == "wrong_answer" and [t.status for t in r.tests] == ["undecided", "wrong_answer"]

    # through the env and the rollout engine: turn 1 undecided (no reward, no penalty, the episode goes
    # on, the feedback says so), turn 2 the reference solution
    kwargs = {"backstop_s": 0.4, "max_turns": 3, "hidden_tests": 0}
    env = CodeFeedbackEnv(**kwargs)
    script = {}
    for index in range(2):
        prompt, _ = env.reset(options={"index": index})
        name = env.unwrapped.task.meta["entry_point"]
        loop = f"```python\ndef {name}(*args):\n    while True:\n        pass\n```"
        script[prompt] = [loop, env.unwrapped.oracle_reply()]
    env.reset(options={"index": 0})
    obs, reward, terminated, truncated, info = env.step(script[next(iter(script))][0])
    assert info["undecided"] and not info["correct"] and reward == 0.0 and not terminated, info
    assert obs.startswith("Your code could not be tested in time"), obs
    env.close()
    config = RolloutConfig("drift/CodeFeedback-v0", kwargs, num_tasks=2, samples=1)
    records, _ = rollout(ScriptedReplies(lambda prompt: script[prompt]), config, tmp_path / "r.jsonl")
    assert len(records) == 2
    for rec in records:
        assert rec["undecided_turns"] == [1] and rec["verifier"] == {"t1": 0, "t2": 1}, rec
        assert rec["turn_rewards"]["t1"] == 0.0 and rec["format_penalty"] == 0.0


SPINNERS = """
import os
def f():
    for _ in range(24):  # busy children: each makes the serving thread wait longer for a CPU
        if os.fork() == 0:
            while True:
                pass
    while True:
        pass
"""


def test_busy_children_buy_no_time_past_the_limit(busy):
    # were only the serving thread's run-queue wait subtracted, 24 busy children would stretch its
    # 1 s limit past the 20 s backstop (undecided); the check's CPU time over the CPUs counts as well
    limits = SandboxLimits(timeout_s=3.0, test_timeout_s=1.0, backstop_s=20.0, memory_mb=256, processes=32)
    with Sandbox(workers=1, limits=limits) as sb:
        _own_clock(sb)
        sb.undecided_retries = 0
        r = sb.run(SPINNERS, ["assert f() == 1"], entry_point="f")
    assert r.status == "timeout" and r.tests[0].status == "timeout", r.to_dict()
    assert r.duration_s < 20.0


def test_a_candidate_cannot_lower_its_own_priority(sandbox):
    # a candidate that made itself wait for a CPU (nice 19, SCHED_IDLE, its session's autogroup nice)
    # would stretch its own time on a busy machine until the backstop: an infinite loop undecided
    code = """
import os
def f():
    out = []
    for attempt in (lambda: os.nice(19), lambda: os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))):
        try:
            attempt()
            out.append("done")
        except OSError as e:
            out.append(type(e).__name__)
    try:
        with open("/proc/self/autogroup", "w") as g:
            g.write("19")
        out.append("done")
    except OSError as e:
        out.append(type(e).__name__)
    return out
"""
    r = sandbox.run(code, ["assert f() == 1"], entry_point="f")
    got = r.tests[0].actual
    iso = sandbox.isolation
    if iso["seccomp"]:  # refused by the system-call filter
        assert got is not None and got.startswith("['PermissionError', 'PermissionError'"), r.to_dict()
    if iso["level"] == "full" or iso["uid_drop"]:  # /proc read-only, or its files root's after the uid drop
        assert got is not None and "done" not in got, r.to_dict()


def test_a_candidate_cannot_say_it_was_starved(sandbox):
    # the candidate's process holds the sandbox's own code (it is forked from the server): it can raise
    # the exception that makes it reply "undecided", or send that reply itself. The judge believes it
    # only past the backstop by its own clock, so a wrong answer cannot pass itself off as undecided
    find = "import sys\nU = next(m for m in list(sys.modules.values()) if hasattr(m, '_CallUndecided'))._CallUndecided\n"
    call = find + "def f():\n    raise U()"
    load = find + "raise U()\ndef f():\n    return 1"
    for code in (call, load):
        r = sandbox.run(code, ["assert f() == 1", "assert f() == 2"], entry_point="f")
        assert r.status == "runtime_error" and not r.undecided, r.to_dict()
        assert "invalid reply" in (r.tests[0].message + str(r.error)), r.to_dict()
