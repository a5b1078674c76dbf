"""Multi-turn evaluation: how often, and how fast, a model recovers from its mistakes given feedback.

Metrics (each with a standard error) from trajectory records of any env:

- ``success@t`` — share of episodes solved within ``t`` turns, ``t = 1..T``;
- ``acc_turn[t]`` — per-turn conditional accuracy: solved at turn ``t`` among episodes still unsolved
  at its start;
- ``correction_rate`` — solved eventually among episodes wrong at turn 1 (ours: one number over the
  whole episode);
- ``release_correction_rate[t]``, ``t = 2..T`` — the DRIFT release's "correction rate" (its
  ``compute_metrics`` in ``src/eval_math_multiturn_vllm.py``): per turn, solved at turn ``t`` among the
  episodes that attempted turn ``t`` (all of them wrong so far). It is the same ratio as ``acc_turn[t]``
  and is offered under the release's meaning so a number compared with the paper's is the paper's;
  it is *not* ``correction_rate``, which pools every later turn over the episodes wrong at turn 1;
- ``mean_turns_to_success`` — among solved episodes;
- ``non_repeat_ratio`` — distinct answers / answers given, averaged over episodes with an answer;
- ``format_error_rate`` — share of replies the env charged its format penalty (no extractable answer,
  or one it could not take; :mod:`drift_train.facts` reads it from ours and the release's rows alike);
- ``undecided_turn_rate`` — share of replies whose verdict the env's checker could not reach in time
  (the record's ``undecided_turns``), and ``undecided_episode_rate`` — share of episodes with at least
  one; ``num_undecided_turns`` counts them. Every other metric scores an undecided turn as the record
  does, as not solved: success@t is a lower bound when some verdicts are missing. Where any turn is
  undecided, ``success_at_if_undecided_correct[t]`` is the upper end of that bracket (an episode counts
  as solved within t turns when it was, or when one of its first t turns was undecided), so a reader
  sees how far the missing verdicts could move success@t instead of a silently low number;
- on tool-use episodes (``drift/ToolUse-v0``), the eight MTU-Bench tool metrics of
  :mod:`drift_train.tool_metrics` (``tool_selection_accuracy`` ... ``task_process_rate``), one value
  per episode, averaged with the same clustered s.e., and the same eight as the release's
  ``evaluate_mtu_bench`` reports them (``release_mtu_tool_selection_accuracy`` ...; final attempt
  only, success = solved, the release's argument lookup: the differences are listed in
  :mod:`drift_train.tool_metrics`).

Each metric is ``{"value", "se", "n", "tasks"}`` (``n`` observations from ``tasks`` tasks); with no
observations value and se are None, and se is None when the observations come from one task.

Standard errors are clustered by task (``task_id``; ``prompt_id`` where a row has none): the samples
of one task are not independent, so counting episodes as independent draws understates the error
(100 tasks x 8 samples: the binomial s.e. was 0.018 where the spread over repeated evaluations is
0.045). Every metric is a ratio ``m = Σ_i y_i / Σ_i x_i`` over episodes ``i`` (``x_i`` what episode i
puts in the denominator — 1, or its number of replies for ``format_error_rate`` — and ``y_i`` what it
puts in the numerator), and its s.e. is the cluster-robust (CR1, linearised ratio) formula over the
``G`` tasks that have observations::

    se(m)² = G/(G−1) · Σ_g (Y_g − m·X_g)² / X²       Y_g = Σ_{i∈g} y_i,  X_g = Σ_{i∈g} x_i,  X = Σ_g X_g

With the same number of samples per task (success@t), this is exactly the s.e. of the mean of the
per-task means, ``sd_g(ȳ_g)/√G``; with one sample per task it is the binomial s.e. times
``√(n/(n−1))``. Two models evaluated on the same tasks are compared with a paired s.e. from the
per-task differences of the same linearised terms (:func:`paired_differences`)::

    se(m_A − m_B)² = G/(G−1) · Σ_g (u_{A,g} − u_{B,g})²      u_g = (Y_g − m·X_g) / X

which, with balanced samples, is the s.e. of the mean per-task difference.

``drift eval --model PATH --env ID --num-tasks N --out metrics.json`` rolls the model out (greedy by
default) and writes the metrics, with one row per task in ``metrics.tasks.jsonl`` beside it;
``drift eval --records FILE --out metrics.json`` computes them from an existing trajectory file (ours
or the DRIFT release's) without a model. ``--baseline FILE`` adds the paired differences against
another model's trajectories on the same tasks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drift_train.facts import record_facts

__all__ = [
    "clustered_ratio",
    "eval_config",
    "evaluate_model",
    "format_metric",
    "metric_observations",
    "metrics_table",
    "multiturn_metrics",
    "paired_differences",
    "per_task_results",
    "plot_success_curves",
    "undecided_note",
]


def _task_of(record: dict) -> str:
    """The cluster of an episode: its task (``prompt_id`` for rows without a ``task_id``)."""
    task = record.get("task_id")
    return str(task if task is not None else record.get("prompt_id"))


def _task_sums(y: Sequence[float], x: Sequence[float], tasks: Sequence[str]) -> dict[str, list[float]]:
    """{task: [Y_g, X_g]} over the tasks with observations (x > 0)."""
    sums: dict[str, list[float]] = {}
    for yi, xi, g in zip(y, x, tasks, strict=True):
        if xi:
            cell = sums.setdefault(g, [0.0, 0.0])
            cell[0] += yi
            cell[1] += xi
    return sums


# A metric with no observations has value and se None (JSON null): NaN would make the metrics files
# invalid JSON (RFC 8259) for strict readers such as JavaScript's JSON.parse.
def clustered_ratio(y: Sequence[float], x: Sequence[float], tasks: Sequence[str]) -> dict[str, Any]:
    """``Σy/Σx`` with its task-clustered (CR1) standard error: the module docstring's formula."""
    sums = _task_sums(y, x, tasks)
    total = sum(X for _, X in sums.values())
    if not total:
        return {"value": None, "se": None, "n": 0, "tasks": 0}
    value = sum(Y for Y, _ in sums.values()) / total
    G = len(sums)
    se = None
    if G > 1:
        se = math.sqrt(G / (G - 1) * sum((Y - value * X) ** 2 for Y, X in sums.values())) / total
    return {"value": value, "se": se, "n": int(round(total)), "tasks": G}


