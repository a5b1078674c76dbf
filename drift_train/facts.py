"""One reading of a trajectory record: what happened at each turn, for every part that reads records.

Rollout summaries (:func:`drift_train.rollout.summarize`), the evaluation metrics
(:mod:`drift_train.evaluate`), the DRIFT returns and per-turn credit (:mod:`drift_train.weights`), the
online RL baseline, RFT's data filter and ``drift report`` all take their facts from here, so they cannot
disagree on which turn was a format error, which answer repeated, or when an episode was solved. A
record is ours (written by :mod:`drift_train.rollout`) or a row of the DRIFT release read by
:mod:`drift_train.trajectories`; both give the same facts.

Per turn ``t`` (1-based), :class:`TurnFacts`:

* ``reward`` — ``turn_rewards["tK"]``: the env's reward without the format penalty;
* ``correct`` — ``verifier["tK"] == 1``;
* ``undecided`` — ``t`` is in ``undecided_turns``: the checker reached no verdict in time. **Undecided
  is neither right nor wrong.** The record scores such a turn 0 and not correct (the env's contract),
  and success@t keeps that score, so it is a lower bound (evaluation brackets it from above); anything
  that *learns* from a record leaves a trajectory with an undecided turn out, since its return rests on
  a verdict nobody reached and, had the reply been right, the episode would have ended there. Where
  trajectories are weighed against their group, the group has no baseline without it, so the group
  goes: ``drift weights`` gives its members weight 0 by default, the online RL baseline advantage 0;
  ``--loss rft``, which compares nothing, leaves out that trajectory alone, even when a later turn
  solved the task;
* ``format_error`` — the env charged this turn its format penalty (no readable answer, or one it could
  not take, such as an invalid game move). The first source a record has decides: the release's
  ``reward_details["tK"]["format_penalty"]`` (non-zero); our rollout's ``meta.turns[k].format_ok``
  (False); else, where ``answer_norms`` holds one entry per turn, a None entry;
* ``answers`` — the ``answer_norms`` entries given at that turn: ours hold one per turn (None: no answer
  read); the release appends one per executed action, placed by ``reward_details["tK"]["actions"]``
  (``()`` for every turn when nothing places them: :attr:`RecordFacts.answers_placed` is False);
* ``repeated`` — how many of those entries the diversity penalty charges: an entry is charged when it
  is empty or repeats an earlier one (as text), as the release's ``compute_trajectory_penalty`` counts;
  None is no answer and never charged;
* ``answered`` — at least one answer was read at that turn (unplaced answers: no format error).

Per record, :class:`RecordFacts`: the turns, ``t_star`` (first correct turn), ``solved_within(t)``
(success@t of one episode), ``could_solve_within(t)`` (the same with every undecided turn taken as
correct: the upper end of success@t's bracket), the answer counts the diversity term uses, and the
per-turn split of ``format_penalty``.

The cheap helpers (:func:`unique_answer_fraction`, :func:`trajectory_succeeded`,
:func:`format_error_turns`, ...) are what :class:`RecordFacts` is built from; ``drift weights`` calls
them directly on its hot path (a million records), everything else reads :func:`record_facts`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RecordFacts",
    "TurnFacts",
    "answer_turns",
    "format_error_turns",
    "format_penalty_per_turn",
    "record_facts",
    "repeated_answers",
    "reward_details",
    "trajectory_succeeded",
    "turn_counts",
    "turn_facts",
    "unique_answer_fraction",
]


@dataclass(frozen=True)
class TurnFacts:
    """What one turn of a trajectory was (the module docstring defines each field)."""

    turn: int  # 1-based
    reward: float
    correct: bool
    undecided: bool
    format_error: bool
    answers: tuple[str | None, ...]
    repeated: int
    format_penalty: float  # this turn's share of the record's format_penalty (<= 0)

    @property
    def answered(self) -> bool:
        """An answer was read from this turn's reply."""
        if self.answers:
            return any(a is not None for a in self.answers)
        return not self.format_error


