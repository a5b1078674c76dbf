"""``drift/UserCorrection-v0``: a simulated user with hidden preferences corrects the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from drift_envs.core import Feedback, MultiTurnTextEnv, Task, Verdict
from drift_envs.user.constraints import Check, Constraint, compose_reply, constraint_from_dict, count_words
from drift_envs.user.constraints.normalize import normalize_reply
from drift_envs.user.simulator import UserSimulator, UserTurn, check_persona, make_user
from drift_envs.user.tasks import UserTask

__all__ = ["ReplyChecks", "UserCorrectionEnv"]

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Follow the user's instructions and corrections."
_REVEAL_INTRO = "Please follow these requirements:"


class UserCorrectionEnv(MultiTurnTextEnv):
    r"""A user asks for something, has preferences the model cannot see, and corrects every reply.

    ## Description
    Each episode is one request (a short piece of writing, a list, an answer to a question, or a
    summary of a given text) plus a set of hidden constraints drawn from a library of checkable ones:
    length in words or sentences, required or forbidden words, lower or upper case, emphasis in
    capitals, an exact number of bullet points, a JSON object, a title in ``<<...>>``, a ``P.S.``,
    start and end phrases, no commas, numbers as digits or as words, one line, quotation marks (see
    :mod:`drift_envs.user.constraints`). ``revealed`` of them are stated up front; the rest the model
    learns only from the user's corrections. A procedural task also checks that the reply serves
    the request at all (:mod:`drift_envs.user.constraints.served`: it names the topic, answers the
    question, holds the number of list items asked for, and does more than repeat the request: words
    of its own, no copy of the text summarised, no placeholder or repeated items), so filler that
    ignores the request fails however well it meets the preferences; the user voices that check
    last, in persona (``I asked for 4 items and I count 0.``). Every check reads the reply once
    normalised as a reader sees it (:mod:`drift_envs.user.constraints.normalize`: a zero-width space,
    a Greek, Armenian or Lisu look-alike, a mark over a look-alike or a right-to-left override in a
    forbidden word, U+201A or a cedilla for a comma, invisible or blank characters joining words,
    small capitals or Cherokee letters in a lowercase reply, or ③ under no digits do not get past them).
    Success is checked by code, so the env is cheap,
    deterministic and usable as a training signal; only the wording of the corrections comes from the
    simulated user (rule-based by default, or an LLM behind an OpenAI-compatible endpoint).

    ## Action Space
    ``UnicodeText``: any Unicode string, the model's whole reply.

    ## Observation Space
    ``UnicodeText``: after ``reset``, the request (with the revealed requirements, if any); after
    ``step``, the user's correction, or ``""`` once the episode has ended.

    ## Rewards
    ``1.0`` when every constraint holds, else ``0.0``; plus ``format_penalty`` (default ``-0.1``) for
    a reply with no word in it. ``info["constraints_satisfied"]`` is the fraction of checks that
    hold (a denser signal; the request check counts as one), ``info["failed_constraints"]`` their
    labels, ``info["constraint_results"]`` one ``{"constraint", "ok", "detail"}`` record per check,
    and ``info["request_served"]`` the request check's verdict (procedural tasks only).

    ## Feedback
    The rule-based user addresses the first violated constraint (``corrections="first"``) or all of
    them (``"all"``), drawing from several phrasings with the env's ``np_random``:
    - ``"precise"``: ``Thanks, but that's too long: 34 words. Please keep it to at most 20 words.``,
      ``Please don't use "ocean" — find another way to say it.``
    - ``"terse"``: ``Too long. Max 20 words.``, ``No commas.``, ``JSON only.``
    - ``"vague"``: ``That's not quite what I wanted. Please try again.`` — never says which
      constraint failed, so feedback informativeness is a knob to study.
    ``info["feedback"]`` holds ``text``, ``kind`` (``"correction"``, ``"binary"`` or ``"success"``),
    ``data`` (persona, the constraints addressed) and ``failed``/``satisfied``/``total``.

    ## Oracle
    ``env.unwrapped.oracle_reply()`` is a reply meeting every check of the current task (the
    request's own words, words of its own and filler around the required pieces, see
    :func:`~drift_envs.user.constraints.compose_reply`); it names what the request is about and holds
    the substance the request check asks for, but is no real answer. None only for a file task whose
    set it cannot compose.

    ## Starting State
    ``reset(seed=..., options={"index": i})`` (or ``{"task_id": ...}``) picks a task; without options
    the task index is drawn from the env's ``np_random``. The same seed gives the same task,
    constraints and corrections.

    ## Episode End
    ``terminated`` when every constraint holds; ``truncated`` after ``max_turns`` replies that did
    not. Stepping an ended episode raises :class:`~drift_envs.core.EpisodeFinishedError`.

    ## Arguments
    - ``dataset``: ``"procedural"`` (default, offline, deterministic per index), a task file (JSONL,
      JSON or Parquet: ``{"task_id", "request", "constraints": [{"type": "max_words", "n": 20}, ...],
      "revealed"}``) or a hub dataset id in that schema, a list of such records, or the name of another
      registered ``"user"`` task source (:func:`drift_envs.sources.register_source`)
    - ``split``: ``"test"`` (default) or ``"train"``; the procedural splits share no request (about a
      quarter of the requests are held out for test). A file or a list of records is one set of
      tasks, used whole whatever ``split`` says (keep one file per split).
    - ``seed``: procedural generator seed (0); ``max_tasks``: number of procedural tasks (10 000), or
      keep only the first N tasks of a file
    - ``num_constraints``: constraints per procedural task, an int or a ``(low, high)`` range (2);
      like ``constraint_kinds``, refused with a file (the file holds each task's constraints)
    - ``constraint_kinds``: restrict the procedural kinds drawn, a list such as ``["no_commas",
      "max_words"]`` or a difficulty, ``"easy"``/``"medium"``/``"hard"``, for the kinds of that
      difficulty or easier (default: every registered kind that can compose its part of a reply,
      which all built-in kinds can; see :mod:`drift_envs.user.constraints`)
    - ``source_options``: any other option of the task source (e.g. ``{"size": 500}``); see
      :class:`~drift_envs.user.tasks.ProceduralUserConfig`
    - ``revealed``: how many constraints are stated up front (default: a file task's own
      ``revealed``, else 0); ``"all"`` states every one
    - ``persona``: ``"precise"`` (default), ``"terse"`` or ``"vague"``; ``corrections``:
      ``"first"`` (default) or ``"all"``
    - ``user``: ``"rules"`` (default), or an endpoint config such as ``{"base_url":
      "http://localhost:8000/v1", "model": "Qwen/Qwen2.5-0.5B-Instruct", "cache":
      "user_replay.jsonl"}`` (see :class:`~drift_envs.user.simulator.LLMUser`), or any object with
      ``respond(turn, rng)``
    - ``max_turns`` (5), ``system_prompt`` (a one-line instruction; ``""`` for none),
      ``format_penalty`` (-0.1)
    - and every shared kwarg of :class:`~drift_envs.core.EnvOptions` (the base class checks them):
      ``max_text_length`` (65536) and ``render_mode`` too, with the defaults above

    ## Example
    >>> import gymnasium as gym, drift_envs
    >>> env = gym.make("drift/UserCorrection-v0", persona="terse")
    >>> obs, info = env.reset(seed=0, options={"index": 2})
    >>> obs
    'Write a few lines of poetry about the moon.'
    >>> obs, reward, terminated, truncated, info = env.step("A silver coin above the sea.")
    >>> obs, reward, info["failed_constraints"]
    ('Where\'s "moon"?', 0.0, ["include_keywords(words=['moon'])", 'uppercase()'])
    >>> obs, reward, terminated, truncated, info = env.step("The moon: a silver coin above the sea.")
    >>> obs, reward, info["constraints_satisfied"]
    ('Capitals only.', 0.0, 0.6666666666666666)
    >>> env.step("THE MOON: A SILVER COIN ABOVE THE SEA.")[1:3]
    (1.0, True)
    >>> _ = env.reset(options={"index": 2})
    >>> env.unwrapped.oracle_reply()  # meets every check: the request's words in a clause, words of its own
    'MOON IS THE CLEAR GENTLE SIMPLE MOON NIGHT SILVER CRATERS ORBIT THIS.'
    >>> env.step(env.unwrapped.oracle_reply())[1:3]
    (1.0, True)
    """

    source_kind: ClassVar[str] = "user"

    option_defaults = {"dataset": "procedural", "system_prompt": DEFAULT_SYSTEM_PROMPT}
    # two constraints per task (the default): another task's oracle reply then breaks one of them 97% of
    # the time, so the quickstart's teacher has wrong replies to give
    quickstart_kwargs = {"max_turns": 3, "system_prompt": ""}

    def __init__(
        self,
        *,
        num_constraints: int | tuple[int, int] | None = None,
        constraint_kinds: Sequence[str] | str | None = None,
        revealed: int | str | None = None,
        persona: str = "precise",
        corrections: str = "first",
        user: Any = "rules",
        **options: Any,
    ) -> None:
        check_persona(persona, corrections)
        if revealed is not None and revealed != "all":
            if not isinstance(revealed, int) or isinstance(revealed, bool) or revealed < 0:
                raise ValueError(f"revealed must be an integer >= 0, 'all' or None, got {revealed!r}")
        # the procedural source's own knobs, kept as env kwargs (None: the source's default)
        knobs = {"num_constraints": num_constraints, "constraint_kinds": constraint_kinds}
        super().__init__(source_knobs=knobs, **options)
        self.persona = persona
        self.corrections = corrections
        self.revealed = revealed
        self.user: UserSimulator = make_user(user, persona=persona, corrections=corrections)

    # ---- tasks --------------------------------------------------------------------------------
    def user_task(self, index: int) -> UserTask:
        """The source's :class:`UserTask` at ``index`` (request and constraint objects)."""
        return _as_user_task(self.source[index])

    def _revealed_count(self, task: UserTask) -> int:
        wanted = self.revealed if self.revealed is not None else (task.revealed or 0)
        return len(task.constraints) if wanted == "all" else min(int(wanted), len(task.constraints))

    def get_task(self, index: int) -> UserTask:
        """The task at ``index``: ``answer`` holds the constraints, ``meta`` their JSON specs
        (``"constraints"``) and how many are stated up front (``"revealed"``)."""
        task = self.user_task(index)
        specs = [c.to_dict() for c in task.constraints]
        meta = {**task.meta, "constraints": specs, "revealed": self._revealed_count(task)}
        return UserTask(task.task_id, task.prompt, task.answer, meta, task.revealed, task.served)

    def first_message(self, task: Task) -> str:
        """The request, followed by the revealed requirements as a bullet list."""
        user_task = _as_user_task(task)
        shown = user_task.constraints[: task.meta["revealed"]]
        if not shown:
            return user_task.request
        return (
            user_task.request + "\n\n" + _REVEAL_INTRO + "\n" + "\n".join(f"- {c.describe()}" for c in shown)
        )

    def reference_reply(self, task: Task) -> str | None:
        """A reply meeting every constraint of ``task`` (:func:`~drift_envs.user.constraints.compose_reply`:
        filler around the required pieces; it does not answer the request). None only for a file task
        whose constraints compose_reply cannot meet together, or that holds a kind declared
        ``composable = False``."""
        user_task = _as_user_task(task)
        return compose_reply(_checked(user_task), user_task.meta.get("topic_words", ()))

    # ---- checking and feedback ----------------------------------------------------------------
    def verify(self, task: Task, action: str) -> Verdict:
        """Check every constraint; correct when all hold, format_ok when the reply has any word.

        ``verdict.evidence`` is the :class:`ReplyChecks` (the reply and one check per constraint)
        that :meth:`make_feedback` hands to the simulated user."""
        user_task = _as_user_task(task)
        constraints = _checked(user_task)
        # once per reply, before every check: what a reader sees (look-alike letters, invisible
        # characters and comma-like marks mapped; see drift_envs.user.constraints.normalize)
        reply = normalize_reply(action)
        checks = tuple(c.evaluate(reply, normalized=True) for c in constraints)
        failed = [c.label() for c, r in zip(constraints, checks, strict=True) if not r.ok]
        satisfied = len(constraints) - len(failed)
        has_words = count_words(reply) > 0
        info = {
            "constraints_satisfied": satisfied / len(constraints),
            "failed_constraints": failed,
            "constraint_results": [
                {"constraint": c.to_dict(), "ok": r.ok, "detail": r.detail}
                for c, r in zip(constraints, checks, strict=True)
            ],
        }
        if user_task.served is not None:
            info["request_served"] = checks[-1].ok
        return Verdict(
            correct=not failed,
            format_ok=has_words,
            answer=" ".join(action.split()) if has_words else None,
            details={"failed": failed, "satisfied": satisfied, "total": len(constraints)},
            info=info,
            evidence=ReplyChecks(action, checks),
        )

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        """The simulated user's message about the reply ``verdict`` checked."""
        user_task = _as_user_task(task)
        evidence: ReplyChecks = verdict.evidence
        user_turn = UserTurn(
            task_id=user_task.task_id,
            request=user_task.request,
            constraints=_checked(user_task),
            checks=evidence.checks,
            reply=evidence.reply,
            turn=turn,
            repeated=repeated,
        )
        return self.user.respond(user_turn, self.np_random)


@dataclass(frozen=True)
class ReplyChecks:
    """What :meth:`UserCorrectionEnv.verify` found, for the simulated user: the reply and its checks."""

    reply: str
    checks: tuple[Check, ...]


def _checked(task: UserTask) -> tuple[Constraint, ...]:
    """What a reply is checked against, in the order the user addresses it: the constraints, then
    the check that the reply serves the request (procedural tasks)."""
    return task.constraints if task.served is None else (*task.constraints, task.served)


def _as_user_task(task: Task) -> UserTask:
    """``task`` as a :class:`UserTask`; a plain Task from another source (constraint specs as its
    ``answer``) is converted."""
    if isinstance(task, UserTask):
        return task
    constraints = tuple(
        c if isinstance(c, Constraint) else constraint_from_dict(c, where=f"task {task.task_id!r} constraint")
        for c in task.answer
    )
    return UserTask(task.task_id, task.prompt, constraints, dict(task.meta), task.meta.get("revealed"))
