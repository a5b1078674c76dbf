"""The candidate's system-call filter (seccomp BPF): what no honest solution needs and what would let a check leave something behind, escape its limits or stretch its own clock.

Part of the sandbox fork server (see ``_forkserver.py``): standard library only.
"""

import ctypes
import errno
import os
import struct

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    bytes,
    dict,
    len,
    list,
    str,
    tuple,
    type,
)

from ._linux import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_SECCOMP,
    SECCOMP_MODE_FILTER,
    _check,
    _libc,
    _prctl,
)

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


class _Prog(ctypes.Structure):
    """``struct sock_fprog``: the filter's length in instructions and its address."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def _prepare_seccomp(program: bytes) -> tuple:
    """``program`` as the kernel takes it (a buffer, its ``sock_fprog`` and a pointer to that), built
    once by the zygote before it forks: a candidate then only makes the one ``prctl`` call (building
    the structure in each candidate cost ~0.4 ms a check, mostly copy-on-write faults)."""
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _Prog(len(program) // 8, ctypes.cast(buf, ctypes.c_char_p))
    return (buf, prog, ctypes.byref(prog), ctypes.c_ulong(SECCOMP_MODE_FILTER))


def _install_seccomp(program: bytes | tuple) -> None:
    """Load ``program`` (its bytes, or :func:`_prepare_seccomp`'s form of them) as this process's
    filter (no_new_privs must be set; kept across fork)."""
    prepared = _prepare_seccomp(program) if type(program) is bytes else program
    _check(_libc.prctl(PR_SET_SECCOMP, prepared[3], prepared[2], 0, 0), "seccomp")


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
