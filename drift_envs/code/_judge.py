"""The judge: runs a check's tests (assertions that record instead of stopping), calls into the candidate, reports records to the server.

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

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    bool,
    dict,
    float,
    getattr,
    int,
    isinstance,
    len,
    list,
    str,
    tuple,
    type,
)

from ._asserts import (
    _compile_prelude,
    _compile_tests,
    _drift_all,
    _drift_any,
    _drift_boolop,
    _drift_chain,
    _source_line,
)
from ._common import (
    GRACE_S,
    MAX_VALUE_BYTES,
    _exc_text,
    _read_memfd,
    _run_delay,
    _schedstat_fd,
    _short_repr,
    backstop_s,
)
from ._isolation import _drop_to, _only_fds
from ._linux import PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, _prctl
from ._wire import WireError, _pending_bytes, _recv_msg, _send_msg, _write_all, decode_value, encode_value

# ---------------------------------------------------------------------------------------------
# the judge: runs the tests, calls into the candidate, reports to the server (forked from the server)


class _TestTimeout(BaseException):
    """A test ran past its limit of own time (the candidate said its call did, or none was left)."""


class _TestUndecided(BaseException):
    """A test reached its wall-clock backstop short of its limit (the judge's alarm, or the candidate
    said its call did): the machine starved it, nothing is decided."""


class _CandidateLost(BaseException):
    """The candidate's process ended or broke the protocol; nothing more can be asked of it."""


