r"""``drift/ReasoningGym-v0``: any reasoning-gym dataset as a multi-turn env with feedback.

reasoning-gym (``pip install 'drift-toolkit[reasoning-gym]'``, tested with 0.1.25) holds about a
hundred procedural datasets; each item carries its question, its answer and the dataset's own
``score_answer`` verifier. This module makes them a registered task source of kind
``"reasoning_gym"`` (:class:`ReasoningGymSource`) and an env (:class:`ReasoningGymEnv`).
"""

from __future__ import annotations

import ast
import json
import math
import re
import sys
import unicodedata
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass, field, fields, is_dataclass
from functools import lru_cache
from typing import Any

from drift_envs.commitment import commitment
from drift_envs.core import EnvOptions, Feedback, MultiTurnTextEnv, Task, Verdict
from drift_envs.ecosystem import require_package
from drift_envs.math.answers import (
    as_number,
    canonical_sites,
    extract_answer,
    find_boxed,
    loose_tag_contents,
    normalize_answer,
)
from drift_envs.sources.base import SourceConfig, TaskSource, register_source
from drift_envs.tool.env import HEDGE_RE, TAIL_HEDGE_RE, read_as_shown

__all__ = [
    "ANSWER_FORMATS",
    "FEEDBACK_MODES",
    "TRAIN_SEED_OFFSET",
    "ReasoningGymConfig",
    "ReasoningGymEnv",
    "ReasoningGymSource",
    "dataset_names",
    "names_several",
]

FEEDBACK_MODES = ("binary", "hint", "none")
ANSWER_FORMATS = ("tag", "boxed", "auto")
DEFAULT_SYSTEM_PROMPT = "Solve the problem. Give only the final answer inside <answer></answer> tags."
BINARY_FEEDBACK = "Incorrect. Please think again."
#: the train split's reasoning-gym seed is ``seed + TRAIN_SEED_OFFSET``. Most datasets build item ``i``
#: from ``Random(seed + i)``, so two seeds closer than the dataset size share items (shifted by the
#: difference); a prime this large keeps the train and test streams apart for any size below it.
TRAIN_SEED_OFFSET = 1_000_000_007
#: metadata fields some datasets (whose ``answer`` is None) fill with one valid solution
_SOLUTION_FIELDS = ("possible_answer", "example_answer", "example_correct_answer", "solution")
_MAX_QUOTED = 200
#: distinct other candidates in a reply scored before it counts as several whatever they score
_MAX_CANDIDATES = 8
_PIN = "reasoning-gym==0.1.25"


# Words that frame an answer without being one ("the answer is 75"): they never count as a second
# candidate. Anything else left beside the expected answer does.
_FRAME_WORDS = frozenset(
    "the a an answer answers final result is are it its it's so thus therefore hence my i think equals".split()
)
_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_CANDIDATE_TOKEN = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*")


