"""DRIFT importance weights against a naive per-group loop written here, independently of weights.py."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from drift_train.commands.weights import main
from drift_train.trajectories import read_trajectories
from drift_train.weights import WeightConfig, add_weights, summary_path


def naive_return(record: dict, gamma: float, lam: float) -> float:
    """R = Σ_t γ^(t-1) r_t + format_penalty − λ (1 − unique/answers), one trajectory at a time."""
    total = 0.0
    for key, reward in record["turn_rewards"].items():
        t = int(key[1:])
        total += gamma ** (t - 1) * reward
    total += record.get("format_penalty") or 0.0
    answers = [a for a in record.get("answer_norms") or [] if a is not None]
    if answers:  # an empty answer counts as an answer but is never a unique one (the release's rule)
        total -= lam * (1 - len({a for a in answers if a}) / len(answers))
    return total


def naive_weights(
    records: list[dict], gamma=0.9, beta=0.1, lam=0.5, equal="keep", floor=0.1, clip=None
) -> list[float]:
    """w_i = exp(R_i/β) / mean_j exp(R_j/β) group by group, with plain Python math."""
    groups: dict = {}
    for i, r in enumerate(records):
        groups.setdefault(r["prompt_id"], []).append(i)
    out = [0.0] * len(records)
    for members in groups.values():
        returns = [naive_return(records[i], gamma, lam) for i in members]
        if max(returns) - min(returns) <= 1e-9:
            value = {"keep": 1.0, "drop": 0.0, "floor": floor}[equal]
            for i in members:
                out[i] = value
            continue
        top = max(returns)
        exps = [math.exp((r - top) / beta) for r in returns]
        mean = sum(exps) / len(exps)
        for i, e in zip(members, exps, strict=True):
            w = e / mean
            out[i] = min(w, clip) if clip is not None else w
    return out


def random_records(seed: int, groups: int = 40, k: int = 8, max_turns: int = 5) -> list[dict]:
    """Groups of K trajectories with ties, all-fail and all-success groups, repeated answers, penalties."""
    rng = random.Random(seed)
    records = []
    for g in range(groups):
        kind = g % 4  # 0: mixed, 1: all fail, 2: all succeed at turn 1 (identical returns), 3: ties
        for j in range(k):
            if kind == 1:
                t_star = None
            elif kind == 2:
                t_star = 1
            elif kind == 3:
                t_star = 2 if j % 2 else None
            else:
                t_star = rng.choice([None, 1, 2, 3, max_turns])
            n_turns = t_star if t_star is not None else max_turns
            rewards = {f"t{t}": (1.0 if t == t_star else 0.0) for t in range(1, n_turns + 1)}
            answers = [rng.choice(["1", "2", "3", None]) for _ in range(n_turns)]
            penalty = 0.0 if kind in (1, 2, 3) else -0.1 * sum(a is None for a in answers)
            if kind in (1, 2, 3):
                answers = [str(t) for t in range(n_turns)]  # all unique: no diversity penalty
            messages = [{"role": "user", "content": f"task {g}"}]
            for t in range(n_turns):
                messages += [
                    {"role": "assistant", "content": f"answer {answers[t]}"},
                    {"role": "user", "content": "try again"},
                ]
            records.append(
                {
                    "prompt_id": f"p{g}",
                    "traj_idx": j,
                    "messages": messages[:-1],
                    "turn_rewards": rewards,
                    "verifier": {k_: int(v == 1.0) for k_, v in rewards.items()},
                    "t_star": t_star,
                    "answer_norms": answers,
                    "format_penalty": penalty,
                    "env_id": "drift/MathFeedback-v0",
                    "task_id": f"task{g}",
                    "meta": {},
                }
            )
    rng.shuffle(records)  # groups interleaved, as in a file written by parallel workers
    return records


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("equal", ["keep", "drop", "floor"])
def test_weights_match_naive_loop(seed: int, equal: str) -> None:
    records = random_records(seed)
    weighted, summary = add_weights(records, WeightConfig(equal_groups=equal, equal_weight=0.25))
    expected = naive_weights(records, equal=equal, floor=0.25)
    np.testing.assert_allclose([r["weight"] for r in weighted], expected, rtol=1e-10, atol=1e-12)
    assert summary["groups"] == 40
    assert summary["all_equal_group_share"] == pytest.approx(0.5)  # all-fail groups and all-success groups


def test_weights_other_hyperparameters_and_clipping() -> None:
    records = random_records(5)
    config = WeightConfig(gamma=0.7, beta=0.3, diversity_lambda=1.5, clip_max=2.0)
    weighted, _ = add_weights(records, config)
    expected = naive_weights(records, gamma=0.7, beta=0.3, lam=1.5, clip=2.0)
    np.testing.assert_allclose([r["weight"] for r in weighted], expected, rtol=1e-10)
    assert max(r["weight"] for r in weighted) <= 2.0


def test_weights_average_one_per_group_and_prefer_success() -> None:
    records = random_records(3)
    weighted, summary = add_weights(records)
    by_group: dict = {}
    for r in weighted:
        by_group.setdefault(r["prompt_id"], []).append(r)
    for members in by_group.values():
        assert np.mean([r["weight"] for r in members]) == pytest.approx(1.0)
        early = [r["weight"] for r in members if r["t_star"] == 1]
        failed = [r["weight"] for r in members if r["t_star"] is None]
        if early and failed and len({r["return"] for r in members}) > 1:
            assert min(early) > max(failed)
    ess = summary["ess_mean"]
    assert 1.0 <= summary["ess_min"] <= ess <= 8.0


def test_tiny_beta_does_not_overflow() -> None:
    records = random_records(4)
    weighted, _ = add_weights(records, WeightConfig(beta=1e-4))
    w = np.array([r["weight"] for r in weighted])
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w, naive_weights(records, beta=1e-4), rtol=1e-9, atol=1e-12)


def test_global_normalisation_averages_one_over_the_file() -> None:
    records = [
        {"prompt_id": "a", "turn_rewards": {"t1": 1.0}},
        {"prompt_id": "a", "turn_rewards": {"t1": 0.0}},
        {"prompt_id": "b", "turn_rewards": {"t1": 0.5}},
        {"prompt_id": "b", "turn_rewards": {"t1": 0.0}},
    ]
    weighted, _ = add_weights(records, WeightConfig(normalize="global", beta=0.5))
    e = np.exp(np.array([1.0, 0.0, 0.5, 0.0]) / 0.5)
    np.testing.assert_allclose([r["weight"] for r in weighted], e / e.mean())


def test_per_turn_weights_use_return_to_go_per_turn_index() -> None:
    gamma, beta = 0.9, 0.1
    records = [
        {"prompt_id": "p", "turn_rewards": {"t1": 0.0, "t2": 0.0, "t3": 1.0}},
        {"prompt_id": "p", "turn_rewards": {"t1": 1.0}},
        {"prompt_id": "p", "turn_rewards": {"t1": 0.0, "t2": 1.0}},
        {"prompt_id": "p", "turn_rewards": {"t1": 0.0, "t2": 0.0, "t3": 0.0}},
    ]
    weighted, _ = add_weights(records, WeightConfig(per_turn=True, gamma=gamma, beta=beta))
    # naive: G_{i,t} = Σ_{k≥t} γ^(k−t) r_k; normalise among trajectories that reach turn t
    togo = []
    for r in records:
        rewards = [r["turn_rewards"][f"t{t}"] for t in range(1, len(r["turn_rewards"]) + 1)]
        togo.append(
            [sum(gamma ** (k - t) * rewards[k] for k in range(t, len(rewards))) for t in range(len(rewards))]
        )
    for t in range(3):
        present = [i for i in range(4) if len(togo[i]) > t]
        values = [togo[i][t] for i in present]
        if max(values) - min(values) < 1e-12:
            expected = [1.0] * len(present)
        else:
            exps = [math.exp(v / beta) for v in values]
            expected = [e / (sum(exps) / len(exps)) for e in exps]
        got = [weighted[i]["turn_weights"][f"t{t + 1}"] for i in present]
        np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert set(weighted[1]["turn_weights"]) == {"t1"}
    # turn 1 return-to-go is the trajectory return, so turn-1 weights equal trajectory weights
    np.testing.assert_allclose([r["turn_weights"]["t1"] for r in weighted], [r["weight"] for r in weighted])


@pytest.mark.parametrize("bad", [float("nan"), float("-inf"), float("inf")])
def test_non_finite_rewards_are_rejected_with_location(bad: float) -> None:
    records = random_records(0, groups=2)
    records[3]["turn_rewards"]["t1"] = bad
    with pytest.raises(ValueError, match=r"record 3 .*turn_rewards\.t1.*not a finite number"):
        add_weights(records)
    records = random_records(0, groups=2)
    records[5]["format_penalty"] = bad
    with pytest.raises(ValueError, match=r"record 5 .*format_penalty"):
        add_weights(records)


def test_bad_records_and_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="record 1: missing field 'turn_rewards'"):
        add_weights([{"prompt_id": 1, "turn_rewards": {"t1": 0}}, {"prompt_id": 1}])
    with pytest.raises(ValueError, match="skip a turn"):
        add_weights([{"prompt_id": 1, "turn_rewards": {"t1": 0, "t3": 1}}])
    with pytest.raises(ValueError, match="not a number"):
        add_weights(
            [{"prompt_id": 1, "turn_rewards": {"t1": "high"}}, {"prompt_id": 1, "turn_rewards": {"t1": 0}}]
        )
    with pytest.raises(ValueError, match="beta must be"):
        add_weights([{"prompt_id": 1, "turn_rewards": {"t1": 0}}], WeightConfig(beta=0))


def test_cli_writes_weights_and_summary(tmp_path, capsys) -> None:
    records = random_records(7, groups=12)
    src = tmp_path / "rollouts.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "weighted.jsonl"
    assert main([str(src), "--out", str(out), "--per-turn", "--clip", "5"]) == 0
    rows = list(read_trajectories(out))
    np.testing.assert_allclose([r["weight"] for r in rows], naive_weights(records, clip=5.0), rtol=1e-10)
    assert all("turn_weights" in r for r in rows)
    summary = json.loads(summary_path(out).read_text())
    assert summary["groups"] == 12 and summary["trajectories"] == len(records)
    printed = capsys.readouterr().out
    assert "ess_mean" in printed and "all_equal_group_share" in printed

    src.write_text(src.read_text() + "{not json\n")
    assert main([str(src), "--out", str(out)]) == 2
    assert f"{src}:{len(records) + 1}: not valid JSON" in capsys.readouterr().err

    bad = dict(
        records[0],
        turn_rewards={
            "t1": float("-inf"),
            **{k: v for k, v in records[0]["turn_rewards"].items() if k != "t1"},
        },
    )
    src.write_text(json.dumps(bad) + "\n")
    assert main([str(src), "--out", str(out)]) == 2
    assert "turn_rewards.t1" in capsys.readouterr().err


def test_cli_reads_reference_release_rows(tmp_path) -> None:
    """Rows as the DRIFT reference release stores them: lists and JSON strings, no traj_idx/env/meta."""
    rows = []
    for prompt_id, outcomes in ((7, [[0.0, 1.0], [1.0], [0.0, 0.0]]), (8, [[0.0, 0.0], [0.0, 0.0]])):
        for rewards in outcomes:
            messages = [{"role": "user", "content": "q"}]
            for t, _ in enumerate(rewards):
                messages += [{"role": "assistant", "content": f"a{t}"}, {"role": "user", "content": "again"}]
            t_star = next((t + 1 for t, r in enumerate(rewards) if r == 1.0), None)
            rows.append(
                {
                    "prompt_id": prompt_id,
                    "messages": json.dumps(messages[:-1]),
                    "turn_rewards": json.dumps(rewards),
                    "t_star": t_star,
                    "answer_norms": json.dumps([f"a{t}" for t in range(len(rewards))]),
                    "format_penalty": 0.0,
                }
            )
    src, out = tmp_path / "reference.jsonl", tmp_path / "weighted.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([str(src), "--out", str(out)]) == 0
    weighted = list(read_trajectories(out))
    expected = naive_weights(
        [
            {
                "prompt_id": r["prompt_id"],
                "turn_rewards": {f"t{t + 1}": v for t, v in enumerate(json.loads(r["turn_rewards"]))},
                "answer_norms": json.loads(r["answer_norms"]),
            }
            for r in rows
        ]
    )
    np.testing.assert_allclose([r["weight"] for r in weighted], expected, rtol=1e-10)
    assert [r["traj_idx"] for r in weighted] == [0, 1, 2, 0, 1]
    assert json.loads(summary_path(out).read_text())["all_fail_group_share"] == 0.5


# ---- per-turn credit, clipping, groups of one -----------------------------------------------------------


def turn_record(prompt_id: str, traj_idx: int, answers: list, gold: str = "7", fp: float = -0.1) -> dict:
    """One of our records: answers per turn (None: a format error, charged ``fp``), solved at the first gold."""
    answers = answers[: answers.index(gold) + 1] if gold in answers else answers
    messages = [{"role": "user", "content": "q"}]
    for t, a in enumerate(answers):
        messages.append({"role": "assistant", "content": f"\\boxed{{{a}}}" if a is not None else "no box"})
        if t < len(answers) - 1:
            messages.append({"role": "user", "content": "again"})
    keys = [f"t{t}" for t in range(1, len(answers) + 1)]
    verdicts = [int(a == gold) for a in answers]
    return {
        "prompt_id": prompt_id,
        "traj_idx": traj_idx,
        "env_id": "drift/MathFeedback-v0",
        "env_kwargs": {},
        "task_id": prompt_id,
        "messages": messages,
        "turn_rewards": {k: float(v) for k, v in zip(keys, verdicts, strict=True)},
        "verifier": dict(zip(keys, verdicts, strict=True)),
        "t_star": verdicts.index(1) + 1 if 1 in verdicts else None,
        "answer_norms": answers,
        "format_penalty": fp * answers.count(None),
        "meta": {"schema_version": 1, "turns": [{"format_ok": a is not None} for a in answers]},
    }


def naive_returns_to_go(record: dict, gamma: float, lam: float) -> list[float]:
    """G_t = Σ_{k≥t} γ^(k−t) r_k + the penalties of turns k ≥ t: turn k's format penalty, and λ/answers for
    each answer at k that is empty or repeats an earlier one."""
    rewards = [record["turn_rewards"][f"t{t}"] for t in range(1, len(record["turn_rewards"]) + 1)]
    answers = record["answer_norms"]
    given = sum(a is not None for a in answers)
    fails = sum(a is None for a in answers)
    own = []
    for k, a in enumerate(answers):
        penalty = record["format_penalty"] / fails if a is None else 0.0
        if a is not None and (a == "" or a in answers[:k]):
            penalty -= lam / given
        own.append(penalty)
    return [
        sum(gamma ** (k - t) * rewards[k] + own[k] for k in range(t, len(rewards)))
        for t in range(len(rewards))
    ]


def test_a_format_error_at_turn_1_does_not_change_turn_2_weights() -> None:
    """The issue's case: both correct at turn 2, one after a format error at turn 1 (was 0.538 vs 1.462)."""
    records = [
        turn_record("p", 0, [None, "7"]),
        turn_record("p", 1, ["3", "7"]),
        turn_record("p", 2, ["3", "4", "5"]),
    ]
    weighted, _ = add_weights(records, WeightConfig(per_turn=True))
    assert weighted[0]["turn_weights"]["t2"] == pytest.approx(weighted[1]["turn_weights"]["t2"], rel=1e-12)
    # ... while turn 1, which made the mistake, pays for it
    assert weighted[0]["turn_weights"]["t1"] < weighted[1]["turn_weights"]["t1"]


