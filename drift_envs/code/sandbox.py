"""Run untrusted Python against unit tests, fast, without letting it forge a verdict or harm the caller.

(Over ~600 lines on purpose: this docstring states the isolation guarantee per level and per kernel
object, the contract users rely on, beside the host-side pool that keeps it; the server's jobs live
in their own modules.)

A :class:`Sandbox` keeps one warm fork server (``_forkserver.py``, a separate stdlib-only
interpreter started once) and sends it checks; no interpreter starts per check, and several checks
run in parallel (``workers``). Each check is two processes:

* the **candidate** runs the model's code (after the task's ``prelude``) and then only serves the
  calls the tests make to what that code defines. It is forked from a *zygote* that the server
  forks before its first request, so it never holds the tests, their expected values, the code of
  the verdict in action, or anything of another check: only its own code and the arguments of the
  calls it is asked to serve;
* the **judge** (one per worker slot, serving its checks one at a time; the global ``random`` is
  reseeded for each) holds the tests, never the model's code. It runs the ``prelude`` and ``setup`` itself (so a test's helpers,
  e.g. HumanEval's ``encode_cyclic`` or ``poly``, and the builtins are always its own, whatever the
  candidate redefines), evaluates every test expression, and calls the candidate for the function
  under test. What crosses between them is plain data in a format of this package's own (never
  pickle, never ``eval``), capped at 8 MiB and 100 levels of nesting: ``None``, ``bool``, ``int``,
  ``float``, ``complex``, ``str``, ``bytes``, ``bytearray``, ``list``, ``tuple``, ``dict``, ``set``,
  ``frozenset``, ``range`` and built-in types. A built-in iterator or dict view the candidate's
  function returns (a generator, ``map``, ``filter``, ``zip``, an ``itertools`` object, ``d.keys()``)
  is read out on the candidate's side, under the call's time limit and at most 2**20 items (an
  endless generator fails the call with that message), and arrives as the judge's own iterator or
  dict view over those plain items, so ``set(f(x))`` works and ``f(x) == [..]`` is as false as in
  Python; an error the generator raises is the call's. A subclass of one of those (a namedtuple, a
  ``Counter``, an ``IntEnum``) arrives as its plain value, read through the base type's own slots;
  any other object (a ``Fraction``, a ``Decimal``, a class of the code's own) arrives as a handle
  that the judge can call, read and set attributes of, pass back and ask the truth of, but never
  compares, orders, hashes by value or iterates (a test that tries fails with a ``TypeError``
  naming the type). The verdict records go from the judge to the server on a pipe the candidate
  never holds; there is no secret to steal and no record format the candidate can reach.

The judge's behaviour never depends on a verdict: an ``assert`` in a test records its failure and
the test goes on, the short circuits inside an assert (``and``, ``or``, ``all``, ``any``) evaluate
every operand, every test runs whatever the earlier ones gave, and failures are worded only after
the last test. So the order, number and timing of the judge's requests are the same whether an
answer was right or wrong (a candidate that times them learns nothing of the expected values; the
time a comparison itself takes is the one residue, nanoseconds for the values tests compare). A name
a test reads is the judge's own: the prelude's and set-up's, the builtins, and for a
standard-library module name (``sys``, ``math``, even when an MBPP test relies on the solution's
import) the module itself; only the function under test and other names only the code defines (an
MBPP test's ``Node``) are the candidate's objects.

What every check gets, in every isolation level:

* that split, with the judge not dumpable (no process of its uid may read its memory or
  descriptors through ``/proc`` or ``ptrace``), as is the server; as root the candidate and the
  judge always run as unprivileged uids of their own, ``isolation="basic"`` (or its old name
  ``"none"``) included, so no level lets a candidate write the judge's result pipe;
* a candidate in its own session and process group, stdin from ``/dev/null``, a clean environment
  (``PATH``, ``HOME``, ``TMPDIR``, ``LANG``, ``PYTHONIOENCODING`` only), no descriptors but its
  output pipe and its socket;
* limits: time (``timeout_s`` for the run, ``test_timeout_s`` per test) counted as the check's own
  time, so that the machine's load does not change a verdict: wall time less the time the judge and
  the candidate waited on a run queue for a CPU another process held (``/proc/<pid>/schedstat``),
  or the check's CPU time (its slot cgroup's) over the CPUs it may use if that is more, so that
  busy threads or children of its own, which make it wait, buy it nothing; time blocked (``sleep``,
  a pipe) is its own. The candidate's alarm re-arms until its own time reaches the call's budget
  (a ``timeout``); the server reads the same clock and kills everything, a judge included, once a
  test runs ``0.25 s`` of own time past its limit (the candidate ignored its alarm) or the run past
  ``timeout_s``. A wall-clock backstop (``backstop_s``, default ``max(30, 15 * limit)``) ends a check
  or test that the machine starved that long short of its limit as ``undecided``: never a
  timeout; :meth:`Sandbox.submit` runs an undecided check once more before returning it, and a
  failure that load cannot cause (a wrong answer, an error, a timeout) in another test decides the
  run all the same. A candidate may not lower its own priority (``setpriority``,
  ``sched_setscheduler``, ``sched_setattr``, ``sched_setparam``, ``sched_setaffinity`` are refused,
  and its ``/proc/self/autogroup`` cannot be written: read-only at the ``full`` level, root's once
  its uid was dropped) — a candidate that made itself wait could otherwise turn its infinite loop
  into an undecided check. The judge takes a candidate's word that it was starved only once the
  judge's own clock is past the backstop: earlier, that reply is invalid (a ``runtime_error``). Where schedstat or the
  slot cgroup's CPU account is missing (not root, no cgroup), the limits count wall time as before
  and ``isolation["clock"]`` says ``"wall"``. For the candidate also CPU seconds per process
  (``cpu_s``), address space (``memory_mb``), file size, open files, no core dumps (the judge: a
  fixed 4 GiB address space); output capped (the last 4 KiB of stdout+stderr are kept, more than
  ``max_output_bytes`` ends the run);
* a system-call filter (seccomp, on x86_64 and aarch64; ``isolation["seccomp"]``) that refuses with
  ``EPERM``: new namespaces of any kind (``unshare``, ``clone`` with a namespace flag; ``clone3`` is
  ``ENOSYS``, so the C library falls back to ``clone``) and ``setns``, so no user namespace (which
  would give the code root over a private IPC namespace with default limits and a tmpfs past
  ``disk_mb``); the kernel keyrings (``add_key``, ``keyctl``, ``request_key``); sockets
  (``socket``, ``socketpair``, ``bind``, ``listen``, ``connect``: honest code has no network to use,
  and a named socket kept alive by a descriptor in flight would outlive the check); ``io_uring``,
  ``userfaultfd``, ``perf_event_open``, ``bpf``, ``mount``, ``pivot_root``, ``chroot``;
* a server that only reads from a check's processes (non-blocking, capped), type-checks and
  truncates every record before use, and fails one check, not the server, when its set-up fails.

Nothing survives a check (the ``full`` level; what the others lack is listed there). The kernel
objects a process can create are: processes (killed: every process of the check's uid, below),
files (only in the check's own tmpfs, gone with its mount namespace; every other mount is
read-only), SysV and POSIX IPC objects (none can be made: the slot's IPC namespace has zero
limits), keys (refused), sockets and their abstract names (refused; the slot's network namespace
has nothing but a down loopback), namespaces (refused), and what dies with its last descriptor
(pipes, memfds, eventfds, timers, locks), whose descriptors are all closed with the processes. No
uid, cgroup or namespace a check uses holds anything of it once the check ends, so the next check
of the slot starts from the same state as the first check of the slot did.

The whole check is bounded, not each process: as root, each worker slot has a cgroup of its own
(v2 with the memory and pids controllers where the machine delegates them, else the v1 memory and
pids hierarchies; ``isolation["check_limits"]``), set before each check to ``memory_mb`` for all
the check's memory together (every process, memfd, pipe buffer and file of its tmpfs; no swap)
and to ``processes`` for all its tasks. A check that runs out is killed by the kernel and reported
as ``memory_limit``. Where no cgroup can be made (not root, no writable cgroup file system) the
limits hold per process only: ``memory_mb`` is each process's address space (a check may then hold
more across processes and memfds), ``processes`` is ``RLIMIT_NPROC`` as root and not set otherwise.

The isolation level (``Sandbox.isolation``: ``level`` plus one flag per feature, and ``notes``
saying what is missing and why) says what else holds:

``full`` (root, Linux namespaces available — the case on this project's machines)
    the candidate and the judge each run as an unprivileged uid of their own, unique to the check's
    worker slot (so ``RLIMIT_NPROC`` bounds fork bombs, and neither can signal, trace or read the
    other, another check, or the server); when the check ends every process of the candidate's uid
    is killed (``kill(-1)`` sent as that uid), so nothing it started outlives it. The candidate sees
    only the interpreter (``isolation["filesystem"] == "interpreter only"``): its root is a fresh
    read-only tmpfs (``pivot_root``; the host's tree is detached, not hidden) holding the standard
    library (site-packages empty: no third-party package, no other package's data), the shared
    libraries the interpreter and its extension modules load, ``/dev/null``, ``zero``, ``full``,
    ``random``, ``urandom``, a ``/proc`` that shows a uid only its own processes (``hidepid=2``),
    and its working directory ``/tmp``: a tmpfs of its own per check (``disk_mb`` bytes,
    ``inodes`` inodes) gone with its last process, as is its ``/dev/shm`` (1 MiB, for the POSIX
    semaphores of ``multiprocessing``). No other file of the host (the benchmarks' own
    test files, this package, the home directory) can be reached by any path. It runs in its
    worker slot's own IPC namespace, where SysV shared memory, message queues and semaphores and
    POSIX message queues cannot be created at all (limits zero), and its slot's own network
    namespace (no interfaces but a down loopback); those two are made once per slot: two checks in
    flight never share them, and once a check's processes are swept they hold nothing of it. Plus
    ``no_new_privs`` and a parent-death signal. The judge runs in the server's mount namespace
    (every host mount read-only, ``/proc`` with ``hidepid=2``); it runs only the task's own code.
``basic`` as root without namespaces (or ``isolation="basic"``)
    the uid drop (candidate and judge apart), the slot cgroup, the system-call filter,
    ``RLIMIT_NPROC``, the own-time clock and the kill-by-uid sweep hold (its ``/proc`` files belong
    to root once it dropped its uid, so it cannot lower its session's autogroup priority either); the candidate sees the host's file system
    (what its uid may read, world-readable benchmark files included) and its processes' ids, the
    network namespace and SysV/POSIX IPC are the host's (IPC objects may outlive the check), and
    world-writable places (``/tmp``, ``/dev/shm``) can be written. Do not train on untrusted code at
    this level where the tests' data lies readable on the host.
``basic`` as an ordinary user
    the candidate runs as the same user as the judges and the server: it cannot read them (not
    dumpable) but may signal them — killing a judge fails the check it is serving (a new judge takes
    the next), killing the server fails every check in flight with :class:`SandboxError` (the next
    call starts a new server). A process that leaves its process group can outlive the run, files
    the user may read or write elsewhere can be, the network and IPC are the host's, no cgroup
    bounds the check and ``RLIMIT_NPROC`` is not set (it would count all the user's processes). Use
    a container or VM for untrusted code in that case.

Not guaranteed at any level: the candidate chooses its own return values, the truth of its own
objects and what it prints (as any function does); a test that uses a name only the candidate
defines (an MBPP test that builds ``Node(1)`` with the solution's own class) calls the candidate for
it, so what that gives is the candidate's word; kernel bugs and timing side channels between
concurrent checks are out of scope. This module's code is in the candidate's memory (it is loaded
before the zygote forks), but none of its state but the candidate's own. Linux only (``prctl``,
``/proc``, namespaces). Third-party packages are not importable in the sandbox (the server runs
without site-packages), and neither sockets nor ``multiprocessing.Manager`` can be used.
"""

