"""The contract every ``drift/*`` env keeps (docs/design.md): every observation is valid UTF-8 within
the observation space, and ``gym.make_vec`` works in sync and async modes (real subprocesses).

One case per registered id (``drift_envs.ENV_IDS``): an env module that fails to import fails its case,
the ecosystem envs' optional packages included (reasoning_gym and textarena are installed wherever the
suite runs); the built-in task sources register like a third party's.
"""

from __future__ import annotations

import importlib
import json

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import drift_envs
from drift_envs.core import Feedback, MultiTurnTextEnv, SharedTexts, Task, UnicodeText, Verdict, valid_text

# small, fast settings per id; ids whose package is missing skip
ENV_KWARGS: dict[str, dict] = {
    "drift/MathFeedback-v0": {"feedback": "hint"},
    "drift/CodeFeedback-v0": {},
    "drift/UserCorrection-v0": {},
    "drift/ToolUse-v0": {},
    "drift/ReasoningGym-v0": {"feedback": "hint"},
    "drift/TextArena-v0": {"game": "GuessTheNumber-v0"},
    "drift/MultipleChoice-v0": {},
}
# envs that pass every kwarg that is not theirs nor shared on to the package they wrap
PASSES_ON = {"drift/ReasoningGym-v0", "drift/TextArena-v0"}
LONE = "\ud800"
# a reply that reaches every env's answer reader and carries lone surrogates and more text than fits
HOSTILE_REPLY = (
    f"{LONE} \\boxed{{7{LONE}}} <answer>7{LONE}</answer> [7] Answer: 7{LONE}\n"
    + "filler " * 12_000
    + f"\n```python\ndef f(x):\n    raise ValueError('{LONE}' * 3)\n```\n{LONE}"
)


def test_every_registered_id_is_covered():
    assert set(ENV_KWARGS) == set(drift_envs.ENV_IDS)


@pytest.mark.parametrize("env_id", sorted(drift_envs.ENV_IDS))
def test_every_env_module_imports_and_its_class_is_a_multi_turn_text_env(env_id):
    """An import error of an env module (or of its optional package) fails here, never skips."""
    module, name = drift_envs.ENV_IDS[env_id].split(":")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, MultiTurnTextEnv)
    assert gym.spec(env_id).entry_point == drift_envs.ENV_IDS[env_id]


@pytest.mark.parametrize("env_id", sorted(drift_envs.ENV_IDS))
def test_every_env_takes_the_shared_kwargs_once_and_names_an_unknown_one(env_id):
    """The base class owns the shared kwargs (EnvOptions): an env declares none of them itself, takes
    every one through gym.make, and refuses an unknown kwarg with a TypeError naming it and the env."""
    from drift_envs.core import EnvOptions

    module, name = drift_envs.ENV_IDS[env_id].split(":")
    cls = getattr(importlib.import_module(module), name)
    assert not set(cls.own_kwargs()) & set(EnvOptions.names())
    env = gym.make(env_id, **ENV_KWARGS[env_id], max_turns=2, max_text_length=5000, format_penalty=-0.5)
    assert (env.unwrapped.max_turns, env.unwrapped.format_penalty) == (2, -0.5)
    assert env.observation_space.max_length == 5000 and env.unwrapped.options.max_turns == 2
    env.close()
    if env_id in PASSES_ON:
        return  # any other kwarg is the reasoning-gym task's config field / the TextArena game's own
    with pytest.raises(TypeError, match=rf"{cls.__name__} got an unexpected keyword argument 'bogus_kwarg'"):
        gym.make(env_id, bogus_kwarg=1)


def test_the_builtin_sources_register_lazily_through_register_source():
    """``import drift_envs`` registers every built-in source with register_source's lazy
    ``"module:class"`` form; each resolves to the class its module registers under the same name."""
    from drift_envs.registration import BUILTIN_SOURCES
    from drift_envs.sources import SOURCES, register_source, registered_sources, source_factory

    assert set(BUILTIN_SOURCES) <= set(registered_sources())
    for (kind, name), target in BUILTIN_SOURCES.items():
        factory = source_factory(kind, name)
        assert f"{factory.__module__}:{factory.__qualname__}" == target
        assert SOURCES[(kind, name)] is factory and (factory.kind, factory.name) == (kind, name)
        register_source(kind, name, target)  # registering the same again is a no-op
        assert SOURCES[(kind, name)] is factory
    with pytest.raises(ValueError, match="already registered"):
        register_source("math", "procedural", "drift_envs.math.sources:FileMathSource")
    with pytest.raises(ValueError, match="'module:attribute'"):
        register_source("math", "lazy-typo", "drift_envs.math.sources.FileMathSource")


