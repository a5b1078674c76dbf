"""`drift weights` on rows exactly as the DRIFT release writes them gives the release's own weights.

The rows are built the way ``src/generate_weighted_data_vllm_metamathqa.py`` (github.com/2020-qqtcg/DRIFT)
builds them: ``verifier``/``turn_rewards`` padded with zeros for t1..t``max_turns`` after the turns
taken, one ``answer_norms`` entry per executed action (none for a format error), the accumulated
``format_penalty``, and the extra fields ``gold`` and ``reward_details``; no ``traj_idx``, ``env_id``
or ``meta``. The expected weights are the release's ``weight_sft.py`` arithmetic
(``compute_discounted_return``, ``compute_trajectory_penalty``, ``compute_weights``), written again
below from its formulas, not imported.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from drift_train.commands.weights import main
from drift_train.trajectories import read_trajectories
from drift_train.weights import WeightConfig, add_weights

MAX_TURNS = 5
FORMAT_PENALTY = -0.1  # the generator's --format_penalty default (and its run script's)


def release_row(prompt_id: str, gold: str, turns: list[list[str]], *, extra: dict | None = None) -> dict:
    """One trajectory as the release's generator writes it; ``turns[k]`` are the actions parsed from
    reply k+1 (``[]``: no ``<answer>`` block, a format error). The episode ends at the first correct
    action or after the last reply."""
    messages = [
        {"role": "system", "content": "You're a helpful assistant. "},
        {"role": "user", "content": f"You are solving Math problems.\nTurn 1:\nState:\nQ{prompt_id}\n"},
    ]
    verifier, turn_rewards, details, answer_norms = {}, {}, {}, []
    t_star, penalty = None, 0.0
    for turn, actions in enumerate(turns, start=1):
        executed, reward, success, fp = [], 0.0, False, 0.0
        if not actions:
            fp = FORMAT_PENALTY
        for action in actions:
            executed.append(action)
            correct = action.strip().lower().replace(" ", "") == gold.lower()
            reward += 1.0 if correct else 0.0
            if correct:
                success = True
                break
        answer_norms += [a.strip().lower().replace(" ", "") for a in executed]
        penalty += fp
        messages.append(
            {
                "role": "assistant",
                "content": f"<answer>{' || '.join(actions)}</answer>"
                if actions
                else "I think the answer is 12",
            }
        )
        turn_rewards[f"t{turn}"] = reward
        details[f"t{turn}"] = {
            "env_reward": reward,
            "format_penalty": fp,
            "actions": executed,
            "parsed_actions": actions,
            "info": {"success": success} if actions else {},
        }
        verifier[f"t{turn}"] = 1 if success else 0
        if success:
            t_star = turn
            break
        if turn < MAX_TURNS:
            messages.append(
                {"role": "user", "content": f"Reward:\n{reward}\nTurn {turn + 1}:\nState:\nIncorrect."}
            )
    assert messages[-1]["role"] == "assistant"
    for turn in range(1, MAX_TURNS + 1):  # the generator's setdefault padding
        verifier.setdefault(f"t{turn}", 0)
        turn_rewards.setdefault(f"t{turn}", 0.0)
    row = {
        "prompt_id": prompt_id,
        "gold": gold,
        "messages": messages,
        "verifier": verifier,
        "turn_rewards": turn_rewards,
        "reward_details": details,
        "t_star": t_star,
        "answer_norms": answer_norms,
        "format_penalty": penalty,
    }
    row.update(extra or {})
    return row


def release_rows() -> list[dict]:
    """Groups of the release's shape: mixed outcomes, format errors, repeats, several actions in one turn,
    an all-fail group, a group of one; groups interleaved as a batched generator writes them."""
    a, b, c = "MATH_GSM_Rephrased_0", "MATH_SV_1", "MATH_FOBAR_2"
    return [
        release_row(a, "12", [["12"]]),
        release_row(b, "7", [["3"], ["3"], ["4"], [], ["3"]]),
        release_row(a, "12", [["11"], ["12"]]),
        release_row(a, "12", [[], ["12"]]),
        release_row(b, "7", [["1"], ["2"], ["3"], ["4"], ["5"]]),
        release_row(a, "12", [["11"], ["11"], ["13"], ["11"], ["10"]]),
        release_row(a, "12", [["10", "11"], [], ["11", "12"]]),  # several actions in one turn
        release_row(b, "7", [[], [], [], [], []], extra={"done": True}),
        release_row(c, "5", [["4"], ["5"]]),  # a group of one
        release_row(a, "12", [[], [], [], [], []]),
    ]


# ---- the release's weight_sft.py arithmetic, written again from its formulas ----------------------------


def release_discounted_return(turn_rewards: dict, gamma: float) -> float:
    """Σ over every t-key, padding included, of γ^(t-1) r_t."""
    return sum(
        gamma ** (int(k[1:]) - 1) * float(v)
        for k, v in sorted(turn_rewards.items(), key=lambda kv: int(kv[0][1:]))
    )


def release_trajectory_penalty(answer_norms: list) -> float:
    """0.5 · (1 − new / len(answer_norms)): empty entries are never new but count in the length."""
    if not answer_norms:
        return 0.0
    new = len({str(a) for a in answer_norms if a})
    return max(0.0, 0.5 * (1.0 - new / len(answer_norms)))


def release_weights(rows: list[dict], gamma: float, beta: float) -> list[float]:
    """Per str(prompt_id) group: exp(R/β − max) / (mean + 1e-12)."""
    returns = [
        release_discounted_return(r["turn_rewards"], gamma)
        + float(r.get("format_penalty") or 0.0)
        - release_trajectory_penalty(r.get("answer_norms"))
        for r in rows
    ]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(str(r["prompt_id"]), []).append(i)
    weights = [0.0] * len(rows)
    for members in groups.values():
        scaled = [returns[i] / beta for i in members]
        top = max(scaled)
        exps = [math.exp(s - top) for s in scaled]
        denom = sum(exps) / len(exps) + 1e-12
        for i, e in zip(members, exps, strict=True):
            weights[i] = e / denom
    return weights


# ------------------------------------------------------------------------------------------------------


def test_rows_have_the_release_shape() -> None:
    rows = release_rows()
    assert all(len(r["turn_rewards"]) == MAX_TURNS and len(r["verifier"]) == MAX_TURNS for r in rows)
    assert all("traj_idx" not in r and "env_id" not in r and "meta" not in r for r in rows)
    # fewer answers than padded turns; and more answers than turns taken where a turn had two actions
    assert len(rows[3]["answer_norms"]) == 1 and rows[6]["answer_norms"] == ["10", "11", "11", "12"]
    assert sum(m["role"] == "assistant" for m in rows[6]["messages"]) == 3
    assert rows[1]["format_penalty"] == pytest.approx(-0.1) and rows[9]["format_penalty"] == pytest.approx(
        -0.5
    )


@pytest.mark.parametrize(
    ("gamma", "beta"), [(0.7, 0.2), (0.9, 0.1)]
)  # weight_sft.py's defaults; its run script's
def test_drift_weights_gives_the_release_weights(tmp_path, gamma: float, beta: float) -> None:
    rows = release_rows()
    src, out = tmp_path / "release.jsonl", tmp_path / "weighted.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([str(src), "--out", str(out), "--gamma", str(gamma), "--beta", str(beta)]) == 0
    weighted = list(read_trajectories(out))
    np.testing.assert_allclose(
        [r["weight"] for r in weighted], release_weights(rows, gamma, beta), rtol=0, atol=1e-9
    )
    # padding is padding: the turns taken, not five
    assert [len(r["turn_rewards"]) for r in weighted] == [1, 5, 2, 2, 5, 5, 3, 5, 2, 5]
    assert weighted[2]["meta"] == {"max_turns": 5} and weighted[0]["t_star"] == 1
    # the release's own fields are kept, and the order in each group stands in for traj_idx
    assert weighted[6]["gold"] == "12" and weighted[6]["reward_details"]["t3"]["actions"] == ["11", "12"]
    assert weighted[7]["done"] is True
    assert [r["traj_idx"] for r in weighted] == [0, 0, 1, 2, 1, 3, 4, 2, 0, 5]
    assert weighted[8]["weight"] == pytest.approx(1.0, abs=1e-9)  # a group of one


def test_weights_are_sensitive_to_what_the_release_counts() -> None:
    """The reference numbers move with each ingredient, so the parity test above is not vacuous."""
    rows = release_rows()
    base = release_weights(rows, 0.9, 0.1)
    no_repeat = [dict(r, answer_norms=[]) for r in rows]
    no_format = [dict(r, format_penalty=0.0) for r in rows]
    assert not np.allclose(release_weights(no_repeat, 0.9, 0.1), base, atol=1e-6)
    assert not np.allclose(release_weights(no_format, 0.9, 0.1), base, atol=1e-6)
    ours = [
        r["weight"] for r in add_weights(list(map(_read_back, rows)), WeightConfig(gamma=0.9, beta=0.1))[0]
    ]
    np.testing.assert_allclose(ours, base, atol=1e-9)


def _read_back(row: dict) -> dict:
    from drift_train.trajectories import normalize_record

    return normalize_record(row, traj_idx=0)


def test_empty_answers_count_in_the_denominator_but_are_never_unique(tmp_path) -> None:
    """compute_trajectory_penalty: ["5", "", "5", "6"] has 2 new answers out of 4 entries: 0.5 · (1 − 2/4)."""
    rows = [release_row("p", "9", [["5"], ["1"], ["5"], ["6"], ["2"]]), release_row("p", "9", [["9"]])]
    rows[0]["answer_norms"] = ["5", "", "5", "6"]  # as if a reply had normalised to nothing
    assert release_trajectory_penalty(rows[0]["answer_norms"]) == pytest.approx(0.25)
    weighted, _ = add_weights([_read_back(r) for r in rows], WeightConfig(gamma=0.7, beta=0.2))
    assert weighted[0]["return"] == pytest.approx(0.0 - 0.25, abs=1e-12)
    np.testing.assert_allclose([r["weight"] for r in weighted], release_weights(rows, 0.7, 0.2), atol=1e-9)


def test_per_turn_credit_places_release_answers_and_penalties_by_reward_details() -> None:
    rows = [_read_back(r) for r in release_rows()]
    weighted, _ = add_weights(rows, WeightConfig(gamma=0.9, beta=0.1, per_turn=True))
    # turn-1 return-to-go is the trajectory return, so turn-1 weights are the trajectory weights
    np.testing.assert_allclose(
        [r["turn_weights"]["t1"] for r in weighted], [r["weight"] for r in weighted], atol=1e-12
    )
    from drift_train.weights import records_to_inputs, returns_to_go

    inputs = records_to_inputs(rows, per_turn=True)
    togo = returns_to_go(inputs, 0.9, 0.5)
    # rows[6]: turns ["10","11"], [] (format error), ["11","12"]: the repeat "11" is charged at turn 3,
    # 1 charged answer of 4 -> 0.5/4; the format error at turn 2 only
    np.testing.assert_allclose(togo[6, :3], [0.81 - 0.1 - 0.125, 0.9 - 0.1 - 0.125, 1.0 - 0.125], atol=1e-12)
    # rows[1]: "3","3","4",(format error),"3": repeats at turns 2 and 5, 2 of 4 answers
    np.testing.assert_allclose(
        togo[1], [-0.1 - 0.25, -0.1 - 0.25, -0.1 - 0.125, -0.1 - 0.125, -0.125], atol=1e-12
    )


def test_release_rows_through_parquet_keep_their_per_turn_details(tmp_path) -> None:
    """Parquet holds reward_details as a struct of every row's turns (absent ones read back as None):
    per-turn credit and the format-error rate read the same numbers as from JSONL."""
    from drift_train.evaluate import multiturn_metrics

    rows = release_rows()
    src, out = tmp_path / "release.jsonl", tmp_path / "weighted.parquet"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([str(src), "--out", str(out), "--per-turn"]) == 0
    from_parquet = list(read_trajectories(out))
    from_jsonl = list(read_trajectories(src))
    assert set(from_parquet[0]["reward_details"]) == {"t1"}
    again, _ = add_weights(from_parquet, WeightConfig(per_turn=True))
    expected, _ = add_weights(from_jsonl, WeightConfig(per_turn=True))
    assert len(again) == len(expected)
    for got, want in zip(again, expected, strict=True):  # approx compares flat dicts, not lists of them
        assert got["turn_weights"] == pytest.approx(want["turn_weights"])
    rate = multiturn_metrics(from_parquet)["format_error_rate"]
    assert rate == multiturn_metrics(from_jsonl)["format_error_rate"] and rate["value"] > 0.3