def test_a_repeat_is_charged_at_the_turn_that_repeats() -> None:
    gamma, lam = 0.9, 0.5
    records = [
        turn_record("p", 0, ["3", "3", "7"]),
        turn_record("p", 1, ["3", "4", "7"]),
        turn_record("p", 2, ["4", "4", "4"]),
        turn_record("p", 3, ["7"]),
    ]
    from drift_train.weights import records_to_inputs, returns_to_go

    togo = returns_to_go(records_to_inputs(records, per_turn=True), gamma, lam)
    for i, r in enumerate(records):
        expected = naive_returns_to_go(r, gamma, lam)
        np.testing.assert_allclose(togo[i, : len(expected)], expected, atol=1e-12)
        assert np.isnan(togo[i, len(expected) :]).all()
    # record 0 repeats at turn 2: turns 1 and 2 carry λ/3, turn 3 (the correct reply) does not
    assert togo[0, 2] == pytest.approx(1.0) and togo[0, 1] == pytest.approx(0.9 - lam / 3)
    weighted, _ = add_weights(records, WeightConfig(per_turn=True, gamma=gamma, diversity_lambda=lam))
    assert weighted[0]["turn_weights"]["t3"] == pytest.approx(weighted[1]["turn_weights"]["t3"])
    # turn 1's return-to-go is the trajectory return, so its weights are the trajectory weights
    np.testing.assert_allclose([w["turn_weights"]["t1"] for w in weighted], [w["weight"] for w in weighted])


