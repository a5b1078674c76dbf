"""ReasoningGym: a reply naming several candidate answers is wrong, even where the dataset's own
scorer accepts it (``spell_backward`` scored ``noremopyh or hypomeron`` 1.0)."""

from __future__ import annotations

import gymnasium as gym
import pytest

pytest.importorskip("reasoning_gym", reason="the [reasoning-gym] extra is not installed")

import drift_envs  # noqa: E402,F401 - registers drift/* ids
from drift_envs.ecosystem.reasoning_gym import names_several  # noqa: E402

# datasets whose scorer (reasoning-gym 0.1.25) gave "<gold> or zzqx" or "<gold> zzqx" a full score
LENIENT = [
    "countdown", "fraction_simplification", "game_of_life_halting", "gsm_symbolic", "intermediate_integration",
    "kakurasu", "knights_knaves", "polynomial_multiplication", "puzzle24", "quantum_lock", "simple_integration",
    "sokoban", "spell_backward", "survo", "time_intervals", "word_sorting",
]  # fmt: skip


def spell_backward():
    env = gym.make("drift/ReasoningGym-v0", task="spell_backward", feedback="hint", size=5)
    env.reset(options={"index": 0})
    gold = str(env.unwrapped.task.answer)
    return env, gold, gold[::-1]


@pytest.mark.parametrize(
    "template",
    [
        "{g} or {w}",
        "{g} {w}",
        "{g}\n{w}",
        "{g}, {w}",
        "{g}; {w}",
        "{g}{w}",
        "[{g}, {w}]",
        "{g} ({w})",
        "{g}/{w}",
        "{g} and/or {w}",
        "either {g} or {w}",
        "{g}, maybe {w}",
        "{g} | {w}",
        "{G} OR {W}",
    ],
)
def test_a_hedged_reply_is_wrong_although_the_scorer_accepts_it(template: str) -> None:
    env, g, w = spell_backward()
    reply = template.format(g=g, w=w, G=g.upper(), W=w.upper())
    obs, reward, terminated, _, info = env.step(f"<answer>{reply}</answer>")
    upstream = env.unwrapped.source.score(reply, env.unwrapped.task)[0]
    assert (reward, terminated, info["correct"]) == (0.0, False, False)
    # a full upstream score of a hedge becomes 0; a partial one stays partial credit, never a solve
    assert info.get("several", False) is (upstream >= 1.0) and info["score"] < 1.0
    _, reward, terminated, _, info = env.step(f"<answer>{g}</answer>")
    assert (reward, terminated) == (1.0, True)


def test_the_upstream_scorer_accepts_a_hedge_and_the_env_says_so() -> None:
    env, g, w = spell_backward()
    assert env.unwrapped.source.score(f"{g} or {w}", env.unwrapped.task)[0] >= 1.0  # reasoning-gym's view
    obs, reward, _, _, info = env.step(f"<answer>{g} or {w}</answer>")
    assert reward == 0.0 and info["several"] is True and obs == "Incorrect: give one answer, not several."


def test_two_different_answer_tags_are_several_candidates() -> None:
    env, g, w = spell_backward()
    _, reward, _, _, info = env.step(f"<answer>{w}</answer> no wait <answer>{g}</answer>")
    assert reward == 0.0 and info["several"] is True
    _, reward, terminated, _, _ = env.step(f"<answer>{g}</answer> so: <answer>{g.upper()}</answer>")
    assert (reward, terminated) == (1.0, True)  # the same answer twice is one candidate


@pytest.mark.parametrize("reply", ["{g}", "{G}", " {g}. ", "\n{g}\n"])
def test_one_answer_stays_right(reply: str) -> None:
    env, g, _ = spell_backward()
    _, reward, terminated, _, _ = env.step(f"<answer>{reply.format(g=g, G=g.upper())}</answer>")
    assert (reward, terminated) == (1.0, True)


@pytest.mark.parametrize(
    ("answer", "gold", "several"),
    [
        ("P or Q", "P or Q", False),  # a gold holding "or" stays right
        ("P or Q or R", "P or Q", True),
        ("1,2,3", "1, 2, 3", False),
        ("2x + 3", "2x+3", False),
        ("0.5", "1/2", False),  # another form of the gold, accepted by its scorer
        ("0.5 or 0.7", "1/2", True),
        ("75 76", "75", True),
        ("maybe 75", "75", True),
        ("75", None, False),
        ("the answer is 75", "75", False),  # framing words are no second candidate
        ("the answer is 75 or 76", "75", True),
    ],
)
def test_names_several(answer: str, gold, several: bool) -> None:
    assert names_several(answer, gold) is several


@pytest.mark.parametrize("task", LENIENT)
def test_every_lenient_scorer_is_closed_and_its_oracle_still_solves(task: str) -> None:
    env = gym.make("drift/ReasoningGym-v0", task=task, size=3)
    env.reset(options={"index": 0})
    gold = str(env.unwrapped.task.answer)
    for hedge in (f"{gold} or zzqx", f"{gold} zzqx", f"{gold}, 12345"):
        _, _, terminated, _, info = env.step(f"<answer>{hedge}</answer>")
        assert not terminated and not info["correct"], hedge
    _, reward, terminated, _, _ = env.step(env.unwrapped.oracle_reply())
    assert (reward, terminated) == (1.0, True)


# red team 2 (class 12): a retraction or a second candidate after (or inside) the tag; read by
# drift_envs.commitment, the reading every env shares
def _other(task: str, gold: str) -> str:
    return gold[::-1] if task == "spell_backward" else str(int(gold) + 1)


@pytest.mark.parametrize("task", ["spell_backward", "basic_arithmetic", "letter_counting"])
@pytest.mark.parametrize(
    "template",
    [
        "<answer>{g}</answer>; if not, {w}",
        "<answer>{g}</answer> (wrong)",
        "<answer>{g}</answer> is wrong",
        "<answer>{g}</answer>... just kidding",
        "besides <answer>{g}</answer>",
    ],
)
def test_a_retracted_or_hedged_tag_is_wrong(task: str, template: str) -> None:
    env = gym.make("drift/ReasoningGym-v0", task=task, size=3, max_turns=1)
    try:
        env.reset(options={"index": 0})
        gold = str(env.unwrapped.task.answer)
        assert env.step(template.format(g=gold, w=_other(task, gold)))[4]["correct"] is False
    finally:
        env.close()


def test_a_cross_mark_inside_the_tag_is_wrong() -> None:
    """spell_backward scores a reply by its prefix, so "<answer>gold ❌</answer>" scored 1.0."""
    env = gym.make("drift/ReasoningGym-v0", task="spell_backward", size=3, max_turns=1)
    try:
        env.reset(options={"index": 0})
        assert env.step(f"<answer>{env.unwrapped.task.answer} ❌</answer>")[4]["correct"] is False
    finally:
        env.close()


@pytest.mark.parametrize(
    "template",
    ["<answer>{g}</answer>", "The answer is <answer>{g}</answer>.", "<answer>{g}</answer>\nHope this helps!"],
)
def test_a_tag_stood_by_stays_right(template: str) -> None:
    env = gym.make("drift/ReasoningGym-v0", task="basic_arithmetic", size=3, max_turns=1)
    try:
        env.reset(options={"index": 0})
        gold = str(env.unwrapped.task.answer)
        assert env.step(template.format(g=gold))[4]["correct"] is True
    finally:
        env.close()
