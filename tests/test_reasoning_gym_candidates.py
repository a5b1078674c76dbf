"""ReasoningGym: a second candidate outside the answer the env reads makes a reply wrong.

The red team's cases (against faa695b, ``spell_backward``): a hedge after the answer tag, a box
beside the tag in the tag format, a tag beside the box in the boxed format; plus variants of ours.
Text before the answer (the working) is not read, and a full score of the answer read is needed for
the check to apply: a partial score stays partial credit.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

pytest.importorskip("reasoning_gym", reason="the [reasoning-gym] extra is not installed")

import drift_envs  # noqa: E402,F401 - registers drift/* ids


def spell_backward(answer_format: str):
    env = gym.make("drift/ReasoningGym-v0", task="spell_backward", size=3, answer_format=answer_format)
    env.reset(options={"index": 0})
    gold = str(env.unwrapped.task.answer)
    return env, gold, gold[::-1]


@pytest.mark.parametrize(
    ("fmt", "template"),
    [
        ("tag", "<answer>{g}</answer>\nor maybe {w}"),  # red team: a hedge after the tag
        ("auto", "<answer>{g}</answer>\nor maybe {w}"),  # red team
        ("tag", "\\boxed{{{w}}} <answer>{g}</answer>"),  # red team: a boxed candidate beside the tag
        ("boxed", "<answer>{w}</answer> \\boxed{{{g}}}"),  # red team: a tagged candidate beside the box
        ("tag", "<answer>{g}</answer> (perhaps {w})"),
        ("tag", "<answer>{g}</answer>\nOR {w}"),
        ("tag", "<answer>{g}</answer>\n\\boxed{{{w}}}"),
        ("tag", "<answer>{g}</answer> \u202eebyam\u202c {w}"),  # a right-to-left override shows 'maybe'
        ("boxed", "\\boxed{{{g}}}\nAlternatively: {w}"),
        ("boxed", "\\boxed{{{g}}} <answer>{w}</answer>"),
        ("boxed", "\\boxed{{{g}}}, possibly {w}"),
        ("auto", "\\boxed{{{g}}} or {w}"),
        ("tag", "<answer>{g}</answer> / {w}"),
        ("auto", "<answer>{g}</answer>; either way, {w} is close"),
    ],
)
def test_a_second_candidate_outside_the_read_answer_is_wrong(fmt: str, template: str) -> None:
    env, g, w = spell_backward(fmt)
    _, reward, terminated, _, info = env.step(template.format(g=g, w=w))
    assert (reward, terminated, info["correct"]) == (0.0, False, False)
    assert info["several"] is True and info["score"] == 0.0


@pytest.mark.parametrize(
    ("fmt", "template"),
    [
        (
            "tag",
            "Read {w} from the end; it could be done letter by letter or in pairs.\n<answer>{g}</answer>",
        ),
        ("tag", "<answer>{g}</answer>\nI reversed the letters one at a time."),
        ("tag", "<answer>\\boxed{{{g}}}</answer>"),
        ("tag", "<answer>{g}</answer> \\boxed{{{G}}}"),  # the same answer twice is one candidate
        ("boxed", "\\boxed{{{g}}}."),
        ("boxed", "<answer>{g}</answer> so \\boxed{{{g}}}"),
        ("auto", "\\boxed{{{g}}}\nHope this helps!"),
        ("tag", "<answer>{g}</answer>\nSee https://example.org/reverse/ and/ask questions or requests."),
    ],
)
def test_one_candidate_stays_right(fmt: str, template: str) -> None:
    env, g, w = spell_backward(fmt)
    _, reward, terminated, _, _ = env.step(template.format(g=g, w=w, G=g.upper()))
    assert (reward, terminated) == (1.0, True)


def test_a_partial_score_stays_partial_credit_beside_a_hedge() -> None:
    env, g, w = spell_backward("tag")
    near = g[:-1]
    partial = env.unwrapped.source.score(near, env.unwrapped.task)[0]
    assert 0.0 < partial < 1.0
    _, reward, terminated, _, info = env.step(f"<answer>{near}</answer>\nor maybe {w}")
    assert (reward, terminated, info["score"], info.get("several", False)) == (0.0, False, partial, False)