@pytest.mark.parametrize("seed", [0, 1])
def test_per_turn_weights_match_a_naive_reference(seed: int) -> None:
    rng = random.Random(seed)
    records = []
    for g in range(6):
        for j in range(6):
            records.append(
                turn_record(f"g{g}", j, [rng.choice([None, "1", "2", "7", "2"]) for _ in range(4)])
            )
    gamma, beta, lam = 0.8, 0.3, 0.7
    weighted, _ = add_weights(
        records, WeightConfig(per_turn=True, gamma=gamma, beta=beta, diversity_lambda=lam)
    )
    togo = [naive_returns_to_go(r, gamma, lam) for r in records]
    for g in range(6):
        for t in range(4):
            cell = [i for i, r in enumerate(records) if r["prompt_id"] == f"g{g}" and len(togo[i]) > t]
            if not cell:
                continue
            values = [togo[i][t] for i in cell]
            if max(values) - min(values) <= 1e-12:
                expected = [1.0] * len(cell)
            else:
                exps = [math.exp((v - max(values)) / beta) for v in values]
                expected = [e / (sum(exps) / len(exps)) for e in exps]
            got = [weighted[i]["turn_weights"][f"t{t + 1}"] for i in cell]
            np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_per_turn_refuses_a_penalty_it_cannot_place() -> None:
    records = [
        {
            "prompt_id": "p",
            "turn_rewards": {"t1": 0.0, "t2": 1.0},
            "answer_norms": ["3", "7"],
            "format_penalty": -0.1,
        },
        {"prompt_id": "p", "turn_rewards": {"t1": 1.0}, "answer_norms": ["7"]},
    ]
    add_weights(records)  # the trajectory weights need no placement
    with pytest.raises(
        ValueError, match=r"record 0 \(prompt_id='p'\): field format_penalty .* no turn is marked"
    ):
        add_weights(records, WeightConfig(per_turn=True))
    records[0]["format_penalty"], records[0]["answer_norms"] = 0.0, ["3", "3", "3"]
    with pytest.raises(ValueError, match="field answer_norms has 3 entries for 2 turns"):
        add_weights(records, WeightConfig(per_turn=True))


