"""Math answer checking with ``math-verify``, bounded in wall-clock time from any thread.

``math-verify`` guards its sympy work with ``signal.alarm``, which only works in a process's main
thread, and a signal cannot interrupt a long C-level computation (``10^{10^{10}}`` as an integer)
anyway. So symbolic checks run in a small pool of warm worker processes: the caller waits at most
``timeout_s`` and a worker that overruns is killed (and replaced in the background). Gold answers are
parsed once per worker (cached), and most checks never leave the calling process: equal normal forms
and plain numbers are decided by :mod:`drift_envs.math.answers` first.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from drift_envs.math.answers import as_number, normalize_answer

# a numeral written in a base, like 52_8 or 4210_{5}
_BASE_RE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")

__all__ = ["GoldAnswer", "MathVerifier", "check_answer", "default_verifier"]


@dataclass(frozen=True)
class GoldAnswer:
    """A gold answer with its normal form and exact value computed once."""

    text: str
    normalized: str
    number: Fraction | None

    @classmethod
    def from_text(cls, text: str) -> GoldAnswer:
        """Prepare ``text`` (the dataset's answer string) for repeated checks."""
        normalized = normalize_answer(str(text))
        return cls(str(text), normalized, as_number(normalized))


class _Worker:
    """One warm ``python -m drift_envs.math._verify_worker`` process speaking JSON lines."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONHASHSEED", "0")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "drift_envs.math._verify_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
        )
        self.ready = False
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        line = self._lines.get(timeout=timeout)
        if line is None or line.strip() != "ready":
            raise RuntimeError("math verifier worker failed to start (is math-verify installed?)")
        self.ready = True

    def ask(self, gold: str, pred: str, timeout: float) -> bool:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"gold": gold, "pred": pred}) + "\n")
        self.proc.stdin.flush()
        line = self._lines.get(timeout=timeout)
        if line is None:
            raise RuntimeError("math verifier worker exited")
        return bool(json.loads(line)["ok"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        # reap in the background: the caller must not wait on a process stuck in C code
        threading.Thread(target=self.proc.wait, daemon=True).start()


class MathVerifier:
    """A thread-safe pool of warm math-verify workers with a per-check wall-clock bound.

    Args:
        max_workers: processes kept warm; checks from more threads than this queue up.
        startup_timeout_s: how long a fresh worker may take to import sympy and math-verify.
    """

    def __init__(self, max_workers: int = 2, startup_timeout_s: float = 60.0) -> None:
        self.max_workers = max_workers
        self.startup_timeout_s = startup_timeout_s
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._count = 0
        self._lock = threading.Lock()
        self._spare: _Worker | None = None
        self.timeouts = 0

    def warm_up(self) -> None:
        """Start one worker now (non-blocking), so the first check does not pay for the imports."""
        with self._lock:
            if self._count == 0:
                self._count += 1
                self._idle.put(_Worker())
            if self._spare is None:
                self._spare = _Worker()

    def _acquire(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._count < self.max_workers:
                self._count += 1
                return _Worker()
        return self._idle.get()

    def _replace(self, worker: _Worker) -> None:
        # A killed worker's successor needs ~1 s of imports; a spare started earlier takes its place
        # at once, so a second slow check in a row is still bounded by its own timeout.
        worker.kill()
        with self._lock:
            spare, self._spare = self._spare, _Worker()
        self._idle.put(spare if spare is not None and spare.alive() else _Worker())

    def verify(self, gold: str, pred: str, timeout_s: float) -> bool:
        """``math_verify.verify`` of ``\\boxed{gold}`` against ``\\boxed{pred}``; False after ``timeout_s``."""
        worker = self._acquire()
        try:
            worker.wait_ready(self.startup_timeout_s)
        except BaseException:
            self._replace(worker)
            raise
        try:
            ok = worker.ask(gold, pred, timeout_s)
        except queue.Empty:
            self.timeouts += 1
            self._replace(worker)
            return False
        except BaseException:
            self._replace(worker)
            raise
        if worker.alive():
            self._idle.put(worker)
        else:
            self._replace(worker)
        return ok

    def close(self) -> None:
        """Stop every idle worker."""
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                break
        with self._lock:
            self._count = 0
            if self._spare is not None:
                self._spare.kill()
                self._spare = None


@lru_cache(maxsize=1)
def default_verifier() -> MathVerifier:
    """The process-wide verifier pool shared by every MathFeedback env."""
    verifier = MathVerifier()
    atexit.register(verifier.close)
    return verifier


def check_answer(gold: GoldAnswer, pred: str, *, timeout_s: float = 2.0, verifier: MathVerifier | None = None) -> bool:
    """True when ``pred`` (an extracted answer) equals ``gold``.

    Decided in-process when the normal forms are equal or both are plain numbers; otherwise by
    math-verify in a worker, bounded by ``timeout_s`` (a check that overruns counts as incorrect).
    """
    normalized = normalize_answer(pred)
    if normalized == gold.normalized:
        return True
    if gold.number is not None:
        number = as_number(normalized)
        if number is not None:
            return number == gold.number
    gold_base, pred_base = _BASE_RE.match(gold.normalized), _BASE_RE.match(normalized)
    if gold_base and pred_base:
        # math-verify drops base subscripts (it judges 52_8 equal to 52_9); numerals in a base are equal
        # only when base and digits are
        return gold_base.group(2) == pred_base.group(2) and gold_base.group(1).upper() == pred_base.group(1).upper()
    if not normalized:
        return False
    return (verifier or default_verifier()).verify(gold.text, pred, timeout_s)
