"""Registers the ``drift/*`` ids with Gymnasium and the built-in task sources with
:func:`drift_envs.sources.register_source`, the call a third-party source makes too.

Gymnasium imports ``drift_envs`` for ids spelled ``"drift_envs:drift/MathFeedback-v0"``, which runs
this registration, so those work without an explicit import.
"""

from __future__ import annotations

import gymnasium as gym

# id -> entry point; every env takes only keyword arguments (see each class's docstring)
ENV_IDS: dict[str, str] = {
    "drift/MathFeedback-v0": "drift_envs.math.env:MathFeedbackEnv",
    "drift/CodeFeedback-v0": "drift_envs.code.env:CodeFeedbackEnv",
    "drift/UserCorrection-v0": "drift_envs.user.env:UserCorrectionEnv",
    "drift/ToolUse-v0": "drift_envs.tool.env:ToolUseEnv",
    "drift/ReasoningGym-v0": "drift_envs.ecosystem.reasoning_gym:ReasoningGymEnv",
    "drift/TextArena-v0": "drift_envs.ecosystem.textarena:TextArenaEnv",
    "drift/MultipleChoice-v0": "drift_envs.choice.env:MultipleChoiceEnv",
}

REMOTE_ENV_ID = "drift/Remote-v0"  # drift_envs.remote:RemoteEnv, registered by register_envs too


def register_envs() -> None:
    """Register every ``drift/*`` id once (calling it again is a no-op)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        # The turn budget lives in the env (kwarg max_turns), not in a TimeLimit wrapper, so that
        # truncation and the conversation bookkeeping stay in one place.
        gym.register(id=env_id, entry_point=entry_point, disable_env_checker=False)
    # an env served elsewhere (drift serve-env), played here: not one of the suite's envs (ENV_IDS), whose
    # contract tests run without a server; tests/test_remote_env.py holds it to the contract
    if REMOTE_ENV_ID not in gym.registry:
        gym.register(id=REMOTE_ENV_ID, entry_point="drift_envs.remote:RemoteEnv", disable_env_checker=False)


#: (kind, name) -> ``"module:class"`` of every built-in task source: registered lazily (the module is
#: imported when the source is first made), so ``import drift_envs`` stays light
BUILTIN_SOURCES: dict[tuple[str, str], str] = {
    ("math", "procedural"): "drift_envs.sources.procedural_math:ProceduralMath",
    ("math", "file"): "drift_envs.math.sources:FileMathSource",
    ("code", "procedural"): "drift_envs.code.sources:ProceduralCode",
    ("code", "humaneval"): "drift_envs.code.sources:HumanEvalSource",
    ("code", "mbpp"): "drift_envs.code.sources:MbppSource",
    ("code", "file"): "drift_envs.code.sources:FileCodeSource",
    ("user", "procedural"): "drift_envs.user.tasks:ProceduralUserTasks",
    ("user", "file"): "drift_envs.user.tasks:UserTaskFile",
    ("tool", "procedural"): "drift_envs.tool.tasks:ProceduralToolTasks",
    ("tool", "file"): "drift_envs.tool.mtu:MTUBenchTasks",
    ("choice", "procedural"): "drift_envs.choice.sources:ProceduralChoice",
    ("choice", "file"): "drift_envs.choice.sources:ChoiceFile",
    ("reasoning_gym", "procedural"): "drift_envs.ecosystem.reasoning_gym:ReasoningGymSource",
    ("textarena", "procedural"): "drift_envs.ecosystem.textarena:GameSeeds",
}


def register_builtin_sources() -> None:
    """Register every built-in task source through :func:`~drift_envs.sources.register_source` with a
    lazy ``"module:class"`` factory (calling it again is a no-op)."""
    from drift_envs.sources.base import register_source

    for (kind, name), target in BUILTIN_SOURCES.items():
        register_source(kind, name, target)
