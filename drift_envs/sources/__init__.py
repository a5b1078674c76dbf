"""Task sources: procedural generators, local files and Hugging Face datasets.

A source is a registered :class:`TaskSource` (see :mod:`drift_envs.sources.base`): ``len(source)``,
``source[i] -> Task`` a pure function of its config and ``i``, ``index_of(task_id)``. Env-specific schema adapters live beside each env (e.g. ``drift_envs.math.sources``).
"""

from drift_envs.sources.base import (
    SOURCES,
    SourceConfig,
    TaskSource,
    make_source,
    register_source,
    registered_sources,
)
from drift_envs.sources.procedural_math import DIFFICULTY_PRESETS, ProceduralMath, ProceduralMathConfig
from drift_envs.sources.records import DataError, Row, load_rows, require_field

__all__ = [
    "DIFFICULTY_PRESETS",
    "DataError",
    "ProceduralMath",
    "ProceduralMathConfig",
    "Row",
    "SOURCES",
    "SourceConfig",
    "TaskSource",
    "load_rows",
    "make_source",
    "register_source",
    "registered_sources",
    "require_field",
]
