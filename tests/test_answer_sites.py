"""Every place a reply states an answer is read, and all of them must state the same one (red team 2).

A reply states an answer in every box-like command (``\\boxed``, ``\\fbox``, ``\\framebox``, ``\\colorbox``;
spaced, brace-less or nested), every spelling of the answer tag (``<answer >``, one left open, a stray
closing tag) and every ``Answer:``/``Final answer:``/``The answer is`` line. Before, each env read only
``\\boxed{`` and ``<answer>`` exactly, so ``\\fbox{6} \\boxed{7}`` or ``Answer: 6`` beside ``\\boxed{7}``
answered 7. MathFeedback (gold 7), MultipleChoice and ReasoningGym, in real episodes.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.choice.answers import LETTERS


@pytest.fixture(scope="module")
def math_envs():
    made = {
        f: gym.make("drift/MathFeedback-v0", max_turns=1, answer_format=f).unwrapped for f in ("auto", "tag")
    }
    yield made
    for env in made.values():
        env.close()


def _math(envs, fmt: str, reply: str) -> bool:
    env = envs[fmt]
    env.reset(options={"index": 1})
    assert "18 - 11" in env.task.prompt, env.task.prompt  # gold 7
    return env.step(reply)[4]["correct"]


@pytest.mark.parametrize(
    "reply",
    [
        r"\fbox{6} \boxed{7}",
        r"\boxed {6} \boxed{7}",
        r"\boxed 6 \boxed{7}",
        r"\boxed6 \boxed{7}",
        r"\framebox{6}\boxed{7}",
        r"\framebox[2cm][c]{6}\boxed{7}",
        r"\colorbox{red}{6} \boxed{7}",
        r"\fcolorbox{red}{white}{6} \boxed{7}",
        r"\boxed{6 \boxed{7}}",
        r"\boxed{\boxed{7}, 6}",
        "Answer: 6\n\\boxed{7}",
        "**Answer: 6** \\boxed{7}",
        "\\boxed{7}\nAnswer: 6",
        "\\boxed{7} Final answer: 6",
        "The answer is 6. \\boxed{7}",
    ],
)
def test_math_a_second_answer_in_any_box_or_answer_line_is_wrong(math_envs, reply):
    assert _math(math_envs, "auto", reply) is False


@pytest.mark.parametrize(
    "reply",
    ["<answer >6</answer > <answer>7</answer>", "<answer>7</answer><answer>6", "<answer>7</answer>6</answer>",
     "< answer>6</answer> <answer>7</answer>"],
)  # fmt: skip
def test_math_a_second_answer_in_any_tag_spelling_is_wrong(math_envs, reply):
    assert _math(math_envs, "tag", reply) is False


@pytest.mark.parametrize(
    ("fmt", "reply"),
    [
        ("auto", r"\fbox{7}"),
        ("auto", r"\boxed 7"),
        ("auto", r"\boxed {7}"),
        ("auto", r"\boxed{\boxed{7}}"),
        ("auto", "Answer: 7\n\\boxed{7}"),
        ("auto", "The answer is $\\boxed{7}$."),
        ("auto", "Answer: $18 - 11 = \\boxed{7}$"),
        ("auto", "We check our answer: 7 + 11 = 18. \\boxed{7}"),
        ("tag", "<answer >7</answer >"),
        ("tag", "<answer>7</answer> <answer>7.0</answer>"),
    ],
)
def test_math_every_place_stating_the_same_answer_stays_right(math_envs, fmt, reply):
    assert _math(math_envs, fmt, reply) is True


@pytest.fixture(scope="module")
def choice_env():
    made = gym.make("drift/MultipleChoice-v0", max_turns=1).unwrapped
    yield made
    made.close()


SECOND_LETTER = [
    "Answer: {b}\n\\boxed{{{a}}}",
    "**Answer: {b}** \\boxed{{{a}}}",
    "The answer is {b}. \\boxed{{{a}}}",
    "I pick {b}. \\boxed{{{a}}}",
    "Option {b}. \\boxed{{{a}}}",
    "\\boxed {b} \\boxed{{{a}}}",
    "\\boxed {b}\n\\boxed{{{a}}}",
    "\\framebox{{{b}}}\\boxed{{{a}}}",
    "<answer >{b}</answer > <answer>{a}</answer>",
]


@pytest.mark.parametrize("template", SECOND_LETTER)
def test_choice_a_second_stated_letter_never_wins(choice_env, template):
    wins = []
    for index in range(4):
        choice_env.reset(options={"index": index})
        right = LETTERS[choice_env.task.meta["answer_index"]]
        other = next(c for c in "ABCD" if c != right)
        for a, b in ((right, other), (other, right)):
            choice_env.reset(options={"index": index})
            reply = template.format(a=a, b=b)
            if choice_env.step(reply)[4]["correct"]:
                wins.append(reply)
    assert wins == []


@pytest.mark.parametrize(
    "template",
    ["Answer: {a}\n\\boxed{{{a}}}", "\\fbox{{{a}}}", "<answer >{a}</answer >", "The answer is \\boxed{{{a}}}.",
     "{b} is tempting, but the answer is \\boxed{{{a}}}", "Option {b} is wrong. \\boxed{{{a}}}", "**Option {b}.**\nIt does not fit.\n\\boxed{{{a}}}"],
)  # fmt: skip
def test_choice_one_letter_stated_everywhere_still_wins(choice_env, template):
    for index in range(4):
        choice_env.reset(options={"index": index})
        right = LETTERS[choice_env.task.meta["answer_index"]]
        other = next(c for c in "ABCD" if c != right)
        reply = template.format(a=right, b=other)
        assert choice_env.step(reply)[4]["correct"] is True, reply


def _rg(template: str) -> bool:
    pytest.importorskip("reasoning_gym")
    env = gym.make("drift/ReasoningGym-v0", task="spell_backward", size=3, max_turns=1)
    try:
        env.reset(options={"index": 0})
        gold = str(env.unwrapped.task.answer)
        return env.step(template.format(g=gold, w=gold[::-1]))[4]["correct"]
    finally:
        env.close()


@pytest.mark.parametrize(
    "template",
    [
        "Answer: {w}\n<answer>{g}</answer>",
        "The answer is {w}. <answer>{g}</answer>",
        "I pick {w}. <answer>{g}</answer>",
        "<answer >{w}</answer > <answer>{g}</answer>",
        "<answer>{g}</answer><answer>{w}",
        "<answer>{g}</answer>{w}</answer>",
        "\\boxed {w} <answer>{g}</answer>",
        "\\framebox{{{w}}} <answer>{g}</answer>",
        "<answer>{g}</answer>\nFinal answer: {w}",
    ],
)
def test_reasoning_gym_a_second_answer_beside_the_tag_is_wrong(template):
    assert _rg(template) is False


@pytest.mark.parametrize(
    "template",
    [
        "Answer: {g}\n<answer>{g}</answer>",
        "<answer >{g}</answer >",
        "The answer is the word reversed. <answer>{g}</answer>",
    ],
)
def test_reasoning_gym_one_answer_stated_everywhere_stays_right(template):
    assert _rg(template) is True
