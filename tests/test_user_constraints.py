"""The constraint library of drift/UserCorrection-v0: checkers, texts, specs, conflicts, the witness."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, fields
from typing import ClassVar  # at module level: dataclasses read the test kinds' string annotations here

import pytest

from drift_envs.user.constraints import (
    CONSTRAINTS,
    BulletCount,
    Constraint,
    ConstraintSpecError,
    EndsWith,
    ForbiddenWords,
    HighlightedSections,
    IncludeKeywords,
    JsonObject,
    KeywordFrequency,
    Lowercase,
    MaxSentences,
    MaxWords,
    MinCapitalWords,
    MinWords,
    NoCommas,
    NoDigits,
    NumbersAsDigits,
    Placeholders,
    Postscript,
    Quotation,
    SampleContext,
    SingleLine,
    StartsWith,
    Title,
    Uppercase,
    compatible,
    compose_reply,
    constraint_from_dict,
    count_sentences,
    count_words,
)

# (constraint, reply, expected) — positives, negatives and edge cases for every kind
CASES: list[tuple[Constraint, str, bool]] = [
    # max_words
    (MaxWords(5), "one two three four five", True),
    (MaxWords(5), "one two three four five six", False),
    (MaxWords(4), "don't well-known  x", True),  # an apostrophe's short tail joins a word; a hyphen splits
    (MaxWords(3), "don't well-known  x", False),  # "well-known" is two words, as IFEval counts
    (MaxWords(3), "the-moon-is-bright-tonight", False),  # hyphens do not make a long reply one word
    (MaxWords(2), "— … !!! ok", True),  # punctuation alone is no word
    (MaxWords(3), "Ça va très bien", False),  # unicode letters count as words
    (MaxWords(3), "東京 大阪", True),
    # min_words
    (MinWords(3), "a b c", True),
    (MinWords(3), "a, b", False),
    (MinWords(2), "naïve café", True),
    # max_sentences
    (MaxSentences(1), "Just one sentence here.", True),
    (MaxSentences(1), "One. Two.", False),
    # runs of marks end one sentence; an ellipsis before a lower-case word does not (Punkt and IFEval agree)
    (MaxSentences(2), "Really?! Yes... truly", True),
    (MaxSentences(1), "Really?! Yes... truly", False),
    # abbreviations, decimals, URLs and version numbers end no sentence
    (MaxSentences(1), "Pi is 3.14 today.", True),
    (MaxSentences(1), "Dr. Smith met Mr. Jones at 5 p.m. on Friday.", True),
    (MaxSentences(1), "We bought fruit, e.g. apples and pears.", True),
    (MaxSentences(1), "The U.S. economy grew.", True),
    (MaxSentences(1), "See https://example.com/docs.html for the details.", True),
    (MaxSentences(1), "Install version 2.3.1 before you start.", True),
    (MaxSentences(1), "Dr. Smith left. He was tired.", False),
    (MaxSentences(1), "line one\nline two", False),
    (MaxSentences(1), "これはペンです。あれは本です。", False),
    # include_keywords
    (IncludeKeywords(("ocean",)), "The OCEAN is wide.", True),
    (IncludeKeywords(("ocean",)), "Oceans are wide.", False),  # whole words only
    (IncludeKeywords(("ocean", "tide")), "ocean, no moon", False),
    (IncludeKeywords(("Kestrel Bay",)), "It happened in kestrel bay!", True),
    (IncludeKeywords(("café",)), "Un CAFÉ, s'il vous plaît.", True),
    # forbidden_words
    (ForbiddenWords(("moon",)), "The sun rose.", True),
    (ForbiddenWords(("moon",)), "A full Moon.", False),
    (ForbiddenWords(("moon",)), "honeymoon plans", True),
    (ForbiddenWords(("moon",)), "moon_landing", False),  # underscore separates words, as in counting
    # keyword_frequency
    (KeywordFrequency("tide", 2), "Tide after TIDE.", True),
    (KeywordFrequency("tide", 3), "tide, tide, tides", False),
    (KeywordFrequency("Kestrel Bay", 2), "kestrel bay and Kestrel  Bay", False),  # a phrase keeps its spacing
    (KeywordFrequency("Kestrel Bay", 2), "Kestrel Bay, kestrel bay.", True),
    # highlighted_sections
    (HighlightedSections(2), "A *key* point and a **bold** one.", True),
    (HighlightedSections(2), "Only *one* here.", False),
    (HighlightedSections(1), "* a bullet\n* another", False),  # bullet markers are not highlights
    (HighlightedSections(1), "* *", False),
    (HighlightedSections(1), "*東京* is big", True),
    # placeholders
    (Placeholders(2), "Dear [name], see you on [date].", True),
    (Placeholders(2), "Dear [name], see you soon.", False),
    (Placeholders(1), "Empty [] and [ ] do not count.", False),
    (Placeholders(1), "Grüße an [straße]!", True),
    # lowercase
    (Lowercase(), "all lower, even ümlauts.", True),
    (Lowercase(), "Capital start", False),
    (Lowercase(), "straße ünd ß", True),
    (Lowercase(), "ÜBER", False),
    (Lowercase(), "numbers 123 and symbols #!", True),
    (Lowercase(), "123 456", False),  # no letter at all is not lowercase writing (str.islower, as IFEval)
    # uppercase
    (Uppercase(), "ALL CAPS, 100%!", True),
    (Uppercase(), "ALL CAPs", False),
    (Uppercase(), "ÉCOLE ÜBER", True),
    (Uppercase(), "STRAßE", False),  # ß is a lower-case letter
    (Uppercase(), "123 456", False),  # no letter at all is not writing in capitals (str.isupper, as IFEval)
    # min_capital_words
    (MinCapitalWords(2), "This is VERY IMPORTANT.", True),
    (MinCapitalWords(2), "This is VERY important. A", False),  # one-letter words do not count
    (MinCapitalWords(1), "ÉNORME news", True),
    # bullet_count
    (BulletCount(3), "- a\n- b\n- c", True),
    (BulletCount(3), "* a\n• b\n  - c", True),
    (BulletCount(3), "- a\n- b", False),
    (BulletCount(2), "- a\n- b\n- c", False),
    (BulletCount(2), "-a\n-b", False),  # a bullet needs a space after the marker
    (BulletCount(1), "intro\n- only one\nend", True),
    # json_object
    (JsonObject(), '{"answer": "yes"}', True),
    (JsonObject(), '```json\n{"answer": "日本"}\n```', True),
    (JsonObject(), '  {"a": [1, 2, {"b": null}]}  ', True),
    (JsonObject(), '[1, 2, "three"]', False),  # an array is not an object
    (JsonObject(), "{'answer': 'single quotes'}", False),
    (JsonObject(), 'Here it is: {"a": 1}', False),
    # quotation
    (Quotation(), '"wrapped in quotes"', True),
    (Quotation(), "“curly quotes too”", True),
    (Quotation(), '"unbalanced', False),
    (Quotation(), "'single'", False),
    # title
    (Title(), "<<My Title>>\nbody", True),
    (Title(), "<<タイトル>> text", True),
    (Title(), "<< >> empty title", False),
    (Title(), "<Single> brackets", False),
    # postscript
    (Postscript(), "Main text.\nP.S. see you soon", True),
    (Postscript(), "main text. p.s. lowercase works", True),
    (Postscript(), "Main text. P.S.", False),  # nothing after P.S.
    (Postscript(), "Main text. PS see you", False),
    # single_line
    (SingleLine(), "one line only, with trailing newline\n", True),
    (SingleLine(), "two\nlines", False),
    (SingleLine(), "windows\r\nbreak", False),
    # starts_with
    (StartsWith("Sure"), "  sure, here it is", True),
    (StartsWith("Here you go"), "Here you go: text", True),
    (StartsWith("Sure"), "Of course. Sure.", False),
    (StartsWith("Straße"), "STRASSE first", True),  # full case folding: ß == ss
    # ends_with
    (EndsWith("Thanks!"), "All done. thanks!  \n", True),
    (EndsWith("Thanks!"), '"All done. Thanks!"', True),  # closing quotes are ignored, as IFEval does
    (EndsWith("Thanks!"), "Thanks! P.S. see you", False),
    (EndsWith("Thanks!"), "Thanks! Bye", False),
    (EndsWith("Hope this helps."), "Text. Hope this helps", False),  # the full stop is part of it
    (EndsWith("merci"), "À bientôt, MERCI", True),
    # no_commas
    (NoCommas(), "No commas here; only semicolons.", True),
    (NoCommas(), "One, two", False),
    (NoCommas(), "中文，逗号", False),  # fullwidth comma
    (NoCommas(), "العربية، فاصلة", False),  # Arabic comma
    (NoCommas(), "日本語、読点", False),  # ideographic comma
    # no_digits
    (NoDigits(), "three apples and twenty pears", True),
    (NoDigits(), "3 apples", False),
    (NoDigits(), "٣ تفاحات", False),  # Arabic-Indic digit
    (NoDigits(), "x² is fine", False),  # a superscript two writes the number 2, as ③ or ⒈ do
    # numbers_as_digits
    (NumbersAsDigits(), "I have 3 cats and 12 dogs.", True),
    (NumbersAsDigits(), "I have three cats.", False),
    (NumbersAsDigits(), "Twenty-five people came.", False),
    (NumbersAsDigits(), "Someone knows everyone.", True),  # whole words only
]


@pytest.mark.parametrize(
    ("constraint", "reply", "expected"), CASES, ids=[f"{c.kind}-{i}" for i, (c, _, _) in enumerate(CASES)]
)
def test_checker(constraint: Constraint, reply: str, expected: bool) -> None:
    assert constraint.check(reply) is expected, (constraint.label(), reply, constraint.evaluate(reply))


def test_every_kind_has_positive_and_negative_cases() -> None:
    for kind in CONSTRAINTS:
        outcomes = {expected for c, _, expected in CASES if c.kind == kind}
        assert outcomes == {True, False}, f"{kind} lacks a positive or a negative case"


@pytest.mark.parametrize("kind", sorted(CONSTRAINTS))
@pytest.mark.parametrize("reply", ["", "   \n\t", "...!?", "— ,"])
def test_replies_without_words_fail_every_constraint(kind: str, reply: str) -> None:
    constraint = CONSTRAINTS[kind].sample(random.Random(0), SampleContext(topic_words=("tide",)))
    check = constraint.evaluate(reply)
    assert check.ok is False and check.detail == {"empty": True}
    # the empty-reply correction asks for an answer and restates the constraint
    assert constraint.describe() in constraint.corrections("precise", check.detail)[0]


def test_details_quote_the_numbers_a_precise_user_needs() -> None:
    check = MaxWords(5).evaluate("a b c d e f g")
    assert check.detail == {"words": 7, "limit": 5}
    texts = MaxWords(5).corrections("precise", check.detail)
    assert all("5" in t for t in texts) and any("7" in t for t in texts)
    assert ForbiddenWords(("moon", "sun")).evaluate("the Sun").detail == {"found": ["sun"]}
    assert IncludeKeywords(("a1", "tide")).evaluate("a1 only").detail == {"missing": ["tide"]}
    assert BulletCount(3).evaluate("- x").detail == {"bullets": 1, "expected": 3}
    assert "not valid JSON" in JsonObject().evaluate("{oops").detail["error"]


def test_word_and_sentence_counting() -> None:
    assert count_words("It's a well-known fact — 42 times!") == 7
    assert count_words("") == 0
    assert count_words("snake_case words") == 3  # underscore separates words
    assert count_sentences("One. Two! Three? Four…") == 4
    assert count_sentences("...") == 0


@pytest.mark.parametrize("kind", sorted(CONSTRAINTS))
def test_texts_specs_and_sampling(kind: str) -> None:
    rng = random.Random(kind)
    ctx = SampleContext(topic_words=("tide", "salt", "shore"), list_items=3)
    seen_descriptions = set()
    for _ in range(5):
        c = CONSTRAINTS[kind].sample(rng, ctx)
        assert c.kind == kind
        spec = c.to_dict()
        assert json.loads(json.dumps(spec)) == spec and spec["type"] == kind
        assert constraint_from_dict(spec) == c
        assert c.label().startswith(kind + "(")
        seen_descriptions.add(c.describe())
        for persona in ("precise", "terse"):
            texts = c.corrections(persona, {})
            assert len(texts) >= 3 and len(set(texts)) == len(texts), (kind, persona, texts)
            assert all(isinstance(t, str) and t.strip() for t in texts)
    assert all(d.endswith((".", "!", "?")) or d.endswith(">>.") for d in seen_descriptions)


def test_terse_is_shorter_than_precise() -> None:
    for kind, cls in CONSTRAINTS.items():
        c = cls.sample(random.Random(1), SampleContext(topic_words=("tide",)))
        terse = max(len(t) for t in c.corrections("terse", {}))
        precise = min(len(t) for t in c.corrections("precise", {}))
        assert terse < precise, kind


def test_corrections_reject_the_vague_persona() -> None:
    with pytest.raises(ValueError, match="precise"):
        NoCommas().corrections("vague", {})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "max_wordz", "n": 3}, r"task\.type: unknown constraint type 'max_wordz'"),
        ({"n": 3}, r"task\.type: unknown constraint type None"),
        ({"type": "max_words"}, r"task\.n: missing field"),
        ({"type": "max_words", "n": 3, "m": 1}, r"task\.m: unknown field"),
        ({"type": "max_words", "n": 0}, r"task\.n: .*positive integer, got 0"),
        ({"type": "max_words", "n": "20"}, r"task\.n: .*positive integer, got '20'"),
        ({"type": "max_words", "n": True}, r"task\.n: .*positive integer"),
        ({"type": "include_keywords", "words": []}, r"task\.words: .*non-empty list"),
        ({"type": "include_keywords", "words": ["ok", "!!"]}, r"task\.words: .*must hold words"),
        ({"type": "ends_with", "phrase": " padded "}, r"task\.phrase: .*no outer spaces"),
        (["max_words", 3], r"task: expected an object"),
    ],
)
def test_bad_specs_say_which_field(spec: object, message: str) -> None:
    with pytest.raises(ConstraintSpecError, match=message):
        constraint_from_dict(spec, where="task")


CONFLICTS = [
    (Lowercase(), Uppercase()),
    (Lowercase(), MinCapitalWords(1)),
    (MaxWords(20), MinWords(50)),
    (MaxWords(2), BulletCount(3)),
    (MaxWords(1), IncludeKeywords(("tide", "moon"))),
    (IncludeKeywords(("moon",)), ForbiddenWords(("Moon",))),
    (StartsWith("Dear moon"), ForbiddenWords(("moon",))),
    (NoDigits(), NumbersAsDigits()),
    (NoDigits(), IncludeKeywords(("R2D2",))),
    (NumbersAsDigits(), EndsWith("Thanks a million")),
    (JsonObject(), BulletCount(2)),
    (JsonObject(), EndsWith("Thanks!")),
    (SingleLine(), BulletCount(2)),
    (MaxSentences(1), Postscript()),
    (Quotation(), StartsWith("Sure")),
    (KeywordFrequency("moon", 2), ForbiddenWords(("Moon",))),
    (KeywordFrequency("three", 2), NumbersAsDigits()),
    (MaxWords(4), KeywordFrequency("tide", 5)),
    (MaxWords(10), MaxWords(20)),  # two of one kind are never drawn together
]


@pytest.mark.parametrize(("a", "b"), CONFLICTS, ids=[f"{a.kind}+{b.kind}" for a, b in CONFLICTS])
def test_conflicting_pairs_are_detected_both_ways(a: Constraint, b: Constraint) -> None:
    assert a.conflicts_with(b) and b.conflicts_with(a)
    assert not compatible([a, b]) and not compatible([NoCommas(), b, a])
    assert compose_reply([a, b]) is None


def test_compatible_pairs_are_allowed() -> None:
    for a, b in [
        (MaxWords(20), MinWords(20)),
        (Uppercase(), IncludeKeywords(("tide",))),  # keywords match in any case
        (Uppercase(), MinCapitalWords(2)),
        (Lowercase(), EndsWith("Thanks!")),
        (IncludeKeywords(("moon",)), ForbiddenWords(("sun",))),
        (Postscript(), EndsWith("Cheers")),
        (NoDigits(), NoCommas()),
    ]:
        assert compatible([a, b]), (a, b)
        reply = compose_reply([a, b], ["tide"])
        assert reply is not None and a.check(reply) and b.check(reply), reply


def test_every_compatible_triple_has_a_witness() -> None:
    """compose_reply finds a satisfying reply for every sampled compatible set of three kinds."""
    rng = random.Random(7)
    ctx = SampleContext(topic_words=("tide", "salt", "Kestrel Bay"), list_items=4)
    tried = 0
    for kinds in itertools.combinations(sorted(CONSTRAINTS), 3):
        cs = [CONSTRAINTS[k].sample(rng, ctx) for k in kinds]
        if not compatible(cs):
            continue
        tried += 1
        reply = compose_reply(cs, ctx.topic_words)
        assert reply is not None, [c.label() for c in cs]
        assert all(c.check(reply) for c in cs), (reply, [c.label() for c in cs if not c.check(reply)])
    assert tried > 300


def test_registry_rejects_a_second_class_for_a_kind() -> None:
    from drift_envs.user.constraints import register_constraint

    class Impostor(NoCommas):
        kind = "no_commas"

    with pytest.raises(ValueError, match="already registered"):
        register_constraint(Impostor)


def test_non_str_reply_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="max_words.*str"):
        MaxWords(3).check(None)  # type: ignore[arg-type]


# ---- kinds carry their own knowledge (issue 14.3) ------------------------------------------------


@pytest.fixture
def scratch_kinds():
    """Register throwaway kinds for one test; the registry is restored afterwards."""
    before = dict(CONSTRAINTS)
    yield
    CONSTRAINTS.clear()
    CONSTRAINTS.update(before)


def test_every_registered_kind_composes_itself_alone() -> None:
    from drift_envs.user.tasks import drawable_kinds

    assert drawable_kinds() == sorted(CONSTRAINTS)  # no kind is left out of the generator
    rng = random.Random(3)
    ctx = SampleContext(topic_words=("tide", "salt"), list_items=3)
    for kind, cls in CONSTRAINTS.items():
        assert cls.composable and cls.compose is not Constraint.compose, kind
        for _ in range(5):
            c = cls.sample(rng, ctx)
            reply = compose_reply([c], ctx.topic_words)
            assert reply is not None and c.check(reply), (c.label(), reply)
            # what a kind says it forces into a reply is really in the reply
            assert all(t.casefold() in reply.casefold() for t in c.required_texts()), (c.label(), reply)
            assert count_words(reply) >= c.fixed_words(), (c.label(), reply)


def test_a_new_kind_is_one_class(scratch_kinds) -> None:
    """A kind defined here is checked, composed, conflict-tested and drawn like the built-in ones."""
    from drift_envs.user.constraints import Check, Draft, register_constraint
    from drift_envs.user.tasks import ProceduralUserTasks

    @register_constraint
    @dataclass(frozen=True)
    class EndsWithBang(Constraint):
        kind: ClassVar[str] = "ends_with_bang"
        compose_order: ClassVar[int] = 105  # after the case, before quotes and JSON
        excludes: ClassVar[frozenset[str]] = frozenset({"json_object", "quotation", "ends_with"})

        def _evaluate(self, reply: str) -> Check:
            return Check(reply.rstrip().endswith("!"), {})

        def describe(self) -> str:
            return "End with an exclamation mark."

        def _corrections(self, persona: str, detail: dict) -> list[str]:
            return ["End with '!'."]

        def compose(self, draft: Draft) -> None:
            draft.wrappers.append(lambda text, _: text.rstrip(".") + "!")

    assert [f.name for f in fields(EndsWithBang)] == []  # kind & co. are class attributes, not fields
    reply = compose_reply([EndsWithBang(), Uppercase(), IncludeKeywords(("tide",))], ["salt"])
    assert reply is not None and reply.endswith("!") and reply.isupper() and "TIDE" in reply
    assert compose_reply([EndsWithBang(), JsonObject()]) is None
    source = ProceduralUserTasks(
        constraint_kinds=["ends_with_bang", "no_commas", "lowercase"], num_constraints=2
    )
    drawn = [c.kind for i in range(40) for c in source[i].constraints]
    assert "ends_with_bang" in drawn
    assert all(compose_reply(source[i].constraints) for i in range(40))


def test_a_kind_must_compose_or_declare_that_it_cannot(scratch_kinds) -> None:
    from drift_envs.core import Task
    from drift_envs.user.constraints import Check, register_constraint
    from drift_envs.user.env import UserCorrectionEnv
    from drift_envs.user.tasks import ProceduralUserTasks, drawable_kinds

    @dataclass(frozen=True)
    class Palindrome(Constraint):
        kind: ClassVar[str] = "palindrome"

        def _evaluate(self, reply: str) -> Check:
            letters = [ch.casefold() for ch in reply if ch.isalnum()]
            return Check(letters == letters[::-1], {})

        def describe(self) -> str:
            return "Reply with a palindrome."

    with pytest.raises(TypeError, match="implements no compose"):
        register_constraint(Palindrome)
    Palindrome.composable = False  # the declaration the registry asks for
    register_constraint(Palindrome)
    assert "palindrome" in CONSTRAINTS and "palindrome" not in drawable_kinds()
    assert compose_reply([Palindrome()]) is None
    with pytest.raises(ValueError, match=r"\['palindrome'\] declare composable = False"):
        ProceduralUserTasks(constraint_kinds=["palindrome", "no_commas"], num_constraints=1)
    # default draws never hold it; a task file may, and its oracle then says it has none
    assert all(c.kind != "palindrome" for i in range(200) for c in ProceduralUserTasks()[i].constraints)
    env = UserCorrectionEnv(dataset=[{"request": "Say it.", "constraints": [{"type": "palindrome"}]}])
    env.reset(options={"index": 0})
    assert isinstance(env.task, Task) and env.oracle_reply() is None
    assert env.step("Never odd or even")[1:3] == (1.0, True)
