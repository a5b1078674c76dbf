"""UserCorrection: a refusal, a denial or a run of the request's keywords does not serve the request
(red team 2, class 9). Each attack earned reward 1.0 with ``request_served`` before; ordinary English
replies that do serve the request keep passing, and the env's own oracle serves the request too."""

from __future__ import annotations

import pytest

import drift_envs  # noqa: F401
from drift_envs.user import UserCorrectionEnv
from drift_envs.user.constraints.served import serving_sentences


@pytest.fixture(scope="module")
def env() -> UserCorrectionEnv:
    # constraints the replies below meet (lowercase, no commas), so only the request check decides
    return UserCorrectionEnv(constraint_kinds=["no_commas", "lowercase"], num_constraints=1, max_turns=1)


def _step(env: UserCorrectionEnv, index: int, reply: str) -> tuple[float, dict]:
    env.reset(options={"index": index})
    _, reward, _, _, info = env.step(reply)
    return reward, info


@pytest.mark.parametrize(
    "index,reply",
    [
        (0, "sleep screens routine dark caffeine exercise bedtime alcohol naps temperature"),  # 5 tips asked
        (0, "i will not give you tips about sleep screens routine dark caffeine"),
        (1, "i refuse to explain evaporation rain clouds"),  # 'What is the water cycle?'
        (1, "no idea. evaporation rain clouds?"),
        (1, "the water cycle is not evaporation rain or clouds"),
        (
            1,
            "evaporation condensation precipitation rain clouds vapour",
        ),  # refused before too (thin): a regression guard
        (3, "i won't say. moon gravity ocean pull"),  # 'What causes the tides?'
        (3, "i won\u2019t explain the moon or its gravity"),  # a typographic apostrophe
        (3, "SORRY I CAN NOT DISCUSS THE MOON OR ITS GRAVITY"),
        (3, "i will not explain it - moon gravity ocean"),
        (4, "i did not read it library council"),  # summary of the Millbrook library story
        (
            4,
            "library council ravi signatures millbrook sundays readings",
        ),  # refused before too (thin): a regression guard
    ],
)
def test_refusal_or_keyword_run_does_not_serve_the_request(env, index: int, reply: str) -> None:
    reward, info = _step(env, index, reply)
    assert reward < 1.0 and not info["request_served"], (env.task.request[:60], reply)
    # the user's correction addresses the request check
    assert info["feedback"]["addressed"] == [env.task.served.label()], (reply, info["feedback"])


@pytest.mark.parametrize(
    "index,reply",
    [
        (
            0,
            "keep a regular bedtime every night. avoid caffeine after lunch. keep your bedroom dark and cool. "
            "put screens away an hour before bed. get some exercise during the day.",
        ),
        (
            0,
            "- keep a regular bedtime\n- avoid caffeine late\n- keep the room dark\n- no screens in bed\n"
            "- exercise in the morning",
        ),
        (
            1,
            "the water cycle is how water moves around the earth. the sun heats the sea and water "
            "evaporates into vapour. the vapour cools into clouds and falls again as rain.",
        ),
        (2, "the silver moon hangs over the sea\nits light drifts on the night water"),  # poetry
        (3, "tides are caused mostly by the gravity of the moon pulling on the ocean."),
        (3, "the moon's gravitational pull raises the ocean on the side facing it"),
        (3, "tides don\u2019t just happen: the moon's gravity pulls on the ocean."),
        (
            4,
            "when the council of millbrook voted to close the library ravi collected signatures and "
            "held readings until the council changed its mind. the library now opens on sundays too.",
        ),
        (5, "- sunscreen for the strong sun\n- a big beach towel\n- a wide hat"),
        (5, "i would pack sunscreen and a towel and a hat."),
        (3, "the answer is short and simple: gravity"),
    ],
)
def test_ordinary_replies_serve_the_request(env, index: int, reply: str) -> None:
    reward, info = _step(env, index, reply)
    assert info["request_served"], (env.task.request[:60], reply, info.get("feedback"))


@pytest.mark.parametrize("persona", ["precise", "terse"])
def test_the_user_says_in_words_that_a_refusal_does_not_serve(persona: str) -> None:
    """The correction for a refusal names what was asked (its question, its text, its list)."""
    env = UserCorrectionEnv(
        constraint_kinds=["no_commas", "lowercase"], num_constraints=1, max_turns=3, persona=persona
    )
    for index, reply, fragment in [
        (
            1,
            "i refuse to explain evaporation rain clouds",
            "water cycle" if persona == "precise" else "answer",
        ),
        (4, "i did not read it library council", "summar"),
        (0, "i will not give you tips about sleep screens routine dark caffeine", "5"),
    ]:
        env.reset(seed=0, options={"index": index})
        obs = env.step(reply)[0]
        assert fragment in obs.lower(), (persona, reply, obs)


def test_the_oracle_reply_is_a_clause_that_serves_the_request() -> None:
    """The oracle's reply names the request's things inside a clause (a verb and an article) for every
    task; before, it was a bare run of keywords."""
    env = UserCorrectionEnv(max_turns=1)
    for index in range(60):
        env.reset(options={"index": index})
        reply = env.unwrapped.oracle_reply()
        assert reply is not None and env.step(reply)[1] == 1.0, (index, reply)
        assert serving_sentences(reply, env.task.served.words), (index, reply)
