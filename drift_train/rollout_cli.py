"""``drift rollout``: the command line of the rollout engine (:mod:`drift_train.rollout`).

Also the backend options ``drift eval`` shares (:func:`add_policy_arguments`, :func:`policy_kwargs`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from drift_train.commands._args import (
    DataclassArgumentParser,
    missing_model_folder,
    model_load_error,
    resolve_model,
)
from drift_train.display import summary_table
from drift_train.models import NAMED_MODELS
from drift_train.policies import BACKENDS, PolicyError, make_policy
from drift_train.rollout import SCHEDULES, RolloutConfig, rollout
from drift_train.trajectories import TrajectoryError

__all__ = [
    "BATCH_SIZES",
    "HFOptions",
    "OpenAIOptions",
    "PolicyOptions",
    "RolloutCommand",
    "VLLMOptions",
    "add_policy_arguments",
    "load_policy",
    "main",
    "policy_kwargs",
    "policy_model",
    "resolve_model",
]

# episodes per chunk when --batch-size is not given: what each backend keeps busy
BATCH_SIZES = {"hf": RolloutConfig.batch_size, "openai": 256, "vllm": 1024}


# The backend options. None means "the backend's own default" (the constructor of HFPolicy,
# OpenAIPolicy or VLLMPolicy; --help reads it from there), so no default is written twice.


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
    """

    base_url: str | None = None
    api_key: str | None = None
    max_concurrency: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    tokenizer: str | None = None


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


# option field -> (backend class, its constructor's parameter): where each None default is decided
BACKEND_PARAMETERS = {
    HFOptions: (
        "drift_train.policies.hf:HFPolicy",
        {"dtype": "dtype", "generate_batch_size": "batch_size", "prefix_cache_mb": "prefix_cache_mb"},
    ),
    OpenAIOptions: (
        "drift_train.policies.openai:OpenAIPolicy",
        {"max_concurrency": "max_concurrency", "timeout": "timeout_s", "max_retries": "max_retries"},
    ),
    VLLMOptions: ("drift_train.policies.vllm:VLLMPolicy", {"tensor_parallel_size": "tensor_parallel_size"}),
}


def _backend_defaults(cls: type) -> dict[str, dict]:
    """``--help`` text naming the backend's own default of each option left None (read from its constructor,
    so it is written nowhere else)."""
    import importlib
    import inspect

    from drift_train.commands._args import field_help

    target, parameters = BACKEND_PARAMETERS[cls]
    module, name = target.split(":")
    signature = inspect.signature(getattr(importlib.import_module(module), name).__init__).parameters
    helps = field_help(cls)
    return {
        option: {
            "help": f"{helps.get(option, '')} (default: {name}'s, {signature[parameter].default})".lstrip()
        }
        for option, parameter in parameters.items()
    }


def add_policy_arguments(parser: DataclassArgumentParser) -> None:
    """The backend options shared by ``drift rollout`` and ``drift eval`` (hf, openai and vllm groups)."""
    parser.add_dataclass(PolicyOptions)
    parser.add_dataclass(HFOptions, group="hf backend", options=_backend_defaults(HFOptions))
    parser.add_dataclass(OpenAIOptions, group="openai backend", options=_backend_defaults(OpenAIOptions))
    parser.add_dataclass(VLLMOptions, group="vllm backend", options=_backend_defaults(VLLMOptions))


def _given(**kwargs) -> dict:
    """The options the user set (None: leave the backend's default)."""
    return {key: value for key, value in kwargs.items() if value is not None}


def policy_kwargs(args: argparse.Namespace) -> dict:
    """Backend-specific constructor kwargs from parsed CLI args (shared with ``drift eval``)."""
    template = dict(getattr(args, "chat_template_kwargs", None) or {})
    extra = {"chat_template_kwargs": template} if template else {}
    if args.backend == "hf":
        return {
            **_given(
                device=args.device,
                dtype=args.dtype,
                batch_size=args.generate_batch_size,
                prefix_cache_mb=args.prefix_cache_mb,
            ),
            **extra,
        }
    if args.backend == "openai":
        tokenizer = getattr(args, "tokenizer", None)
        if tokenizer is None and (args.model == "tiny" or args.model in NAMED_MODELS):
            tokenizer = args.model  # a server of the embedded model or a named one, served under that name
        tokenizer = resolve_model(tokenizer) if tokenizer is not None else None
        return {
            "base_url": args.base_url,
            "api_key": args.api_key,
            "tokenizer": tokenizer,
            **_given(
                max_concurrency=args.max_concurrency, timeout_s=args.timeout, max_retries=args.max_retries
            ),
            **extra,
        }
    return {
        **_given(
            tensor_parallel_size=args.tensor_parallel_size,
            gpu_memory_utilization=args.gpu_memory_utilization,
            dtype=args.dtype,
        ),
        "seed": args.seed,
        **extra,
        **dict(getattr(args, "vllm_kwargs", None) or {}),
    }


