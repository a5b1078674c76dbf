"""``drift rollout``: the command line of the rollout engine (:mod:`drift_train.rollout`).

Also the backend options ``drift eval`` shares (:func:`add_policy_arguments`, :func:`policy_kwargs`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from drift_train.display import summary_table
from drift_train.policies import BACKENDS, PolicyError, SamplingParams, make_policy
from drift_train.rollout import SCHEDULES, RolloutConfig, rollout
from drift_train.trajectories import TrajectoryError

__all__ = ["add_policy_arguments", "main", "policy_kwargs", "policy_model", "resolve_model"]


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The backend options shared by ``drift rollout`` and ``drift eval`` (hf, openai and vllm groups)."""
    parser.add_argument(
        "--chat-template-kwargs",
        default="{}",
        help="JSON object passed to the chat template (e.g. '{\"enable_thinking\": false}'); "
        "recorded in meta, so training renders the data the same way",
    )
    hf = parser.add_argument_group("hf backend")
    hf.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    hf.add_argument("--dtype", default="auto")
    hf.add_argument("--generate-batch-size", type=int, default=64, help="sequences decoding at once")
    hf.add_argument(
        "--prefix-cache-mb",
        type=float,
        default=1024.0,
        help="memory for cached conversation prefixes (keys/values) reused across turns; 0: off",
    )
    api = parser.add_argument_group("openai backend")
    api.add_argument(
        "--base-url",
        default=None,
        help="server URL ending in /v1, or several separated by commas (replicas: least outstanding "
        "requests, failover); default: $OPENAI_BASE_URL",
    )
    api.add_argument("--api-key", default=None, help="default: $OPENAI_API_KEY")
    api.add_argument("--max-concurrency", type=int, default=16)
    api.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    api.add_argument("--max-retries", type=int, default=4)
    api.add_argument(
        "--tokenizer",
        default=None,
        help="the served model's tokenizer (folder or hub id), to verify the token ids the server "
        "returns (default: --model when it is a local folder; the embedded one for 'tiny')",
    )
    vl = parser.add_argument_group("vllm backend")
    vl.add_argument("--tensor-parallel-size", type=int, default=1)
    vl.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=None,
        help="fraction of GPU memory for vLLM (default 0.9); on vLLM's CPU platform a fraction of the "
        "node's memory (default: about 3 GiB's worth)",
    )
    vl.add_argument(
        "--vllm-kwargs",
        default="{}",
        help='JSON object of further vllm.LLM arguments, e.g. \'{"enforce_eager": true, '
        '"max_model_len": 4096}\'',
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="drift rollout",
        description="Sample K multi-turn trajectories per task from a reference policy in any Gymnasium env "
        "that follows the drift contract, and append them to a JSONL file.",
    )
    parser.add_argument("--env", required=True, help="env id, e.g. drift/MathFeedback-v0 (or module:Id)")
    parser.add_argument(
        "--env-kwargs", default="{}", help='JSON object of env kwargs, e.g. \'{"feedback": "hint"}\''
    )
    parser.add_argument(
        "--model", required=True, help="model folder or hub id; 'tiny' for the embedded tiny model"
    )
    parser.add_argument("--backend", choices=BACKENDS, default="hf")
    parser.add_argument("--num-tasks", type=int, default=None, help="tasks to roll out (default: all)")
    parser.add_argument("--task-offset", type=int, default=0, help="index of the first task")
    parser.add_argument("--samples", type=int, default=4, help="K, trajectories per task")
    parser.add_argument("--max-turns", type=int, default=None, help="override the env's turn budget")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0, help="0 disables top-k")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="episodes per chunk (default: 64 for hf, 256 for openai, 1024 for vllm)",
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="lockstep",
        help="lockstep: one batched generate call per turn (default); continuous: each episode "
        "moves on as soon as its own reply is done (hf backend)",
    )
    parser.add_argument("--out", required=True, help="output JSONL file")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--no-progress", action="store_true", help="no live progress display")
    parser.add_argument(
        "--no-token-ids",
        action="store_true",
        help="do not record each turn's token ids (the `tokens` field); training then uses the text",
    )
    add_policy_arguments(parser)
    return parser.parse_args(argv)