@dataclass(frozen=True)
class RecordFacts:
    """The facts of one trajectory: its turns and what follows from them."""

    turns: tuple[TurnFacts, ...]
    answers: tuple[str | None, ...]  # every answer_norms entry, in order
    answers_placed: bool  # each entry's turn is known (TurnFacts.answers is filled)

    @property
    def num_turns(self) -> int:
        """Turns taken."""
        return len(self.turns)

    @property
    def t_star(self) -> int | None:
        """The first correct turn (1-based), None when none was."""
        return next((f.turn for f in self.turns if f.correct), None)

    @property
    def undecided_turns(self) -> list[int]:
        """The turns without a verdict."""
        return [f.turn for f in self.turns if f.undecided]

    @property
    def format_errors(self) -> int:
        """Turns the env charged its format penalty."""
        return sum(f.format_error for f in self.turns)

    def solved_within(self, t: int) -> bool:
        """Solved at turn ``t`` or earlier (an undecided turn is not solved: the record's score)."""
        s = self.t_star
        return s is not None and s <= t

    def could_solve_within(self, t: int) -> bool:
        """Solved within ``t`` turns if every undecided verdict had been correct."""
        return self.solved_within(t) or any(f.undecided and f.turn <= t for f in self.turns)

    @property
    def answers_given(self) -> int:
        """``answer_norms`` entries that are answers (None is none)."""
        return len(self.answers) - self.answers.count(None)

    @property
    def unique_fraction(self) -> float:
        """unique_answers / answers of the diversity term (1 when no answer was given)."""
        return unique_answer_fraction(self.answers)


# ---- the cheap readings ---------------------------------------------------------------------------------


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


def _turn_number(key: Any) -> int:
    text = str(key)
    if text[:1] == "t" and text[1:].isdigit() and int(text[1:]) >= 1:
        return int(text[1:])
    raise ValueError(f"turn key {key!r} is not of the form 't1', 't2', ...")


def _in_turn_order(value: Any) -> list:
    """A turn-indexed field (``{"t1": ..}`` in any key order, a list, or their JSON text) as a list."""
    value = _decoded(value)
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=_turn_number)]
    return list(value or [])


def reward_details(record: dict) -> dict | None:
    """The release's per-turn record (``reward_details``: ``{"tK": {"format_penalty", "actions", ...}}``),
    or None when the row has none (ours never do) or it is not a dict of dicts."""
    details = _decoded(record.get("reward_details"))
    if isinstance(details, dict) and details and all(isinstance(v, dict) for v in details.values()):
        return details
    return None


def format_error_turns(record: dict, num_turns: int) -> list[bool]:
    """Which of the first ``num_turns`` turns the env charged its format penalty (module docstring)."""
    details = reward_details(record)
    if details is not None:
        return [bool((details.get(f"t{t}") or {}).get("format_penalty")) for t in range(1, num_turns + 1)]
    turns = (record.get("meta") or {}).get("turns")
    if isinstance(turns, list) and len(turns) == num_turns and all(isinstance(t, dict) for t in turns):
        return [not t.get("format_ok", True) for t in turns]
    answers = record.get("answer_norms")
    if isinstance(answers, list) and len(answers) == num_turns:
        return [a is None for a in answers]
    return [False] * num_turns  # the release's rows without reward_details say nothing per turn


def answer_turns(record: dict, num_turns: int) -> list[int] | None:
    """The turn (0-based) each ``answer_norms`` entry was given at, or None when nothing says.

    Ours hold one entry per turn. The release appends one per executed action and keeps the actions
    of each turn in ``reward_details["tK"]["actions"]``, which places them.
    """
    answers = record.get("answer_norms") or []
    details = reward_details(record)
    if details is not None:
        counts = [len((details.get(f"t{t + 1}") or {}).get("actions") or []) for t in range(num_turns)]
        if sum(counts) == len(answers):
            return [t for t, c in enumerate(counts) for _ in range(c)]
    if len(answers) == num_turns:
        return list(range(num_turns))
    return None


def repeated_answers(answers: Sequence) -> list[bool]:
    """Which entries of ``answer_norms`` the diversity penalty charges, in order.

    As the release's ``compute_trajectory_penalty`` counts them: an entry is charged when it is empty
    or repeats an earlier one (compared as text); the penalty is ``λ · charged / answers``, which is
    ``λ (1 − unique/answers)``. A ``None`` entry (our records: no extractable answer that turn) is no
    answer: never charged and not counted in ``answers``.
    """
    seen: set[str] = set()
    charged = []
    for answer in answers:
        if answer is None:
            charged.append(False)
            continue
        text = str(answer)
        charged.append(not text or text in seen)
        seen.add(text)
    return charged


def unique_answer_fraction(answers: Sequence | None) -> float:
    """unique_answers / answers of the diversity term: distinct non-empty entries over the entries that
    are answers (None is none); 1.0 when there is no answer. Equals ``1 − mean(repeated_answers)`` over
    the answers, counted with sets because ``drift weights`` reads a million records."""
    if not answers:
        return 1.0
    given = len(answers) - answers.count(None)
    if not given:
        return 1.0
    try:
        distinct = set(answers)
    except TypeError:  # unhashable answers (lists, dicts): compare their text
        distinct = {None if a is None else str(a) for a in answers}
    distinct.discard(None)
    distinct.discard("")
    return len(distinct) / given


