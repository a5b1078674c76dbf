"""Multi-turn metrics against a naive per-episode count, and ``drift eval`` on the tiny model."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pytest
from parity_env import register_parity_env

from drift_train.cli import main as drift_main
from drift_train.evaluate import (
    evaluate_model,
    format_metric,
    multiturn_metrics,
    paired_differences,
    per_task_results,
)
from drift_train.trajectories import read_trajectories

PARITY_ENV_ID = "drift-test/EvalParity-v0"

# one torch thread (conftest): the tiny model gains nothing from a second one, and on shared cores the two
# contend; the two tiny-model evaluations took 229 s with two threads and 29 s with one at load 7-9
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_record(
    bits: list[int], answers: list[str | None], task_id: str = "task-0", traj_idx: int = 0
) -> dict:
    """A trajectory record with the fields the metrics read (verifier bits and normalised answers)."""
    keys = [f"t{t}" for t in range(1, len(bits) + 1)]
    return {
        "prompt_id": task_id,
        "traj_idx": traj_idx,
        "task_id": task_id,
        "verifier": dict(zip(keys, bits, strict=True)),
        "turn_rewards": {k: float(b) for k, b in zip(keys, bits, strict=True)},
        "t_star": next((t for t, b in enumerate(bits, start=1) if b), None),
        "answer_norms": answers,
    }


# ---- a naive reference, one episode at a time ------------------------------------------------------
# Standard errors are clustered by task: each metric is Σy/Σx over episodes, and its s.e. comes from
# the per-task totals (Y_g, X_g): se² = G/(G−1) Σ_g (Y_g − m X_g)² / X² over the G tasks observed.


def naive_cluster(obs: list[tuple[str, float, float]]) -> tuple[float | None, float | None]:
    """(value, se) of Σy/Σx from (task, y, x) triples, the s.e. clustered by task (None for one task)."""
    per_task: dict[str, list[float]] = {}
    for task, y, x in obs:
        if x:
            per_task.setdefault(task, [0.0, 0.0])
            per_task[task][0] += y
            per_task[task][1] += x
    if not per_task:
        return None, None
    total_y = sum(v[0] for v in per_task.values())
    total_x = sum(v[1] for v in per_task.values())
    m = total_y / total_x
    G = len(per_task)
    if G == 1:
        return m, None
    spread = sum((Y - m * X) ** 2 for Y, X in per_task.values())
    return m, math.sqrt(G / (G - 1) * spread) / total_x


def naive_metrics(records: list[dict], T: int) -> dict:
    """The metrics counted episode by episode with plain loops (value, se) per metric."""
    episodes = []
    for r in records:
        turns = sorted(r["verifier"], key=lambda k: int(k[1:]))
        bits = [r["verifier"][k] for k in turns]
        first = None
        for t, b in enumerate(bits, start=1):
            if b == 1:
                first = t
                break
        episodes.append((r["task_id"], bits, first, r.get("answer_norms") or []))
    out: dict = {"success_at": {}, "acc_turn": {}}
    for t in range(1, T + 1):
        solved_by_t, at_risk = [], []
        for task, bits, first, _ in episodes:
            solved_by_t.append((task, float(first is not None and first <= t), 1.0))
            still_unsolved_at_start = first is None or first >= t
            if len(bits) >= t and still_unsolved_at_start:
                at_risk.append((task, float(bits[t - 1] == 1), 1.0))
        out["success_at"][t] = naive_cluster(solved_by_t)
        out["acc_turn"][t] = naive_cluster(at_risk)
    corrections = []
    for task, bits, first, _ in episodes:
        if bits[0] == 0:
            corrections.append((task, float(first is not None), 1.0))
    out["correction_rate"] = naive_cluster(corrections)
    out["mean_turns_to_success"] = naive_cluster(
        [(task, float(first), 1.0) for task, _, first, _ in episodes if first is not None]
    )
    ratios, replies = [], []
    for task, _, _, answers in episodes:
        distinct: list[str] = []
        given = format_errors = 0
        for a in answers:
            if a is None:
                format_errors += 1
                continue
            given += 1
            if a not in distinct:
                distinct.append(a)
        if given:
            ratios.append((task, len(distinct) / given, 1.0))
        replies.append((task, float(format_errors), float(len(answers))))
    out["non_repeat_ratio"] = naive_cluster(ratios)
    out["format_error_rate"] = naive_cluster(replies)
    return out


def assert_matches_naive(metrics: dict, records: list[dict], T: int) -> None:
    """Every metric (value and standard error) equals the naive count."""
    naive = naive_metrics(records, T)
    assert metrics["num_episodes"] == len(records)
    assert metrics["max_turns"] == T
    assert sorted(metrics["success_at"], key=int) == [str(t) for t in range(1, T + 1)]
    assert sorted(metrics["acc_turn"], key=int) == [str(t) for t in range(1, T + 1)]

    def same(m: dict, expected: tuple, where: str) -> None:
        value, se = expected
        if value is None:
            assert m["n"] == 0 and m["value"] is None and m["se"] is None, where
        else:
            assert m["value"] == pytest.approx(value, abs=1e-12), where
            assert m["se"] == (None if se is None else pytest.approx(se, abs=1e-12)), where

    for t in range(1, T + 1):
        same(metrics["success_at"][str(t)], naive["success_at"][t], f"success@{t}")
        same(metrics["acc_turn"][str(t)], naive["acc_turn"][t], f"acc_turn[{t}]")
    for name in ("correction_rate", "mean_turns_to_success", "non_repeat_ratio", "format_error_rate"):
        same(metrics[name], naive[name], name)


# ---- hand-made records with known answers -----------------------------------------------------------

HAND_MADE = [
    make_record([1], ["4"], "a"),  # solved at turn 1
    make_record([0, 0, 1], ["3", None, "4"], "b"),  # solved at turn 3, a format error at turn 2
    make_record([0, 0, 0], ["5", "5", "5"], "c"),  # never, the same answer three times
    make_record([0, 0, 0], [None, None, None], "d"),  # never, no answer ever extracted
    make_record([0, 1], ["7", "4"], "e"),  # solved at turn 2
]


def test_hand_made_records_known_values() -> None:
    m = multiturn_metrics(HAND_MADE, max_turns=3)
    assert [m["success_at"][t]["value"] for t in "123"] == pytest.approx([1 / 5, 2 / 5, 3 / 5])
    # five tasks of one sample each: the clustered s.e. is the binomial one with n − 1 for n
    assert m["success_at"]["1"]["se"] == pytest.approx(math.sqrt(0.2 * 0.8 / 4))
    # at risk: all 5 at turn 1; b, c, d, e at turn 2 (e solves); b, c, d at turn 3 (b solves)
    assert [(m["acc_turn"][t]["value"], m["acc_turn"][t]["n"]) for t in "123"] == [
        pytest.approx((1 / 5, 5)),
        pytest.approx((1 / 4, 4)),
        pytest.approx((1 / 3, 3)),
    ]
    assert (m["correction_rate"]["value"], m["correction_rate"]["n"]) == (0.5, 4)
    assert m["correction_rate"]["se"] == pytest.approx(math.sqrt(0.5 * 0.5 / 3))
    assert m["mean_turns_to_success"]["value"] == pytest.approx(2.0)  # turns 1, 3, 2
    assert m["mean_turns_to_success"]["se"] == pytest.approx(1 / math.sqrt(3))  # sample sd 1
    # d has no answer at all and is left out; c repeats "5" three times
    assert m["non_repeat_ratio"]["n"] == 4
    assert m["non_repeat_ratio"]["value"] == pytest.approx((1 + 1 + 1 / 3 + 1) / 4)
    assert (m["format_error_rate"]["value"], m["format_error_rate"]["n"]) == (pytest.approx(4 / 12), 12)
    assert_matches_naive(m, HAND_MADE, 3)


def test_turn_budget_defaults_to_longest_episode_and_extends_past_it() -> None:
    assert multiturn_metrics(HAND_MADE)["max_turns"] == 3
    m = multiturn_metrics(HAND_MADE, max_turns=5)
    assert [m["success_at"][str(t)]["value"] for t in range(1, 6)] == pytest.approx([0.2, 0.4, 0.6, 0.6, 0.6])
    assert m["acc_turn"]["4"]["n"] == 0  # nobody played turn 4
    assert_matches_naive(m, HAND_MADE, 5)


def test_turns_are_ordered_numerically_not_as_strings() -> None:
    # "t10" sorts before "t2" as a string; the first success here is turn 10 of 12
    bits = [0] * 12
    bits[9] = 1
    record = make_record(bits, [str(i) for i in range(12)])
    record["verifier"] = dict(sorted(record["verifier"].items()))  # t1, t10, t11, t12, t2, ...
    m = multiturn_metrics([record])
    assert m["max_turns"] == 12
    assert m["success_at"]["9"]["value"] == 0.0
    assert m["success_at"]["10"]["value"] == 1.0
    assert m["acc_turn"]["10"]["value"] == 1.0
    assert m["mean_turns_to_success"]["value"] == 10.0


def test_random_records_match_naive_count() -> None:
    rng = random.Random(7)
    T = 4
    records = []
    for i in range(300):
        first = rng.choice([1, 2, 3, 4, None, None])
        length = first if first is not None else T
        bits = [int(first is not None and t == first) for t in range(1, length + 1)]
        answers = [rng.choice([None, "1", "2", "3", "4"]) for _ in bits]
        records.append(make_record(bits, answers, f"task-{i // 3}", i % 3))
    assert_matches_naive(multiturn_metrics(records, max_turns=T), records, T)


def test_metrics_without_observations_are_null_in_json() -> None:
    # every episode solved at turn 1: no correction to measure, nobody at risk at turn 2
    records = [make_record([1], ["2"], f"t{i}") for i in range(3)]
    m = multiturn_metrics(records, max_turns=2)
    assert m["correction_rate"] == {"value": None, "se": None, "n": 0, "tasks": 0}
    assert m["acc_turn"]["2"]["n"] == 0
    assert format_metric(m["correction_rate"]) == "—"
    assert json.loads(json.dumps(m, allow_nan=False)) == m  # strict JSON: no NaN
    assert_matches_naive(m, records, 2)


def test_empty_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="no trajectories"):
        multiturn_metrics([])


def test_per_task_results_groups_samples() -> None:
    records = [
        make_record([0, 1], ["1", "2"], "x", 0),
        make_record([0, 0], ["1", "1"], "x", 1),
        make_record([1], ["5"], "y", 0),
    ]
    rows = {row["task_id"]: row for row in per_task_results(records)}
    assert rows["x"] == {
        "task_id": "x",
        "samples": 2,
        "solved": 1,
        "t_star": [2, None],
        "answers": [["1", "2"], ["1", "1"]],
    }
    assert rows["y"]["solved"] == 1 and rows["y"]["t_star"] == [1]


# ---- drift eval on the tiny model -------------------------------------------------------------------


def _metrics_only(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("model", "env", "env_kwargs")}


def test_drift_eval_cli_math(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval" / "metrics.json"
    rc = drift_main(
        [
            "eval",
            "--model",
            str(tiny_model_dir),
            "--env",
            "drift/MathFeedback-v0",
            "--env-kwargs",
            json.dumps({"difficulty": "easy", "max_turns": 3}),
            "--num-tasks",
            "4",
            "--max-new-tokens",
            "8",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    metrics = json.loads(out.read_text())
    assert metrics["model"] == str(tiny_model_dir) and metrics["env"] == "drift/MathFeedback-v0"
    assert metrics["num_episodes"] == 4 and metrics["max_turns"] == 3
    assert list(metrics["success_at"]) == ["1", "2", "3"]

    trajectories = list(read_trajectories(out.with_name("metrics.trajectories.jsonl")))  # validated rows
    assert len(trajectories) == 4
    assert all(
        r["env_kwargs"]["max_turns"] == 3 and r["meta"]["sampling"]["temperature"] == 0.0
        for r in trajectories
    )
    # the saved metrics are exactly the metrics of the saved trajectories
    assert _metrics_only(metrics) == json.loads(json.dumps(multiturn_metrics(trajectories, max_turns=3)))
    assert_matches_naive(metrics, trajectories, 3)

    rows = [json.loads(line) for line in out.with_name("metrics.tasks.jsonl").read_text().splitlines()]
    assert sorted(row["task_id"] for row in rows) == sorted(r["task_id"] for r in trajectories)
    assert all(row["samples"] == 1 for row in rows)
    assert sum(row["solved"] for row in rows) == round(metrics["success_at"]["3"]["value"] * 4)


def test_drift_eval_rejects_bad_env_kwargs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        drift_main(
            [
                "eval",
                "--model",
                "unused",
                "--env",
                "drift/MathFeedback-v0",
                "--env-kwargs",
                "{oops",
                "--out",
                str(tmp_path / "m.json"),
            ]
        )
    assert exc.value.code == 2
    assert "--env-kwargs is not valid JSON" in capsys.readouterr().err


@pytest.fixture(scope="module")
def parity_env_id() -> str:
    return register_parity_env(PARITY_ENV_ID, num_tasks=20, max_turns=16)


def test_evaluate_model_reports_every_turn_of_the_env_budget(
    tiny_model_dir: Path, parity_env_id: str, tmp_path: Path
) -> None:
    # max_turns is not in env_kwargs: the budget (16, set at registration) comes from the env, even though
    # every episode ends sooner. Replies long enough to end at a random length have either parity about
    # half the time, so an episode still unsolved after 15 turns has odds of about 3e-5 (short replies
    # would all have the same length, and odd tasks would then run out the budget for some seeds).
    from drift_train.evaluate import eval_config
    from drift_train.policies import SamplingParams, make_policy

    config = eval_config(
        parity_env_id,
        num_tasks=6,
        samples=2,
        seed=3,
        sampling=SamplingParams(temperature=1.0, max_new_tokens=200),
    )
    policy = make_policy("hf", str(tiny_model_dir))
    try:
        metrics, records = evaluate_model(
            policy, config, out_trajectories=tmp_path / "t.jsonl", progress=False
        )
    finally:
        policy.close()
    assert len(records) == 12 and len(list(read_trajectories(tmp_path / "t.jsonl"))) == 12
    assert max(len(r["verifier"]) for r in records) < 16
    assert metrics["max_turns"] == 16
    assert list(metrics["success_at"]) == [str(t) for t in range(1, 17)]
    assert_matches_naive(metrics, records, 16)
    assert metrics["success_at"]["1"]["value"] < 1  # some episodes need more than one turn
    assert metrics["success_at"]["16"]["value"] == 1.0


# ---- clustered and paired standard errors ----------------------------------------------------------


def _population_run(rng, tasks: int, samples: int, a: float = 0.2) -> list[dict]:
    """One evaluation: tasks drawn from a population of difficulties (Beta(a, a)), `samples` episodes each."""
    records = []
    for g in range(tasks):
        p = rng.betavariate(a, a)
        for j in range(samples):
            records.append(
                {
                    "task_id": f"task-{g}",
                    "traj_idx": j,
                    "verifier": {"t1": int(rng.random() < p)},
                    "answer_norms": ["x"],
                }
            )
    return records


def test_clustered_se_matches_the_spread_over_repeated_evaluations() -> None:
    """100 tasks x 8 samples (the issue's case): the clustered s.e. is the Monte-Carlo sd of success@1
    over repeated evaluations (new tasks each time); the binomial s.e. is 2.4x too small."""
    rng = random.Random(12)
    values, ses, binomial = [], [], []
    for _ in range(400):
        m = multiturn_metrics(_population_run(rng, 100, 8))["success_at"]["1"]
        values.append(m["value"])
        ses.append(m["se"])
        binomial.append(math.sqrt(m["value"] * (1 - m["value"]) / m["n"]))
        assert m["tasks"] == 100 and m["n"] == 800
    mc_sd = statistics.stdev(values)
    assert 0.040 < mc_sd < 0.048  # Beta(0.2, 0.2) tasks: sqrt((1/5.6 + (1/4 - 1/5.6)/8)/100) = 0.0433
    assert statistics.mean(ses) == pytest.approx(mc_sd, rel=0.08)
    assert statistics.mean(binomial) < 0.45 * mc_sd


def test_balanced_clustered_se_is_the_se_of_the_per_task_means() -> None:
    records = _population_run(random.Random(3), 30, 4)
    m = multiturn_metrics(records)["success_at"]["1"]
    means = [
        statistics.mean(r["verifier"]["t1"] for r in records if r["task_id"] == f"task-{g}")
        for g in range(30)
    ]
    assert m["value"] == pytest.approx(statistics.mean(means))
    assert m["se"] == pytest.approx(statistics.stdev(means) / math.sqrt(30), rel=1e-12)


def test_paired_difference_uses_the_per_task_differences() -> None:
    rng = random.Random(5)
    a, b = [], []
    for g in range(40):
        p = rng.betavariate(0.5, 0.5)  # a shared difficulty: the two models' results are correlated
        for _ in range(4):
            a.append({"task_id": f"task-{g}", "verifier": {"t1": int(rng.random() < min(1.0, p + 0.1))}})
            b.append({"task_id": f"task-{g}", "verifier": {"t1": int(rng.random() < p)}})
    d = paired_differences(a, b)["success_at"]["1"]
    diffs = [
        statistics.mean(r["verifier"]["t1"] for r in a[4 * g : 4 * g + 4])
        - statistics.mean(r["verifier"]["t1"] for r in b[4 * g : 4 * g + 4])
        for g in range(40)
    ]
    assert d["value"] == pytest.approx(statistics.mean(diffs))
    assert d["se"] == pytest.approx(statistics.stdev(diffs) / math.sqrt(40), rel=1e-12)
    unpaired = math.hypot(
        multiturn_metrics(a)["success_at"]["1"]["se"], multiturn_metrics(b)["success_at"]["1"]["se"]
    )
    assert d["se"] < 0.8 * unpaired  # pairing removes the shared task difficulty
    with pytest.raises(ValueError, match="same tasks: 0 task"):
        paired_differences(a[:-4], b)


# ---- drift eval --records: metrics from existing trajectory files, no model ------------------------------


def test_drift_eval_records_ours_and_the_release_s(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from test_release_parity import release_rows

    from drift_train.trajectories import write_trajectories

    ours = [
        dict(
            make_record(bits, answers, task, j),
            env_id=None,
            env_kwargs={"max_turns": 3},
            meta={"schema_version": 1},
            format_penalty=-0.1 * answers.count(None),
            messages=[{"role": "user", "content": "q"}]
            + [
                m
                for _ in bits
                for m in ({"role": "assistant", "content": "a"}, {"role": "user", "content": "again"})
            ][:-1],
        )
        for j, (bits, answers, task) in enumerate(
            [
                ([1], ["4"], "a"),
                ([0, 1], ["3", "4"], "a"),
                ([0, 0, 0], ["5", None, "5"], "b"),
                ([0, 1], [None, "2"], "b"),
            ]
        )
    ]
    path = write_trajectories(ours, tmp_path / "ours.jsonl")
    out = tmp_path / "m.json"
    assert drift_main(["eval", "--records", str(path), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    records = list(read_trajectories(path))
    assert {k: v for k, v in metrics.items() if k != "records"} == json.loads(
        json.dumps(multiturn_metrics(records, 3))
    )
    assert metrics["max_turns"] == 3 and metrics["num_tasks"] == 2
    assert_matches_naive(metrics, records, 3)
    assert len(out.with_name("m.tasks.jsonl").read_text().splitlines()) == 2

    release = tmp_path / "release.jsonl"
    rows = release_rows()
    release.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert drift_main(["eval", "--records", str(release), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["max_turns"] == 5  # the budget the release's padding stood for
    solved = [r["t_star"] for r in rows]
    assert metrics["success_at"]["5"]["value"] == pytest.approx(
        sum(s is not None for s in solved) / len(rows)
    )
    assert metrics["num_tasks"] == 3 and metrics["success_at"]["5"]["tasks"] == 3
    # format errors come from reward_details (the release leaves no answer_norms entry for them)
    errors = sum(1 for r in rows for d in r["reward_details"].values() if d["format_penalty"])
    replies = sum(len(r["reward_details"]) for r in rows)
    assert metrics["format_error_rate"]["value"] == pytest.approx(errors / replies) and errors == 13

    # --baseline: paired differences against another file of the same tasks
    assert drift_main(["eval", "--records", str(release), "--baseline", str(release), "--out", str(out)]) == 0
    vs = json.loads(out.read_text())["vs_baseline"]
    assert vs["success_at"]["5"] == {"value": 0.0, "se": 0.0, "tasks": 3}
    assert drift_main(["eval", "--records", str(release), "--baseline", str(path), "--out", str(out)]) == 2
    assert "paired differences need the same tasks" in capsys.readouterr().err


def test_drift_eval_needs_a_model_and_env_or_records(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        drift_main(["eval", "--model", "m", "--out", str(tmp_path / "m.json")])
    assert exc.value.code == 2
    assert "or --records FILE" in capsys.readouterr().err
