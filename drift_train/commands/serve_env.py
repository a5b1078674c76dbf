"""``drift serve-env --env ID --port P``: serve a registered env as an OpenEnv environment.

The server is OpenEnv's (:mod:`drift_envs.integrations.openenv`, extra ``[openenv]``): one env instance
per ``/ws`` session, at most ``--max-sessions`` at once. Play it with ``gym.make("drift/Remote-v0",
url="http://HOST:P")`` or any OpenEnv client. It runs until interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from drift_train.commands._args import DataclassArgumentParser

__all__ = ["ServeEnvCommand", "build_parser", "main"]


@dataclass
class ServeEnvCommand:
    """What ``drift serve-env`` serves, and where.

    Args:
        env_id: registered env id, e.g. drift/MathFeedback-v0 (module:id for a third party's env)
        env_kwargs: the env's keyword arguments, as a JSON object
        host: interface to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)
        port: TCP port
        max_sessions: most /ws sessions (each with its own env) at once; more are refused. A rollout
            through drift/Remote-v0 holds one per episode of a chunk (drift rollout --batch-size)
        log_level: uvicorn's log level
    """

    env_id: str = field(metadata={"flag": "env"})
    port: int
    env_kwargs: dict = field(default_factory=dict)
    host: str = "127.0.0.1"
    max_sessions: int = 64  # drift rollout's --batch-size on the hf backend
    log_level: str = field(
        default="warning", metadata={"choices": ["critical", "error", "warning", "info", "debug"]}
    )


def build_parser() -> DataclassArgumentParser:
    """The ``drift serve-env`` parser: one flag per :class:`ServeEnvCommand` field."""
    parser = DataclassArgumentParser(
        prog="drift serve-env",
        description="Serve a registered env as an OpenEnv environment (HTTP + WebSocket, one env per "
        "/ws session). Play it with gym.make('drift/Remote-v0', url=...).",
    )
    parser.add_dataclass(ServeEnvCommand)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift serve-env --env ID --port P [--env-kwargs JSON] [--host H] [--max-sessions N]``."""
    parser = build_parser()
    command = parser.build(ServeEnvCommand, parser.parse_args(argv))
    if not 0 < command.port < 65536:
        print(f"drift serve-env: --port must be 1..65535, got {command.port}", file=sys.stderr)
        return 2
    if command.max_sessions < 1:
        print(f"drift serve-env: --max-sessions must be >= 1, got {command.max_sessions}", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from drift_envs.integrations.openenv import create_app
    except ImportError as err:
        print(
            f"drift serve-env: the OpenEnv server is not installed ({err}); install the [openenv] extra "
            "(bash scripts/setup.sh installs it)",
            file=sys.stderr,
        )
        return 2
    try:
        app = create_app(command.env_id, command.env_kwargs, max_sessions=command.max_sessions)
    except ValueError as err:
        print(f"drift serve-env: {err}", file=sys.stderr)
        return 2
    print(
        f"drift serve-env: starting {command.env_id} on http://{command.host}:{command.port} "
        f"(OpenEnv: /ws sessions, /health, /schema; up to {command.max_sessions} sessions)",
        flush=True,
    )
    uvicorn.run(app, host=command.host, port=command.port, log_level=command.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