def trajectory_succeeded(record: dict) -> bool:
    """A trajectory succeeded when it has a first correct turn ``t_star`` (or, failing that field, a verifier 1)."""
    if record.get("t_star") is not None:
        return True
    verifier = _decoded(record.get("verifier"))
    if not verifier:
        return False
    values = verifier.values() if isinstance(verifier, dict) else verifier
    return any(v == 1 for v in values)


def format_penalty_per_turn(record: dict, num_turns: int) -> list[float]:
    """The trajectory's ``format_penalty`` split over the turns that incurred it.

    The release's ``reward_details["tK"]["format_penalty"]`` values where every turn has a number (they
    must sum to ``format_penalty``); else the total shared equally by the :func:`format_error_turns`.
    Raises ``ValueError`` when a non-zero penalty has no turn to go to.
    """
    total = float(record.get("format_penalty") or 0.0)
    details = reward_details(record)
    if details is not None:
        values = [(details.get(f"t{t + 1}") or {}).get("format_penalty") for t in range(num_turns)]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            if abs(sum(values) - total) > 1e-9:
                raise ValueError(
                    f"field format_penalty is {total!r} but reward_details' per-turn "
                    f"format penalties sum to {sum(values)!r}"
                )
            return [float(v) for v in values]
    if total == 0.0:
        return [0.0] * num_turns
    failed = format_error_turns(record, num_turns)
    if not any(failed):
        raise ValueError(
            f"field format_penalty is {total!r} but no turn is marked as a format error "
            "(reward_details, meta.turns[k].format_ok or a None answer_norms entry); per-turn "
            "credit cannot charge it to a turn"
        )
    share = total / sum(failed)
    return [share if f else 0.0 for f in failed]


# ---- the whole reading ----------------------------------------------------------------------------------


def record_facts(record: dict) -> RecordFacts:
    """The facts of one record (ours or a release row; see the module docstring)."""
    verifier = _decoded(record.get("verifier"))
    rewards = _in_turn_order(record.get("turn_rewards"))
    bits = _in_turn_order(verifier) if verifier is not None else [int(r >= 1.0) for r in rewards]
    n = len(bits)
    answers = tuple(record.get("answer_norms") or ())
    undecided = set(record.get("undecided_turns") or ())
    errors = format_error_turns(record, n)
    try:
        penalties = format_penalty_per_turn(record, n)
    except ValueError:  # a penalty no turn is marked for: the reading says where, not how much
        penalties = [0.0] * n
    placed = answer_turns(record, n)
    per_turn: list[list] = [[] for _ in range(n)]
    charged_at = [0] * n
    if placed is not None:
        for turn, answer, charged in zip(placed, answers, repeated_answers(answers), strict=True):
            per_turn[turn].append(answer)
            charged_at[turn] += charged
    turns = tuple(
        TurnFacts(
            turn=t + 1,
            reward=float(rewards[t]) if t < len(rewards) else 0.0,
            correct=bits[t] == 1,
            undecided=t + 1 in undecided,
            format_error=errors[t],
            answers=tuple(per_turn[t]),
            repeated=charged_at[t],
            format_penalty=penalties[t],
        )
        for t in range(n)
    )
    return RecordFacts(turns, answers, placed is not None)


def turn_facts(record: dict) -> list[TurnFacts]:
    """The per-turn facts of one record, turn 1 first."""
    return list(record_facts(record).turns)


def turn_counts(records: Sequence[dict], max_turns: int | None = None) -> dict[str, list[int]]:
    """Per-turn totals over ``records`` (index ``t-1`` for turn ``t``, up to the longest episode or
    ``max_turns``): ``reached``, ``correct``, ``format_errors``, ``undecided``, ``repeated`` (charged
    answers), ``solved_within`` (episodes solved by turn t) and ``first_undecided`` (episodes whose first
    undecided turn is t: their sum is the episodes with one)."""
    facts = [record_facts(r) for r in records]
    T = max([f.num_turns for f in facts] + [max_turns or 0])
    out = {
        name: [0] * T
        for name in (
            "reached",
            "correct",
            "format_errors",
            "undecided",
            "repeated",
            "solved_within",
            "first_undecided",
        )
    }
    for f in facts:
        for turn in f.turns:
            i = turn.turn - 1
            out["reached"][i] += 1
            out["correct"][i] += turn.correct
            out["format_errors"][i] += turn.format_error
            out["undecided"][i] += turn.undecided
            out["repeated"][i] += turn.repeated
        for t in range(1, T + 1):
            out["solved_within"][t - 1] += f.solved_within(t)
        if f.undecided_turns:
            out["first_undecided"][f.undecided_turns[0] - 1] += 1
    return out
