"""Multi-turn metrics against a naive per-episode count, and ``drift eval`` on the tiny model."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from parity_env import register_parity_env

from drift_train.cli import main as drift_main
from drift_train.evaluate import evaluate_model, format_metric, multiturn_metrics, per_task_results
from drift_train.trajectories import read_trajectories

PARITY_ENV_ID = "drift-test/EvalParity-v0"


def make_record(bits: list[int], answers: list[str | None], task_id: str = "task-0", traj_idx: int = 0) -> dict:
    """A trajectory record with the fields the metrics read (verifier bits and normalised answers)."""
    keys = [f"t{t}" for t in range(1, len(bits) + 1)]
    return {
        "prompt_id": task_id, "traj_idx": traj_idx, "task_id": task_id,
        "verifier": dict(zip(keys, bits, strict=True)),
        "turn_rewards": {k: float(b) for k, b in zip(keys, bits, strict=True)},
        "t_star": next((t for t, b in enumerate(bits, start=1) if b), None),
        "answer_norms": answers,
    }


# ---- a naive reference, one episode at a time ------------------------------------------------------

def naive_proportion(hits: int, n: int) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    p = hits / n
    return p, math.sqrt(p * (1 - p) / n)


def naive_mean(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, sd / math.sqrt(len(values))


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
        episodes.append((bits, first, r.get("answer_norms") or []))
    out: dict = {"success_at": {}, "acc_turn": {}}
    for t in range(1, T + 1):
        solved_by_t = 0
        for _, first, _ in episodes:
            if first is not None and first <= t:
                solved_by_t += 1
        out["success_at"][t] = naive_proportion(solved_by_t, len(episodes))
        at_risk = hits = 0
        for bits, first, _ in episodes:
            still_unsolved_at_start = first is None or first >= t
            if len(bits) >= t and still_unsolved_at_start:
                at_risk += 1
                if bits[t - 1] == 1:
                    hits += 1
        out["acc_turn"][t] = naive_proportion(hits, at_risk)
    wrong_first = corrected = 0
    for bits, first, _ in episodes:
        if bits[0] == 0:
            wrong_first += 1
            if first is not None:
                corrected += 1
    out["correction_rate"] = naive_proportion(corrected, wrong_first)
    out["mean_turns_to_success"] = naive_mean([float(first) for _, first, _ in episodes if first is not None])
    ratios = []
    replies = format_errors = 0
    for _, _, answers in episodes:
        distinct: list[str] = []
        given = 0
        for a in answers:
            replies += 1
            if a is None:
                format_errors += 1
                continue
            given += 1
            if a not in distinct:
                distinct.append(a)
        if given:
            ratios.append(len(distinct) / given)
    out["non_repeat_ratio"] = naive_mean(ratios)
    out["format_error_rate"] = naive_proportion(format_errors, replies)
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
            assert m["se"] == pytest.approx(se, abs=1e-12), where

    for t in range(1, T + 1):
        same(metrics["success_at"][str(t)], naive["success_at"][t], f"success@{t}")
        same(metrics["acc_turn"][str(t)], naive["acc_turn"][t], f"acc_turn[{t}]")
    for name in ("correction_rate", "mean_turns_to_success", "non_repeat_ratio", "format_error_rate"):
        same(metrics[name], naive[name], name)


# ---- hand-made records with known answers -----------------------------------------------------------

HAND_MADE = [
    make_record([1], ["4"], "a"),                       # solved at turn 1
    make_record([0, 0, 1], ["3", None, "4"], "b"),      # solved at turn 3, a format error at turn 2
    make_record([0, 0, 0], ["5", "5", "5"], "c"),       # never, the same answer three times
    make_record([0, 0, 0], [None, None, None], "d"),    # never, no answer ever extracted
    make_record([0, 1], ["7", "4"], "e"),               # solved at turn 2
]


def test_hand_made_records_known_values() -> None:
    m = multiturn_metrics(HAND_MADE, max_turns=3)
    assert [m["success_at"][t]["value"] for t in "123"] == pytest.approx([1 / 5, 2 / 5, 3 / 5])
    assert m["success_at"]["1"]["se"] == pytest.approx(math.sqrt(0.2 * 0.8 / 5))
    # at risk: all 5 at turn 1; b, c, d, e at turn 2 (e solves); b, c, d at turn 3 (b solves)
    assert [(m["acc_turn"][t]["value"], m["acc_turn"][t]["n"]) for t in "123"] == [
        pytest.approx((1 / 5, 5)), pytest.approx((1 / 4, 4)), pytest.approx((1 / 3, 3))]
    assert (m["correction_rate"]["value"], m["correction_rate"]["n"]) == (0.5, 4)
    assert m["correction_rate"]["se"] == pytest.approx(0.25)
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
    assert m["correction_rate"] == {"value": None, "se": None, "n": 0}
    assert m["acc_turn"]["2"]["n"] == 0
    assert format_metric(m["correction_rate"]) == "—"
    assert json.loads(json.dumps(m, allow_nan=False)) == m  # strict JSON: no NaN
    assert_matches_naive(m, records, 2)


def test_empty_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="no trajectories"):
        multiturn_metrics([])


def test_per_task_results_groups_samples() -> None:
    records = [make_record([0, 1], ["1", "2"], "x", 0), make_record([0, 0], ["1", "1"], "x", 1),
               make_record([1], ["5"], "y", 0)]
    rows = {row["task_id"]: row for row in per_task_results(records)}
    assert rows["x"] == {"task_id": "x", "samples": 2, "solved": 1, "t_star": [2, None],
                         "answers": [["1", "2"], ["1", "1"]]}
    assert rows["y"]["solved"] == 1 and rows["y"]["t_star"] == [1]


# ---- drift eval on the tiny model -------------------------------------------------------------------

def _metrics_only(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("model", "env", "env_kwargs")}


def test_drift_eval_cli_math(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval" / "metrics.json"
    rc = drift_main(["eval", "--model", str(tiny_model_dir), "--env", "drift/MathFeedback-v0",
                     "--env-kwargs", json.dumps({"difficulty": "easy", "max_turns": 3}),
                     "--num-tasks", "4", "--max-new-tokens", "8", "--out", str(out)])
    assert rc == 0
    metrics = json.loads(out.read_text())
    assert metrics["model"] == str(tiny_model_dir) and metrics["env"] == "drift/MathFeedback-v0"
    assert metrics["num_episodes"] == 4 and metrics["max_turns"] == 3
    assert list(metrics["success_at"]) == ["1", "2", "3"]

    trajectories = list(read_trajectories(out.with_name("metrics.trajectories.jsonl")))  # validated rows
    assert len(trajectories) == 4
    assert all(r["env_kwargs"]["max_turns"] == 3 and r["meta"]["sampling"]["temperature"] == 0.0
               for r in trajectories)
    # the saved metrics are exactly the metrics of the saved trajectories
    assert _metrics_only(metrics) == json.loads(json.dumps(multiturn_metrics(trajectories, max_turns=3)))
    assert_matches_naive(metrics, trajectories, 3)

    rows = [json.loads(line) for line in out.with_name("metrics.tasks.jsonl").read_text().splitlines()]
    assert sorted(row["task_id"] for row in rows) == sorted(r["task_id"] for r in trajectories)
    assert all(row["samples"] == 1 for row in rows)
    assert sum(row["solved"] for row in rows) == round(metrics["success_at"]["3"]["value"] * 4)


def test_drift_eval_rejects_bad_env_kwargs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        drift_main(["eval", "--model", "unused", "--env", "drift/MathFeedback-v0", "--env-kwargs", "{oops",
                    "--out", str(tmp_path / "m.json")])
    assert exc.value.code == 2
    assert "--env-kwargs is not valid JSON" in capsys.readouterr().err


@pytest.fixture(scope="module")
def parity_env_id() -> str:
    return register_parity_env(PARITY_ENV_ID, num_tasks=20, max_turns=16)


def test_evaluate_model_reports_every_turn_of_the_env_budget(tiny_model_dir: Path, parity_env_id: str,
                                                              tmp_path: Path) -> None:
    # max_turns is not in env_kwargs: the budget (16, set at registration) comes from the env, even though
    # every episode ends sooner. Replies long enough to end at a random length have either parity about
    # half the time, so an episode still unsolved after 15 turns has odds of about 3e-5 (short replies
    # would all have the same length, and odd tasks would then run out the budget for some seeds).
    metrics, records = evaluate_model(str(tiny_model_dir), parity_env_id, num_tasks=6, samples=2, temperature=1.0,
                                      max_new_tokens=200, seed=3, out_trajectories=tmp_path / "t.jsonl",
                                      progress=False)
    assert len(records) == 12 and len(list(read_trajectories(tmp_path / "t.jsonl"))) == 12
    assert max(len(r["verifier"]) for r in records) < 16
    assert metrics["max_turns"] == 16
    assert list(metrics["success_at"]) == [str(t) for t in range(1, 17)]
    assert_matches_naive(metrics, records, 16)
    assert metrics["success_at"]["1"]["value"] < 1  # some episodes need more than one turn
    assert metrics["success_at"]["16"]["value"] == 1.0
