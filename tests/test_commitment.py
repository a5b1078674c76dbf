r"""The shared reading of "the reply commits to this answer" (drift_envs.commitment), on its own.

Red team 2 (classes 2, 9, 10, 11, 12) found that each env read a reply's retraction of its answer its
own way, and each missed some: ``anything but 7``, ``7 is wrong``, ``~~7~~``, ``7 ❌``, ``7... just
kidding``, ``\boxed{7} unless it is 6``, ``C or the one after``. These cases read the module directly;
the env tests (test_math_hedges, test_tool_hedges_after, test_choice_attacks,
test_reasoning_gym_hedges) play the same forms through real episodes. The plain answers beside them
(harmless context after or before the answer) must stay committed.
"""

from __future__ import annotations

import time

import pytest

from drift_envs.commitment import alternative_after, commitment, denial


def _span(reply: str, value: str) -> tuple[int, int]:
    """Where the answer stands: its box or tag when it has one (as math reads it), else the value."""
    for container in (f"\\boxed{{{value}}}", f"<answer>{value}</answer>"):
        if container in reply:
            value = container
    at = reply.rfind(value)
    assert at >= 0, (reply, value)
    return at, at + len(value)


def _one_other_number(stretch: str) -> bool:
    """A stand-in for an env's reading of values (the envs' own readers are tested through the envs):
    a digit other than the answer's 7."""
    return any(ch.isdigit() and ch != "7" for ch in stretch)


DENIED = [
    # excluded
    "Answer: anything but 7",
    "Answer: everything except 7",
    "Answer: all but 7",
    "Answer: other than 7",
    "Answer: far from 7",
    "Answer: hardly 7",
    "It is definitely not 7",
    "The answer is not \\boxed{7}",
    "Answer: ~7",
    "Answer: !7",
    "Answer: ¬7",
    # retracted or given a verdict
    "Answer: 7 is wrong",
    "Answer: 7 is incorrect",
    "Answer: 7 isn't right",
    "Answer: 7 (wrong)",
    "Answer: 7 (no)",
    "Answer: 7... just kidding",
    "Answer: 7, jk",
    "Answer: 7 (sarcasm)",
    "Answer: 7 /s",
    "Answer: 7? No.",
    "It is \\boxed{7}. Not.",
    "<answer>7</answer> is wrong",
    # struck or crossed out
    "Answer: ~~7~~",
    "Answer: <s>7</s>",
    "Answer: 7 ❌",
    "Answer: ✘ 7",
    "Answer: 7 ✗",
]


@pytest.mark.parametrize("reply", DENIED)
def test_a_denied_excluded_or_retracted_answer_is_not_committed(reply: str) -> None:
    """Every form of denial the red team used (and variants) is read, without any env's values."""
    start, end = _span(reply, "7")
    assert denial(reply, start, end) is not None
    assert commitment(reply, start, end) is not None


OFFERED = [
    "\\boxed{7} unless it is 6",
    "\\boxed{7}, except if it's 6",
    "\\boxed{7}; if not, 6",
    "\\boxed{7} -- 6 is also possible",
    "\\boxed{7}. 6 also works.",
    "\\boxed{7} (6 is equally plausible)",
    "\\boxed{7} though 6 could be",
    "\\boxed{7}; also 6",
    "\\boxed{7} vs 6",
    "<answer>7</answer>\n\n(If I'm wrong it's 6)",
]


@pytest.mark.parametrize("reply", OFFERED)
def test_another_value_offered_after_the_answer_is_not_committed(reply: str) -> None:
    """A word that keeps an alternative open and another value, in the answer's sentence or the next."""
    start, end = _span(reply, "7")
    assert alternative_after(reply, end, _one_other_number) is not None
    # the same words without another value offer nothing
    assert alternative_after(reply.replace("6", "7"), end, _one_other_number) is None


@pytest.mark.parametrize(
    "reply", ["Answer: C or the one after", "Answer: C or the next letter", "\\boxed{7} or the next number"]
)
def test_an_alternative_named_by_its_place_is_not_committed(reply: str) -> None:
    """ "or the one after" offers another answer whatever the env reads as a value."""
    start, end = _span(reply, "C" if "C" in reply else "7")
    assert commitment(reply, start, end) is not None


COMMITTED = [
    "The answer is 7.",
    "The answer is \\boxed{7}.",
    "The answer is not 5, it is 7.",
    "6 is wrong, so the answer is 7.",
    "Answer: 7 (rounded to the nearest whole number)",
    "Answer: 7\nLet me know if you need anything else.",
    "So $x = 7$. This is correct because 3 + 4 = 7.",
    "The total is \\boxed{7}.\n\nNote that since 14 is a factor of 42, all the factors of 14 are also factors of 42.",
    "We have $3 + 4 =~\\boxed{7}$.",  # TeX's tie before the box is no negation sign
    "It is 7! Great.",
    "Answer: 7 apples, no more and no less",
    "I am not sure at first, but the answer is 7.",
    "Answer: 7 is the number of days in a week.",
]


@pytest.mark.parametrize("reply", COMMITTED)
def test_a_plain_answer_with_harmless_context_is_committed(reply: str) -> None:
    """Context that neither denies nor offers another value keeps the answer."""
    start, end = _span(reply, "7")
    assert commitment(reply, start, end, _one_other_number) is None


def test_a_span_outside_the_reply_is_refused() -> None:
    """A caller's bad span is a clear error naming the span and the reply's length."""
    with pytest.raises(ValueError, match=r"\(3, 40\).*length 10"):
        denial("Answer: 7.", 3, 40)


def test_a_huge_reply_is_read_in_bounded_time() -> None:
    """Only a window around the answer is read: a 2 MB reply costs what a short one does."""
    reply = "not " * 500_000 + "Answer: 7" + " or maybe" * 100_000
    start, end = _span(reply, "7")
    began = time.perf_counter()
    for _ in range(20):
        commitment(reply, start, end, _one_other_number)
    assert time.perf_counter() - began < 1.0
