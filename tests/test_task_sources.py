"""One task-source type: a source made outside the package plugs into the envs with one registration
line; sources are pure functions of (seed, split, index); ids round-trip; wrong names and options are
refused clearly; and every env's oracle solves every kind of task on the first turn."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.core import Task
from drift_envs.sources import (
    DIFFICULTY_PRESETS,
    DataError,
    ProceduralMath,
    SourceConfig,
    TaskSource,
    make_source,
    register_source,
    registered_sources,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
MATH = "drift/MathFeedback-v0"


# ---- a source defined outside the package: one class, one registration line ----------------------


@dataclass(frozen=True)
class CubesConfig(SourceConfig):
    size: int = 50


@register_source("math", "test-cubes")
class Cubes(TaskSource):
    config_class = CubesConfig

    def __len__(self) -> int:
        return self.limit(self.config.size)

    def make_task(self, index: int) -> Task:
        n = index + 2 + (500 if self.config.split == "train" else 0) + 1000 * self.config.seed
        return Task(self.task_id(index), f"Compute {n}^3.", str(n**3))


def test_an_outside_source_is_used_through_gym_make() -> None:
    assert ("math", "test-cubes") in registered_sources("math")
    env = gym.make(MATH, dataset="test-cubes", split="train", source_options={"size": 7}).unwrapped
    assert env.num_tasks() == 7
    obs, info = env.reset(options={"index": 3})
    assert obs.startswith("Compute 505^3.") and info["task_id"] == "test-cubes/0/train/3"
    assert env.step(f"\\boxed{{{505**3}}}")[1:3] == (1.0, True)
    # the base env owns seed, split and max_tasks and hands them to the source
    env = gym.make(MATH, dataset="test-cubes", seed=2, max_tasks=4).unwrapped
    assert env.num_tasks() == 4 and env.get_task(0).prompt == "Compute 2002^3."


def test_outside_source_determinism_index_of_and_task_id_option() -> None:
    a, b = make_source("math", "test-cubes", split="test"), make_source("math", "test-cubes", split="test")
    assert [a[i] for i in range(len(a))] == [b[i] for i in range(len(b))]
    train = make_source("math", "test-cubes", split="train")
    assert {t.prompt for t in a}.isdisjoint(t.prompt for t in train)
    assert all(a.index_of(a[i].task_id) == i for i in range(len(a)))
    with pytest.raises(KeyError, match="no task with task_id"):
        a.index_of(train[0].task_id)
    env = gym.make(MATH, dataset="test-cubes").unwrapped
    obs, info = env.reset(options={"task_id": "test-cubes/0/test/9"})
    assert info["index"] == 9 and obs.startswith("Compute 11^3.")


def test_the_contributing_example_runs_as_its_own_module(tmp_path: Path) -> None:
    """The CONTRIBUTING.md section's code, saved as a file outside the package, is a working source."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text[text.index("A new task source is one file and one registration line") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    (tmp_path / "my_squares.py").write_text(code)
    script = (
        "import gymnasium as gym, drift_envs, my_squares\n"
        "env = gym.make('drift/MathFeedback-v0', dataset='squares', split='train').unwrapped\n"
        "obs, info = env.reset(options={'index': 4})\n"
        "_, reward, terminated, _, _ = env.step(env.oracle_reply())\n"
        "print(env.num_tasks(), info['task_id'], obs.splitlines()[0], reward, terminated)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["100", "squares/0/train/4", "Compute", "1005^2.", "1.0", "True"]


# ---- procedural math: a pure function of (seed, split, index), ids as before ----------------------


def test_procedural_math_is_a_pure_function_of_seed_split_and_index() -> None:
    a = ProceduralMath(split="train", seed=3, difficulty="hard")
    b = make_source("math", None, split="train", seed=3, difficulty="hard")
    order = [17, 2, 99, 2, 0]  # any order of access gives the same tasks
    assert [a[i] for i in order] == [b[i] for i in reversed(order)][::-1]
    test = ProceduralMath(split="test", seed=3, difficulty="hard")
    other_seed = ProceduralMath(split="train", seed=4, difficulty="hard")
    assert [a[i].prompt for i in range(50)] != [test[i].prompt for i in range(50)]
    assert [a[i].prompt for i in range(50)] != [other_seed[i].prompt for i in range(50)]


def test_procedural_math_ids_keep_their_form_and_round_trip() -> None:
    env = gym.make(MATH).unwrapped
    obs, info = env.reset(options={"index": 5})
    assert info["task_id"] == "procedural-math/0/test/5"
    assert env.task_index("procedural-math/0/test/5") == 5
    assert env.reset(options={"task_id": "procedural-math/0/test/5"}) == (obs, info)
    source = ProceduralMath(split="train", seed=7, max_tasks=300)
    assert all(source.index_of(source[i].task_id) == i for i in range(0, 300, 7))
    for wrong in ("procedural-math/0/train/5", "procedural-math/7/test/5", "procedural-math/7/train/300"):
        with pytest.raises(KeyError, match=r"procedural-math/7/train/<index>"):
            source.index_of(wrong)
    with pytest.raises(KeyError):
        source.index_of("procedural-math/7/train/05")  # not an id this source writes


def test_procedural_math_difficulty_presets_and_knobs() -> None:
    easy = ProceduralMath(difficulty="easy")
    assert easy.config.max_value == 9 and easy.config.operators == "+-"
    mine = ProceduralMath(difficulty="easy", max_value=3)  # an explicit knob overrides the preset
    assert mine.config.max_value == 3 and mine.config.operators == "+-"
    env = gym.make(MATH, difficulty={"kinds": ["linear"]}, source_options={"max_value": 4}).unwrapped
    assert env.source.config.kinds == ("linear",) and env.source.config.max_value == 4
    with pytest.raises(ValueError, match="difficulty must be one of"):
        ProceduralMath(difficulty="impossible")
    with pytest.raises(ValueError, match="max_value"):
        ProceduralMath(min_value=5, max_value=2)


# ---- names and options that do not fit are refused, saying what would --------------------------------


def test_an_unknown_dataset_name_lists_the_registered_sources() -> None:
    with pytest.raises(
        ValueError, match=r"no 'math' task source named 'squaress' \(registered: .*test-cubes"
    ):
        gym.make(MATH, dataset="squaress")


def test_an_option_of_another_source_is_refused() -> None:
    with pytest.raises(ValueError, match=r"source 'procedural' takes no option\(s\) \['schema'\]"):
        gym.make(MATH, schema="gsm8k")
    path = SHARED_DATA / "gsm8k_test.jsonl"
    with pytest.raises(ValueError, match=r"source 'file' takes no option\(s\) \['difficulty'\]"):
        gym.make(MATH, dataset=str(path), difficulty="easy")
    with pytest.raises(ValueError, match=r"source 'test-cubes' takes no option\(s\) \['max_value'\]"):
        gym.make(MATH, dataset="test-cubes", source_options={"max_value": 3})
    with pytest.raises(ValueError, match="procedural math split must be one of"):
        gym.make(MATH, split="validation")


def test_a_bad_row_of_a_local_file_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [{"problem": "1+1?", "answer": "2"}, {"problem": "2+2?", "answer": "4"}, {"problem": "3+3?"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"mine\.jsonl:3: missing field 'answer'"):
        gym.make(MATH, dataset=str(path), schema="generic")
    env = gym.make(MATH, dataset=str(path), schema="generic", max_tasks=2).unwrapped  # row 3 not kept
    assert env.num_tasks() == 2 and env.task_index("mine/test/1") == 1


# ---- oracles: reward 1.0 on the first turn, for every kind of task ---------------------------------


def _oracle_episodes(env_id: str, **kwargs) -> tuple[int, list[str]]:
    """Play one oracle turn on every task; the number played and the ids of those not solved."""
    env = gym.make(env_id, max_turns=1, **kwargs).unwrapped
    failed = []
    for i in range(env.num_tasks()):
        env.reset(options={"index": i})
        _, reward, terminated, _, _ = env.step(env.oracle_reply())
        if (reward, terminated) != (1.0, True):
            failed.append(env.task.task_id)
    return env.num_tasks(), failed


@pytest.mark.parametrize("answer_format", ["auto", "tag"])
@pytest.mark.parametrize("difficulty", sorted(DIFFICULTY_PRESETS))
def test_math_oracle_solves_every_procedural_preset(difficulty: str, answer_format: str) -> None:
    for split in ("train", "test"):
        n, failed = _oracle_episodes(
            MATH, difficulty=difficulty, split=split, answer_format=answer_format, max_tasks=150
        )
        assert n == 150 and failed == []


@pytest.mark.parametrize("answer_format", ["boxed", "tag"])
@pytest.mark.parametrize("name", ["gsm8k_test.jsonl", "math500.jsonl"])
def test_math_oracle_solves_every_gsm8k_and_math500_task(name: str, answer_format: str) -> None:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not found (shared benchmark data is absent)")
    n, failed = _oracle_episodes(MATH, dataset=str(path), answer_format=answer_format)
    assert n in (1319, 500) and failed == []


def test_math_oracle_reply_is_in_the_envs_format() -> None:
    boxed = gym.make(MATH).unwrapped
    boxed.reset(options={"index": 1})
    assert boxed.oracle_reply() == "\\boxed{7}"
    tag = gym.make(MATH, answer_format="tag").unwrapped
    tag.reset(options={"index": 1})
    assert tag.oracle_reply() == "<answer>7</answer>"


# ---- code: the same source type ---------------------------------------------------------------------

CODE = "drift/CodeFeedback-v0"


def test_code_sources_are_registered_and_their_ids_round_trip() -> None:
    from drift_envs.code.sources import ProceduralCode

    assert {n for _, n in registered_sources("code")} >= {"procedural", "humaneval", "mbpp", "file"}
    a = ProceduralCode(split="train", seed=5, size=200)
    assert [a[i] for i in (3, 150, 3)] == [
        ProceduralCode(split="train", seed=5, size=200)[i] for i in (3, 150, 3)
    ]
    assert all(a.index_of(a[i].task_id) == i for i in range(200))
    assert a[7].task_id == "proc-code/5/train/7"
    with pytest.raises(KeyError, match=r"proc-code/5/train/<index>"):
        a.index_of("proc-code/5/test/7")
    env = gym.make(CODE, split="train", seed=5).unwrapped
    obs, info = env.reset(options={"task_id": "proc-code/5/train/7"})
    assert info["index"] == 7 and obs.startswith(a[7].prompt)
    he = gym.make(CODE, dataset="humaneval", max_tasks=20).unwrapped
    assert he.num_tasks() == 20 and he.task_index("HumanEval/13") == 13


def test_code_options_of_another_source_and_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"source 'humaneval' takes no option\(s\) \['num_tests'\]"):
        gym.make(CODE, dataset="humaneval", num_tests=3)
    with pytest.raises(ValueError, match=r"source 'procedural' takes no option\(s\) \['schema'\]"):
        gym.make(CODE, schema="mbpp")
    with pytest.raises(ValueError, match=r"no 'code' task source named 'humanevl' \(registered: .*humaneval"):
        gym.make(CODE, dataset="humanevl")
    with pytest.raises(ValueError, match="procedural code split must be one of"):
        gym.make(CODE, split="validation")
    env = gym.make(CODE, source_options={"families": ["is_even"]}).unwrapped
    assert {env.get_task(i).meta["entry_point"] for i in range(20)} == {"is_even"}


def test_a_bad_row_of_a_local_code_file_names_file_line_and_field(tmp_path: Path) -> None:
    good = {
        "task_id": 1,
        "text": "Return one.",
        "code": "def one():\n    return 1",
        "test_list": ["assert one() == 1"],
    }
    path = tmp_path / "tasks.jsonl"
    path.write_text(
        json.dumps(good) + "\n" + json.dumps({**good, "task_id": 2, "test_list": "assert 1"}) + "\n"
    )
    with pytest.raises(DataError, match=r"tasks\.jsonl:2: field 'test_list' should be list"):
        gym.make(CODE, dataset=str(path))
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(DataError, match=r"tasks\.jsonl:2: duplicate task id 'mbpp/1'"):
        gym.make(CODE, dataset=str(path))


def test_code_oracle_solves_every_procedural_family_in_both_splits() -> None:
    from drift_envs.code.sources import PROCEDURAL_FAMILIES

    families = set()
    for split in ("train", "test"):
        n, failed = _oracle_episodes(CODE, split=split, max_tasks=60)
        assert n == 60 and failed == []
        env = gym.make(CODE, split=split).unwrapped
        families |= {env.get_task(i).meta["family"] for i in range(60)}
    assert families == set(PROCEDURAL_FAMILIES)


def test_code_oracle_solves_a_sample_of_humaneval_and_mbpp() -> None:
    env = gym.make(CODE, dataset="humaneval", max_turns=1, timeout_s=10.0).unwrapped
    for i in range(0, 164, 9):
        env.reset(options={"index": i})
        assert env.oracle_reply().startswith("```python\n" + env.task.prompt.rstrip())
        assert env.step(env.oracle_reply())[1:3] == (1.0, True), env.task.task_id
    mbpp = SHARED_DATA / "mbpp.jsonl"
    sanitized = SHARED_DATA / "mbpp_sanitized.json"
    if not mbpp.exists():
        pytest.skip(f"{mbpp} not found (shared benchmark data is absent)")
    slow = set(json.loads((ROOT / "tests" / "data" / "mbpp_exceptions.json").read_text()))
    # the mbpp source splits a local copy of the whole set by its official task-id ranges
    for split, ids in (("train", range(601, 975)), ("test", range(11, 511)), ("prompt", range(1, 11))):
        env = gym.make(
            CODE, dataset="mbpp", split=split, source_options={"path": str(mbpp)}, max_turns=1
        ).unwrapped
        assert [env.get_task(i).task_id for i in range(env.num_tasks())] == [f"mbpp/{k}" for k in ids]
        for i in range(0, env.num_tasks(), 23):
            env.reset(options={"index": i})
            if env.task.task_id not in slow:
                assert env.step(env.oracle_reply())[1:3] == (1.0, True), env.task.task_id
    env = gym.make(CODE, dataset=str(sanitized), max_turns=1).unwrapped  # a file: used whole
    assert env.num_tasks() == 427
    for i in range(0, 427, 41):
        env.reset(options={"index": i})
        if env.task.task_id not in slow:
            assert env.step(env.oracle_reply())[1:3] == (1.0, True), env.task.task_id


def test_code_feedback_reads_the_verdicts_evidence_not_env_state() -> None:
    """make_feedback words the sandbox result the verdict carries: two verdicts, fed in either order."""
    env = gym.make(CODE).unwrapped
    env.reset(options={"index": 0})
    task = env.task
    wrong = env.verify(task, "```python\ndef is_even(x):\n    return x % 2\n```")
    right = env.verify(task, env.oracle_reply())
    assert not hasattr(env, "_last_result")
    assert env.make_feedback(task, wrong, turn=1, repeated=False).text.startswith(
        "Your code failed 3 of the 3 tests shown. A hidden test decides too."
    )
    assert env.make_feedback(task, right, turn=1, repeated=False).text == "All tests passed."
    assert env.make_feedback(task, wrong, turn=1, repeated=False).kind == "first_failure"
