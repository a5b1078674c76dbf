"""The sandbox fork server: warm, trusted, stdlib only. Started by :mod:`drift_envs.code.sandbox` as
``python -I -S -B _forkserver.py`` and spoken to in length-prefixed JSON frames on stdin/stdout.

Process tree of one check at the "full" isolation level (root, namespaces available)::

    server (root; own network namespace, own mount namespace: every mount read-only, a private
            tmpfs on /tmp for run directories, /proc with hidepid=2; a child subreaper)
      harness (one per check, forked warm: new session, limits, a fresh uid, then the model's code)
        anything the code starts: killed when the run ends (`kill(-1)` sent as that uid)

The server runs every check in one event loop (no thread, no per-check helper process): it feeds
the clock, reads the pipes, kills on timeout or output flood and builds the result.

The harness reports each test on a private result pipe. "Passed" needs a record for every test and,
after the last one, an echo of a per-run secret that the server writes to the harness only once
the harness has said it is done; so exiting early, printing a guessed marker or crashing never reads
as a pass. Nothing here trusts what comes out of the harness beyond parsing it with size caps.

This file must not import anything outside the standard library: it runs without site-packages.
"""

import ast
import builtins
import ctypes
import errno
import gc
import json
import linecache
import os
import reprlib
import resource
import secrets
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback

# ---------------------------------------------------------------------------------------------
# Linux constants (sched.h, mount.h, prctl.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1

# Each check runs as uid UID_BASE + (server pid << 8 | worker slot): pids are unique among live
# processes and a slot is reused only after its last run was swept, so two concurrent checks (from any
# number of servers) never share a uid, and RLIMIT_NPROC counts the processes of one run only.
UID_BASE = 1_500_000_000
RUN_ROOT = "/tmp"


SWEEP_SLOT = 255  # its uid is never a check's: the real uid the server sweeps with


def run_uid(server_pid: int, slot: int) -> int:
    """The uid of the checks of worker ``slot`` (0..254) of the server with pid ``server_pid``."""
    return UID_BASE + ((server_pid & 0x3FFFFF) << 8 | slot)


STATUSES = ("passed", "wrong_answer", "runtime_error", "timeout", "memory_limit", "syntax_error", "not_run")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


# ---------------------------------------------------------------------------------------------
# framing


