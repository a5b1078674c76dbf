"""Metrics named after the DRIFT release mean what the release means (github.com/2020-qqtcg/DRIFT).

``release_correction_rate[t]`` is ``compute_metrics``'s per-turn correction rate of
``src/eval_math_multiturn_vllm.py``, and ``release_mtu_*`` are the tool metrics its ``evaluate_mtu_bench``
reports (final attempt only, success = solved, its argument lookup), where ``correction_rate`` and the
plain tool metrics are ours. Each is checked twice: against numbers written here by hand from reading
the release's code (always run), and against the release's own functions run on the same episodes
(``tests/drift_release.py``; skipped without a local mirror of the release).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from drift_release import ScriptedLLM, load_release, release_args
from scripted_replies import ScriptedReplies

from drift_envs.tool.calls import ToolCall, format_calls
from drift_train.evaluate import multiturn_metrics
from drift_train.rollout import RolloutConfig, rollout
from drift_train.tool_metrics import (
    RELEASE_MTU_METRICS,
    TOOL_METRICS,
    episode_tool_metrics,
    release_dialogue_metrics,
    release_params_right,
    turn_metrics,
)
from drift_train.trajectories import read_trajectories

# ---- the correction rate ------------------------------------------------------------------------------

# a math episode per problem: the reply of each turn (None: no <answer> block; "a || b": two actions)
MATH_GOLD = {"p1": "12", "p2": "7", "p3": "9", "p4": "9", "p5": "9"}
MATH_SCRIPT = {
    "p1": ["12"],  # right at once
    "p2": ["3", None, "7"],  # a format error, then right at turn 3
    "p3": ["1", "2", "3", "4", "5"],  # never
    "p4": ["1 || 2 || 3", "4 || 5"],  # spends the release's 5 actions in 2 turns: ends unsolved at turn 2
    "p5": ["8", "9"],  # right at turn 2
}
# what the release's compute_metrics reports for these episodes, read off its code: turn t's
# "wrong_before" counts the trajectories still running at turn t, "corrected" those right there
RELEASE_CORRECTION = {"2": (4, 1), "3": (2, 1), "4": (1, 0), "5": (1, 0)}


def math_row(pid: str, verdicts: list[int], actions: list[list[str]]) -> dict:
    """A trajectory row in the release's shape (what its evaluation keeps per trajectory)."""
    messages = [{"role": "system", "content": "You're a helpful assistant. "}]
    for turn, acts in enumerate(actions, start=1):
        messages.append({"role": "user", "content": f"Turn {turn}: Problem {pid}"})
        messages.append({"role": "assistant", "content": f"<answer>{' || '.join(acts)}</answer>"})
    return {
        "prompt_id": pid,
        "messages": messages,
        "turn_rewards": [float(v) for v in verdicts],
        "verifier": verdicts,
        "answer_norms": [a for acts in actions for a in acts],
        "format_penalty": -0.1 * sum(1 for acts in actions if not acts),
    }


