"""UserCorrection: look-alike characters the normaliser did not map (red team 2, class 10).

A forbidden word still reads as itself with Hangul fillers inside it, negative squared or
regional-indicator letters, characters drawn as a circle standing for ``o`` (Greek sigma, Malayalam
TTHA, Telugu anusvara, Arabic-Indic five, ideographic zero, circles, ring operator), or spelled
letter by letter (``m-o-o-n``); a character whose name says COMMA is a comma; a letter of an alphabet
drawn like capitals (Lycian) is no lowercase letter. Each case earned reward 1.0 before.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401
from drift_envs.user.constraints.normalize import normalize_reply
from drift_envs.user.constraints.text import contains_word, reads_as_capital


def _reward_with(constraint: dict, reply: str) -> float:
    task = {"task_id": "t", "request": "Describe the night sky.", "constraints": [constraint]}
    env = gym.make("drift/UserCorrection-v0", dataset=[task], max_turns=1)
    try:
        env.reset(options={"index": 0})
        return env.step(reply)[1]
    finally:
        env.close()


@pytest.mark.parametrize(
    "reply",
    [
        "the m\u115foon is bright",  # HANGUL CHOSEONG FILLER inside the word
        "the m\u1160oon is bright",  # HANGUL JUNGSEONG FILLER
        "the m\uffa0oon is bright",  # HALFWIDTH HANGUL FILLER
        "the \U0001f17c\U0001f17e\U0001f17e\U0001f17d is bright",  # NEGATIVE SQUARED LATIN M O O N
        "the \U0001f1f2\U0001f1f4\U0001f1f4\U0001f1f3 is bright",  # REGIONAL INDICATOR M O O N
        "the m\u03c3\u03c3n is bright",  # Greek small sigma
        "the m\u1d11\u1d11n is bright",  # LATIN SMALL LETTER SIDEWAYS O
        "the m\u0d20\u0d20n is bright",  # MALAYALAM LETTER TTHA
        "the m\u0c02\u0c02n is bright",  # TELUGU SIGN ANUSVARA
        "the m\u0665\u0665n is bright",  # ARABIC-INDIC DIGIT FIVE
        "the m\u3007\u3007n is bright",  # IDEOGRAPHIC NUMBER ZERO
        "the m\u25cb\u25cbn is bright",  # WHITE CIRCLE
        "the m\u2218\u2218n is bright",  # RING OPERATOR
        "the m-o-o-n is bright",
        "the m.o.o.n is bright",
    ],
)
def test_forbidden_word_in_disguise_is_caught(reply: str) -> None:
    assert _reward_with({"type": "forbidden_words", "words": ["moon"]}, reply) < 1.0


@pytest.mark.parametrize("comma", ["\U00016e97", "\u02bb", "\u02bd", "\u0326", "\u0313", "\u0315", "\u02cc"])
def test_comma_by_another_code_point_is_caught(comma: str) -> None:
    """MEDEFAIDRIN COMMA, MODIFIER LETTER TURNED/REVERSED COMMA, COMBINING COMMA BELOW/ABOVE/ABOVE
    RIGHT, MODIFIER LETTER LOW VERTICAL LINE stand where a comma goes."""
    reply = f"the moon is bright{comma} the stars are out{comma} the night is calm"
    assert _reward_with({"type": "no_commas"}, reply) < 1.0


def test_capital_look_alike_fails_lowercase() -> None:
    """LYCIAN LETTER T reads as a capital T."""
    assert _reward_with({"type": "lowercase"}, "\U00010297he moon is bright tonight") < 1.0
    assert reads_as_capital("\U00010297") and not reads_as_capital("t") and not reads_as_capital("中")


def test_ordinary_text_keeps_its_reading() -> None:
    """No false positives: words that merely hold a separator or a round character stay apart."""
    assert not contains_word("the mo-on is bright", "moon")  # not letter by letter
    assert not contains_word("e.g. the moan", "moon")
    assert contains_word("m-o-o-n", "moon") and contains_word("the m.o.o.n.", "moon")
    assert normalize_reply("the\u3164moon") == "the\u2060moon"  # a word break still
    assert contains_word(normalize_reply("the\u3164moon"), "moon")
    assert _reward_with({"type": "lowercase"}, "the moon is bright tonight") == 1.0
    assert _reward_with({"type": "no_commas"}, "the moon is bright tonight") == 1.0
    assert _reward_with({"type": "forbidden_words", "words": ["moon"]}, "the sun is bright") == 1.0