class _CandidateError(Exception):
    """An exception of a type that is not a built-in one, raised by the candidate's code."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name


_JUDGE_CLOCK = [None]  # the judge's own schedstat descriptor (opened once per judge)


def _judge_waited() -> float:
    w = _run_delay(_JUDGE_CLOCK[0])
    return 0.0 if w is None else w


class _Channel:
    """The judge's end of the socket to the candidate: one request, one reply, in order.

    It keeps the clock of the current phase (loading, set-up, a test): own time used = wall time
    minus the run-queue waits of the judge (its schedstat) and of the candidate (the figure that
    ends each of its messages: the largest wait of any one of its threads) since the phase started; each request tells the candidate the own
    time left and the wall time left to the phase's backstop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        _pending_bytes.pop(fd, None)  # never anything another check's candidate sent on this fd number
        self.seq = 0
        self.dead = None  # why the candidate can no longer be asked anything
        self.cand_waited = 0.0  # the candidate's run-queue wait so far, as its last message said
        self.limit = float("inf")
        self.t0 = self.j0 = self.c0 = 0.0
        self.backstop_at = float("inf")
        self.own_clock = False  # whether the server counts own time (else the wall clock, everywhere)
        self.remotes: dict = {}

    def start_phase(self, limit: float, backstop: float) -> None:
        """Start the clock of a phase that may use ``limit`` s of own time within ``backstop`` s of wall time."""
        self.limit = limit
        self.t0, self.j0, self.c0 = time.perf_counter(), _judge_waited(), self.cand_waited
        self.backstop_at = self.t0 + backstop

    def past_backstop(self) -> bool:
        """Whether the phase's wall-clock backstop has passed by the judge's own clock: the candidate's
        word that it was starved is believed only then (any earlier claim is an invalid reply, so a
        wrong answer cannot pass itself off as undecided)."""
        return time.perf_counter() >= self.backstop_at - 0.01

    def own_used(self) -> float:
        wall = time.perf_counter() - self.t0
        if not self.own_clock:
            return wall
        return max(0.0, wall - (_judge_waited() - self.j0) - max(0.0, self.cand_waited - self.c0))

    def remote(self, rid: int, tname: str) -> "RemoteObject":
        r = self.remotes.get(rid)
        if r is None:
            r = self.remotes[rid] = RemoteObject(self, rid, tname)
        return r

    def recv(self, seq: int | None) -> tuple:
        try:
            raw = _recv_msg(self.fd, MAX_VALUE_BYTES + 4096)
        except WireError as e:
            self.dead = "protocol"
            raise _CandidateLost(f"the candidate's process sent an invalid reply ({e})") from None
        except OSError:
            raw = None
        if raw is None:
            self.dead = "lost"
            raise _CandidateLost("the candidate's process ended")
        try:
            msg = decode_value(raw, self.remote)
        except WireError as e:
            self.dead = "protocol"
            raise _CandidateLost(f"the candidate's process sent an invalid reply ({e})") from None
        if (
            type(msg) is not tuple
            or len(msg) < 3
            or type(msg[-1]) is not float
            or (seq is not None and msg[0] != seq)
        ):
            self.dead = "protocol"
            raise _CandidateLost("the candidate's process sent an invalid reply")
        self.cand_waited = msg[-1]
        return msg[:-1]

    def request(self, op: str, target, args: tuple = (), kwargs: dict | None = None):
        if self.dead:
            raise _CandidateLost("the candidate's process can no longer be called")
        self.seq += 1
        budget = self.limit - self.own_used()
        if budget <= 0:
            raise _TestTimeout()
        wall = self.backstop_at - time.perf_counter()
        if wall <= 0:
            raise _TestUndecided()
        try:
            payload = encode_value(
                (self.seq, op, target, tuple(args), dict(kwargs or {}), budget, wall), _judge_other
            )
        except WireError as e:
            raise TypeError(f"the test passes the candidate something the sandbox cannot send: {e}") from None
        self.dead = "busy"  # until the reply is in: an exception in between leaves the channel unusable
        try:
            _send_msg(self.fd, payload)
        except OSError:
            self.dead = "lost"
            raise _CandidateLost("the candidate's process ended") from None
        msg = self.recv(self.seq)
        self.dead = None
        kind = msg[1]
        if kind == "ok" and len(msg) == 3:
            return msg[2]
        if kind == "timeout" and len(msg) == 2:
            raise _TestTimeout()
        if kind == "undecided" and len(msg) == 2 and self.past_backstop():
            raise _TestUndecided()
        if kind == "raise" and len(msg) == 5 and all(type(x) is str for x in msg[2:]):
            tname, text, tb = msg[2][:100], msg[3][:500], msg[4][-1500:]
            exc_type = getattr(builtins, tname, None)
            exc = None
            if isinstance(exc_type, type) and issubclass(exc_type, Exception):
                try:
                    exc = exc_type(text) if text else exc_type()
                except Exception:
                    exc = None
            if exc is None:
                exc = _CandidateError(tname, text)
            exc.__drift_tb__ = tb
            raise exc
        if kind == "bad" and len(msg) == 3 and type(msg[2]) is str:
            raise TypeError(msg[2][:500])
        self.dead = "protocol"
        raise _CandidateLost("the candidate's process sent an invalid reply")


def _judge_other(v):
    if type(v) is RemoteObject:
        return ("r", object.__getattribute__(v, "_rid"), "")
    raise WireError(f"a {type(v).__name__} cannot be sent")


class RemoteObject:
    """An object of the candidate's, seen from the judge: it can be called, its attributes read and
    set, its truth asked (the candidate could as well have returned that bool), and it can be passed
    back; it is never compared, ordered, hashed by value or iterated: those would be the candidate's
    word for the test's outcome."""

    __slots__ = ("_chan", "_rid", "_tname")

    def __init__(self, chan: _Channel, rid, tname: str) -> None:
        object.__setattr__(self, "_chan", chan)
        object.__setattr__(self, "_rid", rid)
        object.__setattr__(self, "_tname", tname)

    def _refuse(self, *args, **kwargs):
        raise TypeError(
            f"the code returned an object of type {object.__getattribute__(self, '_tname')}; only "
            "built-in values (numbers, strings, lists, tuples, dicts, sets, None) can be compared"
        )

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __iter__ = __len__ = __contains__ = _refuse
    __getitem__ = __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __abs__ = __neg__ = _refuse
    __int__ = __float__ = __index__ = _refuse
    __hash__ = object.__hash__

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return object.__getattribute__(self, "_chan").request(
            "getattr", object.__getattribute__(self, "_rid"), (name,)
        )

    def __setattr__(self, name: str, value) -> None:
        object.__getattribute__(self, "_chan").request(
            "setattr", object.__getattribute__(self, "_rid"), (name, value)
        )

    def __call__(self, *args, **kwargs):
        return object.__getattribute__(self, "_chan").request(
            "call", object.__getattribute__(self, "_rid"), args, kwargs
        )

    def __bool__(self) -> bool:
        out = object.__getattribute__(self, "_chan").request("bool", object.__getattribute__(self, "_rid"))
        if type(out) is not bool:
            raise TypeError("the candidate's truth value is not a bool")
        return out

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_tname')} object>"