def read_rows(rows: list[dict], path: Path) -> list[dict]:
    """``rows`` through our reader, as ``drift eval --records`` reads a file."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return list(read_trajectories(path))


def test_release_correction_rate_is_per_turn_where_ours_is_per_episode(tmp_path: Path) -> None:
    rows = []
    for pid, replies in MATH_SCRIPT.items():
        actions = [[] if r is None else [a.strip() for a in r.split("||")] for r in replies]
        verdicts = [int(MATH_GOLD[pid] in acts) for acts in actions]
        rows.append(math_row(pid, verdicts, actions))
    m = multiturn_metrics(read_rows(rows, tmp_path / "math.jsonl"), max_turns=5)
    assert sorted(m["release_correction_rate"]) == ["2", "3", "4", "5"]  # the release starts at turn 2
    for t, (wrong_before, corrected) in RELEASE_CORRECTION.items():
        got = m["release_correction_rate"][t]
        assert (got["n"], got["value"]) == (wrong_before, pytest.approx(corrected / wrong_before)), t
    # ours: of the 4 episodes wrong at turn 1, 2 were solved later (p2, p5) — not the release's 0.25
    assert m["correction_rate"]["value"] == 0.5 and m["release_correction_rate"]["2"]["value"] == 0.25


def test_release_correction_rate_matches_the_releases_compute_metrics(tmp_path, monkeypatch) -> None:
    """The release's own evaluation loop (``evaluate_multiturn``, its episode, parser and checker) plays
    the scripted replies; its ``compute_metrics`` and our metrics read the same trajectories."""
    from drift_train.tiny import build_tokenizer

    release = load_release(tmp_path, monkeypatch)
    args = release_args(release, monkeypatch, "--use_chat_template", "--dataset", "metamathqa")
    turns: dict[str, int] = {}

    def reply(prompt: str) -> str:
        pid = next(p for p in MATH_SCRIPT if f"Problem {p}:" in prompt)
        k = turns[pid] = turns.get(pid, -1) + 1
        answer = MATH_SCRIPT[pid][k]
        return "I think</think> no tags" if answer is None else f"I think</think><answer>{answer}</answer>"

    samples = [{"id": p, "problem": f"Problem {p}: what is it?", "gold": g} for p, g in MATH_GOLD.items()]
    out = release.evaluate.evaluate_multiturn(ScriptedLLM(reply), build_tokenizer(), samples, args)
    theirs = release.evaluate.compute_metrics(out["trajectories"], out["turn_stats"], args.max_turns)
    rows = [
        {
            "prompt_id": traj["id"],
            "messages": traj["messages"],
            "turn_rewards": traj["turn_rewards"],
            "verifier": [int(c) for c in traj["correct_at_turn"]],
            "answer_norms": traj["answer_norms"],
            "format_penalty": traj["format_penalty"],
        }
        for traj in out["trajectories"]
    ]
    ours = multiturn_metrics(read_rows(rows, tmp_path / "release.jsonl"), max_turns=args.max_turns)
    assert {k.removeprefix("turn_") for k in theirs["correction_rate"]} == set(
        ours["release_correction_rate"]
    )
    for key, value in theirs["correction_rate"].items():
        got = ours["release_correction_rate"][key.removeprefix("turn_")]
        assert (got["n"], got["value"]) == (value["wrong_before"], pytest.approx(value["rate"])), key
    for key, value in theirs["per_turn"].items():
        got = ours["acc_turn"][key.removeprefix("turn_")]
        assert (got["n"], got["value"]) == (value["attempts"], pytest.approx(value["accuracy"])), key
    for key, value in theirs["cumulative"].items():
        assert ours["success_at"][key.removeprefix("by_turn_")]["value"] == pytest.approx(value["accuracy"])
    # the hand-written numbers above are the release's
    assert {
        k.removeprefix("turn_"): (v["wrong_before"], v["corrected"])
        for k, v in theirs["correction_rate"].items()
    } == RELEASE_CORRECTION


# ---- the release's argument lookup --------------------------------------------------------------------

# (predicted arguments, gold arguments, the release's verdict, ours), the release's read off its
# compare_tool_calls: pred.get(key) or pred.get(key.lower()), None = missing, values normalize_param_value'd
ARGUMENT_CASES = [
    ({"city": " Paris"}, {"city": "paris"}, True, True),  # values stripped and lower-cased by both
    ({"City": "Paris"}, {"city": "Paris"}, False, True),  # the release looks up the gold key only
    ({"city": "Paris"}, {"City": "Paris"}, True, True),  # ... or its lower case
    ({"note": None}, {"note": None}, False, True),  # None is missing there, a value here
    ({"Count": 0}, {"Count": 0}, False, True),  # a falsy value falls through to "count": missing
    ({"count": 0}, {"count": 0}, True, True),  # ... unless the key is lower case already
    ({"Count": 0, "count": 0}, {"Count": 0}, True, True),
    ({"city": "Paris", "day": "mon"}, {"city": "Paris"}, True, True),  # extra arguments are allowed
    ({"n": 5}, {"n": "5"}, False, False),  # no coercion between 5 and "5"
    ({}, {}, True, True),
]


@pytest.mark.parametrize(("pred", "gold", "release", "ours"), ARGUMENT_CASES)
def test_release_argument_lookup(pred: dict, gold: dict, release: bool, ours: bool) -> None:
    p, g = ToolCall("get_weather", pred), ToolCall("get_weather", gold)
    assert release_params_right(p, g) is release
    assert turn_metrics([p], [g], release_arguments=True)["param_selection"] == float(release)
    assert turn_metrics([p], [g])["param_selection"] == float(ours)


def test_release_argument_lookup_is_the_releases_compare_tool_calls(tmp_path, monkeypatch) -> None:
    benchmark = load_release(tmp_path, monkeypatch).benchmark
    for pred, gold, release, _ in ARGUMENT_CASES:
        verdict = benchmark.compare_tool_calls(
            benchmark.ToolCall("get_weather", pred), benchmark.ToolCall("get_weather", gold)
        )
        assert verdict == (True, release), (pred, gold)


def test_release_dialogue_metrics_are_compute_mtu_bench_metrics_with_success_solved(
    tmp_path, monkeypatch
) -> None:
    benchmark = load_release(tmp_path, monkeypatch).benchmark
    a, b = ToolCall("find_account", {"owner": "Ann"}), ToolCall("transfer", {"Amount": 0, "target": "B2"})
    cases = [  # (final attempt, gold calls, solved)
        ([a, b], [a, b], True),
        ([b, a], [a, b], False),
        ([a], [a, b], False),
        ([a, ToolCall("transfer", {"amount": 0, "target": "b2"})], [a, b], True),  # solved by our env's check
        ([a, b, b], [a, b], False),
        ([], [], True),
        ([a], [], False),
        ([], [a], False),
    ]
    for final, gold, solved in cases:
        theirs = benchmark.compute_mtu_bench_metrics(
            [[benchmark.ToolCall(c.name, c.arguments) for c in final]],
            [[benchmark.ToolCall(c.name, c.arguments) for c in gold]] if gold else [[]],
        )
        theirs.success_rate = theirs.task_process_rate = (
            1.0 if solved else 0.0
        )  # evaluate_mtu_bench's override
        ours = release_dialogue_metrics([final], [gold], solved)
        assert ours == {f"release_mtu_{k}": v for k, v in theirs.to_dict().items()}, (final, gold, solved)


# ---- whole episodes: final attempt only ---------------------------------------------------------------

# MTU-Bench-format rows (one request each, as the release evaluates) and the model's attempts at each:
# an attempt is one reply of calls in the release; in our env the calls, then "Answer: done"
MTU_TASKS = [
    ("m1", "What is the balance of account A1?", {"get_balance": {"account": "A1"}},
     [[("get_balance", {"account": "A1"})]]),
    ("m2", "Send 5 from Ann's account to B2.",
     {"find_account": {"owner": "Ann"}, "transfer": {"source": "A1", "target": "B2", "amount": "5"}},
     [[("transfer", {"source": "A1", "target": "B2", "amount": "5"})],
      [("find_account", {"owner": "Ann"}), ("transfer", {"source": "a1", "target": "B2", "amount": "5"})]]),
    ("m3", "What is the weather in Paris?", {"get_weather": {"city": "Paris"}},
     [[("get_weather", {"CITY": "Paris", "day": "monday"})]] * 5),
    ("m4", "Convert 3 km to miles.", {"convert": {"value": "3", "unit": "km"}},
     [[("convert_units", {"value": "3"})], [("convert", {"value": "3", "unit": "mi"})],
      [("convert", {"value": "4", "unit": "km"})], [("convert", {"value": "3", "unit": "mi"})], []]),
]  # fmt: skip


def our_replies(attempts: list) -> list[str]:
    replies = []
    for calls in attempts:
        if calls:
            replies.append(format_calls([{"name": n, "arguments": a} for n, a in calls]))
        replies.append("Answer: done")
    return replies


def release_reply(calls: list) -> str:
    """An attempt as the release's model writes it: ``<answer>tool(k="v") ...</answer>`` after its thoughts."""
    text = " ".join(f"{n}({', '.join(f'{k}={json.dumps(v)}' for k, v in a.items())})" for n, a in calls)
    return f"Calling tools.</think><answer>{text or 'done'}</answer>"


