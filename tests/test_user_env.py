"""drift/UserCorrection-v0: tasks, the simulated users, the env contract, the LLM user and its cache."""

from __future__ import annotations

import doctest
import json
import re
import socket
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.core import EpisodeFinishedError
from drift_envs.user import env as env_module
from drift_envs.user.constraints import CONSTRAINTS, IncludeKeywords, MaxWords, compatible, compose_reply
from drift_envs.user.env import UserCorrectionEnv
from drift_envs.user.simulator import VAGUE_PHRASES, LLMUser, ReplayCache, RuleBasedUser, UserTurn
from drift_envs.user.tasks import ProceduralUserTasks, TaskFileError, UserTask, UserTaskFile, write_jsonl

ENV_ID = "drift/UserCorrection-v0"

# A hand-made task: four hidden constraints, each fixed by one reply below, in the order the
# precise user names them.
SCRIPTED_TASK = {
    "task_id": "river",
    "request": "Describe a river in one sentence.",
    "constraints": [
        {"type": "max_words", "n": 12},
        {"type": "include_keywords", "words": ["river"]},
        {"type": "lowercase"},
        {"type": "ends_with", "phrase": "thanks!"},
    ],
}
SCRIPTED_REPLIES = [
    "The Mountain Stream Flows Quickly Through The Green Valley Toward The Distant Sea Tonight.",
    "The Stream Flows Through The Valley To The Sea.",  # now short enough
    "The River Flows Through The Valley To The Sea.",  # now says "river"
    "the river flows through the valley to the sea.",  # now lowercase
    "the river flows through the valley. thanks!",  # now ends right
]


def _play(env: gym.Env, seed: int, index: int, replies: list[str]) -> list[tuple]:
    obs, info = env.reset(seed=seed, options={"index": index})
    out = [(obs, info["task_id"])]
    for reply in replies:
        obs, reward, terminated, truncated, info = env.step(reply)
        out.append((obs, reward, terminated, truncated, info["failed_constraints"]))
        if terminated or truncated:
            break
    return out