def _judge(req: dict, compiled: tuple, chan_fd: int, res_w: int) -> None:  # noqa: C901
    """Run the tests of ``req`` against the candidate behind ``chan_fd``; records go to ``res_w``."""
    perf = time.perf_counter
    setitimer, ITIMER_REAL = signal.setitimer, signal.ITIMER_REAL
    srepr_ = _short_repr().repr
    entry_point = req.get("entry_point")
    test_timeout = float(req["limits"]["test_timeout_s"])
    # the judge's alarms are wall-clock backstops only: the candidate's own-time limits come first
    test_backstop = float(req["limits"].get("test_backstop_s") or backstop_s(test_timeout))
    setup_code, units, names_read = compiled
    chan = _Channel(chan_fd)
    chan.own_clock = req["limits"].get("own_clock") is True

    def emit(*recs):
        _write_all(res_w, "".join(json.dumps(rec) + "\n" for rec in recs).encode())

    def srepr(v):
        try:
            return srepr_(v)[:1000]
        except BaseException:
            return f"<{type(v).__name__} object>"

    def message_of(e):
        name = e.type_name if isinstance(e, _CandidateError) else type(e).__name__
        text = _exc_text(e)
        return (name + (": " + text if text else ""))[:500]

    def trimmed_tb(e):
        for i, src in enumerate(req["tests"]):
            linecache.cache[f"<test {i}>"] = (len(src), None, src.splitlines(True), f"<test {i}>")
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith("<test")]
        text = "".join(traceback.format_list(frames[-6:]))
        text += getattr(e, "__drift_tb__", "")
        return (text + message_of(e))[-1500:]

    def classify(e):
        if isinstance(e, _TestTimeout):
            return "timeout"
        if isinstance(e, _TestUndecided):
            return "undecided"
        if isinstance(e, MemoryError):
            return "memory_limit"
        if isinstance(e, _CandidateLost):
            return "runtime_error"
        if isinstance(e, AssertionError):
            return "wrong_answer"
        return "runtime_error"

    def on_alarm(signum, frame):
        raise _TestUndecided()

    signal.signal(signal.SIGALRM, on_alarm)

    # 1. what the candidate's code did when it was loaded
    chan.start_phase(test_timeout, test_backstop)  # (the candidate starts after the judge has the check)
    try:
        setitimer(ITIMER_REAL, test_backstop + 1.0)
        try:
            load = chan.recv(None)
        finally:
            setitimer(ITIMER_REAL, 0)
    except _CandidateLost as e:
        emit({"ev": "load", "status": "runtime_error", "lost": chan.dead == "lost", "message": str(e)})
        return
    except _TestUndecided:
        emit(
            {
                "ev": "load",
                "status": "undecided",
                "message": f"the code was still loading after {test_backstop:g} s on a busy machine",
            }
        )
        return
    if (
        len(load) != 7
        or load[0] != "load"
        or load[1] not in ("ok", "syntax_error", "runtime_error", "timeout", "memory_limit", "undecided")
    ):
        emit(
            {
                "ev": "load",
                "status": "runtime_error",
                "message": "the candidate's process sent an invalid reply",
            }
        )
        return
    _, status, message, line, text, tb, names = load
    if status == "undecided" and not chan.past_backstop():
        status, message, tb = "runtime_error", "the candidate's process sent an invalid reply", ""
    if status != "ok":
        emit(
            {
                "ev": "load",
                "status": status,
                "message": str(message)[:500],
                "line": line if type(line) is int else None,
                "text": str(text or "")[:300],
                "traceback": str(tb or "")[-2000:],
            }
        )
        return
    defined = {}
    if type(names) is tuple:
        for item in names:
            if type(item) is tuple and len(item) == 2 and type(item[0]) is str and type(item[1]) is str:
                defined[item[0]] = item[1]
    if entry_point and defined.get(entry_point) != "callable":
        emit(
            {
                "ev": "load",
                "status": "runtime_error",
                "message": f"the code defines no function named {entry_point!r}",
                "traceback": "",
            }
        )
        return

    # 2. the test namespace: the task's own helpers (prelude, set-up) and builtins win over anything
    # the code defines; the function under test and names only the code defines are its remote objects
    failed: list = []  # the current test's first failed assertion: (actual, expected, has_values)

    getframe = sys._getframe

    def drift_eq(actual, expected):
        if not (actual == expected) and not failed:
            f = getframe(1)
            failed.append((actual, expected, True, f.f_code.co_filename, f.f_lineno))

    def drift_true(value):
        if not value and not failed:
            f = getframe(1)
            failed.append((value, None, False, f.f_code.co_filename, f.f_lineno))

    test_ns = {"__name__": "__main__", "__builtins__": builtins}
    try:
        if req.get("prelude"):
            exec(_compile_prelude(req["prelude"]), test_ns)
        if entry_point:
            test_ns[entry_point] = test_ns["candidate"] = RemoteObject(chan, entry_point, "function")
        for name in sorted(names_read):
            if name in test_ns or hasattr(builtins, name) or name not in defined:
                continue
            if name in sys.stdlib_module_names:
                # a test that reads `sys` or `math` without importing it (MBPP relies on the
                # solution's imports) gets the module itself, whatever the code bound to that name
                try:
                    test_ns[name] = __import__(name)
                except Exception:  # not importable here: the name stays unbound (a NameError)
                    pass
            elif defined[name] != "module":
                test_ns[name] = RemoteObject(chan, name, defined[name])
        test_ns["__drift_eq__"] = drift_eq
        test_ns["__drift_true__"] = drift_true
        test_ns["__drift_boolop__"] = _drift_boolop
        test_ns["__drift_chain__"] = _drift_chain
        test_ns["__drift_all__"] = _drift_all
        test_ns["__drift_any__"] = _drift_any
        emit({"ev": "load", "status": "ok"})  # the server's clock starts the set-up's limit
        chan.start_phase(test_timeout, test_backstop)
        setitimer(ITIMER_REAL, test_backstop + GRACE_S)
        try:
            exec(setup_code, test_ns)
        finally:
            setitimer(ITIMER_REAL, 0)
    except BaseException as e:
        emit(
            {
                "ev": "load",
                "status": "runtime_error",
                "message": "the test set-up code raised",
                "traceback": trimmed_tb(e),
                "lost": chan.dead == "lost",
            }
        )
        return

    # 3. the tests, one record each; "start i" is on the pipe before test i runs. Every test runs,
    # whatever the earlier ones gave, and nothing is worded until the last one is done: between two
    # requests the judge does the same work whether the answer was right or wrong
    pending: list = []
    outcomes = []
    for i, unit in enumerate(units):
        pending.append({"ev": "start", "i": i})
        emit(*pending)
        pending = []
        t0 = perf()
        error = None
        failed.clear()
        try:
            chan.start_phase(test_timeout, test_backstop)
            setitimer(ITIMER_REAL, test_backstop + GRACE_S)
            try:
                exec(unit, test_ns)
            finally:
                setitimer(ITIMER_REAL, 0)
        except BaseException as e:
            error = e
            del e
        outcomes.append((i, perf() - t0, tuple(failed[:1]), error, bool(chan.dead)))
        # the status now (the same small record either way; what went wrong is worded at the end)
        status = "wrong_answer" if failed else "passed" if error is None else classify(error)
        lost = isinstance(error, _CandidateLost) and chan.dead == "lost"
        pending.append({"ev": "result", "i": i, "status": status, "lost": lost})
        error = None
        if chan.dead:
            break  # the candidate is gone or wedged: the remaining tests cannot run
    failed.clear()
    for i, duration, wrong, error, dead in outcomes:
        rec = {"ev": "result", "i": i, "status": "passed", "duration_s": duration}
        if wrong:
            actual, expected, has_values, filename, line = wrong[0]
            rec.update(status="wrong_answer", message="wrong answer", actual=srepr(actual))
            if has_values:
                rec["expected"] = srepr(expected)
            where = traceback.format_list(
                [(filename, line, "<test>", _source_line(req["tests"], filename, line))]
            )
            rec["traceback"] = ("".join(where) + "AssertionError")[-1500:]
        elif error is not None:
            status = classify(error)
            rec["status"] = status
            if status == "timeout":
                rec["message"] = f"the test ran longer than {test_timeout:g} s"
            elif status == "undecided":
                rec["message"] = (
                    f"the test reached its wall-clock backstop of {test_backstop:g} s before its limit "
                    f"of {test_timeout:g} s: the machine was too busy to decide it"
                )
            elif status == "memory_limit":
                rec["message"] = "out of memory (MemoryError)"
            else:
                rec["message"] = message_of(error)
            if isinstance(error, _CandidateLost) and dead and chan.dead == "lost":
                rec["lost"] = True  # the server says how the process ended
            rec["traceback"] = trimmed_tb(error)
        pending.append(rec)
    outcomes.clear()
    pending.append({"ev": "done", "n": len(units)})
    emit(*pending)


