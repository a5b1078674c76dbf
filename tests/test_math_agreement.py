"""MathFeedback agrees with plain math-verify on math-verify's own upstream test cases, in the env's format.

The cases are the inputs of huggingface/Math-Verify's ``tests/*.py``, transcribed by
``tests/data/transcribe_math_verify_cases.py`` into a gold ``answer`` and a ``reply`` in the env's
format. The reference is plain ``math_verify.verify(parse(gold), parse(reply))`` with math-verify's
defaults, the gold as a dataset's answer string reads in LaTeX (``$answer$``, or as written when it
holds its own ``\\boxed{}``/``$``). Every case where the env differs is listed, with the reason the
env is right, in ``tests/data/math_agreement_exceptions.json`` (``math_verify_cases``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import pytest
from math_verify import parse, verify

import drift_envs  # noqa: F401  (registers the ids)

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "math_verify_cases.json").read_text())["cases"]
EXCEPTIONS = {
    e["id"]: e
    for e in json.loads((DATA / "math_agreement_exceptions.json").read_text())["math_verify_cases"][
        "exceptions"
    ]
}


def reference_gold(answer: str) -> str:
    """The gold as math-verify reads a dataset's answer: in LaTeX math, unless it brings its own delimiters."""
    own = "\\boxed" in answer or re.search(r"(?<!\\)\$", answer) or "\\(" in answer or "\\[" in answer
    return answer if own else f"${answer}$"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("cases") / "math_verify_cases.jsonl"
    path.write_text("".join(json.dumps({"problem": c["id"], "answer": c["answer"]}) + "\n" for c in CASES))
    env = gym.make("drift/MathFeedback-v0", dataset=str(path), max_turns=1, timeout_s=10.0).unwrapped
    yield env
    env.close()


def test_the_transcription_covers_the_upstream_suites():
    assert len(CASES) >= 200
    suites = {c["id"].split("::")[0] for c in CASES}
    assert {"test_all.py", "test_numina_cases.py", "test_open_thoughts.py", "test_boxed.py"} <= suites
    assert set(EXCEPTIONS) <= {c["id"] for c in CASES}, (
        "an exception names a case that is not in the data file"
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_env_verdict_equals_plain_math_verify(env, case):
    expected = bool(verify(parse(reference_gold(case["answer"])), parse(case["reply"])))
    index = next(i for i in range(env.num_tasks()) if env.get_task(i).prompt == case["id"])
    env.reset(options={"index": index})
    got = env.step(case["reply"])[4]["correct"]
    if case["id"] in EXCEPTIONS:
        listed = EXCEPTIONS[case["id"]]
        assert (got, expected) == (listed["env"], listed["math_verify"]), (
            "the listed exception no longer holds"
        )
    else:
        assert got == expected, f"env {got}, math-verify {expected}: fix it or list it with the reason"


# ---- no upstream case lost where plain math-verify wins (issue 23.9) -----------------------------------

LOST = {
    c["id"]: c["why"]
    for c in json.loads((DATA / "math_agreement_exceptions.json").read_text())["lost_to_plain_math_verify"][
        "cases"
    ]
}


def as_solution(answer: str) -> str:
    """The gold as a MATH ``solution`` holds it: as written when it has its own boxes, else in one box."""
    return answer if "\\boxed" in answer else f"\\boxed{{{answer}}}"


@pytest.mark.parametrize("form", ["answer", "solution"])
def test_no_upstream_case_is_lost_where_plain_math_verify_wins(tmp_path, form):
    # the reference here is the upstream test's own expected value; plain math-verify runs on the
    # upstream gold and pred as written, the env on the case in its format, with the gold as a
    # dataset's answer field or as a MATH solution (whose several boxes are all the gold)
    key, text = (
        ("answer", lambda c: c["answer"])
        if form == "answer"
        else ("solution", lambda c: as_solution(c["answer"]))
    )
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps({"problem": c["id"], key: text(c)}) + "\n" for c in CASES))
    env = gym.make("drift/MathFeedback-v0", dataset=str(path), max_turns=1, timeout_s=10.0).unwrapped
    lost = []
    for index, case in enumerate(CASES):
        upstream = case["upstream"]
        expected = bool(upstream["expected"] if "expected" in upstream else upstream["result"])
        plain = bool(verify(parse(case["gold"]), parse(case["pred"])))
        env.reset(options={"index": index})
        info = env.step(case["reply"])[4]
        assert not info["undecided"], case["id"]
        if info["correct"] != expected and plain == expected:
            lost.append(case["id"])
    env.close()
    assert sorted(lost) == sorted(LOST), (
        "a case is lost (fix it or list it with the reason) or won back (unlist it)"
    )


# ---- the three readings issue 12 names, checked directly -------------------------------------------


@pytest.fixture(scope="module")
def small_env(tmp_path_factory):
    rows = [
        {"problem": "set", "answer": "{1,2,3}"},
        {"problem": "twelfth", "answer": "\\frac{1}{12}"},
        {"problem": "decimal comma", "answer": "0,111"},
        {"problem": "thousands", "answer": "7425000"},
        {"problem": "boxed gold", "answer": "\\boxed{2}, \\boxed{3}"},
    ]
    path = tmp_path_factory.mktemp("small") / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return gym.make("drift/MathFeedback-v0", dataset=str(path), max_turns=1).unwrapped


@pytest.mark.parametrize(
    ("index", "reply", "correct"),
    [
        (0, "\\boxed{1},\\boxed{2},\\boxed{3}", True),  # several boxes answer a set
        (0, "\\boxed{1} and \\boxed{2} and \\boxed{3}", True),
        (0, "\\boxed{3}", False),  # only the last box is not the set
        (0, "\\boxed{1},\\boxed{2}", False),
        (1, "\\boxed{0.0833333333333333}", True),  # math-verify's 6-place rounding
        (1, "\\boxed{0.083333}", True),
        (1, "\\boxed{0.0833}", False),
        (1, "\\boxed{0.08334}", False),
        (2, "\\boxed{0.111}", True),  # 0,111 is a decimal comma, not 111
        (2, "\\boxed{111}", False),
        (3, "\\boxed{7,425,000}", True),
        (3, "\\boxed{7,425}", False),
        (4, "\\boxed{2}, \\boxed{3}", True),  # a gold with several boxes is a set too
        (4, "\\boxed{3}", False),
    ],
)
def test_several_boxes_decimals_and_separators(small_env, index, reply, correct):
    small_env.reset(options={"index": index})
    info = small_env.step(reply)[4]
    assert info["correct"] is correct
    assert info["correct"] == bool(verify(parse(reference_gold(small_env.task.answer)), parse(reply)))


def test_a_reply_with_several_boxes_reports_every_box_as_its_answer(small_env):
    small_env.reset(options={"index": 0})
    assert small_env.step("so \\boxed{1}, \\boxed{2} and \\boxed{ 3 }")[4]["answer"] == "1, 2, 3"