def _utf8(value) -> None:
    """Raise when ``value`` (an observation or info) cannot be written as UTF-8 JSON."""
    json.dumps(value, ensure_ascii=False, default=repr).encode("utf-8")


def _replies(env) -> list[str]:
    """Two replies for the current episode: a wrong one, then the oracle's (or a plain guess)."""
    return [
        "I think it is \\boxed{3} <answer>3</answer> [3] Answer: 3",
        env.unwrapped.oracle_reply() or "[4]",
    ]


@pytest.mark.parametrize("env_id", sorted(ENV_KWARGS))
def test_make_vec_sync_and_async_give_what_the_single_env_gives(env_id):
    """Both vector modes (async: real subprocesses, shared memory on and off) return the very
    observations, rewards and flags of two plain envs stepped by hand (async used to return 65,536
    '0' characters per observation)."""
    kwargs = ENV_KWARGS[env_id]
    singles = [gym.make(env_id, **kwargs) for _ in range(2)]
    expected_obs = [e.reset(seed=i)[0] for i, e in enumerate(singles)]
    replies = [[_replies(e)[0] for e in singles]]
    steps = [[e.step(a) for e, a in zip(singles, replies[0], strict=True)]]
    alive = [not (s[2] or s[3]) for s in steps[0]]
    if all(alive):  # a second step with each env's oracle reply
        replies.append([_replies(e)[1] for e in singles])
        steps.append([e.step(a) for e, a in zip(singles, replies[1], strict=True)])
    for e in singles:
        e.close()

    for mode, vector_kwargs in (("sync", {}), ("async", {}), ("async", {"shared_memory": False})):
        env = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode, vector_kwargs=vector_kwargs, **kwargs)
        try:
            obs, _ = env.reset(seed=0)
            assert list(obs) == expected_obs, (mode, vector_kwargs)
            for actions, want in zip(replies, steps, strict=True):
                obs, rewards, terminated, truncated, _ = env.step(tuple(actions))
                assert list(obs) == [w[0] for w in want], (mode, vector_kwargs)
                assert list(rewards) == [w[1] for w in want]
                assert list(terminated) == [w[2] for w in want]
                assert list(truncated) == [w[3] for w in want]
                assert all(env.single_observation_space.contains(o) for o in obs)
        finally:
            env.close()


@pytest.mark.parametrize("env_id", sorted(ENV_KWARGS))
def test_every_observation_is_valid_utf8_within_the_space(env_id):
    """A reply full of lone surrogates and longer than the space still gets observations and info
    that are valid UTF-8 and members of the observation space."""
    env = gym.make(env_id, **ENV_KWARGS[env_id])
    space = env.observation_space
    obs, info = env.reset(seed=0)
    assert space.contains(obs)
    _utf8(info)
    for _ in range(2):
        obs, _, terminated, truncated, info = env.step(HOSTILE_REPLY)
        assert space.contains(obs), (len(obs), obs[:200])
        _utf8(obs)
        _utf8(info)
        for message in info["messages"]:
            if message["role"] != "assistant":
                assert space.contains(message["content"])
        if terminated or truncated:
            break
    env.close()


def test_tool_results_over_the_limit_are_cut_with_a_marker():
    """ToolUse once answered eight calls with huge ids by a 97,683-character observation (over
    max_text_length=65536) that also carried the ids' lone surrogates."""
    env = gym.make("drift/ToolUse-v0", domains=["bank"])
    env.reset(seed=0, options={"index": 0})
    big = "ACC-" + "9" * 12_000 + LONE
    call = json.dumps({"name": "get_balance", "arguments": {"account_id": big}})
    obs, *_, info = env.step(f"<tool_call>{call}</tool_call>" * 8)
    assert len(obs) == 65536 and env.observation_space.contains(obs)
    assert "characters cut" in obs[-120:]
    assert LONE not in obs
    for message in info["messages"]:
        _utf8(message)
        if message["role"] == "tool":
            assert env.observation_space.contains(message["content"])


