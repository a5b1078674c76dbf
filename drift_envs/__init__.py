"""DRIFT environments: multi-turn text tasks with feedback, as Gymnasium environments.

``import drift_envs`` registers every ``drift/*`` id and (lazily: nothing is imported until a source is
made) every built-in task source; torch is never imported here.
"""

from drift_envs.core import (
    EnvOptions,
    EpisodeFinishedError,
    Feedback,
    MultiTurnTextEnv,
    Task,
    UnicodeText,
    Verdict,
)
from drift_envs.registration import ENV_IDS, register_builtin_sources, register_envs

register_envs()
register_builtin_sources()

__all__ = [
    "ENV_IDS",
    "EnvOptions",
    "EpisodeFinishedError",
    "Feedback",
    "MultiTurnTextEnv",
    "Task",
    "UnicodeText",
    "Verdict",
]
__version__ = "0.1.0"
