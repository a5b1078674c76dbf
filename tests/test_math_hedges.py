"""MathFeedback replies that offer two values as one answer are wrong (red team, item 5).

Every reply answers "Compute 18 - 11." (generator index 1, gold 7) and names 6 beside 7 as an
alternative, in each way the red team found one passed (and variants of ours); the legit replies
beside them must stay right. Real episodes: ``gym.make`` and ``step``, nothing replaced.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401  (registers the ids)


def _correct(reply: str, **kw) -> bool:
    env = gym.make("drift/MathFeedback-v0", max_turns=1, **kw).unwrapped
    try:
        _, info = env.reset(options={"index": 1})
        assert "18 - 11" in env.task.prompt, env.task.prompt  # the task these cases are about
        return env.step(reply)[4]["correct"]
    finally:
        env.close()


# ---- answer_format="final_number" ------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "x = 6 or x = 7",  # red team: a number after "=" is an operand, yet it is offered
        "(6) or 7",
        "It is 6 + 0 or 7",  # the left side evaluates to 6
        "6*1 or 7",
        "6/1 or 7",
        "x=6,x=7",  # one variable, two values
        "It is six or 7",  # a number word is a value
        # variants of ours
        "It is 6 apples or maybe 7 apples",
        "x = 6 \\lor x = 7",
        "either 3 + 3 or 7",
        "It is either six or seven, so 7",
        "y = 6; y = 7",
        "12/2 or 7",
        "twenty or 7",
    ],
)
def test_final_number_hedge_is_wrong(reply):
    assert _correct(reply, answer_format="final_number") is False


@pytest.mark.parametrize(
    "reply",
    [
        "x = 7",
        "18 - 11 = 7, so the answer is 7",
        "The answer is 7.",
        "7 or seven",  # the same value twice
        "x = 3 + 4, x = 7",  # the same variable, the same value
        "It was 6 or 8 at first. After checking, the answer is 7.",  # reasoning before the final sentence
        "The answer is 7 or more precisely 7.0",
    ],
)
def test_final_number_commitment_stays_right(reply):
    assert _correct(reply, answer_format="final_number") is True