def mtu_records(tmp_path: Path) -> list[dict]:
    path = tmp_path / "mtu.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": i, "question": q, "gold": json.dumps(g)}) + "\n" for i, q, g, _ in MTU_TASKS
        )
    )
    script = {q: our_replies(attempts) for _, q, _, attempts in MTU_TASKS}
    config = RolloutConfig(
        "drift/ToolUse-v0", {"dataset": str(path), "max_turns": 10}, num_tasks=len(MTU_TASKS), samples=1
    )
    records, _ = rollout(ScriptedReplies(lambda prompt: script[prompt]), config)
    return records


def test_release_mtu_metrics_score_the_final_attempt(tmp_path: Path) -> None:
    by_task = {r["messages"][1]["content"]: r for r in mtu_records(tmp_path)}
    m2 = episode_tool_metrics(by_task["Send 5 from Ann's account to B2."])
    # ours counts the wrong first call too (3 calls for 2); the release scores the attempt that solved it
    assert m2["tool_number_accuracy"] == 0.0 and m2["release_mtu_tool_number_accuracy"] == 1.0
    assert m2["release_mtu_turn_success_rate"] == m2["release_mtu_success_rate"] == 1.0
    assert m2["success_rate"] == 0.0  # solved, but not with every call right: the release says success
    m3 = episode_tool_metrics(by_task["What is the weather in Paris?"])
    # CITY is not the gold key "city" nor its lower case for the release; ours lower-cases both sides
    assert m3["parameter_selection_accuracy"] == 1.0 and m3["release_mtu_parameter_selection_accuracy"] == 0.0
    m4 = episode_tool_metrics(by_task["Convert 3 km to miles."])
    # never solved: the release scores the last attempt, a reply without calls; ours sees the first call
    # (convert_units) against convert and 4 calls for 1
    assert all(m4[f"release_mtu_{k}"] == 0.0 for k in TOOL_METRICS)
    assert m4["tool_selection_accuracy"] == 0.0 and m4["tool_number_accuracy"] == 0.0


