"""MathFeedback replies that offer two values as one answer are wrong (red team, item 5).

Every reply answers "Compute 18 - 11." (generator index 1, gold 7) and names 6 beside 7 as an
alternative, in each way the red team found one passed (and variants of ours); the legit replies
beside them must stay right. Real episodes: ``gym.make`` and ``step``, nothing replaced.
"""

from __future__ import annotations

import time

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.math.answers import extract_committed


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
        "It is (6) apples or maybe 7 apples",
        "6 * 1 apples, or else 7",
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


# ---- boxes and answer tags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        r"\boxed{7 \text{ or 6}}",  # red team: math-verify drops the text, so only 7 was checked
        r"\boxed{7 \text{ (or 6)}}",
        r"\boxed{7 \text{, not 6}}",
        r"\boxed{7 \text{(or } 6\text{)}}",
        # variants of ours
        r"\boxed{7 \text{ maybe 6}}",
        r"\boxed{7 \textbf{ (or 6)}}",
        r"\boxed{7 \text{ (6)}}",  # a second number in the text
        r"\boxed{7 \mathrm{\ or\ six}}",
    ],
)
@pytest.mark.parametrize("fmt", ["auto", "boxed"])
def test_boxed_text_hedge_is_wrong(reply, fmt):
    assert _correct(reply, answer_format=fmt) is False


@pytest.mark.parametrize(
    "reply,fmt",
    [
        ("<answer>6</answer><answer>7</answer>", "auto"),  # red team: only the last tag was read
        ("<answer>6</answer><answer>7</answer>", "tag"),
        (r"<answer>6</answer> \boxed{7}", "auto"),
        (r"\boxed{6} <answer>7</answer>", "auto"),
        (r"<answer>\boxed{6}</answer><answer>\boxed{7}</answer>", "auto"),
        (r"<answer>\boxed{6}</answer><answer>\boxed{7}</answer>", "boxed"),
        # variants of ours
        ("<answer>6</answer>\nOn reflection:\n<answer>7</answer>", "tag"),
        (r"\boxed{6} <answer>7</answer>", "tag"),
        (r"<answer>6</answer> \boxed{7}", "boxed"),
        (r"<answer>6</answer> \boxed{7} <answer>7</answer>", "auto"),
        ("<answer>6</answer><answer>7</answer><answer>7</answer>", "tag"),
    ],
)
def test_several_answer_tags_or_tag_plus_box_is_wrong(reply, fmt):
    # \boxed{6} \boxed{7} is wrong (tests/test_math_verdicts.py); the same two candidates in tags must be too
    assert _correct(reply, answer_format=fmt) is False


@pytest.mark.parametrize(
    "reply",
    [
        r"\boxed{7} \lor 6",  # red team: a connective beside the box joins it to an unboxed value
        r"x = 6 \lor \boxed{7}",
        r"\boxed{7} \text{ or } 6",
        r"\boxed{7} (or maybe 6)",
        "<answer>7</answer> or 6",
        # variants of ours
        "\\boxed{7}\nOr maybe 6.",
        r"It is 6 or \boxed{7}",
        r"$x = 6$ or $\boxed{7}$",
        r"\boxed{7}, not 6",
        r"\boxed{7} (or possibly six)",
        r"\boxed{7} (not six)",
        r"\boxed{7} | 6",
        r"\boxed{7} or 6 + 0",
    ],
)
def test_a_box_joined_to_another_value_is_wrong(reply):
    # \boxed{6} \lor \boxed{7} is wrong (tests/test_math_verdicts.py); one side unboxed must be too
    assert _correct(reply) is False


@pytest.mark.parametrize("reply", ["<answer>7</answer>\nmaybe 6", "<answer>7</answer> (or else six)"])
def test_an_answer_tag_joined_to_another_value_is_wrong(reply):
    assert _correct(reply, answer_format="tag") is False


@pytest.mark.parametrize(
    "reply,fmt",
    [
        (r"\boxed{7}", "auto"),
        (r"18 - 11 = 7, so \boxed{7}", "auto"),
        (r"\boxed{7 \text{ apples}}", "boxed"),
        (r"\boxed{7 \text{ (seven)}}", "boxed"),  # the text names the same value
        (r"\boxed{x = 7}", "boxed"),
        ("It could be 6 or 8 at first. Checking again, the answer is \\boxed{7}.", "auto"),
        ("<answer>7</answer> so \\boxed{7}", "auto"),
        (r"<answer>\boxed{7}</answer>", "tag"),
        (r"<answer>7</answer> and \boxed{7.0}", "auto"),
        (r"\boxed{7}. That took 2 steps.", "auto"),
        (r"\boxed{7}, which is not a multiple of 3.", "auto"),  # "not" takes back no value here
        (r"The answer is \(\boxed{7}\), or 7.0 as a decimal.", "auto"),
        ("<answer>7</answer>", "tag"),
    ],
)
def test_one_committed_answer_stays_right(reply, fmt):
    assert _correct(reply, answer_format=fmt) is True


