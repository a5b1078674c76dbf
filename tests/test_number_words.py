"""The one English number-word reader (drift_envs.number_words) and the three checks that use it."""

from __future__ import annotations

import doctest

import pytest

import drift_envs.number_words as number_words
from drift_envs.number_words import NUMBER_PHRASE_RE, spelled_integer, words_to_numbers


def test_module_examples_run():
    result = doctest.testmod(number_words)
    assert result.attempted >= 5 and result.failed == 0


@pytest.mark.parametrize(
    ("phrase", "numbers"),
    [
        ("forty-seven", ["47"]),
        ("one hundred and five", ["105"]),
        ("two thousand and twenty six", ["2026"]),
        ("three million two hundred thousand", ["3200000"]),
        ("seven point two five", ["7.25"]),
        ("one two", ["1", "2"]),
        ("twenty thirty", ["20", "30"]),
        ("twenty one", ["21"]),
        ("five hundred six", ["506"]),
        ("Nineteen", ["19"]),
        ("and", []),
    ],
)
def test_words_to_numbers(phrase, numbers):
    assert words_to_numbers(phrase) == numbers


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("forty-seven", 47),
        ("minus three", -3),
        ("negative one hundred and five", -105),
        ("one two", None),  # two numbers, not one answer
        ("hundred", None),
        ("minus", None),
        ("forty-seven apples", None),
        ("", None),
    ],
)
def test_spelled_integer(text, value):
    assert spelled_integer(text) == value


def test_phrases_are_whole_words():
    text = "someone said seventeen, then forty two; stone and often are words"
    assert [m.group(0) for m in NUMBER_PHRASE_RE.finditer(text)] == ["seventeen", "forty two"]


def test_three_envs_agree_on_a_spelled_value():
    """Math's hedge reading, MultipleChoice's option naming and ToolUse's digit reading give a spelled
    value the same number (they used three readers before, and disagreed on ``one two``)."""
    from drift_envs.choice.answers import _clause_options
    from drift_envs.math.answers import _words_values
    from drift_envs.tool.env import _numerals_as_digits

    phrase = "one thousand three hundred and seventy"
    assert _words_values(phrase) == {1370}
    assert _numerals_as_digits(phrase) == "1370"
    assert _clause_options(phrase, ["1200", "1370", "1400"]) == {1}
    assert _words_values("one two") == {1, 2}
    assert _numerals_as_digits("one two") == "1 2"
    assert _clause_options("one two", ["3", "12"]) == set()