def metric_observations(
    records: Sequence[dict], max_turns: int | None = None, *, tool_decay: float = 0.9
) -> tuple[list[str], int, dict]:
    """``(tasks, T, obs)``: each episode's task, the turn budget, and for every metric its per-episode
    ``(y, x)`` lists (``obs["success_at"]["1"] = (y, x)``, ..., ``obs["correction_rate"] = (y, x)``).
    Tool-use episodes add the MTU-Bench tool metrics (:mod:`drift_train.tool_metrics`; ``tool_decay``
    is the decay factor of ``soft_turn_success_rate``)."""
    if not records:
        raise ValueError("no trajectories to evaluate")
    facts = [record_facts(r) for r in records]
    T = max_turns or max(f.num_turns for f in facts)
    first = [f.t_star for f in facts]
    tasks = [_task_of(r) for r in records]
    obs: dict[str, Any] = {"success_at": {}, "acc_turn": {}}
    for t in range(1, T + 1):
        obs["success_at"][str(t)] = ([float(f.solved_within(t)) for f in facts], [1.0] * len(records))
        at_risk = [
            float((s is None or s >= t) and f.num_turns >= t) for s, f in zip(first, facts, strict=True)
        ]
        obs["acc_turn"][str(t)] = ([float(s == t) for s in first], at_risk)
    # the release's per-turn correction rate: of the episodes that attempted turn t (all wrong before
    # it, since an episode ends when solved), the share solved there: acc_turn's ratio, t >= 2
    obs["release_correction_rate"] = {str(t): obs["acc_turn"][str(t)] for t in range(2, T + 1)}
    wrong_first = [float(s != 1) for s in first]
    obs["correction_rate"] = ([float(s is not None and s != 1) for s in first], wrong_first)
    obs["mean_turns_to_success"] = ([float(s or 0) for s in first], [float(s is not None) for s in first])
    ratios, has_answer = [], []
    for f in facts:
        # distinct answers / answers given: an empty answer is one answer here (the diversity
        # penalty of the weights charges it instead: TurnFacts.repeated)
        given = [a for a in f.answers if a is not None]
        ratios.append(len(set(given)) / len(given) if given else 0.0)
        has_answer.append(float(bool(given)))
    obs["non_repeat_ratio"] = (ratios, has_answer)
    replies = [float(f.num_turns) for f in facts]
    obs["format_error_rate"] = ([float(f.format_errors) for f in facts], replies)
    undecided = [f.undecided_turns for f in facts]
    obs["undecided_turn_rate"] = ([float(len(u)) for u in undecided], replies)
    obs["undecided_episode_rate"] = ([float(bool(u)) for u in undecided], [1.0] * len(records))
    if any(undecided):
        # the other end of success@t's bracket: every undecided verdict taken as a success
        obs["success_at_if_undecided_correct"] = {
            str(t): ([float(f.could_solve_within(t)) for f in facts], [1.0] * len(records))
            for t in range(1, T + 1)
        }
    from drift_train.tool_metrics import tool_metric_observations

    obs.update(tool_metric_observations(records, tool_decay))
    return tasks, T, obs