@pytest.mark.parametrize(
    "reply,fmt",
    [
        ("or " * 10_900 + "7", "final_number"),
        ("six " * 8_000 + "or 7", "final_number"),
        ("6 or " * 6_500 + r"\boxed{7}", "auto"),
        (r"\boxed{7}" + " or 7" * 6_000, "auto"),
        ("<answer>7</answer>" * 1_800, "auto"),
        (r"\boxed{7}" + " |" * 16_000, "auto"),
    ],
)
def test_reading_a_long_hedge_stays_cheap(reply, fmt):
    # a step's in-process work stays milliseconds whatever the reply (answers.py: MAX_READ_CHARS);
    # (the limit is loose for a loaded shared machine; without the caps on alternatives, tags and the
    # value window, "or " * 10_900 took 0.48 s and the tags 0.13 s unloaded)
    started = time.process_time()
    extract_committed(reply, fmt)
    assert time.process_time() - started < 0.5


# ---- red team 2: the reply takes its answer back, or offers another value in prose -------------------
# (classes 2 and 10; read by drift_envs.commitment, the reading every env shares)

DENIED_7 = [
    "anything but 7",
    "other than 7",
    "everything except 7",
    "all but 7",
    "far from 7",
    "~~7~~",
    "7 ❌",
    "✘ 7",
    "7... just kidding",
    "7, jk",
    "7 (wrong)",
    "7 is wrong",
    "7 is incorrect",
    "7? No.",
    "7 [retracted]",
    "7. Incorrect.",
]


@pytest.mark.parametrize("reply", DENIED_7)
def test_final_number_denied_by_its_own_reply_is_wrong(reply: str) -> None:
    """The last number is denied, excluded, struck or retracted where it stands."""
    assert _correct(reply, answer_format="final_number") is False


@pytest.mark.parametrize("reply", [*DENIED_7, "definitely not 7", "It is 7. Not."])
def test_a_box_denied_by_its_own_reply_is_wrong(reply: str) -> None:
    """The same denials around \\boxed{7}."""
    assert _correct(reply.replace("7", r"\boxed{7}")) is False


@pytest.mark.parametrize("reply", [r"\boxed{7 \text{ is wrong}}", r"\boxed{7 \text{ (wrong)}}"])
def test_a_denial_in_the_box_text_is_wrong(reply: str) -> None:
    """math-verify drops the text, so the env reads it."""
    assert _correct(reply) is False


@pytest.mark.parametrize(
    ("reply", "answer_format"),
    [
        (r"\boxed{7} unless it is 6", "auto"),
        (r"\boxed{7}, except if it's 6", "auto"),
        (r"\boxed{7}; if not, 6", "auto"),
        (r"\boxed{7} -- 6 is also possible", "auto"),
        (r"\boxed{7}. 6 also works.", "auto"),
        (r"\boxed{7} (6 is equally plausible)", "auto"),
        (r"\boxed{7} though 6 could be", "auto"),
        (r"\boxed{7}; also 6", "auto"),
        (r"\boxed{7} vs 6", "auto"),
        (r"\boxed{7} and 6", "auto"),
        ("<answer>7</answer> unless 6", "tag"),
        ("<answer>7</answer>\n\n(If I'm wrong it's 6)", "tag"),
        ("It is 6. Or 7", "final_number"),
        ("6 vs. 7", "final_number"),
        ("Six. Or seven: 7", "final_number"),
        ("6?\n7", "final_number"),
    ],
)
def test_another_value_offered_in_prose_after_the_answer_is_wrong(reply: str, answer_format: str) -> None:
    """A second value after the box or tag, or behind a sentence end, is a hedge."""
    assert _correct(reply, answer_format=answer_format) is False


@pytest.mark.parametrize(
    ("reply", "answer_format"),
    [
        (r"\boxed{7}. Note that 18 - 11 = 7 could also be checked by adding 11 to 7.", "auto"),
        (r"We have 18 - 11 = 7, so the answer is \boxed{7}. No other value works.", "auto"),
        (r"The answer is not 6, it is \boxed{7}.", "auto"),
        (r"\boxed{7}, since 11 + 7 = 18.", "auto"),
        ("<answer>7</answer>\n\nI hope this helps!", "tag"),
        ("18 - 11 = 7. Is that right? Yes: 11 + 7 = 18. The answer is 7.", "final_number"),
        ("Since 18 - 11 = 7 and 7 is also odd, the answer is 7.", "final_number"),
    ],
)
def test_plain_answers_with_harmless_context_stay_right(reply: str, answer_format: str) -> None:
    """Explanations after the answer, rejected values before it: the reply commits to 7."""
    assert _correct(reply, answer_format=answer_format) is True
