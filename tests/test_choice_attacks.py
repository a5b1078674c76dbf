r"""Replies that name two options while committing to one: each must be read as naming several.

The first twelve are the red team's cases (each played both ways round, right option first and
second, over the first four procedural tasks, through the env); the rest are our own variants of the
same mechanism, read directly. Every hedge here was scored correct before the reply was normalised and
the text after the answer was read for alternatives. The legitimate replies at the end mention other
options only to reject them (or before the answer) and must keep their answer.
"""

from __future__ import annotations

import time

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401  (registers the envs)
from drift_envs.choice.answers import LETTERS, read_choice

ENV_ID = "drift/MultipleChoice-v0"
OPTIONS = ["Paris", "London", "Berlin", "Rome"]
FULLWIDTH = {c: chr(0xFF21 + i) for i, c in enumerate(LETTERS)}

# the red team's templates: {a} is committed, {b} is kept in play ({fb}: {b} in full width)
RED_TEAM = [
    r"\boxed{{{a}}} (or {b})",
    r"<answer>{a}</answer> or {b}",
    "Answer: {a}, else {b}",
    "Answer: {a} (or maybe {b})",
    "Answer: {a}, possibly {b}",
    "Answer: {a}; if not, {b}",
    "Answer: {a}\nOr {b}",
    "The answer is {a}, though {b} could be",
    "Answer: {a} or {fb}",
    "Answer: {a} \u1d0f\u0280 {b}",  # small-capital "or"
    r"\boxed{{{a} \text{{ else }} {b}}}",
    "Answer: {a} \u202e{b} ro\u202c",  # right-to-left override: displayed "{a} or {b}"
]


@pytest.mark.parametrize("template", RED_TEAM)
def test_a_hedge_never_wins_through_the_env(template):
    env = gym.make(ENV_ID, max_turns=1).unwrapped
    wins = []
    for index in range(4):
        env.reset(options={"index": index})
        right = LETTERS[env.task.meta["answer_index"]]
        assert env.step(f"Answer: {right}")[4]["correct"]  # control: the plain answer wins
        other = next(c for c in "ABCD" if c != right)
        for a, b in ((right, other), (other, right)):
            env.reset(options={"index": index})
            reply = template.format(a=a, b=b, fb=FULLWIDTH[b])
            info = env.step(reply)[4]
            if info["correct"]:
                wins.append(reply)
            assert info["feedback"]["error"] == "several", (reply, info)
    assert wins == []


# our variants: {a}/{b} letters, {ta}/{tb} their options' texts, {lb} {b} in lower case
OURS = [
    r"\boxed{{{a}}}. {b} too.",  # a final "too" is "also"
    r"\boxed{{{a}}}; {b} isn't wrong",  # two negations keep it in play
    r"\boxed{{{a}}}; {b} can't be ruled out",
    r"\boxed{{{a}}}; {b} isnt wrong",  # the apostrophe left out
    r"\boxed{{{a}}}; {b} is not unlikely",
    r"\boxed{{{a}}}; {b} is no worse",
    r"\boxed{{{a}}} ({b} is also possible)",
    r"\boxed{{{a}}}. {b} is wrong but possible.",  # a hedge outweighs the rejection
    r"\boxed{{{a}}}; {b} too would work",
    r"\boxed{{{a}}}, if not {b}",  # a conditional negation offers
    r"\boxed{{{a}}}. Not {b}? Maybe.",  # a question does not rule out
    r"\boxed{{{a}}}, or {b}, not D",
    r"\boxed{{{a}}}, else {lb}",  # a lower-case letter standing as an answer
    r"\boxed{{{a}}} (or maybe {tb})",  # an option's text
    r"\boxed{{{a}}}. {tb} could be too.",
    r"{b} or \boxed{{{a}}}",  # the alternative just before the answer
    r"{b} / \boxed{{{a}}}",
    "{tb} or the answer is {a}",
    "\\boxed{{{a}}}\n\n{b}",  # a second letter alone
    r"\boxed{{{a}}} ({b})",
    r"\boxed{{{a}}}/{b}",
    r"\boxed{{{a}}}, {b}?",
    r"\boxed{{{a}}}. Alternatively {b}.",
    r"\boxed{{{a}}}. Second choice: {b}.",
    r"\boxed{{{a}}}. {b} is correct.",  # a mention that does not reject
    r"\boxed{{{a}}}. {b} works.",
    r"\boxed{{{a}}}, although {b} is plausible",
    r"\boxed{{{a}}}, {b} not excluded",
    r"\boxed{{{a}}} \text{{ or }} {b}",
    "<answer>the answer is {a}, or maybe {b}</answer>",  # the rest of an answer phrase in a tag
    "Answer: {a}. Wait, {b}.",
    "Answer: {a}, \uff42",  # full-width lower-case b
    "\\boxed{{{a}}}. {sb} \u1d1b\u1d0f\u1d0f.",  # small capitals: "B TOO"
    r"\boxed{{{a}}}, not not {b}",  # a negated negation
    r"\boxed{{{a}}}. It's not that {b} is wrong.",
    r"\boxed{{{a}}}. I don't think {b} is wrong.",
    r"\boxed{{{a}}}. Don't rule out {b}.",
    r"\boxed{{{a}}}; {b} is hardly wrong",
    r"\boxed{{{a}}}; {b} is far from wrong",
    r"{b} (or \boxed{{{a}}})",
    r"\boxed{{{a}}}; {b}, not D",  # the "not" is D's
    r"\boxed{{{a}}} or{b}",  # glued
    "\\boxed{{{a}}} or {b}\u0307",  # a combining dot above
    r"\boxed{{{a}}} vs {b}: both",
    r"\boxed{{{a}}} - or the {pb} option",  # named by place
    r"\boxed{{{a}}}; option {nb} may be right",
    r"\boxed{{{a}}}. No doubt {b}.",  # a change of mind, not a rejection
    r"\boxed{{{a}}}. Never mind {b}.",
    r"\boxed{{{a}}}. No, {b}.",
    r"\boxed{{{a}}}, failing which {b}",
    r"\boxed{{{a}}}. {b} is wrong; {b} is right.",
]
SMALL_CAPITAL = {"B": "\u0299", "C": "\u1d04"}


