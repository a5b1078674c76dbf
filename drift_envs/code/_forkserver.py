"""The sandbox fork server: warm, trusted, stdlib only. Started by :mod:`drift_envs.code.sandbox` as
``python -I -S -B _forkserver.py`` and spoken to in length-prefixed JSON frames on stdin/stdout.

Three kinds of process take part in a check (the full isolation level shown)::

    server (root; its own network and mount namespaces: every mount read-only, /proc with
            hidepid=2; a child subreaper; holds the requests of every check in flight; one cgroup
            per worker slot, whose limits it sets before each check)
      zygote (forked once, before the first request: holds no check's data; made one IPC and one
              network namespace per worker slot, then moved into a root of its own that holds
              only the interpreter (pivot_root); forks the candidates, each slot's next one ahead
              of time, already in the slot's cgroup)
        candidate (one per check: joins its slot's cgroup, its own uid, its slot's IPC and network
                   namespaces, a mount namespace of its own with a tmpfs as working directory, a
                   seccomp filter; runs the model's code and serves calls to what it defines)
          anything the candidate starts: killed when the check ends (`kill(-1)` sent as its uid)
      judge (one per worker slot, forked once, replaced if it dies or is killed: its own uid, not
             dumpable; runs the tests of its slot's checks, one at a time)

The judge holds the tests; the candidate holds the model's code. They talk over one socket, and
only in plain values (None, bool, int, float, complex, str, bytes, bytearray, list, tuple, dict,
set, frozenset, range, built-in types, and handles to the candidate's own objects) that are encoded
and decoded here (never pickled, never ``eval``-ed), size- and depth-capped. The judge evaluates
every test expression and compares with its own built-ins, so a returned value is only ever data:
a patched ``__eq__`` (of a ``Fraction``, a ``Counter``, a class of the code's own) stays in the
candidate's process. The verdict records go from the judge to the server on a pipe the candidate
never holds, so nothing the candidate writes anywhere can read as a pass, and there is no secret
to steal.

The server only reads from a check's processes (non-blocking, capped) and never writes to a
candidate (what it sends the zygote and the judges, its own processes, is one small message per
check); every record is type-checked and truncated; a set-up failure fails that check only.

The server is split by job, one module each (imported before the first fork, so a candidate in its
interpreter-only root never imports one): ``_wire`` (frames and the value format), ``_linux``
(constants and system calls), ``_seccomp`` (the candidate's system-call filter), ``_isolation``
(the interpreter-only root, namespaces, limits, the uid drop, the isolation probe), ``_cgroup`` (the
slots' cgroups), ``_common`` (uids, statuses, the own-time clock), ``_candidate`` (the candidate and
the zygote), ``_asserts`` (how the judge compiles tests), ``_judge`` (the judge), ``_check`` (one
check in the server: its clock, its records, its result) and this file (the server loop). Run as a
script, it loads its siblings as a package of their own, ``_drift_sandbox``.

These files must not import anything outside the standard library: they run without site-packages.
"""

import errno
import gc
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import types

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    dict,
    float,
    int,
    len,
    list,
    range,
    str,
    tuple,
    type,
)

if __name__ == "__main__" and not __package__:
    # run as a script (``python -I -S -B``): its sibling modules load as a package of their own
    # (not drift_envs: that package's __init__ needs site-packages, which the server runs without)
    sys.modules["_drift_sandbox"] = _pkg = types.ModuleType("_drift_sandbox")
    _pkg.__path__ = [os.path.dirname(os.path.abspath(__file__))]
    __package__ = "_drift_sandbox"

from ._asserts import _compile_tests
from ._candidate import _zygote
from ._check import _CGROUPS, _NOT_CANDIDATES, _ZYGOTE_PID, _Run, _SetupError
from ._common import JUDGE_SLOTS, MAX_SLOTS, run_uid
from ._isolation import _only_fds, _probe_isolation
from ._judge import JUDGE_CHECKS, _judge_process
from ._linux import PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, PR_SET_PDEATHSIG, _prctl
from ._wire import _read_exact, _send_frame