def _map_metrics(obs: dict, fn) -> dict:
    return {
        name: ({t: fn(*v) for t, v in value.items()} if isinstance(value, dict) else fn(*value))
        for name, value in obs.items()
    }


def multiturn_metrics(
    records: Sequence[dict], max_turns: int | None = None, *, tool_decay: float = 0.9
) -> dict[str, Any]:
    """The multi-turn metrics of a set of trajectory records (one episode each), task-clustered s.e."""
    tasks, T, obs = metric_observations(records, max_turns, tool_decay=tool_decay)
    metrics = _map_metrics(obs, lambda y, x: clustered_ratio(y, x, tasks))
    return {
        "num_episodes": len(records),
        "max_turns": T,
        "num_tasks": len(set(tasks)),
        "num_undecided_turns": int(sum(obs["undecided_turn_rate"][0])),
        **metrics,
    }


def paired_differences(
    records_a: Sequence[dict],
    records_b: Sequence[dict],
    max_turns: int | None = None,
    *,
    tool_decay: float = 0.9,
) -> dict[str, Any]:
    """Every metric of model A minus model B on the same tasks, with the paired (per-task) s.e. of the
    module docstring: ``{"value", "se", "tasks"}`` per metric. Raises when the task sets differ."""
    tasks_a, T_a, obs_a = metric_observations(records_a, max_turns, tool_decay=tool_decay)
    tasks_b, T_b, obs_b = metric_observations(records_b, max_turns, tool_decay=tool_decay)
    only_a, only_b = set(tasks_a) - set(tasks_b), set(tasks_b) - set(tasks_a)
    if only_a or only_b:
        raise ValueError(
            f"paired differences need the same tasks: {len(only_a)} task(s) only in the first set "
            f"(e.g. {sorted(only_a)[:3]}), {len(only_b)} only in the second (e.g. {sorted(only_b)[:3]})"
        )
    T = max(T_a, T_b)
    if T_a != T_b:  # compare over the same budget
        tasks_a, _, obs_a = metric_observations(records_a, T, tool_decay=tool_decay)
        tasks_b, _, obs_b = metric_observations(records_b, T, tool_decay=tool_decay)

    def difference(a: tuple, b: tuple) -> dict[str, Any]:
        sums_a, sums_b = _task_sums(*a, tasks_a), _task_sums(*b, tasks_b)
        total_a, total_b = sum(X for _, X in sums_a.values()), sum(X for _, X in sums_b.values())
        if not total_a or not total_b:
            return {"value": None, "se": None, "tasks": 0}
        m_a = sum(Y for Y, _ in sums_a.values()) / total_a
        m_b = sum(Y for Y, _ in sums_b.values()) / total_b
        shared = set(sums_a) | set(sums_b)
        u = [
            (sums_a.get(g, [0.0, 0.0])[0] - m_a * sums_a.get(g, [0.0, 0.0])[1]) / total_a
            - (sums_b.get(g, [0.0, 0.0])[0] - m_b * sums_b.get(g, [0.0, 0.0])[1]) / total_b
            for g in shared
        ]
        G = len(shared)
        se = math.sqrt(G / (G - 1) * sum(v * v for v in u)) if G > 1 else None
        return {"value": m_a - m_b, "se": se, "tasks": G}

    out: dict[str, Any] = {"max_turns": T}
    for name, value in obs_a.items():
        if name not in obs_b:  # the tool metrics of tool episodes on one side only
            continue
        if isinstance(value, dict):
            out[name] = {t: difference(v, obs_b[name][t]) for t, v in value.items()}
        else:
            out[name] = difference(value, obs_b[name])
    return out


