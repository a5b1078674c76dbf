"""``drift/UserCorrection-v0``: a simulated user with hidden, checkable preferences corrects the model.

:mod:`~drift_envs.user.constraints` is the library of checkable constraints (one class per kind,
by family), :mod:`~drift_envs.user.tasks` the registered task sources (``"procedural"`` and
``"file"``, kind ``"user"``), :mod:`~drift_envs.user.simulator` the rule-based and LLM-backed users,
and :mod:`~drift_envs.user.env` the environment.
"""

from drift_envs.user.constraints import CONSTRAINTS, Constraint, compose_reply, constraint_from_dict
from drift_envs.user.env import UserCorrectionEnv
from drift_envs.user.simulator import LLMUser, RuleBasedUser
from drift_envs.user.tasks import ProceduralUserConfig, ProceduralUserTasks, UserTask, UserTaskFile

__all__ = [
    "CONSTRAINTS",
    "Constraint",
    "LLMUser",
    "ProceduralUserConfig",
    "ProceduralUserTasks",
    "RuleBasedUser",
    "UserCorrectionEnv",
    "UserTask",
    "UserTaskFile",
    "compose_reply",
    "constraint_from_dict",
]
