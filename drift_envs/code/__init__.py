"""CodeFeedback: Python function-writing tasks checked by unit tests in a sandbox, with test feedback.

``drift_envs.code.sandbox`` runs untrusted code (a warm fork server with limits, a fresh uid and private
namespaces where the machine allows); ``drift_envs.code.sources`` builds tasks (procedural, HumanEval,
MBPP, local files); ``drift_envs.code.env`` is the Gymnasium environment ``drift/CodeFeedback-v0``.
Importing this package starts nothing: the sandbox server starts on the first check.
"""

from drift_envs.code.sandbox import CodeJob, RunResult, Sandbox, SandboxError, SandboxLimits, TestResult

__all__ = ["CodeJob", "RunResult", "Sandbox", "SandboxError", "SandboxLimits", "TestResult"]