def test_unicode_text_contains_rejects_lone_surrogates_and_overlength():
    space = UnicodeText(10)
    assert space.contains("héllo 🙂")
    assert not space.contains("ab" + LONE)
    assert not space.contains("\udfff")
    assert not space.contains("x" * 11)
    assert not space.contains(b"bytes")


def test_valid_text_replaces_lone_surrogates_and_cuts_visibly():
    assert valid_text("ok") == "ok"
    assert valid_text("a" + LONE + "b") == "a\ufffdb"
    assert valid_text("\ud83d\ude42") == "🙂"  # a pair spelled as two code points is the character
    cut = valid_text("x" * 1000, 200)
    assert len(cut) == 200 and cut.startswith("x" * 50)
    assert "800 more characters cut" in cut or "characters cut" in cut
    assert valid_text("x" * 200, 200) == "x" * 200
    assert len(valid_text("y" * 50, 5)) == 5


class _EchoEnv(MultiTurnTextEnv):
    """A minimal env whose feedback echoes the reply 20 times (and its first message holds a lone
    surrogate): the base class alone must keep the contract."""

    def num_tasks(self) -> int:
        return 1

    def get_task(self, index: int) -> Task:
        return Task("echo-0", "say something " + LONE, "ok")

    def first_message(self, task: Task) -> str:
        return task.prompt

    def verify(self, task: Task, action: str) -> Verdict:
        return Verdict(action == "ok", True, action, info={"echo": [action, {"nested": action}]})

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        return Feedback(verdict.answer * 20, "echo")


def test_the_base_class_makes_every_observation_valid():
    env = _EchoEnv(max_text_length=300, max_turns=3)
    check_env(env)  # gymnasium's own checker, with a space that rejects invalid text
    obs, info = env.reset(seed=0)
    assert obs == "say something \ufffd" and env.observation_space.contains(obs)
    obs, _, _, _, info = env.step("boom boom boom " + LONE)
    assert env.observation_space.contains(obs) and len(obs) == 300 and "characters cut" in obs
    _utf8(info)
    assert info["echo"][1]["nested"] == "boom boom boom \ufffd"
    assert info["feedback"]["text"] == obs
    assert [m["content"] for m in info["messages"]][-2:] == ["boom boom boom \ufffd", obs]


def test_shared_texts_is_a_live_view_and_deepcopies_to_a_tuple():
    import copy
    import multiprocessing as mp

    from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

    space = UnicodeText(16)
    buffer = create_shared_memory(space, n=2, ctx=mp)
    view = read_from_shared_memory(space, buffer, n=2)
    assert isinstance(view, SharedTexts) and tuple(view) == ("", "")
    write_to_shared_memory(space, 1, "héllo 🙂 中文", buffer)
    write_to_shared_memory(space, 0, "x" * 16, buffer)
    assert copy.deepcopy(view) == ("x" * 16, "héllo 🙂 中文")
    write_to_shared_memory(space, 1, "", buffer)
    assert view[1] == ""
    with pytest.raises(ValueError, match="max_length 16"):
        write_to_shared_memory(space, 0, "y" * 17, buffer)


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [*sorted(ENV_KWARGS.items()), ("drift/ToolUse-v0", {"tools_in_prompt": True, "system_prompt": ""})],
)
def test_a_reset_replays_its_task_whatever_came_before(env_id, kwargs):
    """``reset(options={"index": i})`` gives the same first observation and conversation in a fresh env
    and after another episode (ToolUse with ``tools_in_prompt`` and an empty system prompt used to leave
    its first episode without the tool listing that every later one had)."""
    fresh = gym.make(env_id, **kwargs)
    want = fresh.reset(seed=1, options={"index": 1})
    fresh.close()
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0, options={"index": 0})
    env.step(_replies(env)[0])
    got = env.reset(seed=1, options={"index": 1})
    env.close()
    assert json.dumps(got, default=repr) == json.dumps(want, default=repr)
