"""A policy that answers from a script, for tests that need exact replies through the real rollout engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from drift_train.policies import Completion, PolicyBase


class ScriptedReplies(PolicyBase):
    """Reply ``k`` (0-based, counted from the assistant messages already in the conversation) of the
    conversation whose first user message is ``prompt`` is ``script(prompt)[k]``; past the end of the
    script, the last reply again."""

    backend, model_id = "scripted", "scripted-replies"

    def __init__(self, script: Callable[[str], Sequence[str]]) -> None:
        self.script = script

    def generate(self, conversations, params, seeds=None, *, tools=None):
        """One scripted completion per conversation."""
        out = []
        for conversation in conversations:
            prompt = next(m["content"] for m in conversation if m["role"] == "user")
            replies = self.script(prompt)
            k = sum(1 for m in conversation if m["role"] == "assistant")
            text = replies[min(k, len(replies) - 1)]
            out.append([Completion(text=text, num_tokens=len(text), finish_reason="stop")])
        return out
