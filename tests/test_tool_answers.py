"""ToolUse answers that hedge: several values, an alternative offered, or the value denied, are wrong.

Each attack is played in a real episode whose calls are done, so only the answer line decides; the
legitimate phrasings next to them stay right.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401 - registers the ids
from drift_envs.tool.env import judge_answer


def at_answer(domain: str, request_index: int = 0, index: int = 0):
    """An env on ``domain`` task ``index`` with the reference calls of request ``request_index`` made:
    the next reply is judged as that request's answer. Returns (env, expected answer)."""
    env = gym.make("drift/ToolUse-v0", domains=[domain])
    env.reset(options={"index": index})
    u = env.unwrapped
    for _ in range(request_index + 1):
        while not u.oracle_reply().startswith("Answer:"):
            env.step(u.oracle_reply())
        if _ < request_index:
            env.step(u.oracle_reply())
    return env, u.tool_task_of(u.task).requests[request_index].answer


def judged(env, reply: str) -> str:
    return env.step(reply)[-1]["feedback"]["kind"]


def _other_number(expected: str) -> str:
    return str(round(float(expected) - 0.1, 1)) if "." in expected else str(int(float(expected)) + 10)


# (domain, request) -> replies that must fail, built from the expected value {a} and another {b}
HEDGES = [
    "Answer: {b} or {a} or {c}",
    "Answer: {a} or {b}",
    "Answer: {a}, {b}",
    "Answer: {a} and/or {b}",
    "Answer: either {a} or {b}",
    "Answer: {a}, maybe {b}",
    "Answer: {a} (or {b})",
    "Answer: {a} ({b})",
    "Answer: [{a}, {b}]",
    "Answer: {a}/{b}",
    "Answer: {a} | {b}",
    "Answer: {a}; {b}",
    "Answer:\t{a}  {b}",
    "Answer: {a} unless it is {b}",
    "Answer: maybe {a}",
    "Answer: possibly {a}",
]


@pytest.mark.parametrize("template", HEDGES)
def test_a_numeric_answer_that_names_several_values_is_wrong(template: str) -> None:
    env, expected = at_answer("weather", request_index=1)  # "-7.2"-style Fahrenheit differences
    a, b = expected, _other_number(expected)
    c = _other_number(b)
    kind = judged(env, template.format(a=a, b=b, c=c))
    assert kind == "wrong_answer", (template, expected)
    assert judged(env, f"Answer: {a}") == "next_request"


def test_two_answer_lines_with_different_values_are_several() -> None:
    env, expected = at_answer("weather", request_index=1)
    other = _other_number(expected)
    assert judged(env, f"Answer: {other}\nAnswer: {expected}") == "wrong_answer"
    assert judged(env, f"I worked it out.\nAnswer: {expected}\nAnswer: {expected}") == "next_request"


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: {a} or stormy",
        "Answer: {a} or {b}",
        "Answer: either {a} or snowy",
        "Answer: {a}, maybe stormy",
        "Answer: {a} (stormy)",
        "Answer: {a}/stormy",
        "Answer: {a} and stormy",
        "Answer: perhaps {a}",
        "Answer: not {b}, {a}",
        "Answer: ｍａｙｂｅ {a}",  # full-width letters read as what they look like
    ],
)
def test_a_condition_answer_that_hedges_is_wrong(reply: str) -> None:
    env, expected = at_answer("weather", request_index=0)
    other = next(c for c in ("sunny", "cloudy", "rainy", "windy", "foggy") if c != expected)
    assert judged(env, reply.format(a=expected, b=other)) == "wrong_answer"
    assert judged(env, f"Answer: the forecast is {expected}") == "next_request"


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: no, it has not been cancelled",
        "Answer: it isn't cancelled",
        "Answer: it was never cancelled",
        "Answer: No. cancelled? no",
        "Answer: cancelled - not!",
    ],
)
def test_an_answer_that_denies_the_value_is_wrong(reply: str) -> None:
    env, expected = at_answer("shop", request_index=1)
    assert expected == "cancelled"
    assert judged(env, reply) == "wrong_answer"
    assert judged(env, "Answer: yes, it has been cancelled") == "success"


@pytest.mark.parametrize(
    ("answer", "expected", "verdict"),
    [
        ("-7.3", "-7.2", "missing"),
        ("-7.2", "-7.2", "right"),
        ("−7.2 °F", "-7.2", "right"),
        ("minus 7.2", "-7.2", "right"),
        ("-7.20", "-7.2", "right"),
        ("4,500 dollars", "4500", "right"),
        ("5,6,7", "5", "several"),
        ("the booking id is BK-101 for the flight on 2025-03-04", "BK-101", "right"),
        ("BK-101 or BK-102", "BK-101", "several"),
        ("BK-101 BK-102", "BK-101", "several"),
        ("68 on 2025-03-04 at 10:00", "68", "right"),
        # a value with "or" in it stays right, and hedging around it does not
        ("Victor or Victoria", "Victor or Victoria", "right"),
        ("the winner is Victor or Victoria", "Victor or Victoria", "right"),
        ("Victor or Victoria, or Bob", "Victor or Victoria", "several"),
        ("Dorothea Moreau", "Dorothea Moreau", "right"),
        ("no, cancelled", "cancelled", "negated"),
        # look-alike and invisible characters do not hide an "or"
        ("rainy \u043er tornado", "rainy", "several"),
        ("rainy o\u200br tornado", "rainy", "several"),
        ("\uff0d\uff17\uff0e\uff12", "-7.2", "right"),
    ],
)
def test_judge_answer(answer: str, expected: str, verdict: str) -> None:
    assert judge_answer(answer, expected) == verdict


def test_the_oracle_still_solves_every_domain() -> None:
    for domain in ("bank", "shop", "travel", "calendar", "weather"):
        for index in range(4):
            env = gym.make("drift/ToolUse-v0", domains=[domain])
            env.reset(options={"index": index})
            for _ in range(10):
                _, _, terminated, truncated, _ = env.step(env.unwrapped.oracle_reply())
                if terminated or truncated:
                    break
            assert terminated, (domain, index)