def _plain(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def names_several(answer: str, gold: Any) -> bool:
    """True when ``answer`` names the expected ``gold`` *and* something else: a second candidate.

    reasoning-gym's own scorers accept such replies (``spell_backward`` scores a reply by its prefix,
    so ``noremopyh or hypomeron`` and ``noremopyh hypomeron`` score 1.0; the default scorer accepts
    any reply that holds the answer), so the env applies this check on top of a full score. The
    mechanism, after NFKC, case folding and spacing are made uniform: an answer equal to the gold is
    one candidate; else each occurrence of the gold is blanked out and the answer names several when
    what remains holds a word that offers an alternative (``or``, ``either``, ``maybe``, ``/``, ...;
    more of them than the gold itself holds) or any word or number other than a framing word (``the
    answer is``). A gold that holds "or" itself stays right. A reply that the scorer accepts in
    another form than the gold (``0.5`` for ``1/2``) is judged by its alternative words alone.
    """
    if gold is None:
        return False
    a, g = _plain(answer), _plain(str(gold))
    if not g or a == g or a.replace(" ", "") == g.replace(" ", ""):
        return False
    offered, own = Counter(HEDGE_RE.findall(a)), Counter(HEDGE_RE.findall(g))
    if any(count > own[word] for word, count in offered.items()):
        return True
    pattern = r"\s*".join(re.escape(ch) for ch in g.replace(" ", ""))
    rest, found = re.subn(pattern, " ", a)
    if not found:
        return False
    return any(t not in _FRAME_WORDS for t in _CANDIDATE_TOKEN.findall(rest))


def _committed(action: str) -> list[str]:
    """Every answer a reply commits to in either format: each answer tag's text (its boxes, when it
    holds some) and each box outside a tag."""
    found: list[str] = []
    for inner in _TAG_RE.findall(action):
        boxes = [b for _, b in find_boxed(inner)]
        found.extend(boxes or [inner])
    found.extend(b for _, b in find_boxed(_TAG_RE.sub(" ", action)))
    found.extend(loose_tag_contents(action))  # "<answer>g</answer><answer>w", "<answer>g</answer>w</answer>"
    found.extend(_stated(action))
    return found


# "Answer: w", "Final answer: w", "The answer is w.", "I pick w.": an answer stated in words (up to the
# end of its sentence, or a box or tag it leads into)
_STATED_RE = re.compile(
    r"(?:(?:^|\n)[ \t>#*_-]*answer\s*(?:\*\*|__)?\s*[:：]|\bfinal\s+answer\s*(?:\*\*|__)?\s*[:：]"
    r"|\bthe\s+(?:final\s+)?answer\s+is\b|\bI\s+(?:pick|choose|select)\b)[ \t*_:]*([^\n]{1,200})",
    re.IGNORECASE,
)
#: a stated answer with more words than this (frame words aside) is a sentence of prose, not a candidate
_MAX_STATED_WORDS = 3


def _stated(action: str) -> list[str]:
    """The answers a reply states in words outside its tags and boxes (see :data:`_STATED_RE`)."""
    found = []
    for m in list(_STATED_RE.finditer(action))[-_MAX_CANDIDATES:]:
        stated = re.split(r"\\boxed\{|<answer>|</answer>", m.group(1))[0]
        stated = re.split(r"[.!?](?:\s|$)", stated + " ", maxsplit=1)[0].strip(" \t*_$`\"'")
        if re.match(r"(?:the|a|an)\s", stated, re.IGNORECASE):
            continue  # a description ("the answer is the word reversed"), not a value
        words = [w for w in _CANDIDATE_TOKEN.findall(_plain(stated)) if w not in _FRAME_WORDS]
        if words and len(words) <= _MAX_STATED_WORDS:
            found.append(stated)
    return found


def _answer_end(action: str) -> int:
    """Where the reply's last answer tag or box ends (0 when it has none)."""
    end = max((m.end() for m in _TAG_RE.finditer(action)), default=0)
    for start, content in find_boxed(action):
        end = max(end, action.index("{", start) + len(content) + 2)
    return end


def _hedged_after(action: str) -> bool:
    """Whether the text after the reply's last answer tag or box offers an alternative (``<answer>gold
    </answer> or maybe wrong``): :data:`~drift_envs.tool.env.TAIL_HEDGE_RE`, on the text as shown.
    Text before the answer (the working) is not read."""
    end = _answer_end(action)
    return end > 0 and TAIL_HEDGE_RE.search(read_as_shown(action[end:])) is not None


def _not_committed(action: str, answer: str, gold: Any) -> str | None:
    """Why the reply does not stand by its last tag's or box's answer, as :mod:`drift_envs.commitment`
    reads it for every env, or None: denied or retracted (``<answer>g</answer> is wrong``, ``(wrong)``,
    ``... just kidding``, ``<answer>g ❌</answer>``), or another candidate offered after it with a
    word that keeps it open (``<answer>g</answer>; if not, w``, ``vs w``, ``w also works``): a word or
    number standing alone beside such a word (the only one in its sentence that is not the answer, a
    framing word or a hedge word) is a candidate; a sentence of prose names none."""
    end = _answer_end(action)
    if end <= 0:
        return None
    at = action.rfind(answer.strip(), 0, end)
    if at < 0:
        return None
    start, stop = at, at + len(answer.strip())
    # the value itself where the answer holds it ("g ❌"): what follows it in the tag is read too
    inner = action.find(str(gold).strip(), start, stop) if gold is not None and str(gold).strip() else -1
    if inner >= 0:
        start, stop = inner, inner + len(str(gold).strip())
    own = set(_CANDIDATE_TOKEN.findall(_plain(answer))) | set(_CANDIDATE_TOKEN.findall(_plain(str(gold))))

    def names_other(stretch: str) -> bool:
        words = _CANDIDATE_TOKEN.findall(_plain(_TAG_RE.sub(" ", stretch.replace("</answer>", " "))))
        # a candidate stands alone beside the word ("if not, w"); a sentence of prose names none
        named = [w for w in words if w not in own and w not in _FRAME_WORDS and w not in _ALTERNATIVE_FILLERS]
        return len(named) == 1

    return commitment(action, start, stop, names_other)


# words beside an alternative that name no candidate ("if not, w": "if" and "not" are no answer)
_ALTERNATIVE_FILLERS = frozenset(
    "if not unless or else otherwise vs versus also too equally could might maybe perhaps possibly possible "
    "plausible alternatively alternative either instead though although works work would be then".split()
)


def _rg() -> Any:
    return require_package("reasoning_gym", "reasoning-gym", _PIN)


def dataset_names() -> list[str]:
    """Every dataset name reasoning-gym registers, sorted."""
    _rg()
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def _create_dataset(task: str, seed: int, size: int, config: dict) -> Any:
    """``reasoning_gym.create_dataset`` with errors that say what was wrong and what to pass."""
    rg = _rg()
    from reasoning_gym.factory import DATASETS

    if task not in DATASETS:
        raise ValueError(f"reasoning-gym has no dataset {task!r}; known: {', '.join(sorted(DATASETS))}")
    config_cls = DATASETS[task][1]
    known = {f.name for f in fields(config_cls)}
    reserved = sorted({"seed", "size"} & set(config))
    if reserved:
        raise ValueError(f"pass {reserved} as the env's own kwargs, not as reasoning-gym config")
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"reasoning-gym dataset {task!r} has no config field(s) {unknown}; "
            f"its fields: {sorted(known - {'seed', 'size'})}"
        )
    config = dict(config)
    if task == "composite" and config.get("datasets"):
        # JSON-able env kwargs: the composite's dataset specs arrive as dicts
        from reasoning_gym.composite import DatasetSpec

        config["datasets"] = [
            spec if is_dataclass(spec) else DatasetSpec(**spec) for spec in config["datasets"]
        ]
    try:
        return rg.create_dataset(task, seed=seed, size=size, **config)
    except (AssertionError, TypeError, ValueError) as err:
        raise ValueError(f"reasoning-gym dataset {task!r} refused config {config}: {err}") from err