# ---- the env contract ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"persona": "vague", "revealed": 1},
        {"persona": "terse", "corrections": "all", "num_constraints": 3},
    ],
)
def test_check_env_passes(kwargs: dict) -> None:
    env = gym.make(ENV_ID, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_id_resolves_without_import_and_docstring_example_runs() -> None:
    env = gym.make("drift_envs:" + ENV_ID)
    assert isinstance(env.unwrapped, UserCorrectionEnv)
    for section in (
        "## Description",
        "## Action Space",
        "## Observation Space",
        "## Rewards",
        "## Feedback",
        "## Episode End",
        "## Arguments",
        "## Example",
    ):
        assert section in UserCorrectionEnv.__doc__
    results = doctest.testmod(env_module, optionflags=doctest.ELLIPSIS)
    assert results.attempted >= 5 and results.failed == 0


def test_scripted_episode_fixes_one_violation_per_turn_and_succeeds_on_the_last_turn() -> None:
    env = gym.make(ENV_ID, dataset=[SCRIPTED_TASK], max_turns=5, persona="precise")
    obs, info = env.reset(seed=3, options={"task_id": "river"})
    assert obs == "Describe a river in one sentence."  # nothing revealed by default
    expected_failed = [
        [
            "max_words(n=12)",
            "include_keywords(words=['river'])",
            "lowercase()",
            "ends_with(phrase='thanks!')",
        ],
        ["include_keywords(words=['river'])", "lowercase()", "ends_with(phrase='thanks!')"],
        ["lowercase()", "ends_with(phrase='thanks!')"],
        ["ends_with(phrase='thanks!')"],
    ]
    for turn, reply in enumerate(SCRIPTED_REPLIES[:4], start=1):
        obs, reward, terminated, truncated, info = env.step(reply)
        assert (reward, terminated, truncated) == (0.0, False, False)
        assert info["failed_constraints"] == expected_failed[turn - 1]
        assert info["constraints_satisfied"] == pytest.approx((turn - 1) / 4)
        assert info["feedback"]["addressed"] == expected_failed[turn - 1][:1]
        assert obs == info["messages"][-1]["content"] and info["messages"][-1]["role"] == "user"
    # each correction was about the constraint the next reply fixes
    users = [m["content"] for m in info["messages"] if m["role"] == "user"][1:]
    assert re.search(r"\b12\b", users[0]) and "river" in users[1]
    assert "lowercase" in users[2].lower() or "capital" in users[2].lower()
    assert "thanks!" in users[3]
    obs, reward, terminated, truncated, info = env.step(SCRIPTED_REPLIES[4])
    assert (obs, reward, terminated, truncated) == ("", 1.0, True, False)
    assert info["turn"] == 5 and info["constraints_satisfied"] == 1.0 and info["failed_constraints"] == []
    with pytest.raises(EpisodeFinishedError):
        env.step("again")

    # one turn less and the same replies run out of budget
    short = gym.make(ENV_ID, dataset=[SCRIPTED_TASK], max_turns=4)
    steps = _play(short, 0, 0, SCRIPTED_REPLIES)
    assert len(steps) == 5 and steps[-1][1:4] == (0.0, False, True)


def test_a_policy_that_learns_from_precise_corrections_solves_every_task() -> None:
    """Replying with a witness of the checks named so far solves within num_constraints + 2 turns (the
    request check is one more: a witness of the preferences alone may not serve the request)."""
    env = UserCorrectionEnv(num_constraints=3, max_turns=5)
    for index in range(40):
        obs, info = env.reset(seed=index, options={"index": index})
        task = env.user_task(index)
        by_label = {c.label(): c for c in (*task.constraints, task.served)}
        known: list = []
        reply = "Here is my answer, written in my own way. Thank you 4 asking."
        for _ in range(5):
            obs, reward, terminated, truncated, info = env.step(reply)
            if terminated:
                break
            known += [by_label[label] for label in info["feedback"]["addressed"]]
            reply = compose_reply(known, task.meta["topic_words"])
        assert terminated and reward == 1.0, (task.request, [c.label() for c in task.constraints])


def test_info_fields_format_penalty_and_repeats() -> None:
    env = UserCorrectionEnv(dataset=[SCRIPTED_TASK], format_penalty=-0.25)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("  ... \n")
    assert reward == -0.25 and info["format_ok"] is False and info["answer"] is None
    assert info["feedback"]["failed"] and info["feedback"]["total"] == 4
    assert all(r["ok"] is False and r["detail"] == {"empty": True} for r in info["constraint_results"])
    obs, reward, *_, info = env.step("The  River\nflows.")
    assert reward == 0.0 and info["format_ok"] and info["answer"] == "The River flows."
    assert info["constraints_satisfied"] == pytest.approx(2 / 4) and info["repeated"] is False
    obs, reward, *_, info = env.step("The River flows.")
    assert info["repeated"] is True
    assert obs.startswith(("You sent the same answer", "That's the same reply"))
    json.dumps(info)  # everything in info is JSON-able


def test_revealed_constraints_are_stated_up_front() -> None:
    env = UserCorrectionEnv(num_constraints=3, revealed=2)
    obs, info = env.reset(seed=0, options={"index": 11})
    task = env.user_task(11)
    assert obs.startswith(task.request)
    assert all(c.describe() in obs for c in task.constraints[:2])
    assert task.constraints[2].describe() not in obs
    obs_all, _ = UserCorrectionEnv(num_constraints=3, revealed="all").reset(options={"index": 11})
    assert all(c.describe() in obs_all for c in task.constraints)
    # a file task's own count applies unless the env kwarg overrides it
    record = {**SCRIPTED_TASK, "revealed": 1}
    obs, _ = UserCorrectionEnv(dataset=[record]).reset(options={"index": 0})
    assert "at most 12 words" in obs and "river" not in obs.split("\n\n", 1)[1]
    obs, _ = UserCorrectionEnv(dataset=[record], revealed=0).reset(options={"index": 0})
    assert obs == record["request"]


# ---- seeding and determinism ---------------------------------------------------------------------


def test_same_seed_same_task_constraints_and_corrections() -> None:
    replies = ["Sure, here it is: 3 Things, All Good.", "", "short"]
    for persona in ("precise", "terse"):
        a = _play(gym.make(ENV_ID, persona=persona), 5, 17, replies)
        b = _play(gym.make(ENV_ID, persona=persona), 5, 17, replies)
        assert a == b
    first = [_play(gym.make(ENV_ID), seed, 17, replies)[1][0] for seed in range(12)]
    assert len(set(first)) > 1  # the phrasing is drawn from the seed, not fixed
    # without options the task index comes from the seed
    env = gym.make(ENV_ID)
    assert env.reset(seed=9)[1]["task_id"] == env.reset(seed=9)[1]["task_id"]


def test_procedural_tasks_are_pure_functions_of_seed_and_index() -> None:
    a, b = ProceduralUserTasks(seed=1), ProceduralUserTasks(seed=1)
    assert [a[i] for i in (0, 5, 999)] == [b[i] for i in (0, 5, 999)]
    assert a[5] != ProceduralUserTasks(seed=2)[5]
    assert a[3].task_id == "user-1-test-3"
    env = UserCorrectionEnv(seed=1)
    assert env.task_index("user-1-test-999") == 999
    with pytest.raises(KeyError, match="user-1-test-<index>"):
        env.task_index("user-2-test-3")
    with pytest.raises(KeyError, match="user-1-test-<index>"):
        env.task_index("user-1-train-3")  # a train id is not a test task
    with pytest.raises(IndexError):
        a[10_000]


def test_procedural_draws_are_varied_compatible_and_satisfiable() -> None:
    source = ProceduralUserTasks(seed=0, num_constraints=(2, 4))
    kinds, categories, sizes = set(), set(), set()
    for i in range(400):
        task = source[i]
        assert compatible(task.constraints), [c.label() for c in task.constraints]
        witness = compose_reply(task.constraints, task.meta["topic_words"])
        assert witness is not None and all(c.check(witness) for c in task.constraints)
        kinds |= {c.kind for c in task.constraints}
        categories.add(task.meta["category"])
        sizes.add(len(task.constraints))
    assert kinds == set(CONSTRAINTS) and categories == {"writing", "list", "answer", "summary"}
    assert sizes == {2, 3, 4}
    only = ProceduralUserTasks(num_constraints=2, constraint_kinds=["no_commas", "lowercase", "max_words"])
    assert {c.kind for i in range(50) for c in only[i].constraints} <= {"no_commas", "lowercase", "max_words"}
    easy = UserCorrectionEnv(constraint_kinds="easy", num_constraints=[2, 3])  # a JSON list works as a range
    drawn = {c.kind for i in range(100) for c in easy.user_task(i).constraints}
    assert drawn == {k for k, cls in CONSTRAINTS.items() if cls.difficulty == "easy"}
    with pytest.raises(ValueError, match="difficulty must be one of"):
        ProceduralUserTasks(constraint_kinds="trivial")
    with pytest.raises(ValueError, match="unknown constraint kinds"):
        ProceduralUserTasks(constraint_kinds=["nope"])
    with pytest.raises(ValueError, match="exceeds"):
        ProceduralUserTasks(num_constraints=3, constraint_kinds=["no_commas", "lowercase"])


def test_simple_replies_sometimes_succeed() -> None:
    """Easy constraints dominate the draw, so even a plain reply that names what the request is about
    solves some tasks; the same plain reply without it (filler that ignores the request) solves none."""
    env = UserCorrectionEnv()
    solved = ignored = 0
    for index in range(300):
        env.reset(options={"index": index})
        topic = env.task.meta["topic_words"][0]
        solved += env.step(f"the answer is short and simple: {topic}")[2]
        env.reset(options={"index": index})
        ignored += env.step("the answer is short and simple")[2]
    assert 0.05 < solved / 300 < 0.9
    assert ignored == 0


# ---- the simulated user --------------------------------------------------------------------------


def _turn(constraints, reply: str, turn: int = 1) -> UserTurn:
    return UserTurn(
        "t",
        "Say something.",
        tuple(constraints),
        tuple(c.evaluate(reply) for c in constraints),
        reply,
        turn,
        False,
    )


def test_vague_persona_never_leaks_which_constraint_failed() -> None:
    for corrections in ("first", "all"):
        env = UserCorrectionEnv(persona="vague", corrections=corrections, num_constraints=3)
        for index in range(60):
            env.reset(seed=index, options={"index": index})
            task = env.user_task(index)
            secrets = {str(v).casefold() for c in task.constraints for v in c.params().values()}
            secrets |= {
                w.casefold()
                for c in task.constraints
                for v in c.params().values()
                if isinstance(v, list)
                for w in v
            }
            for reply in ("An Answer, with 2 commas, here.", "x", "- a\n- b"):
                obs, _, terminated, truncated, info = env.step(reply)
                if terminated or truncated:
                    break
                assert obs in VAGUE_PHRASES
                assert info["feedback"]["addressed"] == [] and info["feedback"]["kind"] == "binary"
                assert not any(re.search(rf"\b{re.escape(s)}\b", obs.casefold()) for s in secrets if s), obs


def test_precise_all_addresses_every_failed_constraint() -> None:
    user = RuleBasedUser("precise", corrections="all")
    cs = [MaxWords(3), IncludeKeywords(("tide",)), CONSTRAINTS["no_commas"]()]
    fb = user.respond(_turn(cs, "one, two, three, four"), np.random.default_rng(0))
    assert fb.data["addressed"] == [c.label() for c in cs]
    assert fb.text.count("\n") == 3 and '"tide"' in fb.text and "3" in fb.text
    terse = RuleBasedUser("terse", corrections="all").respond(
        _turn(cs, "one, two, three, four"), np.random.default_rng(0)
    )
    assert len(terse.text) < len(fb.text) and terse.data["addressed"] == fb.data["addressed"]
    ok = user.respond(_turn(cs[:1], "fine"), np.random.default_rng(0))
    assert ok.kind == "success" and ok.data["addressed"] == []


def test_phrasings_vary_with_the_rng() -> None:
    user = RuleBasedUser("precise")
    texts = {
        user.respond(_turn([MaxWords(3)], "a b c d e"), np.random.default_rng(s)).text for s in range(40)
    }
    assert len(texts) >= 6
    assert all("3" in t for t in texts)


def test_bad_kwargs_are_rejected_with_the_options() -> None:
    with pytest.raises(ValueError, match="persona must be one of"):
        UserCorrectionEnv(persona="rude")
    with pytest.raises(ValueError, match="corrections must be one of"):
        UserCorrectionEnv(corrections="some")
    with pytest.raises(ValueError, match="revealed must be"):
        UserCorrectionEnv(revealed=-1)
    with pytest.raises(ValueError, match="user must be 'rules'"):
        UserCorrectionEnv(user="llm")
    with pytest.raises(ValueError, match="missing key 'model'"):
        UserCorrectionEnv(user={"base_url": "http://127.0.0.1:1/v1"})
    with pytest.raises(TypeError, match="as a str"):
        env = UserCorrectionEnv()
        env.reset(seed=0)
        env.step(None)  # type: ignore[arg-type]


# ---- task files ----------------------------------------------------------------------------------


def test_jsonl_round_trip(tmp_path: Path) -> None:
    tasks = [ProceduralUserTasks(seed=4, num_constraints=3)[i] for i in range(20)]
    path = write_jsonl(tasks, tmp_path / "tasks.jsonl")
    assert UserTaskFile(path=path).tasks == tasks
    env = gym.make(ENV_ID, dataset=str(path), max_tasks=10)
    assert env.unwrapped.num_tasks() == 10
    obs, info = env.reset(seed=0, options={"task_id": "user-4-test-7"})
    assert obs == tasks[7].request and info["index"] == 7


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"tasks\.jsonl:2: not valid JSON"),
        ('{"constraints": [{"type": "lowercase"}]}', r"tasks\.jsonl:2: missing field 'request'"),
        ('{"request": "x", "constraints": []}', r"tasks\.jsonl:2: field 'constraints' is empty"),
        (
            '{"request": "x", "constraints": "lowercase"}',
            r"tasks\.jsonl:2: field 'constraints' should be list",
        ),
        (
            '{"request": "x", "constraints": [{"type": "lowercase"}, {"type": "max_words", "n": -3}]}',
            r"tasks\.jsonl:2: field constraints\[1\]\.n: .*positive integer, got -3",
        ),
        (
            '{"request": "x", "constraints": [{"type": "lowercase"}, {"type": "uppercase"}]}',
            r"tasks\.jsonl:2: field 'constraints': constraints\[0\] lowercase\(\) and constraints\[1\] uppercase\(\)",
        ),
        (
            '{"request": "x", "constraints": [{"type": "lowercase"}], "revealed": "two"}',
            r"tasks\.jsonl:2: field 'revealed'",
        ),
        (
            '{"request": "x", "constraints": [{"type": "lowercase"}], "colour": 1}',
            r"tasks\.jsonl:2: unknown field 'colour'",
        ),
        (
            '{"task_id": "a", "request": "x", "constraints": [{"type": "lowercase"}]}',
            r"tasks\.jsonl:2: field 'task_id': duplicate id 'a' \(first at .*tasks\.jsonl:1\)",
        ),
    ],
)
def test_bad_task_lines_name_path_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text(
        '{"task_id": "a", "request": "ok", "constraints": [{"type": "no_commas"}]}\n' + line + "\n"
    )
    with pytest.raises(TaskFileError, match=message):
        UserCorrectionEnv(dataset=path)


