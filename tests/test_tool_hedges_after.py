"""ToolUse answers that hide a second value or a denial where the judge did not read, now wrong.

The red team's cases (against faa695b): a hedge after the ``Answer:`` line, a second value spelled in
words or Roman numerals, a second id spelled differently, negations without an apostrophe, with an
apostrophe look-alike, as a verdict word or behind a right-to-left override; plus variants of ours.
Each is played in a real episode whose reference calls are done, so only the answer decides, and the
legitimate replies beside them stay right.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401 - registers the ids
from drift_envs.tool.env import after_answer, judge_answer


def at_answer(domain: str, request_index: int = 0, index: int = 0):
    """An env on ``domain`` task ``index`` with the reference calls of request ``request_index`` made;
    returns (env, that request)."""
    env = gym.make("drift/ToolUse-v0", domains=[domain])
    env.reset(options={"index": index})
    u = env.unwrapped
    for k in range(request_index + 1):
        while not u.oracle_reply().startswith("Answer:"):
            env.step(u.oracle_reply())
        if k < request_index:
            env.step(u.oracle_reply())
    return env, u.tool_task_of(u.task).requests[request_index]


def kind(env, reply: str) -> str:
    return env.step(reply)[-1]["feedback"]["kind"]


def _words(n: int) -> str:
    """``n`` (0 < n < 10000) in English words, written here independently of the env's reader."""
    units = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()  # noqa: E501
    tens = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
    out = []
    if n >= 1000:
        out += [units[n // 1000], "thousand"]
        n %= 1000
    if n >= 100:
        out += [units[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        out.append(tens[n // 10] + (f"-{units[n % 10]}" if n % 10 else ""))
    elif n:
        out.append(units[n])
    return " ".join(out)


def _roman(n: int) -> str:
    out = ""
    for value, letters in zip(
        (1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1),
        "M CM D CD C XC L XL X IX V IV I".split(),
        strict=True,
    ):
        while n >= value:
            out, n = out + letters, n - value
    return out


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: {a}\nOr maybe {b}.",  # red team: the hedge is on the next line
        "Answer: {a}\n\nAnswer (alternative): {b}",  # red team
        "Answer: {a}\nor {b}",
        "Answer: {a}\n(possibly {b})",
        "Answer: {a}\nThough it could also be {b}.",
        "Answer: {a}\n\nPerhaps it is higher.",
        "Answer: {a}\n- {b}",
        "Answer: {a}\n{b}",
    ],
)
def test_a_hedge_after_the_answer_line_is_wrong(reply: str) -> None:
    env, req = at_answer("bank")
    other = next(c for c in req.candidates if c != req.answer)
    assert kind(env, reply.format(a=req.answer, b=other)) == "wrong_answer"
    assert kind(env, f"Answer: {req.answer}\nLet me know if you need anything else or have questions.") in (
        "next_request",
        "success",
    )


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: {a} vs one thousand three hundred seventy",  # red team
        "Answer: {a} (MCCCLXX)",  # red team
        "Answer: {a} ({w})",
        "Answer: {a} ({r})",
        "Answer: {a}\nMaybe {w} instead.",
        "Answer: {a} vs {rl}",  # a Roman numeral in lower case, four letters or more
        "Answer: {a}, {w} dollars",
    ],
)
def test_a_second_value_spelled_out_is_wrong(reply: str) -> None:
    env, req = at_answer("bank")
    other = int(req.answer) + 7
    assert (
        kind(env, reply.format(a=req.answer, w=_words(other), r=_roman(other), rl=_roman(other).lower()))
        == "wrong_answer"
    )
    # the expected value in words or numerals beside its digits is the same value
    spelled = f"Answer: {req.answer} ({_words(int(req.answer))}, {_roman(int(req.answer))})"
    assert kind(env, spelled) in ("next_request", "success")


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: BK-101 BK 102",  # red team
        "Answer: BK-101, bk102",  # red team
        "Answer: BK-101 bk_102",  # red team
        "Answer: BK-101 (Bk.102)",
        "Answer: BK-101 & BK #102",
        "Answer: BK-101\nor bk-102",
        "Answer: BK-101\nBK 0102 is the return leg.",
        "Answer: BK-101 B.K. 102",
        "Answer: BK-101 (bk１０２)",  # full-width digits
    ],
)
def test_a_second_id_spelled_differently_is_wrong(reply: str) -> None:
    env, req = at_answer("travel")
    assert req.answer == "BK-101"
    assert kind(env, reply) == "wrong_answer"