def per_task_results(records: Sequence[dict]) -> list[dict]:
    """One row per task: samples, solved count, first successful turn of each sample."""
    by_task: dict[str, list[dict]] = {}
    for r in records:
        by_task.setdefault(str(r["task_id"]), []).append(r)
    rows = []
    for task_id, group in by_task.items():
        first = [record_facts(r).t_star for r in group]
        rows.append(
            {
                "task_id": task_id,
                "samples": len(group),
                "solved": sum(1 for s in first if s is not None),
                "t_star": first,
                "answers": [r.get("answer_norms") for r in group],
            }
        )
    return rows


def format_metric(m: dict) -> str:
    """``value ± se`` of a metric dict (``—`` when it has no observations, no ``±`` from a single task)."""
    if m["value"] is None:
        return "—"
    return f"{m['value']:.3f}" if m["se"] is None else f"{m['value']:.3f} ± {m['se']:.3f}"


def metrics_table(rows: dict[str, dict], title: str = "multi-turn evaluation"):
    """A rich table with one row per named metrics dict (success@1..T, correction, repeats, format)."""
    from rich.table import Table

    T = max(m["max_turns"] for m in rows.values())
    table = Table(title=title)
    table.add_column("model")
    for t in range(1, T + 1):
        table.add_column(f"success@{t}", justify="right")
    # a column for missing verdicts only where some are missing: most envs never have any
    undecided = any(m.get("num_undecided_turns") for m in rows.values())
    for col in ("correction", "non-repeat", "format err") + (("undecided",) if undecided else ()):
        table.add_column(col, justify="right")
    for name, m in rows.items():
        cells = [
            format_metric(m["success_at"][str(t)]) if str(t) in m["success_at"] else "—"
            for t in range(1, T + 1)
        ]
        cells += [
            format_metric(m["correction_rate"]),
            format_metric(m["non_repeat_ratio"]),
            format_metric(m["format_error_rate"]),
        ]
        if undecided:
            cells.append(format_metric(m["undecided_turn_rate"]) if "undecided_turn_rate" in m else "—")
        table.add_row(name, *cells)
    return table


def undecided_note(metrics: dict) -> str:
    """One line on the turns without a verdict: how many, and how far they could move success@t."""
    low, high = metrics["success_at"], metrics["success_at_if_undecided_correct"]
    moved = [
        f"success@{t} {low[t]['value']:.3f} could be {high[t]['value']:.3f}"
        for t in sorted(low, key=int)
        if t in high and high[t]["value"] != low[t]["value"]
    ]
    return (
        f"{metrics['num_undecided_turns']} turn(s) undecided (the checker reached no verdict in time) in "
        f"{metrics['undecided_episode_rate']['value']:.1%} of episodes; every metric counts them as not "
        "solved, so success@t is a lower bound: "
        + (
            "; ".join(moved) + " if every undecided verdict were correct"
            if moved
            else "no success@t would change"
        )
    )


