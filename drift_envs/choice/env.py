r"""``drift/MultipleChoice-v0``: multiple-choice questions with feedback over several turns."""

from __future__ import annotations

from typing import Any

from drift_envs.choice.answers import LETTERS, ChoiceReading, read_choice
from drift_envs.core import Feedback, MultiTurnTextEnv, Task, Verdict

__all__ = ["ANSWER_FORMATS", "FEEDBACK_MODES", "PROMPT_STYLES", "MultipleChoiceEnv"]

FEEDBACK_MODES = ("binary", "eliminate", "none")
PROMPT_STYLES = ("minimal", "turn_by_turn")
#: how the prompt asks for the answer (and how the oracle gives it); every form is read either way
ANSWER_FORMATS = ("boxed", "tag")

DEFAULT_SYSTEM_PROMPT = "Answer the multiple-choice question. Give the letter of your choice in \\boxed{}."
BINARY_FEEDBACK = "Incorrect. Please think again."


class MultipleChoiceEnv(MultiTurnTextEnv):
    r"""Multiple-choice questions where the model chooses, is told it was wrong, and chooses again.

    ## Description
    Each episode is one question with lettered options (GPQA, MMLU, MMLU-Redux, MMLU-Pro, or the
    procedural offline default). The model replies with its reasoning and the letter of one option;
    unless it is right it gets feedback and another turn, up to ``max_turns``.

    An answer is read from ``\boxed{C}``, ``<answer>C</answer>``, ``Answer: C`` / ``The answer is (C)``,
    or a reply that is only the letter or the option's text; the option's text works in place of its
    letter everywhere (``\boxed{Berlin}``). Every committed span of the strongest form present is read:
    a reply that names several options (``A or B``, ``\boxed{A}\boxed{B}``, ``ABCD``, every option's
    text) has chosen none and is wrong (``info["answer"]`` then lists them, ``"A,B"``); see
    :mod:`drift_envs.choice.answers`. The reply is read as a reader sees it (NFKC, so ``Ｂ`` is ``B``;
    zero-width characters and bidi overrides removed; small capitals mapped to letters).

    After the answer, another option may appear only to be rejected: ``\boxed{C}, not A``,
    ``Answer: C because A is too small``, ``B is wrong`` and ``neither A nor B`` keep the answer C;
    an alternative kept in play names several options: ``\boxed{C} (or B)``, ``Answer: C, possibly
    B``, ``C; if not, B``, ``C`` then ``Or B`` on the next line, ``the answer is C, though B could
    be``, ``B isn't wrong`` (two negations), ``(or maybe London)``, ``B or \boxed{C}``, and so does a
    mention that neither rejects nor offers (``\boxed{C} since A gives 37``): a reply gives its
    reasons before the answer, and after it says only why the others are wrong. Text before the
    answer is reasoning and is not read (``B is tempting, but the answer is \boxed{C}`` chose C). A
    reply that does not stand by its letter chose nothing: ``Answer: C (wrong)``, ``C is wrong``,
    ``C ❌``, ``~~C~~``, ``C or the one after`` (:mod:`drift_envs.commitment`, the reading every env
    shares).

    ## Action Space
    ``UnicodeText``: any Unicode string, the model's whole reply.

    ## Observation Space
    ``UnicodeText``: after ``reset``, the question, its options (``A. ...`` one per line) and the
    answer instruction; after ``step``, the feedback, or ``""`` once the episode has ended.

    ## Rewards
    ``1.0`` for the correct option, else ``0.0``; plus ``format_penalty`` (default ``-0.1``) when the
    reply names no option at all.

    ## Feedback
    - ``"binary"`` (the DRIFT reference release's): ``Incorrect. Please think again.``
    - ``"eliminate"``: names the option ruled out and what is left, e.g.
      ``Incorrect: B is not the answer. Ruled out so far: A, B.``; a repeat adds
      ``You chose B before.``; a reply naming several options rules nothing out:
      ``Incorrect: choose exactly one option (you named A, C).``; no option found:
      ``I could not tell which option you chose. Answer with the letter of one option in \boxed{}, e.g. \boxed{A}.``
    - ``"none"``: ``Try again.``
    With ``prompt_style="turn_by_turn"`` every message also says ``You have N actions left.``
    ``info["feedback"]`` holds ``error`` (``"answer"``, ``"several"`` or ``"format"``), ``repeated``,
    ``named`` (the letters the reply named) and, with ``"eliminate"``, ``eliminated``.

    ## Starting State
    ``reset(seed=..., options={"index": i})`` (or ``{"task_id": ...}``) picks a task; without options
    the task index is drawn from the env's ``np_random``.

    ## Episode End
    ``terminated`` when the correct option is chosen; ``truncated`` after ``max_turns`` wrong replies.
    Stepping an ended episode raises :class:`~drift_envs.core.EpisodeFinishedError`.
    ``oracle_reply()`` is the correct letter in the requested format (``\boxed{C}``).

    ## Arguments
    - ``dataset``: ``None``/``"procedural"`` (default), a ``.jsonl``/``.json``/``.parquet`` path, or a hub
      id: ``Idavidrein/gpqa`` (gated) with ``dataset_name="gpqa_diamond"`` and ``split="train"`` (its only
      split); ``cais/mmlu`` with ``dataset_name="all"`` or a subject; ``edinburgh-dawg/mmlu-redux-2.0``
      with ``dataset_name=`` a subject; ``TIGER-Lab/MMLU-Pro`` (``test``/``validation``)
    - ``split``: ``"test"`` (default) or ``"train"`` (procedural: disjoint); a hub dataset's split names
    - ``schema``: ``gpqa``, ``mmlu``, ``mmlu_redux`` or ``mmlu_pro``; detected from the fields by default
    - ``dataset_name``: the hub dataset's config name
    - ``seed``: procedural generator seed, and the seed of GPQA's option shuffle (default 0)
    - ``max_tasks``: keep only the first N tasks
    - ``num_options`` (4), ``kinds`` (``arithmetic``, ``extreme``, ``prime``), ``max_value`` (50): procedural knobs
    - ``max_turns`` (3: with four options, a model that never repeats itself cannot miss four times),
      ``feedback`` (``"binary"``), ``prompt_style`` (``"minimal"``), ``answer_format`` (``"boxed"`` or
      ``"tag"``: what the prompt asks for), ``system_prompt`` (``""`` for none), ``format_penalty`` (-0.1)
    - and every shared kwarg of :class:`~drift_envs.core.EnvOptions` (the base class checks them):
      ``max_text_length`` (65536) and ``render_mode`` too, with the defaults above;
      ``source_options``: more options of the source

    ## Example
    >>> import gymnasium as gym, drift_envs
    >>> env = gym.make("drift/MultipleChoice-v0", feedback="eliminate")
    >>> obs, info = env.reset(seed=0, options={"index": 0})
    >>> print(obs)
    What is 35 + 12?
    A. 37
    B. 420
    C. 47
    D. 45
    <BLANKLINE>
    Answer with the letter of one option in \boxed{}, e.g. \boxed{A}.
    >>> env.step("35 + 12 = 37, so \\boxed{A}")[:3]
    ('Incorrect: A is not the answer. Ruled out so far: A.', 0.0, False)
    >>> env.step("The answer is (C).")[1:3]
    (1.0, True)
    """

    source_kind = "choice"

    option_defaults = {"max_turns": 3, "system_prompt": DEFAULT_SYSTEM_PROMPT}

    def __init__(
        self,
        *,
        schema: str | None = None,
        dataset_name: str | None = None,
        num_options: int | None = None,
        kinds: list[str] | tuple[str, ...] | str | None = None,
        max_value: int | None = None,
        feedback: str = "binary",
        prompt_style: str = "minimal",
        answer_format: str = "boxed",
        **options: Any,
    ) -> None:
        if feedback not in FEEDBACK_MODES:
            raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got {feedback!r}")
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {PROMPT_STYLES}, got {prompt_style!r}")
        if answer_format not in ANSWER_FORMATS:
            raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
        if isinstance(kinds, list):
            kinds = tuple(kinds)
        elif isinstance(kinds, str):
            kinds = (kinds,)
        knobs = {
            "schema": schema,
            "dataset_name": dataset_name,
            "num_options": num_options,
            "kinds": kinds,
            "max_value": max_value,
        }
        super().__init__(source_knobs=knobs, **options)
        self.feedback_mode = feedback
        self.prompt_style = prompt_style
        self.answer_format = answer_format

    # ---- prompts --------------------------------------------------------------------------------
    def _instruction(self, task: Task | None = None) -> str:
        if self.answer_format == "tag":
            return "Give the letter of one option between <answer> and </answer>, e.g. <answer>A</answer>."
        return "Answer with the letter of one option in \\boxed{}, e.g. \\boxed{A}."

    def _turns_left(self, turn: int) -> str:
        left = self.max_turns - turn
        return f"You have {left} action{'s' if left != 1 else ''} left."

    def first_message(self, task: Task) -> str:
        """The question, its lettered options and the answer instruction."""
        options = "\n".join(f"{LETTERS[i]}. {opt}" for i, opt in enumerate(task.meta["options"]))
        text = f"{task.prompt}\n{options}\n\n{self._instruction(task)}"
        if self.prompt_style == "turn_by_turn":
            text += " " + self._turns_left(0)
        return text

    # ---- checking and feedback ------------------------------------------------------------------
    def verify(self, task: Task, action: str) -> Verdict:
        """Read which option(s) the reply named; correct only when it names exactly the right one."""
        reading = read_choice(action, task.meta["options"])
        correct = reading.choice is not None and reading.choice == task.meta["answer_index"]
        return Verdict(
            correct=correct,
            format_ok=reading.format_ok,
            answer=reading.answer,
            details={"named": [LETTERS[i] for i in reading.named], "form": reading.form},
            evidence=reading,
        )

    def reference_reply(self, task: Task) -> str:
        """The correct letter, in the format the prompt asks for."""
        if self.answer_format == "tag":
            return f"<answer>{task.answer}</answer>"
        return f"The answer is \\boxed{{{task.answer}}}."

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        """Binary, eliminating or no-content feedback, per the ``feedback`` kwarg."""
        if verdict.correct:
            return Feedback("Correct.", "correct")
        reading: ChoiceReading = verdict.evidence
        error = "format" if not reading.format_ok else ("several" if reading.several else "answer")
        data: dict = {"error": error, "repeated": repeated}
        if self.feedback_mode == "binary":
            text = BINARY_FEEDBACK
        elif self.feedback_mode == "none":
            text = "Try again."
        elif error == "format":
            text = f"I could not tell which option you chose. {self._instruction(task)}"
        elif error == "several":
            text = f"Incorrect: choose exactly one option (you named {', '.join(verdict.details['named'])})."
        else:
            # every single-option answer of this episode so far was wrong (a right one ends it)
            eliminated = sorted({a for a in self.answers if a is not None and len(a) == 1})
            data["eliminated"] = eliminated
            text = (
                f"Incorrect: {verdict.answer} is not the answer. Ruled out so far: {', '.join(eliminated)}."
            )
            if repeated:
                text += f" You chose {verdict.answer} before."
        if self.prompt_style == "turn_by_turn":
            text += " " + self._turns_left(turn)
        return Feedback(text, self.feedback_mode, data)