@dataclass(frozen=True)
class ReasoningGymConfig(SourceConfig):
    """A reasoning-gym dataset as a task source.

    Args:
        task: the dataset name (``reasoning_gym.factory.DATASETS``).
        size: items per split (indices ``0..size-1``).
        dataset_config: the dataset's own config fields (``min_terms``, ``max_digits``, ...), seed and size excepted.
        seed, split, max_tasks: as :class:`~drift_envs.sources.base.SourceConfig`; the test split uses
            reasoning-gym seed ``seed``, the train split ``seed + TRAIN_SEED_OFFSET``.
    """

    task: str = "basic_arithmetic"
    size: int = 500
    dataset_config: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        super().validate()
        if self.split not in ("train", "test"):
            raise ValueError(f"ReasoningGymConfig.split must be 'train' or 'test', got {self.split!r}")
        if (
            not isinstance(self.size, int)
            or isinstance(self.size, bool)
            or not 1 <= self.size < TRAIN_SEED_OFFSET
        ):
            raise ValueError(
                f"ReasoningGymConfig.size must be an int in 1..{TRAIN_SEED_OFFSET - 1}, got {self.size!r}"
            )
        if not isinstance(self.dataset_config, dict):
            raise ValueError(
                f"ReasoningGymConfig.dataset_config must be a dict, got {type(self.dataset_config).__name__}"
            )

    @property
    def dataset_seed(self) -> int:
        """The reasoning-gym seed of this split (the train and test streams never meet)."""
        return self.seed + (TRAIN_SEED_OFFSET if self.split == "train" else 0)


