"""The candidate: runs the model's code and serves the judge's calls to what it defines; the zygote that forks candidates.

Part of the sandbox fork server (see ``_forkserver.py``): standard library only.
"""

import builtins
import json
import linecache
import os
import resource
import signal
import socket
import sys
import time
import traceback
import types

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    bool,
    bytes,
    callable,
    dict,
    float,
    getattr,
    id,
    int,
    isinstance,
    len,
    list,
    setattr,
    str,
    tuple,
    type,
)

from ._common import (
    MAX_HANDLES,
    MAX_VALUE_BYTES,
    RUN_ROOT,
    _exc_text,
    _read_memfd,
    _run_delay,
    _schedstat_fd,
    _TaskWaits,
    _thread_waits,
    backstop_s,
)
from ._isolation import (
    _drop_to,
    _enter_minimal_root,
    _enter_namespaces,
    _only_fds,
    _private_mounts,
    _set_limits,
    _slot_namespaces,
)
from ._linux import PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, _prctl
from ._seccomp import _install_seccomp, _prepare_seccomp
from ._wire import (
    WireError,
    _read_out,
    _recv_msg,
    _send_msg,
    _write_all,  # noqa: F401  (the code's __main__ offers the wire as the one-file server did)
    decode_value,
    encode_value,
)

# ---------------------------------------------------------------------------------------------
# the candidate: runs the model's code, serves calls to what it defines (forked from the zygote)


class _CallTimeout(BaseException):
    """Raised by SIGALRM in the candidate; a BaseException so `except Exception` in user code misses it."""


class _CallUndecided(BaseException):
    """Raised by SIGALRM in the candidate when a call reached its wall-clock backstop short of its limit."""


def _candidate_tb(e: BaseException, code_text: str) -> str:
    """The frames of the model's own code in ``e``'s traceback (its last six)."""
    try:
        linecache.cache["<solution>"] = (len(code_text), None, code_text.splitlines(True), "<solution>")
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith("<solution")]
        return "".join(traceback.format_list(frames[-6:]))[-1500:]
    except BaseException:
        return ""


