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

This file must not import anything outside the standard library: it runs without site-packages.
"""

import ast
import builtins
import collections
import ctypes
import errno
import gc
import json
import linecache
import os
import reprlib
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
import types

# ---------------------------------------------------------------------------------------------
# Linux constants (sched.h, mount.h, prctl.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080  # unshare only (in clone's flags the bit is part of the exit signal)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

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
# processes waited on a run queue for a CPU another process held (``/proc/<pid>/schedstat``, field 2,
# nanoseconds), so a starved check is not a slow one. Time a process spends blocked (``sleep``, a
# pipe, a lock) is its own: a sleeping candidate still times out at its limit. Waiting for a CPU
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


_libc = ctypes.CDLL(None, use_errno=True)

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    bool,
    bytearray,
    bytes,
    callable,
    complex,
    dict,
    float,
    frozenset,
    getattr,
    id,
    int,
    isinstance,
    len,
    list,
    range,
    reversed,
    set,
    setattr,
    str,
    tuple,
    type,
    zip,
)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(
        _libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}"
    )


def _prctl(option: int, arg: int) -> None:
    _libc.prctl(option, arg, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# the candidate's system-call filter (seccomp): what no honest solution needs and what would let
# a check leave something behind or escape its limits

_ARCH = {  # machine -> (AUDIT_ARCH_*, syscall numbers, lowest number that is not this ABI's)
    "x86_64": (
        0xC000003E,
        {
            "clone": 56,
            "unshare": 272,
            "clone3": 435,
            "setns": 308,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "socket": 41,
            "socketpair": 53,
            "bind": 49,
            "listen": 50,
            "connect": 42,
            "io_uring_setup": 425,
            "userfaultfd": 323,
            "perf_event_open": 298,
            "bpf": 321,
            "pivot_root": 155,
            "mount": 165,
            "chroot": 161,
            "setpriority": 141,
            "sched_setparam": 142,
            "sched_setscheduler": 144,
            "sched_setattr": 314,
            "sched_setaffinity": 203,
        },
        0x40000000,  # the x32 ABI's numbers: refused (they would bypass these checks)
    ),
    "aarch64": (
        0xC00000B7,
        {
            "clone": 220,
            "unshare": 97,
            "clone3": 435,
            "setns": 268,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "socket": 198,
            "socketpair": 199,
            "bind": 200,
            "listen": 201,
            "connect": 203,
            "io_uring_setup": 425,
            "userfaultfd": 282,
            "perf_event_open": 241,
            "bpf": 280,
            "pivot_root": 41,
            "mount": 40,
            "chroot": 51,
            "setpriority": 140,
            "sched_setparam": 118,
            "sched_setscheduler": 119,
            "sched_setattr": 274,
            "sched_setaffinity": 122,
        },
        None,
    ),
}
#: refused outright with EPERM: kernel keyrings (a key outlives its process, and its uid's keyring
#: would carry it to the next check of the slot), named sockets (an abstract unix socket kept alive by
#: a descriptor in flight outlives the check), namespaces, io_uring, userfaultfd, perf, bpf, and a
#: lower priority, an idle scheduling class or fewer CPUs (a candidate that made itself wait on a run
#: queue, or crowded its own busy children onto its one CPU, would stretch its own time past the
#: wall-clock backstop: an infinite loop undecided, not a timeout)
_DENIED = (
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "socket",
    "socketpair",
    "bind",
    "listen",
    "connect",
    "io_uring_setup",
    "userfaultfd",
    "perf_event_open",
    "bpf",
    "pivot_root",
    "mount",
    "chroot",
    "setpriority",
    "sched_setparam",
    "sched_setscheduler",
    "sched_setattr",
    "sched_setaffinity",
)
_NS_FLAGS = (
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
)


def _seccomp_program() -> bytes | None:
    """The candidate's BPF filter for this machine (None where the architecture is not known here).

    Refused: every call in ``_DENIED``; ``unshare`` and ``clone`` asking for any new namespace (a user
    namespace would give the code root over a private IPC namespace with default limits and a tmpfs
    of its own, past ``disk_mb``); ``clone3`` (its flags sit behind a pointer the filter cannot read:
    ENOSYS, so the C library falls back to ``clone``); calls of another ABI; anything for another
    architecture kills the process."""
    import platform

    arch = _ARCH.get(platform.machine())
    if arch is None:
        return None
    audit, nr, foreign = arch
    eperm, enosys = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    allow, kill = 0x7FFF0000, 0x80000000
    prog: list = []  # (code, jt, jf, k); jumps are resolved to labels below

    def op(code, k=0, jt=0, jf=0):
        prog.append([code, jt, jf, k])

    LD, JEQ, JSET, JGE, RET = 0x20, 0x15, 0x45, 0x35, 0x06
    op(LD, 4)  # seccomp_data.arch
    op(JEQ, audit, 1, 0)
    op(RET, kill)
    op(LD, 0)  # seccomp_data.nr
    if foreign is not None:
        op(JGE, foreign, 0, 1)
        op(RET, enosys)
    op(JEQ, nr["clone3"], 0, 1)
    op(RET, enosys)
    for name in _DENIED:
        op(JEQ, nr[name], 0, 1)
        op(RET, eperm)
    for name, mask in (("unshare", _NS_FLAGS | CLONE_NEWTIME), ("clone", _NS_FLAGS)):
        op(JEQ, nr[name], 0, 4)
        op(LD, 16)  # the low 32 bits of args[0] (little-endian): the flags
        op(JSET, mask, 0, 1)
        op(RET, eperm)
        op(RET, allow)
    op(RET, allow)
    return b"".join(struct.pack("=HBBI", c, jt, jf, k) for c, jt, jf, k in prog)


def _arch_numbers() -> dict:
    import platform

    return _ARCH.get(platform.machine(), (0, {}, None))[1]


_ARCH_NR = _arch_numbers()


def _install_seccomp(program: bytes) -> None:
    """Load ``program`` as this process's filter (no_new_privs must be set; kept across fork)."""

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    buf = ctypes.create_string_buffer(program, len(program))
    prog = _Prog(len(program) // 8, ctypes.cast(buf, ctypes.c_char_p))
    _check(
        _libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), 0, 0), "seccomp"
    )


# ---------------------------------------------------------------------------------------------
# the candidate's view of the filesystem: a root of its own holding only the interpreter