@register_source("reasoning_gym", "procedural")
class ReasoningGymSource(TaskSource):
    """The items of one reasoning-gym dataset as tasks: ``source[i]`` is item ``i`` of the split's seed.

    ``Task.answer`` is the item's answer (None for datasets without a single one) and
    ``Task.meta["entry"]`` the whole item, which the dataset's ``score_answer`` needs.
    Ids read ``reasoning_gym/<task>/<seed>/<split>/<index>``.
    """

    config_class = ReasoningGymConfig

    def __init__(self, config: ReasoningGymConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        c = self.config
        self.dataset = _create_dataset(c.task, c.dataset_seed, c.size, c.dataset_config)
        # items are pure functions of the index; generating one can take milliseconds (puzzles)
        self._item = lru_cache(maxsize=4096)(self.dataset.__getitem__)

    def __len__(self) -> int:
        return self.limit(self.config.size)

    def id_prefix(self) -> str:
        """``reasoning_gym/<task>/<seed>/<split>/`` (the index follows)."""
        c = self.config
        return f"reasoning_gym/{c.task}/{c.seed}/{c.split}/"

    def make_task(self, index: int) -> Task:
        """Item ``index`` of the dataset as a task."""
        with redirect_stdout(sys.stderr):  # a few generators print (bf); a caller's stdout may be data
            item = self._item(index)
        return Task(self.task_id(index), str(item["question"]), item["answer"], {"entry": item})

    def score(self, answer: str | None, task: Task) -> tuple[float, str | None]:
        """The dataset's ``score_answer`` of ``answer`` (0..1) and the error it raised, if any.

        A verifier that raises on a strange answer scores it 0.0 (a reply must never crash the env).
        """
        try:
            score = float(self.dataset.score_answer(answer, task.meta["entry"]))
        except Exception as err:  # noqa: BLE001 - third-party verifiers raise anything on odd input
            return 0.0, f"{type(err).__name__}: {err}"
        if not math.isfinite(score):
            return 0.0, f"score_answer returned {score}"
        return min(max(score, 0.0), 1.0), None

    def solution(self, task: Task) -> str | None:
        """A reply-ready answer that ``score_answer`` scores 1.0, or None when the item holds none.

        The item's ``answer`` when it has one; else a solution some datasets keep in their metadata
        (as a Python literal, rewritten to JSON when the question asks for a JSON map).
        """
        if task.answer is not None:
            return str(task.answer)
        metadata = task.meta["entry"].get("metadata") or {}
        for key in _SOLUTION_FIELDS:
            if metadata.get(key) is None:
                continue
            candidates = [str(metadata[key])]
            try:
                value = ast.literal_eval(candidates[0])
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                value = None
            if isinstance(value, dict):
                candidates.append(json.dumps({str(k): v for k, v in value.items()}))
            for candidate in candidates:
                if self.score(candidate, task)[0] >= 1.0:
                    return candidate
        return None


class ReasoningGymEnv(MultiTurnTextEnv):
    r"""A reasoning-gym dataset: the model answers an item, is told it was wrong, and tries again.

    ## Description
    ``task`` names one of reasoning-gym's procedural datasets (``basic_arithmetic``, ``sudoku``,
    ``knights_knaves``, ... — ``python -m drift_envs.ecosystem.catalog`` lists them all and says which
    run offline here); every other keyword the env does not know is that dataset's own config field.
    Each episode is one item; the reply's final answer is scored by the dataset's ``score_answer``,
    and an answer that names the right one beside another candidate (``noremopyh or hypomeron``,
    ``75, 76``, ``maybe 75``; a reply with another answer in any tag or box, in either format; or one
    that offers an alternative after its answer, ``<answer>75</answer> or maybe 76``) is wrong whatever
    the scorer says (:func:`names_several`); so is one that does not stand by its answer, as
    :mod:`drift_envs.commitment` reads it for every env: denied or taken back (``<answer>75</answer>
    is wrong``, ``(wrong)``, ``... just kidding``, ``<answer>75 ❌</answer>``) or followed by another
    candidate beside a word that keeps it open (``<answer>75</answer>; if not, 76``). The working
    before the answer is not read. Needs the optional extra ``[reasoning-gym]``.

    ## Action Space
    ``UnicodeText``: any Unicode string, the model's whole reply.

    ## Observation Space
    ``UnicodeText``: after ``reset``, the item's question and the answer instruction; after ``step``,
    the feedback message, or ``""`` once the episode has ended.

    ## Rewards
    ``1.0`` when ``score_answer`` gives 1.0 (the reply is correct), else ``0.0``; plus
    ``format_penalty`` (default ``-0.1``) when the reply has no final answer. Partial credit (some
    datasets score a near miss 0 < s < 1) is kept in ``info["score"]`` and does not solve the task.

    ## Feedback
    - ``"binary"`` (the DRIFT reference release's): ``Incorrect. Please think again.``
    - ``"hint"``: says what was wrong: ``I could not find a final answer. Put your final answer within
      <answer></answer>.``; partial credit, ``Incorrect, but partly right (score 0.50 of 1).``; a numeric
      answer too high or low, ``Incorrect: your answer 12 is too low.``; and a repeat,
      ``You gave 12 before; try something different.``
    - ``"none"``: ``Try again.``

    ## Starting State
    ``reset(seed=..., options={"index": i})`` (or ``{"task_id": ...}``) picks item ``i``; without options
    the index is drawn from the env's ``np_random``. Items are a pure function of (``task``, config,
    ``seed``, ``split``, index): the test split is reasoning-gym seed ``seed``, the train split seed
    ``seed + 1_000_000_007``, so the two never share an item stream.

    ## Episode End
    ``terminated`` when an answer scores 1.0; ``truncated`` after ``max_turns`` replies that did not.

    ## Oracle
    ``oracle_reply()`` is the item's answer in the env's answer format. Datasets whose items carry no
    answer (``answer`` None: ``boxnet``, ``rush_hour``, ...) give a solution kept in the item's metadata
    when there is one that scores 1.0 (``propositional_logic``, ``rubiks_cube``, ``graph_color``), else None.

    ## Arguments
    - ``task`` (``"basic_arithmetic"``): the reasoning-gym dataset; ``**config``: its config fields
    - ``split`` (``"test"``), ``seed`` (0), ``size`` (500 items per split), ``max_tasks``
    - ``max_turns`` (5), ``feedback`` (``"binary"``, ``"hint"``, ``"none"``), ``system_prompt``,
      ``format_penalty`` (-0.1)
    - ``answer_format``: ``"tag"`` (``<answer>…</answer>``, reasoning-gym's own; default), ``"boxed"``,
      or ``"auto"`` (the last of either)
    - and every shared kwarg of :class:`~drift_envs.core.EnvOptions` (the base class checks them):
      ``max_text_length`` (65536) and ``render_mode`` too, with the defaults above;
      any other kwarg is a field of the task's reasoning-gym config

    ## Example
    >>> import gymnasium as gym, drift_envs
    >>> env = gym.make("drift/ReasoningGym-v0", task="basic_arithmetic", min_terms=2, max_terms=2,
    ...                min_digits=1, max_digits=1, feedback="hint")
    >>> obs, info = env.reset(seed=0, options={"index": 0})
    >>> obs.splitlines()[0]
    'Calculate -1 / 1.'
    >>> env.step("<answer>3</answer>")[0]
    'Incorrect: your answer 3 is too high.'
    >>> env.step(env.unwrapped.oracle_reply())[1:3]
    (1.0, True)
    """

    source_kind = "reasoning_gym"

    option_defaults = {"system_prompt": DEFAULT_SYSTEM_PROMPT}

    def __init__(
        self,
        *,
        task: str = "basic_arithmetic",
        size: int = 500,
        feedback: str = "binary",
        answer_format: str = "tag",
        **kwargs: Any,
    ) -> None:
        if feedback not in FEEDBACK_MODES:
            raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got {feedback!r}")
        if answer_format not in ANSWER_FORMATS:
            raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
        # the shared kwargs go to the base; every other one is a field of the reasoning-gym task's config
        shared = set(EnvOptions.names())
        options = {k: v for k, v in kwargs.items() if k in shared}
        config = {k: v for k, v in kwargs.items() if k not in shared}
        super().__init__(source_knobs={"task": task, "size": size, "dataset_config": config}, **options)
        self.task_name = task
        self.feedback_mode = feedback
        self.answer_format = answer_format

    def _instruction(self) -> str:
        if self.answer_format == "boxed":
            return "Put your final answer within \\boxed{}."
        return "Put your final answer within <answer></answer>."

    def first_message(self, task: Task) -> str:
        """The item's question and the answer-format instruction."""
        return f"{task.prompt}\n\n{self._instruction()}"

    def verify(self, task: Task, action: str) -> Verdict:
        """Extract the final answer and score it with the dataset's ``score_answer``."""
        # every box-like command and tag spelling as the one a reader sees (\\framebox, <answer >)
        action = canonical_sites(action)
        answer = extract_answer(action, self.answer_format)
        if answer is None:
            return Verdict(correct=False, format_ok=False, answer=None, info={"score": 0.0})
        score, error = self.source.score(answer, task)
        info: dict = {"score": score}
        if error is not None:
            info["score_error"] = error
        if score >= 1.0 and (
            names_several(answer, task.answer)
            or self._other_candidate(action, answer, task)
            or _hedged_after(action)
            or _not_committed(action, answer, task.answer)
        ):
            # the dataset's scorer took a hedge ("gold or wrong"): several candidates are no answer
            info.update(score=0.0, several=True)
            score = 0.0
        return Verdict(correct=score >= 1.0, format_ok=True, answer=answer, info=info)

    def _other_candidate(self, action: str, answer: str, task: Task) -> bool:
        """Whether ``action`` commits to another answer beside the one read: in any answer tag or box,
        whatever the answer format (``\\boxed{wrong} <answer>gold</answer>`` in the tag format,
        ``<answer>wrong</answer> \\boxed{gold}`` in the boxed one, two tags), whichever is last. A
        candidate equal to the answer read, or that the dataset's scorer also takes in full (``0.5``
        beside ``1/2``), is the same answer."""
        own = _plain(answer).rstrip(".")
        seen: set[str] = set()
        for candidate in _committed(action):
            plain = _plain(candidate).rstrip(".")
            if not plain or plain == own or plain in seen:
                continue
            seen.add(plain)
            if len(seen) > _MAX_CANDIDATES or self.source.score(candidate.strip(), task)[0] < 1.0:
                return True
        return False

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        """Binary, hint or no-content feedback, per the ``feedback`` kwarg."""
        if verdict.correct:
            return Feedback("Correct.", "correct")
        score = float(verdict.info.get("score", 0.0))
        data: dict = {
            "error": "answer" if verdict.format_ok else "format",
            "repeated": repeated,
            "score": score,
        }
        if self.feedback_mode == "binary":
            return Feedback(BINARY_FEEDBACK, "binary", data)
        if self.feedback_mode == "none":
            return Feedback("Try again.", "none", data)
        if not verdict.format_ok:
            return Feedback(f"I could not find a final answer. {self._instruction()}", "hint", data)
        given = verdict.answer or ""
        text = "Incorrect: give one answer, not several." if verdict.info.get("several") else "Incorrect."
        if score > 0:
            text = f"Incorrect, but partly right (score {score:.2f} of 1)."
        gold = None if task.answer is None else as_number(normalize_answer(str(task.answer)))
        number = as_number(normalize_answer(given))
        if gold is not None and number is not None and number != gold:
            data["direction"] = "high" if number > gold else "low"
            text = f"Incorrect: your answer {given} is too {data['direction']}."
        if repeated:
            shown = given if len(given) <= _MAX_QUOTED else given[: _MAX_QUOTED - 1] + "…"
            text += f" You gave {shown} before; try something different."
        return Feedback(text, "hint", data)

    def reference_reply(self, task: Task) -> str | None:
        """The item's answer (or a stored solution) in the env's answer format; None when there is none."""
        answer = self.source.solution(task)
        if answer is None:
            return None
        if self.answer_format == "boxed":
            return f"\\boxed{{{answer}}}"
        return f"<answer>{answer}</answer>"