@pytest.mark.parametrize("template", OURS)
def test_an_alternative_after_the_answer_names_both(template):
    # C (Berlin) and B (London), each in turn the committed one
    for a, b in (("C", "B"), ("B", "C")):
        reply = template.format(
            a=a,
            b=b,
            ta=OPTIONS[LETTERS.index(a)],
            tb=OPTIONS[LETTERS.index(b)],
            lb=b.lower(),
            sb=SMALL_CAPITAL[b],
            pb={"B": "second", "C": "third"}[b],
            nb=LETTERS.index(b) + 1,
        ).replace("\uff42", chr(0xFF41 + LETTERS.index(b)))
        reading = read_choice(reply, OPTIONS)
        assert reading.choice is None and reading.several, (reply, reading)
        assert {LETTERS.index(a), LETTERS.index(b)} <= set(reading.named), (reply, reading)


@pytest.mark.parametrize(
    "reply",
    [
        r"The answer is \boxed{C}.",
        "C) Berlin",
        "The answer is C because A is too small",
        r"\boxed{C} because A is too small",
        r"\boxed{C}, not A",
        r"\boxed{C}, not A or B",
        r"\boxed{C}, and not D either",
        r"\boxed{C}. A and B are wrong.",
        r"\boxed{C}: neither A nor B fits, and D is incorrect.",
        r"\boxed{C}, rather than B",
        r"\boxed{C} over A",
        r"\boxed{C} - B isn't right",
        r"\boxed{C}; B could not be right",
        "The answer is (C). A isnt correct.",
        r"\boxed{C}. B gives London, which is wrong.",
        "<answer>C</answer>\nA is ruled out.",
        "Answer: C\n\nExplanation: A is wrong, B is wrong, D is wrong.",
        r"\boxed{C}. Option A is incorrect because it is in France.",
        r"\boxed{C}. A cat is not a city.",  # the article
        r"\boxed{C}. I think so.",
        r"\boxed{C} at 25 °C",  # a unit, not a letter
        r"\boxed{C}. Not Paris.",
        "Answer: C. Berlin is the capital of Germany.",
        r"**Answer: \boxed{C}**",
        r"B is tempting, but the answer is \boxed{C}",  # before the answer: reasoning
        r"Checking each: A is 37 and B could be right at first sight. So \boxed{C}",
        r"B, or rather \boxed{C}",  # a correction, not an alternative
        "\\boxed{\uff23}",  # full-width C
        "Answer: \u1d04",  # small-capital C
        "Answer: C\u200b",  # a zero-width space
        r"\boxed{C}. I don't think B is right.",
        r"\boxed{C}. Rule out B.",
        r"\boxed{C}; B is not correct, nor is D.",
        r"\boxed{C} instead of A",
        r"\boxed{C}: A is wrong, and B is wrong",
        r"\boxed{C}, since it is clear that B is wrong",
        "Answer: C (not B)",
        r"\boxed{C}. The first option is too small.",
        r"\boxed{C}. No B.",
        r"\boxed{C}, certainly not B",
    ],
)
def test_rejected_or_earlier_mentions_keep_the_answer(reply):
    reading = read_choice(reply, OPTIONS)
    assert reading.named == (2,), (reply, reading)


