"""The environment core: one base class owns the episode bookkeeping every ``drift/*`` env shares.

A subclass supplies only its tasks, its check of a reply and its feedback; the base keeps the turn
budget, the conversation, ``terminated``/``truncated``, repeated answers, the format penalty, the
``info`` fields of the contract (see docs/design.md) and the errors on misuse.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from types import ModuleType
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.spaces import Text
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

__all__ = [
    "EnvOptions",
    "EpisodeFinishedError",
    "Feedback",
    "MultiTurnTextEnv",
    "SharedTexts",
    "Task",
    "UnicodeText",
    "Verdict",
    "valid_text",
]

# Characters `UnicodeText.sample` draws from: printable ASCII plus a few multi-byte code points, so
# random actions exercise the unicode paths of every env without being mostly unprintable noise.
_SAMPLE_CHARSET = string.printable + "éüßπ√∞≤≥×÷αβγ中文🙂"
# A code point that UTF-8 cannot encode: a surrogate on its own (from a bad decode, an exception
# message quoting bytes, a model's reply). Trajectory writers and tokenizers raise on it.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _truncation_marker(cut: int) -> str:
    return f"\n[... {cut} more characters cut: the text exceeded the observation space's limit]"


def valid_text(text: str, max_length: int | None = None) -> str:
    """``text`` as valid UTF-8 within ``max_length`` characters: what every observation is made into.

    A surrogate pair written as two code points becomes the character it encodes; a lone surrogate
    becomes U+FFFD. A text longer than ``max_length`` keeps its head and ends in a visible marker
    saying how many characters were cut (the result is exactly ``max_length`` long).
    """
    if _SURROGATE_RE.search(text) is not None:
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if max_length is not None and len(text) > max_length:
        # the marker's own length depends on the count it prints; two passes settle it
        marker = _truncation_marker(len(text) - max_length)
        marker = _truncation_marker(len(text) - max(0, max_length - len(marker)))
        if len(marker) >= max_length:
            return text[:max_length]
        text = text[: max_length - len(marker)] + marker
    return text


def _valid_json(value: Any) -> Any:
    """``value`` (``info``: dicts, lists, tuples, strings) with every string made valid UTF-8; the
    same object when nothing needed a change."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        out = {k: _valid_json(v) for k, v in value.items()}
        return value if all(out[k] is value[k] for k in value) else out
    if isinstance(value, (list, tuple)):
        items = [_valid_json(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


class UnicodeText(Text):
    """A Text space that holds any Unicode string of length ``min_length..max_length``.

    Gymnasium's own :class:`~gymnasium.spaces.Text` only accepts characters of a fixed charset
    (alphanumerics by default), which rejects almost every real model reply. This subclass keeps the
    ``Text`` type (so vector utilities treat it as text) but accepts every code point.
    """

    def __init__(self, max_length: int = 65536, *, min_length: int = 0, seed: Any = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=_SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        """True for a ``str`` whose length lies within the bounds and that is valid UTF-8 (no lone
        surrogate), so ``check_env`` catches an observation a trajectory writer could not store."""
        return (
            isinstance(x, str)
            and self.min_length <= len(x) <= self.max_length
            and _SURROGATE_RE.search(x) is None
        )

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random string of at most 64 characters (the full ``max_length`` would be useless noise)."""
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        hi = min(self.max_length, max(self.min_length, 64))
        length = int(self.np_random.integers(self.min_length, hi + 1))
        idx = self.np_random.integers(0, len(_SAMPLE_CHARSET), size=length)
        return "".join(_SAMPLE_CHARSET[i] for i in idx)

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )


# ---- UnicodeText in AsyncVectorEnv's shared memory ---------------------------------------------------
# Gymnasium's own Text handlers map characters through the space's charset (a UnicodeText charset is
# only what `sample` draws from) and read the buffer once, at construction, into a tuple that later
# steps never refresh: every async observation came back as max_length '0's. UnicodeText keeps its
# own: one int32 row of code points per env, padded with -1, read live on every access.


class SharedTexts(Sequence):
    """The observations of an ``AsyncVectorEnv`` over a :class:`UnicodeText` space with shared memory:
    a live, read-only sequence of ``n`` strings decoded from the shared buffer on each access.

    ``AsyncVectorEnv`` hands out ``deepcopy(observations)`` (its default ``copy=True``), which is a
    plain tuple of ``str``, as ``SyncVectorEnv`` gives; with ``copy=False`` the caller gets this view.
    """

    def __init__(self, buffer: Any, n: int, max_length: int) -> None:
        self._buffer = buffer
        self._n = n
        self._max_length = max_length

    def _rows(self) -> np.ndarray:
        return np.frombuffer(self._buffer.get_obj(), dtype=np.int32).reshape(self._n, self._max_length)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self)[index]
        row = self._rows()[index]
        ends = np.flatnonzero(row < 0)
        end = int(ends[0]) if ends.size else self._max_length
        return row[:end].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


@create_shared_memory.register(UnicodeText)
def _create_unicode_text_shared_memory(space: UnicodeText, n: int = 1, ctx: ModuleType = mp) -> Any:
    buffer = ctx.Array(np.dtype(np.int32).char, n * space.max_length)
    np.frombuffer(buffer.get_obj(), dtype=np.int32).fill(-1)
    return buffer


@read_from_shared_memory.register(UnicodeText)
def _read_unicode_text_from_shared_memory(space: UnicodeText, shared_memory: Any, n: int = 1) -> SharedTexts:
    return SharedTexts(shared_memory, n, space.max_length)


@write_to_shared_memory.register(UnicodeText)
def _write_unicode_text_to_shared_memory(
    space: UnicodeText, index: int, value: str, shared_memory: Any
) -> None:
    if not isinstance(value, str):
        raise TypeError(
            f"UnicodeText shared memory: env {index} returned a {type(value).__name__}, not a str"
        )
    codes = np.frombuffer(value.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int32)
    size = space.max_length
    if codes.size > size:
        raise ValueError(
            f"UnicodeText shared memory: env {index} returned an observation of {codes.size} characters, "
            f"over the space's max_length {size}"
        )
    row = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)[index * size : (index + 1) * size]
    row[: codes.size] = codes
    row[codes.size :] = -1


class EpisodeFinishedError(ResetNeeded):
    """``step`` was called on an episode that already terminated or was truncated."""


@dataclass
class Task:
    """One problem of an environment: what the model is asked and what counts as right."""

    task_id: str
    prompt: str
    answer: Any
    meta: dict = field(default_factory=dict)


@dataclass
class Verdict:
    """The result of checking one model reply against a task."""

    correct: bool
    format_ok: bool
    answer: str | None
    details: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    #: what the check found, for :meth:`MultiTurnTextEnv.make_feedback` (the sandbox's result, the
    #: constraint checks, ...): passed along with the verdict, never put into ``info`` as it is
    evidence: Any = field(default=None, repr=False, compare=False)
    #: the step's reward when the env defines its own (a game's score); None: 1.0 if correct else 0.0.
    #: ``format_penalty`` is added either way when ``format_ok`` is False
    reward: float | None = None
    #: the episode ends with this reply although it is not correct (a lost game); ``terminated``
    ends_episode: bool = False
    #: the checker could not reach a verdict in time, even after retrying: the step scores 0.0 with no
    #: format penalty, ``correct`` is False and ``info["undecided"]`` is True (docs/design.md: never silently wrong)
    undecided: bool = False


@dataclass
class Feedback:
    """Typed feedback: ``text`` becomes the next user message; ``info["feedback"]`` holds
    ``{"text", "kind", **data}`` plus the verdict's details."""

    text: str
    kind: str
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-able view of the feedback."""
        return asdict(self)


@dataclass(frozen=True)
class EnvOptions:
    """The keyword arguments every ``drift/*`` env takes, declared once: an env subclass declares only
    its own kwargs and forwards the rest (``**options``) to :class:`MultiTurnTextEnv`, which checks them
    against these fields. An env changes a default through its ``option_defaults`` (``max_turns``,
    ``system_prompt``, ...); its docstring names those defaults and refers here for the rest.

    Args:
        dataset: what the env's registered task source (``source_kind``) resolves: None for the kind's
            ``"procedural"`` source, a registered source name, a local file or a hub id (see
            :func:`drift_envs.sources.make_source`); an env without a source refuses it.
        split: the task split (``"train"``/``"test"``; a hub dataset's own split names).
        seed: the task generator's seed (procedural sources).
        max_tasks: keep only the first N tasks (None: all of them).
        source_options: more options of the task source (its config fields); an option the source
            does not have is refused by the source.
        max_turns: replies per episode before it is truncated.
        format_penalty: added to a step's reward when no answer could be read from the reply (<= 0).
        system_prompt: the conversation's system message (None or ``""``: none).
        max_text_length: the observation and action spaces' longest text, in characters.
        render_mode: ``"ansi"``, ``"human"`` or None.

    >>> from drift_envs.choice.env import MultipleChoiceEnv
    >>> options = MultipleChoiceEnv.env_options(split="train")  # what gym.make(..., split="train") gets
    >>> options.split, options.max_turns  # MultipleChoice's own default of max_turns is 3
    ('train', 3)
    >>> MultipleChoiceEnv.env_options(max_turn=2)
    Traceback (most recent call last):
    TypeError: MultipleChoiceEnv got an unexpected keyword argument 'max_turn'; it takes schema, ...
    """

    dataset: Any = None
    split: str = "test"
    seed: int = 0
    max_tasks: int | None = None
    source_options: dict | None = None
    max_turns: int = 5
    format_penalty: float = -0.1
    system_prompt: str | None = None
    max_text_length: int = 65536
    render_mode: str | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The shared kwarg names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    def validate(self, render_modes: Sequence[str] = ()) -> None:
        """Raise ``ValueError`` naming the first bad option (``render_modes``: the env's own)."""
        max_turns = self.max_turns
        if not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns < 1:
            raise ValueError(f"max_turns must be a positive integer, got {max_turns!r}")
        if not np.isfinite(self.format_penalty) or self.format_penalty > 0:
            raise ValueError(
                f"format_penalty must be a finite number <= 0 (a penalty; a positive value would reward "
                f"replies without an answer, and trajectory readers refuse it), got {self.format_penalty!r}"
            )
        if self.render_mode is not None and self.render_mode not in render_modes:
            raise ValueError(
                f"render_mode must be one of {list(render_modes)} or None, got {self.render_mode!r}"
            )


class MultiTurnTextEnv(gym.Env[str, str]):
    """Base class of every multi-turn text environment with feedback.

    Subclasses implement :meth:`first_message`, :meth:`verify` and :meth:`make_feedback`, and get
    their tasks either from a registered task source (set ``source_kind``; the base then owns the
    ``dataset``, ``split``, ``seed`` and ``max_tasks`` kwargs and builds ``self.source`` through
    :func:`drift_envs.sources.make_source`) or by overriding :meth:`num_tasks` and :meth:`get_task`.
    :meth:`reference_reply` gives the env's oracle (see :meth:`oracle_reply`).

    The base owns the kwargs every env shares (:class:`EnvOptions`): a subclass's ``__init__`` declares
    only its own kwargs and passes ``**options`` on (``super().__init__(**options)``, with
    ``source_knobs=`` for the task-source options it names itself); ``option_defaults`` changes a
    shared default, ``quickstart_kwargs`` states what ``drift quickstart`` runs the env with. A
    subclass reads the episode through :attr:`task`, :attr:`turn` and :attr:`answers` and shapes the
    conversation through :meth:`system_message`, :meth:`assistant_message` and
    :meth:`feedback_messages`, never through the base's private fields.

    The base class implements ``reset``/``step`` and the contract of docs/design.md:
    ``options={"index": i}`` or ``{"task_id": id}`` replays one task exactly; the reward of a
    step is ``1.0`` when correct else ``0.0``, plus ``format_penalty`` when nothing could be extracted;
    ``terminated`` when solved, ``truncated`` when ``max_turns`` replies were all wrong.

    ``info`` after every call: ``task_id``, ``index``, ``turn``, ``max_turns``, ``messages``; after
    ``step`` also ``correct``, ``format_ok``, ``answer``, ``repeated``, ``feedback`` and ``undecided``
    (True when the verdict says its check could not be decided in time: see :attr:`Verdict.undecided`).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 1}
    #: the kind of task source this env's ``dataset`` kwarg names (None: the env makes its own tasks)
    source_kind: ClassVar[str | None] = None
    #: this env's own defaults of the shared :class:`EnvOptions` (``{"max_turns": 3}``, a system prompt)
    option_defaults: ClassVar[Mapping[str, Any]] = {}
    #: the env kwargs ``drift quickstart --env <id>`` runs this env with (settings, such as the prompt
    #: style, that a tiny model learns in minutes); see :meth:`quickstart_preset`
    quickstart_kwargs: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, *, source_knobs: Mapping[str, Any] | None = None, **options: Any) -> None:
        """Check ``options`` against :class:`EnvOptions` (with this env's ``option_defaults``) and set
        up the episode bookkeeping.

        ``source_knobs`` is for subclasses: the task-source options they declare as kwargs of their own
        (``difficulty``, ``schema``, ...), under which ``source_options`` is merged (it wins).
        """
        opts = self.env_options(**options)
        opts.validate(self.metadata["render_modes"])
        self.options = opts
        self.dataset = opts.dataset
        self.split = opts.split
        self.seed = opts.seed
        self.max_tasks = opts.max_tasks
        self.source: Any = None
        source_options = {**(source_knobs or {}), **(opts.source_options or {})}
        if self.source_kind is not None:
            from drift_envs.sources.base import make_source

            self.source = make_source(
                self.source_kind,
                opts.dataset,
                split=opts.split,
                seed=opts.seed,
                max_tasks=opts.max_tasks,
                **source_options,
            )
        elif opts.dataset is not None or opts.source_options:
            raise TypeError(f"{type(self).__name__} takes its tasks from no task source; drop dataset=")
        self.max_turns = opts.max_turns
        self.format_penalty = float(opts.format_penalty)
        self.system_prompt = opts.system_prompt
        self.render_mode = opts.render_mode
        self.observation_space = UnicodeText(opts.max_text_length)
        self.action_space = UnicodeText(opts.max_text_length)
        self._task: Task | None = None
        self._index: int | None = None
        self._turn = 0
        self._done = False
        self._answers: list[str | None] = []
        self._messages: list[dict[str, str]] = []
        self._task_ids: dict[str, int] | None = None

    @classmethod
    def env_options(cls, **options: Any) -> EnvOptions:
        """The shared options of this env: :class:`EnvOptions` with this env's ``option_defaults``, then
        ``options``. An unknown name is a ``TypeError`` naming it, the env and what the env takes."""
        unknown = sorted(set(options) - set(EnvOptions.names()))
        if unknown:
            raise TypeError(
                f"{cls.__name__} got an unexpected keyword argument {unknown[0]!r}; it takes "
                f"{', '.join(cls.own_kwargs()) or 'no kwargs of its own'} and the shared "
                f"{', '.join(EnvOptions.names())} (drift_envs.core.EnvOptions)"
            )
        return replace(EnvOptions(), **{**cls.option_defaults, **options})

    @classmethod
    def own_kwargs(cls) -> tuple[str, ...]:
        """The keyword arguments this env's class declares itself (beyond :class:`EnvOptions`)."""
        import inspect

        params = inspect.signature(cls.__init__).parameters.values()
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return tuple(p.name for p in params if p.kind in kinds and p.name not in ("self", "source_knobs"))

    # ---- what a subclass provides -------------------------------------------------------------
    def num_tasks(self) -> int:
        """Number of tasks the env can serve (``index`` ranges over ``0..num_tasks()-1``)."""
        if self.source is None:
            raise NotImplementedError(f"{type(self).__name__} has no task source: override num_tasks")
        return len(self.source)

    def get_task(self, index: int) -> Task:
        """The task at ``index``; a pure function of the env's configuration and the index."""
        if self.source is None:
            raise NotImplementedError(f"{type(self).__name__} has no task source: override get_task")
        return self.source[index]

    def first_message(self, task: Task) -> str:
        """The first user message of an episode on ``task``."""
        raise NotImplementedError

    def system_message(self, task: Task) -> str | None:
        """The system message of an episode on ``task`` (called by ``reset`` before
        :meth:`first_message`): ``system_prompt`` by default; None or ``""``: no system message."""
        return self.system_prompt

    def verify(self, task: Task, action: str) -> Verdict:
        """Check one model reply against the task."""
        raise NotImplementedError

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        """The feedback after a reply on ``turn`` (1-based)."""
        raise NotImplementedError

    def prefetch(self, action: str) -> None:
        """Start checking ``action`` ahead of the ``step(action)`` that follows, so the rollout engine
        can overlap a batch of checks (``drift_train.rollout.PrefetchingEnv``); CodeFeedback sends the
        code to its sandbox workers here. The default does nothing: ``step`` checks the reply itself."""

    def assistant_message(self, action: str, verdict: Verdict) -> dict:
        """The conversation entry of a reply (OpenAI message shape); tool envs add ``tool_calls``."""
        return {"role": "assistant", "content": action}

    def feedback_messages(self, feedback: Feedback) -> list[dict]:
        """The conversation entries the feedback adds (a user message; tool envs add ``tool`` ones)."""
        return [{"role": "user", "content": feedback.text}]

    def episode_info(self) -> dict:
        """Extra ``info`` fields of every reset and step of the current episode (e.g. ``tools``)."""
        return {}

    def reference_reply(self, task: Task) -> str | None:
        """A reply that is correct for the current state of an episode on ``task``; None if the env
        has no oracle (the default). Subclasses override this; callers use :meth:`oracle_reply`."""
        return None

    def oracle_reply(self) -> str | None:
        """A reply that solves the current state of the episode, or None when the env has no oracle.

        The quickstart's scripted teacher and the envs' own tests are built on it; an env whose
        ``reference_reply`` returns None says so in its docstring.
        """
        if self._task is None:
            raise ResetNeeded("call reset() before oracle_reply()")
        if self._done:
            raise EpisodeFinishedError(f"the episode on task {self._task.task_id!r} has ended")
        return self.reference_reply(self._task)

    def oracle_replies(self, count: int) -> list[str]:
        """The oracle's first reply on each of the first ``count`` tasks (fewer when the env has fewer;
        none when it has no oracle). Resets the env: call it between episodes."""
        replies = []
        for index in range(min(count, self.num_tasks())):
            self.reset(options={"index": index})
            reply = self.oracle_reply()
            if reply is not None:
                replies.append(reply)
        return replies

    @classmethod
    def quickstart_preset(
        cls,
        make: Callable[..., Any] | None = None,
        *,
        tasks: int = 64,
        count_tokens: Callable[[str], int] = len,
    ) -> dict[str, Any]:
        """What ``drift quickstart`` runs this env with: ``{"env_kwargs", "max_new_tokens"}``.

        ``env_kwargs`` is :attr:`quickstart_kwargs`. ``max_new_tokens`` is the reply budget the env's own
        oracle replies need: over the first ``tasks`` train tasks, the 95th percentile of their lengths
        in ``count_tokens`` (default: characters, the tokens of the embedded tiny model's char tokenizer)
        plus one for the end of the reply, rounded up to a multiple of 16; 64 for an env without an oracle.
        ``make(**kwargs)`` builds the env (default: the class; the quickstart passes ``gym.make`` of the id).
        """
        env = (make or cls)(split="train", **cls.quickstart_kwargs)
        try:
            replies = env.unwrapped.oracle_replies(tasks)
        finally:
            env.close()
        budget = 64
        if replies:
            need = float(np.percentile([count_tokens(r) for r in replies], 95)) + 1
            budget = 16 * int(np.ceil(need / 16))
        return {"env_kwargs": dict(cls.quickstart_kwargs), "max_new_tokens": budget}

    def task_index(self, task_id: str) -> int:
        """The index of the task with id ``task_id`` (through the source's ``index_of`` when there is
        one; else an id->index map built on first use)."""
        if self.source is not None and hasattr(self.source, "index_of"):
            return self.source.index_of(str(task_id))
        if self._task_ids is None:
            self._task_ids = {self.get_task(i).task_id: i for i in range(self.num_tasks())}
        try:
            return self._task_ids[str(task_id)]
        except KeyError:
            raise KeyError(f"{type(self).__name__}: no task with task_id {task_id!r}") from None

    # ---- Gymnasium API ------------------------------------------------------------------------
    @property
    def task(self) -> Task | None:
        """The current episode's task (None before the first reset)."""
        return self._task

    @property
    def turn(self) -> int:
        """Replies given in the current episode so far (0 after ``reset``; 1 while the first is checked)."""
        return self._turn

    @property
    def answers(self) -> tuple[str | None, ...]:
        """The answers read from the episode's replies so far, in order (None for a reply without one);
        during :meth:`make_feedback` the last is the current reply's."""
        return tuple(self._answers)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        """Start an episode; ``options`` may pick the task by ``index`` or ``task_id``."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"index", "task_id"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected 'index' or 'task_id'")
        n = self.num_tasks()
        if "index" in options and "task_id" in options:
            raise ValueError("pass either options['index'] or options['task_id'], not both")
        if "task_id" in options:
            index = self.task_index(options["task_id"])
        elif "index" in options:
            index = options["index"]
            if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
                raise TypeError(f"options['index'] must be an int, got {type(index).__name__}")
            index = int(index)
            if not 0 <= index < n:
                raise IndexError(f"options['index']={index} out of range for {n} tasks")
        else:
            index = int(self.np_random.integers(n))
        self._index = index
        self._task = self.get_task(index)
        self._turn = 0
        self._done = False
        self._answers = []
        self._messages = []
        system = self.system_message(self._task)
        if system:
            self._messages.append({"role": "system", "content": valid_text(system)})
        obs = self.valid_observation(self.first_message(self._task))
        self._messages.append({"role": "user", "content": obs})
        return obs, _valid_json(self._base_info())

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        """Submit one reply; returns the feedback as the next observation ("" once the episode ended)."""
        if not isinstance(action, str):
            raise TypeError(
                f"{type(self).__name__}.step expects the model's reply as a str, got {type(action).__name__}"
            )
        if self._task is None:
            raise ResetNeeded("call reset() before step()")
        if self._done:
            raise EpisodeFinishedError(
                f"the episode on task {self._task.task_id!r} has ended (turn {self._turn} of "
                f"{self.max_turns}); call reset() to start a new one"
            )
        self._turn += 1
        verdict = self.verify(self._task, action)
        repeated = verdict.answer is not None and verdict.answer in self._answers
        self._answers.append(verdict.answer)
        undecided = bool(verdict.undecided)
        correct = bool(verdict.correct) and not undecided
        if undecided:  # no verdict: neither a reward nor a penalty, and the episode goes on
            reward = 0.0
        else:
            base = verdict.reward if verdict.reward is not None else (1.0 if correct else 0.0)
            reward = float(base) + (0.0 if verdict.format_ok else self.format_penalty)
        terminated = correct or (bool(verdict.ends_episode) and not undecided)
        truncated = not terminated and self._turn >= self.max_turns
        self._done = terminated or truncated
        feedback = self.make_feedback(self._task, verdict, turn=self._turn, repeated=repeated)
        feedback.text = self.valid_observation(feedback.text)
        self._messages.append(_valid_json(self.assistant_message(action, verdict)))
        obs = ""
        if not self._done:
            obs = feedback.text
            self._messages.extend(self._valid_message(m) for m in self.feedback_messages(feedback))
        info = self._base_info()
        info.update(verdict.info)
        info.update(
            correct=correct,
            format_ok=bool(verdict.format_ok),
            answer=verdict.answer,
            repeated=repeated,
            undecided=undecided,
            feedback={
                "text": feedback.text,
                "kind": feedback.kind,
                **feedback.data,
                **verdict.details,
                **({"undecided": True} if undecided else {}),
            },
        )
        info = _valid_json(info)
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, truncated, info

    def valid_observation(self, text: str) -> str:
        """``text`` made a member of the observation space (:func:`valid_text`: lone surrogates
        replaced, cut to ``max_length`` with a visible marker). Every observation and every message
        the env adds passes through here."""
        return valid_text(text, self.observation_space.max_length)

    def _valid_message(self, message: dict) -> dict:
        out = _valid_json(message)
        if isinstance(out.get("content"), str):
            out = {**out, "content": self.valid_observation(out["content"])}
        return out

    def render(self) -> str | None:
        """The conversation so far as text (``ansi``), or printed to stdout (``human``)."""
        text = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self._messages)
        if self.render_mode == "ansi":
            return text
        if self.render_mode == "human":
            print(text)
        return None

    def _base_info(self) -> dict:
        assert self._task is not None
        return {
            "task_id": self._task.task_id,
            "index": self._index,
            "turn": self._turn,
            "max_turns": self.max_turns,
            "messages": [dict(m) for m in self._messages],
            **self.episode_info(),
        }