def plot_success_curves(metrics: dict[str, dict], path: str | os.PathLike, title: str = "") -> Path:
    """A PNG of success-within-t curves (with ±1 s.e. bands), one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, m in metrics.items():
        ts = sorted(int(t) for t in m["success_at"])
        values = [m["success_at"][str(t)]["value"] for t in ts]
        ses = [m["success_at"][str(t)]["se"] or 0.0 for t in ts]  # None: a single task, no band
        ax.plot(ts, values, marker="o", label=name)
        ax.fill_between(
            ts,
            [v - s for v, s in zip(values, ses, strict=True)],
            [v + s for v, s in zip(values, ses, strict=True)],
            alpha=0.15,
        )
    ax.set_xlabel("turns t")
    ax.set_ylabel("success within t turns")
    ax.set_xticks(sorted({int(t) for m in metrics.values() for t in m["success_at"]}))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def eval_config(env_id: str | None = None, **fields: Any):
    """The :class:`~drift_train.rollout.RolloutConfig` an evaluation runs unless told otherwise (``drift eval``'s
    defaults): greedy (temperature 0), one sample per task, 100 tasks, 64-token replies, 256 episodes per
    chunk. ``fields`` replace any of its fields (``sampling`` as a whole
    :class:`~drift_train.policies.SamplingParams`)."""
    from drift_train.policies import SamplingParams
    from drift_train.rollout import RolloutConfig

    values: dict[str, Any] = {
        "num_tasks": 100,
        "samples": 1,
        "batch_size": 256,
        "sampling": SamplingParams(temperature=0.0, max_new_tokens=64),
    }
    values.update(fields)
    return RolloutConfig(env_id=env_id, **values)  # type: ignore[arg-type]  # None: the command's "unset"


def evaluate_model(
    policy: Any,
    config: Any,
    *,
    out_trajectories: str | Path | None = None,
    progress: bool = True,
    tool_decay: float = 0.9,
) -> tuple[dict, list[dict]]:
    """Roll ``policy`` out as the :class:`~drift_train.rollout.RolloutConfig` ``config`` says and return
    ``(metrics, records)`` (:func:`eval_config` gives evaluation's defaults: greedy, one sample per task).

    The caller owns ``policy`` (and closes it). ``out_trajectories`` keeps the records (rewritten);
    ``tool_decay`` is the MTU-Bench decay factor of the tool metrics (tool-use envs only).
    """
    from drift_train.rollout import rollout

    records, _ = rollout(policy, config, out_trajectories, overwrite=True, progress=progress)
    budget = _turn_budget(config.env_id, config.effective_env_kwargs)
    return multiturn_metrics(records, budget, tool_decay=tool_decay), records


def _turn_budget(env_id: str, env_kwargs: dict) -> int | None:
    """The env's ``max_turns``: success@1..T must run to the budget even when every episode ended sooner."""
    if env_kwargs.get("max_turns") is not None:
        return int(env_kwargs["max_turns"])
    from drift_train.rollout import make_env

    env = make_env(env_id, env_kwargs)
    try:
        budget = getattr(env.unwrapped, "max_turns", None)
    finally:
        env.close()
    return int(budget) if budget is not None else None


def records_turn_budget(records: Sequence[dict]) -> int | None:
    """The turn budget written in the records: ``env_kwargs.max_turns`` or ``meta.max_turns`` (the
    release's padding), the largest found; None when no record says."""
    budgets = [
        int(b)
        for r in records
        for b in ((r.get("env_kwargs") or {}).get("max_turns"), (r.get("meta") or {}).get("max_turns"))
        if b is not None
    ]
    return max(budgets) if budgets else None
