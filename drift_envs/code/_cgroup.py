"""The worker slots' cgroups: the whole check's memory, processes and CPU time.

Part of the sandbox fork server (see ``_forkserver.py``): standard library only.
"""

import os
import time

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    bool,
    bytes,
    dict,
    float,
    int,
    len,
    list,
    range,
    str,
    tuple,
    zip,
)

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
        self.count_fd: list = []  # how many tasks the slot holds (pids.current), where pids are counted
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
                self.count_fd.append(fd(d, "pids.current", os.O_RDONLY))
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
                self.count_fd.append(
                    fd(made["pids"], "pids.current", os.O_RDONLY) if "pids" in made else None
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

    def task_count(self, slot: int) -> int | None:
        """How many tasks (threads) ``slot``'s cgroup holds now, exited ones not yet reaped included
        (None: not counted here)."""
        fd = self.count_fd[slot] if slot < len(self.count_fd) else None
        if fd is None:
            return None
        try:
            return int(os.pread(fd, 64, 0))
        except (OSError, ValueError):
            return None

    def fds(self) -> list:
        """Every descriptor the zygote needs: the cgroup.procs files, slot by slot."""
        return [fd for slot in self.procs for fd in slot]

    def close(self) -> None:
        for group in (
            self.procs,
            [self.mem_fd, self.swap_fd, self.pids_fd, self.oom_fd, self.empty_fd, self.cpu_fd, self.count_fd],
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
        self.count_fd = []
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
