"""Any registered env served as an OpenEnv environment (tested with openenv-core 0.3.0).

The server is OpenEnv's own (``openenv.core.env_server.create_fastapi_app``): this module supplies the
:class:`DriftEnvironment` it serves, one per session, and the action and observation models. ``drift
serve-env --env ID --port P`` runs it; :func:`create_app` builds the FastAPI app for your own server.

What a client sees (OpenEnv's protocol, unchanged):

* ``/ws`` (WebSocket): one session, one env instance, for as long as the connection lasts; messages
  ``{"type": "reset", "data": {"seed": 3, "options": {"index": 7}}}``, ``{"type": "step", "data":
  {"message": "<the reply>"}}``, ``{"type": "state"}``, ``{"type": "close"}``. A session that drops (the
  client goes away mid-episode) is closed by the server and its env freed. Each session's env runs on
  its own worker thread, so a slow step (a code check) holds up only its own session.
* ``POST /reset`` and ``POST /step``: OpenEnv builds a **fresh env for each HTTP request** and closes it
  after, so an episode cannot span HTTP calls (a ``/step`` is refused: the fresh env was never reset);
  multi-turn episodes use ``/ws``. ``GET /health``, ``/schema``, ``/metadata``, ``/state`` as OpenEnv
  serves them.
* An observation: ``{"observation": {"text": obs, "info": {...}, "terminated": bool, "truncated": bool},
  "reward": r, "done": terminated or truncated}``. ``text`` is the env's observation (the first user
  message after ``reset``, the feedback after ``step``, empty once the episode ended), ``info`` the env's
  ``info`` as JSON (the drift contract's keys: ``task_id``, ``turn``, ``messages``, ``correct``, ...).
* ``reset`` takes ``seed`` (int) and ``options`` (``{"index": i}`` or ``{"task_id": id}``), nothing else;
  ``step`` takes ``message`` (str). The session's ``state`` holds the env's facts (``env_id``,
  ``env_kwargs``, ``num_tasks``, ``max_turns``, ``format_penalty``, ``max_text_length``) and, during an
  episode, ``task_id``, ``turn`` and ``oracle_reply`` (None where the env has no oracle), which is how
  ``drift/Remote-v0`` offers ``oracle_reply()``.
* A bad request (an unknown reset key, a step before reset or after the episode ended, a non-str
  reply) is answered with an error naming what was wrong: ``{"type": "error", "data": {"message": ...,
  "code": "EXECUTION_ERROR"}}`` on ``/ws``, HTTP 400 with ``{"detail": ...}`` on ``/reset``/``/step``.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from openenv.core.env_server import Action, Environment, Observation, State, create_fastapi_app
from openenv.core.env_server.types import EnvironmentMetadata
from pydantic import Field

from drift_envs.integrations.episode import make_env

__all__ = [
    "DriftAction",
    "DriftEnvironment",
    "DriftObservation",
    "EnvRequestError",
    "create_app",
    "json_safe",
]

RESET_KEYS = ("seed", "options", "episode_id")  # episode_id: OpenEnv's own reset argument
OPTION_KEYS = ("index", "task_id")


class EnvRequestError(ValueError):
    """A request the served env cannot honour (the message says what and what to do instead)."""


class DriftAction(Action):
    """One reply of the model to the env."""

    message: str = Field(description="the model's reply (the env's action)")


class DriftObservation(Observation):
    """What the env returned: its observation text, ``info`` (JSON), and how the episode stands."""

    text: str = Field(default="", description="the env's observation: first user message or feedback")
    info: dict[str, Any] = Field(default_factory=dict, description="the env's info dict, as JSON")
    terminated: bool = Field(default=False, description="the episode ended solved")
    truncated: bool = Field(default=False, description="the episode ended out of turns")


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: tuples (and other sequences of the env, e.g. shared texts) as lists,
    numpy scalars and arrays as Python numbers and lists, other objects as their ``repr``."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)) or (
        hasattr(value, "__len__")
        and hasattr(value, "__getitem__")
        and not isinstance(value, (bytes, bytearray))
    ):
        return [json_safe(item) for item in value]
    return repr(value)


class DriftEnvironment(Environment[DriftAction, DriftObservation, State]):
    """One registered Gymnasium env behind OpenEnv's ``Environment`` interface (one per session).

    Args:
        env_id: a registered id (``drift/MathFeedback-v0``, or ``module:id`` for a third party's).
        env_kwargs: the env's keyword arguments.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True  # every session makes its own env: nothing is shared

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.env = make_env(env_id, self.env_kwargs)
        self.episode_id: str | None = None
        self.turn = 0
        self.task_id: str | None = None
        self.ended = False

    def reset(  # type: ignore[override]
        self, seed: int | None = None, episode_id: str | None = None, options: Any = None, **unknown: Any
    ) -> DriftObservation:
        """Start an episode: ``seed`` seeds the env, ``options`` picks the task (``index``/``task_id``)."""
        if unknown:
            raise EnvRequestError(
                f"{self.env_id}: reset takes {', '.join(RESET_KEYS)}; got unknown {sorted(unknown)} "
                f"(a task goes in options, e.g. {{'options': {{'index': 3}}}})"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise EnvRequestError(f"{self.env_id}: reset's seed must be an int or null, got {seed!r}")
        if options is not None:
            if not isinstance(options, dict):
                raise EnvRequestError(
                    f"{self.env_id}: reset's options must be an object such as {{'index': 3}}, got {options!r}"
                )
            extra = set(options) - set(OPTION_KEYS)
            if extra:
                raise EnvRequestError(
                    f"{self.env_id}: reset's options take {' or '.join(OPTION_KEYS)}; got unknown {sorted(extra)}"
                )
        try:
            obs, info = self.env.reset(seed=seed, options=options)
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise EnvRequestError(
                f"{self.env_id}: reset(seed={seed!r}, options={options!r}) failed: {err}"
            ) from err
        self.episode_id = episode_id or str(uuid.uuid4())
        self.turn = 0
        self.task_id = None if info.get("task_id") is None else str(info["task_id"])
        self.ended = False
        return DriftObservation(text=obs, info=json_safe(info), reward=None, done=False)

    def step(self, action: DriftAction, timeout_s: float | None = None, **kwargs: Any) -> DriftObservation:  # type: ignore[override]
        """Hand the env one reply; the observation carries the feedback, ``info``, reward and ``done``."""
        if self.episode_id is None:
            raise EnvRequestError(
                f"{self.env_id}: step before reset. Over HTTP, OpenEnv builds a fresh env for every "
                "request, so an episode cannot span /reset and /step: play it on the /ws session"
            )
        if self.ended:
            raise EnvRequestError(
                f"{self.env_id}: the episode on task {self.task_id!r} is over; reset before stepping again"
            )
        reply = action.message if isinstance(action, DriftAction) else action
        if not isinstance(reply, str):
            raise EnvRequestError(f"{self.env_id}: a reply must be a str, got {type(reply).__name__}")
        obs, reward, terminated, truncated, info = self.env.step(reply)
        self.turn += 1
        self.ended = bool(terminated or truncated)
        return DriftObservation(
            text=obs,
            info=json_safe(info),
            reward=float(reward),
            done=self.ended,
            terminated=bool(terminated),
            truncated=bool(truncated),
        )

    def facts(self) -> dict[str, Any]:
        """What a client needs to know about the served env before its first reset."""
        base = self.env.unwrapped
        num_tasks = base.num_tasks() if callable(getattr(base, "num_tasks", None)) else None
        space = self.env.observation_space
        return json_safe(
            {
                "env_id": self.env_id,
                "env_kwargs": self.env_kwargs,
                "num_tasks": num_tasks,
                "max_turns": getattr(base, "max_turns", None),
                "format_penalty": getattr(base, "format_penalty", None),
                "max_text_length": getattr(space, "max_length", None),
            }
        )

    @property
    def state(self) -> State:
        """The env's facts and, during an episode, the task, the turn and the oracle's reply."""
        oracle = None
        if self.episode_id is not None and not self.ended:
            oracle_reply = getattr(self.env.unwrapped, "oracle_reply", None)
            oracle = oracle_reply() if callable(oracle_reply) else None
        return State(
            episode_id=self.episode_id,
            step_count=self.turn,
            task_id=self.task_id,
            turn=self.turn,
            ended=self.ended,
            oracle_reply=oracle,
            **self.facts(),
        )

    def get_metadata(self) -> EnvironmentMetadata:
        """The env id and the first line of its class docstring."""
        doc = (type(self.env.unwrapped).__doc__ or "").strip().splitlines()
        return EnvironmentMetadata(
            name=self.env_id,
            description=doc[0] if doc else f"{self.env_id} (a Gymnasium text env served by drift serve-env)",
        )

    def close(self) -> None:
        """Close the env (CodeFeedback stops its sandbox workers)."""
        self.env.close()


def _bad_request(_request: Request, err: Exception) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": str(err)})


def create_app(
    env_id: str, env_kwargs: Mapping[str, Any] | None = None, *, max_sessions: int = 64
) -> FastAPI:
    """OpenEnv's FastAPI app serving ``env_id`` (one :class:`DriftEnvironment` per ``/ws`` session, at
    most ``max_sessions`` at once). The env is made once here, so a bad id or kwarg fails now (a
    ``ValueError`` naming both) rather than at the first client."""
    if not isinstance(max_sessions, int) or max_sessions < 1:
        raise ValueError(f"max_sessions must be an int >= 1, got {max_sessions!r}")
    env_kwargs = dict(env_kwargs or {})
    try:
        json.dumps(env_kwargs)
    except TypeError as err:
        raise ValueError(f"env_kwargs must be JSON data (they are served in the state): {err}") from err
    DriftEnvironment(env_id, env_kwargs).close()
    factory = functools.partial(DriftEnvironment, env_id, env_kwargs)
    app = create_fastapi_app(factory, DriftAction, DriftObservation, max_concurrent_envs=max_sessions)
    app.add_exception_handler(EnvRequestError, _bad_request)
    app.title = f"{env_id} (OpenEnv, served by drift serve-env)"
    return app
