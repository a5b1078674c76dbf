"""TheoremQA in MathFeedback: the schema on a fixture in TheoremQA's fields, and replies of every answer
type (booleans, options, integers, floats within TheoremQA's tolerance, units, percent, lists) judged
against it; wherever math-verify itself accepts a reply, so does the env."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest
from math_verify import parse, verify

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.math.sources import FileMathSource, detect_schema
from drift_envs.math.theoremqa import FLOAT_REL_TOL, read_value
from drift_envs.sources.records import DataError, Row

FIXTURE = Path(__file__).resolve().parent / "data" / "theoremqa.jsonl"

# (task id, reply, correct?) — the gold of each id is in the fixture
CASES = [
    # bool: True/False and the words people use for them; two different boxes answer nothing
    ("h7-tqa-bool", r"\boxed{True}", True),
    ("h7-tqa-bool", r"\boxed{true}", True),
    ("h7-tqa-bool", r"\boxed{Yes}", True),
    ("h7-tqa-bool", r"\boxed{\text{True}}", True),
    ("h7-tqa-bool", "<answer>True</answer>", True),
    ("h7-tqa-bool", r"\boxed{False}", False),
    ("h7-tqa-bool", r"\boxed{No}", False),
    ("h7-tqa-bool", r"\boxed{True} \boxed{False}", False),
    ("h7-tqa-bool", r"\boxed{maybe}", False),
    ("h7-tqa-bool-false", r"\boxed{False}", True),
    ("h7-tqa-bool-false", r"\boxed{no}", True),
    ("h7-tqa-bool-false", r"\boxed{True}", False),
    ("h7-tqa-native", r"\boxed{True}", True),
    # integer: the value exactly, whatever its form or units
    ("h7-tqa-int", r"\boxed{21}", True),
    ("h7-tqa-int", r"\boxed{21.0}", True),
    ("h7-tqa-int", r"\boxed{\frac{42}{2}}", True),
    ("h7-tqa-int", r"\boxed{21 edges}", True),
    ("h7-tqa-int", r"\boxed{2.1 \times 10^{1}}", True),
    ("h7-tqa-int", r"\boxed{7 \cdot 3}", True),
    ("h7-tqa-int", r"\boxed{\binom{7}{2}}", True),  # not arithmetic here: math-verify decides
    ("h7-tqa-int", r"\boxed{22}", False),  # within 4 %, but an integer is exact
    ("h7-tqa-int", r"\boxed{20.5}", False),
    # float: within 4 % of the gold; units and scientific notation read
    ("h7-tqa-float", r"\boxed{0.144}", True),
    ("h7-tqa-float", r"\boxed{0.144 J}", True),
    ("h7-tqa-float", r"\boxed{0.144\,\mathrm{J}}", True),
    ("h7-tqa-float", r"\boxed{0.14}", True),
    ("h7-tqa-float", r"\boxed{144 \times 10^{-3}}", True),
    ("h7-tqa-float", r"\boxed{1.44e-1}", True),
    ("h7-tqa-float", r"\boxed{\frac{18}{125}}", True),
    ("h7-tqa-float", r"\boxed{14.4\%}", True),
    ("h7-tqa-float", r"\boxed{0.16}", False),
    ("h7-tqa-float", r"\boxed{0.144 J} and \boxed{0.2 J}", False),
    ("h7-tqa-float-speed", r"\boxed{3.43 m/s}", True),
    ("h7-tqa-float-speed", r"\boxed{3.43\ \text{m/s}}", True),
    ("h7-tqa-float-speed", r"\boxed{3.4}", True),
    ("h7-tqa-float-speed", r"\boxed{3.6}", False),
    ("h7-tqa-float-speed", r"\boxed{3.0}", False),
    ("h7-tqa-sqrt", r"\boxed{\sqrt{2}}", True),
    ("h7-tqa-sqrt", r"\boxed{1.41}", True),
    ("h7-tqa-sqrt", r"\boxed{2^{1/2}}", True),
    ("h7-tqa-sqrt", r"\boxed{1.5}", False),
    # percent: 25% is the fraction 0.25; a bare 25 is not
    ("h7-tqa-percent", r"\boxed{25\%}", True),
    ("h7-tqa-percent", r"\boxed{25%}", True),
    ("h7-tqa-percent", r"\boxed{0.25}", True),
    ("h7-tqa-percent", r"\boxed{\frac{1}{4}}", True),
    ("h7-tqa-percent", r"\boxed{25}", False),
    ("h7-tqa-percent", r"\boxed{20\%}", False),
    # lists: the same numbers in any order (as TheoremQA compares them), elements judged by type
    ("h7-tqa-list-int", r"\boxed{[2, 5]}", True),
    ("h7-tqa-list-int", r"\boxed{(2, 5)}", True),
    ("h7-tqa-list-int", r"\boxed{2, 5}", True),
    ("h7-tqa-list-int", r"\boxed{\left[2, 5\right]}", True),
    ("h7-tqa-list-int", r"\boxed{2}, \boxed{5}", True),
    ("h7-tqa-list-int", r"\boxed{[5, 2]}", True),  # TheoremQA compares lists sorted
    ("h7-tqa-list-int", r"\boxed{[2, 5, 7]}", False),
    ("h7-tqa-list-int", r"\boxed{[2]}", False),
    ("h7-tqa-list-int", r"\boxed{[2.1, 5]}", False),
    ("h7-tqa-native-list", r"\boxed{(1, 4)}", True),
    ("h7-tqa-native-list", r"\boxed{(4, 1)}", True),
    ("h7-tqa-native-list", r"\boxed{(1, 1)}", False),
    ("h7-tqa-native-list", r"\boxed{(4, 4)}", False),
    ("h7-tqa-list-float", r"\boxed{[0.382, 2.618]}", True),
    ("h7-tqa-list-float", r"\boxed{[0.38, 2.62]}", True),
    ("h7-tqa-list-float", r"\boxed{[\frac{3-\sqrt{5}}{2}, \frac{3+\sqrt{5}}{2}]}", True),
    ("h7-tqa-list-float", r"\boxed{[2.618, 0.382]}", True),
    ("h7-tqa-list-float", r"\boxed{[0.5, 2.618]}", False),
    # option: the letter, however written; two letters are wrong
    ("h7-tqa-option", r"\boxed{(b)}", True),
    ("h7-tqa-option", r"\boxed{b}", True),
    ("h7-tqa-option", r"\boxed{(B)}", True),
    ("h7-tqa-option", r"\boxed{\text{(b)}}", True),
    ("h7-tqa-option", r"\boxed{option b}", True),
    ("h7-tqa-option", r"\boxed{(a)}", False),
    ("h7-tqa-option", r"\boxed{(b)} \boxed{(c)}", False),
    ("h7-tqa-option", r"\boxed{b, c}", False),
]


@pytest.fixture(scope="module")
def env():
    return gym.make("drift/MathFeedback-v0", dataset=str(FIXTURE), max_turns=100).unwrapped


def _rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def test_schema_is_detected_and_rows_become_typed_tasks():
    rows = _rows()
    source = FileMathSource(path=str(FIXTURE))
    assert source.schema.name == "theoremqa"
    assert detect_schema(Row(rows[0], "x:1")) == "theoremqa"
    for row, task in zip(rows, source, strict=True):
        assert task.task_id == row["id"] and task.prompt == row["Question"]
        assert task.meta["Answer_type"] == row["Answer_type"] and task.meta["subfield"] == row["subfield"]
    by_id = {t.task_id: t.answer for t in source}
    # the hub's string answers and the original JSON's bools, numbers and lists give the same golds
    assert by_id["h7-tqa-native"] == "True" and by_id["h7-tqa-native-list"] == "[1, 4]"
    assert by_id["h7-tqa-sqrt"] == "1.414" and by_id["h7-tqa-list-int"] == "[2, 5]"


@pytest.mark.parametrize("task_id, reply, correct", CASES)
def test_reply_of_each_answer_type(env, task_id, reply, correct):
    env.reset(options={"task_id": task_id})
    _, reward, terminated, _, info = env.step(reply)
    assert info["correct"] is correct and terminated is correct and reward == float(correct), info["answer"]
    assert info["format_ok"]


def test_every_reply_math_verify_accepts_is_accepted(env):
    """math-verify, called here directly on ``\\boxed{gold}`` and the reply, is a floor: the typed checks
    only add what it misses (tolerance, units, yes/no, list forms), they never refuse what it accepts."""
    accepted_by_math_verify = 0
    for task_id, reply, _ in CASES:
        env.reset(options={"task_id": task_id})
        if verify(parse("\\boxed{" + str(env.task.answer) + "}"), parse(reply)):
            accepted_by_math_verify += 1
            assert env.step(reply)[4]["correct"], (task_id, reply)
    assert accepted_by_math_verify >= 25  # the comparison covers a real share of the table


def test_oracle_solves_every_task_and_hint_feedback(env):
    for i in range(env.num_tasks()):
        env.reset(options={"index": i})
        assert env.step(env.oracle_reply())[1:3] == (1.0, True), env.task.task_id
    hint = gym.make("drift/MathFeedback-v0", dataset=str(FIXTURE), feedback="hint").unwrapped
    hint.reset(options={"task_id": "h7-tqa-int"})
    assert hint.step(r"\boxed{22}")[0] == "Incorrect: your answer 22 is too high."
    hint.reset(options={"task_id": "h7-tqa-bool"})
    obs, reward, *_ = hint.step("no box here")
    assert obs.startswith("I could not find a final answer") and reward == pytest.approx(-0.1)


def test_read_value_units_percent_and_refusals():
    assert read_value("3.5 m/s") == (3.5, False)
    assert read_value(r"12\,\mathrm{kg}") == (12.0, False)
    assert read_value(r"25\%") == (25.0, True)
    assert read_value(r"3 \times 10^{-4}")[0] == pytest.approx(3e-4)
    assert read_value(r"-\frac{\sqrt{3}}{2}")[0] == pytest.approx(-(3**0.5) / 2)
    assert read_value(r"2\pi")[0] == pytest.approx(6.283185307)
    assert read_value(r"2^{3}") == (8.0, False) and read_value(r"9.8 m/s^2") == (9.8, False)
    for text in ("x + 1", "True", r"10^{10^{10}}", "1/0", "3, 4", ""):
        assert read_value(text) is None, text
    assert FLOAT_REL_TOL == 0.04


def test_bad_rows_name_the_line_and_field(tmp_path):
    row = _rows()[2]
    bad = tmp_path / "tqa.jsonl"
    bad.write_text(json.dumps(row) + "\n" + json.dumps({**row, "id": "x", "Answer_type": "matrix"}) + "\n")
    with pytest.raises(DataError, match=r"tqa\.jsonl:2: field 'Answer_type' is 'matrix'"):
        FileMathSource(path=str(bad))
    bad.write_text(json.dumps({**row, "Answer": "twenty-one"}) + "\n")
    with pytest.raises(
        DataError, match=r"tqa\.jsonl:1: field 'Answer' 'twenty-one' cannot be read as Answer_type 'integer'"
    ):
        FileMathSource(path=str(bad))


def test_hub_shaped_parquet_loads_the_same(tmp_path):
    """The hub's copy is one parquet file with every Answer a string and a Picture column."""
    import datasets

    rows = [{**r, "Answer": str(r["Answer"])} for r in _rows()]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "test-00000-of-00001.parquet"))
    hub = FileMathSource(path=str(tmp_path / "test-00000-of-00001.parquet"))
    local = FileMathSource(path=str(FIXTURE))
    assert [(t.task_id, t.meta["Answer_type"]) for t in hub] == [
        (t.task_id, t.meta["Answer_type"]) for t in local
    ]
    env = gym.make("drift/MathFeedback-v0", dataset=str(tmp_path / "test-00000-of-00001.parquet")).unwrapped
    env.reset(options={"task_id": "h7-tqa-native-list"})
    assert env.step(r"\boxed{(1, 4)}")[2]