def _serve(payload: dict, fd: int, lim: dict) -> None:
    """Load the code, report how that went, then answer the judge's requests until it hangs up.

    Every message ends with how long this process has waited on a run queue so far (seconds), from
    which the judge counts a test's own time. A call (and loading the code) may take its budget of
    own time (see :func:`backstop_s`): the alarm re-arms until the call's wall time minus its run-queue
    wait reaches the budget (a timeout), or its wall time reaches the backstop (undecided)."""
    code_text, prelude = payload["code"], payload.get("prelude") or ""
    test_timeout = float(lim["test_timeout_s"])
    test_backstop = float(lim.get("test_backstop_s") or backstop_s(test_timeout))
    # what runs in the alarm is bound here: the code may rebind names in `time`, `os` or `signal`
    setitimer, ITIMER_REAL, monotonic = signal.setitimer, signal.ITIMER_REAL, time.monotonic
    # this thread's (the one that serves); none where the server's clock is the wall clock
    clock_fd = _schedstat_fd("/proc/thread-self/schedstat") if lim.get("own_clock") else None
    float_ = float

    # the waits of all this process's threads, not the serving thread's alone: a call blocked in
    # join() while its worker thread waits for a CPU is not slow
    task_waits = _TaskWaits()
    waitid, P_ALL, WAIT_FLAGS = os.waitid, os.P_ALL, os.WEXITED | os.WNOHANG | os.WNOWAIT

    task_fd, links, me, fstat = None, 0, "", os.fstat  # (me: the id of this thread, which serves)
    if clock_fd is not None:
        try:
            # how many threads the process has, cheaply: the link count of its /proc/<pid>/task is a
            # constant plus its threads (a stat call, where reading its stat file costs four times
            # as much); the constant is taken here, against the stat file's own count
            task_fd = os.open("/proc/self/task", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            stat_fd = os.open("/proc/thread-self/stat", os.O_RDONLY | os.O_CLOEXEC)
            try:
                threads = int(os.pread(stat_fd, 1024, 0).rsplit(b")", 1)[1].split()[17])
            finally:
                os.close(stat_fd)
            links = fstat(task_fd).st_nlink - threads
            me = os.readlink("/proc/thread-self").rsplit("/", 1)[-1]
        except (OSError, ValueError, IndexError):
            if task_fd is not None:
                os.close(task_fd)
            task_fd = None  # every reading lists the threads
    tasks = [1]  # threads at the last reading: with more, the alarm reads them every 0.05 s (a thread's
    # wait after its last reading is lost when it exits)

    def waited() -> float:
        if clock_fd is None:
            return 0.0
        now: dict = {}
        try:  # one thread (the common case): its descriptor alone, not a listing of /proc
            one = fstat(task_fd).st_nlink - links == 1
        except (OSError, TypeError):
            one = False
        if one:
            now[me] = _run_delay(clock_fd) or 0.0
        else:
            _thread_waits("/proc/self", now)
        tasks[0] = len(now)
        return task_waits.update(now)

    def has_children() -> bool:
        """Whether this process has a child (whose run-queue waits it cannot read: its /proc hides
        them); nothing is reaped."""
        try:
            waitid(P_ALL, 0, WAIT_FLAGS)
        except ChildProcessError:
            return False
        except OSError:
            return True
        return True

    getrusage, RUSAGE_CHILDREN = resource.getrusage, resource.RUSAGE_CHILDREN

    def children_cpu() -> float:
        """CPU seconds of the children this process has reaped so far (microseconds: every child
        that ran at all, if only to exit, adds to it)."""
        if clock_fd is None:
            return 0.0
        r = getrusage(RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    send = lambda msg: _send_msg(fd, encode_value((*msg, waited())))  # noqa: E731
    # start, run-queue wait then, budget, backstop, what ended it, reaped children's CPU then
    call = [0.0, 0.0, 1.0, 1.0, None, 0.0]

    def on_alarm(signum, frame):
        kind = call[4]
        if kind is None:
            elapsed = monotonic() - call[0]
            own = elapsed - (waited() - call[1])
            if (
                own >= call[2]
                and clock_fd is not None
                and elapsed < call[3]
                and (has_children() or children_cpu() > call[5])
            ):
                # its children (alive, or reaped since the call began: a child that has just
                # finished its work is gone by the time its parent's call returns) may have waited
                # for a CPU: the server, which reads the waits of every process of the check, ends
                # the call once its own time is up (a timeout)
                setitimer(ITIMER_REAL, 0.05, 0)
                return
            if own >= call[2]:
                kind = _CallTimeout
            elif elapsed >= call[3]:
                kind = _CallUndecided
            else:  # starved: not yet its limit
                left = min(call[2] - own, call[3] - elapsed, 0.05 if tasks[0] > 1 else float_("inf"))
                setitimer(ITIMER_REAL, max(0.001, left), 0)
                return
            call[4] = kind
            setitimer(ITIMER_REAL, 0.05, 0.05)  # again and again, should the code swallow it
        raise kind()

    def arm(budget: float, wall: float) -> None:
        call[0], call[1], call[2], call[3], call[4] = monotonic(), waited(), budget, wall, None
        call[5] = children_cpu()
        setitimer(ITIMER_REAL, max(0.001, min(budget, wall)), 0)

    signal.signal(signal.SIGALRM, on_alarm)
    try:
        sol = compile(code_text, "<solution>", "exec")
    except (SyntaxError, ValueError) as e:
        send(
            (
                "load",
                "syntax_error",
                f"{type(e).__name__}: {getattr(e, 'msg', _exc_text(e))} (line {getattr(e, 'lineno', '?')})",
                getattr(e, "lineno", None),
                (getattr(e, "text", None) or "")[:300],
                "",
                (),
            )
        )
        return
    ns = {"__name__": "__main__", "__builtins__": builtins}
    try:
        arm(test_timeout, test_backstop)
        try:
            if prelude:
                exec(compile(prelude, "<prelude>", "exec"), ns)
            exec(sol, ns)
        finally:
            setitimer(ITIMER_REAL, 0)
    except BaseException as e:
        status = (
            "timeout"
            if isinstance(e, _CallTimeout)
            else "undecided"
            if isinstance(e, _CallUndecided)
            else "memory_limit"
            if isinstance(e, MemoryError)
            else "runtime_error"
        )
        tb = _candidate_tb(e, code_text)
        msg = f"{type(e).__name__}: {_exc_text(e)}"
        del e
        send(("load", status, "the code raised while being defined", None, None, tb + msg, ()))
        return
    names = []
    for name, value in list(ns.items()):
        if isinstance(name, str) and not name.startswith("__"):
            kind = (
                "module"
                if isinstance(value, types.ModuleType)
                else "callable"
                if callable(value)
                else "value"
            )
            names.append((name, kind))
    send(("load", "ok", "", None, None, "", tuple(names[:10_000])))

    handles: dict = {}  # id -> object handed to the judge
    handle_of: dict = {}  # id(object) -> id

    def to_handle(v):
        key = id(v)
        rid = handle_of.get(key)
        if rid is None:
            if len(handles) >= MAX_HANDLES:
                raise WireError(f"more than {MAX_HANDLES} objects handed out")
            rid = len(handles) + 1
            handles[rid] = v
            handle_of[key] = rid
        t = type(v)
        return ("r", rid, f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t.__name__)}")

    def resolve(target):
        if type(target) is str:
            if target not in ns:
                raise NameError(f"name {target!r} is not defined")
            return ns[target]
        if type(target) is int and target in handles:
            return handles[target]
        raise ValueError("unknown object handle")

    def from_handle(rid, tname):
        if rid not in handles:
            raise WireError("unknown object handle")
        return handles[rid]

    while True:
        raw = _recv_msg(fd, MAX_VALUE_BYTES + 4096)
        if raw is None:
            return
        try:
            seq, op, target, args, kwargs, budget, wall = decode_value(raw, from_handle)
        except (WireError, ValueError, TypeError):
            return
        reply = None
        try:
            arm(float_(budget), float_(wall))
            try:
                obj = resolve(target)
                if op == "call":
                    out = obj(*args, **kwargs)
                elif op == "getattr":
                    out = getattr(obj, args[0])
                elif op == "setattr":
                    setattr(obj, args[0], args[1])
                    out = None
                elif op == "bool":
                    out = bool(obj)
                else:
                    raise ValueError(f"unknown request {op!r}")
                try:
                    # an endless generator is a WireError here; what it raises is the call's error
                    reply = encode_value((seq, "ok", _read_out(out), waited()), to_handle)
                except WireError as e:
                    reply = encode_value(
                        (
                            seq,
                            "bad",
                            f"{target if type(target) is str else 'it'} returned a value "
                            f"that cannot be sent back: {e}",
                            waited(),
                        )
                    )
                del out
            finally:
                setitimer(ITIMER_REAL, 0)
        except _CallTimeout:
            reply = encode_value((seq, "timeout", waited()))
        except _CallUndecided:
            reply = encode_value((seq, "undecided", waited()))
        except BaseException as e:
            tname = type(e).__name__ if isinstance(type(e).__name__, str) else "Exception"
            tb = _candidate_tb(e, code_text)
            text = _exc_text(e)
            del e
            reply = encode_value((seq, "raise", tname[:100], text, tb, waited()))
        _send_msg(fd, reply)


def _candidate(
    hdr: dict,
    memfd: int,
    rpc: int,
    out_w: int,
    parent: int,
    ns_fds: tuple | None,
    cgroup_fds: list,
    seccomp: tuple | None,
) -> None:
    """The candidate process: isolate, limit and drop privileges, then serve (never returns)."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        # into the slot's cgroup first: everything it will start is counted with it
        me = str(os.getpid()).encode()
        for fd in cgroup_fds:
            os.write(fd, me)
        payload = json.loads(_read_memfd(memfd))
        if hdr["full"]:
            _enter_namespaces(ns_fds)
        _only_fds({1: out_w, 2: out_w, 3: rpc})
        lim, uid = hdr["limits"], int(hdr["uid"])
        if hdr["full"]:
            _private_mounts(lim, uid)
            workdir = RUN_ROOT
        else:
            workdir = hdr["workdir"]
        os.chdir(workdir)
        _set_limits(lim, hdr["uid_drop"], int(lim["processes"]))
        if hdr["uid_drop"]:
            _drop_to(uid)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        if seccomp is not None:
            _install_seccomp(seccomp)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # set after the uid change, which clears it
        if os.getppid() != parent:
            raise OSError("the zygote died while the check was starting")
        if workdir != RUN_ROOT:  # (the zygote set the rest of the environment once)
            os.environ["HOME"] = os.environ["TMPDIR"] = workdir
        sys.argv = ["solution.py"]
        del hdr
        # the code's `import __main__` is this module, which serves it (not the server's script), as it
        # was when the server was one file: what the code may rebind in its own process is the same
        sys.modules["__main__"] = sys.modules[__name__]
        _serve(payload, 3, lim)
        code = 0
    except BaseException:
        pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


# ---------------------------------------------------------------------------------------------
# the zygote: forks candidates from a process that never held any check's tests or results


def _zygote(
    sock: socket.socket,
    slots: int,
    full: bool,
    view: tuple | None,
    cgroup_fds: list,
    seccomp: bytes | None,
) -> None:
    """Serve spawn requests from the server: each is a JSON header and three descriptors (the code,
    the socket to the judge, the output pipe). For each candidate it forks, the zygote sends back its
    pid and a pidfd (so the server can kill it without a pid-reuse race), and once it has reaped it,
    its exit status and CPU time."""
    signal.set_wakeup_fd(-1)
    # the filter's kernel structure, once for every candidate (each only loads it)
    prepared = _prepare_seccomp(seccomp) if seccomp is not None else None
    token_of: dict = {}
    me = os.getpid()
    namespaces = _slot_namespaces(slots) if full else []
    if view is not None:
        _enter_minimal_root(*view)  # every candidate is forked inside it
    # every candidate's environment, set once here rather than in each (a basic-level candidate
    # gets its own directory as HOME and TMPDIR)
    os.environ.clear()
    os.environ.update(
        {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": RUN_ROOT,
            "TMPDIR": RUN_ROOT,
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
        }
    )

    # a process forked ahead for each slot, already in the slot's cgroup, waiting for its check:
    # joining a cgroup costs a kernel grace period (~10 ms of waiting when the machine is otherwise
    # quiet), which it pays while the slot's previous check runs, not on a check's own clock
    ready: dict = {}  # slot -> (pid, our end of the socket it waits on)

    def reap(signum=None, frame=None):
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for slot, (ready_pid, end) in list(ready.items()):
                if ready_pid == pid:  # died while waiting (the OOM killer of its slot's check)
                    del ready[slot]
                    end.close()
            token = token_of.pop(pid, None)
            if token is not None:
                sock.send(
                    json.dumps(
                        {"token": token, "exit": status, "cpu": usage.ru_utime + usage.ru_stime}
                    ).encode()
                )

    def child_of(slot: int, hdr: dict | None, fds: list | None, wait_on: socket.socket | None) -> None:
        """In a freshly forked child: become the candidate of ``hdr`` (now, or once it arrives on
        ``wait_on``); never returns."""
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            sock.close()
            token_of.clear()  # which other checks are in flight is none of its business
            for _, end in ready.values():
                end.close()
            for i, group in enumerate(cgroup_fds):  # only its own slot's
                if i != slot:
                    for fd in group:
                        os.close(fd)
            own = cgroup_fds[slot] if cgroup_fds else []
            if wait_on is not None:
                me_ = str(os.getpid()).encode()
                for fd in own:
                    os.write(fd, me_)
                own = []
                msg, fds, _flags, _addr = socket.recv_fds(wait_on, 1 << 16, 3)
                if not msg or len(fds) != 3:
                    os._exit(0)  # the zygote is gone, or never needed it
                hdr = json.loads(msg)
            ns = namespaces[slot] if full else None
            _candidate(hdr, fds[0], fds[1], fds[2], me, ns, own, prepared)
        finally:
            os._exit(70)

    def fork_ahead(slot: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return
        if pid == 0:
            ours.close()
            child_of(slot, None, None, theirs)
        theirs.close()
        ready[slot] = (pid, ours)

    signal.signal(signal.SIGCHLD, reap)
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 3)
        except OSError:
            return
        if not msg:
            return
        hdr = json.loads(msg)
        slot = hdr["slot"]
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])  # reap only once the pid is known
        try:
            pid = None
            waiting = ready.pop(slot, None)
            if waiting is not None:
                try:
                    socket.send_fds(waiting[1], [msg], fds)
                    pid = waiting[0]
                except OSError:
                    pass  # it died: fork one now
                waiting[1].close()
            if pid is None:
                try:
                    pid = os.fork()
                except OSError as e:
                    sock.send(json.dumps({"token": hdr["token"], "error": f"fork failed: {e}"}).encode())
                    pid = None
                if pid == 0:
                    child_of(slot, hdr, fds, None)
            if pid:
                token_of[pid] = hdr["token"]
                pidfd = os.pidfd_open(pid)
                try:
                    socket.send_fds(sock, [json.dumps({"token": hdr["token"], "pid": pid}).encode()], [pidfd])
                finally:
                    os.close(pidfd)
            for fd in fds:  # this check's: never in the process forked for the next one
                os.close(fd)
            fds = []
            if cgroup_fds:
                fork_ahead(slot)  # for the slot's next check
        finally:
            for fd in fds:
                os.close(fd)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
        del hdr, msg, fds