from __future__ import annotations

import atexit
import json
import os
import struct
import subprocess
import sys
import threading
import warnings
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

# the statuses a test can have: the server's own list (its modules are stdlib-only, so the host reads it)
from ._common import STATUSES

__all__ = [
    "CodeJob",
    "RunResult",
    "Sandbox",
    "SandboxError",
    "SandboxWarning",
    "SandboxLimits",
    "TestResult",
    "default_sandbox",
]

_SERVER = Path(__file__).with_name("_forkserver.py")


class SandboxWarning(UserWarning):
    """The sandbox runs at the ``basic`` level: the candidate can read the host's files (a benchmark's
    own tests included) and a reward can be had by looking the answer up. Raised loudly, never silent."""


_BASIC_WARNING = (
    "the code sandbox runs at the 'basic' isolation level{why}: candidate code can read the host's files "
    "(world-readable benchmark files included) and share its IPC and network, so a reply can earn its "
    "reward by looking the answer up. Do not train or evaluate on untrusted code at this level; "
    "isolation='auto' takes the 'full' level where the machine allows it (see drift_envs.code.sandbox)"
)


class SandboxError(RuntimeError):
    """The sandbox itself failed (server died, bad request); never raised for a failing program."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one check.

    ``timeout_s`` bounds the whole run, ``test_timeout_s`` each test (defaults to ``timeout_s``), in
    seconds of the check's *own* time: wall time less the time its processes waited for a CPU that
    another process held, or its CPU time over the CPUs it may use if that is more (time blocked in
    ``sleep`` or on a pipe is its own), so the machine's load does not change a verdict (where the
    machine cannot tell, wall time; ``Sandbox.isolation["clock"]``). ``backstop_s`` is the wall-clock
    backstop (default ``max(30, 15 * limit)`` for the run and for each test): a check the machine
    starves that long before its limit is ``undecided``, never a timeout. ``cpu_s`` bounds each
    process's CPU seconds (defaults to ``timeout_s`` rounded up, plus one).
    ``memory_mb`` bounds the whole check's memory (all its processes, memfds and files of its
    tmpfs together) where a cgroup is available, and each process's address space in any case;
    ``processes`` the check's tasks (cgroup) and its uid's processes (``RLIMIT_NPROC``);
    ``file_mb`` the size of one file (a memfd included); ``disk_mb`` and ``inodes`` the bytes and
    files of the candidate's own working directory (a tmpfs of its own at the ``full`` level).
    """

    timeout_s: float = 10.0
    test_timeout_s: float | None = None
    cpu_s: int | None = None
    memory_mb: int = 1024
    file_mb: int = 16
    open_files: int = 64
    processes: int = 32
    max_output_bytes: int = 1 << 20
    disk_mb: int = 64
    inodes: int = 2048
    backstop_s: float | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that is out of range."""
        if not self.timeout_s > 0:
            raise ValueError(f"SandboxLimits.timeout_s must be > 0, got {self.timeout_s!r}")
        if self.test_timeout_s is not None and not self.test_timeout_s > 0:
            raise ValueError(f"SandboxLimits.test_timeout_s must be > 0, got {self.test_timeout_s!r}")
        if self.backstop_s is not None and not self.backstop_s > 0:
            raise ValueError(f"SandboxLimits.backstop_s must be > 0, got {self.backstop_s!r}")
        for name in (
            "memory_mb",
            "file_mb",
            "open_files",
            "processes",
            "max_output_bytes",
            "disk_mb",
            "inodes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SandboxLimits.{name} must be a positive int, got {value!r}")
        if self.memory_mb < 128:
            raise ValueError(
                f"SandboxLimits.memory_mb must be at least 128 (Python needs it), got {self.memory_mb}"
            )
        if self.open_files < 16:
            raise ValueError(f"SandboxLimits.open_files must be at least 16, got {self.open_files}")

    def to_wire(self) -> dict:
        """The limits as the fork server reads them."""
        cpu = self.cpu_s if self.cpu_s is not None else int(self.timeout_s) + 1
        test_timeout = float(self.test_timeout_s or self.timeout_s)
        return {
            "timeout_s": float(self.timeout_s),
            "test_timeout_s": test_timeout,
            "backstop_s": float(self.backstop_s or max(30.0, 15.0 * self.timeout_s)),
            "test_backstop_s": float(self.backstop_s or max(30.0, 15.0 * test_timeout)),
            "cpu_s": int(max(1, cpu)),
            "memory_mb": self.memory_mb,
            "file_mb": self.file_mb,
            "open_files": self.open_files,
            "processes": self.processes,
            "max_output_bytes": self.max_output_bytes,
            "disk_mb": self.disk_mb,
            "inodes": self.inodes,
        }


@dataclass
class CodeJob:
    """One check: run ``code`` (after the trusted ``prelude``), then each test in order.

    ``tests`` are Python snippets the judge executes one after another in one namespace: the
    ``prelude``'s names (the task's helpers, which win over anything the code redefines), the
    builtins, ``entry_point`` and ``candidate`` bound to the function under test (a call into the
    candidate's process), and, for a name a test reads that only the code defines, that object of
    the code's (a standard-library module by that name is imported by the judge itself);
    ``setup`` runs in that namespace before the first test (imports, constants).
    """

    code: str
    tests: Sequence[str]
    entry_point: str | None = None
    setup: str = ""
    prelude: str = ""
    limits: SandboxLimits | None = None


@dataclass
class TestResult:
    """The outcome of one test: ``status`` is one of :data:`STATUSES`."""

    __test__ = False  # not a pytest class

    index: int
    status: str
    source: str
    message: str = ""
    actual: str | None = None
    expected: str | None = None
    traceback: str = ""
    duration_s: float | None = None

    @property
    def passed(self) -> bool:
        """True when the test passed."""
        return self.status == "passed"

    def to_dict(self) -> dict:
        """A JSON-able view."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class RunResult:
    """The outcome of one check.

    ``passed`` is True only when every test ran and passed and the harness completed its handshake.
    ``error`` describes a failure before the tests (syntax error, crash while defining the code, a
    missing function) or a run that ended early, as ``{"status", "message", "traceback", ...}``.
    """

    passed: bool
    status: str
    tests: list[TestResult]
    error: dict | None = None
    stdout_tail: str = ""
    stdout_bytes: int = 0
    exit: str = ""
    duration_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def undecided(self) -> bool:
        """True when no verdict was reached: a test was starved past its wall-clock backstop and no
        other test failed in a way load cannot cause (``status == "undecided"``)."""
        return self.status == "undecided"

    @property
    def first_failure(self) -> TestResult | None:
        """The first test that did not pass (None when all passed)."""
        return next((t for t in self.tests if t.status != "passed"), None)

    @property
    def num_passed(self) -> int:
        """How many tests passed."""
        return sum(t.passed for t in self.tests)

    def to_dict(self) -> dict:
        """A JSON-able view (what environments put in ``info``)."""
        return {
            "passed": self.passed,
            "status": self.status,
            "num_passed": self.num_passed,
            "num_tests": len(self.tests),
            "tests": [t.to_dict() for t in self.tests],
            "error": self.error,
            "stdout_tail": self.stdout_tail,
            "stdout_bytes": self.stdout_bytes,
            "exit": self.exit,
            "duration_s": round(self.duration_s, 4),
            "cpu_s": round(self.cpu_s, 4),
        }

    @classmethod
    def from_wire(cls, data: dict) -> RunResult:
        """Build from the fork server's reply, every field type-checked and capped again."""
        tests = [
            TestResult(
                index=_int(t.get("index"), i),
                status=_status(t.get("status")),
                source=_text(t.get("source"), 100_000),
                message=_text(t.get("message"), 500),
                actual=_text(t["actual"], 1000) if t.get("actual") is not None else None,
                expected=_text(t["expected"], 1000) if t.get("expected") is not None else None,
                traceback=_text(t.get("traceback"), 2000),
                duration_s=float(t["duration_s"]) if isinstance(t.get("duration_s"), (int, float)) else None,
            )
            for i, t in enumerate(data["tests"])
        ]
        error = data.get("error")
        if isinstance(error, dict):
            error = {
                "status": _status(error.get("status")),
                "message": _text(error.get("message"), 500),
                "traceback": _text(error.get("traceback"), 2000),
                **({"line": error["line"]} if isinstance(error.get("line"), int) else {}),
                **({"text": _text(error["text"], 300)} if error.get("text") else {}),
            }
        else:
            error = None
        return cls(
            passed=data.get("passed") is True,
            status=_status(data.get("status")),
            tests=tests,
            error=error,
            stdout_tail=_text(data.get("stdout_tail"), 4096),
            stdout_bytes=_int(data.get("stdout_bytes"), 0),
            exit=_text(data.get("exit"), 100),
            duration_s=float(data.get("duration_s") or 0.0),
            cpu_s=float(data.get("cpu_s") or 0.0),
        )


def _text(value: object, cap: int) -> str:
    return value[:cap] if isinstance(value, str) else ""


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _status(value: object) -> str:
    return value if value in STATUSES else "runtime_error"


def _frame(obj: dict) -> bytes:
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


class Sandbox:
    """A pool of warm sandboxed workers (one fork server running up to ``workers`` checks at once).

    ``isolation="auto"`` takes the strongest level the machine allows (see the module docstring);
    ``"basic"`` (or its older name ``"none"``) forces the ``basic`` level: no namespaces, but as root
    the uid drop, the cgroup and the system-call filter still hold, and so does the verdict. The server starts on first use and restarts if it dies.
    Thread-safe: checks submitted from many threads share the workers. Fork-safe: a forked copy of
    the object (a vector env's worker) starts its own server on first use.

    >>> sb = Sandbox()
    >>> sb.run("def add(a, b):\\n    return a + b", ["assert add(1, 2) == 3"], entry_point="add").passed
    True
    >>> sb.close()
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        limits: SandboxLimits | None = None,
        isolation: str = "auto",
        python: str | None = None,
    ) -> None:
        if isolation not in ("auto", "basic", "none"):
            raise ValueError(
                f"isolation must be 'auto', 'basic' or 'none' (the same as 'basic'), got {isolation!r}"
            )
        self.workers = int(workers or os.cpu_count() or 1)
        if (
            not 1 <= self.workers <= 127
        ):  # the server gives each worker slot two uids of its own, 127 per server
            raise ValueError(f"workers must be in 1..127, got {workers!r}")
        self.limits = limits or SandboxLimits()
        self.limits.validate()
        self.isolation_mode = isolation
        self._warned = False
        if isolation in ("basic", "none"):
            self._warned = True
            warnings.warn(
                _BASIC_WARNING.format(why=f" (isolation={isolation!r})"), SandboxWarning, stacklevel=2
            )
        self.python = python or sys.executable
        self._proc: subprocess.Popen | None = None
        self._info: dict = {}
        self._lock = threading.RLock()  # server lifecycle and request writes
        self._plock = threading.Lock()  # the map of checks in flight
        # a forked copy (e.g. a vector env's worker) must not inherit locks held by this process's
        # threads, nor talk to this process's server: it starts its own on first use
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (s := ref()) is not None and s._forget_after_fork())
        self._next_id = 0
        self._pending: dict[int, Future] = {}
        self._connected = False
        self._owner_pid = os.getpid()

    def _forget_after_fork(self) -> None:
        self._lock = threading.RLock()
        self._plock = threading.Lock()
        self._proc = None
        self._pending = {}
        self._connected = False

    # ---- server lifecycle ---------------------------------------------------------------------
    def _start(self) -> None:
        proc = subprocess.Popen(
            [self.python, "-I", "-S", "-B", str(_SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            close_fds=True,
            cwd="/",
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(_frame({"isolation": self.isolation_mode, "max_parallel": self.workers}))
        proc.stdin.flush()
        reply = _read_frame(proc)
        if reply is None or not reply.get("ready"):
            proc.kill()
            proc.wait()
            raise SandboxError(f"the sandbox server ({_SERVER}) did not start (exit status {proc.poll()})")
        self._info = reply
        self._proc = proc
        level = (reply.get("isolation") or {}).get("level")
        if level == "basic" and not self._warned:  # "auto" fell back: as loud as asking for it
            self._warned = True
            warnings.warn(
                _BASIC_WARNING.format(why=" (the strongest this machine allows)"),
                SandboxWarning,
                stacklevel=3,
            )
        self._owner_pid = os.getpid()
        self._pending = {}
        self._connected = True
        reader = threading.Thread(
            target=self._read_replies, args=(proc, self._pending), name="sandbox-replies", daemon=True
        )
        reader.start()

    def _read_replies(self, proc: subprocess.Popen, pending: dict) -> None:
        """Route each reply to its future; when the server dies, fail everything still in flight."""
        while True:
            try:
                reply = _read_frame(proc)
            except (OSError, ValueError):
                reply = None
            if reply is None:
                break
            with self._plock:
                fut = pending.pop(reply.get("id"), None)
            if fut is None:
                continue
            if "error" in reply:
                fut.set_exception(SandboxError(f"the check could not run: {reply['error']}"))
            else:
                fut.set_result(RunResult.from_wire(reply["result"]))
        code = proc.poll()
        with self._plock:
            if pending is self._pending:
                self._connected = False  # checked by submit() under the same lock
            left = list(pending.values())
            pending.clear()
        for fut in left:
            fut.set_exception(
                SandboxError(f"the sandbox server ({_SERVER}) exited unexpectedly (exit status {code})")
            )

    def _ensure(self) -> subprocess.Popen:
        if self._proc is not None and self._owner_pid != os.getpid():
            self._proc = None  # a forked copy of this object: the server belongs to the parent
        if self._proc is None or self._proc.poll() is not None or not self._connected:
            self._shutdown()
            self._start()
        assert self._proc is not None
        return self._proc

    @property
    def isolation(self) -> dict:
        """What this machine's sandbox guarantees: ``level`` (``full``/``basic``) and per-feature flags."""
        with self._lock:
            self._ensure()
        return dict(self._info.get("isolation", {}))

    def _shutdown(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or self._owner_pid != os.getpid():
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the fork server (idempotent); checks still in flight fail with :class:`SandboxError`."""
        with self._lock:
            self._shutdown()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._shutdown()
        except Exception:
            pass

    # ---- checks -------------------------------------------------------------------------------
    def run(
        self,
        code: str,
        tests: Sequence[str],
        *,
        entry_point: str | None = None,
        setup: str = "",
        prelude: str = "",
        limits: SandboxLimits | None = None,
    ) -> RunResult:
        """Run one check and return its :class:`RunResult`."""
        job = CodeJob(code, list(tests), entry_point=entry_point, setup=setup, prelude=prelude, limits=limits)
        return self.submit(job).result()

    def run_many(self, jobs: Iterable[CodeJob]) -> list[RunResult]:
        """Run many checks, ``workers`` at a time; results come back in the order of ``jobs``."""
        futures = [self.submit(job) for job in jobs]
        return [f.result() for f in futures]

    #: how many more times a check is run when it comes back undecided (the machine starved it past
    #: its wall-clock backstop) before that is its result
    undecided_retries: int = 1

    def submit(self, job: CodeJob) -> Future:
        """Queue one check; the returned future resolves to its :class:`RunResult`.

        A check that comes back undecided is run again (``undecided_retries`` times) before its
        result says so. Safe to call from many threads: their checks share the workers.
        """
        if not isinstance(job.code, str):
            raise TypeError(f"CodeJob.code must be a str, got {type(job.code).__name__}")
        tests = list(job.tests)
        if not all(isinstance(t, str) for t in tests):
            raise TypeError("CodeJob.tests must be a list of str")
        limits = job.limits or self.limits
        limits.validate()
        request = {
            "code": job.code,
            "tests": tests,
            "entry_point": job.entry_point,
            "setup": job.setup or "",
            "prelude": job.prelude or "",
            "limits": limits.to_wire(),
        }
        outer: Future = Future()
        self._chain(self._send(request), request, outer, self.undecided_retries)
        return outer

    def _chain(self, fut: Future, request: dict, outer: Future, retries: int) -> None:
        """Resolve ``outer`` with ``fut``'s outcome, or with a new attempt's when it is undecided."""

        def done(f: Future) -> None:
            error = f.exception()
            if error is None and f.result().undecided and retries > 0:
                # a new attempt from a thread of its own: this callback runs on the reply reader,
                # which must never wait on a request write (the server may be waiting on it)
                def again() -> None:
                    try:
                        self._chain(self._send(dict(request)), request, outer, retries - 1)
                    except BaseException as e:
                        outer.set_exception(e)

                threading.Thread(target=again, name="sandbox-retry", daemon=True).start()
            elif error is not None:
                outer.set_exception(error)
            else:
                outer.set_result(f.result())

        fut.add_done_callback(done)

    def _send(self, request: dict) -> Future:
        """Send one request to the server; its future resolves to the raw attempt's result."""
        fut: Future = Future()
        with self._lock:
            proc = self._ensure()
            request["id"] = self._next_id
            self._next_id += 1
            with self._plock:  # never held across I/O: the reply reader takes it too
                if not self._connected:
                    raise SandboxError(
                        f"the sandbox server ({_SERVER}) exited unexpectedly; retry to restart it"
                    )
                self._pending[request["id"]] = fut
            try:
                assert proc.stdin is not None
                proc.stdin.write(_frame(request))
                proc.stdin.flush()
            except OSError as e:
                with self._plock:
                    self._pending.pop(request["id"], None)
                raise SandboxError(f"the sandbox server ({_SERVER}) is gone: {e}") from e
        return fut


def _read_frame(proc: subprocess.Popen) -> dict | None:
    assert proc.stdout is not None
    head = proc.stdout.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    data = proc.stdout.read(n)
    if len(data) < n:
        return None
    return json.loads(data)


_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide shared sandbox (started on first use, stopped at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox()
            atexit.register(_default.close)
        return _default