#: a judge serves this many checks, then exits and is replaced (bounds what tests may leave behind)
JUDGE_CHECKS = 1000
#: a judge's address space (it decodes at most MAX_VALUE_BYTES per message; tests are trusted)
JUDGE_MEMORY_MB = 4096


def _judge_process(iso: dict, uid: int, ctrl_fd: int, server_pid: int) -> None:
    """A judge: forked from the server for one worker slot, its own uid, not dumpable; it serves the
    checks of that slot one at a time, each a request (a memfd), the socket to that check's candidate
    and that check's result pipe, sent on ``ctrl_fd``; it closes the result pipe when the check is
    done (never returns)."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        _only_fds({3: ctrl_fd})
        _JUDGE_CLOCK[0] = _schedstat_fd("/proc/thread-self/schedstat")
        os.chdir("/")
        mem = JUDGE_MEMORY_MB << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if iso["uid_drop"]:
            _drop_to(uid)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _prctl(PR_SET_DUMPABLE, 0)  # no process of the same uid may read its memory or descriptors
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != server_pid:
            raise OSError("the server died while the judge was starting")
        ctrl = socket.socket(fileno=3)
        rng = sys.modules.get("random")
        while True:
            msg, fds, _flags, _addr = socket.recv_fds(ctrl, 1 << 16, 3)
            if not msg or len(fds) != 3:
                break
            req_fd, chan_fd, res_w = fds
            try:
                req = json.loads(_read_memfd(req_fd))
                os.close(req_fd)
                if rng is not None:
                    rng.seed(0)  # a test that draws from the global `random` sees the same draws every check
                _judge(req, _compile_tests(req.get("setup", ""), req["tests"]), chan_fd, res_w)
            except BaseException as e:  # a judge failure: report it, never as a pass
                signal.setitimer(signal.ITIMER_REAL, 0)
                try:
                    os.write(
                        res_w,
                        (
                            json.dumps({"ev": "harness_error", "message": f"{type(e).__name__}: {e}"[:500]})
                            + "\n"
                        ).encode(),
                    )
                except BaseException:
                    pass
            finally:
                _pending_bytes.pop(chan_fd, None)
                for fd in (chan_fd, res_w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                for key in [k for k in linecache.cache if isinstance(k, str) and k.startswith("<test")]:
                    del linecache.cache[key]
                req = None
        code = 0
    except BaseException:
        pass
    finally:
        os._exit(code)
