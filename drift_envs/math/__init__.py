"""MathFeedback: answer extraction, math-verify checking in bounded time, and feedback modes."""

from drift_envs.math.answers import extract_answer, normalize_answer
from drift_envs.math.verifier import GoldAnswer, MathVerifier, check_answer

__all__ = ["GoldAnswer", "MathVerifier", "check_answer", "extract_answer", "normalize_answer"]
