"""Task sources: procedural generators, local files and Hugging Face datasets.

A source is anything with ``len(source)`` and ``source[i] -> Task`` that is a pure function of its
configuration and ``i``. Env-specific schema adapters live beside each env (e.g. ``drift_envs.math.sources``).
"""

from drift_envs.sources.procedural_math import DIFFICULTY_PRESETS, ProceduralMath, ProceduralMathConfig
from drift_envs.sources.records import DataError, Row, load_rows, require_field

__all__ = [
    "DIFFICULTY_PRESETS",
    "DataError",
    "ProceduralMath",
    "ProceduralMathConfig",
    "Row",
    "load_rows",
    "require_field",
]