def _spawn_judge(iso: dict, slot: int) -> tuple:
    """Fork the judge of worker ``slot``: ``(pid, control socket)``."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            _judge_process(iso, run_uid(server_pid, JUDGE_SLOTS + slot), theirs.detach(), server_pid)
        finally:
            os._exit(70)
    theirs.close()
    _NOT_CANDIDATES.add(pid)
    return pid, ours


# ---------------------------------------------------------------------------------------------
# the server loop


# not `queue` (nor anything else that imports `threading`): `threading` registers an after-fork hook
# that runs in every candidate forked from the zygote, and costs each check ~100 page faults (~0.5 ms
# of CPU) whether its code uses threads or not; the few that do import it themselves (at the full
# level, where the interpreter-only root holds the whole standard library; below it, see main)
_PRELOAD = (
    "math",
    "re",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "string",
    "typing",
    "random",
    "statistics",
    "fractions",
    "decimal",
    "hashlib",
    "copy",
    "operator",
    "datetime",
    "json",
    "dataclasses",
    "array",
    "cmath",
    "numbers",
    "textwrap",
    "unicodedata",
    "linecache",
    "io",
    "struct",
    "enum",
    "contextlib",
    "time",
    "abc",
    "types",
    "pprint",
    "fnmatch",
)


def _valid_request(req) -> str | None:
    """Why ``req`` is not a well-formed check request (None when it is)."""
    if type(req) is not dict or type(req.get("id")) is not int:
        return "not a request"
    if type(req.get("code")) is not str or type(req.get("tests")) is not list:
        return "code must be a str and tests a list"
    if not all(type(t) is str for t in req["tests"]):
        return "tests must be strs"
    for key in ("setup", "prelude"):
        if type(req.get(key, "")) is not str:
            return f"{key} must be a str"
    if req.get("entry_point") is not None and type(req["entry_point"]) is not str:
        return "entry_point must be a str"
    lim = req.get("limits")
    keys = (
        "timeout_s",
        "test_timeout_s",
        "cpu_s",
        "memory_mb",
        "file_mb",
        "open_files",
        "processes",
        "max_output_bytes",
        "disk_mb",
        "inodes",
    )
    if type(lim) is not dict or not all(type(lim.get(k)) in (int, float) and lim[k] > 0 for k in keys):
        return "limits are incomplete"
    for key in ("backstop_s", "test_backstop_s"):  # optional: backstop_s(limit) when absent
        if key in lim and not (type(lim[key]) in (int, float) and lim[key] > 0):
            return f"limits.{key} must be a positive number"
    return None


def main() -> None:  # noqa: C901
    """Serve check requests until stdin closes."""
    # requests and replies use the original pipes; fd 1 must never be written by anything else
    inp = os.dup(0)
    outp = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    try:
        header = struct.unpack(">I", _read_exact(inp, 4))[0]
        config = json.loads(_read_exact(inp, header))
    except EOFError:
        return
    _prctl(PR_SET_DUMPABLE, 0)
    max_parallel = min(MAX_SLOTS, max(1, int(config.get("max_parallel", os.cpu_count() or 1))))
    mode = "basic" if config.get("isolation") in ("basic", "none") else "auto"
    for name in _PRELOAD:  # (first: the interpreter-only root then needs no copy of what they load)
        try:
            __import__(name)
        except ImportError:
            pass
    iso, cgroups, view, seccomp = _probe_isolation(mode, max_parallel)
    if iso["level"] != "full":
        # below the full level a candidate whose uid was dropped may not read the standard library
        # (pyenv's under /root): it imports only what is loaded here, `queue` (and `threading`) too
        try:
            __import__("queue")
        except ImportError:
            pass
    _CGROUPS[0] = cgroups
    # a candidate's fds 1 and 2 are its output pipe; the sys.std* objects already wrap those fds, so
    # it uses them as they are: line-buffered, so that what was printed before a crash is still seen
    sys.stdout.reconfigure(line_buffering=True, errors="replace")
    sys.stderr.reconfigure(line_buffering=True, errors="replace")
    # orphans of a check are reparented here (not to the machine's init) and reaped below
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    # what exists now is shared by every check: keep the collector from walking (and so copying) it
    gc.collect()
    gc.freeze()
    # the zygote is forked before the first request: no check's data ever exists in it
    zsock, zchild = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server_pid = os.getpid()
    zpid = os.fork()
    if zpid == 0:
        try:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() == server_pid:
                zsock.close()
                keep, groups = {3: zchild.detach()}, []
                for slot_fds in cgroups.procs if cgroups is not None else []:
                    groups.append([])
                    for fd in slot_fds:
                        groups[-1].append(len(keep) + 3)
                        keep[len(keep) + 3] = fd
                _only_fds(keep)
                _zygote(socket.socket(fileno=3), max_parallel, iso["level"] == "full", view, groups, seccomp)
        finally:
            os._exit(0)
    _ZYGOTE_PID[0] = zpid
    _NOT_CANDIDATES.add(zpid)
    zchild.close()
    judges = {slot: [*_spawn_judge(iso, slot), 0] for slot in range(max_parallel)}  # pid, socket, checks
    zsock.setblocking(False)
    _send_frame(outp, {"ready": True, "isolation": iso, "pid": os.getpid()})

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    pending: list = []
    runs: dict = {}  # token -> _Run
    free_slots = list(range(max_parallel))
    next_token = 0
    stdin_open = True
    zfd = zsock.fileno()
    while stdin_open or pending or runs:
        while pending and free_slots:
            req = pending.pop(0)
            why = _valid_request(req)
            if why is not None:
                _send_frame(outp, {"id": req.get("id") if type(req) is dict else None, "error": why})
                continue
            try:
                _compile_tests(req.get("setup", ""), req["tests"])  # a bad test is the caller's error
            except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
                _send_frame(outp, {"id": req["id"], "error": f"a test does not compile: {e}"})
                continue
            next_token += 1
            slot = free_slots.pop()
            run = None
            for attempt in range(2):
                judge = judges.get(slot)
                if judge is None or judge[2] >= JUDGE_CHECKS or attempt:
                    if judge is not None:
                        judge[1].close()  # the old judge reads end of file and exits
                    judges[slot] = judge = [*_spawn_judge(iso, slot), 0]
                try:
                    zsock.setblocking(True)
                    try:
                        run = _Run(req, iso, slot, next_token, zsock, judge)
                    finally:
                        zsock.setblocking(False)
                    judge[2] += 1
                    break
                except _SetupError as e:
                    if attempt or e.args[1]:
                        _send_frame(
                            outp,
                            {
                                "id": req["id"],
                                "error": f"the sandbox could not set up this check: {e.args[0]}",
                            },
                        )
                        break
                except OSError as e:
                    _send_frame(
                        outp, {"id": req["id"], "error": f"the sandbox could not set up this check: {e}"}
                    )
                    break
            if run is None:
                free_slots.append(slot)
                continue
            runs[run.token] = run
        now = time.monotonic()
        watch = [wake_r, zfd] + ([inp] if stdin_open else [])
        for run in runs.values():
            watch.extend(run.open_fds)
        wakeup = min((r.next_wakeup() for r in runs.values()), default=float("inf"))
        timeout = None if wakeup == float("inf") else max(0.0, wakeup - now)
        ready, _, _ = select.select(watch, [], [], timeout)
        fd_owner = {fd: r for r in runs.values() for fd in r.open_fds}
        for fd in ready:
            if fd == wake_r:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            elif fd == zfd:
                while True:
                    try:
                        msg, fds, _flags, _addr = socket.recv_fds(zsock, 4096, 1)
                    except BlockingIOError:
                        break
                    if not msg:
                        raise SystemExit("the zygote died")
                    info = json.loads(msg)
                    run = runs.get(info.get("token"))
                    if run is None:
                        for extra in fds:
                            os.close(extra)
                    elif "exit" in info:
                        run.on_candidate_exit(int(info["exit"]), float(info.get("cpu", 0.0)))
                    else:
                        run.on_spawn(info, fds)
            elif fd == inp:
                try:
                    n = struct.unpack(">I", _read_exact(inp, 4))[0]
                    pending.append(json.loads(_read_exact(inp, n)))
                except EOFError:
                    stdin_open = False
            elif fd in fd_owner:
                fd_owner[fd].on_readable(fd)
        while True:  # reap: judges, candidates, and any orphan reparented to us
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == zpid:
                raise SystemExit("the zygote died")
            _NOT_CANDIDATES.discard(pid)
            for slot, judge in list(judges.items()):
                if judge[0] == pid:  # it died: the slot gets a new judge when next used
                    judge[1].close()
                    del judges[slot]
        now = time.monotonic()
        for token, run in list(runs.items()):
            run.tick(now)
            if run.done(now):
                del runs[token]
                if run.judge_killed and run.slot in judges and judges[run.slot][0] == run.judge_pid:
                    judges.pop(run.slot)[1].close()
                result = run.finish()
                free_slots.append(run.slot)
                _send_frame(outp, {"id": run.req["id"], "result": result})
    if cgroups is not None:
        for run in runs.values():
            run.sweep()
        cgroups.close()


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
