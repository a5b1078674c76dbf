"""Math answer checking with ``math-verify``, bounded in wall-clock time from any thread.

``math-verify`` guards its sympy work with ``signal.alarm``, which only works in a process's main
thread, and a signal cannot interrupt a long C-level computation (``10^{10^{10}}`` as an integer)
anyway. So symbolic checks run in a small pool of warm worker processes: the caller waits at most
``timeout_s`` in all (for a free worker, for a fresh worker's start-up, and for the check), and a
worker that overruns is killed (and replaced by a spare started earlier). Gold answers are
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
import time
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from drift_envs.math.answers import as_number, normalize_answer

# a gold that brings its own math delimiters or boxes (an escaped \$ is a currency sign, not a delimiter)
_OWN_DELIMITERS_RE = re.compile(r"\\boxed|(?<!\\)\$|\\\(|\\\[")
# a numeral written in a base, like 52_8 or 4210_{5}
_BASE_RE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")

__all__ = ["GoldAnswer", "MathVerifier", "check_answer", "default_verifier"]


@dataclass(frozen=True)
class GoldAnswer:
    """A gold answer with its normal form and exact value computed once.

    A gold written with its own ``\\boxed{}`` or ``$`` delimiters (``\\boxed{1}, \\boxed{2}``, a whole
    solution) is ``raw``: math-verify reads the text as written, the way it reads a reply.
    """

    text: str
    normalized: str
    number: Fraction | None
    raw: bool = False

    @classmethod
    def from_text(cls, text: str) -> GoldAnswer:
        """Prepare ``text`` (the dataset's answer string) for repeated checks."""
        text = str(text)
        if _OWN_DELIMITERS_RE.search(text):
            return cls(text, normalize_answer(text), None, raw=True)
        normalized = normalize_answer(text)
        return cls(text, normalized, as_number(normalized))


#: math-verify's default ``float_rounding``: a decimal equals a number when both round alike to this many places
FLOAT_ROUNDING = 6


def _numbers_agree(gold: Fraction, pred: Fraction, decimal: bool) -> bool | None:
    """math-verify's verdict on two plain numbers, or None where only math-verify itself can tell.

    Exact values are equal or not, unless a decimal is involved: math-verify then compares both
    rounded to ``FLOAT_ROUNDING`` places (``1/12`` equals ``0.0833333333333333`` and ``0.083333``, not
    ``0.0833``). A value exactly halfway between two roundings is left to it (its floats round there).
    """
    if gold == pred:
        return True
    if not decimal:
        return False
    scale = 10**FLOAT_ROUNDING
    if any((2 * v * scale).denominator == 1 and (2 * v * scale).numerator % 2 for v in (gold, pred)):
        return None
    return round(gold, FLOAT_ROUNDING) == round(pred, FLOAT_ROUNDING)


class _Worker:
    """One warm ``python -m drift_envs.math._verify_worker`` process speaking JSON lines."""

    def __init__(self, memory_mb: int, retire_mb: int) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONHASHSEED", "0")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "drift_envs.math._verify_worker",
                "--memory-mb",
                str(memory_mb),
                "--retire-mb",
                str(retire_mb),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
        )
        self.started = threading.Event()  # set once the worker has said "ready" (or has exited)
        self.failed = False  # exited before saying "ready"
        self.retired = False  # grew past its memory budget and exits after its last answer
        self.owner: int | None = None  # the thread that used it last
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not self.started.is_set():
                self.failed = line.strip() != "ready"
                self.started.set()
                continue
            self._lines.put(line)
        if not self.started.is_set():
            self.failed = True
            self.started.set()
        self._lines.put(None)

    def ask(self, request: dict, timeout: float) -> bool:
        """The worker's verdict; ``queue.Empty`` after ``timeout`` s, ``RuntimeError`` if it died."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except OSError as e:  # the worker died (killed, or out of its memory limit) since it was last used
            raise RuntimeError("math verifier worker exited") from e
        line = self._lines.get(timeout=timeout)
        if line is None:
            raise RuntimeError("math verifier worker exited")
        answer = json.loads(line)
        self.retired = bool(answer.get("retire"))
        return bool(answer["ok"])

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
    """A thread-safe pool of warm math-verify workers; every check returns within its ``timeout_s``.

    The bound covers the whole check, as seen by the calling thread: waiting for a free worker,
    waiting for a fresh worker to finish its imports, and the check itself. A check that is not
    answered in time counts as incorrect (``timeouts`` counts them); a worker that overran is killed
    and a spare started earlier takes its place, so slow answers from some threads delay the others
    only while every worker is busy. Workers run under an address-space limit of ``memory_mb`` and
    keep a size-capped cache of parsed answers (see :mod:`drift_envs.math._verify_worker`).

    Args:
        max_workers: processes kept warm; checks from more threads than this wait for a free one.
        startup_timeout_s: how long :meth:`warm_up` waits for the first worker's imports.
        memory_mb: address-space limit of each worker process (0: none).
        retire_mb: resident size past which a worker is replaced after its answer (default
            ``memory_mb // 4``; 0: never).
    """

    def __init__(
        self,
        max_workers: int = 4,
        startup_timeout_s: float = 60.0,
        memory_mb: int = 2048,
        retire_mb: int | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers!r}")
        self.max_workers = max_workers
        self.startup_timeout_s = startup_timeout_s
        self.memory_mb = memory_mb
        self.retire_mb = memory_mb // 4 if retire_mb is None else retire_mb
        self._idle: list[_Worker] = []  # free workers, oldest first; guarded by _lock, signalled by _free
        self._count = 0
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._spare: _Worker | None = None
        self.timeouts = 0
        self.failures = 0

    def _new_worker(self) -> _Worker:
        return _Worker(self.memory_mb, self.retire_mb)

    def warm_up(self) -> None:
        """Start a worker and a spare, and wait (up to ``startup_timeout_s``) until the first is ready.

        Called when an env is made, so no step pays for the imports; ``RuntimeError`` if the worker
        cannot start (math-verify missing).
        """
        first = None
        with self._lock:
            if self._count == 0:
                self._count += 1
                first = self._new_worker()
            if self._spare is None:
                self._spare = self._new_worker()
        if first is None:
            return
        try:
            if not first.started.wait(self.startup_timeout_s) or first.failed:
                raise RuntimeError("math verifier worker failed to start (is math-verify installed?)")
        except BaseException:
            first.kill()
            with self._lock:
                self._count -= 1
            raise
        self._put(first)

    def _put(self, worker: _Worker) -> None:
        with self._free:
            self._idle.append(worker)
            self._free.notify()

    def _take_started(self) -> _Worker | None:
        # Lock held. Only a worker that has finished its imports: the calling thread's own first, then
        # a spare, then another thread's, so a thread whose checks overrun (and whose workers are
        # killed) does not take the warm worker of a thread whose checks finish.
        me = threading.get_ident()
        started = [w for w in self._idle if w.started.is_set()]
        if not started:
            return None
        worker = min(started, key=lambda w: (w.owner != me, w.owner is not None))
        self._idle.remove(worker)
        worker.owner = me
        return worker

    def _acquire(self, deadline: float) -> _Worker | None:
        """A started worker, or None when none is free by ``deadline``.

        Workers still importing wait in the pool and are taken by whichever thread needs one once they
        are ready, so a check never waits for one start-up while another worker is free.
        """
        with self._free:
            while True:
                worker = self._take_started()
                if worker is not None:
                    return worker
                if self._count < self.max_workers:
                    self._count += 1
                    spare, self._spare = self._spare, self._new_worker()
                    self._idle.append(spare if spare is not None and spare.alive() else self._new_worker())
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                # a start-up does not signal the condition: look again every 20 ms
                self._free.wait(min(left, 0.02))

    def _release(self, worker: _Worker) -> None:
        if worker.alive() and not worker.failed and not worker.retired:
            self._put(worker)
        else:
            self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        # A killed worker's successor needs ~1 s of imports; a spare started earlier takes its place
        # at once, so a second slow check in a row is still bounded by its own timeout.
        worker.kill()
        with self._lock:
            spare, self._spare = self._spare, self._new_worker()
        self._put(spare if spare is not None and spare.alive() else self._new_worker())

    def verify(
        self, gold: str, pred: str, timeout_s: float, *, gold_raw: bool = False, pred_raw: bool = False
    ) -> bool:
        """``math_verify.verify`` of ``\\boxed{gold}`` against ``\\boxed{pred}``; False unless answered in ``timeout_s``.

        ``gold_raw``/``pred_raw``: that text is parsed as written (plain ``math_verify.parse``), not as
        the content of one box. ``timeout_s`` bounds everything this call waits for: a free worker, a
        fresh worker's start-up and the check itself.
        """
        deadline = time.monotonic() + timeout_s
        worker = self._acquire(deadline)
        if worker is None:  # every worker stayed busy, or still importing, until the deadline
            self.timeouts += 1
            return False
        if worker.failed:
            self._replace(worker)
            raise RuntimeError("math verifier worker failed to start (is math-verify installed?)")
        try:
            request = {"gold": gold, "pred": pred, "gold_raw": gold_raw, "pred_raw": pred_raw}
            ok = worker.ask(request, max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.timeouts += 1
            self._replace(worker)
            return False
        except RuntimeError:  # the worker died mid-check (its memory limit, a crash): incorrect, not an error
            self.failures += 1
            self._replace(worker)
            return False
        except BaseException:
            self._replace(worker)
            raise
        self._release(worker)
        return ok

    def close(self) -> None:
        """Stop every idle worker."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._count = 0
            spare, self._spare = self._spare, None
        for worker in idle + ([spare] if spare is not None else []):
            worker.kill()


@lru_cache(maxsize=1)
def default_verifier() -> MathVerifier:
    """The process-wide verifier pool shared by every MathFeedback env."""
    verifier = MathVerifier()
    atexit.register(verifier.close)
    return verifier


def check_answer(
    gold: GoldAnswer,
    pred: str,
    *,
    timeout_s: float = 2.0,
    verifier: MathVerifier | None = None,
    several: str | None = None,
) -> bool:
    """True when ``pred`` (an extracted answer) equals ``gold``, as ``math_verify.verify`` judges it.

    Decided in-process when the normal forms are equal or both are plain numbers (see
    :func:`_numbers_agree`); otherwise by math-verify in a worker, bounded by ``timeout_s`` (a check
    that overruns counts as incorrect). ``several``: the text of a reply with several boxes, which
    math-verify reads as written (``\\boxed{1}, \\boxed{2}`` is the set {1, 2}) in place of ``pred``.
    """
    verifier = verifier or default_verifier()
    if several is not None or gold.raw:
        text, raw = (several, True) if several is not None else (pred, False)
        return verifier.verify(gold.text, text, timeout_s, gold_raw=gold.raw, pred_raw=raw)
    normalized = normalize_answer(pred)
    if normalized == gold.normalized:
        return True
    if gold.number is not None:
        number = as_number(normalized)
        if number is not None:
            agree = _numbers_agree(gold.number, number, "." in normalized or "." in gold.normalized)
            if agree is not None:
                return agree
    gold_base, pred_base = _BASE_RE.match(gold.normalized), _BASE_RE.match(normalized)
    if gold_base and pred_base:
        # math-verify drops base subscripts (it judges 52_8 equal to 52_9); numerals in a base are equal
        # only when base and digits are
        return (
            gold_base.group(2) == pred_base.group(2)
            and gold_base.group(1).upper() == pred_base.group(1).upper()
        )
    if not normalized:
        return False
    return verifier.verify(gold.text, pred, timeout_s)
