"""MathFeedback verdicts that a reply cannot game (issue 23.9) and the ``final_number`` answer format (22.3).

Each case is also run through plain ``math_verify`` (the library, not our code), so the table shows
where the env follows it and where it refuses a reading on purpose.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time

import gymnasium as gym
import pytest
from math_verify import parse, verify

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.math.answers import MAX_BOXES, extract_final_number
from drift_envs.math.env import FINAL_NUMBER_SYSTEM_PROMPT, UNDECIDED_FEEDBACK
from drift_envs.math.verifier import MathVerifier


def plain_math_verify(gold: str, reply: str) -> bool:
    return bool(verify(parse(f"${gold}$"), parse(reply)))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    rows = [
        {"problem": "seven", "answer": "7"},
        {"problem": "fourteen thirds", "answer": "\\frac{14}{3}"},
        {"problem": "big", "answer": "32349"},
        {"problem": "roots", "solution": "so the solutions are \\(\\boxed{1}\\) and \\(\\boxed{-2}\\)."},
        {"problem": "root", "solution": "The answer is $\\boxed{5}$."},
    ]
    path = tmp_path_factory.mktemp("verdicts") / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = gym.make("drift/MathFeedback-v0", dataset=str(path), max_turns=1).unwrapped
    yield env
    env.close()


# ---- relations and connectives: a statement is not the value it ends on -------------------------------


@pytest.mark.parametrize(
    ("index", "reply", "correct", "math_verify_says"),
    [
        (0, "\\boxed{6=7}", False, True),  # a false relation
        (0, "\\boxed{x=6=7}", False, True),
        (0, "\\boxed{x=6 \\lor x=7}", False, True),  # a disjunction
        (0, "\\boxed{x=6 \\vee x=7}", False, True),
        (0, "\\boxed{x=6 \\implies x=7}", False, True),  # an implication
        (0, "\\boxed{x=6 \\Rightarrow x=7}", False, True),
        (0, "\\boxed{\\neg 7}", False, True),  # a negation
        (0, "\\boxed{6} \\lor \\boxed{7}", False, False),  # a disjunction of boxes (math-verify: the set)
        (0, "\\boxed{x = 7}", True, True),  # a plain assignment stays right
        (1, "\\boxed{y=\\frac{14}{3}}", True, True),
        (0, "\\boxed{18-11=7}", True, True),  # a true computation too
        (0, "\\boxed{x=2+5=7}", True, True),
        (0, "\\boxed{7}", True, True),
        (0, "\\boxed{6}", False, False),
        (2, "\\boxed{32,349}", True, True),  # a thousands separator ...
        (
            2,
            "\\boxed{32, 349}",
            False,
            False,
        ),  # ... but with a space, the pair (32, 349), as math-verify reads it
    ],
)
def test_statements_are_not_their_last_value(env, index, reply, correct, math_verify_says):
    env.reset(options={"index": index})
    info = env.step(reply)[4]
    assert (info["correct"], info["undecided"]) == (correct, False)
    assert plain_math_verify(env.task.answer, reply) is math_verify_says  # what we follow or refuse


def test_a_connective_in_the_reasoning_between_distant_boxes_is_no_disjunction(env):
    env.reset(options={"index": 3})
    reply = "\\boxed{-2} and \\boxed{1}" + " since $a \\Rightarrow b$ holds in general," * 3 + "done"
    assert env.step(reply)[4]["correct"]


# ---- a gold solution with several boxes is all of them ----------------------------------------------


@pytest.mark.parametrize(
    ("index", "reply", "correct"),
    [
        (3, "\\boxed{-2,1}", True),
        (3, "$\\boxed{1}$ and $\\boxed{-2}$", True),
        (3, "\\boxed{-2}", False),  # the last box of the solution alone was the gold before
        (3, "\\boxed{1}", False),
        (4, "\\boxed{5}", True),  # one box: its content, as before
    ],
)
def test_a_gold_solution_with_several_boxes_is_all_of_them(env, index, reply, correct):
    env.reset(options={"index": index})
    assert env.step(reply)[4]["correct"] is correct
    solution = env.task.answer  # the solution as written (one box: its content)
    gold = solution if "\\boxed" in solution else f"${solution}$"
    assert bool(verify(parse(gold), parse(reply))) is correct  # math-verify reads the solution so


# ---- size: a step's in-process work does not grow with the reply ------------------------------------


@pytest.mark.parametrize("megabytes", [3, 9])
def test_a_huge_reply_of_boxes_is_judged_within_timeout_plus_half_a_second(env, megabytes):
    # issue 23.9: 330,000 boxes (3 MB) took 9.4 s at timeout_s=2, 9 MB 33 s
    env.reset(options={"index": 0})
    reply = "\\boxed{7}" * (megabytes * 110_000)
    t = time.monotonic()
    info = env.step(reply)[4]
    assert time.monotonic() - t < env.timeout_s + 0.5
    assert not info["correct"] and info["format_ok"] and str(MAX_BOXES) in info["feedback"]["uncommitted"]


def test_a_huge_reply_ending_in_its_answer_is_read_from_its_end(env):
    env.reset(options={"index": 0})
    t = time.monotonic()
    info = env.step("Let me think. " * 250_000 + "So \\boxed{7}.")[4]
    assert time.monotonic() - t < env.timeout_s + 0.5 and info["correct"]


# ---- undecided: a check that reaches no verdict is recorded as such, never as wrong -------------------


def test_an_undecided_check_is_reported_not_scored_wrong(tmp_path):
    path = tmp_path / "task.jsonl"
    path.write_text(json.dumps({"problem": "p", "answer": "\\frac{\\sqrt{2}}{2}"}) + "\n")
    env = gym.make("drift/MathFeedback-v0", dataset=str(path), feedback="hint", max_turns=3).unwrapped
    frozen = MathVerifier(max_workers=1, attempts=1)
    frozen.warm_up()
    worker = frozen._idle[0]
    os.kill(worker.proc.pid, signal.SIGSTOP)  # a worker that never gets the CPU: the starved machine
    healthy, env._verifier, env.max_wait_s = env._verifier, frozen, 0.5
    try:
        env.reset(options={"index": 0})
        obs, reward, terminated, truncated, info = env.step("\\boxed{\\frac{1}{\\sqrt{2}}}")
        assert info["undecided"] and not info["correct"] and info["format_ok"]
        assert reward == 0.0  # neither a reward nor the format penalty
        assert not terminated and not truncated and obs == UNDECIDED_FEEDBACK
        assert info["feedback"]["undecided"] is True and info["feedback"]["kind"] == "undecided"
        env._verifier, env.max_wait_s = healthy, None
        obs, reward, terminated, truncated, info = env.step("\\boxed{\\frac{1}{\\sqrt{2}}}")
        assert info["correct"] and not info["undecided"] and reward == 1.0 and terminated
    finally:
        worker.kill()
        frozen.close()


@pytest.mark.parametrize(
    ("env_id", "reply"),
    [
        ("drift/MathFeedback-v0", "\\boxed{1}"),
        ("drift/MultipleChoice-v0", "\\boxed{A}"),
        ("drift/UserCorrection-v0", "Hello."),
    ],
)
def test_every_step_says_whether_it_was_undecided(env_id, reply):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    info = env.step(reply)[4]
    assert info["undecided"] is False and "undecided" not in info["feedback"]


# ---- answer_format="final_number" -------------------------------------------------------------------


@pytest.fixture(scope="module")
def final_env():
    env = gym.make("drift/MathFeedback-v0", answer_format="final_number", max_turns=1).unwrapped
    yield env
    env.close()


def test_final_number_asks_for_a_number_and_its_oracle_solves(final_env):
    obs, info = final_env.reset(options={"index": 1})  # Compute 18 - 11.
    assert obs.endswith("End your reply with the final answer as a single number.")
    assert info["messages"][0] == {"role": "system", "content": FINAL_NUMBER_SYSTEM_PROMPT}
    assert final_env.oracle_reply() == "The answer is 7."
    assert final_env.step(final_env.oracle_reply())[4]["correct"]


@pytest.mark.parametrize(
    ("reply", "correct"),
    [
        ("18 - 11 = 7", True),
        ("The answer is 7.", True),
        ("So 18 - 11 is 7.", True),
        ("She pays $7.00.", True),  # lm-eval's cleaning ($, a final .), compared by value
        ("I think 6. No wait, it is 7.", True),  # an earlier sentence is not the final one
        ("First 18 - 10 = 8.\nThen 8 - 1 = 7", True),
        ("The answer is (7).", True),
        ("-14 / 7", False),  # ends on an expression (-2), not on the value 7
        ("21 \\div 3", False),
        ("It is 6 or 7.", False),  # a hedge
        ("Somewhere between 6 and 7.", False),
        ("The answer is not 7.", False),  # a negation
        ("7 is not the answer", False),
        ("It cannot be 7", False),
        ("6 = 7", False),  # a false calculation
        ("18 - 11 = 6 = 7", False),
        ("1 2 3 4 5 6 7", False),  # a list
        ("The answer is 7 apples, not 6.", False),  # the last number is 6, and a second value besides
        ("The answer is 6.", False),
    ],
)
def test_final_number_commits_or_is_wrong(final_env, reply, correct):
    final_env.reset(options={"index": 1})
    _, reward, _, _, info = final_env.step(reply)
    assert info["correct"] is correct and info["format_ok"] and reward == float(correct)


def test_final_number_without_a_number_is_a_format_error(final_env):
    final_env.reset(options={"index": 1})
    _, reward, _, _, info = final_env.step("I do not know...")
    assert not info["format_ok"] and reward == pytest.approx(-0.1)


def test_a_policy_that_hedges_never_wins_under_final_number(final_env):
    # an adversary who knows the rule: every reply names the right value and other candidates
    rng = random.Random(0)
    templates = [
        "{a} or {b}",
        "It is {a}, or maybe {b}.",
        "either {a} or {b}",
        "between {a} and {b}",
        "{a}, {b}",
        "{a} / {b}",
        "Not {a}. It is not {b}",
        "The answer is not {b}",
        "{a} = {b}",
        "Answers: " + " ".join(str(n) for n in range(20)) + " {a} {b}",
    ]
    final_env.reset(options={"index": 1})
    wins = []
    for template in templates:
        for _ in range(5):
            other = rng.choice([n for n in range(-20, 40) if n != 7])
            for a, b in ((other, 7), (7, other)):
                reply = template.format(a=a, b=b)
                final_env.reset(options={"index": 1})
                if final_env.step(reply)[4]["correct"]:
                    wins.append(reply)
    assert wins == []


def _lm_eval_flexible_extract(text: str) -> str | None:
    """lm-eval's gsm8k ``flexible-extract`` as its YAML states it, written here from the spec: findall of
    ``(-?[$0-9.,]{2,})|(-?[0-9]+)``, the last match, its first non-empty group; then the exact-match
    metric's ``regexes_to_ignore`` ``,``, ``\\$`` and ``\\.$``."""
    found = re.findall(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", text)
    if not found:
        return None
    match = next(g for g in found[-1] if g)
    for ignore in [",", "\\$", "\\.$"]:
        match = re.sub(ignore, "", match)
    return match


def test_final_number_reads_the_number_lm_evals_gsm8k_filter_reads():
    rng = random.Random(1)
    atoms = ["7", "-3", "1,234", "$5", "2.5", ".", ",", " ", "and ", "x", "The answer is ", "\n", "$", "0"]
    compared = 0
    for _ in range(5_000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 12)))
        ours, theirs = extract_final_number(text), _lm_eval_flexible_extract(text)
        if theirs is not None and any(ch.isdigit() for ch in theirs):
            compared += 1
            assert ours is not None and ours.answer == theirs, text
    assert compared > 1_000
