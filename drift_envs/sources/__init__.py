"""Task sources: procedural generators, local files and Hugging Face datasets.

A source is a registered :class:`TaskSource` (see :mod:`drift_envs.sources.base`): ``len(source)``,
``source[i] -> Task`` a pure function of its config and ``i``, ``index_of(task_id)``. Procedural math
lives here (it is the offline default of the suite); the other sources and the schema adapters of
each env live beside it (``drift_envs.math.sources``, ``drift_envs.code.sources``), registered by
``import drift_envs`` through :func:`register_source` with lazy ``"module:class"`` factories
(:data:`drift_envs.registration.BUILTIN_SOURCES`), the same call a third-party source makes.
"""

from drift_envs.sources.base import (
    SOURCES,
    FileSourceConfig,
    SourceConfig,
    TaskSource,
    make_source,
    register_source,
    registered_sources,
    source_factory,
)
from drift_envs.sources.procedural_math import DIFFICULTY_PRESETS, ProceduralMath, ProceduralMathConfig
from drift_envs.sources.records import DataError, Row, load_rows, require_field, require_location

__all__ = [
    "DIFFICULTY_PRESETS",
    "DataError",
    "FileSourceConfig",
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
    "require_location",
    "source_factory",
]