@pytest.mark.parametrize(
    "content",
    ["1+" * 30000 + "1", "(" * 5000 + "1" + ")" * 5000, "9^{9^{9}}", "(10^{100})^{400}", "1" * 60000],
    ids=["long-sum", "deep-parens", "tower", "overflow", "long-number"],
)
def test_hostile_numbers_are_judged_in_bounded_time(env, content):
    import time

    env.reset(options={"task_id": "h7-tqa-float"})
    start = time.perf_counter()
    _, _, _, _, info = env.step("\\boxed{" + content + "}")
    # in-process evaluation refuses these at once; what reaches math-verify is bounded by timeout_s (2 s)
    assert time.perf_counter() - start < env.timeout_s + 1.5
    assert not info["correct"]


def test_answer_type_spelt_option_with_a_capital(tmp_path):
    row = {
        "Question": "Which is larger? (a) 2^10 (b) 10^3",
        "Answer": "(a)",
        "Answer_type": "Option",
        "Picture": None,
    }
    path = tmp_path / "tqa.jsonl"
    path.write_text(json.dumps(row) + "\n")
    env = gym.make("drift/MathFeedback-v0", dataset=str(path)).unwrapped
    env.reset(options={"index": 0})
    assert not env.step(r"\boxed{(b)}")[2]
    assert env.step(r"The answer is \boxed{a}.")[2]
