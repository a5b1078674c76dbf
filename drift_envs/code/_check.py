"""One check in the server: its judge and candidate, their pipes, its clock (own time, the backstop), the judge's records, the result; and the sweep that ends every process of a check's uid.

Part of the sandbox fork server (see ``_forkserver.py``): standard library only.
"""

import json
import os
import shutil
import signal
import socket
import tempfile
import time

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    bool,
    bytearray,
    bytes,
    dict,
    float,
    getattr,
    int,
    isinstance,
    len,
    list,
    range,
    set,
    str,
    tuple,
    type,
)

from ._common import (
    _NCPU,
    _OWN_CLOCK,
    GRACE_S,
    MAX_RECORD_BYTES,
    STATUSES,
    SWEEP_SLOT,
    UID_BASE,
    _run_delay,
    _schedstat_fd,
    _TaskWaits,
    _thread_waits,
    backstop_s,
    run_uid,
)
from ._wire import _write_all

# ---------------------------------------------------------------------------------------------
# one check in the server: its two processes, their pipes, its clock, what the judge reported


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


_ZYGOTE_PID = [0]  # set by the server once it has forked the zygote
_CGROUPS: list = [None]  # the worker slots' cgroups (a _Cgroups), when the machine gives them
_NOT_CANDIDATES: set = set()  # the zygote and the judges: never a candidate's uid, no need to look
_CANDIDATE_UID: dict = {}  # pid of each candidate in flight -> its uid


