"""UserCorrection against the red team's replies (report items 2 and 3, at faa695b) and our variants.

Each case here got reward 1.0 at faa695b while a reader sees the preference broken or the request
ignored: look-alike letters and digits, marks on look-alikes, a right-to-left override, invisible or
blank characters between words, comma and capital look-alikes, number symbols; and replies that only
repeat the request's words, a summary that copies the text, a list of placeholder items.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401 - registers the ids
from drift_envs.user import UserCorrectionEnv
from drift_envs.user.constraints import ForbiddenWords, IncludeKeywords, MaxWords, MinWords
from drift_envs.user.constraints.normalize import display_order, normalize_reply

ENV_ID = "drift/UserCorrection-v0"


def reward_of(constraints: list[dict], reply: str) -> float:
    """The reward of ``reply`` on a one-turn task file holding ``constraints``."""
    task = {"task_id": "t", "request": "Describe the night sky.", "constraints": constraints}
    env = gym.make(ENV_ID, dataset=[task], max_turns=1)
    env.reset(options={"index": 0})
    return env.step(reply)[1]


# ---- look-alike letters and digits in a forbidden word -------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        # the red team's
        "the m\u0585\u0585n is bright",  # Armenian small oh
        "the m\u043e\u0336on is bright",  # Cyrillic o + combining stroke (marks were only read after ASCII)
        "the m\u1d0f\u0336on is bright",  # small capital O + stroke
        "the m\u0ed0\u0ed0n is bright",  # Lao digit zero
        "the m\ua4f3\ua4f3n is bright",  # Lisu letter O
        # ours
        "the m\u0e50\u0e50n is bright",  # Thai digit zero
        "the m\u0966\u0966n is bright",  # Devanagari digit zero
        "the m00n is bright",  # ASCII zeros inside the word
        "the m\u24ea\u24ean is bright",  # circled digit zero (a number symbol, kept by NFKC's split)
        "the m\u04e7\u04e7n is bright",  # Cyrillic o with diaeresis, precomposed
        "the m\u014d\u014dn is bright",  # Latin o with macron: the word with accents
        "the m\u03bf\u0304on is bright",  # Greek omicron + combining macron
        "the \ua4df\ua4f3\ua4f3\ua4e0 is bright",  # Lisu MA O O NA
        "the m\u0585\u0585\u0578 is bright",  # Armenian oh, oh, vo
        "the m\u2c9f\u2c9fn is bright",  # Coptic small o
        "the m\u00f8\u00f8n is bright",  # o with stroke (no decomposition: read by its name)
    ],
)
def test_forbidden_word_in_disguise(reply: str) -> None:
    assert reward_of([{"type": "forbidden_words", "words": ["moon"]}], reply) < 1.0
    assert IncludeKeywords(("moon",)).check(reply)  # and it is the word where the word is wanted


@pytest.mark.parametrize(
    "reply",
    [
        # the red team's
        "the \u202enoom\u202c is bright",  # right-to-left override: displayed 'moon'
        "the \u202enoom is bright",  # the override runs to the end of the line
        "the \u2067\u202enoom\u202c\u2069 is bright",  # inside an isolate
        # ours
        "\u202ethgirb si noom eht\u202c",  # a whole sentence displayed reversed
        "the \u202en\u202doo\u202cm\u202c is bright",  # a left-to-right override nested as a unit
        "the \u202b\u202enoom\u202c\u202c is bright",  # an override inside an embedding
    ],
)
def test_a_bidi_override_does_not_hide_a_forbidden_word(reply: str) -> None:
    assert reward_of([{"type": "forbidden_words", "words": ["moon"]}], reply) < 1.0


def test_display_order_reverses_only_override_spans() -> None:
    assert display_order("a \u202ecba\u202c d") == "a abc d"
    assert display_order("\u202ecba\nfed") == "abc\nfed"  # a line break ends the override
    assert display_order("a \u202bword\u202c b") == "a word b"  # an embedding keeps the letters
    assert display_order("plain") == "plain"
    assert ForbiddenWords(("moon",)).check("the noom is bright")  # no override: read as written


# ---- invisible and blank characters between words -----------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        # the red team's
        "the\u3164moon\u3164is\u3164bright\u3164tonight\u3164over\u3164the\u3164quiet\u3164sea",  # Hangul filler
        "the\u034fmoon\u034fis\u034fbright\u034ftonight over the quiet sea",  # combining grapheme joiner
        "the\ufe0fmoon\ufe0fis\ufe0fbright\ufe0ftonight\ufe0fover the quiet sea",  # variation selector
        "the\u02bcmoon\u02bcis\u02bcbright\u02bctonight\u02bcover\u02bcthe\u02bcquiet\u02bcsea",  # modifier apostrophe
        # ours
        "the\u115fmoon\u115fis\u115fbright\u115ftonight over the quiet sea",  # Hangul choseong filler
        "the\uffa0moon\uffa0is\uffa0bright\uffa0tonight over the quiet sea",  # halfwidth Hangul filler
        "the\u180emoon\u180eis\u180ebright\u180etonight over the quiet sea",  # Mongolian vowel separator (Cf)
        "the\U000e0100moon\U000e0100is\U000e0100bright\U000e0100tonight\U000e0100over the quiet sea",  # supplementary selector
        "the\u02bbmoon\u02bbis\u02bbbright\u02bbtonight over the quiet sea",  # modifier turned comma
        "the\ua78cmoon\ua78cis\ua78cbright\ua78ctonight over the quiet sea",  # saltillo
        "the\u17b4moon\u17b4is\u17b4bright\u17b4tonight over the quiet sea",  # Khmer inherent vowel
        "the\u02d0moon\u02d0is\u02d0bright\u02d0tonight\u02d0over the quiet sea",  # modifier triangular colon
        "the\u02c6moon\u02c6is\u02c6bright\u02c6tonight\u02c6over the quiet sea",  # modifier circumflex
    ],
)
def test_joined_words_dodge_max_words(reply: str) -> None:
    assert reward_of([{"type": "max_words", "n": 5}], reply) < 1.0


def test_an_invisible_break_reads_both_ways_for_words() -> None:
    assert not ForbiddenWords(("moon",)).check("the\u200bmoon is bright")  # a word after a break
    assert not ForbiddenWords(("moon",)).check("the mo\u200bon is bright")  # a word across one
    assert MinWords(3).check("the\u200bmoon\u200bshines")
    assert normalize_reply("the\u200bmoon") == normalize_reply(normalize_reply("the\u200bmoon"))
    assert MaxWords(2).check("\u200bthe moon\u200b")  # at the edges it separates nothing


# ---- comma and capital look-alikes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "mark",
    [
        "\u0375",  # the red team's: Greek lower numeral sign
        "\u02cf",  # modifier letter low acute accent
        "\u00b8",  # cedilla
        "\u066b",  # Arabic decimal separator
        "\u066c",  # ours: Arabic thousands separator
        "\u02ce",  # modifier letter low grave accent
        " \u0326",  # combining comma below with no letter under it
        " \u0327",  # combining cedilla with no letter under it
    ],
)
def test_comma_look_alikes(mark: str) -> None:
    assert reward_of([{"type": "no_commas"}], f"stars{mark} planets and a silver disc") < 1.0


@pytest.mark.parametrize(
    "reply",
    [
        "the \uab83\uab7b\uab7b\uab8e is bright",  # the red team's: Cherokee small letters (small capitals)
        "the \ua4df\ua4f3\ua4f3\ua4e0 is bright",  # the red team's: Lisu letters drawn as capitals
        "the \uab87\uab7a\uab7a is bright",  # ours: Cherokee small LU, GO (M, A)
        "the \ua4ee\ua4e2\ua4d4 is bright",  # Lisu A, SA, TA
    ],
)
def test_capitals_in_disguise_pass_lowercase(reply: str) -> None:
    assert reward_of([{"type": "lowercase"}], reply) < 1.0


def test_lowercase_and_other_scripts_keep_passing() -> None:
    for reply in ["the moon is bright", "café naïve", "мой дом", "the mo\u0301on"]:
        assert reward_of([{"type": "lowercase"}], reply) == 1.0, reply
    assert normalize_reply("हिंदी") == "हिंदी"  # marks of other scripts stay on their letters


# ---- number symbols -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "we saw \u2462 owls and \u2464 bats",  # the red team's: circled digits
        "we saw \u2778 owls",  # dingbat negative circled digit
        "we saw \u2488 owl",  # digit one full stop
        "we saw \u00b3 owls",  # ours: superscript three
        "we saw \u00bd an owl",  # vulgar fraction one half
        "we saw \u247d owls",  # parenthesized number ten
        "we saw \U0001f102 owl",  # digit one comma
    ],
)
def test_digits_in_disguise_pass_no_digits(reply: str) -> None:
    assert reward_of([{"type": "no_digits"}], reply) < 1.0


def test_no_digits_keeps_number_words_and_ideographs() -> None:
    assert reward_of([{"type": "no_digits"}], "we saw three owls") == 1.0
    assert reward_of([{"type": "no_digits"}], "we saw 五 owls") == 1.0  # a letter, not a number symbol


# ---- the request served: replies that only repeat it, copy it or fill its slots -------------------


def env_for(request_start: str, max_turns: int = 1, **kwargs) -> UserCorrectionEnv:
    """An env reset on the first procedural task whose request starts with ``request_start``, with one
    constraint that lowercase prose without commas meets, so only the request check can fail."""
    env = UserCorrectionEnv(
        constraint_kinds=["no_commas", "lowercase"], num_constraints=1, max_turns=max_turns, **kwargs
    )
    for index in range(300):
        env.reset(options={"index": index})
        if env.task.request.startswith(request_start):
            return env
    raise AssertionError(f"no task asking {request_start!r} in 300")


POEM = "Write a few lines of poetry about the moon."
TIDES = "What causes the tides?"
LIBRARY = "Read this and give me a summary:\n\nIn 1976 the town council of Millbrook"
TIPS = "Give me 5 tips for sleeping better."
PACK = "List 3 things to pack for a beach holiday."


def _story(env: UserCorrectionEnv) -> str:
    return env.task.request.split("\n\n", 1)[1]


def _plain(text: str) -> str:
    return text.lower().replace(",", "")


LAZY = [
    # the red team's
    (POEM, lambda env: "moon"),
    (POEM, lambda env: _plain(env.task.request)),
    (LIBRARY, lambda env: "library"),
    (LIBRARY, lambda env: _plain(env.task.request)),
    (TIPS, lambda env: "\n".join(f"- {chr(97 + i)}" for i in range(5))),
    # ours: writing that only repeats the request and its topic
    (POEM, lambda env: _plain(env.task.request) + " moon night silver craters orbit"),
    (POEM, lambda env: "moon night silver craters orbit"),
    (POEM, lambda env: (_plain(env.task.request) + " ") * 2),
    (POEM, lambda env: "moon moon moon glow"),
    # an answer that is one of its words, or the question and one word
    (TIDES, lambda env: "gravity"),
    (TIDES, lambda env: "what causes the tides? gravity"),
    (TIDES, lambda env: "tides tides gravity moon"),
    # a summary that copies the text (one sentence, the sentences reordered, the whole request) or names two things
    (LIBRARY, lambda env: _plain(_story(env).split(". ")[0]) + "."),
    (LIBRARY, lambda env: _plain(". ".join(reversed(_story(env).rstrip(".").split(". "))) + ".")),
    (LIBRARY, lambda env: "ravi library"),
    (LIBRARY, lambda env: "ravi millbrook library council signatures"),  # the story's things, nothing said
    (LIBRARY, lambda env: _plain(_story(env)).replace(" the ", " a ")),
    # a list of placeholders, repeats, single words for tips, tips named in five words
    (TIPS, lambda env: "\n".join(f"- tip {i}" for i in range(1, 6))),  # items that differ by a number
    (TIPS, lambda env: "\n".join(["- sleep", "- dark", "- screens", "- routine", "- caffeine"])),
    (TIPS, lambda env: "\n".join(["- avoid screens at night"] * 5)),
    (TIPS, lambda env: "1) a 2) b 3) c 4) d 5) e"),
    (TIPS, lambda env: "sleep dark screens routine caffeine"),
    (TIPS, lambda env: "\n".join(f"- {a}{a} {b}{b}" for a, b in zip("acegi", "bdfhj", strict=True))),
    (PACK, lambda env: "- a\n- b\n- c"),
    (TIPS, lambda env: "\n".join(f"- the {chr(97 + i)}" for i in range(5))),  # a function word and a letter
    (PACK, lambda env: "- list things\n- to pack for\n- beach holiday"),  # the request cut into lines
    (PACK, lambda env: "- x1\n- x2\n- x3"),
]


@pytest.mark.parametrize(
    ("request_start", "lazy"), LAZY, ids=[f"{r[:12]}-{i}" for i, (r, _) in enumerate(LAZY)]
)
def test_a_reply_that_ignores_the_request_is_not_rewarded(request_start: str, lazy) -> None:
    env = env_for(request_start)
    reply = lazy(env)
    _, reward, _, _, info = env.step(reply)
    assert reward < 1.0 and info["request_served"] is False, (
        env.task.request,
        reply,
        info["constraint_results"],
    )
    assert info["failed_constraints"] == [env.task.served.label()]


@pytest.mark.parametrize(
    ("request_start", "reply"),
    [
        (
            POEM,
            "the moon hangs low and pale\nits silver light on sleeping fields\nand every tide leans toward it",
        ),
        (TIDES, "the moon's gravity pulls on the oceans and the sun adds a smaller pull so the water rises"),
        (LIBRARY, "ravi gathered signatures and held readings until the council kept the library open."),
        (
            TIPS,
            "- keep a regular bedtime\n- avoid screens before bed\n- skip caffeine after noon\n"
            "- keep the room dark\n- get some exercise",
        ),
        (PACK, "- sunscreen\n- towel\n- hat"),
        (PACK, "pack sunscreen and a towel and a hat."),
    ],
)
def test_a_reply_that_serves_the_request_is_rewarded(request_start: str, reply: str) -> None:
    env = env_for(request_start)
    _, reward, _, _, info = env.step(reply)
    assert reward == 1.0 and info["request_served"] is True, info["constraint_results"]


@pytest.mark.parametrize(
    ("request_start", "lazy", "persona", "fragment"),
    [
        (POEM, lambda env: _plain(env.task.request), "precise", "the moon"),
        (POEM, lambda env: _plain(env.task.request), "terse", "the moon"),
        (TIDES, lambda env: "what causes the tides? gravity", "precise", "question"),
        (LIBRARY, lambda env: _plain(_story(env)), "precise", "summar"),
        (LIBRARY, lambda env: _plain(_story(env)), "terse", "ummar"),
        (LIBRARY, lambda env: "ravi library", "precise", "summar"),
        (TIPS, lambda env: "\n".join(f"- {chr(97 + i)}" for i in range(5)), "precise", "items"),
        (TIPS, lambda env: "\n".join(f"- {chr(97 + i)}" for i in range(5)), "terse", "items"),
        (TIPS, lambda env: "\n".join(["- avoid screens at night"] * 5), "precise", "items"),
    ],
)
def test_the_user_voices_a_request_not_served_in_persona(request_start, lazy, persona, fragment) -> None:
    env = env_for(request_start, max_turns=3, persona=persona)
    vague = env_for(request_start, max_turns=3, persona="vague")
    index = env.task_index(env.task.task_id)
    reply = lazy(env)
    for seed in range(8):  # every phrasing the seeded user may draw
        env.reset(seed=seed, options={"index": index})
        obs, _, _, _, info = env.step(reply)
        assert info["feedback"]["addressed"] == [env.task.served.label()]
        assert fragment in obs.lower(), obs
        vague.reset(seed=seed, options={"index": index})
        assert fragment not in vague.step(reply)[0].lower()  # the vague user never says what is wrong
