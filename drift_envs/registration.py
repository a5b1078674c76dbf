"""Registers the ``drift/*`` ids with Gymnasium.

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


def register_envs() -> None:
    """Register every ``drift/*`` id once (calling it again is a no-op)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        # The turn budget lives in the env (kwarg max_turns), not in a TimeLimit wrapper, so that
        # truncation and the conversation bookkeeping stay in one place.
        gym.register(id=env_id, entry_point=entry_point, disable_env_checker=False)