def _elf_deps(path: str) -> tuple[list, list]:
    """``(DT_NEEDED sonames, DT_RUNPATH/DT_RPATH dirs)`` of a 64-bit little-endian ELF file (empty
    lists for anything else). Reads the headers and the dynamic section only."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return [], []
            phoff = struct.unpack_from("<Q", head, 32)[0]
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            loads, dynamic = [], None
            for i in range(phnum):
                p_type, _fl, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from(
                    "<IIQQQQ", table, i * phentsize
                )
                if p_type == 1:
                    loads.append((p_vaddr, p_offset, p_filesz))
                elif p_type == 2:
                    dynamic = (p_offset, p_filesz)
            if dynamic is None:
                return [], []
            f.seek(dynamic[0])
            raw = f.read(dynamic[1])
            entries = []
            for off in range(0, len(raw) - 15, 16):
                tag, val = struct.unpack_from("<qQ", raw, off)
                if tag == 0:
                    break
                entries.append((tag, val))
            strtab = next((v for t, v in entries if t == 5), None)
            strsz = next((v for t, v in entries if t == 10), 0)
            base = next(
                (o + (strtab - va) for va, o, sz in loads if strtab is not None and va <= strtab < va + sz),
                None,
            )
            if base is None or not 0 < strsz < 1 << 24:
                return [], []
            f.seek(base)
            strings = f.read(strsz)
    except (OSError, struct.error):
        return [], []

    def string(off):
        end = strings.find(b"\0", off)
        return strings[off : end if end >= 0 else len(strings)].decode("utf-8", "replace")

    needed = [string(v) for t, v in entries if t == 1]
    origin = os.path.dirname(os.path.realpath(path))
    runpath = [
        d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)
        for t, v in entries
        if t in (15, 29)
        for d in string(v).split(":")
        if d
    ]
    return needed, runpath


def _library_dirs() -> list:
    """Where the dynamic loader looks by default, plus the directories of what this process maps."""
    dirs = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split(None, 5)[-1].strip()
                if ".so" in path and path.startswith("/"):
                    dirs.append(os.path.dirname(path))
    except OSError:
        pass
    import platform

    multiarch = f"{platform.machine()}-linux-gnu"
    for d in (f"/lib/{multiarch}", f"/usr/lib/{multiarch}", "/lib64", "/usr/lib64", "/lib", "/usr/lib"):
        dirs.append(d)
    return list(dict.fromkeys(dirs))


def _interpreter_files(stdlib: str) -> list:
    """The shared libraries that extension modules of the standard library would load and that this
    process has not loaded yet (found as the loader would)."""
    roots = [os.path.realpath(sys.executable)]
    dynload = os.path.join(stdlib, "lib-dynload")
    if os.path.isdir(dynload):  # (tkinter needs a display, and brings a dozen X11 libraries)
        roots += [
            os.path.join(dynload, n)
            for n in sorted(os.listdir(dynload))
            if n.endswith(".so") and not n.startswith("_tkinter")
        ]
    default_dirs = _library_dirs()
    found: dict = {}
    todo = list(roots)
    seen = set(todo)
    while todo:
        path = todo.pop()
        needed, runpath = _elf_deps(path)
        for soname in needed:
            if soname in found:
                continue
            for d in (*runpath, *default_dirs):
                candidate = os.path.join(d, soname)
                if os.path.isfile(candidate):
                    found[soname] = candidate
                    if candidate not in seen:
                        seen.add(candidate)
                        todo.append(candidate)
                    break
    # what this process has loaded already is found by name when an extension module asks for it
    loaded = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split(None, 5)[-1].strip()
                if path.startswith("/"):
                    loaded.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted({p for p in found.values() if os.path.realpath(p) not in loaded})


#: the device nodes a candidate sees: (name, minor) of the memory devices (major 1)
_DEVICES = (("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9))
_VIEW_ROOT = "/tmp/.drift-root"


def _enter_minimal_root(stdlib: str, files: list) -> None:
    """Make this process's root (and its children's) a fresh read-only tmpfs that holds only the
    standard library (site-packages hidden), copies of the shared libraries its extension modules
    load (those not already loaded), a few device nodes, a /proc that shows a uid only its own
    processes, and empty /tmp and /dev/shm (each candidate mounts its own there). The host's tree is
    detached, not hidden: nothing of it can be reached by path. Few mounts on purpose: each
    candidate's own mount namespace copies them, and tears them down, once per check."""
    _unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    root = _VIEW_ROOT
    os.makedirs(root, 0o755, exist_ok=True)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID, "size=256m,nr_inodes=16384,mode=0755")
    os.makedirs(root + stdlib, 0o755)
    _mount(stdlib, root + stdlib, None, MS_BIND | MS_REC, None)
    _mount(None, root + stdlib, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    site = root + os.path.join(stdlib, "site-packages")
    if os.path.isdir(site):
        _mount("tmpfs", site, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=16k,mode=0755")
    for path in files:
        if not os.path.isfile(path) or os.path.realpath(path).startswith(stdlib + os.sep):
            continue
        os.makedirs(os.path.dirname(root + path), 0o755, exist_ok=True)
        shutil.copyfile(path, root + path)
        os.chmod(root + path, 0o755)
    os.makedirs(root + "/dev/shm", 0o755)
    for name, minor in _DEVICES:
        try:
            os.mknod(f"{root}/dev/{name}", 0o20666, os.makedev(1, minor))
            os.chmod(f"{root}/dev/{name}", 0o666)
        except OSError:  # no mknod here: the host's node, bound
            if os.path.exists(f"/dev/{name}"):
                open(f"{root}/dev/{name}", "a").close()
                _mount(f"/dev/{name}", f"{root}/dev/{name}", None, MS_BIND, None)
    os.makedirs(root + "/proc", 0o555)
    # read-only: no write to /proc/self/autogroup (a lower priority for its session, see _DENIED)
    _mount("proc", root + "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    os.makedirs(root + "/tmp", 0o755)
    os.chdir(root)
    _check(_libc.syscall(ctypes.c_long(_PIVOT_ROOT), b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "detach the host's root")
    os.chdir("/")
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID, None)


def _pivot_root_nr() -> int:
    import platform

    return {"x86_64": 155, "aarch64": 41}.get(platform.machine(), -1)


_PIVOT_ROOT = _pivot_root_nr()


# ---------------------------------------------------------------------------------------------
# limits per check, not per process: one cgroup per worker slot (v2, else the v1 memory and pids
# controllers), its limits set before each check, every process of the check inside it


class _Cgroups:
    """The worker slots' cgroups. ``kind``: ``"v2"``, ``"v1"`` or None (``why`` says why not)."""

    def __init__(self, slots: int) -> None:
        self.kind = None
        self.why = ""
        self.dirs: list = []  # (name, base directory fd) of each directory made (removed at exit)
        self.base_fds: list = []
        self.procs: list = []  # per slot: fds of the cgroup.procs files a candidate joins by
        self.mem_fd: list = []
        self.swap_fd: list = []
        self.pids_fd: list = []
        self.oom_fd: list = []
        self.empty_fd: list = []  # v1: memory.force_empty, to drop what an earlier check left charged
        self.cpu_fd: list = []  # the CPU time of all the slot's processes (v2 cpu.stat, v1 cpuacct.usage)
        self.written: list = []
        try:
            self._setup(slots)
        except OSError as e:
            self.why = f"{e}"
            self.close()
            self.kind = None

    @staticmethod
    def _mounts() -> tuple:
        v2, v1 = None, {}
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                sep = parts.index("-")
                fstype, opts = parts[sep + 1], parts[sep + 3].split(",")
                if fstype == "cgroup2" and v2 is None:
                    v2 = (parts[4], parts[3])
                elif fstype == "cgroup":
                    for ctl in ("memory", "pids", "cpuacct"):
                        if ctl in opts:
                            v1[ctl] = (parts[4], parts[3])
        paths = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                hid, ctls, path = line.rstrip("\n").split(":", 2)
                for ctl in ctls.split(",") if ctls else ["" if hid == "0" else ctls]:
                    paths[ctl] = path
        return v2, v1, paths

    @staticmethod
    def _join(mount: tuple, path: str) -> str:
        point, root = mount
        if root != "/" and path.startswith(root):
            path = path[len(root) :]
        return point + path

    def _setup(self, slots: int) -> None:
        v2, v1, paths = self._mounts()
        me = os.getpid()
        if v2 is not None and "" in paths:
            base = self._join(v2, paths[""])
            try:
                with open(os.path.join(base, "cgroup.controllers")) as f:
                    have = f.read().split()
                if "memory" in have and "pids" in have:
                    with open(os.path.join(base, "cgroup.subtree_control")) as f:
                        on = f.read().split()
                    if "memory" not in on or "pids" not in on:
                        with open(os.path.join(base, "cgroup.subtree_control"), "w") as f:
                            f.write("+memory +pids")
                    self._make(slots, {"": base}, me)
                    self.kind = "v2"
                    return
            except OSError as e:
                self.close()
                self.why = f"cgroup v2 at {base}: {e}"
        if "memory" in v1 and "memory" in paths:
            bases = {"memory": self._join(v1["memory"], paths["memory"])}
            for ctl in ("pids", "cpuacct"):
                if ctl in v1 and ctl in paths:
                    bases[ctl] = self._join(v1[ctl], paths[ctl])
            self._make(slots, bases, me)
            self.kind = "v1"
            return
        if not self.why:
            self.why = "no writable cgroup v2 with the memory and pids controllers, nor cgroup v1 memory"

    def _make(self, slots: int, bases: dict, me: int) -> None:
        for base in bases.values():
            self._remove_stale(base)
            # kept open: the server's own mounts are made read-only later, but what is reached
            # through this descriptor stays writable (removing the slots' directories at exit)
            self.base_fds.append(os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        for slot in range(slots):
            made = {}
            name = f"drift-sandbox-{me}-{slot}"
            for (ctl, base), base_fd in zip(bases.items(), self.base_fds, strict=True):
                d = os.path.join(base, name)
                os.mkdir(d)
                self.dirs.append((name, base_fd))
                made[ctl] = d

            def fd(d, name, mode=os.O_WRONLY):
                return os.open(os.path.join(d, name), mode | os.O_CLOEXEC)

            self.procs.append([fd(d, "cgroup.procs") for d in made.values()])
            if "" in made:  # v2
                d = made[""]
                self.mem_fd.append(fd(d, "memory.max"))
                swap = os.path.exists(f"{d}/memory.swap.max")
                self.swap_fd.append(fd(d, "memory.swap.max") if swap else None)
                self.pids_fd.append(fd(d, "pids.max"))
                self.oom_fd.append(fd(d, "memory.events", os.O_RDONLY))
                self.cpu_fd.append(fd(d, "cpu.stat", os.O_RDONLY))  # there with or without the cpu controller
            else:
                d = made["memory"]
                self.mem_fd.append(fd(d, "memory.limit_in_bytes"))
                memsw = os.path.exists(f"{d}/memory.memsw.limit_in_bytes")
                self.swap_fd.append(fd(d, "memory.memsw.limit_in_bytes") if memsw else None)
                self.pids_fd.append(fd(made["pids"], "pids.max") if "pids" in made else None)
                self.oom_fd.append(fd(d, "memory.oom_control", os.O_RDONLY))
                self.empty_fd.append(fd(d, "memory.force_empty"))
                self.cpu_fd.append(
                    fd(made["cpuacct"], "cpuacct.usage", os.O_RDONLY) if "cpuacct" in made else None
                )
            self.written.append(None)

    @staticmethod
    def _remove_stale(base: str) -> None:
        """Remove the slot cgroups of servers that are gone (a server killed before it could)."""
        try:
            names = os.listdir(base)
        except OSError:
            return
        for name in names:
            parts = name.split("-")
            if len(parts) == 4 and name.startswith("drift-sandbox-") and parts[2].isdigit():
                if not os.path.exists(f"/proc/{parts[2]}"):
                    try:
                        os.rmdir(os.path.join(base, name))
                    except OSError:
                        pass

    @property
    def pids(self) -> bool:
        """Whether the number of processes of a whole check is bounded here."""
        return bool(self.pids_fd) and self.pids_fd[0] is not None

    def apply(self, slot: int, memory_mb: int, processes: int) -> int:
        """Set the limits of ``slot``'s next check; returns its OOM-kill count so far."""
        want = (memory_mb, processes)
        if self.written[slot] != want:
            mem = str(memory_mb << 20).encode()
            swap = self.swap_fd[slot]
            if swap is not None and self.kind == "v2":
                os.write(swap, b"0")
            if swap is not None and self.kind == "v1":
                # memory + swap equal to memory: no swap at all. v1 wants memory <= memory + swap at
                # every step, so the larger of the two moves first
                previous = self.written[slot]
                order = (self.mem_fd[slot], swap)  # lowering (from unlimited, the first time)
                if previous is not None and previous[0] < memory_mb:
                    order = order[::-1]
                for fd in order:
                    self._write_v1(slot, fd, mem)
            else:
                os.write(self.mem_fd[slot], mem)
            if self.pids_fd[slot] is not None:  # (+1: the process forked ahead for the next check)
                os.write(self.pids_fd[slot], str(processes + 1).encode())
            self.written[slot] = want
        return self.oom_kills(slot)

    def _write_v1(self, slot: int, fd: int, value: bytes) -> None:
        """Write a v1 memory limit; if what an earlier check left charged (its page cache) is above
        it (EBUSY), empty the slot's charge first (it has no process then) and write again."""
        try:
            os.write(fd, value)
        except OSError:
            os.write(self.empty_fd[slot], b"0")
            os.write(fd, value)

    def oom_kills(self, slot: int) -> int:
        try:
            text = os.pread(self.oom_fd[slot], 4096, 0).decode()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    @property
    def cpu(self) -> bool:
        """Whether the CPU time of a whole check can be read here."""
        return bool(self.cpu_fd) and self.cpu_usage(0) is not None

    def cpu_usage(self, slot: int) -> float | None:
        """Seconds of CPU all processes of ``slot`` have used so far (None: not known here)."""
        fd = self.cpu_fd[slot] if slot < len(self.cpu_fd) else None
        if fd is None:
            return None
        try:
            text = os.pread(fd, 4096, 0).decode()
            if self.kind == "v1":
                return int(text) / 1e9
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        except (OSError, ValueError):
            pass
        return None

    def fds(self) -> list:
        """Every descriptor the zygote needs: the cgroup.procs files, slot by slot."""
        return [fd for slot in self.procs for fd in slot]

    def close(self) -> None:
        for group in (
            self.procs,
            [self.mem_fd, self.swap_fd, self.pids_fd, self.oom_fd, self.empty_fd, self.cpu_fd],
        ):
            for fds in group:
                for fd in fds:
                    if fd is not None:
                        try:
                            os.close(fd)
                        except OSError:
                            pass
        self.procs, self.mem_fd, self.swap_fd, self.pids_fd, self.oom_fd, self.empty_fd = (
            [],
            [],
            [],
            [],
            [],
            [],
        )
        self.cpu_fd = []
        for name, base_fd in self.dirs:
            for _ in range(100):  # the last processes of a check may still be exiting
                try:
                    os.rmdir(name, dir_fd=base_fd)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        self.dirs = []
        for fd in self.base_fds:
            os.close(fd)
        self.base_fds = []


# ---------------------------------------------------------------------------------------------
# framing (server <-> client)


def _read_exact(fd: int, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _send_frame(fd: int, obj: dict) -> None:
    data = json.dumps(obj).encode()
    _write_all(fd, struct.pack(">I", len(data)) + data)


# ---------------------------------------------------------------------------------------------
# plain values on the wire (judge <-> candidate)
#
# A value is a tag byte and its payload; containers give their item count and are followed by their
# items. Encoding and decoding are iterative (no recursion), and capped in size and depth.


class WireError(ValueError):
    """A value that cannot be sent, or bytes that are not a valid value."""


_Q, _L, _D, _DD = struct.Struct(">q"), struct.Struct(">I"), struct.Struct(">d"), struct.Struct(">dd")
_CONTAINER_TAG = {list: b"l", tuple: b"t", set: b"S", frozenset: b"Z", dict: b"d"}
_deque = collections.deque


class _Lazy:
    """A built-in iterator or dict view a candidate returned, read out on the candidate's side:
    ``tag`` says what the judge rebuilds (an iterator, or a keys, values or items view) and ``items``
    holds what it yields (for items views, keys and values flattened)."""

    __slots__ = ("tag", "items", "count")

    def __init__(self, tag: bytes, items: list, count: int):
        self.tag, self.items, self.count = tag, items, count


_VIEW_TAG = {type({}.keys()): b"K", type({}.values()): b"V", type({}.items()): b"A"}


def _read_out(v):
    """``v`` itself, or for a built-in iterator (a generator, ``map``, ``filter``, ``zip``, an
    ``itertools`` object, a list iterator, ...) or a dict view, a :class:`_Lazy` holding its items,
    so a test may iterate what a correct solution returns lazily (MBPP's ``set(f(...))``). Read
    here, in the candidate, under the call's time limit; more than :data:`MAX_LAZY_ITEMS` items (an
    endless generator) is a :class:`WireError`. An iterator class of the code's own stays a handle."""
    t = type(v)
    tag = _VIEW_TAG.get(t)
    if tag is None:
        if getattr(t, "__module__", None) not in ("builtins", "itertools") or not hasattr(t, "__next__"):
            return v
        tag = b"G"
    items = []
    for x in v:
        if len(items) >= MAX_LAZY_ITEMS:
            raise WireError(f"the returned {t.__name__} yields more than {MAX_LAZY_ITEMS} items")
        items.append(x)
    if tag == b"A":
        return _Lazy(tag, [y for kv in items for y in kv], len(items))
    return _Lazy(tag, items, len(items))


def _as_plain(v):
    """The plain value an instance of a subclass of a plain type stands for (a namedtuple's tuple, a
    Counter's dict, an IntEnum's int), or None when ``v`` is not one. Read through the base types'
    own slots, so nothing the subclass overrides takes part."""
    if isinstance(v, int):
        return int.__index__(v)
    if isinstance(v, float):
        return float.__float__(v)
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, bytes):
        return bytes.__bytes__(v)
    if isinstance(v, bytearray):
        return bytearray(memoryview(v))
    if isinstance(v, complex):
        return complex(complex.real.__get__(v), complex.imag.__get__(v))
    if isinstance(v, tuple):
        return tuple(tuple.__iter__(v))
    if isinstance(v, list):
        return list(list.__iter__(v))
    if isinstance(v, dict):
        return dict(dict.items(v))
    if isinstance(v, set):
        return set(set.__iter__(v))
    if isinstance(v, frozenset):
        return frozenset(frozenset.__iter__(v))
    if isinstance(v, _deque):
        return list(_deque.__iter__(v))
    return None


def encode_value(value, other=None, limit: int = MAX_VALUE_BYTES) -> bytes:
    """``value`` as bytes. ``other(v)`` answers for anything that is not plain: ``("r", id, type
    name)`` for a handle, ``("y", name)`` for a built-in type, or raises :class:`WireError`."""
    out = bytearray()
    stack = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        v, depth = pop()
        if len(out) > limit:
            raise WireError(f"the value is larger than {limit >> 20} MiB")
        t = type(v)
        if t is int:
            if -(1 << 63) <= v < (1 << 63):
                out += b"i"
                out += _Q.pack(v)
            else:
                n = (v.bit_length() + 8) // 8
                if n > limit:
                    raise WireError(f"the value is larger than {limit >> 20} MiB")
                out += b"I"
                out += _L.pack(n)
                out += v.to_bytes(n, "big", signed=True)
        elif t is str:
            if len(v) > limit:
                raise WireError(f"the value is larger than {limit >> 20} MiB")
            data = v.encode("utf-8", "surrogatepass")
            out += b"s"
            out += _L.pack(len(data))
            out += data
        elif v is None:
            out += b"N"
        elif t is bool:
            out += b"T" if v else b"F"
        elif t is float:
            out += b"f"
            out += _D.pack(v)
        elif t in _CONTAINER_TAG:
            if depth >= MAX_DEPTH:
                raise WireError(f"the value is nested deeper than {MAX_DEPTH} levels")
            items = [x for kv in dict.items(v) for x in kv] if t is dict else list(v)
            out += _CONTAINER_TAG[t]
            out += _L.pack(len(v))
            for x in reversed(items):
                push((x, depth + 1))
        elif t is bytes or t is bytearray:
            if len(v) > limit:
                raise WireError(f"the value is larger than {limit >> 20} MiB")
            out += b"b" if t is bytes else b"B"
            out += _L.pack(len(v))
            out += v
        elif t is complex:
            out += b"c"
            out += _DD.pack(v.real, v.imag)
        elif t is range:
            out += b"x"
            for x in (v.step, v.stop, v.start):
                push((x, depth + 1))
        elif t is _Lazy:
            if depth >= MAX_DEPTH:
                raise WireError(f"the value is nested deeper than {MAX_DEPTH} levels")
            out += v.tag
            out += _L.pack(v.count)
            for x in reversed(v.items):
                push((x, depth + 1))
        else:
            plain = _as_plain(v)
            if plain is not None:
                push((plain, depth))
                continue
            if t is type and getattr(builtins, v.__name__, None) is v:
                kind = ("y", v.__name__)
            elif other is None:
                raise WireError(f"a {t.__name__} cannot be sent")
            else:
                kind = other(v)
            if kind[0] == "y":
                name = kind[1].encode()
                out += b"y" + _L.pack(len(name)) + name
            else:
                name = str(kind[2]).encode("utf-8", "replace")[:200]
                out += b"r" + _Q.pack(kind[1]) + _L.pack(len(name)) + name
    if len(out) > limit:
        raise WireError(f"the value is larger than {limit >> 20} MiB")
    return bytes(out)


# G: an iterator over its items, K V A: a dict's keys, values, items view (the judge builds its own)
_TAG_COUNT = {ord("l"): 1, ord("t"): 1, ord("S"): 1, ord("Z"): 1, ord("d"): 2}
_TAG_COUNT.update({ord("G"): 1, ord("K"): 1, ord("V"): 1, ord("A"): 2})


def _build(tag: int, items: list):
    if tag == 108:  # l
        return items
    if tag == 116:  # t
        return tuple(items)
    if tag == 100:  # d
        return dict(zip(items[0::2], items[1::2], strict=True))
    if tag == 83:  # S
        return set(items)
    if tag == 90:  # Z
        return frozenset(items)
    if tag == 71:  # G
        return iter(items)
    if tag == 75:  # K
        keys = dict.fromkeys(items)
        if len(keys) != len(items):
            raise WireError("a keys view with repeated keys")
        return keys.keys()
    if tag == 86:  # V
        return dict(enumerate(items)).values()
    if tag == 65:  # A
        pairs = dict(zip(items[0::2], items[1::2], strict=True))
        if 2 * len(pairs) != len(items):
            raise WireError("an items view with repeated keys")
        return pairs.items()
    if not all(type(x) is int for x in items):  # x: range
        raise WireError("a range of non-integers")
    return range(items[0], items[1], items[2])


def decode_value(data: bytes, handle=None, builtin_type=None):
    """The value ``data`` encodes; ``handle(id, type_name)`` gives what a handle stands for (default:
    refused). Raises :class:`WireError` for anything malformed, oversized or too deep."""
    n = len(data)
    pos = 0
    stack: list = []
    unpack_q, unpack_l, unpack_d, unpack_dd = _Q.unpack_from, _L.unpack_from, _D.unpack_from, _DD.unpack_from
    try:
        while True:
            tag = data[pos]
            pos += 1
            if tag == 105:  # i
                v = unpack_q(data, pos)[0]
                pos += 8
            elif tag == 115 or tag == 98 or tag == 66 or tag == 73 or tag == 121:  # s b B I y
                size = unpack_l(data, pos)[0]
                pos += 4
                if size > n - pos:
                    raise WireError("truncated value")
                raw = data[pos : pos + size]
                pos += size
                if tag == 115:
                    v = raw.decode("utf-8", "surrogatepass")
                elif tag == 98:
                    v = bytes(raw)
                elif tag == 66:
                    v = bytearray(raw)
                elif tag == 73:
                    v = int.from_bytes(raw, "big", signed=True)
                else:
                    name = raw.decode("ascii")
                    v = getattr(builtins, name, None) if builtin_type is None else builtin_type(name)
                    if type(v) is not type:
                        raise WireError(f"{name!r} is not a built-in type")
            elif tag == 78:  # N
                v = None
            elif tag == 84:  # T
                v = True
            elif tag == 70:  # F
                v = False
            elif tag == 102:  # f
                v = unpack_d(data, pos)[0]
                pos += 8
            elif tag == 99:  # c
                re_, im = unpack_dd(data, pos)
                pos += 16
                v = complex(re_, im)
            elif tag in _TAG_COUNT or tag == 120:  # containers, x
                count = 3 if tag == 120 else unpack_l(data, pos)[0] * _TAG_COUNT[tag]
                if tag != 120:
                    pos += 4
                if count > n - pos:
                    raise WireError("truncated value")
                if len(stack) >= MAX_DEPTH:
                    raise WireError(f"the value is nested deeper than {MAX_DEPTH} levels")
                if count:
                    stack.append([tag, count, []])
                    continue
                v = _build(tag, [])
            elif tag == 114:  # r
                rid = unpack_q(data, pos)[0]
                size = unpack_l(data, pos + 8)[0]
                pos += 12
                if size > 200 or size > n - pos:
                    raise WireError("malformed handle")
                tname = data[pos : pos + size].decode("utf-8", "replace")
                pos += size
                if handle is None:
                    raise WireError("an object handle where none is allowed")
                v = handle(rid, tname)
            else:
                raise WireError(f"unknown tag {tag}")
            while True:
                if not stack:
                    if pos != n:
                        raise WireError("trailing bytes after the value")
                    return v
                top = stack[-1]
                top[2].append(v)
                top[1] -= 1
                if top[1]:
                    break
                stack.pop()
                v = _build(top[0], top[2])
    except WireError:
        raise
    except (IndexError, struct.error, UnicodeDecodeError, TypeError, ValueError, OverflowError) as e:
        raise WireError(f"malformed value ({type(e).__name__})") from None


def _send_msg(fd: int, payload: bytes) -> None:
    _write_all(fd, _L.pack(len(payload)) + payload)


_pending_bytes: dict = {}  # fd -> bytes read past the end of the last message


def _recv_msg(fd: int, limit: int) -> bytes | None:
    """One length-prefixed message, or None at end of file; :class:`WireError` past ``limit``.
    Reads in large chunks (a small message is one system call) and keeps what follows for next time."""
    buf = _pending_bytes.pop(fd, b"")
    while len(buf) < 4:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        buf += chunk
    size = _L.unpack_from(buf)[0]
    if size > limit:
        raise WireError(f"a message of {size} bytes (more than {limit})")
    end = 4 + size
    if len(buf) < end:
        parts = [buf]
        got = len(buf)
        while got < end:
            chunk = os.read(fd, max(1 << 16, min(end - got, 1 << 24)))
            if not chunk:
                return None
            parts.append(chunk)
            got += len(chunk)
        buf = b"".join(parts)
    if len(buf) > end:
        _pending_bytes[fd] = buf[end:]
    return buf[4:end]


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
            continue  # mounted again below
        extra = sum(flag_of.get(o, 0) for o in opts)
        try:
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | extra, None)
        except OSError:
            failed.append(target)
    if "/" in failed:
        raise OSError("could not make / read-only")
    # sandboxed uids see only their own processes; a small private tmpfs on /tmp is only the
    # staging place below (each candidate mounts a tmpfs of its own there)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    _mount("tmpfs", RUN_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=64,mode=0711")
    notes = []
    try:
        _expose_stdlib(os.path.dirname(os.__file__))
    except OSError as e:
        notes.append(
            f"the standard library could not be exposed to the sandbox uid ({e}): only the "
            "modules the server preloads can be imported if it sits under a private directory"
        )
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


def _probe_check_namespaces(view: tuple | None) -> str | None:
    """Whether a candidate can get its own IPC, network and mount namespaces inside the interpreter-only
    root (None: yes; else why not)."""
    pid = os.fork()
    if pid == 0:
        step = "unshare(CLONE_NEWIPC | CLONE_NEWNET) or the IPC limits"
        try:
            _slot_namespaces(1)
            if view is not None:
                step = "the interpreter-only root (pivot_root)"
                _enter_minimal_root(*view)
                step = "importing from the standard library in that root"
                __import__("_bisect")
            step = "unshare(CLONE_NEWNS) and a tmpfs of its own"
            _unshare(CLONE_NEWNS)
            _mount("tmpfs", RUN_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=16,mode=0700")
            os._exit(0)
        except BaseException as e:
            try:
                os.write(2, f"{step}: {e}"[:300].encode())
            except BaseException:
                pass
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return None if status == 0 else "unshare, the interpreter-only root or a tmpfs of its own failed"


def _probe_seccomp(program: bytes | None) -> str | None:
    """Whether the candidate's system-call filter loads and refuses what it should (None: yes)."""
    if program is None:
        import platform

        return f"no system-call table for {platform.machine()} here"
    pid = os.fork()
    if pid == 0:
        try:
            _prctl(PR_SET_NO_NEW_PRIVS, 1)
            _install_seccomp(program)
            ok = _libc.unshare(ctypes.c_int(CLONE_NEWUSER)) != 0 and ctypes.get_errno() == errno.EPERM
            ok = ok and _libc.syscall(ctypes.c_long(_ARCH_NR["keyctl"]), 0, 0) != 0
            ok = ok and ctypes.get_errno() == errno.EPERM
            os._exit(0 if ok else 2)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return None if status == 0 else "the seccomp filter could not be loaded (or did not refuse)"


def _probe_isolation(mode: str, slots: int) -> tuple:
    """``(isolation report, cgroups or None, interpreter-only view or None, seccomp program or None)``."""
    iso = {
        "level": "basic",
        "verdict": "judge process",
        "uid_drop": False,
        "network": False,
        "private_namespaces": False,
        "ipc": False,
        "private_tmp": False,
        "read_only_fs": False,
        "filesystem": "host",
        "processes": "process group",
        "check_limits": "per process (rlimits)",
        "seccomp": False,
        "user_namespaces": "allowed",
        "keyrings": "allowed",
        "clock": "wall",
        "notes": [],
    }
    program = _seccomp_program()
    why = _probe_seccomp(program)
    if why is None:
        iso.update(seccomp=True, user_namespaces="refused", keyrings="refused")
    else:
        program = None
        iso["notes"].append(
            f"no system-call filter ({why}): user namespaces, keyrings and sockets not refused"
        )
    if os.geteuid() != 0:
        iso["notes"].append(
            "not root: no uid drop, no namespaces, no cgroup; RLIMIT_NPROC not applied; the candidate "
            "runs as the same user as its judge (which is not dumpable); limits count wall time (no "
            "cgroup to count a check's CPU time)"
        )
        return iso, None, None, program
    iso["uid_drop"] = True
    iso["processes"] = "uid"
    cgroups = _Cgroups(slots)
    if cgroups.kind is not None:
        iso["check_limits"] = f"cgroup {cgroups.kind} (memory{' and processes' if cgroups.pids else ''})"
    else:
        iso["notes"].append(f"no cgroup for the checks ({cgroups.why}): memory is limited per process")
        cgroups = None
    probe = _schedstat_fd("/proc/self/schedstat")
    if probe is not None:
        os.close(probe)
    if cgroups is not None and cgroups.cpu and probe is not None:
        iso["clock"] = "own time"
        _OWN_CLOCK[0] = True
    else:
        iso["notes"].append(
            "limits count wall time, so a busy machine can time a check out: "
            + ("no schedstat in /proc" if probe is None else "no cgroup counts a check's CPU time")
        )
    if mode == "basic":
        iso["notes"].append("isolation='basic' requested: no namespaces")
        return iso, cgroups, None, program
    try:
        extra = _setup_namespaces()
    except OSError as e:
        iso["notes"].append(f"namespaces unavailable ({e}); network, IPC and filesystem not isolated")
        return iso, cgroups, None, program
    stdlib = os.path.dirname(os.__file__)
    view = (stdlib, _interpreter_files(stdlib))
    why = _probe_check_namespaces(view)
    if why is not None:
        iso["notes"].append(f"the candidates' own namespaces are unavailable ({why})")
        iso["filesystem"] = "host (read-only)"
        return iso, cgroups, None, program
    iso.update(
        level="full",
        network=True,
        private_namespaces=True,
        ipc=True,
        private_tmp=True,
        read_only_fs=True,
        filesystem="interpreter only",
    )
    if extra["read_only_failed"]:
        iso["notes"].append(f"mounts left writable: {extra['read_only_failed']}")
    iso["notes"].extend(extra["notes"])
    return iso, cgroups, view, program


def _set_limits(lim: dict, drop_uid: bool, nproc: int | None) -> None:
    mb = 1024 * 1024
    cpu = int(lim["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = int(lim["memory_mb"]) * mb
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    fsize = int(lim["file_mb"]) * mb
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(lim["open_files"]), int(lim["open_files"])))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if drop_uid and nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
        raise OSError("privilege drop failed")


def _only_fds(keep: dict) -> None:
    """Make the process's descriptors exactly ``{target: source}`` plus /dev/null on 0 (when not
    kept); every other descriptor is closed."""
    null = os.open(os.devnull, os.O_RDWR)
    moved = {}
    for target, source in keep.items():  # first out of the way of the targets
        moved[target] = os.dup(source)
    for fd in (0, 1, 2):
        if fd not in moved:
            os.dup2(null, fd)
    for target, fd in moved.items():
        os.dup2(fd, target, inheritable=True)
    top = max([2, *moved])
    os.closerange(top + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    for fd in set(moved.values()) | {null}:
        if fd > top:
            try:
                os.close(fd)
            except OSError:
                pass


# per-IPC-namespace limits a candidate gets: no SysV shared memory, message queues or semaphores,
# no POSIX message queues (honest code needs none; each would hold memory outside RLIMIT_AS)
_IPC_OFF = {
    "/proc/sys/kernel/shmmni": "0",
    "/proc/sys/kernel/shmall": "0",
    "/proc/sys/kernel/msgmni": "0",
    "/proc/sys/kernel/sem": "0 0 0 0",
    "/proc/sys/fs/mqueue/queues_max": "0",
}


def _slot_namespaces(slots: int) -> list:
    """One IPC and one network namespace per worker slot, made once by the zygote (root) and kept by
    descriptor: ``[(ipc fd, net fd)]``. In each IPC namespace the limits are zero, so no SysV shared
    memory, message queue or semaphore and no POSIX message queue can be made there (honest code
    needs none; each would hold memory outside RLIMIT_AS, and outlive the check); a network namespace
    has only a down loopback, and what an unprivileged process opens in it (an abstract unix socket,
    a socket on the loopback) ends with the process. So once a check's processes are swept, its
    slot's namespaces hold nothing of it, and two checks in flight never share one."""
    made = []
    for _ in range(slots):
        _unshare(CLONE_NEWIPC | CLONE_NEWNET)
        for path, value in _IPC_OFF.items():
            with open(path, "w") as f:
                f.write(value)
        made.append((os.open("/proc/self/ns/ipc", os.O_RDONLY), os.open("/proc/self/ns/net", os.O_RDONLY)))
    return made


def _enter_namespaces(ns_fds: tuple) -> None:
    """Join the slot's IPC and network namespaces (root, before the uid drop)."""
    _check(_libc.setns(ns_fds[0], CLONE_NEWIPC), "setns ipc")
    _check(_libc.setns(ns_fds[1], CLONE_NEWNET), "setns net")


def _private_mounts(lim: dict, uid: int) -> None:
    """A mount namespace of the check's own whose /tmp, its working directory, is a fresh tmpfs capped
    in bytes and inodes, and whose /dev/shm is a tiny one (POSIX semaphores: `multiprocessing`),
    both gone with the check's last process."""
    _unshare(CLONE_NEWNS)
    _mount(
        "tmpfs",
        RUN_ROOT,
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={int(lim['disk_mb'])}m,nr_inodes={int(lim['inodes'])},mode=0700,uid={uid},gid={uid}",
    )
    if os.path.isdir(_SHM):
        _mount(
            "tmpfs",
            _SHM,
            "tmpfs",
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            f"size=1m,nr_inodes=64,mode=0700,uid={uid}",
        )


_SHM = "/dev/shm"


# ---------------------------------------------------------------------------------------------
# the candidate: runs the model's code, serves calls to what it defines (forked from the zygote)


class _CallTimeout(BaseException):
    """Raised by SIGALRM in the candidate; a BaseException so `except Exception` in user code misses it."""


class _CallUndecided(BaseException):
    """Raised by SIGALRM in the candidate when a call reached its wall-clock backstop short of its limit."""


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

    def waited() -> float:
        w = _run_delay(clock_fd)
        return 0.0 if w is None else w

    send = lambda msg: _send_msg(fd, encode_value((*msg, waited())))  # noqa: E731
    call = [0.0, 0.0, 1.0, 1.0, None]  # start, run-queue wait then, budget, backstop, what ended it

    def on_alarm(signum, frame):
        kind = call[4]
        if kind is None:
            elapsed = monotonic() - call[0]
            own = elapsed - (waited() - call[1])
            if own >= call[2]:
                kind = _CallTimeout
            elif elapsed >= call[3]:
                kind = _CallUndecided
            else:  # starved: not yet its limit
                setitimer(ITIMER_REAL, max(0.001, min(call[2] - own, call[3] - elapsed)), 0)
                return
            call[4] = kind
            setitimer(ITIMER_REAL, 0.05, 0.05)  # again and again, should the code swallow it
        raise kind()

    def arm(budget: float, wall: float) -> None:
        call[0], call[1], call[2], call[3], call[4] = monotonic(), waited(), budget, wall, None
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
    seccomp: bytes | None,
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
            _candidate(hdr, fds[0], fds[1], fds[2], me, ns, own, seccomp)
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


class _AssertRewriter(ast.NodeTransformer):
    """Asserts that record instead of raising, so what the judge asks the candidate next never
    depends on a verdict (the order, number and timing of its requests are the same whether an
    answer was right or wrong; the candidate could otherwise learn the expected values by watching):

    * ``assert a == b`` becomes ``__drift_eq__(a, b)`` (a failure can say what was returned and what
      was expected), any other ``assert t`` becomes ``__drift_true__(t)``; both record the first
      failure of the test and return, and the test goes on (its message, evaluated only on failure
      in Python, is dropped);
    * inside an assert, ``x and y`` / ``x or y`` and chains such as ``a < b < c`` evaluate every
      operand before combining them as Python would (an operand whose value is not needed may
      raise: that is ignored), and ``all(...)`` / ``any(...)`` look at every item, so no call is
      skipped because an earlier comparison failed.

    This holds in the test's own helper functions too."""

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        t = _EagerAssert().visit(node.test)
        if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
            call = ast.Call(ast.Name("__drift_eq__", ast.Load()), [t.left, t.comparators[0]], [])
        else:
            call = ast.Call(ast.Name("__drift_true__", ast.Load()), [t], [])
        return ast.copy_location(ast.Expr(call), node)


class _EagerAssert(ast.NodeTransformer):
    """The expression of an assert with its short circuits made eager (see :class:`_AssertRewriter`)."""

    @staticmethod
    def _binds(node: ast.AST) -> bool:
        # a name bound inside (`:=`) would be bound in a thunk's scope instead: left as Python has it
        return any(isinstance(n, ast.NamedExpr) for n in ast.walk(node))

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if self._binds(node):
            return node
        thunks = [ast.Lambda(ast.arguments([], [], None, [], [], None, []), v) for v in node.values]
        flag = ast.Constant(isinstance(node.op, ast.And))
        return ast.copy_location(
            ast.Call(ast.Name("__drift_boolop__", ast.Load()), [flag, *thunks], []), node
        )

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if len(node.ops) < 2 or self._binds(node):
            return node
        operands = [node.left, *node.comparators]
        thunks = [ast.Lambda(ast.arguments([], [], None, [], [], None, []), v) for v in operands]
        ops = ast.Constant(tuple(type(op).__name__ for op in node.ops))
        return ast.copy_location(ast.Call(ast.Name("__drift_chain__", ast.Load()), [ops, *thunks], []), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Name) and f.id in ("all", "any") and len(node.args) == 1 and not node.keywords:
            node.func = ast.copy_location(ast.Name(f"__drift_{f.id}__", ast.Load()), f)
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node  # evaluated when the test calls it, not by the assert


def _source_line(tests: list, filename: str, line: int) -> str:
    """Line ``line`` of the test named ``filename`` (``<test i>``), stripped; '' when there is none."""
    try:
        lines = tests[int(filename[6:-1])].splitlines()
        return lines[line - 1].strip() if 0 < line <= len(lines) else ""
    except (ValueError, IndexError):
        return ""


def _drift_boolop(is_and: bool, *thunks):
    """``a and b and ...`` (or ``or``) with every operand evaluated first."""
    values = []
    for thunk in thunks:
        try:
            values.append((True, thunk()))
        except Exception as e:  # only raised if Python would have reached this operand
            values.append((False, e))
    for ok, v in values:
        if not ok:
            raise v
        if (not v) if is_and else v:
            return v
    return values[-1][1]


_COMPARE = {
    "Eq": lambda a, b: a == b,
    "NotEq": lambda a, b: a != b,
    "Lt": lambda a, b: a < b,
    "LtE": lambda a, b: a <= b,
    "Gt": lambda a, b: a > b,
    "GtE": lambda a, b: a >= b,
    "Is": lambda a, b: a is b,
    "IsNot": lambda a, b: a is not b,
    "In": lambda a, b: a in b,
    "NotIn": lambda a, b: a not in b,
}


def _drift_chain(ops: tuple, *thunks):
    """``a < b < c`` (any chain of comparisons) with every operand evaluated first."""
    values = []
    for thunk in thunks:
        try:
            values.append((True, thunk()))
        except Exception as e:  # only raised if Python would have reached this operand
            values.append((False, e))
    if not values[0][0]:
        raise values[0][1]
    result = True
    for i, op in enumerate(ops):
        ok, right = values[i + 1]
        if not ok:
            raise right
        result = _COMPARE[op](values[i][1], right)
        if not result:
            return result
    return result


def _drift_all(items) -> bool:
    return all(list(items))


def _drift_any(items) -> bool:
    return any(list(items))


_compile_cache: dict = {}
_compile_cache_bytes = [0]


def _compile_tests(setup: str, tests: list) -> tuple:
    """``(setup code, [test code], names the tests and set-up read)``, cached by source (bounded)."""
    key = (setup, tuple(tests))
    hit = _compile_cache.get(key)
    if hit is not None:
        return hit
    setup_code = compile(setup or "", "<test setup>", "exec")
    units = []
    names = set()
    for n in ast.walk(ast.parse(setup or "")):
        if isinstance(n, ast.Name):
            names.add(n.id)
    for i, src in enumerate(tests):
        tree = ast.parse(src, f"<test {i}>")
        names.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
        tree = ast.fix_missing_locations(_AssertRewriter().visit(tree))
        units.append(compile(tree, f"<test {i}>", "exec"))
    size = len(setup) + sum(len(t) for t in tests)
    if len(_compile_cache) >= 4096 or _compile_cache_bytes[0] + size > 64 << 20:
        _compile_cache.clear()
        _compile_cache_bytes[0] = 0
    _compile_cache[key] = hit = (setup_code, units, frozenset(names))
    _compile_cache_bytes[0] += size
    return hit


_prelude_cache: dict = {}


def _compile_prelude(src: str):
    """The compiled prelude (the judge's own copy of the task's helpers), cached by source (bounded)."""
    code = _prelude_cache.get(src)
    if code is None:
        if len(_prelude_cache) >= 1024:
            _prelude_cache.clear()
        code = _prelude_cache[src] = compile(src, "<prelude>", "exec")
    return code


_JUDGE_CLOCK = [None]  # the judge's own schedstat descriptor (opened once per judge)


def _judge_waited() -> float:
    w = _run_delay(_JUDGE_CLOCK[0])
    return 0.0 if w is None else w


class _Channel:
    """The judge's end of the socket to the candidate: one request, one reply, in order.

    It keeps the clock of the current phase (loading, set-up, a test): own time used = wall time
    minus the run-queue waits of the judge (its schedstat) and of the candidate (the figure that
    ends each of its messages) since the phase started; each request tells the candidate the own
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


def _read_memfd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


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
# one check in the server: its two processes, their pipes, its clock, what the judge reported


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


_ZYGOTE_PID = [0]  # set by the server once it has forked the zygote
_OWN_CLOCK = [False]  # whether limits count own time (schedstat and the slots' CPU time are readable)
_NCPU = [max(1, len(os.sched_getaffinity(0)))]  # the CPUs a check's processes may use
_CGROUPS: list = [None]  # the worker slots' cgroups (a _Cgroups), when the machine gives them
_NOT_CANDIDATES: set = set()  # the zygote and the judges: never a candidate's uid, no need to look
_CANDIDATE_UID: dict = {}  # pid of each candidate in flight -> its uid


def _direct_children() -> list | None:
    """The children of the server and of the zygote (candidates are the zygote's until they die)."""
    found = []
    for pid in (os.getpid(), _ZYGOTE_PID[0]):
        if not pid:
            continue
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                found.extend(int(x) for x in f.read().split())
        except OSError:
            return None
    return found


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
        self.next_check = self.t_start + min(self.timeout_s, self.phase_limit)
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
        for who, fd in (("judge", self.judge_clock), ("candidate", self.cand_clock)):
            w = _run_delay(fd)
            if w is not None:
                self.waits[who] = max(0.0, w - self.wait_base[who])
        cpu = max(0.0, self._cpu_total() - self.cpu_base) / _NCPU[0]
        return (now, self.waits["judge"] + self.waits["candidate"], cpu)

    def _own(self, since: tuple, snap: tuple) -> float:
        """Own seconds between two snapshots: wall time less the run-queue waits, or the check's CPU
        time over the CPUs it may use, whichever is more (so waiting for its own processes buys none)."""
        wall = snap[0] - since[0]
        if not self.own_clock:
            return wall
        return max(wall - (snap[1] - since[1]), snap[2] - since[2])

    def on_record(self, rec: dict) -> None:
        """A phase starts: the set-up once the code is loaded, then each test; each has its own clock."""
        if rec["ev"] == "start" or (rec["ev"] == "load" and rec.get("status") == "ok"):
            self.phase_snap = self._snapshot(time.monotonic())
            self.phase_limit = self.test_timeout_s + GRACE_S
            self.phase_name = "test" if rec["ev"] == "start" else "setup"
            self.next_check = min(self.next_check, self.phase_snap[0] + self.phase_limit)
        elif rec["ev"] == "done":
            self.phase_limit = float("inf")

    # -- events
    def on_spawn(self, msg: dict, fds: list) -> None:
        if isinstance(msg.get("pid"), int) and len(fds) == 1:
            self.cand_pid, self.cand_pidfd = msg["pid"], fds[0]
            _CANDIDATE_UID[self.cand_pid] = self.uid
            if self.own_clock:
                self.cand_clock = _schedstat_fd(f"/proc/{self.cand_pid}/schedstat")
                self.wait_base["candidate"] = _run_delay(self.cand_clock) or 0.0
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
        while True:
            idx = self.res_buf.find(b"\n")
            if idx < 0:
                break
            line = bytes(self.res_buf[:idx])
            del self.res_buf[: idx + 1]
            rec = _clean_record(line, len(self.req["tests"]))
            if rec is not None:
                self.records.append(rec)
                self.on_record(rec)

    def tick(self, now: float) -> None:
        """End the check once its own time reaches a limit (a timeout) or its wall time the
        backstop first (undecided); own time grows no faster than wall time, so until the nearest
        of those could be reached there is nothing to read."""
        if now < self.next_check or self.kill_reason is not None or self.judge_done:
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
            self.next_check = now + max(0.002, left)

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
        for fd in (self.judge_clock, self.cand_clock):
            if fd is not None:
                os.close(fd)
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


# ---------------------------------------------------------------------------------------------
# the server loop


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
    "queue",
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