def test_missing_or_empty_task_file(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=r"nope\.jsonl: no such file"):
        UserCorrectionEnv(dataset=tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(TaskFileError, match="no tasks"):
        UserCorrectionEnv(dataset=tmp_path / "empty.jsonl")
    with pytest.raises(TaskFileError, match=r"dataset record 1: missing field 'request'"):
        UserCorrectionEnv(dataset=[{"constraints": [{"type": "lowercase"}]}])
    assert UserCorrectionEnv(dataset=[UserTask("u", "hi", (MaxWords(3),))]).num_tasks() == 1


# ---- the LLM-backed user -------------------------------------------------------------------------


def test_replay_cache_file(tmp_path: Path) -> None:
    cache = ReplayCache(tmp_path / "c.jsonl")
    cache.put({"key": "k1", "text": "hello"})
    cache.put({"key": "k1", "text": "ignored: the first answer wins"})
    again = ReplayCache(tmp_path / "c.jsonl")
    assert len(again) == 1 and again.get("k1")["text"] == "hello"
    (tmp_path / "bad.jsonl").write_text('{"key": "k"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        ReplayCache(tmp_path / "bad.jsonl")


def test_llm_user_cache_key_depends_on_task_turn_and_reply() -> None:
    user = LLMUser(base_url="http://127.0.0.1:9/v1", model="m")
    base = _turn([MaxWords(3)], "a b c d")
    keys = {
        user.cache_key(base),
        user.cache_key(_turn([MaxWords(3)], "a b c d e")),
        user.cache_key(_turn([MaxWords(3)], "a b c d", turn=2)),
        user.cache_key(_turn([MaxWords(4)], "a b c d")),
    }
    assert len(keys) == 4 and user.cache_key(base) == user.cache_key(_turn([MaxWords(3)], "a b c d"))
    prompt = user.messages(base)[0]["content"]
    assert "Say something." in prompt and MaxWords(3).describe() in prompt


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens here once the socket is closed


def test_llm_user_against_a_real_server_then_replay_without_it(
    openai_server: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "user_replay.jsonl"
    # the tiny model is untrained: sampled at temperature 1 it writes noise, which is all we need
    config = {
        "base_url": openai_server,
        "model": str(tiny_model_dir),
        "cache": str(cache),
        "max_tokens": 12,
        "temperature": 1.0,
    }
    replies = ["The Sea, The Sea.", "the sea"]
    live = _play(gym.make(ENV_ID, dataset=[SCRIPTED_TASK], user=config, max_turns=3), 0, 0, replies)
    records = [json.loads(line) for line in cache.read_text().splitlines()]
    assert [r["turn"] for r in records] == [1, 2] and all(r["task_id"] == "river" for r in records)
    # the server's completions are the user's messages
    assert [live[1][0], live[2][0]] == [r["text"] for r in records] and all(r["text"] for r in records)
    env = gym.make(ENV_ID, dataset=[SCRIPTED_TASK], user=config, max_turns=3)
    env.reset(seed=0, options={"index": 0})
    _, _, _, _, info = env.step(replies[0])
    assert info["feedback"]["user"] == "llm" and info["feedback"]["cached"] is True
    assert "fallback" not in info["feedback"]

    # the same episode replays from the cache with no server at all
    offline = {**config, "base_url": _dead_url(), "replay_only": True}
    assert _play(gym.make(ENV_ID, dataset=[SCRIPTED_TASK], user=offline, max_turns=3), 0, 0, replies) == live
    # a reply the cache has never seen is an error in replay-only mode, and a connection error otherwise
    env = gym.make(ENV_ID, dataset=[SCRIPTED_TASK], user=offline, max_turns=3)
    env.reset(seed=0, options={"index": 0})
    with pytest.raises(KeyError, match="no cached answer for task 'river' turn 1"):
        env.step("Something New")
    env = gym.make(
        ENV_ID,
        dataset=[SCRIPTED_TASK],
        user={**offline, "replay_only": False, "timeout_s": 2, "max_retries": 0},
        max_turns=3,
    )
    env.reset(seed=0, options={"index": 0})
    with pytest.raises(Exception, match="(?i)connect"):
        env.step("Something New")

    # greedy decoding of the untrained model gives only line breaks: the rule-based text stands in
    greedy = {**config, "temperature": 0.0, "cache": str(tmp_path / "greedy.jsonl")}
    env = gym.make(ENV_ID, dataset=[SCRIPTED_TASK], user=greedy, max_turns=3)
    env.reset(seed=0, options={"index": 0})
    obs, _, _, _, info = env.step(replies[0])
    assert info["feedback"]["fallback"] is True and '"river"' in obs


def test_custom_user_object() -> None:
    class Echo:
        persona = "precise"

        def respond(self, turn: UserTurn, rng: np.random.Generator):
            from drift_envs.core import Feedback

            return Feedback(f"turn {turn.turn}: {len(turn.failed)} wrong", kind="custom")

    env = UserCorrectionEnv(dataset=[SCRIPTED_TASK], user=Echo())
    env.reset(seed=0)
    assert env.step("The Sea")[0] == "turn 1: 3 wrong"


# ---- task sources (issue 14.1) -------------------------------------------------------------------


def test_sources_are_registered_and_the_env_owns_only_the_common_kwargs(tmp_path: Path) -> None:
    from drift_envs.sources import make_source, registered_sources
    from drift_envs.user.tasks import ProceduralUserConfig

    assert {("user", "procedural"), ("user", "file")} <= set(registered_sources("user"))
    source = make_source("user", None, split="train", seed=3, max_tasks=50, num_constraints=[2, 3])
    assert isinstance(source, ProceduralUserTasks) and len(source) == 50
    assert source.config == ProceduralUserConfig(seed=3, split="train", max_tasks=50, num_constraints=(2, 3))
    env = UserCorrectionEnv(split="train", seed=3, max_tasks=50, num_constraints=(2, 3))
    assert env.source.config == source.config and env.num_tasks() == 50
    assert [env.get_task(i).prompt for i in range(5)] == [source[i].request for i in range(5)]
    # the source's own knobs can also come as source_options
    assert UserCorrectionEnv(source_options={"size": 7}).num_tasks() == 7
    # each id is built and parsed by the source alone
    for i in (0, 17, 49):
        assert source.index_of(source[i].task_id) == i == env.task_index(f"user-3-train-{i}")
    with pytest.raises(KeyError, match=r"user-3-train-<index>"):
        source.index_of("user-3-train-50")  # past max_tasks
    # a file source takes no generator knob, and says so
    path = write_jsonl([UserTask("t", "Say hi.", (MaxWords(3),))], tmp_path / "t.jsonl")
    with pytest.raises(ValueError, match=r"source 'file' takes no option\(s\) \['num_constraints'\]"):
        UserCorrectionEnv(dataset=str(path), num_constraints=3)
    assert UserCorrectionEnv(dataset=str(path)).num_tasks() == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_constraints": 0}, "num_constraints must be"),
        ({"num_constraints": (3, 2)}, "num_constraints must be"),
        ({"num_constraints": "2"}, "num_constraints must be"),
        ({"size": 0}, r"ProceduralUserConfig\.size"),
        ({"split": "dev"}, r"ProceduralUserConfig\.split must be one of \('train', 'test'\)"),
        ({"constraint_kinds": "trivial"}, "difficulty must be one of"),
        ({"colour": "red"}, r"takes no option\(s\) \['colour'\]"),
    ],
)
def test_procedural_config_validates(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProceduralUserTasks(**options)


def test_a_json_or_parquet_task_file_reads_like_jsonl(tmp_path: Path) -> None:
    tasks = [ProceduralUserTasks(seed=2)[i] for i in range(6)]
    records = [t.to_dict() for t in tasks]
    (tmp_path / "t.json").write_text(json.dumps({"data": records}))
    assert UserTaskFile(path=str(tmp_path / "t.json")).tasks == tasks
    datasets = pytest.importorskip("datasets")
    # parquet has one schema per column: every constraint spec carries the same keys there
    flat = [
        {"task_id": f"p{i}", "request": "Say hi.", "constraints": [{"type": "max_words", "n": 3 + i}]}
        for i in range(3)
    ]
    datasets.Dataset.from_list(flat).to_parquet(str(tmp_path / "t.parquet"))
    got = UserTaskFile(path=str(tmp_path / "t.parquet")).tasks
    assert [(t.task_id, t.constraints) for t in got] == [(f"p{i}", (MaxWords(3 + i),)) for i in range(3)]


def test_a_source_registered_outside_the_package_serves_the_env() -> None:
    """A third-party "user" source returning plain Tasks (constraint specs as the answer) just works."""
    from drift_envs.core import Task
    from drift_envs.sources import SOURCES, TaskSource, register_source

    @register_source("user", "two-greetings")
    class Greetings(TaskSource):
        def __len__(self) -> int:
            return self.limit(2)

        def make_task(self, index: int) -> Task:
            spec = [{"type": "include_keywords", "words": ["hello" if index == 0 else "goodbye"]}]
            return Task(self.task_id(index), "Greet me.", spec)

    try:
        env = gym.make(ENV_ID, dataset="two-greetings", split="train")
        obs, info = env.reset(options={"task_id": "two-greetings/0/train/1"})
        assert obs == "Greet me." and info["index"] == 1
        assert env.step("hello")[4]["failed_constraints"] == ["include_keywords(words=['goodbye'])"]
        assert env.step(env.unwrapped.oracle_reply())[1:3] == (1.0, True)
    finally:
        SOURCES.pop(("user", "two-greetings"))


# ---- the oracle (issue 14.2) ---------------------------------------------------------------------


def test_the_oracle_meets_every_constraint_of_every_task_in_both_splits() -> None:
    kinds: set[str] = set()
    for split in ("train", "test"):
        env = gym.make(ENV_ID, split=split, seed=1, num_constraints=(1, 4), max_turns=1).unwrapped
        for index in range(300):
            env.reset(options={"index": index})
            reply = env.oracle_reply()
            _, reward, terminated, _, info = env.step(reply)
            assert (reward, terminated) == (1.0, True), (index, reply, info["failed_constraints"])
            kinds |= {c["type"] for c in env.task.meta["constraints"]}
    assert kinds == set(CONSTRAINTS)
    # file tasks get an oracle too, and it holds on every turn of an episode
    env = UserCorrectionEnv(dataset=[SCRIPTED_TASK])
    env.reset(options={"index": 0})
    env.step("wrong")
    assert env.step(env.oracle_reply())[1:3] == (1.0, True)


def test_every_registered_kind_is_drawn_alone_and_its_oracle_satisfies_it() -> None:
    for kind in CONSTRAINTS:
        env = UserCorrectionEnv(constraint_kinds=[kind], num_constraints=1, max_tasks=30)
        drawn = set()
        for index in range(30):
            env.reset(options={"index": index})
            drawn |= {c.kind for c in env.task.constraints}
            assert env.step(env.oracle_reply())[1] == 1.0, (kind, index)
        assert drawn == {kind}


# ---- explicit data between hooks (issue 14.4) ----------------------------------------------------


def test_verify_hands_the_reply_and_checks_to_make_feedback_through_the_verdict() -> None:
    env = UserCorrectionEnv(dataset=[SCRIPTED_TASK], persona="precise", corrections="all")
    env.reset(seed=0, options={"index": 0})
    task = env.task
    long, fixed = SCRIPTED_REPLIES[0], SCRIPTED_REPLIES[4]
    v_long, v_fixed = env.verify(task, long), env.verify(task, fixed)  # two checks before any feedback
    assert v_long.evidence.reply == long and len(v_long.evidence.checks) == 4
    assert [c.ok for c in v_fixed.evidence.checks] == [True] * 4
    # the feedback follows the verdict it is given, not the last reply checked
    feedback = env.make_feedback(task, v_long, turn=1, repeated=False)
    assert feedback.kind == "correction" and len(feedback.data["addressed"]) == 4 and "12" in feedback.text
    assert env.make_feedback(task, v_fixed, turn=1, repeated=False).kind == "success"
    assert not any(name.startswith("_last") for name in vars(env))


def test_replay_cache_must_be_jsonl_and_bad_records_name_file_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"name it \*\.jsonl"):
        ReplayCache(tmp_path / "cache.txt")
    (tmp_path / "c.jsonl").write_text('{"key": "k1", "text": ""}\n{"key": "k2", "text": 3}\n')
    with pytest.raises(TaskFileError, match=r"c\.jsonl:2: field 'text' should be str"):
        ReplayCache(tmp_path / "c.jsonl")
    (tmp_path / "d.jsonl").write_text('{"key": "k1", "text": ""}\n\n{"text": "x"}\n')
    with pytest.raises(TaskFileError, match=r"d\.jsonl:3: missing field 'key'"):
        ReplayCache(tmp_path / "d.jsonl")