@pytest.mark.parametrize("reply", ["Answer: bk101", "Answer: your booking is BK 101 (BK-101)"])
def test_the_expected_id_in_another_spelling_is_right(reply: str) -> None:
    env, _ = at_answer("travel")
    assert kind(env, reply) == "next_request"


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: it isnt cancelled",  # red team
        "Answer: it isn\u2018t cancelled",  # red team: LEFT SINGLE QUOTATION MARK as apostrophe
        "Answer: it isn\u02bct cancelled",  # red team: MODIFIER LETTER APOSTROPHE
        "Answer: it isn`t cancelled",  # red team
        "Answer: cancelled? nah",  # red team
        "Answer: cancelled \u2014 false",  # red team
        "Answer: it is \u202eton\u202c cancelled",  # red team: displayed 'it is not cancelled'
        "Answer: it wasnt cancelled",
        "Answer: it hasn\u2032t been cancelled",  # PRIME as apostrophe
        "Answer: it hasnt been cancelled",
        "Answer: it didn\u00b4t get cancelled",
        "Answer: cancelled: untrue",
        "Answer: cancelled - wrong",
        "Answer: cancelled? \u202eepon\u202c",  # displayed 'nope'
    ],
)
def test_a_denied_value_is_wrong(reply: str) -> None:
    env, req = at_answer("shop", request_index=1)
    assert req.answer == "cancelled"
    assert kind(env, reply) == "wrong_answer"


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: yes, it has been cancelled",
        "Answer: it is \u202edellecnac\u202c",  # displayed 'cancelled'
        "Answer: cancelled\nThe refund went to the original payment method.",
        "I looked it up: the order was processing before. Now it is cancelled.\nAnswer: cancelled",
    ],
)
def test_a_plain_confirmation_is_right(reply: str) -> None:
    env, _ = at_answer("shop", request_index=1)
    assert kind(env, reply) == "success"


def test_working_before_the_answer_line_is_not_read() -> None:
    """Intermediate values in an explanation before the answer line (a balance computation) are fine."""
    env, req = at_answer("bank", request_index=1)
    before = int(req.answer) + 500
    reply = f"The balance was {before}; after sending 500 it is {req.answer}. Or so the bank says.\nAnswer: {req.answer}"
    assert kind(env, reply) in ("next_request", "success")


@pytest.mark.parametrize(
    ("answer", "expected", "after", "verdict"),
    [
        ("-7.3", "-7.3", "", "right"),
        ("minus seven point three", "-7.3", "", "right"),
        ("-7.3 or minus seven point two", "-7.3", "", "several"),
        ("-7.3", "-7.3", "Or -7.2 if you round differently.", "several"),
        ("the forecast is rainy", "rainy", "Stay dry!", "right"),
        ("Victor or Victoria", "Victor or Victoria", "", "right"),
        ("Victor or Victoria", "Victor or Victoria", "or maybe Bob", "several"),
        ("3410 in the MIX account, I think", "3410", "", "right"),  # MIX and I are words here
        ("3410", "3410", "That is the one you asked about.", "right"),  # a lone "one" is the pronoun
        ("BK-101 for 2 passengers on 2025-03-04", "BK-101", "", "right"),
        ("cancelled", "cancelled", "No further action is needed.", "right"),  # negations after: not read
    ],
)
def test_judge_answer_with_the_text_after(answer: str, expected: str, after: str, verdict: str) -> None:
    assert judge_answer(answer, expected, (), after) == verdict


def test_after_answer() -> None:
    assert after_answer("x\nAnswer: 5\nor 6\n") == "or 6\n"
    assert after_answer("Answer: 5") == ""
    assert after_answer("just 5") == ""


# red team 2 (class 9): the value excluded, retracted, struck or crossed out on the answer line; read by
# drift_envs.commitment, the reading every env shares
EXCLUDED_OR_RETRACTED = [
    "Answer: anything but {a}",
    "Answer: other than {a}",
    "Answer: everything except {a}",
    "Answer: all but {a}",
    "Answer: far from {a}",
    "Answer: hardly {a}",
    "Answer: ~{a}",
    "Answer: !{a}",
    "Answer: {a}... just kidding",
    "Answer: {a}, jk",
    "Answer: {a} (sarcasm)",
    "Answer: ~~{a}~~",
    "Answer: {a} ❌",
    "Answer: ✘ {a}",
    "Answer: {a} [retracted]",
    "Answer: besides {a}",
]


@pytest.mark.parametrize("domain", ["bank", "weather"])
@pytest.mark.parametrize("reply", EXCLUDED_OR_RETRACTED)
def test_an_excluded_or_retracted_value_does_not_complete_the_request(domain: str, reply: str) -> None:
    env, req = at_answer(domain)
    try:
        assert kind(env, reply.format(a=req.answer)) == "wrong_answer"
    finally:
        env.close()


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: {a}!",
        "Answer: **{a}**",
        "Answer: {a} (checked twice)",
        "Answer: {a}\n\nNo further requests pending?",
    ],
)
def test_a_plain_value_with_harmless_marks_completes_the_request(reply: str) -> None:
    env, req = at_answer("bank")
    try:
        assert kind(env, reply.format(a=req.answer)) in ("next_request", "success")
    finally:
        env.close()


def test_a_long_reply_naming_the_value_often_is_judged_in_linear_time() -> None:
    """Blanking 8,000 occurrences of the value out of a 100 KB tail took 25 s when each token was
    checked against every occurrence; now it is one pass."""
    import time

    tail = " jk, ~~7~~ 6 also works." * 4_000
    began = time.perf_counter()
    assert judge_answer("7", "7", (), tail) == "several"
    assert time.perf_counter() - began < 3.0
