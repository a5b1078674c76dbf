"""What every process of the sandbox shares: the uids of a check's processes, the statuses, and the own-time clock (schedstat).

Part of the sandbox fork server (see ``_forkserver.py``): standard library only.
"""

import os
import reprlib

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    bytes,
    float,
    int,
    len,
    str,
)

# Each check's candidate runs as uid UID_BASE + (server pid << 8 | slot), its judge as the same with
# slot + JUDGE_SLOTS: pids are unique among live processes and a slot is reused only after its last
# check was swept, so two concurrent checks (from any number of servers) never share a uid, and
# RLIMIT_NPROC counts the processes of one candidate only.
UID_BASE = 1_500_000_000
MAX_SLOTS = 127
JUDGE_SLOTS = 128
SWEEP_SLOT = 255  # its uid is never a check's: the real uid the server sweeps with
RUN_ROOT = "/tmp"

#: the most bytes one value (a call's arguments, a return value) may take on the wire
MAX_VALUE_BYTES = 8 << 20
#: the deepest nesting of containers a value may have
MAX_DEPTH = 100
#: the most objects of its own a candidate may hand out as handles
MAX_HANDLES = 100_000
#: the most items a returned iterator (a generator, a ``map``, a dict view) is read to before sending
MAX_LAZY_ITEMS = 1 << 20
#: extra seconds of own time a test may take past its limit before the server ends the check (the
#: candidate's own alarm comes first)
GRACE_S = 0.25
#: the most bytes of records a judge may send (far more than its own caps allow)
MAX_RECORD_BYTES = 1 << 20


def run_uid(server_pid: int, slot: int) -> int:
    """The uid of the candidates of worker ``slot`` (0..126) of the server with pid ``server_pid``
    (``slot + JUDGE_SLOTS``: its judges; ``SWEEP_SLOT``: the sweeper's real uid)."""
    return UID_BASE + ((server_pid & 0x3FFFFF) << 8 | slot)


#: statuses a test can have; a whole run's ``status`` is ``passed``, the first failure that load
#: cannot cause, or ``undecided`` (nothing failed, but the machine starved a test past its backstop)
STATUSES = (
    "passed",
    "wrong_answer",
    "runtime_error",
    "timeout",
    "memory_limit",
    "syntax_error",
    "not_run",
    "undecided",
)


def backstop_s(limit_s: float) -> float:
    """The wall-clock backstop of a limit of ``limit_s`` seconds of own time: a check (or a test) still
    short of its limit after this long was starved by the machine and is *undecided*, never a timeout."""
    return max(30.0, 15.0 * float(limit_s))


# ---------------------------------------------------------------------------------------------
# own time: what a limit counts, whatever the machine's load
#
# A limit of t seconds is t seconds of the check's *own* time: wall time minus the time its
# processes waited on a run queue for a CPU another process held (``/proc/<tid>/schedstat``, field 2,
# nanoseconds), so a starved check is not a slow one: the judge's wait, plus the largest wait of any
# one task of the candidate (every thread, every process it forked: the slot cgroup's task list,
# read every 0.05 s; see :class:`_TaskWaits`), so work in a thread or a child that waits for a CPU
# while the serving thread is blocked in join() or waitpid() is not slow either. Time a process spends
# blocked (``sleep``, a pipe, a lock) is its own: a sleeping candidate still times out at its limit.
# (The candidate's own alarm reads its threads only, its /proc hiding its children from it: while it
# has children, or has reaped one since the call began, it leaves a call's timeout to the server's
# clock.) What a task of the check waited since the server's last reading before it exited is not
# counted (at most ``_TASK_POLL_S`` of one task's waits per exit: the task's parent reaps it at once,
# and its figures go with it). Waiting for a CPU
# that the check's *own* other threads or processes hold would buy it time, so the check's total CPU
# time (its slot cgroup's) divided by the CPUs it may use counts as own time as well: whichever is
# larger is the clock. Where schedstat or the cgroup's CPU account is missing, the clock is the
# wall clock (as before; ``isolation["clock"]`` says which). A wall-clock backstop (:func:`backstop_s`)
# ends a check that the machine starves for too long as undecided.


def _schedstat_fd(path: str) -> int | None:
    """A descriptor on a task's ``schedstat`` (None where there is none)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    if _run_delay(fd) is None:
        os.close(fd)
        return None
    return fd


def _run_delay(fd: int | None) -> float | None:
    """Seconds the task behind ``fd`` (its ``schedstat``) has waited on a run queue (None: unreadable)."""
    if fd is None:
        return None
    try:
        return int(os.pread(fd, 128, 0).split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


# bound at import: the candidate's code may rebind names in its `os` module, and its clock reads on
_os_open, _os_close, _os_listdir, _RDONLY = os.open, os.close, os.listdir, os.O_RDONLY | os.O_CLOEXEC


def _read_wait(path: str) -> float | None:
    """Seconds the task whose ``schedstat`` is at ``path`` has waited on a run queue (None: gone)."""
    try:
        fd = _os_open(path, _RDONLY)
    except OSError:
        return None
    try:
        return _run_delay(fd)
    finally:
        _os_close(fd)


def _thread_waits(proc_dir: str, into: dict) -> None:
    """Put the run-queue wait of every thread of the process at ``proc_dir`` (``/proc/<pid>``) in ``into``."""
    try:
        tids = _os_listdir(proc_dir + "/task")
    except OSError:
        return
    for tid in tids:
        w = _read_wait(f"{proc_dir}/task/{tid}/schedstat")
        if w is not None:
            into[tid] = w


class _TaskWaits:
    """The run-queue wait of a group of tasks (a candidate's threads and processes) as one clock.

    Each reading brings every task's cumulative wait; the clock advances by the largest advance of
    any *single* task since the reading before (a task first seen after the first reading counts from
    zero: it was born since), never by their sum: a check with many busy tasks of its own must not buy
    itself wall time (what its tasks wait for each other is bounded by the CPU-time term instead).
    A task that has exited keeps what it had added. Over a stretch with no reading in between this is
    the largest wait of one task; it never grows faster than wall time."""

    def __init__(self) -> None:
        self.last: dict = {}
        self.total = 0.0
        self.primed = False

    def update(self, now: dict) -> float:
        """Take a reading (task id -> seconds waited so far); returns the clock's total."""
        step = 0.0
        last = self.last
        for tid, w in now.items():
            prev = last.get(tid)
            if prev is None:
                prev = w if not self.primed else 0.0
            if w - prev > step:
                step = w - prev
            last[tid] = w
        self.primed = True
        self.total += step
        return self.total


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxtuple = 300, 300, 30, 30
    short.maxdict, short.maxset, short.maxlevel, short.maxlong = 20, 20, 4, 300
    return short


def _exc_text(e: BaseException, limit: int = 500) -> str:
    try:
        text = str(e)
    except BaseException:
        text = ""
    return text[:limit]


def _read_memfd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


_OWN_CLOCK = [False]  # whether limits count own time (schedstat and the slots' CPU time are readable)
_NCPU = [max(1, len(os.sched_getaffinity(0)))]  # the CPUs a check's processes may use