def test_numbers_in_words_and_rejections_not_in_the_list_before():
    numbers = ["37", "420", "47", "45"]  # procedural task 0
    assert read_choice(r"\boxed{C} (or maybe thirty-seven)", numbers).named == (0, 2)
    assert read_choice(r"\boxed{A}, else forty seven", numbers).named == (0, 2)
    assert read_choice(r"\boxed{C}. Not thirty-seven.", numbers).named == (2,)
    assert read_choice(r"\boxed{C}; B cannot be dismissed", numbers).named == (1, 2)
    assert read_choice(r"\boxed{C}; B can't be discarded", numbers).named == (1, 2)
    assert read_choice(r"\boxed{C}; B is dismissed", numbers).named == (2,)


def test_abbreviations_are_not_option_letters_among_ten():
    ten = [f"option text {k}" for k in range(10)]
    assert read_choice(r"\boxed{C}, e.g. because it is larger", ten).named == (2,)
    assert read_choice(r"\boxed{C}, i.e. the largest", ten).named == (2,)
    assert read_choice(r"\boxed{C}, else e.", ten).named == (2, 4)


def test_letters_in_the_chosen_options_text_are_not_mentions():
    options = ["Paris", "London", "Berlin", "Both A and B"]
    assert read_choice("Answer: D) Both A and B", options).named == (3,)
    assert read_choice(r"\boxed{D} (both A and B)", options).named == (3,)
    assert read_choice(r"\boxed{D}. Both A and B, or maybe C", options).named == (2, 3)
    assert read_choice(r"\boxed{C}. Both A and B", options).named == (0, 1, 2)


def test_options_are_normalised_like_the_reply():
    # an option written with a Greek omicron and a full-width digit is named by its plain spelling
    options = ["\u03bfxygen", "nitrogen", "carbon \uff11\uff14", "helium"]
    assert read_choice("Answer: oxygen", options).named == (0,)
    assert read_choice(r"\boxed{carbon 14}", options).named == (2,)


@pytest.mark.parametrize(
    "tail",
    [" or B" * 20000, " not" * 50000 + " B", ", " * 50000, " or" * 50000, " Paris or London" * 10000],
    ids=["alternatives", "negations", "commas", "conjunctions", "texts"],
)
def test_long_tails_are_read_in_bounded_time(tail):
    # CPU time, not wall time: the machine may be shared; a quadratic reading would take minutes
    start = time.process_time()
    read_choice(r"\boxed{C}" + tail, OPTIONS)
    assert time.process_time() - start < 2.0  # measured: at most 0.35 s of CPU


# red team 2 (class 11): the letter denied where it stands, or a second option named by its place; read
# by drift_envs.commitment, the reading every env shares
DENIED_OR_INDIRECT = [
    "Answer: {a} (wrong)",
    "Answer: {a} ❌",
    "Answer: {a} is wrong",
    "Answer: {a} or the one after",
    "Answer: {a} or the next letter",
    "\\boxed{{{a}}}... just kidding",
    "<answer>~~{a}~~</answer>",
]


@pytest.mark.parametrize("template", DENIED_OR_INDIRECT)
def test_a_denied_or_indirectly_hedged_letter_never_wins(template):
    """Through the env, on the first four procedural tasks, with the right letter."""
    env = gym.make(ENV_ID, max_turns=1).unwrapped
    try:
        wins = []
        for index in range(4):
            env.reset(options={"index": index})
            reply = template.format(a=LETTERS[env.task.meta["answer_index"]])
            if env.step(reply)[4]["correct"]:
                wins.append(reply)
        assert wins == []
    finally:
        env.close()


@pytest.mark.parametrize(
    "reply", ["Answer: C (Berlin)", "Answer: C. Berlin is the capital.", "\\boxed{C}, not A", "Answer: C ✓"]
)
def test_a_letter_stood_by_keeps_its_answer(reply):
    """Context that neither denies the letter nor offers another keeps C."""
    reading = read_choice(reply, OPTIONS)
    assert reading.choice == 2 and reading.uncommitted is None
