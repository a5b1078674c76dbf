"""``drift rollout``: the command line of the rollout engine (:mod:`drift_train.rollout`).

Also the flag set ``drift eval`` shares with it (:func:`add_rollout_arguments`): the command's policy
flags (:class:`PolicyFlags`: ``--model``, ``--backend``, ``--progress``), every
:class:`~drift_train.rollout.RolloutConfig` field (sampling flattened: ``--temperature``, ``--top-k``,
``--schedule``, ``--token-ids``, ...) and the backends' options (:mod:`drift_train.policies.options`).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from drift_train.commands._args import DataclassArgumentParser, field_help, resolve_model
from drift_train.display import summary_table
from drift_train.merge import parse_shard
from drift_train.policies import BACKENDS, PolicyError
from drift_train.policies import options as backend_options
from drift_train.policies.options import HFOptions, OpenAIOptions, PolicyOptions, VLLMOptions
from drift_train.rollout import SCHEDULES, RolloutConfig, rollout
from drift_train.trajectories import TrajectoryError

__all__ = [
    "BATCH_SIZES",
    "PolicyFlags",
    "RolloutCommand",
    "add_policy_arguments",
    "add_rollout_arguments",
    "build_parser",
    "config_line",
    "config_path",
    "load_policy",
    "main",
    "policy_kwargs",
    "resolve_model",
    "rollout_options",
    "write_config",
]

# episodes per chunk when --batch-size is not given: what each backend keeps busy
BATCH_SIZES = {"hf": RolloutConfig.batch_size, "openai": 256, "vllm": 1024}

# option field -> (backend class, its constructor's parameter): where each None default is decided
BACKEND_PARAMETERS = {
    HFOptions: (
        "drift_train.policies.hf:HFPolicy",
        {"dtype": "dtype", "generate_batch_size": "batch_size", "prefix_cache_mb": "prefix_cache_mb"},
    ),
    OpenAIOptions: (
        "drift_train.policies.openai:OpenAIPolicy",
        {
            "max_concurrency": "max_concurrency",
            "timeout": "timeout_s",
            "max_retries": "max_retries",
            "session_header": "session_header",
        },
    ),
    VLLMOptions: ("drift_train.policies.vllm:VLLMPolicy", {"tensor_parallel_size": "tensor_parallel_size"}),
}


def _backend_defaults(cls: type) -> dict[str, dict]:
    """``--help`` text naming the backend's own default of each option left None (read from its constructor,
    so it is written nowhere else)."""
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
    """The backend options (hf, openai and vllm groups)."""
    parser.add_dataclass(PolicyOptions)
    parser.add_dataclass(HFOptions, group="hf backend", options=_backend_defaults(HFOptions))
    parser.add_dataclass(OpenAIOptions, group="openai backend", options=_backend_defaults(OpenAIOptions))
    parser.add_dataclass(VLLMOptions, group="vllm backend", options=_backend_defaults(VLLMOptions))


def _options(args: argparse.Namespace) -> dict:
    """The backend option dataclasses the parsed flags describe (a flag the parser lacks: its default)."""

    def make(cls: type):
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})

    return {
        "options": make(PolicyOptions),
        "hf": make(HFOptions),
        "openai": make(OpenAIOptions),
        "vllm": make(VLLMOptions),
    }


def policy_kwargs(args: argparse.Namespace) -> dict:
    """Backend-specific constructor kwargs from parsed flags (:func:`drift_train.policies.options.policy_kwargs`)."""
    return backend_options.policy_kwargs(args.backend, args.model, seed=args.seed, **_options(args))


def load_policy(args: argparse.Namespace):
    """The policy the parsed ``--backend``/``--model`` and backend flags name
    (:func:`drift_train.policies.options.load_policy`); a model that cannot be loaded is a one-line
    ``PolicyError``."""
    return backend_options.load_policy(args.backend, args.model, seed=args.seed, **_options(args))


@dataclass
class PolicyFlags:
    """What ``drift rollout`` and ``drift eval`` both take besides :class:`~drift_train.rollout.RolloutConfig`
    and the backend options.

    Args:
        model: model folder, hub id, .gguf file, 'tiny' (the embedded tiny model) or 'smollm2-135m-instruct'
            (openai backend: the served name)
        backend: hf (transformers), vllm (in-process vllm.LLM) or openai (an OpenAI-compatible server)
        progress: live progress display
    """

    model: str | None = None
    backend: str = field(default="hf", metadata={"choices": BACKENDS})
    progress: bool = True


@dataclass
class RolloutCommand(PolicyFlags):
    """What ``drift rollout`` needs besides :class:`~drift_train.rollout.RolloutConfig` and the backend options.

    Args:
        out: output JSONL file
        resume: continue an interrupted run in --out
        overwrite: replace an existing --out
        shard: i/N: roll out only share i (from 0) of N, whole groups (the run's chunks dealt in turn); join
            the shards with `drift merge`
    """

    out: str = field(kw_only=True)
    resume: bool = False
    overwrite: bool = False
    shard: str | None = None


# flags of RolloutConfig (a dataclass of the engine) as the commands name and explain them
ROLLOUT_OPTIONS = {
    "env_id": {"flag": "env", "help": "env id, e.g. drift/MathFeedback-v0 (or module:Id)"},
    "env_kwargs": {"help": 'JSON object of env kwargs, e.g. \'{"feedback": "hint"}\''},
    "num_tasks": {"help": "tasks to roll out (default: all)"},
    "task_offset": {"help": "index of the first task"},
    "samples": {"help": "K, trajectories per task"},
    "max_turns": {"help": "override the env's turn budget"},
    "schedule": {
        "choices": SCHEDULES,
        "help": "lockstep: one batched generate call per turn; continuous: each episode moves on as soon "
        "as its own reply is done (hf backend)",
    },
    "record_tokens": {
        "flag": "token_ids",
        "help": "record each turn's token ids (the `tokens` field); --no-token-ids: training then uses the text",
    },
    "sampling.temperature": {"help": "0 = greedy"},
    "sampling.top_p": {"help": "nucleus sampling mass"},
    "sampling.top_k": {"help": "0 disables top-k"},
    "sampling.max_new_tokens": {"help": "tokens per reply at most"},
    "seed": {"help": "sampling seed"},
}
ROLLOUT_EXCLUDED = {"sampling.n", "sampling.stop", "sampling.seed"}  # n is K (--samples); seed is --seed


def rollout_options(path: str = "", extra: dict | None = None) -> tuple[dict, set[str]]:
    """:data:`ROLLOUT_OPTIONS` (with ``extra`` on top) and :data:`ROLLOUT_EXCLUDED`, keyed for a
    :class:`~drift_train.rollout.RolloutConfig` nested at ``path`` (``"rollout."``: a command's config
    field ``rollout``), so every command that runs episodes gets the same flag names and help."""
    extra = extra or {}
    merged = {
        path + key: {**ROLLOUT_OPTIONS.get(key, {}), **extra.get(key, {})}
        for key in {*ROLLOUT_OPTIONS, *extra}
    }
    return merged, {path + key for key in ROLLOUT_EXCLUDED}


def config_line(config: RolloutConfig, label: str = "rollout") -> str:
    """One line naming what a run's episodes are (printed once at the start of every command that runs
    them); the full config goes beside the output (:func:`write_config`)."""
    s = config.sampling
    kwargs = json.dumps(config.effective_env_kwargs, sort_keys=True) if config.effective_env_kwargs else "{}"
    tasks = "all" if config.num_tasks is None else config.num_tasks
    return (
        f"{label}: {config.env_id} {kwargs} tasks {tasks} from {config.task_offset} x K={config.samples}, "
        f"temperature {s.temperature} top_p {s.top_p} top_k {s.top_k} max_new_tokens {s.max_new_tokens}, "
        f"seed {config.seed}, batch {config.batch_size}, {config.schedule}"
        f"{'' if config.record_tokens else ', no token ids'}"
    )


def config_path(out: str | Path) -> Path:
    """Where the full config of a run writing ``out`` goes: beside it, ``<stem>.config.json``
    (``run.jsonl`` -> ``run.config.json``), as ``drift eval`` puts its ``<stem>.tasks.jsonl``."""
    out = Path(out)
    return out.with_name(out.stem + ".config.json")


def write_config(path: str | Path, **configs) -> Path:
    """Write ``configs`` (name -> dataclass instance or JSON-able value) to ``path`` as JSON; returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        name: asdict(value) if hasattr(value, "__dataclass_fields__") else value
        for name, value in configs.items()
    }
    path.write_text(json.dumps(data, indent=2, default=list) + "\n")
    return path