def _read_exact(fd: int, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _send_frame(fd: int, obj: dict) -> None:
    data = json.dumps(obj).encode()
    payload = struct.pack(">I", len(data)) + data
    view = memoryview(payload)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# ---------------------------------------------------------------------------------------------
# isolation set-up (server level, once)


def _setup_namespaces() -> dict:
    """Private network namespace, and a mount namespace in which every mount is read-only."""
    _unshare(CLONE_NEWNET | CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            mounts.append((parts[4].replace("\\040", " "), parts[5].split(",")))
    flag_of = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
    failed = []
    for target, opts in mounts:
        if target.startswith("/proc"):
            continue  # each run mounts its own /proc
        extra = sum(flag_of.get(o, 0) for o in opts)
        try:
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | extra, None)
        except OSError:
            failed.append(target)
    if "/" in failed:
        raise OSError("could not make / read-only")
    # sandboxed uids see only their own processes; run directories live on a private tmpfs
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    _mount("tmpfs", RUN_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=512m,nr_inodes=200000,mode=0711")
    notes = []
    try:
        _expose_stdlib(os.path.dirname(os.__file__))
    except OSError as e:
        notes.append(f"the standard library could not be exposed to the sandbox uid ({e}): only the "
                     "modules the server preloads can be imported if it sits under a private directory")
    return {"read_only_failed": failed, "notes": notes}


def _expose_stdlib(stdlib: str) -> None:
    """Make the standard library importable by the sandbox uid even when it lives under a private
    directory such as /root (pyenv): hide that directory behind an empty tmpfs and bind the stdlib back
    at its own path. Everything else in the private directory stays invisible; site-packages is hidden."""
    blocked = None
    path = "/"
    for part in stdlib.strip("/").split("/"):
        path = os.path.join(path, part)
        if not os.stat(path).st_mode & 0o001:
            blocked = path
            break
    if blocked is not None:
        staging = os.path.join(RUN_ROOT, ".stdlib")
        os.mkdir(staging, 0o755)
        _mount(stdlib, staging, None, MS_BIND | MS_REC, None)
        _mount("tmpfs", blocked, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        os.makedirs(stdlib, 0o755, exist_ok=True)
        _mount(staging, stdlib, None, MS_BIND | MS_REC, None)
        _check(_libc.umount2(staging.encode(), 2), "umount staging")  # MNT_DETACH
        os.rmdir(staging)
        _mount(None, blocked, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    _mount(None, stdlib, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
    site = os.path.join(stdlib, "site-packages")
    if os.path.isdir(site):
        _mount("tmpfs", site, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=16k,mode=0755")


def _probe_isolation(mode: str) -> dict:
    iso = {"level": "basic", "uid_drop": False, "network": False, "processes": "process group",
           "read_only_fs": False, "private_tmp": False, "notes": []}
    if mode == "none":
        iso["notes"].append("isolation='none' requested")
        return iso
    if os.geteuid() != 0:
        iso["notes"].append("not root: no uid drop, no namespaces; RLIMIT_NPROC not applied")
        return iso
    iso["uid_drop"] = True
    iso["processes"] = "uid"
    try:
        extra = _setup_namespaces()
    except OSError as e:
        iso["notes"].append(f"namespaces unavailable ({e}); network and filesystem not isolated")
        return iso
    iso.update(level="full", network=True, read_only_fs=True, private_tmp=True)
    if extra["read_only_failed"]:
        iso["notes"].append(f"mounts left writable: {extra['read_only_failed']}")
    iso["notes"].extend(extra["notes"])
    return iso


# ---------------------------------------------------------------------------------------------
# tests: rewriting `assert a == b` so a failure can say what was returned and what was expected


class _AssertRewriter(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        t = node.test
        if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
            call = ast.Call(ast.Name("__drift_eq__", ast.Load()), [t.left, t.comparators[0]], [])
        else:
            call = ast.Call(ast.Name("__drift_true__", ast.Load()), [t], [])
        return ast.copy_location(ast.Expr(call), node)

    # assertions inside helper functions or lambdas keep their own meaning
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node


_compile_cache: dict = {}


def _compile_tests(setup: str, tests: list) -> tuple:
    key = (setup, tuple(tests))
    hit = _compile_cache.get(key)
    if hit is not None:
        return hit
    setup_code = compile(setup or "", "<test setup>", "exec")
    units = []
    for i, src in enumerate(tests):
        tree = ast.parse(src, f"<test {i}>")
        tree = ast.fix_missing_locations(_AssertRewriter().visit(tree))
        units.append(compile(tree, f"<test {i}>", "exec"))
    if len(_compile_cache) > 4096:
        _compile_cache.clear()
    _compile_cache[key] = (setup_code, units)
    return setup_code, units


# ---------------------------------------------------------------------------------------------
# the harness (runs inside the sandbox, after privileges are dropped)


class _TestTimeout(BaseException):
    """Raised by SIGALRM inside a test; a BaseException so `except Exception` in user code misses it."""


class _WrongAnswer(AssertionError):
    def __init__(self, actual: object, expected: object, has_values: bool) -> None:
        super().__init__()
        self.actual, self.expected, self.has_values = actual, expected, has_values


_PLAIN = (type(None), bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset,
          range, slice)
# methods whose override would let a returned object lie in a comparison or a conversion
_LYING_SLOTS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__bool__", "__len__",
                "__iter__", "__getitem__", "__contains__", "__abs__", "__sub__", "__rsub__", "__add__",
                "__radd__", "__float__", "__int__", "__index__", "__round__", "__neg__", "__mul__", "__rmul__",
                "__truediv__", "__rtruediv__", "__mod__", "__and__", "__or__", "__xor__", "__reversed__",
                "keys", "values", "items", "__getattribute__", "__getattr__")


def _make_plain_check():
    """A checker for return values, built from pristine builtins before any user code runs.

    It returns None for a value made only of built-in value types (or subclasses such as namedtuples
    that override none of the methods a comparison uses), else the first offending type.
    """
    _type, _isinstance, _getattr, _id = type, isinstance, getattr, id
    mro_of = type.__dict__["__mro__"].__get__
    dict_items, seqs = dict.items, (list, tuple, set, frozenset)
    ok = set(_PLAIN)
    for modname, names in (("decimal", ("Decimal",)), ("fractions", ("Fraction",)),
                           ("collections", ("OrderedDict", "defaultdict", "Counter", "deque")),
                           ("re", ("Match", "Pattern"))):
        mod = sys.modules.get(modname)
        for n in names:
            if mod is not None and hasattr(mod, n):
                ok.add(_getattr(mod, n))
    deque = _getattr(sys.modules.get("collections"), "deque", list)

    dict_of = type.__dict__["__dict__"].__get__

    def lookup(t, name):
        for c in mro_of(t):
            d = dict_of(c)
            if name in d:
                return d[name]
        return None

    def check(value, budget=200_000):
        stack, seen = [value], set()
        while stack:
            budget -= 1
            if budget < 0:
                return None
            v = stack.pop()
            t = _type(v)
            if t not in ok:
                base = next((b for b in mro_of(t) if b in ok), None)
                if base is None:
                    return t
                for slot in _LYING_SLOTS:
                    if lookup(t, slot) is not lookup(base, slot):
                        return t
            if _isinstance(v, dict):
                if _id(v) not in seen:
                    seen.add(_id(v))
                    for k, x in dict_items(v):
                        stack.append(k)
                        stack.append(x)
            elif _isinstance(v, seqs) or t is deque:
                if _id(v) not in seen:
                    seen.add(_id(v))
                    stack.extend(v)
        return None

    return check


_PREPARED: dict = {}  # built once in the server, before any check: inherited by every harness


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxtuple = 300, 300, 30, 30
    short.maxdict, short.maxset, short.maxlevel, short.maxlong = 20, 20, 4, 300
    return short


def _harness(req: dict, compiled: tuple, res_w: int, sec_r: int) -> None:  # noqa: C901
    # pristine references, taken before any untrusted code runs
    write, read, perf = os.write, os.read, time.perf_counter
    getpid, _exit = os.getpid, os._exit
    harness_pid = getpid()
    _repr, _isinstance, _exec, _compile, _len, _str = repr, isinstance, exec, compile, len, str
    _BaseException, _MemoryError, _AssertionError, _SyntaxError = (BaseException, MemoryError, AssertionError,
                                                                  SyntaxError)
    setitimer, ITIMER_REAL = signal.setitimer, signal.ITIMER_REAL
    extract_tb, format_list = traceback.extract_tb, traceback.format_list
    srepr = _short_repr().repr
    plain_type = _PREPARED.get("plain_check") or _make_plain_check()
    code_text, entry_point = req["code"], req.get("entry_point")
    test_timeout = float(req["limits"]["test_timeout_s"])
    setup_code, units = compiled

    def emit(*recs):
        if getpid() != harness_pid:
            # a process the code forked came back into the harness: only the harness reports
            _exit(0)
        # one write for several records: every write wakes the server, so fewer is faster
        data = "".join([_repr(rec) + "\n" for rec in recs]).encode("utf-8", "replace")
        while data:
            n = write(res_w, data)
            data = data[n:]

    def trimmed_tb(exc):
        # register the sources (only now, on a failure) so the traceback can show the failing lines
        cache = linecache.cache
        cache["<solution>"] = (_len(code_text), None, code_text.splitlines(True), "<solution>")
        for i, src in enumerate(req["tests"]):
            cache[f"<test {i}>"] = (_len(src), None, src.splitlines(True), f"<test {i}>")
        frames = [f for f in extract_tb(exc.__traceback__)
                  if f.filename.startswith("<solution") or f.filename.startswith("<test")]
        text = "".join(format_list(frames[-6:]))
        if _isinstance(exc, _WrongAnswer):
            return (text + "AssertionError")[-1500:]
        try:
            msg = type(exc).__name__ + (": " + _str(exc) if _str(exc) else "")
        except _BaseException:
            msg = type(exc).__name__
        text = (text + msg)[-1500:]
        return text

    def classify(exc):
        if _isinstance(exc, _TestTimeout):
            return "timeout"
        if _isinstance(exc, _MemoryError):
            return "memory_limit"
        if _isinstance(exc, _AssertionError):
            return "wrong_answer"
        return "runtime_error"

    def on_alarm(signum, frame):
        raise _TestTimeout()

    signal.signal(signal.SIGALRM, on_alarm)

    # 1. the solution
    try:
        sol = _compile(code_text, "<solution>", "exec")
    except (_SyntaxError, ValueError) as e:
        emit({"ev": "load", "status": "syntax_error",
              "message": f"{type(e).__name__}: {getattr(e, 'msg', _str(e))} (line {getattr(e, 'lineno', '?')})",
              "line": getattr(e, "lineno", None), "text": (getattr(e, "text", None) or "")[:300]})
        return
    user_ns = {"__name__": "__main__", "__builtins__": builtins}
    try:
        if req.get("prelude"):
            _exec(_compile(req["prelude"], "<prelude>", "exec"), user_ns)
        setitimer(ITIMER_REAL, test_timeout, 0.05)
        try:
            _exec(sol, user_ns)
        finally:
            setitimer(ITIMER_REAL, 0)
    except _BaseException as e:
        emit({"ev": "load", "status": classify(e) if not _isinstance(e, _AssertionError) else "runtime_error",
              "message": "the code raised while being defined", "traceback": trimmed_tb(e)})
        return
    fn = user_ns.get(entry_point) if entry_point else None
    if entry_point and not callable(fn):
        emit({"ev": "load", "status": "runtime_error",
              "message": f"the code defines no function named {entry_point!r}", "traceback": ""})
        return

    def guarded(*args, **kwargs):
        out = fn(*args, **kwargs)
        bad = plain_type(out)
        if bad is not None:
            raise TypeError(f"{entry_point} returned an object of type {bad.__name__}; only built-in value "
                            "types (numbers, strings, lists, tuples, dicts, sets, None) are accepted")
        return out

    def drift_eq(actual, expected):
        if not (actual == expected):
            raise _WrongAnswer(actual, expected, True)

    def drift_true(value):
        if not value:
            raise _WrongAnswer(value, None, False)

    test_ns = dict(user_ns)
    if entry_point:
        guarded.__name__ = entry_point
        test_ns[entry_point] = guarded
        test_ns["candidate"] = guarded
    test_ns["__drift_eq__"] = drift_eq
    test_ns["__drift_true__"] = drift_true
    try:
        _exec(setup_code, test_ns)
    except _BaseException as e:
        emit({"ev": "load", "status": "runtime_error", "message": "the test set-up code raised",
              "traceback": trimmed_tb(e)})
        return
    # 2. the tests, one record each; "start i" is on the pipe before test i runs
    pending = [{"ev": "load", "status": "ok"}]
    for i, unit in enumerate(units):
        pending.append({"ev": "start", "i": i})
        emit(*pending)
        pending = []
        t0 = perf()
        rec = {"ev": "result", "i": i, "status": "passed"}
        try:
            setitimer(ITIMER_REAL, test_timeout, 0.05)
            try:
                _exec(unit, test_ns)
            finally:
                setitimer(ITIMER_REAL, 0)
        except _BaseException as e:
            status = classify(e)
            rec["status"] = status
            if _isinstance(e, _WrongAnswer):
                if e.has_values:
                    rec["actual"] = srepr(e.actual)
                    rec["expected"] = srepr(e.expected)
                else:
                    rec["actual"] = srepr(e.actual)
                rec["message"] = "wrong answer"
            elif status == "timeout":
                rec["message"] = f"the test ran longer than {test_timeout:g} s"
            elif status == "memory_limit":
                rec["message"] = "out of memory (MemoryError)"
            else:
                try:
                    rec["message"] = type(e).__name__ + (": " + _str(e) if _str(e) else "")
                except _BaseException:
                    rec["message"] = type(e).__name__
                rec["message"] = rec["message"][:500]
            rec["traceback"] = trimmed_tb(e)
        rec["duration_s"] = perf() - t0
        pending.append(rec)
    pending.append({"ev": "done", "n": _len(units)})
    emit(*pending)
    # the secret arrives only now; echo it so the server knows the harness itself got here
    got = b""
    while _len(got) < 32:
        chunk = read(sec_r, 64)
        if not chunk:
            break
        got += chunk
    emit({"ev": "fin", "secret": got.decode("ascii", "replace")})


# ---------------------------------------------------------------------------------------------
# one run: the sandboxed child, and its bookkeeping in the server


def _set_limits(lim: dict, drop_uid: bool) -> None:
    mb = 1024 * 1024
    cpu = int(lim["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = int(lim["memory_mb"]) * mb
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    fsize = int(lim["file_mb"]) * mb
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(lim["open_files"]), int(lim["open_files"])))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if drop_uid:
        resource.setrlimit(resource.RLIMIT_NPROC, (int(lim["processes"]), int(lim["processes"])))


def _child(req: dict, compiled: tuple, iso: dict, uid: int, workdir: str,
           out_w: int, res_w: int, sec_r: int) -> None:
    code = 70
    server_pid = os.getppid()
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        prev = 3
        for fd in sorted((res_w, sec_r)):
            os.closerange(prev, fd)
            prev = fd + 1
        os.closerange(prev, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        lim = req["limits"]
        os.chdir(workdir)
        _set_limits(lim, iso["uid_drop"])
        if iso["uid_drop"]:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            if os.getresuid() != (uid, uid, uid):
                raise OSError("privilege drop failed")
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # set after the uid change, which clears it
        if os.getppid() != server_pid:
            raise OSError("the server died while the run was starting")
        os.environ.clear()
        os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
                           "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"})
        sys.argv = ["solution.py"]
        _harness(req, compiled, res_w, sec_r)
        code = 0
    except BaseException as e:  # a harness failure: report it, never as a pass
        try:
            os.write(res_w, (repr({"ev": "harness_error", "message": f"{type(e).__name__}: {e}"[:500]}) + "\n")
                     .encode())
        except BaseException:
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


_ACTIVE_HARNESSES: set = set()  # pids of the harnesses still running (never swept as orphans)


def _direct_children() -> list | None:
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return None


def _is_live_process_of(pid: int, uid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        return int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith(("Z", "X"))
    except (KeyError, ValueError, IndexError):
        return False


def _sweep_uid(uid: int) -> None:
    """SIGKILL every process a finished run left behind (its daemons, a fork bomb's children).

    The server is a child subreaper: once a run's harness is gone, everything it started is a child
    of the server or a descendant of one, so a glance at the server's own children tells whether
    anything of the run's uid is left (the common case: nothing, and no cost). If so, the server sends
    ``kill(-1, SIGKILL)`` with effective uid = the run's uid, which reaches exactly that uid's
    processes at once (fork bombs included), and real uid = a uid no process has (the reserved
    slot 255), so that none of those processes may signal the server even then; its saved uid 0 lets
    it take root back right after.
    """
    if uid < UID_BASE:
        raise RuntimeError(f"refusing to sweep uid {uid}: not a sandbox uid")
    nobody = run_uid(os.getpid(), SWEEP_SLOT)
    for _ in range(50):
        children = _direct_children()
        if children is not None and not any(
            c not in _ACTIVE_HARNESSES and _is_live_process_of(c, uid) for c in children
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
        time.sleep(0.001)  # let the killed die before looking again


class _Run:
    """One check in flight: the child, its pipes, its clock, and what it has reported so far."""

    def __init__(self, req: dict, compiled: tuple, iso: dict, slot: int) -> None:
        self.req, self.iso, self.slot = req, iso, slot
        self.lim = req["limits"]
        self.uid = run_uid(os.getpid(), slot)
        if iso["level"] == "full":
            self.workdir = os.path.join(RUN_ROOT, f"run-{slot}")
            try:
                os.mkdir(self.workdir, 0o700)
            except FileExistsError:  # left by a run whose clean-up failed
                shutil.rmtree(self.workdir, ignore_errors=True)
                os.mkdir(self.workdir, 0o700)
        else:
            self.workdir = tempfile.mkdtemp(prefix="drift-sandbox-")
        if iso["uid_drop"]:
            os.chown(self.workdir, self.uid, self.uid)
        os.chmod(self.workdir, 0o700)
        out_r, out_w = os.pipe()
        res_r, res_w = os.pipe()
        sec_r, sec_w = os.pipe()
        self.secret = secrets.token_hex(16)
        self.t_start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(out_r)
            os.close(res_r)
            os.close(sec_w)
            _child(req, compiled, iso, self.uid, self.workdir, out_w, res_w, sec_r)
        os.close(out_w)
        os.close(res_w)
        os.close(sec_r)
        for fd in (out_r, res_r):
            os.set_blocking(fd, False)
        self.pid, self.out_r, self.res_r, self.sec_w = pid, out_r, res_r, sec_w
        self.deadline = self.t_start + float(self.lim["timeout_s"])
        self.grace_end = float("inf")
        self.open_fds = {out_r, res_r}
        self.out_tail = bytearray()
        self.out_total = 0
        self.res_buf = bytearray()
        self.res_bytes = 0
        self.records: list = []
        self.fin_ok = False
        self.kill_reason = None
        self.exit_status = None
        self.cpu_s = 0.0

    def kill(self, reason: str) -> None:
        if self.kill_reason is None:
            self.kill_reason = reason
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.sweep()

    def sweep(self) -> None:
        if self.iso["uid_drop"] and self.exit_status is not None:
            _sweep_uid(self.uid)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def on_exit(self, status: int, cpu_s: float) -> None:
        self.exit_status = status
        self.cpu_s = cpu_s
        # the run is over: nothing it started may outlive it
        self.sweep()
        # once the strays are dead the pipes reach EOF; a process out of reach (basic level) may hold
        # them open, so stop waiting for it after a short grace
        self.grace_end = time.monotonic() + 0.25

    def on_readable(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.open_fds.discard(fd)
            return
        if fd == self.out_r:
            self.out_total += len(chunk)
            self.out_tail += chunk
            if len(self.out_tail) > 4096:
                del self.out_tail[: len(self.out_tail) - 4096]
            if self.out_total > int(self.lim["max_output_bytes"]):
                self.kill("output_limit")
            return
        self.res_bytes += len(chunk)
        if self.res_bytes > 8 * 1024 * 1024:
            self.kill("output_limit")
            return
        self.res_buf += chunk
        while b"\n" in self.res_buf:
            idx = self.res_buf.index(b"\n")
            line = bytes(self.res_buf[:idx])
            del self.res_buf[: idx + 1]
            self._record(line)
        if len(self.res_buf) > 1 << 20:
            self.res_buf.clear()

    def _record(self, line: bytes) -> None:
        try:
            rec = ast.literal_eval(line.decode("utf-8", "replace"))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return
        if not isinstance(rec, dict):
            return
        if rec.get("ev") == "done":
            try:
                os.write(self.sec_w, self.secret.encode())
            except OSError:
                pass
        elif rec.get("ev") == "fin":
            self.fin_ok = rec.get("secret") == self.secret
            return
        self.records.append(rec)

    def tick(self, now: float) -> None:
        if self.exit_status is None and now >= self.deadline:
            self.kill("timeout")
            self.deadline = float("inf")

    def next_wakeup(self) -> float:
        return self.deadline if self.exit_status is None else self.grace_end

    def done(self, now: float) -> bool:
        return self.exit_status is not None and (not self.open_fds or now >= self.grace_end)

    def finish(self) -> dict:
        self.sweep()
        for fd in (self.out_r, self.res_r, self.sec_w):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.rmdir(self.workdir)  # the common case: the code wrote nothing
        except OSError:
            shutil.rmtree(self.workdir, ignore_errors=True)
        result = _build_result(self.req, len(self.req["tests"]), self.records, self.fin_ok, self.kill_reason,
                               self.exit_status, self.out_tail, self.out_total, time.monotonic() - self.t_start,
                               self.cpu_s)
        return result


def _build_result(req, n_tests, records, fin_ok, kill_reason, exit_status, out_tail, out_total, duration,
                  cpu_s=0.0):
    lim = req["limits"]
    tests = [{"index": i, "status": "not_run", "source": req["tests"][i]} for i in range(n_tests)]
    load = None
    started = None
    harness_error = None
    for rec in records:
        ev = rec.get("ev")
        if ev == "load":
            load = rec
        elif ev == "start" and isinstance(rec.get("i"), int) and 0 <= rec["i"] < n_tests:
            started = rec["i"]
        elif ev == "result" and isinstance(rec.get("i"), int) and 0 <= rec["i"] < n_tests:
            t = tests[rec["i"]]
            for k in ("status", "message", "actual", "expected", "traceback", "duration_s"):
                if k in rec:
                    v = rec[k]
                    t[k] = v[:2000] if isinstance(v, str) else v
            if t["status"] not in STATUSES:
                t["status"] = "runtime_error"
            if started == rec["i"]:
                started = None
        elif ev == "harness_error":
            harness_error = str(rec.get("message"))[:500]
    if exit_status is not None and os.WIFSIGNALED(exit_status):
        sig = os.WTERMSIG(exit_status)
        exit_desc = f"killed by {_signal_name(sig)}"
    elif exit_status is not None:
        sig = None
        exit_desc = f"exit code {os.WEXITSTATUS(exit_status)}"
    else:
        sig, exit_desc = None, "unknown"
    # what ended the process, if it ended before the protocol completed
    if kill_reason == "timeout":
        fatal_status, fatal_msg = "timeout", f"the run exceeded its time limit of {float(lim['timeout_s']):g} s"
    elif kill_reason == "output_limit":
        fatal_status = "runtime_error"
        fatal_msg = f"output limit exceeded ({out_total} bytes > {int(lim['max_output_bytes'])})"
    elif sig in (signal.SIGXCPU, signal.SIGKILL) and cpu_s >= int(lim["cpu_s"]) - 0.05:
        fatal_status, fatal_msg = "timeout", f"the CPU time limit of {int(lim['cpu_s'])} s was reached"
    elif sig is not None:
        fatal_status, fatal_msg = "runtime_error", f"the process crashed ({exit_desc})"
    else:
        fatal_status, fatal_msg = "runtime_error", f"the process ended before the tests finished ({exit_desc})"
    if harness_error:
        fatal_status, fatal_msg = "runtime_error", f"the sandbox harness failed: {harness_error}"
    error = None
    if load is None or load.get("status") != "ok":
        if load is not None:
            status = load.get("status") if load.get("status") in STATUSES else "runtime_error"
            msg = str(load.get("message", ""))[:500]
            error = {"status": status, "message": msg, "traceback": str(load.get("traceback", ""))[:2000],
                     "line": load.get("line"), "text": load.get("text")}
        else:
            status, msg = fatal_status, fatal_msg
            error = {"status": status, "message": msg, "traceback": ""}
        for t in tests:
            t["status"] = error["status"]
            t["message"] = error["message"]
    else:
        if started is not None:
            tests[started]["status"] = fatal_status
            tests[started]["message"] = fatal_msg
        elif not fin_ok and any(t["status"] == "not_run" for t in tests):
            error = {"status": fatal_status, "message": fatal_msg, "traceback": ""}
    all_ran = all(t["status"] != "not_run" for t in tests)
    passed = bool(fin_ok and all_ran and all(t["status"] == "passed" for t in tests) and error is None)
    if not passed and fin_ok is False and all_ran and all(t["status"] == "passed" for t in tests):
        # every record says passed but the harness never completed the handshake: not a pass
        error = {"status": fatal_status, "message": fatal_msg + " (no completion handshake)", "traceback": ""}
    if passed:
        overall = "passed"
    elif error is not None:
        overall = error["status"]
    else:
        overall = next((t["status"] for t in tests if t["status"] != "passed"), "runtime_error")
    return {
        "passed": passed,
        "status": overall,
        "tests": tests,
        "error": error,
        "stdout_tail": bytes(out_tail).decode("utf-8", "replace"),
        "stdout_bytes": out_total,
        "exit": exit_desc,
        "duration_s": duration,
        "cpu_s": cpu_s,
    }


# ---------------------------------------------------------------------------------------------
# the server loop


_PRELOAD = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
            "random", "statistics", "fractions", "decimal", "hashlib", "copy", "operator", "datetime",
            "json", "dataclasses", "array", "cmath", "numbers", "textwrap", "unicodedata", "linecache", "io",
            "struct", "enum", "contextlib", "queue", "time", "abc", "types", "pprint", "fnmatch")


def main() -> None:
    """Serve check requests until stdin closes."""
    inp, outp = 0, 1
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
    max_parallel = min(SWEEP_SLOT, max(1, int(config.get("max_parallel", os.cpu_count() or 1))))
    iso = _probe_isolation(config.get("isolation", "auto"))
    for name in _PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    _PREPARED["plain_check"] = _make_plain_check()
    # a check's fds 0, 1 and 2 are /dev/null and its output pipe; the server's own sys.std* objects
    # already wrap those fds, so a check uses them as they are: line-buffered, so that what was
    # printed before a crash or a kill is still seen
    sys.stdout.reconfigure(line_buffering=True, errors="replace")
    sys.stderr.reconfigure(line_buffering=True, errors="replace")
    # what exists now is shared by every check: keep the collector from walking (and so copying) it
    gc.collect()
    gc.freeze()
    _send_frame(outp, {"ready": True, "isolation": iso, "pid": os.getpid()})

    # orphans of a run are reparented here (not to the machine's init) and reaped below
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    pending: list = []
    runs: dict = {}  # pid -> _Run
    free_slots = list(range(max_parallel))
    stdin_open = True
    while stdin_open or pending or runs:
        while pending and free_slots:
            req = pending.pop(0)
            try:
                compiled = _compile_tests(req.get("setup", ""), req["tests"])
            except (SyntaxError, ValueError) as e:
                _send_frame(outp, {"id": req["id"], "error": f"a test does not compile: {e}"})
                continue
            run = _Run(req, compiled, iso, free_slots.pop())
            runs[run.pid] = run
            _ACTIVE_HARNESSES.add(run.pid)
        now = time.monotonic()
        watch = [wake_r] + ([inp] if stdin_open else [])
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
            elif fd == inp:
                try:
                    n = struct.unpack(">I", _read_exact(inp, 4))[0]
                    pending.append(json.loads(_read_exact(inp, n)))
                except EOFError:
                    stdin_open = False
            elif fd in fd_owner:
                fd_owner[fd].on_readable(fd)
        while True:  # reap: our runs, and any orphan reparented to us
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in runs and runs[pid].exit_status is None:
                _ACTIVE_HARNESSES.discard(pid)
                runs[pid].on_exit(status, usage.ru_utime + usage.ru_stime)
        now = time.monotonic()
        for pid, run in list(runs.items()):
            run.tick(now)
            if run.done(now):
                del runs[pid]
                result = run.finish()
                free_slots.append(run.slot)
                _send_frame(outp, {"id": run.req["id"], "result": result})


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
