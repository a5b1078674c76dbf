"""``drift/MultipleChoice-v0``: option reading (and attacks on it), the four schemas on fixture files,
the procedural source, feedback, and ``drift rollout``/``drift eval``/the leaderboard on the tiny model."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.choice.answers import LETTERS, read_choice
from drift_envs.choice.sources import ChoiceFile, ProceduralChoice, detect_schema
from drift_envs.core import EpisodeFinishedError
from drift_envs.sources.records import DataError, Row

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
ENV_ID = "drift/MultipleChoice-v0"
FIXTURES = {
    "gpqa": DATA / "choice_gpqa.jsonl",
    "mmlu": DATA / "choice_mmlu.jsonl",
    "mmlu_redux": DATA / "choice_mmlu_redux.jsonl",
    "mmlu_pro": DATA / "choice_mmlu_pro.jsonl",
}
OPTIONS = ["Paris", "London", "Berlin", "Rome"]


def make(**kwargs):
    return gym.make(ENV_ID, **kwargs).unwrapped


def all_tasks():
    """(label, env kwargs, index) of every fixture task and the first procedural ones."""
    cases = [
        (schema, {"dataset": str(path)}, i)
        for schema, path in FIXTURES.items()
        for i in range(len(ChoiceFile(path=str(path))))
    ]
    cases += [("procedural", {}, i) for i in range(12)]
    cases += [("procedural-10", {"num_options": 10}, i) for i in range(6)]
    return cases


# ---- reading a reply ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        r"\boxed{C}",
        r"So it must be \boxed{C}.",
        r"$\boxed{\text{C}}$",
        r"\boxed{(C)}",
        r"\boxed{c}",
        "<answer>C</answer>",
        "<answer> (C) </answer>",
        r"<answer>\boxed{C}</answer>",
        "Answer: C",
        "Final answer: (C)",
        "The answer is C.",
        "The correct answer is option C because Berlin is the capital.",
        "My first answer was A, but the answer is C",
        "C",
        "(C)",
        "C.",
        "option C",
        "Berlin",
        r"\boxed{Berlin}",
        "<answer>berlin</answer>",
        "Answer: Berlin",
        "C. Berlin",
        r"\boxed{C. Berlin}",
        "<answer>I believe the answer is C, since A is a different city</answer>",
        "The answer is not A. \\boxed{C}",
    ],
)
def test_accepted_forms_name_one_option(reply):
    reading = read_choice(reply, OPTIONS)
    assert reading.named == (2,), reading
    assert reading.answer == "C" and reading.format_ok and not reading.several


@pytest.mark.parametrize(
    "reply, named",
    [
        ("A or B", "A,B"),
        ("The answer is A or C", "A,C"),
        (r"\boxed{A}\boxed{B}", "A,B"),
        (r"\boxed{A} or maybe \boxed{C}", "A,C"),
        ("ABCD", "A,B,C,D"),
        (r"\boxed{ABCD}", "A,B,C,D"),
        (r"\boxed{A, B, C, D}", "A,B,C,D"),
        ("<answer>A/B</answer>", "A,B"),
        ("<answer>A and C</answer>", "A,C"),
        ("<answer>Paris, London, Berlin, Rome</answer>", "A,B,C,D"),
        (r"\boxed{Paris or Berlin}", "A,C"),
        ("Answer: A, B", "A,B"),
        ("C. Paris", "A,C"),
        (r"<answer>C</answer> \boxed{D}", "C,D"),
    ],
)
def test_several_options_are_read_as_several(reply, named):
    reading = read_choice(reply, OPTIONS)
    assert reading.answer == named and reading.several and reading.choice is None


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I am not sure.",
        "I think it is C",
        r"\boxed{E}",
        r"\boxed{}",
        "Paris London Berlin Rome",
        "a dog",
        "Answer: a lot",
    ],
)
def test_replies_naming_no_option(reply):
    reading = read_choice(reply, OPTIONS)
    assert reading.named == () and not reading.format_ok and reading.answer is None


def test_pronoun_and_article_are_not_options_among_ten():
    ten = [f"option text {k}" for k in range(10)]
    assert read_choice("<answer>I choose C</answer>", ten).answer == "C"
    assert read_choice("<answer>A good guess is D</answer>", ten).answer == "D"
    assert read_choice(r"\boxed{I}", ten).answer == "I"
    assert read_choice("<answer>A is correct</answer>", ten).answer == "A"


def test_letters_win_over_option_texts_that_are_letters():
    shuffled = ["B", "A", "D", "C"]  # e.g. "Which grade is highest?" with letter grades as options
    assert read_choice(r"\boxed{A}", shuffled).answer == "A"
    assert read_choice("(B)", shuffled).answer == "B"
    assert read_choice("Answer: d", shuffled).answer == "D"


def _attacks(options: list[str], right: str) -> list[str]:
    """Replies that hedge over several options, every one including the right one."""
    letters = LETTERS[: len(options)]
    other = next(c for c in letters if c != right)
    return [
        f"{right} or {other}",
        f"{other} or {right}",
        f"The answer is {other} or {right}.",
        f"\\boxed{{{other}}}\\boxed{{{right}}}",
        f"\\boxed{{{right}}} \\boxed{{{other}}}",
        letters,
        f"\\boxed{{{letters}}}",
        f"<answer>{', '.join(letters)}</answer>",
        f"<answer>{' or '.join(letters)}</answer>",
        "<answer>" + ", ".join(options) + "</answer>",
        "\\boxed{" + " or ".join(options) + "}",
        "".join(f"\\boxed{{{c}}}" for c in letters),
        f"Answer: {other}, {right}",
        f"<answer>{other}</answer> <answer>{right}</answer>",
        f"<answer>{right}</answer> \\boxed{{{other}}}",
    ]


@pytest.mark.parametrize("label, kwargs, index", all_tasks())
def test_a_reply_naming_several_options_is_never_lucky(label, kwargs, index):
    env = make(max_turns=30, **kwargs)
    env.reset(seed=0, options={"index": index})
    right = env.task.answer
    for reply in _attacks(env.task.meta["options"], right):
        _, reward, terminated, _, info = env.step(reply)
        assert not info["correct"] and reward == 0.0 and not terminated, (label, index, reply, info["answer"])
        assert info["feedback"]["error"] == "several", (reply, info["answer"])
    # and the honest answers of every form are right
    text = env.task.meta["options"][env.task.meta["answer_index"]]
    for reply in (env.oracle_reply(), f"Answer: {right}", f"\\boxed{{{text}}}", f"<answer>{right}</answer>"):
        env.reset(options={"index": index})
        assert env.step(reply)[2], (label, index, reply)


# ---- schemas ------------------------------------------------------------------------------------


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_gpqa_options_are_shuffled_deterministically_per_item():
    rows = _rows(FIXTURES["gpqa"])
    source = ChoiceFile(path=str(FIXTURES["gpqa"]))
    again = ChoiceFile(path=str(FIXTURES["gpqa"]))
    assert source.schema == "gpqa"
    for row, task, same in zip(rows, source, again, strict=True):
        options = task.meta["options"]
        assert sorted(options) == sorted(
            [
                row["Correct Answer"],
                row["Incorrect Answer 1"],
                row["Incorrect Answer 2"],
                row["Incorrect Answer 3"],
            ]
        )
        assert options[task.meta["answer_index"]] == row["Correct Answer"]
        assert task.answer == LETTERS[task.meta["answer_index"]]
        assert task.task_id == f"gpqa/test/{row['Record ID']}"
        assert task.prompt == row["Question"] and task.meta["Subdomain"] == row["Subdomain"]
        assert same == task
    # the correct answer (first in every GPQA row) does not sit at one position
    assert len({t.answer for t in source}) > 1
    # another seed reshuffles some item
    reshuffled = ChoiceFile(path=str(FIXTURES["gpqa"]), seed=1)
    assert any(a.meta["options"] != b.meta["options"] for a, b in zip(source, reshuffled, strict=True))


@pytest.mark.parametrize("schema", ["mmlu", "mmlu_redux"])
def test_mmlu_answer_index_becomes_a_letter(schema):
    rows = _rows(FIXTURES[schema])
    source = ChoiceFile(path=str(FIXTURES[schema]))
    assert source.schema == schema
    for i, (row, task) in enumerate(zip(rows, source, strict=True)):
        assert task.meta["options"] == row["choices"]
        assert task.answer == "ABCD"[int(row["answer"])]
        assert task.task_id == f"{schema}/test/{i}"
    if schema == "mmlu_redux":
        assert [t.meta["error_type"] for t in source] == [r["error_type"] for r in rows]
    else:
        assert source[0].meta["subject"] == "astronomy"


def test_mmlu_pro_ten_options_and_letters_past_d():
    rows = _rows(FIXTURES["mmlu_pro"])
    source = ChoiceFile(path=str(FIXTURES["mmlu_pro"]))
    assert source.schema == "mmlu_pro"
    for row, task in zip(rows, source, strict=True):
        assert task.answer == row["answer"] == LETTERS[row["answer_index"]]
        assert task.task_id == f"mmlu_pro/test/{row['question_id']}"
    env = make(dataset=str(FIXTURES["mmlu_pro"]))
    obs, _ = env.reset(options={"task_id": "mmlu_pro/test/9003"})
    assert "\nJ. O(n^3)\n" in obs and "\nI. O(log n)\n" in obs
    assert env.step(r"\boxed{I}")[2]


def test_schema_detection_forcing_and_errors(tmp_path):
    assert detect_schema(Row({"question": "q", "choices": ["a", "b"], "answer": 0}, "x:1")) == "mmlu"
    with pytest.raises(
        DataError, match=r"x:1: cannot tell the multiple-choice schema from fields \['prompt'\]"
    ):
        detect_schema(Row({"prompt": "q"}, "x:1"))
    bad = tmp_path / "bad.jsonl"
    row = _rows(FIXTURES["mmlu_pro"])[0]
    bad.write_text(json.dumps(row) + "\n" + json.dumps({**row, "question_id": 2, "answer": "J"}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: 'answer' 'J' and 'answer_index' 2 disagree"):
        ChoiceFile(path=str(bad))
    out_of_range = tmp_path / "range.jsonl"
    out_of_range.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": 2}) + "\n")
    with pytest.raises(DataError, match=r"range\.jsonl:1: field 'answer' = 2 is out of range for 2 options"):
        ChoiceFile(path=str(out_of_range))
    # a GPQA file read as MMLU-Pro is refused with the missing field named
    with pytest.raises(DataError, match=r"choice_gpqa\.jsonl:1: missing field 'question'"):
        ChoiceFile(path=str(FIXTURES["gpqa"]), schema="mmlu_pro")
    with pytest.raises(ValueError, match="schema must be one of"):
        make(dataset=str(FIXTURES["gpqa"]), schema="arc")
    # a bare word that is no file and no owner/name hub id is a misspelt source name, not a hub query
    with pytest.raises(
        ValueError, match=r"no 'choice' task source named 'gpqa' \(registered: file, procedural\)"
    ):
        make(dataset="gpqa")
    # procedural knobs are refused for a file, by name
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['num_options'\]"):
        make(dataset=str(FIXTURES["mmlu"]), num_options=5)


def test_parquet_and_json_files_load_like_jsonl(tmp_path):
    import datasets

    rows = _rows(FIXTURES["gpqa"])
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "gpqa.parquet"))
    (tmp_path / "gpqa.json").write_text(json.dumps(rows))
    reference = list(ChoiceFile(path=str(FIXTURES["gpqa"])))
    for name in ("gpqa.parquet", "gpqa.json"):
        assert [(t.prompt, t.meta["options"], t.answer) for t in ChoiceFile(path=str(tmp_path / name))] == [
            (t.prompt, t.meta["options"], t.answer) for t in reference
        ]


# ---- the procedural source ------------------------------------------------------------------------


def _true_option(question: str, options: list[str]) -> list[int]:
    """The options that answer a procedural question, computed here from its text."""
    values = [int(o) for o in options]
    if m := re.fullmatch(r"What is (\d+) ([-+*]) (\d+)\?", question):
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        target = {"+": a + b, "-": a - b, "*": a * b}[op]
        return [i for i, v in enumerate(values) if v == target]
    if m := re.fullmatch(r"Which of these numbers is the (largest|smallest)\?", question):
        target = max(values) if m.group(1) == "largest" else min(values)
        return [i for i, v in enumerate(values) if v == target]
    assert question == "Which of these numbers is prime?", question
    return [i for i, v in enumerate(values) if v > 1 and all(v % d for d in range(2, v))]


@pytest.mark.parametrize("num_options", [2, 4, 10])
def test_procedural_items_have_exactly_one_right_option(num_options):
    source = ProceduralChoice(num_options=num_options, split="train")
    kinds = set()
    for task in (source[i] for i in range(150)):
        options = task.meta["options"]
        assert len(options) == len(set(options)) == num_options
        assert _true_option(task.prompt, options) == [task.meta["answer_index"]], task
        assert task.answer == LETTERS[task.meta["answer_index"]]
        kinds.add(task.meta["kind"])
    assert kinds == {"arithmetic", "extreme", "prime"}


def test_procedural_is_a_function_of_seed_split_index_and_splits_are_disjoint():
    def key(t):
        return (t.prompt, tuple(sorted(t.meta["options"])))

    train = [ProceduralChoice(split="train")[i] for i in range(400)]
    test = [ProceduralChoice(split="test")[i] for i in range(400)]
    assert not {key(t) for t in train} & {key(t) for t in test}
    assert ProceduralChoice(split="test")[123] == test[123]  # a fresh source, the same item
    assert [ProceduralChoice(split="test", seed=1)[i] for i in range(20)] != test[:20]
    assert len({t.answer for t in test}) == 4  # the right option moves
    assert ProceduralChoice(split="test").index_of(test[77].task_id) == 77
    with pytest.raises(ValueError, match="splits"):
        ProceduralChoice(split="validation")
    assert len(make(max_tasks=7).source) == 7


# ---- the env --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{}, {"dataset": str(FIXTURES["gpqa"])}, {"dataset": str(FIXTURES["mmlu_pro"])}]
)
def test_check_env_passes(kwargs):
    check_env(make(**kwargs))


def test_eliminate_feedback_repeats_format_and_several():
    env = make(feedback="eliminate", max_turns=6, dataset=str(FIXTURES["mmlu"]))
    obs, info = env.reset(seed=0, options={"index": 0})  # Mercury, B
    assert obs.startswith("Which planet") and "\nA. Venus\nB. Mercury\nC. Mars\nD. Earth\n" in obs
    assert info["messages"][0]["role"] == "system"
    obs, reward, terminated, truncated, info = env.step(r"\boxed{A}")
    assert obs == "Incorrect: A is not the answer. Ruled out so far: A."
    assert (reward, terminated, truncated, info["answer"], info["repeated"]) == (
        0.0,
        False,
        False,
        "A",
        False,
    )
    assert info["feedback"]["eliminated"] == ["A"] and info["feedback"]["named"] == ["A"]
    obs, reward, *_, info = env.step("Mars")
    assert obs == "Incorrect: C is not the answer. Ruled out so far: A, C." and info["answer"] == "C"
    obs, reward, *_, info = env.step("Answer: A")
    assert info["repeated"] and obs.endswith("Ruled out so far: A, C. You chose A before.")
    obs, reward, *_, info = env.step("B or D")
    assert obs == "Incorrect: choose exactly one option (you named B, D)." and reward == 0.0
    assert info["answer"] == "B,D" and info["format_ok"] and "eliminated" not in info["feedback"]
    obs, reward, *_, info = env.step("no idea")
    assert reward == pytest.approx(-0.1) and not info["format_ok"] and info["answer"] is None
    assert obs.startswith("I could not tell which option you chose.")
    obs, reward, terminated, truncated, info = env.step("Mercury")
    assert (obs, reward, terminated, truncated) == ("", 1.0, True, False)
    with pytest.raises(EpisodeFinishedError):
        env.step("B")


def test_binary_none_turn_by_turn_and_tag_format():
    env = make(max_turns=2, prompt_style="turn_by_turn", answer_format="tag")
    obs, _ = env.reset(options={"index": 3})
    assert obs.endswith("between <answer> and </answer>, e.g. <answer>A</answer>. You have 2 actions left.")
    wrong = next(c for c in "ABCD" if c != env.task.answer)
    obs, *_ = env.step(f"<answer>{wrong}</answer>")
    assert obs == "Incorrect. Please think again. You have 1 action left."
    assert env.oracle_reply() == f"<answer>{env.task.answer}</answer>"
    _, _, terminated, truncated, _ = env.step(f"\\boxed{{{wrong}}}")
    assert not terminated and truncated
    env = make(feedback="none")
    env.reset(options={"index": 0})
    assert env.step("A or B")[0] == "Try again."
    with pytest.raises(ValueError, match="feedback must be one of"):
        make(feedback="hint")


def test_oracle_solves_every_fixture_task_at_turn_one():
    for path in FIXTURES.values():
        env = make(dataset=str(path))
        for i in range(env.num_tasks()):
            env.reset(options={"index": i})
            assert env.step(env.oracle_reply())[1:3] == (1.0, True)


def test_doctest_example():
    import doctest

    import drift_envs.choice.env as env_module

    results = doctest.testmod(env_module)
    assert results.attempted >= 5 and results.failed == 0


# ---- drift rollout, drift eval and the leaderboard on the tiny model --------------------------------


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_rollout_eval_and_leaderboard_on_the_tiny_model(
    tiny_model_dir, tmp_path, monkeypatch, one_torch_thread
):
    kwargs = json.dumps({"dataset": str(FIXTURES["mmlu_pro"]), "feedback": "eliminate", "max_turns": 2})
    out = tmp_path / "traj.jsonl"
    drift = [sys.executable, "-m", "drift_train.cli"]
    common = [
        "--model",
        str(tiny_model_dir),
        "--env",
        ENV_ID,
        "--env-kwargs",
        kwargs,
        "--max-new-tokens",
        "12",
    ]
    _run(
        [
            *drift,
            "rollout",
            *common,
            "--num-tasks",
            "3",
            "--samples",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ],
        tmp_path,
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6 and {r["env_id"] for r in records} == {ENV_ID}
    assert {r["task_id"] for r in records} == {
        "mmlu_pro/test/9001",
        "mmlu_pro/test/9002",
        "mmlu_pro/test/9003",
    }
    for r in records:
        assert "\nJ. " in r["messages"][1]["content"]  # the ten options were shown
        # each turn's recorded answer is what the env reads from the reply the tiny model wrote
        env = make(dataset=str(FIXTURES["mmlu_pro"]))
        env.reset(options={"task_id": r["task_id"]})
        replies = [m["content"] for m in r["messages"] if m["role"] == "assistant"]
        assert r["answer_norms"] == [read_choice(x, env.task.meta["options"]).answer for x in replies]
        assert set(r["verifier"]) <= {"t1", "t2"}
    # drift eval and the leaderboard in this process (the rollout above was the real CLI process)
    from drift_train.cli import main as drift_main

    metrics_path = tmp_path / "eval.json"
    assert drift_main(["eval", *common, "--num-tasks", "3", "--out", str(metrics_path)]) == 0
    metrics = json.loads(metrics_path.read_text())
    assert metrics["env"] == ENV_ID and metrics["max_turns"] == 2 and set(metrics["success_at"]) == {"1", "2"}
    board = tmp_path / "board"
    argv = ["leaderboard.py", "--model", f"tiny={tiny_model_dir}", "--env", ENV_ID, "--env-kwargs", kwargs]
    argv += ["--num-tasks", "3", "--max-new-tokens", "12", "--out-dir", str(board)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(REPO / "benchmarks" / "leaderboard.py"), run_name="__main__")
    entries = json.loads((board / "leaderboard.json").read_text())
    assert [(e["model"], e["env"]) for e in entries] == [("tiny", ENV_ID)]
    assert f"### {ENV_ID}" in (board / "leaderboard.md").read_text()


@pytest.mark.parametrize(
    "reply",
    [
        "<answer>" * 20000,
        "answer: " * 20000,
        "\\boxed{" + "x A " * 20000 + "}",
        "\\boxed{" + ", ".join(["A"] * 20000) + "}",
        "\\boxed{A" + " " * 50000 + "!}",
        "\\boxed{A}" * 5000,
        "\\boxed{" * 10000 + "}" * 10000,
        "the answer is Paris London " * 3000,
    ],
    ids=[
        "unclosed-tags",
        "phrases",
        "letters-in-prose",
        "letter-list",
        "spaces",
        "boxes",
        "nesting",
        "texts",
    ],
)
def test_long_adversarial_replies_are_read_in_bounded_time(reply):
    import time

    env = make(dataset=str(FIXTURES["mmlu"]))
    env.reset(options={"index": 0})
    start = time.perf_counter()
    _, _, _, _, info = env.step(reply)
    assert time.perf_counter() - start < 2.0  # measured: at most 0.3 s here; 20,000 unclosed tags took 50 s
    assert not info["correct"]
