"""``drift/MathFeedback-v0``: math problems with verifier feedback over several turns."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import drift_envs.math.sources  # noqa: F401  (registers the "math" task sources: file, procedural)
from drift_envs.core import Feedback, MultiTurnTextEnv, Task, Verdict
from drift_envs.math.answers import (
    ANSWER_FORMATS,
    as_number,
    box_text_hedge,
    extract_committed,
    extract_final_number,
    normalize_answer,
)
from drift_envs.math.theoremqa import theoremqa_verdict
from drift_envs.math.verifier import GoldAnswer, UndecidedError, check_answer, default_verifier

__all__ = ["FEEDBACK_MODES", "PROMPT_STYLES", "MathFeedbackEnv"]

FEEDBACK_MODES = ("binary", "hint", "none")
PROMPT_STYLES = ("minimal", "turn_by_turn")

DEFAULT_SYSTEM_PROMPT = "Solve the problem. Give the final answer in \\boxed{}."
#: the default system prompt with ``answer_format="final_number"``
FINAL_NUMBER_SYSTEM_PROMPT = "Solve the problem. End your reply with the final answer as a single number."
BINARY_FEEDBACK = "Incorrect. Please think again."
#: the feedback of a step whose check reached no verdict in time (``info["undecided"]``)
UNDECIDED_FEEDBACK = "Your answer could not be checked in time. Please give it again."
#: longest answer the hint feedback quotes in full: a reply cannot grow the next prompt by much
MAX_QUOTED_ANSWER = 200


def _shown(answer: str) -> str:
    return answer if len(answer) <= MAX_QUOTED_ANSWER else answer[: MAX_QUOTED_ANSWER - 1] + "…"


class MathFeedbackEnv(MultiTurnTextEnv):
    r"""Math problems where the model answers, is told what was wrong, and tries again.

    ## Description
    Each episode is one math problem. The model replies with its reasoning and a final answer
    (``\boxed{...}`` or ``<answer>...</answer>``, or with ``answer_format="final_number"`` a number at
    the end of its reply); the answer is checked against the gold answer with
    ``math-verify`` (plus exact fast paths for plain numbers), and unless it is right the model gets
    feedback and another turn, up to ``max_turns``. Tasks come from a procedural generator (the
    offline default), a local file, or a Hugging Face dataset (GSM8K, MATH/MATH-500, MetaMathQA, or a
    generic problem/answer schema).

    ## Action Space
    ``UnicodeText``: any Unicode string, the model's whole reply.

    ## Observation Space
    ``UnicodeText``: after ``reset``, the first user message (the problem and the answer
    instructions); after ``step``, the feedback message, or ``""`` once the episode has ended.

    How an answer is read follows plain ``math_verify.verify`` (checked against math-verify's own
    upstream test cases by ``tests/test_math_agreement.py``): a reply with several ``\boxed{}``
    (``\boxed{1}, \boxed{2}, \boxed{3}``) is read by math-verify as written, so it can answer a set,
    and so is a gold that holds its own boxes or ``$`` delimiters; a decimal equals a number when
    both round alike to 6 places (``\frac{1}{12}`` and ``0.083333``); commas are thousands separators
    only in ``1,234``/``7,425,000`` form (``0,111`` is 0.111, ``32, 349`` a pair). ``info["answer"]``
    lists every box of a reply with several. A MATH-schema gold taken from a ``solution`` with several
    boxes is all of them (``\boxed{1}`` and ``\boxed{-2}``), as math-verify reads the solution.

    Where math-verify would pass a statement that is not the answer, the env does not: a false
    relation between numbers (``\boxed{6=7}``, ``x=6=7``) and a logical connective (``x=6 \lor x=7``,
    ``x=6 \implies x=7``, ``\neg 7``) are wrong for a gold of 7, while a plain assignment (``x = 7``,
    ``y=\frac{14}{3}``) and a true computation (``18-11=7``) stay right. A reply naming two answers
    is wrong: answer tags and boxes that disagree (``<answer>6</answer> \boxed{7}``), a box joined to
    another value (``\boxed{7} \lor 6``, ``\boxed{7} (or maybe 6)``), or text in a box that offers
    one (``\boxed{7 \text{ or 6}}``, unless the gold is written so). So is a reply that does not stand
    by its answer (:mod:`drift_envs.commitment`, the reading every env shares): one that denies,
    excludes or retracts it (``definitely not \boxed{7}``, ``anything but 7``, ``7 is wrong``,
    ``~~7~~``, ``7 ❌``, ``7... just kidding``) or offers one other value after it in a short sentence
    (``\boxed{7} unless it is 6``, ``\boxed{7}. 6 also works.``). A reply is read from its last
    32,768 characters, and one with more than 32 boxes has committed to none (wrong).

    ``answer_format="final_number"`` reads free text the way lm-evaluation-harness's GSM8K
    ``flexible-extract`` filter does: the answer is the last match of ``(-?[$0-9.,]{2,})|(-?[0-9]+)``
    holding a digit, without ``,``, ``$`` and a final ``.``, compared by value. The reply must also
    commit to it: it may not end on an expression (``14 / 7``); its final sentence (after the last
    ``.``/``!``/``?`` before white space, or the last line break) may name no other value except
    operands of a calculation (``18 - 11 = 7`` is fine, ``6 or 7`` and ``between 6 and 7`` are wrong);
    the clause holding the answer may not negate it (``not 7``); and its calculations must be true
    (``6 = 7`` is wrong); two different values around an alternative are a hedge even as operands or
    words (``6 + 0 or 7``, ``x = 6 or x = 7``, ``six or 7``), and so is ``x=6, x=7``. So a reply listing many numbers can only win with its last one, and a hedge
    wins nothing
    (:func:`~drift_envs.math.answers.extract_final_number` has the rule in full).

    ## Rewards
    ``1.0`` for a correct answer, else ``0.0``; plus ``format_penalty`` (default ``-0.1``) when no
    answer could be extracted from the reply. A step whose symbolic check reached no verdict (the
    machine starved its worker past the wall-clock backstop on every attempt) is *undecided*: reward
    ``0.0`` without penalty, ``correct`` False, ``info["undecided"]`` True, and the feedback says so;
    it is never scored as a wrong answer.

    ## Time and load
    What decides a verdict does not depend on the machine's load: a symbolic check may use
    ``timeout_s`` CPU seconds (an answer that needs more, such as ``9^{9^{9^{9}}}``, is wrong at any
    load); the wall clock only bounds the waiting (``max_wait_s`` per attempt, two attempts) and ends
    in an undecided step, not a wrong one. On a quiet machine a step takes at most ``timeout_s + 0.5 s``
    whatever the reply; under load, longer, with the same verdict (see
    :mod:`drift_envs.math.verifier`).

    ## Feedback
    - ``"binary"`` (the DRIFT reference release's): ``Incorrect. Please think again.``
    - ``"hint"``: says whether the format or the answer was wrong, whether a numeric answer was too
      high or too low, and whether the answer repeats an earlier one, e.g.
      ``Incorrect: your answer 12 is too low. You gave 12 before; try something different.`` or
      ``I could not find a final answer. Put your final answer in \boxed{}.``
    - ``"none"``: an empty-content nudge, ``Try again.`` (the model must find its own error)
    - an undecided check (any mode): ``Your answer could not be checked in time. Please give it again.``
    With ``prompt_style="turn_by_turn"`` every message also says ``You have N actions left.``

    ## Starting State
    ``reset(seed=..., options={"index": i})`` (or ``{"task_id": ...}``) picks a task; without options
    the task index is drawn from the env's ``np_random``.

    ## Episode End
    ``terminated`` when an answer is correct; ``truncated`` after ``max_turns`` wrong replies.
    Stepping an ended episode raises :class:`~drift_envs.core.EpisodeFinishedError`.

    ## Arguments
    - ``dataset``: ``None``/``"procedural"`` (default), a ``.jsonl``/``.json``/``.parquet`` path, a hub
      id, or the name of any ``"math"`` task source registered with
      :func:`~drift_envs.sources.register_source`
    - ``split``: dataset split (default ``"test"``; the procedural ``"train"`` and ``"test"`` splits are
      disjoint; a local file is used whole, a hub id gets that split)
    - ``schema``: force a file schema (``gsm8k``, ``math``, ``metamath``, ``theoremqa``, ``generic``); detected by default
    - ``dataset_name``: the hub dataset's config name, if any
    - ``difficulty``: procedural preset (``"tiny"``, ``"easy"``, ``"medium"``, ``"hard"``) or a dict of knobs
    - ``seed``: procedural generator seed (default 0); ``max_tasks``: keep only the first N tasks
    - ``source_options``: more options of the source (a procedural knob such as ``max_value``, or a
      registered source's own fields); an option the source does not have is refused
    - ``max_turns`` (5), ``feedback`` (``"binary"``), ``prompt_style`` (``"minimal"``),
      ``system_prompt`` (a one-line instruction; ``""`` for none), ``format_penalty`` (-0.1)
    - ``answer_format``: ``"auto"`` (last of ``\boxed{}``/``<answer>``), ``"boxed"``, ``"tag"``, or
      ``"final_number"`` (the last number of free text, as above; the prompt and the default system
      prompt then ask for the final answer as a single number at the end)
    - ``timeout_s``: CPU seconds one symbolic check may use (2.0); an answer that needs more is wrong
    - ``max_wait_s``: wall-clock backstop of one attempt at a check (default ``max(30, 15 * timeout_s)``);
      when both attempts run out the step is undecided
    - and every shared kwarg of :class:`~drift_envs.core.EnvOptions` (the base class checks them):
      ``max_text_length`` (65536) and ``render_mode`` too, with the defaults above

    ## Oracle
    ``env.unwrapped.oracle_reply()`` is the gold answer in the env's format (``\boxed{gold}``, or
    ``<answer>gold</answer>`` with ``answer_format="tag"``), correct on the first turn. With
    ``answer_format="final_number"`` it is ``The answer is N.`` where the gold is a number a final
    number can state (an integer or a decimal), else None.

    ## Example
    >>> import gymnasium as gym, drift_envs
    >>> env = gym.make("drift/MathFeedback-v0", feedback="hint")
    >>> obs, info = env.reset(seed=0, options={"index": 1})
    >>> obs
    'Compute 18 - 11.\n\nPut your final answer within \\boxed{}.'
    >>> obs, reward, terminated, truncated, info = env.step("18 - 11 = 6, so \\boxed{6}")
    >>> obs, reward, terminated
    ('Incorrect: your answer 6 is too low.', 0.0, False)
    >>> env.step("\\boxed{7}")[1:3]
    (1.0, True)
    >>> obs, info = env.reset(options={"index": 2})
    >>> env.unwrapped.oracle_reply()
    '\\boxed{16}'
    """

    source_kind = "math"

    option_defaults = {"system_prompt": DEFAULT_SYSTEM_PROMPT}
    # small sums, hint feedback, three turns and no system prompt: a tiny model learns it in minutes
    quickstart_kwargs = {"difficulty": "tiny", "feedback": "hint", "max_turns": 3, "system_prompt": ""}

    def __init__(
        self,
        *,
        schema: str | None = None,
        dataset_name: str | None = None,
        difficulty: str | dict | None = None,
        feedback: str = "binary",
        prompt_style: str = "minimal",
        answer_format: str = "auto",
        timeout_s: float = 2.0,
        max_wait_s: float | None = None,
        **options: Any,
    ) -> None:
        if feedback not in FEEDBACK_MODES:
            raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got {feedback!r}")
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {PROMPT_STYLES}, got {prompt_style!r}")
        if answer_format not in ANSWER_FORMATS:
            raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        if max_wait_s is not None and not max_wait_s > 0:
            raise ValueError(f"max_wait_s must be positive (or None for the default), got {max_wait_s!r}")
        if (
            answer_format == "final_number"
            and options.get("system_prompt", DEFAULT_SYSTEM_PROMPT) == DEFAULT_SYSTEM_PROMPT
        ):
            options["system_prompt"] = FINAL_NUMBER_SYSTEM_PROMPT  # the default asks for a box
        # the named source knobs are the built-in sources' options; a source refuses the ones it lacks
        knobs = {"schema": schema, "dataset_name": dataset_name, "difficulty": difficulty}
        super().__init__(source_knobs=knobs, **options)
        self.feedback_mode = feedback
        self.prompt_style = prompt_style
        self.answer_format = answer_format
        self.timeout_s = float(timeout_s)
        self.max_wait_s = None if max_wait_s is None else float(max_wait_s)
        self._gold = lru_cache(maxsize=4096)(GoldAnswer.from_text)
        self._verifier = default_verifier()
        self._verifier.warm_up()

    # ---- MultiTurnTextEnv hooks -----------------------------------------------------------------
    def _instruction(self) -> str:
        if self.answer_format == "tag":
            return "Put your final answer within <answer></answer>."
        if self.answer_format == "final_number":
            return "End your reply with the final answer as a single number."
        return "Put your final answer within \\boxed{}."

    def _turns_left(self, turn: int) -> str:
        left = self.max_turns - turn
        return f"You have {left} action{'s' if left != 1 else ''} left."

    def first_message(self, task: Task) -> str:
        """The problem plus the answer-format instruction (and the turn budget, turn by turn)."""
        text = f"{task.prompt}\n\n{self._instruction()}"
        if self.prompt_style == "turn_by_turn":
            text += " " + self._turns_left(0)
        return text

    def reference_reply(self, task: Task) -> str:
        r"""The gold answer in this env's answer format, and nothing else: ``\boxed{gold}``, or
        ``<answer>gold</answer>`` with ``answer_format="tag"``; correct under :meth:`verify` for every
        task of the procedural presets, GSM8K and MATH-500 (``tests/test_task_sources.py``)."""
        gold = str(task.answer)
        if self.answer_format == "tag":
            return f"<answer>{gold}</answer>"
        if self.answer_format == "final_number":
            reply = f"The answer is {gold}."
            final = extract_final_number(reply)
            # only a gold the reading gives back whole: 3/4 or \frac{1}{2} cannot be a final number
            if final is None or final.uncommitted or final.answer != gold.replace(",", "").removesuffix("."):
                return None
            return reply
        return f"\\boxed{{{gold}}}"

    def verify(self, task: Task, action: str) -> Verdict:
        """Extract the final answer and check it against the gold answer (undecided if no check could finish)."""
        committed = extract_committed(action, self.answer_format)
        if committed is None:
            return Verdict(correct=False, format_ok=False, answer=None)
        if committed.several is not None:  # every box, in order: the set the reply answers
            answer = ", ".join(normalize_answer(box) for box in committed.boxes)
        else:
            answer = normalize_answer(committed.answer)
        if committed.uncommitted is not None:  # a hedge or a list of guesses: wrong whatever it names
            return Verdict(
                correct=False, format_ok=True, answer=answer, details={"uncommitted": committed.uncommitted}
            )
        # text in a box is dropped by math-verify: an alternative there (\boxed{7 \text{ or 6}}) is a hedge,
        # unless the gold itself is written so
        hedge = next(filter(None, map(box_text_hedge, (*committed.boxes, committed.answer))), None)
        if hedge is not None and box_text_hedge(str(task.answer)) is None:
            return Verdict(correct=False, format_ok=True, answer=answer, details={"uncommitted": hedge})
        try:
            if (
                task.meta.get("Answer_type") is not None
            ):  # TheoremQA's typed golds: bool, option, list, number
                return theoremqa_verdict(
                    task,
                    committed,
                    timeout_s=self.timeout_s,
                    verifier=self._verifier,
                    max_wait_s=self.max_wait_s,
                )
            correct = check_answer(
                self._gold(str(task.answer)),
                committed.answer,
                timeout_s=self.timeout_s,
                verifier=self._verifier,
                several=committed.several,
                max_wait_s=self.max_wait_s,
            )
        except UndecidedError as e:
            return Verdict(
                correct=False, format_ok=True, answer=answer, undecided=True, details={"why": str(e)}
            )
        return Verdict(correct=correct, format_ok=True, answer=answer)

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        """Binary, hint or no-content feedback, per the ``feedback`` kwarg."""
        if verdict.undecided:  # no verdict: the model is told so, in every feedback mode
            text = UNDECIDED_FEEDBACK
            if self.prompt_style == "turn_by_turn":
                text += " " + self._turns_left(turn)
            return Feedback(text, "undecided", {"error": "undecided", "repeated": repeated})
        if verdict.correct:
            return Feedback("Correct.", "correct")
        data: dict = {"error": "answer" if verdict.format_ok else "format", "repeated": repeated}
        if self.feedback_mode == "binary":
            text = BINARY_FEEDBACK
        elif self.feedback_mode == "none":
            text = "Try again."
        elif not verdict.format_ok:
            text = f"I could not find a final answer. {self._instruction()}"
        else:
            text = "Incorrect."
            gold = self._gold(str(task.answer)).number
            given = as_number(verdict.answer or "")
            if gold is not None and given is not None:
                data["direction"] = "high" if given > gold else "low"
                text = f"Incorrect: your answer {verdict.answer} is too {data['direction']}."
            if repeated:
                text += f" You gave {_shown(verdict.answer or '')} before; try something different."
        if self.prompt_style == "turn_by_turn":
            text += " " + self._turns_left(turn)
        return Feedback(text, self.feedback_mode, data)
