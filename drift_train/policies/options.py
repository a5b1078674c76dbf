"""The backends' options as dataclasses, and the policy they describe.

``drift rollout`` and ``drift eval`` generate their backend flags from these classes
(:mod:`drift_train.commands.rollout`); Python callers build the same policy with :func:`load_policy`::

    policy = load_policy("hf", "tiny", hf=HFOptions(prefix_cache_mb=0))

A field left None means "the backend's own default" (the constructor of ``HFPolicy``, ``OpenAIPolicy``
or ``VLLMPolicy``), so no default is written twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drift_train.models import NAMED_MODELS, missing_model_folder, model_load_error, resolve_model
from drift_train.policies.base import Policy, PolicyError

__all__ = [
    "HFOptions",
    "OpenAIOptions",
    "PolicyOptions",
    "VLLMOptions",
    "load_policy",
    "policy_kwargs",
    "policy_model",
]


@dataclass
class PolicyOptions:
    """Options of every backend.

    Args:
        chat_template_kwargs: JSON object passed to the chat template (e.g. '{"enable_thinking": false}');
            recorded in meta, so training renders the data the same way
    """

    chat_template_kwargs: dict = field(default_factory=dict)


@dataclass
class HFOptions:
    """Options of the hf backend (transformers).

    Args:
        device: cpu, cuda, cuda:1 ... (default: cuda if available)
        dtype: dtype to load the model in
        generate_batch_size: sequences decoding at once
        prefix_cache_mb: memory for cached conversation prefixes (keys/values) reused across turns;
            0: off
    """

    device: str | None = None
    dtype: str | None = None
    generate_batch_size: int | None = None
    prefix_cache_mb: float | None = None


@dataclass
class OpenAIOptions:
    """Options of the openai backend (any OpenAI-compatible server).

    Args:
        base_url: server URL ending in /v1, or several separated by commas (replicas: least outstanding
            requests, failover); default: $OPENAI_BASE_URL
        api_key: default: $OPENAI_API_KEY
        max_concurrency: requests in flight at once
        timeout: seconds per request
        max_retries: retries of a failed request
        tokenizer: the served model's tokenizer (folder or hub id), to verify the token ids the server
            returns (default: --model when it is a local folder; for 'tiny' and 'smollm2-135m-instruct' served
            under that name, that model's tokenizer)
        session_header: HTTP header naming each request's episode ('<prompt_id>:<traj_idx>'), what a router's
            consistent hashing keys on; '' sends none (with several --base-url, episodes stay on one
            replica either way)
    """

    base_url: str | None = None
    api_key: str | None = None
    max_concurrency: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    tokenizer: str | None = None
    session_header: str | None = None


@dataclass
class VLLMOptions:
    """Options of the vllm backend (in-process vllm.LLM).

    Args:
        tensor_parallel_size: GPUs per model replica
        gpu_memory_utilization: fraction of GPU memory for vLLM (default 0.9); on vLLM's CPU platform a
            fraction of the node's memory (default: about 3 GiB's worth)
        vllm_kwargs: JSON object of further vllm.LLM arguments, e.g. '{"enforce_eager": true,
            "max_model_len": 4096}'
    """

    tensor_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    vllm_kwargs: dict = field(default_factory=dict)


def _given(**kwargs) -> dict:
    """The options set (None: leave the backend's default)."""
    return {key: value for key, value in kwargs.items() if value is not None}


def policy_kwargs(
    backend: str,
    model: str,
    *,
    seed: int = 0,
    options: PolicyOptions | None = None,
    hf: HFOptions | None = None,
    openai: OpenAIOptions | None = None,
    vllm: VLLMOptions | None = None,
) -> dict:
    """The backend's constructor kwargs for these options (only the chosen backend's are read)."""
    template = dict((options or PolicyOptions()).chat_template_kwargs or {})
    extra = {"chat_template_kwargs": template} if template else {}
    if backend == "hf":
        hf = hf or HFOptions()
        return {
            **_given(
                device=hf.device,
                dtype=hf.dtype,
                batch_size=hf.generate_batch_size,
                prefix_cache_mb=hf.prefix_cache_mb,
            ),
            **extra,
        }
    if backend == "openai":
        openai = openai or OpenAIOptions()
        tokenizer = openai.tokenizer
        if tokenizer is None and (model == "tiny" or model in NAMED_MODELS):
            tokenizer = model  # a server of the embedded model or a named one, served under that name
        tokenizer = resolve_model(tokenizer) if tokenizer is not None else None
        return {
            "base_url": openai.base_url,
            "api_key": openai.api_key,
            "tokenizer": tokenizer,
            **_given(
                max_concurrency=openai.max_concurrency,
                timeout_s=openai.timeout,
                max_retries=openai.max_retries,
                session_header=openai.session_header,
            ),
            **extra,
        }
    vllm = vllm or VLLMOptions()
    return {
        **_given(
            tensor_parallel_size=vllm.tensor_parallel_size,
            gpu_memory_utilization=vllm.gpu_memory_utilization,
            dtype=(hf or HFOptions()).dtype,  # --dtype is one option for both local backends
        ),
        "seed": seed,
        **extra,
        **dict(vllm.vllm_kwargs or {}),
    }


def policy_model(backend: str, model: str) -> str:
    """The model to load (``tiny``: the embedded folder), or for the openai backend the served name verbatim."""
    return model if backend == "openai" else resolve_model(model)


def load_policy(
    backend: str,
    model: str,
    *,
    seed: int = 0,
    options: PolicyOptions | None = None,
    hf: HFOptions | None = None,
    openai: OpenAIOptions | None = None,
    vllm: VLLMOptions | None = None,
) -> Policy:
    """The policy ``backend``/``model`` and the options name; a model that cannot be loaded is a
    ``PolicyError`` with one line saying which and why (commands print it and exit 2)."""
    from drift_train.policies import make_policy

    missing = None if backend == "openai" else missing_model_folder(model)
    if missing:
        raise PolicyError(missing)
    kwargs = policy_kwargs(backend, model, seed=seed, options=options, hf=hf, openai=openai, vllm=vllm)
    try:
        return make_policy(backend, policy_model(backend, model), **kwargs)
    except PolicyError as err:  # the backends' own messages can span lines (transformers' hub errors)
        raise PolicyError(" ".join(str(err).split())) from None
    except ValueError:
        raise
    except (OSError, ImportError, RuntimeError, KeyError, TypeError) as err:
        # transformers raises OSError for a missing folder / unknown hub id, others for a broken folder
        raise PolicyError(model_load_error(model, err)) from None