def add_rollout_arguments(
    parser: DataclassArgumentParser,
    command: type[PolicyFlags],
    *,
    defaults: RolloutConfig | None = None,
    options: dict | None = None,
    command_options: dict | None = None,
) -> None:
    """The flag set ``drift rollout`` and ``drift eval`` share: ``command`` (a :class:`PolicyFlags`),
    :class:`~drift_train.rollout.RolloutConfig` (``defaults``: the command's own defaults, else the class's;
    ``options``: per-field flag options on top of :data:`ROLLOUT_OPTIONS`) and the backend options."""
    parser.add_dataclass(command, options=command_options)
    merged, excluded = rollout_options(extra=options)
    parser.add_dataclass(RolloutConfig, options=merged, exclude=excluded, defaults=defaults)
    add_policy_arguments(parser)


def build_parser() -> DataclassArgumentParser:
    """The ``drift rollout`` parser: RolloutCommand, RolloutConfig (sampling flattened), the backend options."""
    parser = DataclassArgumentParser(
        prog="drift rollout",
        description="Sample K multi-turn trajectories per task from a reference policy in any Gymnasium env "
        "that follows the drift contract, and append them to a JSONL file.",
    )
    batch_help = ", ".join(f"{n} for {backend}" for backend, n in BATCH_SIZES.items())
    add_rollout_arguments(
        parser,
        RolloutCommand,
        options={"batch_size": {"default": None, "help": f"episodes per chunk (default: {batch_help})"}},
        command_options={"model": {"required": True}},
    )
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
        shard = None if command.shard is None else parse_shard(command.shard)
        out = Path(command.out)
        if out.exists() and out.stat().st_size > 0 and not (command.resume or command.overwrite):
            raise FileExistsError(
                f"{out} already holds trajectories; pass --resume to continue it or --overwrite"
            )
        policy = load_policy(args)
    except (ValueError, FileExistsError, PolicyError) as err:
        print(f"drift rollout: {err}", file=sys.stderr)
        return 2
    console.print(config_line(config), highlight=False, soft_wrap=True)
    # the full config beside the records, not in each record's meta (records stay as they were)
    write_config(config_path(out), rollout=config, command=command)
    try:
        records, stats = rollout(
            policy,
            config,
            out,
            resume=command.resume,
            overwrite=command.overwrite,
            progress=command.progress,
            console=console,
            shard=shard,
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
