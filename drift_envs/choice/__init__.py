"""MultipleChoice: option reading, GPQA/MMLU/MMLU-Pro/procedural task sources, and feedback modes.

Importing this package registers the ``"choice"`` task sources (``procedural`` and ``file``).
"""

from drift_envs.choice.answers import LETTERS, ChoiceReading, read_choice
from drift_envs.choice.env import MultipleChoiceEnv
from drift_envs.choice.sources import SCHEMAS, ChoiceFile, ProceduralChoice, detect_schema

__all__ = [
    "LETTERS",
    "SCHEMAS",
    "ChoiceFile",
    "ChoiceReading",
    "MultipleChoiceEnv",
    "ProceduralChoice",
    "detect_schema",
    "read_choice",
]