def policy_kwargs(args: argparse.Namespace) -> dict:
    """Backend-specific constructor kwargs from parsed CLI args (shared with ``drift eval``)."""
    template = {}
    raw = getattr(args, "chat_template_kwargs", None)
    if raw:
        template = json.loads(raw) if isinstance(raw, str) else dict(raw)
        if not isinstance(template, dict):
            raise ValueError(f"--chat-template-kwargs must be a JSON object, got {raw!r}")
    extra = {"chat_template_kwargs": template} if template else {}
    if args.backend == "hf":
        return {
            "device": args.device,
            "dtype": args.dtype,
            "batch_size": args.generate_batch_size,
            "prefix_cache_mb": args.prefix_cache_mb,
            **extra,
        }
    if args.backend == "openai":
        tokenizer = getattr(args, "tokenizer", None)
        if tokenizer is None and args.model == "tiny":
            tokenizer = resolve_model("tiny")
        return {
            "base_url": args.base_url,
            "api_key": args.api_key,
            "max_concurrency": args.max_concurrency,
            "timeout_s": args.timeout,
            "max_retries": args.max_retries,
            "tokenizer": tokenizer,
            **extra,
        }
    raw = getattr(args, "vllm_kwargs", None) or "{}"
    llm_kwargs = json.loads(raw) if isinstance(raw, str) else dict(raw)
    if not isinstance(llm_kwargs, dict):
        raise ValueError(f"--vllm-kwargs must be a JSON object, got {raw!r}")
    return {
        "tensor_parallel_size": args.tensor_parallel_size,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "seed": args.seed,
        **extra,
        **llm_kwargs,
    }


def policy_model(args: argparse.Namespace) -> str:
    """The model to load (``tiny``: the embedded folder), or for the openai backend the served name verbatim."""
    return args.model if args.backend == "openai" else resolve_model(args.model)


def resolve_model(model: str) -> str:
    """``"tiny"`` means the cached embedded tiny model; anything else is returned unchanged."""
    if model == "tiny":
        from drift_train.tiny import tiny_model_path

        return str(tiny_model_path())
    return model


def main(argv: list[str] | None = None) -> int:
    """``drift rollout``: see ``drift rollout --help``."""
    from rich.console import Console

    args = _parse_args(argv)
    console = Console(stderr=True)
    try:
        env_kwargs = json.loads(args.env_kwargs)
        if not isinstance(env_kwargs, dict):
            raise ValueError(f"must be a JSON object, got {type(env_kwargs).__name__}")
    except (json.JSONDecodeError, ValueError) as err:
        print(f"drift rollout: --env-kwargs {args.env_kwargs!r} is not a JSON object: {err}", file=sys.stderr)
        return 2
    batch_size = args.batch_size or {"hf": 64, "openai": 256, "vllm": 1024}[args.backend]
    config = RolloutConfig(
        env_id=args.env,
        env_kwargs=env_kwargs,
        num_tasks=args.num_tasks,
        samples=args.samples,
        task_offset=args.task_offset,
        max_turns=args.max_turns,
        seed=args.seed,
        batch_size=batch_size,
        schedule=args.schedule,
        record_tokens=not args.no_token_ids,
        sampling=SamplingParams(
            temperature=args.temperature,
            top_p=args.top_p,
            top_k=args.top_k,
            max_new_tokens=args.max_new_tokens,
        ),
    )
    try:
        config.validate()
        out = Path(args.out)
        if out.exists() and out.stat().st_size > 0 and not (args.resume or args.overwrite):
            raise FileExistsError(
                f"{out} already holds trajectories; pass --resume to continue it or --overwrite"
            )
        policy = make_policy(args.backend, policy_model(args), **policy_kwargs(args))
    except (ValueError, FileExistsError, PolicyError, json.JSONDecodeError) as err:
        print(f"drift rollout: {err}", file=sys.stderr)
        return 2
    try:
        records, stats = rollout(
            policy,
            config,
            out,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            console=console,
        )
    except (ValueError, TrajectoryError, PolicyError) as err:
        print(f"drift rollout: {err}", file=sys.stderr)
        return 1
    finally:
        policy.close()
    Console().print(summary_table(records, stats, title=f"{config.env_id} x {args.model} ({args.backend})"))
    print(f"wrote {stats.episodes} new trajectories to {out} ({len(records)} in the file)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