def test_clipped_weights_are_capped_and_not_renormalised() -> None:
    records = [turn_record("p", j, ["7"] if j == 0 else ["1", "2", "3"]) for j in range(8)]
    free, _ = add_weights(records)
    clipped, summary = add_weights(records, WeightConfig(clip_max=2.0))
    assert free[0]["weight"] == pytest.approx(8.0, rel=1e-3)  # one success among eight takes (almost) all
    assert clipped[0]["weight"] == 2.0 and summary["clipped_trajectories"] == 1
    # the others keep their unclipped weights: the group now averages below 1
    assert [r["weight"] for r in clipped[1:]] == [r["weight"] for r in free[1:]]
    assert np.mean([r["weight"] for r in clipped]) < 0.3


@pytest.mark.parametrize(("mode", "expected"), [("keep", 1.0), ("drop", 0.0), ("floor", 0.25)])
def test_a_group_of_one_is_an_all_equal_group(mode: str, expected: float) -> None:
    records = [
        turn_record("alone", 0, ["1", "7"]),
        turn_record("pair", 0, ["7"]),
        turn_record("pair", 1, ["1", "2", "3"]),
    ]
    weighted, summary = add_weights(
        records, WeightConfig(equal_groups=mode, equal_weight=0.25, per_turn=True)
    )
    assert weighted[0]["weight"] == expected
    assert weighted[1]["weight"] > 1.0 > weighted[2]["weight"]
    # per turn, a turn only one trajectory of its group reached is a cell of one: the same rule
    assert weighted[2]["turn_weights"]["t2"] == expected and weighted[2]["turn_weights"]["t3"] == expected
    assert summary["all_equal_group_share"] == pytest.approx(0.5)
