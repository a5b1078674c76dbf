"""One reading of a record (:mod:`drift_train.facts`): the same records give the same numbers in the rollout
summary, the evaluation metrics, the weights' inputs and the report.

Our records come from real rollouts through the engine, in real envs, of a policy that plays a fixed plan
per task (format errors, an undecided verdict, repeated answers, late and missing solutions); the release's
rows are built as its generator writes them (``tests/test_release_parity.py``). What each reader must find
is counted from the plans and the rows' construction, not from the module under test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_release_parity import release_rows

from drift_train.evaluate import metric_observations, multiturn_metrics
from drift_train.facts import record_facts, turn_counts
from drift_train.online_rl import group_advantages, trajectory_advantages
from drift_train.policies import Completion, PolicyBase
from drift_train.report import build_report, collect
from drift_train.rollout import RolloutConfig, make_env, rollout, summarize
from drift_train.trajectories import normalize_record, write_trajectories
from drift_train.weights import records_to_inputs, trajectory_returns

# a plan is one (reply, kind) per turn; kinds: "format" (no answer the env takes), "undecided", "wrong",
# "repeat" (a wrong answer given before), "right"; a kind may carry "+format" (a repeat the env refuses)
Plan = list[tuple[str, str]]


class PlannedReplies(PolicyBase):
    """Reply k of an episode is ``plan(env)[k]``: the plan of the env's current task (its oracle reply
    gives the right answer), so the replies and what each one is are known before the rollout."""

    backend, model_id = "planned", "planned-replies"
    needs_env = True

    def __init__(self, plan: Callable[[object], Plan]) -> None:
        self.plan = plan

    def generate(self, conversations, params, seeds=None, *, tools=None, envs=None):
        """One planned completion per conversation."""
        out = []
        for conversation, env in zip(conversations, envs, strict=True):
            k = sum(1 for m in conversation if m["role"] == "assistant")
            text = self.plan(env)[k][0]
            out.append([Completion(text=text, num_tokens=len(text), finish_reason="stop")])
        return out


def math_plan(env) -> Plan:
    """Three kinds of task (by index): a format error then right; undecided, wrong, the same wrong again,
    right; wrong, a format error, the same wrong again, another wrong (never solved in 4 turns)."""
    base = env.unwrapped
    gold = int(base.oracle_reply().removeprefix("\\boxed{").removesuffix("}"))
    kind = base.task_index(base.task.task_id) % 3
    if kind == 0:
        return [("I do not know.", "format"), (f"\\boxed{{{gold}}}", "right")]
    if kind == 1:  # \sqrt{gold²} needs the symbolic check, which cannot answer within max_wait_s
        return [
            (f"\\boxed{{\\sqrt{{{gold * gold}}}}}", "undecided"),
            (f"\\boxed{{{gold + 1}}}", "wrong"),
            (f"\\boxed{{{gold + 1}}}", "repeat"),
            (f"\\boxed{{{gold}}}", "right"),
        ]
    return [
        (f"\\boxed{{{gold + 1}}}", "wrong"),
        ("I do not know.", "format"),
        (f"\\boxed{{{gold + 1}}}", "repeat"),
        (f"\\boxed{{{gold + 2}}}", "wrong"),
    ]


def guess_plan(env) -> Plan:
    """Guess The Number: a guess out of range (an invalid move: the env charges the format penalty although
    it read a number), a wrong guess, the same guess again (invalid and repeated), the target."""
    target = env.unwrapped.oracle_reply()
    wrong = "[1]" if target != "[1]" else "[2]"
    return [("[999]", "format"), (wrong, "wrong"), (wrong, "repeat+format"), (target, "right")]


MATH_KWARGS = {"max_wait_s": 0.001, "max_turns": 4, "difficulty": "tiny"}  # tiny: a + b, integer golds


def planned_rollout(env_id: str, env_kwargs: dict, plan: Callable, num_tasks: int, samples: int = 2):
    """Real rollouts of the plan; returns the records and the kinds of the turns each one took."""
    config = RolloutConfig(env_id, env_kwargs, num_tasks=num_tasks, samples=samples)
    records, _ = rollout(PlannedReplies(plan), config)
    env = make_env(env_id, env_kwargs)
    kinds = []
    try:
        for r in records:
            env.reset(seed=r["meta"]["env_seed"], options={"index": r["prompt_id"]})
            kinds.append([k for _, k in plan(env)][: len(r["verifier"])])
    finally:
        env.close()
    return records, kinds


def expected_counts(kinds: list[list[str]]) -> dict[str, list[int]]:
    """Per-turn totals counted from the plans (or the release rows' construction)."""
    T = max(len(k) for k in kinds)
    out = {name: [0] * T for name in ("reached", "correct", "format_errors", "undecided", "repeated")}
    out["solved_within"] = [0] * T
    for plan in kinds:
        for t, kind in enumerate(plan):
            out["reached"][t] += 1
            out["correct"][t] += kind.startswith("right")
            out["format_errors"][t] += "format" in kind
            out["undecided"][t] += kind == "undecided"
            out["repeated"][t] += kind.count("repeat")
        first = next((t for t, kind in enumerate(plan) if kind.startswith("right")), None)
        if first is not None:
            for t in range(first, T):
                out["solved_within"][t] += 1
    return out


def release_kinds(rows: list[dict]) -> list[list[str]]:
    """What each turn of the release rows is, from the actions they were built with."""
    kinds = []
    for row in rows:
        seen: set[str] = set()
        plan = []
        for t in range(1, len(row["reward_details"]) + 1):
            d = row["reward_details"][f"t{t}"]
            if not d["actions"]:
                plan.append("format")
                continue
            repeats = 0
            for action in d["actions"]:  # charged: empty, or given before (this turn's earlier ones too)
                repeats += not action or action in seen
                seen.add(action)
            plan.append(("right" if d["info"].get("success") else "wrong") + "+repeat" * repeats)
        kinds.append(plan)
    return kinds


def assert_one_reading(records: list[dict], expected: dict[str, list[int]], tmp_path: Path) -> None:
    """rollout.summarize, eval's metrics, the weights' inputs and the report's collection all find ``expected``."""
    n, T = len(records), len(expected["reached"])
    counts = turn_counts(records)
    assert {k: counts[k] for k in expected} == expected

    summary = summarize(records)
    turns = sum(expected["reached"])
    assert summary["reached"] == expected["reached"]
    assert summary["success_within"] == [s / n for s in expected["solved_within"]]
    assert summary["format_error_rate"] == pytest.approx(sum(expected["format_errors"]) / turns)
    assert summary["undecided_turns"] == sum(expected["undecided"])

    _, budget, obs = metric_observations(records, T)
    assert budget == T
    for t in range(1, T + 1):
        assert sum(obs["success_at"][str(t)][0]) == expected["solved_within"][t - 1]
    errors, replies = obs["format_error_rate"]
    assert (sum(errors), sum(replies)) == (sum(expected["format_errors"]), turns)
    metrics = multiturn_metrics(records, T)
    assert metrics["num_undecided_turns"] == sum(expected["undecided"])
    assert metrics["format_error_rate"]["value"] == pytest.approx(summary["format_error_rate"])

    inputs = records_to_inputs(records, per_turn=True)
    per_turn_errors = (inputs.turn_format_penalty < 0).sum(axis=0)
    assert per_turn_errors.tolist() == expected["format_errors"]
    given = np.array([max(record_facts(r).answers_given, 1) for r in records], dtype=float)
    repeats = np.rint((inputs.turn_repeat_share * given[:, None]).sum(axis=0)).astype(int)
    assert repeats.tolist() == expected["repeated"]
    assert int(inputs.success.sum()) == expected["solved_within"][-1]
    undecided = 0 if inputs.undecided_turns is None else int(inputs.undecided_turns.sum())
    assert undecided == sum(expected["undecided"])

    folder = tmp_path / "run"
    folder.mkdir()
    write_trajectories(records, folder / "eval_planned.jsonl")
    found = collect([folder])
    (source,) = found["trajectories"]
    assert {k: source["turns"][k] for k in expected} == expected
    (row,) = found["metrics"]
    assert [row["metrics"]["success_at"][str(t)]["value"] for t in range(1, T + 1)] == summary[
        "success_within"
    ]
    page = build_report([folder], tmp_path / "report.html").read_text()
    table = page[page.index("id='turn-facts-table'") :]
    table = table[: table.index("</table>")]
    for t in range(T):
        cells = "".join(
            f"<td>{expected[c][t]}</td>"
            for c in ("reached", "correct", "format_errors", "undecided", "repeated", "solved_within")
        )
        assert f"<td>{t + 1}</td>{cells}" in table
    data = json.loads(re.search(r'id="trajectory-data">(.*?)</script>', page, flags=re.S).group(1))
    browsed = [[t["format_error"] for t in r["turns"]] for r in data]
    assert [sum(col) for col in zip(*[b + [False] * (T - len(b)) for b in browsed], strict=True)] == expected[
        "format_errors"
    ]


def test_math_rollouts_read_the_same_everywhere(tmp_path: Path) -> None:
    records, kinds = planned_rollout("drift/MathFeedback-v0", MATH_KWARGS, math_plan, num_tasks=6)
    if not any("undecided" in k for k in kinds):  # pragma: no cover - the env's contract
        pytest.fail("no undecided task in the plan")
    undecided = [r for r in records if r.get("undecided_turns")]
    assert len(undecided) == 4 and all(r["undecided_turns"] == [1] for r in undecided)
    expected = expected_counts(kinds)
    assert expected["format_errors"] == [4, 4, 0, 0] and expected["repeated"] == [0, 0, 8, 0]
    assert_one_reading(records, expected, tmp_path)


def test_an_invalid_move_is_a_format_error_everywhere(tmp_path: Path) -> None:
    """TextArena reads a number from an invalid move and charges the format penalty: every reader calls it
    a format error (the evaluation used to count only replies without an answer, the summary the penalty)."""
    pytest.importorskip("textarena", reason="drift/TextArena-v0 needs the textarena package")
    records, kinds = planned_rollout("drift/TextArena-v0", {"max_turns": 4}, guess_plan, num_tasks=3)
    assert all(r["answer_norms"][0] == "999" for r in records)  # an answer was read ...
    assert all(r["meta"]["turns"][0]["format_ok"] is False for r in records)  # ... and refused
    expected = expected_counts(kinds)
    assert expected["format_errors"] == [6, 0, 6, 0] and expected["solved_within"] == [0, 0, 0, 6]
    assert_one_reading(records, expected, tmp_path)
    assert all(f.turns[0].answered and f.turns[0].format_error for f in map(record_facts, records))


def test_release_rows_read_the_same_everywhere(tmp_path: Path) -> None:
    """Rows as the release writes them: format errors live only in reward_details (no answer_norms entry),
    a turn may hold several answers; the summary used to find none of their format errors."""
    raw = release_rows()
    rows = [normalize_record(r, traj_idx=i) for i, r in enumerate(raw)]
    expected = expected_counts(release_kinds(rows))
    assert sum(expected["format_errors"]) == 13  # the rows' construction: one per reply without an action
    assert summarize(rows)["format_error_rate"] == pytest.approx(13 / sum(expected["reached"]))
    assert_one_reading(rows, expected, tmp_path)


def test_undecided_trajectories_train_neither_way(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Online RL gives every member of a group with an undecided trajectory advantage 0 (the group has no
    baseline), as drift weights by default gives them weight 0; RFT does not train an undecided trajectory although
    a later turn solved the task."""
    from transformers import AutoTokenizer

    from drift_train.data import RenderConfig, build_dataset
    from drift_train.weights import WeightConfig, add_weights

    records, _ = planned_rollout("drift/MathFeedback-v0", MATH_KWARGS, math_plan, num_tasks=6)
    undecided = [r for r in records if r.get("undecided_turns")]
    solved = [r for r in records if r["t_star"] and not r.get("undecided_turns")]
    failed = [r for r in records if not r["t_star"]]
    # a task's samples all follow one plan: a batch of two groups that mix them, one with an undecided member
    members = [[solved[0], failed[0], undecided[0]], [solved[1], failed[1]]]
    batch = [dict(r, prompt_id=g, traj_idx=j) for g, group in enumerate(members) for j, r in enumerate(group)]
    inputs = records_to_inputs(batch)
    returns = trajectory_returns(inputs, 0.9, 0.5)
    advantages = trajectory_advantages(returns, inputs)
    plain = group_advantages(returns, inputs.group_index)
    assert (advantages[:3] == 0).all() and (plain[:3] != 0).all()  # scored as a failure it would have trained
    np.testing.assert_allclose(advantages[3:], plain[3:])
    assert advantages[3] > 0 > advantages[4]
    weighted, _ = add_weights(batch, WeightConfig())  # drift weights reads the group the same way
    assert [w["weight"] == 0.0 for w in weighted] == [True, True, True, False, False]

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    solved_undecided = sum(1 for r in undecided if r["t_star"])
    assert solved_undecided == len(undecided) == 4
    with pytest.warns(UserWarning, match="have a turn without a verdict"):
        dataset = build_dataset(records, tokenizer, RenderConfig(), "rft")
    assert dataset.stats.skipped_undecided == solved_undecided
    assert len({e["record_index"] for e in dataset.examples}) == len(solved)
