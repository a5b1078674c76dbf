"""Math answer checking with ``math-verify``: verdicts that do not depend on the machine's load.

``math-verify`` guards its sympy work with ``signal.alarm``, which only works in a process's main
thread, and a signal cannot interrupt a long C-level computation (``10^{10^{10}}`` as an integer)
anyway. So symbolic checks run in a small pool of warm worker processes, and what bounds them is
split in two, so that a loaded machine changes how long a check takes but never its verdict:

- **the verdict's budget is CPU time**: a check may use ``timeout_s`` CPU seconds of its worker
  (measured from ``/proc/<pid>/stat`` every 20 ms, and enforced by the kernel with ``RLIMIT_CPU`` as a
  backstop where there is no procfs). An answer that needs more is judged incorrect, on a quiet
  machine and at load 9 alike, since CPU time is what the expression costs, not what the machine has.
- **the wall clock is only a backstop**: waiting for a free worker, for a fresh worker's start-up and
  for the check itself may take ``max_wait_s`` (default :func:`wall_backstop`: ``max(30 s,
  15 * timeout_s)``) per attempt. When an attempt runs out with the budget not used up, the check is
  retried (``attempts``, default 2): a worker that used CPU during the attempt is starved, not stuck,
  and keeps the check (killing it would only add a start-up, the costliest thing on a starved
  machine); one that used none is stuck (stopped, swapped out) and is killed, the check going to
  another. If every attempt runs out, the check is *undecided* (:class:`UndecidedError`), which the
  env records as such (``info["undecided"]``), never as a wrong answer. A worker that crashes on
  every attempt (the answer kills it) is judged incorrect.

So on a quiet machine a check returns within ``timeout_s`` plus the polling step whatever the answer,
and what a step parses is bounded by :mod:`drift_envs.math.answers` (the last 32 KB of a reply, at most
32 boxes): a step takes at most ``timeout_s + 0.5 s``. Under load a step takes longer (at most
``attempts * max_wait_s``) and its verdict is the same. Gold answers are parsed once per worker
(cached), and most checks never leave the calling process: equal normal forms and plain numbers are
decided by :mod:`drift_envs.math.answers` first.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from drift_envs.math.answers import (
    MAX_ANSWER_CHARS,
    MAX_NESTING,
    as_number,
    boxes_have_connective,
    has_connective,
    nesting_depth,
    normalize_answer,
    not_one_value,
)

# a gold that brings its own math delimiters or boxes (an escaped \$ is a currency sign, not a delimiter)
_OWN_DELIMITERS_RE = re.compile(r"\\boxed|(?<!\\)\$|\\\(|\\\[")
# a numeral written in a base, like 52_8 or 4210_{5}
_BASE_RE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")

__all__ = [
    "GoldAnswer",
    "MathVerifier",
    "UndecidedError",
    "check_answer",
    "default_verifier",
    "wall_backstop",
]

#: how often the pool looks at a busy worker's CPU time
POLL_S = 0.02
#: the default wall-clock backstop of one attempt: ``max(WALL_FLOOR_S, WALL_FACTOR * timeout_s)``
WALL_FLOOR_S = 30.0
WALL_FACTOR = 15.0

try:
    _CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):  # not POSIX: no procfs either
    _CLOCK_TICKS = 100


def wall_backstop(timeout_s: float) -> float:
    """The default wall-clock limit of one attempt at a check whose CPU budget is ``timeout_s``.

    Fifteen times the budget (at least 30 s): a check starved to a fifteenth of a core still uses up
    its budget, and so reaches its verdict, before the backstop ends the attempt.
    """
    return max(WALL_FLOOR_S, WALL_FACTOR * timeout_s)


class UndecidedError(RuntimeError):
    """A check reached no verdict: on every attempt its worker neither answered nor used up its CPU
    budget before the wall-clock backstop (a starved or stuck machine, not a property of the answer)."""


class _OverBudget(Exception):
    """The check used more than its CPU budget; ``running``: the worker is still at it (kill it)."""

    def __init__(self, running: bool) -> None:
        super().__init__("over its CPU budget")
        self.running = running


class _Stalled(Exception):
    """The wall-clock backstop passed with the worker under its CPU budget."""


class _Died(Exception):
    """The worker exited mid-check for a reason other than its CPU limit."""


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

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the worker has used so far, from procfs; None where there is none."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            return None

    def send(self, request: dict, cpu_budget: float) -> float | None:
        """Send one check; returns the worker's CPU time before it (None without procfs)."""
        assert self.proc.stdin is not None
        start = self.cpu_seconds()
        try:
            self.proc.stdin.write(json.dumps({**request, "cpu_s": cpu_budget}) + "\n")
            self.proc.stdin.flush()
        except OSError as e:  # the worker died (killed, or out of its memory limit) since it was last used
            raise _Died("math verifier worker exited") from e
        return start

    def answer(self, cpu_budget: float, start: float | None, deadline: float) -> bool:
        """The worker's verdict on the check sent when its CPU time was ``start``.

        Raises :class:`_OverBudget` once the check has used more than ``cpu_budget`` CPU seconds,
        :class:`_Stalled` at ``deadline`` (``time.monotonic()``) with the budget not used up, and
        :class:`_Died` if the worker exits otherwise.
        """
        while True:
            left = deadline - time.monotonic()
            try:  # at the deadline, an answer already there still counts
                line = self._lines.get(timeout=min(left, POLL_S)) if left > 0 else self._lines.get_nowait()
            except queue.Empty:
                if left <= 0:
                    raise _Stalled from None
                used = self.cpu_seconds()
                if start is not None and used is not None and used - start > cpu_budget:
                    raise _OverBudget(running=True) from None
                continue
            if line is None:
                try:
                    code = self.proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    code = None
                if code == -signal.SIGXCPU:  # the kernel's RLIMIT_CPU backstop: the budget is spent
                    raise _OverBudget(running=False)
                raise _Died(f"math verifier worker exited with {code}")
            answer = json.loads(line)
            self.retired = bool(answer.get("retire"))
            if float(answer.get("cpu_s", 0.0)) > cpu_budget:  # finished, but past its budget: same verdict
                raise _OverBudget(running=False)
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
    """A thread-safe pool of warm math-verify workers whose verdicts do not depend on load.

    A check may use ``timeout_s`` CPU seconds of its worker; one that needs more is incorrect
    (``timeouts`` counts them) and its worker is killed, a spare started earlier taking its place.
    Everything the calling thread waits for (a free worker, a fresh worker's imports, the check) is
    bounded by the wall-clock backstop ``max_wait_s`` per attempt; when an attempt runs out the check
    is retried, on the same worker if it used CPU meanwhile (starved), else on another (stuck, killed),
    up to ``attempts`` times, then raises
    :class:`UndecidedError` (``undecided`` counts them, ``stalls`` the attempts). Workers run under an
    address-space limit of ``memory_mb`` and keep a size-capped cache of parsed answers (see
    :mod:`drift_envs.math._verify_worker`).

    Args:
        max_workers: processes kept warm; checks from more threads than this wait for a free one.
        startup_timeout_s: how long :meth:`warm_up` waits for the first worker's imports.
        memory_mb: address-space limit of each worker process (0: none).
        retire_mb: resident size past which a worker is replaced after its answer (default
            ``memory_mb // 4``; 0: never).
        attempts: how many workers one check is tried on before it is undecided (or, when each of
            them crashed, incorrect).
    """

    def __init__(
        self,
        max_workers: int = 4,
        startup_timeout_s: float = 60.0,
        memory_mb: int = 2048,
        retire_mb: int | None = None,
        attempts: int = 2,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers!r}")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts!r}")
        self.max_workers = max_workers
        self.startup_timeout_s = startup_timeout_s
        self.memory_mb = memory_mb
        self.retire_mb = memory_mb // 4 if retire_mb is None else retire_mb
        self.attempts = attempts
        self._idle: list[_Worker] = []  # free workers, oldest first; guarded by _lock, signalled by _free
        self._count = 0
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._spare: _Worker | None = None
        self.timeouts = 0  # checks that used up their CPU budget (incorrect)
        self.failures = 0  # checks whose worker crashed on every attempt (incorrect)
        self.stalls = 0  # attempts that ran out of wall-clock time under budget (retried)
        self.undecided = 0  # checks that stalled on every attempt (UndecidedError)

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
        self,
        gold: str,
        pred: str,
        timeout_s: float,
        *,
        gold_raw: bool = False,
        pred_raw: bool = False,
        max_wait_s: float | None = None,
    ) -> bool:
        """``math_verify.verify`` of ``\\boxed{gold}`` against ``\\boxed{pred}``, within ``timeout_s`` CPU seconds.

        ``gold_raw``/``pred_raw``: that text is parsed as written (plain ``math_verify.parse``), not as
        the content of one box. False when the check needs more than ``timeout_s`` CPU seconds.
        ``max_wait_s`` (default :func:`wall_backstop` of ``timeout_s``) bounds, per attempt, the wall
        time spent waiting for a worker and for its answer; :class:`UndecidedError` when every attempt
        runs out of it.
        """
        wait = wall_backstop(timeout_s) if max_wait_s is None else float(max_wait_s)
        request = {"gold": gold, "pred": pred, "gold_raw": gold_raw, "pred_raw": pred_raw}
        crashes = 0
        worker: _Worker | None = None  # the worker holding the check, once sent
        start: float | None = None  # its CPU time when the check was sent
        for _ in range(self.attempts):
            deadline = time.monotonic() + wait
            if worker is None:
                worker = self._acquire(deadline)
                if worker is None:  # every worker stayed busy, or still importing, until the deadline
                    self.stalls += 1
                    continue
                if worker.failed:
                    self._replace(worker)
                    raise RuntimeError("math verifier worker failed to start (is math-verify installed?)")
            mark = worker.cpu_seconds()  # what it had used before this attempt
            try:
                if start is None:
                    start = worker.send(request, timeout_s)
                ok = worker.answer(timeout_s, start, deadline)
            except _OverBudget as over:
                self.timeouts += 1
                if over.running or not worker.alive():
                    self._replace(worker)
                else:
                    self._release(worker)
                return False
            except _Stalled:
                self.stalls += 1
                now = worker.cpu_seconds()
                if mark is not None and now is not None and now > mark:
                    continue  # starved, not stuck: it keeps the check for another attempt
                self._replace(worker)  # stuck (no CPU at all in a whole attempt): another worker gets it
                worker, start = None, None
                continue
            except _Died:  # killed from outside (an OOM killer) or crashed by the answer: try again
                crashes += 1
                self._replace(worker)
                worker, start = None, None
                continue
            except BaseException:
                self._replace(worker)
                raise
            self._release(worker)
            return ok
        if worker is not None:  # it still holds the check after the last attempt
            self._replace(worker)
        if crashes == self.attempts:  # the answer itself brings the worker down: not a correct answer
            self.failures += 1
            return False
        self.undecided += 1
        raise UndecidedError(
            f"math check reached no verdict in {self.attempts} attempt(s) of {wait:g} s wall time each "
            f"(CPU budget {timeout_s:g} s not used up: the machine is starved or a worker is stuck)"
        )

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
    max_wait_s: float | None = None,
) -> bool:
    """True when ``pred`` (an extracted answer) equals ``gold``, as ``math_verify.verify`` judges it.

    Decided in-process when the normal forms are equal or both are plain numbers (see
    :func:`_numbers_agree`); otherwise by math-verify in a worker, within ``timeout_s`` CPU seconds (a
    check that needs more is incorrect) and ``max_wait_s`` wall seconds per attempt (see
    :meth:`MathVerifier.verify`; :class:`UndecidedError` when no attempt reached a verdict).
    ``several``: the text of a reply with several boxes, which math-verify reads as written
    (``\\boxed{1}, \\boxed{2}`` is the set {1, 2}) in place of ``pred``.

    Two readings of math-verify are refused, because they pass a statement that is not the answer
    as its last value: a logical connective outside braces (``x=6 \\lor x=7``, ``x=6 \\implies x=7``,
    ``\\neg 7``; see :func:`~drift_envs.math.answers.has_connective`; with several boxes, in a box or a
    short gap between two) unless the gold has one too, an answer longer than ``MAX_ANSWER_CHARS`` or
    nested deeper than ``MAX_NESTING`` is wrong unparsed, and
    (in the worker) a false relation between numbers when the gold is no relation (``6=7``,
    ``x=6=7``); a plain assignment (``x = 7``) and a true computation (``18-11=7``) stay right.
    """
    verifier = verifier or default_verifier()
    text = several if several is not None else pred
    if several is None and (len(pred) > MAX_ANSWER_CHARS or nesting_depth(pred) > MAX_NESTING):
        return False  # no final answer is this long or deep; parsing it would only spend the budget
    connective = boxes_have_connective(several) if several is not None else has_connective(pred)
    if connective and not has_connective(gold.text):
        return False
    if several is None and not_one_value(pred, gold.text) is not None:
        return False  # two statements (x = 6 \\ne x = 7), read by math-verify as its last value
    if several is not None or gold.raw:
        raw = several is not None
        return verifier.verify(
            gold.text, text, timeout_s, gold_raw=gold.raw, pred_raw=raw, max_wait_s=max_wait_s
        )
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
    return verifier.verify(gold.text, pred, timeout_s, max_wait_s=max_wait_s)
