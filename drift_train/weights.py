"""Returns -> DRIFT importance weights (arXiv 2605.31455), vectorised over a whole rollout file.

The two formulas of docs/design.md, in the paper's symbols:

* return of trajectory i with per-turn rewards r_t (t = 1..T_i)::

      R_i = Σ_t γ^(t-1) r_t + format_penalty_i − λ · (1 − unique_answers_i / answers_i)

* importance weight inside its group (all K samples of one ``prompt_id``)::

      w_i = exp(R_i / β) / mean_j exp(R_j / β) = exp((R_i − V*) / β),
      V*  = β · log mean_j exp(R_j / β)

  so weights average 1 in every group. Computed max-shifted, so β → 0 does not overflow.

``unique_answers / answers`` is counted as the release's ``compute_trajectory_penalty`` does: every
``answer_norms`` entry is an answer, empty strings included, and only distinct non-empty ones are
unique; ``None`` (our records: no extractable answer that turn) counts in neither. Rows exactly as the
release writes them (``turn_rewards``/``verifier`` padded with zeros to ``max_turns``, one
``answer_norms`` entry per executed action) give the release's ``weight_sft.py`` weights; the reader
drops the padding. Which answers repeat, which turn a format penalty and each answer belong to, and
whether a trajectory succeeded are read by :mod:`drift_train.facts`, the reading eval, the rollout
summary and the report share.

Options on top of the reference recipe:

* all-equal groups (every return within ``tie_tolerance``): ``keep`` at weight 1 like the reference,
  ``drop`` = weight 0, ``floor`` = ``equal_weight``. A group of one trajectory is such a group (it has
  nothing to be compared with): weight 1 under ``keep``, as in the release (``exp(0)/exp(0)``).
* clipping: ``clip_max`` caps the final weights and the group is **not** renormalised afterwards, so
  a clipped group averages below 1. Renormalising would hand the clipped mass back to the other
  members, failures included, and could push the top weight over the cap again; the cap is there to
  bound how much one trajectory can move the loss, and it does exactly that.
* per-group or global normalisation.
* per-turn credit: turn t of trajectory i is weighted by its return-to-go
  ``G_{i,t} = Σ_{k≥t} γ^(k−t) r_k + Σ_{k≥t} (f_{i,k} − λ ρ_{i,k})``, where ``f_{i,k}`` is turn k's format
  penalty and ``ρ_{i,k}`` its share of the diversity penalty (answers charged at turn k / answers_i: a
  repeat is charged at the turn that repeats). So a turn answers for itself and what follows, never
  for earlier mistakes, and ``G_{i,1} = R_i``. Weights are normalised over the same turn index of the
  same group, with the all-equal rule above for cells where every return-to-go ties (one trajectory
  reaching a turn alone is such a cell).

Undecided verdicts (docs/design.md: a turn whose check could not finish in time is listed in the record's
``undecided_turns``; the env scored it 0, not correct): ``undecided`` says what such a trajectory
counts for.

* ``drop`` (the default): every group (task) with an undecided turn in any of its trajectories gets
  weight 0 (and per-turn weights 0) for all its members: undecided is neither right nor wrong, as the
  online RL baseline and ``--loss rft`` read it too. Its return rests on a verdict nobody reached:
  scoring a reply that may have been right as a failure would push weight onto the others in its group
  as if it had been checked, and leaving only that member out would too (a success whose first turn was
  undecided, dropped alone, turns its group into a group of failures at weight 1: the machine's load
  would decide whether failures are trained on). A dropped group trains nothing; the others weigh
  exactly as in a file without it.
* ``zero``: the trajectory is weighted as recorded, its undecided turns as failures with reward 0
  (what files without the field always get).

Either way the summary counts ``undecided_trajectories``, ``undecided_turns`` and the groups left with
no member (``undecided_emptied_groups``). Files without undecided turns weigh the same under both.

Everything past parsing the records is numpy over flat arrays; ``drift weights`` is the CLI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drift_train.facts import (
    answer_turns,
    format_penalty_per_turn,
    repeated_answers,
    trajectory_succeeded,
    unique_answer_fraction,
)

EQUAL_GROUP_MODES = ("keep", "drop", "floor")
NORMALISATIONS = ("group", "global")
UNDECIDED_MODES = ("drop", "zero")


@dataclass(frozen=True)
class WeightConfig:
    """How returns become weights. Defaults are the reference release's (γ=0.9, β=0.1, λ=0.5)."""

    gamma: float = 0.9  # γ, discount over turns
    beta: float = 0.1  # β, temperature of the exponential weighting
    diversity_lambda: float = 0.5  # λ, penalty on repeated answers
    equal_groups: str = "keep"  # all-equal groups: keep (weight 1), drop (weight 0), floor (equal_weight)
    equal_weight: float = 0.1  # the weight of every member of an all-equal group when equal_groups="floor"
    clip_max: float | None = None  # upper clip applied to the final weights (None: no clipping)
    normalize: str = "group"  # "group": mean 1 per prompt_id; "global": mean 1 over the file
    per_turn: bool = False  # also compute per-turn weights from the discounted return-to-go
    # returns closer than this count as equal; tiny, so a near-tie is weighted like the release would (it has no tie rule)
    tie_tolerance: float = 1e-12
    # groups with an undecided turn: drop = every member weight 0 (see the module docstring); zero = weighted as recorded, the undecided turn a failure
    undecided: str = "drop"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first option that is out of range."""
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be a positive finite temperature, got {self.beta}")
        if not math.isfinite(self.diversity_lambda):
            raise ValueError(f"diversity_lambda must be finite, got {self.diversity_lambda}")
        if self.equal_groups not in EQUAL_GROUP_MODES:
            raise ValueError(f"equal_groups must be one of {EQUAL_GROUP_MODES}, got {self.equal_groups!r}")
        if not (self.equal_weight >= 0 and math.isfinite(self.equal_weight)):
            raise ValueError(f"equal_weight must be a finite non-negative number, got {self.equal_weight}")
        if self.clip_max is not None and not self.clip_max > 0:
            raise ValueError(f"clip_max must be positive (or None for no clipping), got {self.clip_max}")
        if self.normalize not in NORMALISATIONS:
            raise ValueError(f"normalize must be one of {NORMALISATIONS}, got {self.normalize!r}")
        if self.undecided not in UNDECIDED_MODES:
            raise ValueError(f"undecided must be one of {UNDECIDED_MODES}, got {self.undecided!r}")


@dataclass
class ReturnInputs:
    """The per-trajectory numbers the formulas need, as flat arrays (one row per trajectory)."""

    group_index: np.ndarray  # (N,) int, dense 0..G-1 id of the prompt_id group
    turn_rewards: np.ndarray  # (N, T_max) float, r_t; zero past a trajectory's last turn
    num_turns: np.ndarray  # (N,) int, T_i
    format_penalty: np.ndarray  # (N,) float, summed per-turn format penalty (≤ 0)
    unique_fraction: np.ndarray  # (N,) float, unique_answers / answers (1 when no answer was given)
    success: np.ndarray  # (N,) bool, solved at some turn
    num_groups: int
    # per-turn credit only (records_to_inputs(..., per_turn=True)); each row sums to the trajectory's total
    turn_format_penalty: np.ndarray | None = None  # (N, T_max), the format penalty incurred at turn t
    turn_repeat_share: np.ndarray | None = None  # (N, T_max), charged answers at turn t / answers_i
    undecided_turns: np.ndarray | None = None  # (N,) int, turns without a verdict (None: no record has any)

    def in_undecided_group(self) -> np.ndarray:
        """(N,) bool: the trajectory's group has a member with an undecided turn (:mod:`drift_train.facts`:
        such a group has no baseline; ``drift weights`` drops it, online RL gives it advantage 0)."""
        if self.undecided_turns is None:
            return np.zeros(len(self.group_index), dtype=bool)
        groups = np.bincount(self.group_index, weights=self.undecided_turns > 0, minlength=self.num_groups)
        return groups[self.group_index] > 0


# --------------------------------------------------------------------------------------------------
# the formulas


def trajectory_returns(inputs: ReturnInputs, gamma: float, diversity_lambda: float) -> np.ndarray:
    """R_i = Σ_t γ^(t-1) r_t + format_penalty_i − λ (1 − unique_answers_i / answers_i)."""
    discounts = gamma ** np.arange(inputs.turn_rewards.shape[1], dtype=np.float64)  # γ^(t-1)
    return (
        inputs.turn_rewards @ discounts
        + inputs.format_penalty
        - diversity_lambda * (1.0 - inputs.unique_fraction)
    )


def returns_to_go(inputs: ReturnInputs, gamma: float, diversity_lambda: float) -> np.ndarray:
    """G_{i,t} = Σ_{k≥t} γ^(k−t) r_k + Σ_{k≥t} (f_{i,k} − λ ρ_{i,k}); NaN past the last turn. Shape (N, T_max).

    f_{i,k} is the format penalty of turn k and ρ_{i,k} = (answers charged at turn k) / answers_i its
    share of the diversity penalty, so a turn answers only for itself and the turns after it, and
    G_{i,1} = R_i. Penalties are not discounted, as in R_i.
    """
    if inputs.turn_format_penalty is None or inputs.turn_repeat_share is None:
        raise ValueError(
            "per-turn credit needs the per-turn penalties: build the inputs with "
            "records_to_inputs(records, per_turn=True)"
        )
    rewards = inputs.turn_rewards
    penalties = inputs.turn_format_penalty - diversity_lambda * inputs.turn_repeat_share
    togo = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[0])
    charged = np.zeros(rewards.shape[0])
    for t in range(rewards.shape[1] - 1, -1, -1):  # T_max is a handful of turns; rows stay vectorised
        running = rewards[:, t] + gamma * running
        charged = charged + penalties[:, t]
        togo[:, t] = running + charged
    togo[np.arange(rewards.shape[1])[None, :] >= inputs.num_turns[:, None]] = np.nan
    return togo


def importance_weights(
    returns: np.ndarray, group_index: np.ndarray, config: WeightConfig, num_groups: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """w_i = exp((R_i − V*) / β) with V* = β log mean_j exp(R_j / β) over i's group (or the whole file).

    Returns ``(weights, equal_group)`` where ``equal_group[g]`` says group g's returns were all equal
    (within ``tie_tolerance``; a group of one always is); such groups get weight 1 (``keep``), 0
    (``drop``) or ``equal_weight`` (``floor``). ``clip_max`` is applied last, without renormalising.
    """
    returns = np.asarray(returns, dtype=np.float64)
    group_index = np.asarray(group_index)
    if num_groups is None:
        num_groups = int(group_index.max()) + 1 if group_index.size else 0
    beta = config.beta

    group_max = np.full(num_groups, -np.inf)
    np.maximum.at(group_max, group_index, returns)
    group_min = np.full(num_groups, np.inf)
    np.minimum.at(group_min, group_index, returns)
    equal_group = (group_max - group_min) <= config.tie_tolerance

    if config.normalize == "group":
        shifted = np.exp((returns - group_max[group_index]) / beta)  # exp((R_i − max_g)/β) ∈ (0, 1]
        group_mean = np.bincount(group_index, weights=shifted, minlength=num_groups) / np.maximum(
            np.bincount(group_index, minlength=num_groups), 1
        )
        weights = shifted / group_mean[group_index]
    else:
        shifted = np.exp((returns - returns.max(initial=-np.inf)) / beta)
        weights = shifted / shifted.mean() if shifted.size else shifted

    member_of_equal = equal_group[group_index]
    if config.equal_groups == "keep":
        weights[member_of_equal] = 1.0
    elif config.equal_groups == "drop":
        weights[member_of_equal] = 0.0
    else:
        weights[member_of_equal] = config.equal_weight
    if config.clip_max is not None:
        np.minimum(weights, config.clip_max, out=weights)
    return weights, equal_group


def kish_ess(total: Any, squares: Any) -> Any:
    """Kish's effective sample size from Σ w and Σ w²: (Σ w)² / Σ w², and 0 where Σ w² = 0.

    Works on floats and on numpy arrays (one value per group); the trainer's per-batch ``weight_ess``
    and :func:`effective_sample_size` both use it, so the formula is written once.
    """
    total, squares = np.asarray(total, dtype=float), np.asarray(squares, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ess = np.where(squares > 0, total * total / np.where(squares > 0, squares, 1.0), 0.0)
    return float(ess) if ess.ndim == 0 else ess


def effective_sample_size(weights: np.ndarray, group_index: np.ndarray, num_groups: int) -> np.ndarray:
    """Kish ESS per group, (Σ w)² / Σ w²; 0 for a group whose weights are all zero."""
    total = np.bincount(group_index, weights=weights, minlength=num_groups)
    squares = np.bincount(group_index, weights=weights * weights, minlength=num_groups)
    return kish_ess(total, squares)


# --------------------------------------------------------------------------------------------------
# records -> arrays


def _turn_number(key: str, where: str) -> int:
    if isinstance(key, str) and key[:1] == "t" and key[1:].isdigit() and int(key[1:]) >= 1:
        return int(key[1:])
    raise ValueError(f"{where}: turn_rewards key {key!r} is not of the form 't1', 't2', ...")


def _as_turn_list(value: Any, where: str) -> list:
    """turn_rewards as a list in turn order; accepts {"t1": r1, ...}, [r1, ...] or their JSON string."""
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: _turn_number(kv[0], where))
        numbers = [_turn_number(k, where) for k, _ in items]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(
                f"{where}: turn_rewards keys {list(value)} skip a turn (expected t1..t{len(numbers)})"
            )
        return [v for _, v in items]
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    raise ValueError(
        f"{where}: turn_rewards must be a dict {{'t1': r1, ...}} or a list, got {type(value).__name__}"
    )


def records_to_inputs(records: Sequence[dict], *, per_turn: bool = False) -> ReturnInputs:
    """Flatten trajectory records (our schema or the reference release's rows) into :class:`ReturnInputs`.

    ``per_turn`` also places each turn's own penalties (its format penalty, its share of the
    diversity penalty) for the per-turn return-to-go. Raises ``ValueError`` naming the record (0-based
    position, ``prompt_id``/``traj_idx``) and the field when something is missing, non-numeric, or
    not finite (NaN, ±inf).
    """
    n = len(records)
    group_of: dict = {}
    # plain lists in the loop (numpy item assignment is slower than the work itself), arrays after it
    groups = [0] * n
    penalties: list = [0.0] * n
    unique: list[float] = [1.0] * n
    success = [False] * n
    undecided = [0] * n
    rows: list[list] = [None] * n  # type: ignore[list-item]
    ordered_keys: dict[tuple, bool] = {}  # key tuples already seen in turn order t1..tn (fast path)

    for i, record in enumerate(records):
        try:
            prompt_id = record["prompt_id"]
            turn_rewards = record["turn_rewards"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"record {i}: missing field {err} (need prompt_id and turn_rewards)") from None
        groups[i] = group_of.setdefault(prompt_id, len(group_of))
        if isinstance(turn_rewards, dict):
            keys = tuple(turn_rewards)
            in_order = ordered_keys.get(keys)
            if in_order is None:
                in_order = ordered_keys[keys] = keys == tuple(f"t{t}" for t in range(1, len(keys) + 1))
            rows[i] = list(turn_rewards.values()) if in_order else _as_turn_list(turn_rewards, f"record {i}")
        else:
            rows[i] = _as_turn_list(turn_rewards, f"record {i}")
        penalty = record.get("format_penalty")
        if penalty is not None:
            penalties[i] = penalty
        answers = record.get("answer_norms")
        if answers:
            unique[i] = unique_answer_fraction(answers)
        success[i] = record.get("t_star") is not None or trajectory_succeeded(record)
        if record.get("undecided_turns"):
            undecided[i] = len(record["undecided_turns"])

    group_index = np.array(groups, dtype=np.int64)
    unique_fraction = np.array(unique, dtype=np.float64)
    success = np.array(success, dtype=bool)
    try:
        format_penalty = np.array(penalties, dtype=np.float64)
    except (TypeError, ValueError):
        i = next(i for i, p in enumerate(penalties) if not isinstance(p, (int, float)) or isinstance(p, bool))
        raise ValueError(
            _where(records, i, "format_penalty") + f" is {penalties[i]!r}, not a number"
        ) from None
    num_turns = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
    t_max = int(num_turns.max()) if n else 0
    turn_rewards = np.zeros((n, t_max))
    try:
        if n and (num_turns == t_max).all():
            turn_rewards[:] = np.asarray(rows, dtype=np.float64)
        else:
            for length in np.unique(num_turns):
                members = np.flatnonzero(num_turns == length)
                if length:
                    turn_rewards[members, :length] = np.asarray([rows[i] for i in members], dtype=np.float64)
    except (TypeError, ValueError):
        for i, row in enumerate(rows):
            for t, value in enumerate(row, start=1):
                if value is None or isinstance(value, (str, bool, list, dict)):
                    raise ValueError(
                        _where(records, i, f"turn_rewards.t{t}") + f" is {value!r}, not a number"
                    ) from None
        raise

    for name, array in (("turn_rewards", turn_rewards), ("format_penalty", format_penalty)):
        bad = ~np.isfinite(array)
        if bad.any():
            i, *rest = np.argwhere(bad)[0]
            field = f"{name}.t{rest[0] + 1}" if rest else name
            raise ValueError(
                _where(records, int(i), field) + f" is {array[(i, *rest)]}, not a finite number; "
                "fix or drop this row before computing weights"
            )
    inputs = ReturnInputs(
        group_index, turn_rewards, num_turns, format_penalty, unique_fraction, success, len(group_of)
    )
    if any(undecided):
        inputs.undecided_turns = np.array(undecided, dtype=np.int64)
    if per_turn:
        inputs.turn_format_penalty = np.zeros((n, t_max))
        inputs.turn_repeat_share = np.zeros((n, t_max))
        for i, record in enumerate(records):
            if penalties[i] == 0 and unique[i] == 1.0:
                continue  # nothing to place (most rows): keeps per-turn parsing near the plain one
            turns = int(num_turns[i])
            try:
                inputs.turn_format_penalty[i, :turns] = format_penalty_per_turn(record, turns)
                answers = record.get("answer_norms") or []
                given = len(answers) - answers.count(None)
                if unique[i] < 1.0:
                    placed = answer_turns(record, turns)
                    if placed is None:
                        raise ValueError(
                            f"field answer_norms has {len(answers)} entries for {turns} turns and nothing "
                            "says which turn gave which (reward_details[tK].actions); per-turn credit "
                            "cannot charge the repeats to their turns"
                        )
                    for turn, hit in zip(placed, repeated_answers(answers), strict=True):
                        inputs.turn_repeat_share[i, turn] += hit / given
            except ValueError as err:
                raise ValueError(f"{_record_label(records, i)}: {err}") from None
    return inputs


def _record_label(records: Sequence[dict], i: int) -> str:
    record = records[i]
    label = f"prompt_id={record.get('prompt_id')!r}"
    if "traj_idx" in record:
        label += f", traj_idx={record['traj_idx']!r}"
    return f"record {i} ({label})"


def _where(records: Sequence[dict], i: int, field: str) -> str:
    return f"{_record_label(records, i)}: field {field}"


# --------------------------------------------------------------------------------------------------
# the whole computation


@dataclass
class WeightResult:
    """Weights for every trajectory, optional per-turn weights, returns, and the diagnostics."""

    weights: np.ndarray  # (N,)
    returns: np.ndarray  # (N,) R_i
    turn_weights: np.ndarray | None  # (N, T_max), NaN past a trajectory's last turn
    summary: dict


def compute_weights(inputs: ReturnInputs, config: WeightConfig | None = None) -> WeightResult:
    """Returns, weights, optional per-turn weights and the summary for already-flattened inputs."""
    config = config or WeightConfig()
    config.validate()
    returns = trajectory_returns(inputs, config.gamma, config.diversity_lambda)
    # drop: the whole group of any undecided trajectory (see the module docstring)
    kept = ~inputs.in_undecided_group() if config.undecided == "drop" else np.ones(len(returns), dtype=bool)
    if kept.all():
        weights, equal_group = importance_weights(returns, inputs.group_index, config, inputs.num_groups)
    else:  # dropped trajectories: weight 0 and out of their group's V*
        weights = np.zeros(len(returns))
        weights[kept], equal_group = importance_weights(
            returns[kept], inputs.group_index[kept], config, inputs.num_groups
        )
        # a group with no member left has no returns to compare: not an all-equal group
        equal_group &= np.bincount(inputs.group_index[kept], minlength=inputs.num_groups) > 0

    turn_weights = None
    if config.per_turn:
        togo = returns_to_go(inputs, config.gamma, config.diversity_lambda)
        valid = ~np.isnan(togo)
        turn_weights = np.full(togo.shape, np.nan)
        turn_weights[valid & ~kept[:, None]] = 0.0
        valid &= kept[:, None]
        rows, turns = np.nonzero(valid)
        # each (group, turn index) cell is its own group: trajectories compared at the same depth
        cell = inputs.group_index[rows] * togo.shape[1] + turns
        cell_ids, cell_index = np.unique(cell, return_inverse=True)
        cell_weights, _ = importance_weights(togo[valid], cell_index, config, len(cell_ids))
        turn_weights[valid] = cell_weights

    summary = summarise(weights, inputs, equal_group, config, kept=kept)
    return WeightResult(weights, returns, turn_weights, summary)


def summarise(
    weights: np.ndarray,
    inputs: ReturnInputs,
    equal_group: np.ndarray,
    config: WeightConfig,
    *,
    kept: np.ndarray | None = None,
) -> dict:
    """Diagnostics: groups, success rate, ESS per group (mean/min), max weight, share of all-equal groups,
    and the undecided trajectories (``kept``: the trajectories the weighting used; all when None)."""
    g = inputs.num_groups
    undecided = inputs.undecided_turns if inputs.undecided_turns is not None else np.zeros(len(weights), int)
    kept = np.ones(len(weights), dtype=bool) if kept is None else kept
    emptied = (np.bincount(inputs.group_index, minlength=g) > 0) & (
        np.bincount(inputs.group_index[kept], minlength=g) == 0
    )
    sizes = np.bincount(inputs.group_index, minlength=g)
    ess = effective_sample_size(weights, inputs.group_index, g)
    group_success = np.bincount(inputs.group_index, weights=inputs.success, minlength=g)
    trained = np.bincount(inputs.group_index, weights=weights, minlength=g) > 0
    n = len(weights)
    return {
        "trajectories": int(n),
        "groups": int(g),
        "success_rate": float(inputs.success.mean()) if n else 0.0,
        "ess_mean": float(ess[trained].mean()) if trained.any() else 0.0,
        "ess_min": float(ess[trained].min()) if trained.any() else 0.0,
        "ess_fraction_mean": float((ess[trained] / sizes[trained]).mean()) if trained.any() else 0.0,
        "max_weight": float(weights.max()) if n else 0.0,
        "mean_weight": float(weights.mean()) if n else 0.0,
        "zero_weight_trajectories": int((weights == 0).sum()),
        "clipped_trajectories": int((weights >= config.clip_max).sum()) if config.clip_max is not None else 0,
        "all_equal_group_share": float(equal_group.mean()) if g else 0.0,
        "all_fail_group_share": float((group_success == 0).mean()) if g else 0.0,
        "all_success_group_share": float((group_success == sizes).mean()) if g else 0.0,
        "undecided_trajectories": int((undecided > 0).sum()),
        "undecided_turns": int(undecided.sum()),
        "undecided_dropped_trajectories": int((~kept).sum()),  # their groups' other members included
        "undecided_emptied_groups": int(emptied.sum()),
        "config": asdict(config),
    }


def add_weights(records: list[dict], config: WeightConfig | None = None) -> tuple[list[dict], dict]:
    """Return copies of ``records`` with ``weight`` and ``return`` (and ``turn_weights`` when per-turn) added,
    plus the summary dict."""
    config = config or WeightConfig()
    result = compute_weights(records_to_inputs(records, per_turn=config.per_turn), config)
    out = []
    for i, record in enumerate(records):
        row = dict(record)
        row["weight"] = float(result.weights[i])
        row["return"] = float(result.returns[i])
        if result.turn_weights is not None:
            row["turn_weights"] = {
                f"t{t + 1}": float(w) for t, w in enumerate(result.turn_weights[i]) if not np.isnan(w)
            }
        out.append(row)
    return out, result.summary


# --------------------------------------------------------------------------------------------------
# files and the CLI


def summary_path(out: str | Path) -> Path:
    """Where ``drift weights`` saves the summary JSON: beside the output, ``NAME.summary.json``."""
    out = Path(out)
    return out.with_name(out.name.split(".")[0] + ".summary.json")


def print_summary(summary: dict) -> None:
    """Print the diagnostics as a table (rich)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="DRIFT importance weights")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in (
        "trajectories",
        "groups",
        "success_rate",
        "ess_mean",
        "ess_min",
        "ess_fraction_mean",
        "max_weight",
        "mean_weight",
        "zero_weight_trajectories",
        "clipped_trajectories",
        "all_equal_group_share",
        "all_fail_group_share",
        "all_success_group_share",
        "undecided_trajectories",
        "undecided_turns",
        "undecided_dropped_trajectories",
        "undecided_emptied_groups",
    ):
        value = summary[key]
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
