"""The ``drift`` command: one entry point, one module per subcommand.

Each subcommand is a module of :mod:`drift_train.commands` (apart from the library it drives) exposing
``main(argv) -> int``; this file only dispatches, so importing it stays cheap (no torch) and ``drift
--help`` answers at once. Every subcommand's flags are generated from its config dataclasses by
:mod:`drift_train.commands._args` (``drift train``'s from ``DriftConfig``, ``TrainingArguments`` fields
included), with the same spellings and help.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("drift_train.commands.demo", "play a scripted MathFeedback episode (no model needed)"),
    "tiny-model": ("drift_train.commands.tiny_model", "build the embedded tiny model folder"),
    "model": (
        "drift_train.commands.model",
        "model import FILE.gguf --out DIR: a GGUF file as a model folder",
    ),
    "rollout": (
        "drift_train.commands.rollout",
        "sample K multi-turn trajectories per task from a reference policy",
    ),
    "merge": ("drift_train.commands.merge", "merge the shard files of one rollout job, each trajectory once"),
    "weights": ("drift_train.commands.weights", "turn trajectory returns into DRIFT importance weights"),
    "render": (
        "drift_train.commands.render",
        "show / write the training examples exactly as drift train builds them",
    ),
    "train": ("drift_train.commands.train", "fine-tune with sft / rft / wsft / otr / otr-exact / drift-otr"),
    "eval": ("drift_train.commands.eval", "multi-turn evaluation of a model in an environment"),
    "online-rl": (
        "drift_train.commands.online_rl",
        "the online RL baseline (GRPO-style policy gradient) for comparison",
    ),
    "quickstart": ("drift_train.commands.quickstart", "the whole loop on the embedded tiny model"),
    "serve-env": (
        "drift_train.commands.serve_env",
        "serve a registered env as an OpenEnv environment (HTTP/WebSocket)",
    ),
    "report": (
        "drift_train.commands.report",
        "one self-contained HTML page of run folders: metrics, curves, weights, trajectories",
    ),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: drift <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += [
        "",
        "Run `drift <command> --help` for a command's options. Every flag accepts --dash-case and --under_score;",
        "--model tiny (the embedded tiny model), smollm2-135m-instruct or FILE.gguf work wherever a model is loaded.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``drift <command> ...`` to the module that implements the command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"drift: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
