"""A check's isolation: the interpreter-only root (pivot_root), the server's and the slots' namespaces, limits, the uid drop, descriptors, and the probe that says what this machine allows.

Part of the sandbox fork server (see ``_forkserver.py``): standard library only.
"""

import ctypes
import os
import resource
import shutil
import struct
import sys

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    bool,
    dict,
    int,
    len,
    list,
    range,
    set,
    str,
    tuple,
)

from ._cgroup import _Cgroups
from ._common import _OWN_CLOCK, RUN_ROOT, _schedstat_fd
from ._linux import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    _check,
    _libc,
    _mount,
    _unshare,
)
from ._seccomp import _probe_seccomp, _seccomp_program

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
