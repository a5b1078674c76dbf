"""UserCorrection against look-alike characters and against filler that ignores the request.

Every check reads the reply normalised once (NFKC, format characters removed, Greek/Cyrillic
look-alikes, small capitals and comma-like marks mapped), and every procedural task checks that the
reply serves its request, voiced by the simulated user in persona.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401 - registers the ids
from drift_envs.user import UserCorrectionEnv
from drift_envs.user.constraints import (
    ForbiddenWords,
    IncludeKeywords,
    Lowercase,
    MaxWords,
    NoCommas,
    StartsWith,
)
from drift_envs.user.constraints.normalize import normalize_reply
from drift_envs.user.constraints.served import ListItems, OnTopic

ENV_ID = "drift/UserCorrection-v0"


@pytest.mark.parametrize(
    "reply",
    [
        "the mo\u200bon is bright",  # zero-width space
        "the m\u03bf\u03bfn is bright",  # Greek omicrons
        "the m\u043e\u043en is bright",  # Cyrillic o
        "the \uff4d\uff4f\uff4f\uff4e is bright",  # full-width
        "the \U0001d426\U0001d428\U0001d428\U0001d427 is bright",  # mathematical bold
        "the m\u0336oon is bright",  # a combining stroke on a letter
        "the mo\u00adon is bright",  # soft hyphen
        "the mo\u2060on is bright",  # word joiner
        "the \u1d0d\u1d0f\u1d0f\u0274 is bright",  # small capitals
        "the \u24dcoon is bright",  # circled letter
    ],
)
def test_a_forbidden_word_in_disguise_is_still_found(reply: str) -> None:
    assert not ForbiddenWords(("moon",)).check(reply)
    assert IncludeKeywords(("moon",)).check(reply)  # and it counts as the word where one is wanted


@pytest.mark.parametrize(
    "mark", ["\u201a", "\u201e", "\u060c", "\u3001", "\uff0c", "\ufe50", "\u055d", "\u2e41"]
)
def test_comma_look_alikes_are_commas(mark: str) -> None:
    assert not NoCommas().check(f"sun{mark} sea and sand")
    assert NoCommas().check("sun sea and sand")


@pytest.mark.parametrize(
    "reply",
    [
        "the-moon-is-bright-tonight-over-the-quiet-sea",
        "the\u2010moon\u2010is\u2010bright\u2010tonight\u2010over\u2010the\u2010quiet\u2010sea",  # U+2010 hyphen
        "the'moon'is'bright'tonight'over'the'quiet'sea",
        "the\u200bmoon\u200bis\u200bbright tonight over the quiet sea",  # invisible joins are no words
    ],
)
def test_joined_words_do_not_dodge_a_word_limit(reply: str) -> None:
    assert not MaxWords(5).check(reply), normalize_reply(reply)


def test_small_capitals_read_as_capitals() -> None:
    assert not Lowercase().check("\u1d1b\u029c\u1d07 \u1d0d\u1d0f\u1d0f\u0274 is bright")
    assert Lowercase().check("the moon is bright")
    assert StartsWith("Well").check("\u200bW\u0435ll, the moon")  # an invisible prefix, a Cyrillic e


def test_normalisation_is_idempotent_and_keeps_plain_text() -> None:
    for text in [
        "plain ascii",
        "café naïve",
        "中文，好",
        "x² ½",
        "\u1d0d\u1d0f\u1d0f\u0274",
        "m\u03bf\u200bon",
    ]:
        once = normalize_reply(text)
        assert normalize_reply(once) == once
    assert normalize_reply("café naïve x² ½") == "café naïve x² ½"


def test_the_env_normalises_the_reply_before_its_checks() -> None:
    task = {
        "task_id": "t",
        "request": "Describe the night sky.",
        "constraints": [{"type": "forbidden_words", "words": ["moon"]}, {"type": "no_commas"}],
    }
    env = gym.make(ENV_ID, dataset=[task])
    env.reset(options={"index": 0})
    _, reward, _, _, info = env.step("stars\u201a planets and the m\u03bfon")
    assert reward == 0.0 and len(info["failed_constraints"]) == 2
    assert info["answer"] == "stars\u201a planets and the m\u03bfon"  # the record keeps what was said
    assert env.step("stars planets and a silver disc")[1] == 1.0


# ---- the request served -----------------------------------------------------------------------

FILLER = "this is a short and clear answer that covers the main point well and keeps things simple"


def test_filler_that_ignores_the_request_fails_every_procedural_task_type() -> None:
    env = gym.make(ENV_ID).unwrapped
    seen = set()
    for index in range(120):
        env.reset(options={"index": index})
        category = env.task.meta["category"]
        seen.add(category)
        _, reward, terminated, _, info = env.step(FILLER)
        assert info["request_served"] is False and not terminated and reward <= 0.0, category
        assert env.task.served.label() in info["failed_constraints"]
    assert seen == {"writing", "list", "answer", "summary"}


def _first_of(category: str, **kwargs) -> UserCorrectionEnv:
    """An env reset on the first procedural task of ``category`` whose drawn constraints the filler
    (as lowercase prose without commas) already meets, so only the request check is left to voice."""
    env = UserCorrectionEnv(constraint_kinds=["no_commas", "lowercase"], num_constraints=1, **kwargs)
    for index in range(200):
        env.reset(options={"index": index})
        if env.task.meta["category"] == category:
            return env
    raise AssertionError(f"no {category} task in 200")


@pytest.mark.parametrize(
    ("category", "persona", "fragment"),
    [
        ("writing", "precise", None),  # None: the topic itself
        ("writing", "terse", None),
        ("answer", "precise", "question"),
        ("answer", "terse", "answer"),
        ("summary", "precise", "summar"),
        ("summary", "terse", "ummar"),
        ("list", "precise", "items"),
        ("list", "terse", "items"),
    ],
)
def test_the_user_voices_the_request_check_in_persona(
    category: str, persona: str, fragment: str | None
) -> None:
    env = _first_of(category, persona=persona)
    index = env.task_index(env.task.task_id)
    fragment = fragment or env.task.served.about.lower()
    for seed in range(8):  # every phrasing the seeded user may draw
        env.reset(seed=seed, options={"index": index})
        obs, _, _, _, info = env.step(FILLER)
        assert info["failed_constraints"] == [env.task.served.label()]
        assert fragment in obs.lower(), obs
        assert info["feedback"]["addressed"] == [env.task.served.label()]
    vague = _first_of(category, persona="vague")
    for seed in range(8):
        vague.reset(seed=seed, options={"index": index})
        obs, *_ = vague.step(FILLER)
        assert fragment not in obs.lower(), obs  # the vague user never says what is wrong


def test_echoing_the_question_is_no_answer() -> None:
    env = _first_of("answer")
    question = env.task.request
    _, _, _, _, info = env.step(f"{question.lower().rstrip('?')} is a good question and the answer is simple")
    assert info["request_served"] is False
    served = env.task.served
    assert served.check(f"{question} because of {served.words[0]}")


def test_replies_that_serve_the_request_pass_it() -> None:
    topic = OnTopic(("moon", "night", "silver"), "the moon")
    assert topic.check("The Moon hangs low.") and not topic.check("A quiet evening.")
    items = ListItems(3, ("towel", "hat", "sunscreen", "water"))
    assert items.check("- sunglasses\n- a good book\n- snacks")  # three list lines, whatever they name
    assert items.check("1) sunglasses 2) a book 3) snacks")
    assert items.check("Pack a towel, a hat and sunscreen.")  # prose naming three things asked about
    assert not items.check("- sunglasses\n- snacks")  # two lines for three items
    assert not items.check("- a\n- b\n- c\n- d")
    assert not items.check("Pack a towel.")
    assert not items.check(FILLER)


def test_the_oracle_serves_the_request_and_meets_every_check() -> None:
    for split in ("train", "test"):
        env = gym.make(ENV_ID, split=split, num_constraints=(1, 3), max_turns=1).unwrapped
        for index in range(150):
            env.reset(options={"index": index})
            _, reward, terminated, _, info = env.step(env.oracle_reply())
            assert (reward, terminated, info["request_served"]) == (1.0, True, True), (index, info)


def test_a_written_task_file_keeps_its_request_check(tmp_path) -> None:
    from drift_envs.user.tasks import ProceduralUserTasks, UserTaskFile, write_jsonl

    tasks = [ProceduralUserTasks(seed=2)[i] for i in range(8)]
    back = UserTaskFile(path=write_jsonl(tasks, tmp_path / "t.jsonl")).tasks
    assert [t.served for t in back] == [t.served for t in tasks] and all(t.served for t in back)