def policy_model(args: argparse.Namespace) -> str:
    """The model to load (``tiny``: the embedded folder), or for the openai backend the served name verbatim."""
    return args.model if args.backend == "openai" else resolve_model(args.model)


def load_policy(args: argparse.Namespace):
    """The policy ``--backend``/``--model`` and the backend options name; a model that cannot be loaded
    is a ``PolicyError`` with one line saying which and why (commands print it and exit 2)."""
    missing = None if args.backend == "openai" else missing_model_folder(args.model)
    if missing:
        raise PolicyError(missing)
    try:
        return make_policy(args.backend, policy_model(args), **policy_kwargs(args))
    except PolicyError as err:  # the backends' own messages can span lines (transformers' hub errors)
        raise PolicyError(" ".join(str(err).split())) from None
    except ValueError:
        raise
    except (OSError, ImportError, RuntimeError, KeyError, TypeError) as err:
        # transformers raises OSError for a missing folder / unknown hub id, others for a broken folder
        raise PolicyError(model_load_error(args.model, err)) from None


@dataclass
class RolloutCommand:
    """What ``drift rollout`` needs besides :class:`~drift_train.rollout.RolloutConfig` and the backend options.

    Args:
        model: model folder, hub id, .gguf file, 'tiny' (the embedded tiny model) or 'smollm2-135m-instruct'
            (openai backend: the served name)
        backend: hf (transformers), vllm (in-process vllm.LLM) or openai (an OpenAI-compatible server)
        out: output JSONL file
        resume: continue an interrupted run in --out
        overwrite: replace an existing --out
        progress: live progress display
    """

    model: str
    out: str
    backend: str = field(default="hf", metadata={"choices": BACKENDS})
    resume: bool = False
    overwrite: bool = False
    progress: bool = True


# flags of RolloutConfig (a dataclass of the engine) as the command names and explains them
ROLLOUT_OPTIONS = {
    "env_id": {"flag": "env", "help": "env id, e.g. drift/MathFeedback-v0 (or module:Id)"},
    "env_kwargs": {"help": 'JSON object of env kwargs, e.g. \'{"feedback": "hint"}\''},
    "num_tasks": {"help": "tasks to roll out (default: all)"},
    "task_offset": {"help": "index of the first task"},
    "samples": {"help": "K, trajectories per task"},
    "max_turns": {"help": "override the env's turn budget"},
    "batch_size": {
        "default": None,
        "help": "episodes per chunk (default: "
        + ", ".join(f"{n} for {backend}" for backend, n in BATCH_SIZES.items())
        + ")",
    },
    "schedule": {
        "choices": SCHEDULES,
        "help": "lockstep: one batched generate call per turn; continuous: each episode moves on as soon "
        "as its own reply is done (hf backend)",
    },
    "record_tokens": {
        "flag": "token_ids",
        "help": "record each turn's token ids (the `tokens` field); --no-token-ids: training then uses the text",
    },
    "sampling.top_k": {"help": "0 disables top-k"},
}


def build_parser() -> DataclassArgumentParser:
    """The ``drift rollout`` parser: RolloutCommand, RolloutConfig (sampling flattened), the backend options."""
    parser = DataclassArgumentParser(
        prog="drift rollout",
        description="Sample K multi-turn trajectories per task from a reference policy in any Gymnasium env "
        "that follows the drift contract, and append them to a JSONL file.",
    )
    parser.add_dataclass(RolloutCommand)
    parser.add_dataclass(
        RolloutConfig,
        options=ROLLOUT_OPTIONS,
        exclude={"sampling.n", "sampling.stop", "sampling.seed"},  # n is K (--samples); seed is --seed
    )
    add_policy_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift rollout``: see ``drift rollout --help``."""
    from rich.console import Console

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # drift rollout has always returned its usage errors' status (2)
        return int(exit_.code or 0)
    command = parser.build(RolloutCommand, args)
    config = parser.build(RolloutConfig, args, batch_size=args.batch_size or BATCH_SIZES[args.backend])
    console = Console(stderr=True)
    try:
        config.validate()
        out = Path(command.out)
        if out.exists() and out.stat().st_size > 0 and not (command.resume or command.overwrite):
            raise FileExistsError(
                f"{out} already holds trajectories; pass --resume to continue it or --overwrite"
            )
        policy = load_policy(args)
    except (ValueError, FileExistsError, PolicyError) as err:
        print(f"drift rollout: {err}", file=sys.stderr)
        return 2
    try:
        records, stats = rollout(
            policy,
            config,
            out,
            resume=command.resume,
            overwrite=command.overwrite,
            progress=command.progress,
            console=console,
        )
    except (ValueError, TrajectoryError, PolicyError) as err:
        print(f"drift rollout: {err}", file=sys.stderr)
        return 1
    finally:
        policy.close()
    Console().print(
        summary_table(records, stats, title=f"{config.env_id} x {command.model} ({command.backend})")
    )
    print(f"wrote {stats.episodes} new trajectories to {out} ({len(records)} in the file)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