def _read_proc(path: str) -> bytes:
    """A small ``/proc`` file, whole (one open, one read, one close: no buffered file object)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def _direct_children() -> list | None:
    """The children of the server and of the zygote (candidates are the zygote's until they die)."""
    found = []
    for pid in (os.getpid(), _ZYGOTE_PID[0]):
        if not pid:
            continue
        try:
            found.extend(int(x) for x in _read_proc(f"/proc/{pid}/task/{pid}/children").split())
        except OSError:
            return None
    return found


def _is_live_process_of(pid: int, uid: int) -> bool:
    try:
        status = _read_proc(f"/proc/{pid}/status")
    except OSError:
        return False
    # the lines a process cannot forge: its name (the first line) has its newlines escaped
    state = status.find(b"\nState:")
    real = status.find(b"\nUid:")
    if state < 0 or real < 0:
        return False
    try:
        uid_now = int(status[real + 5 :].split(None, 1)[0])
    except (ValueError, IndexError):
        return False
    return uid_now == uid and status[state + 7 :].lstrip()[:1] not in (b"Z", b"X")


def _sweep_uid(uid: int) -> None:
    """SIGKILL every process of a candidate's uid (the candidate, its daemons, a fork bomb's children).

    The server is a child subreaper: everything a candidate started is the candidate (a child of the
    zygote), a child of the server (once its parent died) or a descendant of one of those, so a
    glance at the children of the server and of the zygote tells whether anything of the uid is
    left (the common case once the candidate is dead: nothing, and no cost). If so, the server sends
    ``kill(-1, SIGKILL)`` with effective uid = that uid, which reaches exactly that uid's processes at
    once (fork bombs included), and real uid = a uid no process has (the reserved slot 255), so that
    none of those processes may signal the server even then; its saved uid 0 lets it take root back.
    """
    if uid < UID_BASE:
        raise RuntimeError(f"refusing to sweep uid {uid}: not a sandbox uid")
    nobody = run_uid(os.getpid(), SWEEP_SLOT)
    for _ in range(50):
        children = _direct_children()
        if children is not None and not any(
            _is_live_process_of(c, uid)
            for c in children
            if c not in _NOT_CANDIDATES and _CANDIDATE_UID.get(c, uid) == uid
        ):
            return
        os.setresuid(nobody, uid, 0)
        try:
            if os.getresuid() != (nobody, uid, 0) or os.geteuid() == 0:
                raise RuntimeError(f"could not take uid {uid} to sweep its processes")
            for _ in range(2):  # a second round catches a fork that raced the first
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break
        finally:
            os.setresuid(0, 0, 0)
        if children is None:  # /proc cannot list children here: one blind sweep is all we can do
            return
        time.sleep(0.001)


_TASK_POLL_S = 0.05  # how often a running check's tasks' run-queue waits are read
_TASKS_AT: dict = {}  # slot -> (its cgroup's directory, descriptor of the directory above) or None


def _slot_tasks(slot: int) -> list | None:
    """Every task (thread) in ``slot``'s cgroup, as ids (None: there is no such list here). The list
    is opened afresh each time: cgroup v1 keeps serving an open file the list it read first for as
    long as it is read again within a second."""
    if slot not in _TASKS_AT:
        _TASKS_AT[slot] = None
        cgroups = _CGROUPS[0]
        for name, base_fd in cgroups.dirs if cgroups is not None else ():
            if name.startswith("drift-sandbox-") and name.rsplit("-", 1)[1] == str(slot):
                for listing in ("cgroup.threads", "tasks"):  # v2, v1
                    if os.access(f"{name}/{listing}", os.R_OK, dir_fd=base_fd):
                        _TASKS_AT[slot] = (f"{name}/{listing}", base_fd)
                        break
                break
    where = _TASKS_AT[slot]
    if where is None:
        return None
    try:
        fd = os.open(where[0], os.O_RDONLY | os.O_CLOEXEC, dir_fd=where[1])
    except OSError:
        return None
    try:
        return os.read(fd, 1 << 16).split()
    except OSError:
        return None
    finally:
        os.close(fd)


class _SetupError(Exception):
    """A check could not be set up (no memory, no descriptors, no disk): that check fails, no other.
    ``args[1]``: whether its judge had got the request (if not, a fresh judge may take it)."""


class _Run:
    """One check in flight: its judge and candidate, their pipes, its clock, the judge's records."""

    def __init__(
        self, req: dict, iso: dict, slot: int, token: int, zygote: socket.socket, judge: tuple
    ) -> None:
        self.req, self.iso, self.slot, self.token = req, iso, slot, token
        # the judge and the candidate count the clock the server counts
        req["limits"] = self.lim = {**req["limits"], "own_clock": _OWN_CLOCK[0]}
        self.uid = run_uid(os.getpid(), slot)
        self.judge_pid, judge_sock = judge[0], judge[1]
        self.judge_sent = False
        self.workdir = None
        opened: list = []
        try:
            if iso["level"] != "full":
                self.workdir = tempfile.mkdtemp(prefix="drift-sandbox-")
                if iso["uid_drop"]:
                    os.chown(self.workdir, self.uid, self.uid)
                os.chmod(self.workdir, 0o700)
            out_r, out_w = os.pipe()
            opened += [out_r, out_w]
            res_r, res_w = os.pipe()
            opened += [res_r, res_w]
            chan_j, chan_c = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            opened += [chan_j.detach(), chan_c.detach()]
            chan_j, chan_c = opened[-2], opened[-1]
            memfd = os.memfd_create("drift-check", os.MFD_CLOEXEC)
            opened.append(memfd)
            _write_all(
                memfd,
                json.dumps(
                    {
                        "code": req["code"],
                        "prelude": req.get("prelude") or "",
                        "entry_point": req.get("entry_point"),
                    }
                ).encode(),
            )
            hdr = {
                "token": token,
                "uid": self.uid,
                "slot": slot,
                "limits": self.lim,
                "full": iso["level"] == "full",
                "uid_drop": iso["uid_drop"],
                "workdir": self.workdir,
                "server_pid": os.getpid(),
            }
            cgroups = _CGROUPS[0]
            self.oom_before = None
            if cgroups is not None:  # the whole check's memory and processes, set before it starts
                self.oom_before = cgroups.apply(slot, int(self.lim["memory_mb"]), int(self.lim["processes"]))
            req_fd = os.memfd_create("drift-judge", os.MFD_CLOEXEC)
            opened.append(req_fd)
            _write_all(
                req_fd, json.dumps({k: v for k, v in req.items() if k != "code"}).encode()
            )  # not its to see
            self.t_start = time.monotonic()
            socket.send_fds(judge_sock, [b"check"], [req_fd, chan_j, res_w])  # first: it may be gone
            self.judge_sent = True
            socket.send_fds(zygote, [json.dumps(hdr).encode()], [memfd, chan_c, out_w])
        except Exception as e:
            for fd in opened:
                try:
                    os.close(fd)
                except OSError:
                    pass
            if self.workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise _SetupError(f"{type(e).__name__}: {e}", self.judge_sent) from None
        for fd in (out_w, res_w, chan_j, chan_c, memfd, req_fd):
            os.close(fd)
        for fd in (out_r, res_r):
            os.set_blocking(fd, False)
        self.out_r, self.res_r = out_r, res_r
        self.cand_pid = None
        self.cand_pidfd = None
        self.cand_status = None
        self.cand_cpu = 0.0
        self.spawn_error = None
        # the check's clock (see backstop_s): own time for its limits, wall time for its backstop
        self.own_clock = _OWN_CLOCK[0]
        self.judge_clock = _schedstat_fd(f"/proc/{self.judge_pid}/schedstat") if self.own_clock else None
        self.cand_clock = None
        self.cand_waits = _TaskWaits()  # every task of the candidate: its threads and its processes
        self.task_fds: dict = {}  # task id (str) -> its schedstat, kept open while the task is listed
        self.waits = {"judge": 0.0, "candidate": 0.0}  # run-queue waits since the check started
        self.wait_base = {"judge": _run_delay(self.judge_clock) or 0.0, "candidate": 0.0}
        self.cpu_base = self._cpu_total()
        self.timeout_s = float(self.lim["timeout_s"])
        self.test_timeout_s = float(self.lim["test_timeout_s"])
        self.backstop_at = self.t_start + float(self.lim.get("backstop_s") or backstop_s(self.timeout_s))
        self.start_snap = self.phase_snap = (self.t_start, 0.0, 0.0)
        # before the first test: loading the code (the judge waits a second more for its word)
        self.phase_limit = self.test_timeout_s + 1.0
        self.phase_name = "load"
        # when the limits are next compared (as if nothing were read in between), and when the
        # clock is next read (more often: see tick)
        self.next_judge = self.t_start + min(self.timeout_s, self.phase_limit)
        self.next_check = min(self.next_judge, self.t_start + (_TASK_POLL_S if self.own_clock else 1e9))
        self.timeout_msg = ""
        self.end_by = float("inf")  # once the judge is done: the latest the candidate's exit is awaited
        self.open_fds = {out_r, res_r}
        self.out_tail = bytearray()
        self.out_total = 0
        self.res_buf = bytearray()
        self.res_bytes = 0
        self.records: list = []
        self.kill_reason = None
        self.judge_done = False  # the judge closed the result pipe: it is done with this check
        self.judge_killed = False

    # -- the clock
    def _cpu_total(self) -> float:
        cgroups = _CGROUPS[0]
        usage = cgroups.cpu_usage(self.slot) if self.own_clock and cgroups is not None else None
        return 0.0 if usage is None else usage

    def _snapshot(self, now: float) -> tuple:
        """``(wall, run-queue waits of the judge and the candidate, the check's CPU seconds / CPUs)``;
        a process that is gone keeps its last figures."""
        w = _run_delay(self.judge_clock)
        if w is not None:
            self.waits["judge"] = max(0.0, w - self.wait_base["judge"])
        self._read_candidate()
        cpu = max(0.0, self._cpu_total() - self.cpu_base) / _NCPU[0]
        return (now, self.waits["judge"] + self.waits["candidate"], cpu)

    def _read_candidate(self) -> None:
        """Read the run-queue waits of the candidate's tasks. Between two snapshots this is all a
        reading needs: the judge (one long-lived process) and the cgroup's CPU time are cumulative
        figures read whole at the next snapshot, while a task of the candidate that exits takes
        what it waited since its last reading with it."""
        if self.cand_clock is not None:
            self.waits["candidate"] = self.cand_waits.update(self._cand_task_waits())

    def _cand_task_waits(self) -> dict:
        """The run-queue wait of every task of the candidate: those its slot's cgroup lists (all its
        processes and their threads), else the candidate process's threads.

        Each listed task's ``schedstat`` stays open (one ``pread`` a reading, not an open and a
        close), and the list itself is read again only when the set may have changed: the cgroup
        counts its tasks (``pids.current``: every task in it, one that has exited but is not yet
        reaped included), and when that count is the number of tasks already open and each of them
        still reads (a reaped task's file answers ESRCH, whatever pid the kernel hands out later),
        no other task can be in the cgroup. Anything else (a task born, one gone, no count here)
        lists the cgroup's tasks afresh, as every reading did before."""
        now: dict = {}
        fds = self.task_fds
        cgroups = _CGROUPS[0]
        if fds and cgroups is not None and cgroups.task_count(self.slot) == len(fds):
            for t, fd in fds.items():
                w = _run_delay(fd)
                if w is None:
                    now = {}
                    break
                now[t] = w
            else:
                return now
        tids = _slot_tasks(self.slot)
        if tids is not None:
            kept: dict = {}
            for tid in tids:
                t = tid.decode()
                fd = fds.pop(t, None)
                if fd is None:
                    try:
                        fd = os.open(f"/proc/{t}/schedstat", os.O_RDONLY | os.O_CLOEXEC)
                    except OSError:
                        continue
                w = _run_delay(fd)
                if w is None:
                    os.close(fd)
                    continue
                kept[t] = fd
                now[t] = w
            for fd in fds.values():  # gone since the last listing
                os.close(fd)
            self.task_fds = kept
        if not now:
            _thread_waits(f"/proc/{self.cand_pid}", now)
        return now

    def _own(self, since: tuple, snap: tuple) -> float:
        """Own seconds between two snapshots: wall time less the run-queue waits, or the check's CPU
        time over the CPUs it may use, whichever is more (so waiting for its own processes buys none)."""
        wall = snap[0] - since[0]
        if not self.own_clock:
            return wall
        return max(wall - (snap[1] - since[1]), snap[2] - since[2])

    def on_record(self, rec: dict) -> bool:
        """A phase starts: the set-up once the code is loaded, then each test; each has its own clock.
        Returns whether this record started one (its clock starts at :meth:`start_phase`)."""
        if rec["ev"] == "start" or (rec["ev"] == "load" and rec.get("status") == "ok"):
            self.phase_limit = self.test_timeout_s + GRACE_S
            self.phase_name = "test" if rec["ev"] == "start" else "setup"
            return True
        if rec["ev"] == "done":
            self.phase_limit = float("inf")
        return False

    def start_phase(self) -> None:
        """Start the clock of the phase the last record read started. Called once for all the
        records that one read brought: a phase whose end came in the same read (a later record)
        was over before the server could read any clock, and the clock of the last one starts
        when the server reads them, as it did record by record."""
        if self.phase_limit == float("inf"):
            return  # the judge is done
        self.phase_snap = self._snapshot(time.monotonic())
        self.next_judge = min(self.next_judge, self.phase_snap[0] + self.phase_limit)
        self.next_check = min(self.next_check, self.next_judge)

    # -- events
    def on_spawn(self, msg: dict, fds: list) -> None:
        if isinstance(msg.get("pid"), int) and len(fds) == 1:
            self.cand_pid, self.cand_pidfd = msg["pid"], fds[0]
            _CANDIDATE_UID[self.cand_pid] = self.uid
            if self.own_clock:
                self.cand_clock = _schedstat_fd(f"/proc/{self.cand_pid}/schedstat")
                if self.cand_clock is not None:
                    self.cand_waits.update(self._cand_task_waits())  # where each task starts from
            if self.judge_done or self.kill_reason is not None:
                self.kill_candidate()
        else:
            for fd in fds:
                os.close(fd)
            self.spawn_error = str(msg.get("error"))[:300]
            self.cand_status = -1

    def on_candidate_exit(self, status: int, cpu_s: float) -> None:
        self.cand_status, self.cand_cpu = status, cpu_s
        _CANDIDATE_UID.pop(self.cand_pid, None)

    def on_judge_done(self) -> None:
        self.judge_done = True
        self.kill_candidate()  # the verdict is in: the candidate has nothing left to do
        self.end_by = time.monotonic() + 1.0

    def kill_candidate(self) -> None:
        if self.cand_pidfd is not None and self.cand_status is None:
            try:
                signal.pidfd_send_signal(self.cand_pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill(self, reason: str) -> None:
        if self.kill_reason is None:
            self.kill_reason = reason
        self.kill_candidate()
        self.sweep()
        self.next_check = float("inf")
        if reason in ("timeout", "undecided") and not self.judge_done:
            self.judge_killed = True  # the slot gets a new judge
            try:
                os.kill(self.judge_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def sweep(self) -> None:
        if self.iso["uid_drop"]:
            _sweep_uid(self.uid)
        elif self.cand_pidfd is not None and self.cand_status is None:
            try:  # the candidate's process group, while its pid is surely still its own
                os.killpg(self.cand_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def on_readable(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.open_fds.discard(fd)
            if fd == self.res_r:
                self.on_judge_done()
            return
        if fd == self.out_r:
            self.out_total += len(chunk)
            self.out_tail += chunk
            if len(self.out_tail) > 4096:
                del self.out_tail[: len(self.out_tail) - 4096]
            if self.out_total > int(self.lim["max_output_bytes"]):
                self.open_fds.discard(fd)
                self.kill("output_limit")
            return
        self.res_bytes += len(chunk)
        if self.res_bytes > MAX_RECORD_BYTES + 4096 * len(self.req["tests"]):
            self.open_fds.discard(fd)
            self.kill("timeout")
            self.kill_reason = "judge_flood"
            self.on_judge_done()
            return
        self.res_buf += chunk
        started = False
        while True:
            idx = self.res_buf.find(b"\n")
            if idx < 0:
                break
            line = bytes(self.res_buf[:idx])
            del self.res_buf[: idx + 1]
            rec = _clean_record(line, len(self.req["tests"]))
            if rec is not None:
                self.records.append(rec)
                started = self.on_record(rec) or started
        if started:
            self.start_phase()

    def tick(self, now: float) -> None:
        """End the check once its own time reaches a limit (a timeout) or its wall time the
        backstop first (undecided). Own time grows no faster than wall time, so no limit is reached
        before the nearest of those; the clock is read every ``_TASK_POLL_S`` all the same, so that
        the wait of a task that exits in between is counted (up to its last reading); the limits
        are compared on the schedule they would be without those readings."""
        if now < self.next_check or self.kill_reason is not None or self.judge_done:
            return
        if self.own_clock and now < self.next_judge:  # a reading only: no limit can be reached yet
            self._read_candidate()
            self.next_check = min(self.next_judge, now + _TASK_POLL_S)
            return
        snap = self._snapshot(now)
        whole, phase = self._own(self.start_snap, snap), self._own(self.phase_snap, snap)
        if whole >= self.timeout_s or phase >= self.phase_limit:
            if whole >= self.timeout_s:
                self.timeout_msg = f"the run exceeded its time limit of {self.timeout_s:g} s"
            elif self.phase_name == "test":
                self.timeout_msg = f"the test ran longer than {self.test_timeout_s:g} s"
            elif self.phase_name == "setup":
                self.timeout_msg = f"the test set-up ran longer than {self.test_timeout_s:g} s"
            else:
                self.timeout_msg = f"the code took longer than {self.test_timeout_s:g} s to load"
            self.kill("timeout")
            self.end_by = now + 1.0
        elif now >= self.backstop_at:
            self.kill("undecided")
            self.end_by = now + 1.0
        else:
            left = min(self.timeout_s - whole, self.phase_limit - phase, self.backstop_at - now)
            self.next_judge = now + max(0.002, left)
            # meanwhile each task's wait is read before it can exit (its last figure would be lost)
            self.next_check = min(self.next_judge, now + (_TASK_POLL_S if self.own_clock else left))

    def next_wakeup(self) -> float:
        return min(self.next_check, self.end_by) if not self.judge_done else self.end_by

    def done(self, now: float) -> bool:
        if not self.judge_done:
            return now >= self.end_by  # a killed judge whose pipe never closed
        cand_over = self.cand_status is not None or (self.cand_pid is None and self.spawn_error is not None)
        return (cand_over and self.out_r not in self.open_fds) or now >= self.end_by

    def finish(self) -> dict:
        self.kill_candidate()
        self.sweep()  # nothing the candidate started may outlive the check
        cgroups = _CGROUPS[0]
        self.oom_killed = (
            self.oom_before is not None
            and cgroups is not None
            and cgroups.oom_kills(self.slot) > self.oom_before
        )
        _CANDIDATE_UID.pop(self.cand_pid, None)
        if self.cand_pidfd is not None:
            os.close(self.cand_pidfd)
        for fd in (self.judge_clock, self.cand_clock, *self.task_fds.values()):
            if fd is not None:
                os.close(fd)
        self.task_fds = {}
        for fd in (self.out_r, self.res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return _build_result(self)


_STR_CAPS = {"status": 20, "message": 500, "actual": 1000, "expected": 1000, "traceback": 2000, "text": 300}


def _clean_record(line: bytes, n_tests: int) -> dict | None:
    """A judge record with every field type-checked and truncated; None when it is not one."""
    if len(line) > 64 * 1024:
        return None
    try:
        rec = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if type(rec) is not dict or rec.get("ev") not in ("load", "start", "result", "done", "harness_error"):
        return None
    out = {"ev": rec["ev"]}
    for key, cap in _STR_CAPS.items():
        v = rec.get(key)
        if isinstance(v, str):
            out[key] = v[:cap] if key != "traceback" else v[-cap:]
    if out.get("status") is not None and out["status"] not in STATUSES and out["status"] != "ok":
        out["status"] = "runtime_error"
    for key in ("i", "line", "n"):
        v = rec.get(key)
        if type(v) is int:
            out[key] = v
    if out["ev"] in ("start", "result") and not 0 <= out.get("i", -1) < n_tests:
        return None
    v = rec.get("duration_s")
    if type(v) in (int, float):
        out["duration_s"] = float(v)
    out["lost"] = rec.get("lost") is True
    return out


def _build_result(run: _Run) -> dict:  # noqa: C901
    req, lim, n_tests = run.req, run.lim, len(run.req["tests"])
    tests = [{"index": i, "status": "not_run", "source": req["tests"][i]} for i in range(n_tests)]
    load = started = harness_error = None
    done = False
    for rec in run.records:
        ev = rec["ev"]
        if ev == "load":
            load = rec
        elif ev == "start":
            started = rec["i"]
        elif ev == "result":
            t = tests[rec["i"]]
            for k in ("status", "message", "actual", "expected", "traceback", "duration_s", "lost"):
                if k in rec:
                    t[k] = rec[k]
            if t["status"] not in STATUSES or t["status"] == "not_run":
                t["status"] = "runtime_error"
            if started == rec["i"]:
                started = None
        elif ev == "done":
            done = True
        elif ev == "harness_error":
            harness_error = rec.get("message", "")
    status = run.cand_status if isinstance(run.cand_status, int) and run.cand_status >= 0 else None
    cpu_s = run.cand_cpu
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        exit_desc = f"killed by {_signal_name(sig)}"
    elif status is not None:
        sig = None
        exit_desc = f"exit code {os.WEXITSTATUS(status)}"
    else:
        sig, exit_desc = None, "unknown"
    # what ended the candidate, if it ended before its judge was done
    if run.kill_reason == "timeout":
        fatal_status = "timeout"
        fatal_msg = run.timeout_msg or f"the run exceeded its time limit of {float(lim['timeout_s']):g} s"
    elif run.kill_reason == "undecided":
        fatal_status = "undecided"
        fatal_msg = (
            f"the run reached its wall-clock backstop of {run.backstop_at - run.t_start:g} s before its "
            f"time limit of {float(lim['timeout_s']):g} s: the machine was too busy to decide it"
        )
    elif run.kill_reason == "output_limit":
        fatal_status = "runtime_error"
        fatal_msg = f"output limit exceeded ({run.out_total} bytes > {int(lim['max_output_bytes'])})"
    elif run.kill_reason == "judge_flood":
        fatal_status, fatal_msg = "runtime_error", "the judge sent more records than a check can have"
    elif sig == signal.SIGKILL and getattr(run, "oom_killed", False):
        fatal_status = "memory_limit"
        fatal_msg = f"the check's memory limit of {int(lim['memory_mb'])} MiB was reached (all its processes together)"
    elif sig in (signal.SIGXCPU, signal.SIGKILL) and cpu_s >= int(lim["cpu_s"]) - 0.05:
        fatal_status, fatal_msg = "timeout", f"the CPU time limit of {int(lim['cpu_s'])} s was reached"
    elif sig is not None:
        fatal_status, fatal_msg = "runtime_error", f"the process crashed ({exit_desc})"
    elif run.spawn_error:
        fatal_status, fatal_msg = "runtime_error", f"the check could not start: {run.spawn_error}"
    else:
        fatal_status, fatal_msg = (
            "runtime_error",
            f"the process ended before the tests finished ({exit_desc})",
        )
    if harness_error:
        fatal_status, fatal_msg = "runtime_error", f"the sandbox judge failed: {harness_error}"
    error = None
    if load is None or load.get("status") != "ok":
        if load is not None and not load["lost"] and not run.kill_reason:
            status_ = load.get("status", "runtime_error")
            error = {
                "status": status_ if status_ in STATUSES else "runtime_error",
                "message": load.get("message", ""),
                "traceback": load.get("traceback", ""),
                "line": load.get("line"),
                "text": load.get("text", ""),
            }
        else:
            error = {"status": fatal_status, "message": fatal_msg, "traceback": ""}
        for t in tests:
            t["status"] = error["status"]
            t["message"] = error["message"]
    else:
        for t in tests:
            if t.pop("lost", False) or (
                run.kill_reason
                and t["status"] == "runtime_error"
                and t.get("message", "").startswith("the candidate's process")
            ):
                t["status"], t["message"] = fatal_status, fatal_msg
        if started is not None:
            tests[started]["status"] = fatal_status
            tests[started]["message"] = fatal_msg
        elif not done:
            error = {"status": fatal_status, "message": fatal_msg, "traceback": ""}
    for t in tests:
        t.pop("lost", None)
    passed = bool(
        done
        and not run.judge_killed
        and error is None
        and not harness_error
        and run.kill_reason is None
        and all(t["status"] == "passed" for t in tests)
    )
    # a failure that load cannot cause (a wrong answer, an error, own time run out) decides the run
    # whatever other tests were; only a run with nothing decided against it is undecided
    decided = [t["status"] for t in tests if t["status"] not in ("passed", "undecided", "not_run")]
    if passed:
        overall = "passed"
    elif error is not None:
        overall = error["status"]
    elif decided:
        overall = decided[0]
    elif any(t["status"] == "undecided" for t in tests):
        overall = "undecided"
    else:
        overall = next((t["status"] for t in tests if t["status"] != "passed"), fatal_status)
    return {
        "passed": passed,
        "status": overall,
        "tests": tests,
        "error": error,
        "stdout_tail": bytes(run.out_tail).decode("utf-8", "replace"),
        "stdout_bytes": run.out_total,
        "exit": exit_desc,
        "duration_s": time.monotonic() - run.t_start,
        "cpu_s": cpu_s,
    }