def test_release_mtu_last_attempt_of_an_unsolved_request() -> None:
    """Request 1's calls all right, then a wrong answer, and the episode stops there: the attempt the
    wrong answer closed is the final one (its calls count), the later requests were never reached, and
    the dialogue was not solved."""
    import gymnasium as gym

    import drift_envs  # noqa: F401

    env = gym.make("drift/ToolUse-v0", domains=["bank"], disable_env_checker=True)
    _, info = env.reset(options={"index": 0})
    num_requests = info["num_requests"]
    while True:
        reply = env.unwrapped.oracle_reply()
        wrong = not reply.startswith("<tool_call>")
        *_, info = env.step("Answer: 123456789" if wrong else reply)  # every call made, then a wrong answer
        if wrong:
            break
    assert info["feedback"]["kind"] == "wrong_answer" and num_requests >= 2
    record = {
        "env_id": "drift/ToolUse-v0",
        "env_kwargs": {"domains": ["bank"]},
        "task_id": info["task_id"],
        "messages": info["messages"],
        "t_star": None,
    }
    metrics = episode_tool_metrics(record)
    for name in ("turn_success_rate", "release_mtu_turn_success_rate", "release_mtu_tool_order_accuracy"):
        assert metrics[name] == pytest.approx(1 / num_requests), name
    assert metrics["release_mtu_success_rate"] == metrics["release_mtu_task_process_rate"] == 0.0
    assert metrics["task_process_rate"] == metrics["turn_success_rate"]  # ATS, where the release says solved
    # one more wrong answer is an attempt of its own, without calls: it becomes the final one
    *_, info = env.step("Answer: 123456789")
    again = episode_tool_metrics({**record, "messages": info["messages"]})
    assert again["release_mtu_turn_success_rate"] == 0.0 and again["turn_success_rate"] == pytest.approx(
        1 / num_requests
    )


def test_release_mtu_metrics_match_evaluate_mtu_bench(tmp_path, monkeypatch) -> None:
    """The release's evaluate_mtu_bench plays the same attempts; its per-sample and aggregated metrics
    are our release_mtu_* of the same episodes."""
    from drift_train.tiny import build_tokenizer

    release = load_release(tmp_path, monkeypatch)
    args = release_args(release, monkeypatch, "--use_chat_template", "--dataset", "mtu_bench")
    attempts = {q: a for _, q, _, a in MTU_TASKS}
    turns: dict[str, int] = {}

    def reply(prompt: str) -> str:
        question = next(q for q in attempts if q in prompt)
        k = turns[question] = turns.get(question, -1) + 1
        return release_reply(attempts[question][min(k, len(attempts[question]) - 1)])

    samples = [{"id": i, "problem": q, "gold": json.dumps(g), "gold_output": ""} for i, q, g, _ in MTU_TASKS]
    out = release.evaluate.evaluate_mtu_bench(ScriptedLLM(reply), build_tokenizer(), samples, args)
    records = {r["messages"][1]["content"]: r for r in mtu_records(tmp_path)}
    for traj in out["trajectories"]:
        record = records[traj["problem"]]
        assert (traj["first_correct_turn"] is not None) == (record["t_star"] is not None), traj["id"]
        ours = episode_tool_metrics(record)
        assert {k: ours[f"release_mtu_{k}"] for k in TOOL_METRICS} == pytest.approx(traj["metrics"]), traj[
            "id"
        ]
    metrics = multiturn_metrics(list(records.values()))
    aggregated = {k.removeprefix("release_mtu_"): metrics[k]["value"] for k in RELEASE_MTU_METRICS}
    assert aggregated == pytest.approx(out["aggregated_metrics"])
