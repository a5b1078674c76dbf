"""Every env honours ``split``: the procedural train and test splits share no prompt; fixed sets say what split does."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.code.sources import (
    PROCEDURAL_FAMILIES,
    TEST_SPLIT_FAMILIES,
    TEST_SPLIT_K,
    ProceduralCode,
)
from drift_envs.sources import DataError, make_source
from drift_envs.user.tasks import ProceduralUserTasks, request_split

N = 600  # tasks drawn per split: far more than the distinct prompts of either split


def _first_messages(env_id: str, split: str, n: int, **kwargs) -> tuple[set[str], set[str]]:
    env = gym.make(env_id, split=split, **kwargs).unwrapped
    prompts, ids = set(), set()
    for i in range(n):
        obs, info = env.reset(options={"index": i})
        prompts.add(
            obs.split("\n\nPlease follow these requirements:")[0]
        )  # the request, without revealed ones
        ids.add(info["task_id"])
    env.close()
    return prompts, ids


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("drift/CodeFeedback-v0", {}),
        ("drift/CodeFeedback-v0", {"seed": 5, "num_tests": 2}),
        ("drift/UserCorrection-v0", {}),
        ("drift/UserCorrection-v0", {"seed": 3, "revealed": "all", "num_constraints": 3}),
    ],
)
def test_procedural_train_and_test_share_no_prompt_and_no_task_id(env_id: str, kwargs: dict) -> None:
    train, train_ids = _first_messages(env_id, "train", N, **kwargs)
    test, test_ids = _first_messages(env_id, "test", N, **kwargs)
    assert train.isdisjoint(test)
    assert train_ids.isdisjoint(test_ids)
    assert len(test) >= 10 and len(train) > len(test)  # both splits are real task sets, train the larger one


def test_procedural_math_splits_are_disjoint_streams() -> None:
    # math prompts are short sums and equations, so the two streams may draw one problem alike (the
    # tiny preset has 36 problems in all); the task ids, and the streams as sequences, never coincide
    for kwargs in ({}, {"difficulty": "hard", "seed": 4}):
        train, train_ids = _first_messages("drift/MathFeedback-v0", "train", 200, **kwargs)
        test, test_ids = _first_messages("drift/MathFeedback-v0", "test", 200, **kwargs)
        assert train_ids.isdisjoint(test_ids)
        assert len(train & test) < 0.1 * len(test)


def test_the_default_split_is_test() -> None:
    for env_id in ("drift/MathFeedback-v0", "drift/CodeFeedback-v0", "drift/UserCorrection-v0"):
        default = gym.make(env_id).unwrapped
        test = gym.make(env_id, split="test").unwrapped
        assert [default.get_task(i) for i in range(20)] == [test.get_task(i) for i in range(20)]


@pytest.mark.parametrize(
    "env_id", ["drift/MathFeedback-v0", "drift/CodeFeedback-v0", "drift/UserCorrection-v0"]
)
def test_an_unknown_split_is_refused(env_id: str) -> None:
    with pytest.raises(ValueError, match="split"):
        gym.make(env_id, split="validation")


# ---- CodeFeedback ---------------------------------------------------------------------------------


def test_code_test_split_is_exactly_the_documented_partition() -> None:
    expected_test = {"is_even", "list_max"} | {
        f"{name}_{k}"
        for name, ks in [
            ("add", TEST_SPLIT_K["add"]),
            ("times", TEST_SPLIT_K["multiply"]),
            ("minus", TEST_SPLIT_K["subtract"]),
            ("repeat", TEST_SPLIT_K["repeat"]),
        ]
        for k in ks
    }
    test = {ProceduralCode(split="test", seed=s)[i].meta["entry_point"] for s in range(3) for i in range(400)}
    train = {
        ProceduralCode(split="train", seed=s)[i].meta["entry_point"] for s in range(3) for i in range(400)
    }
    assert test == expected_test
    assert train.isdisjoint(expected_test)
    # every family is somewhere, and families with a constant are in both splits with other constants
    families = {e.rsplit("_", 1)[0] if e[-1].isdigit() else e for e in train | test}
    assert len(families) == len(PROCEDURAL_FAMILIES)
    assert set(TEST_SPLIT_FAMILIES) <= test


def test_code_train_references_pass_their_own_tests() -> None:
    # the procedural references and asserts are generated here, not model output: running them in-process is safe
    for split in ("train", "test"):
        source = ProceduralCode(split=split, seed=2, size=200)
        for i in range(200):
            task = source[i]
            namespace: dict = {}
            exec(task.answer, namespace)  # noqa: S102
            for test in task.meta["tests"]:
                exec(test, namespace)  # noqa: S102


def test_code_families_with_no_task_in_a_split_are_refused() -> None:
    with pytest.raises(ValueError, match="no task in the 'test' split"):
        ProceduralCode(split="test", families=("sum_two", "square"))
    with pytest.raises(ValueError, match="no task in the 'train' split"):
        ProceduralCode(split="train", families=("is_even",))
    assert {ProceduralCode(split="train", families=("add",))[i].meta["entry_point"] for i in range(100)} == {
        f"add_{k}" for k in range(2, 10) if k not in TEST_SPLIT_K["add"]
    }


def test_code_test_split_keeps_the_tasks_of_the_generator_before_splits() -> None:
    # the CodeFeedback docstring example (index 0, is_even with these tests) is a task of the old generator
    task = ProceduralCode(split="test")[0]
    assert task.meta["entry_point"] == "is_even"
    assert task.meta["tests"][0] == "assert is_even(-18) == True"


def test_humaneval_is_a_test_set_only(tmp_path: Path) -> None:
    assert len(make_source("code", "humaneval", split="test")) == 164
    with pytest.raises(DataError, match="HumanEval has only a test split"):
        make_source("code", "humaneval", split="train")
    with pytest.raises(DataError, match="HumanEval has only a test split"):
        gym.make("drift/CodeFeedback-v0", dataset="humaneval", split="train")
    # a local copy of HumanEval (ids HumanEval/N) is refused the same way
    row = {
        "task_id": "HumanEval/0",
        "prompt": "def f(x):\n",
        "entry_point": "f",
        "canonical_solution": "    return x\n",
        "test": "def check(candidate):\n    assert candidate(1) == 1\n",
    }
    path = tmp_path / "he.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert len(make_source("code", str(path), split="test")) == 1
    with pytest.raises(DataError, match="HumanEval has only a test split"):
        make_source("code", str(path), split="train")


def test_a_local_code_file_is_used_whole_whatever_the_split(tmp_path: Path) -> None:
    rows = [
        {
            "task_id": i,
            "text": f"Return {i}.",
            "code": f"def f{i}():\n    return {i}",
            "test_list": [f"assert f{i}() == {i}"],
        }
        for i in (5, 700)
    ]  # an MBPP prompt-split id and a train id
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train, test = make_source("code", str(path), split="train"), make_source("code", str(path), split="test")
    assert (
        [t.task_id for t in (train[0], train[1])]
        == [t.task_id for t in (test[0], test[1])]
        == ["mbpp/5", "mbpp/700"]
    )


def test_a_hub_code_dataset_gets_the_requested_split(tmp_path: Path) -> None:
    folder = tmp_path / "mbpp_like"
    folder.mkdir()
    for split, ids in (("train", (601, 602)), ("test", (11,))):
        (folder / f"{split}.jsonl").write_text(
            "".join(
                json.dumps(
                    {
                        "task_id": i,
                        "text": "Return one.",
                        "code": "def one():\n    return 1",
                        "test_list": ["assert one() == 1"],
                    }
                )
                + "\n"
                for i in ids
            )
        )
    assert [t.task_id for t in make_source("code", str(folder), split="train")] == ["mbpp/601", "mbpp/602"]
    assert [t.task_id for t in make_source("code", str(folder), split="test")] == ["mbpp/11"]


# ---- UserCorrection -------------------------------------------------------------------------------


def test_user_splits_hold_every_category_and_the_request_partition() -> None:
    for split in ("train", "test"):
        source = ProceduralUserTasks(split=split, seed=7)
        tasks = [source[i] for i in range(400)]
        assert {t.meta["category"] for t in tasks} == {"writing", "list", "answer", "summary"}
        assert all(request_split(t.request, t.meta["category"]) == split for t in tasks)
        assert all(t.task_id.startswith(f"user-7-{split}-") for t in tasks)


def test_user_test_split_keeps_the_tasks_of_the_generator_before_splits() -> None:
    # the UserCorrection docstring example (index 2) is a task of the old generator whose request is held out
    task = ProceduralUserTasks(split="test")[2]
    assert task.request == "Write a few lines of poetry about the moon."
    assert [c.label() for c in task.constraints] == ["include_keywords(words=['moon'])", "uppercase()"]


def test_user_task_ids_resolve_within_their_split_only() -> None:
    train = gym.make("drift/UserCorrection-v0", split="train", seed=1).unwrapped
    assert train.task_index("user-1-train-42") == 42
    with pytest.raises(KeyError, match="user-1-train-<index>"):
        train.task_index("user-1-test-42")
    obs, info = train.reset(options={"task_id": "user-1-train-42"})
    assert info["task_id"] == "user-1-train-42" and obs.startswith(train.user_task(42).request)


def test_a_user_task_file_is_used_whole_whatever_the_split(tmp_path: Path) -> None:
    record = {"task_id": "t1", "request": "Describe autumn.", "constraints": [{"type": "lowercase"}]}
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(record) + "\n")
    for split in ("train", "test"):
        env = gym.make("drift/UserCorrection-v0", dataset=str(path), split=split).unwrapped
        assert env.num_tasks() == 1 and env.get_task(0).task_id == "t1"
    with pytest.raises(ValueError, match="split"):
        gym.make("drift/UserCorrection-v0", dataset=str(path), split="dev")
