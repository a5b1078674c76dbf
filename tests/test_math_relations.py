"""MathFeedback: an answer is one value, or a plain chain of equal values (issue 23 item 9, red team 2).

Every reply answers "Compute 18 - 11." (generator index 1, gold 7). A relation, an operator that is no
arithmetic, or a wide space between two values makes a reply two statements, which math-verify reads
as its last value (``x = 6 \\ne x = 7`` was 7); so does a bound or an implication in a free-text final
number (``6 => 7``, ``at least 7``). Plain assignments and true chains stay right, and a gold written
with such a sign (``1 \\pm \\sqrt{2}``) allows it. Real episodes: ``gym.make`` and ``step``.
"""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.math.answers import not_one_value


@pytest.fixture(scope="module")
def envs():
    made = {
        f: gym.make("drift/MathFeedback-v0", max_turns=1, answer_format=f).unwrapped
        for f in ("auto", "tag", "final_number")
    }
    yield made
    for env in made.values():
        env.close()


def _correct(envs, fmt: str, reply: str) -> bool:
    env = envs[fmt]
    env.reset(options={"index": 1})
    assert "18 - 11" in env.task.prompt, env.task.prompt  # the task these cases are about
    return env.step(reply)[4]["correct"]


JOINERS = [
    r"\ne", r"\neq", r"\therefore", r"\because", r"\equiv", r"\simeq", r"\cong", r":=", r"\coloneqq",
    r"==", r"\in", r"\subset", r"\cup", r"\cap", r"\setminus", r"\pm", r"\mid", r"\perp", r"\vdash",
    r"\models", r"\ldots", r"\oplus", r"\&", r"\Vdash", r"\sim", r"\propto",
]  # fmt: skip


@pytest.mark.parametrize("joiner", JOINERS)
def test_two_assignments_joined_by_a_relation_or_operator_are_wrong(envs, joiner):
    # the last three are not in the red team's list: the rule says what a value is, not what joins
    assert _correct(envs, "auto", rf"\boxed{{x = 6 {joiner} x = 7}}") is False


@pytest.mark.parametrize(
    "reply",
    [r"\boxed{x=6 \quad x=7}", r"\boxed{x=6 \\ x=7}", r"\boxed{x=6 \; x=7}", r"\boxed{x=6 \,\, x=7}",
     r"\boxed{x=6 \qquad x=7}", r"\boxed{x=6 \: x=7}"],
)  # fmt: skip
def test_two_assignments_separated_by_spacing_or_a_line_break_are_wrong(envs, reply):
    assert _correct(envs, "auto", reply) is False


@pytest.mark.parametrize(
    ("fmt", "reply"), [("auto", r"\boxed{7 \approx 6}"), ("tag", r"<answer>7 \approx 6</answer>")]
)
def test_a_false_approximation_is_wrong(envs, fmt, reply):
    assert _correct(envs, fmt, reply) is False


def test_a_numeral_in_a_base_that_cannot_hold_its_digits_is_wrong(envs):
    assert _correct(envs, "auto", r"\boxed{7_6}") is False  # 7 is no base-6 digit; math-verify read 7


@pytest.mark.parametrize(
    "reply", ["6 => 7", "6 -> 7", "6 =/= 7", "≥7", "at least 7", "≤ 7", "at most 7", "more than 7"]
)
def test_a_final_number_stated_as_a_bound_or_an_implication_is_wrong(envs, reply):
    assert _correct(envs, "final_number", reply) is False


@pytest.mark.parametrize(
    ("fmt", "reply"),
    [
        ("auto", r"\boxed{7}"),
        ("auto", r"\boxed{x = 7}"),
        ("auto", r"\boxed{18 - 11 = 7}"),
        ("auto", r"\boxed{x \approx 7}"),
        ("auto", r"\boxed{7\,}"),
        ("tag", "<answer>x = 7</answer>"),
        ("final_number", "18 - 11 = 7"),
        ("final_number", "So x = 7."),
        ("final_number", "#### 7"),
        ("final_number", "The answer: 7"),
    ],
)
def test_one_value_or_a_plain_assignment_stays_right(envs, fmt, reply):
    assert _correct(envs, fmt, reply) is True


def test_a_gold_written_with_the_sign_allows_it(tmp_path):
    rows = [
        {"problem": "p", "answer": r"1 \pm \sqrt{2}"},
        {"problem": "q", "answer": r"(-\infty, 1) \cup (2, \infty)"},
    ]
    path = tmp_path / "golds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = gym.make("drift/MathFeedback-v0", dataset=str(path), max_turns=1).unwrapped
    try:
        for index, row in enumerate(rows):
            env.reset(options={"index": index})
            assert env.step(f"\\boxed{{{row['answer']}}}")[4]["correct"] is True, row
    finally:
        env.close()


def test_the_rule_reads_values_not_a_list_of_signs():
    gold = "7"
    # list separators, thin spaces, escaped braces and braced arguments are part of one value
    for one in [r"a_{37} = 19, \quad a_3 = 2", r"(5, 8) \quad \text{and} \quad (8, 5)", r"12,\!000",
                r"\{1, 2\}", r"y = -\frac{1}{2}x + \frac{3}{4}", r"\sqrt{49}", r"\approx 7", r"2\,\text{m}"]:  # fmt: skip
        assert not_one_value(one, gold) is None, one
    # any unknown command between two values joins them, whatever its name
    assert not_one_value(r"6 \frobnicate 7", gold) is not None
    assert not_one_value(r"x = 6 \ne x = 7", r"x \ne 3") is None  # a relation gold: math-verify's reading
