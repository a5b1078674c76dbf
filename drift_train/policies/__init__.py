"""Rollout backends behind one :class:`Policy` protocol.

>>> from drift_train.policies import make_policy, SamplingParams
>>> policy = make_policy("hf", "path/to/model")                      # doctest: +SKIP
>>> policy.generate([[{"role": "user", "content": "2+2?"}]], SamplingParams(max_new_tokens=16))  # doctest: +SKIP

Backends: ``hf`` (transformers, CPU or GPU, the default), ``openai`` (any OpenAI-compatible server),
``vllm`` (in-process ``vllm.LLM``; needs the ``[vllm]`` extra). Each is imported only when asked for.

A policy of your own subclasses :class:`PolicyBase` and implements ``generate``; the optional
capabilities of the :class:`Policy` protocol (``needs_env``, ``has_sessions``/``session``,
``describe``, ``token_meta``, ``reset_prefix_cache``) then have defaults.
"""

from __future__ import annotations

from typing import Any

from drift_train.policies.base import (
    Completion,
    Conversation,
    LockstepSession,
    Message,
    Policy,
    PolicyBase,
    PolicyError,
    SamplingParams,
    Session,
    Tools,
)

BACKENDS = ("hf", "openai", "vllm")

__all__ = [
    "BACKENDS",
    "Completion",
    "Conversation",
    "LockstepSession",
    "Message",
    "Policy",
    "PolicyBase",
    "PolicyError",
    "SamplingParams",
    "Session",
    "Tools",
    "make_policy",
]


def make_policy(backend: str, model: Any, **kwargs: Any) -> Policy:
    """Build the policy of ``backend`` ("hf", "openai" or "vllm") for ``model``.

    Keyword arguments go to the backend's class: :class:`~drift_train.policies.hf.HFPolicy`
    (``device``, ``dtype``, ``batch_size``, ``tokenizer``), :class:`~drift_train.policies.openai.OpenAIPolicy`
    (``base_url``, ``api_key``, ``max_concurrency``, ``timeout_s``, ``max_retries``),
    :class:`~drift_train.policies.vllm.VLLMPolicy` (``tensor_parallel_size``, ``gpu_memory_utilization``, ...).
    """
    if backend == "hf":
        from drift_train.policies.hf import HFPolicy

        return HFPolicy(model, **kwargs)
    if backend == "openai":
        from drift_train.policies.openai import OpenAIPolicy

        return OpenAIPolicy(model, **kwargs)
    if backend == "vllm":
        from drift_train.policies.vllm import VLLMPolicy

        return VLLMPolicy(model, **kwargs)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
