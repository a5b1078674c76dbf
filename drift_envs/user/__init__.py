"""``drift/UserCorrection-v0``: a simulated user with hidden, checkable preferences corrects the model.

:mod:`~drift_envs.user.constraints` is the library of checkable constraints,
:mod:`~drift_envs.user.tasks` the task sources, :mod:`~drift_envs.user.simulator` the rule-based and
LLM-backed users, and :mod:`~drift_envs.user.env` the environment.
"""

from drift_envs.user.constraints import CONSTRAINTS, Constraint, compose_reply, constraint_from_dict
from drift_envs.user.env import UserCorrectionEnv
from drift_envs.user.simulator import LLMUser, RuleBasedUser
from drift_envs.user.tasks import JsonlUserTasks, ProceduralUserTasks, UserTask

__all__ = [
    "CONSTRAINTS",
    "Constraint",
    "JsonlUserTasks",
    "LLMUser",
    "ProceduralUserTasks",
    "RuleBasedUser",
    "UserCorrectionEnv",
    "UserTask",
    "compose_reply",
    "constraint_from_dict",
]
