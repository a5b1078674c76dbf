"""``drift/Remote-v0``: an env served over OpenEnv's WebSocket protocol, played as a Gymnasium env.

``drift serve-env --env ID --port P`` (:mod:`drift_envs.integrations.openenv`) serves any registered env;
``gym.make("drift/Remote-v0", url="http://127.0.0.1:P")`` plays it here, one ``/ws`` session (one env on
the server) per ``RemoteEnv``, so ``drift rollout --env drift/Remote-v0 --env-kwargs '{"url": ...}'``
rolls out a served env with the very records a local rollout of that env writes, apart from ``meta``
(whose ``served_by`` names the remote: ``env_id`` and ``env_kwargs`` name the served env, as the
server reports them, :meth:`RemoteEnv.served_env`). Only the standard
library's ``json`` and the ``websockets`` package are needed here, not OpenEnv itself.
"""

from __future__ import annotations

import functools
import json
import math
import typing
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gymnasium as gym

from drift_envs.core import UnicodeText, valid_text

__all__ = ["RemoteEnv", "RemoteEnvError", "RemoteSessionLost"]

DEFAULT_MAX_TEXT_LENGTH = 65536


class RemoteEnvError(RuntimeError):
    """The server answered a request with an error (its message is quoted)."""


class RemoteSessionLost(ConnectionError):
    """The session with the server is gone (the server stopped, the network dropped, or no answer came
    within ``timeout`` seconds); the episode cannot go on."""


def ws_url(url: str) -> str:
    """The ``/ws`` endpoint of a server given as ``http(s)://host:port[/prefix]`` or ``ws(s)://...``."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"drift/Remote-v0 needs url='http://HOST:PORT' of an OpenEnv server, got {url!r}")
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(
            f"drift/Remote-v0: url must look like http://HOST:PORT (or ws://, https://, wss://), got {url!r}"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class RemoteEnv(gym.Env[str, str]):
    """A text env on an OpenEnv server (``drift serve-env``), played through one ``/ws`` session.

    ## Description
    Every ``reset``/``step`` is one request on the session; the env itself (its tasks, checks, feedback
    and ``info``) lives on the server, which gives this session an env of its own until :meth:`close`.

    ## Action Space
    ``UnicodeText(max_text_length)``: the model's reply, a ``str``.

    ## Observation Space
    ``UnicodeText(max_text_length)`` with the served env's ``max_text_length`` (65,536 when the server
    does not say): the first user message after ``reset``, the feedback after ``step``.

    ## Rewards, Episode End, Info
    The served env's: ``reward``, ``terminated``, ``truncated`` and ``info`` come back as the server sent
    them (for a drift env: the contract's ``task_id``, ``turn``, ``messages``, ``correct``, ...).

    ## Arguments
    * ``url``: the server, ``http://HOST:PORT``.
    * ``timeout``: seconds to wait for each answer (default 120); past it, or when the connection drops,
      :class:`RemoteSessionLost` names the server and the call.
    * ``connect_timeout``: seconds to open the session (default 10).
    * ``action_field`` / ``observation_field``: the names of the reply in the action and of the text in
      the observation (``message`` / ``text``, as ``drift serve-env`` serves them; set them for another
      OpenEnv server of text envs).
    * ``max_turns``: optional; must equal the served env's (a served env's turn budget is the server's).
    * any other keyword: a reset default, sent with every ``reset`` (a per-call ``options`` overrides
      the default ``options``).

    ``num_tasks()``, ``format_penalty`` and ``max_turns`` are there when the server states them (``drift
    serve-env`` does); ``oracle_reply()`` asks the server for the current episode's oracle reply (None
    where the served env has none, or the server does not say).

    ## Example
    >>> import gymnasium as gym, drift_envs  # doctest: +SKIP
    >>> env = gym.make("drift/Remote-v0", url="http://127.0.0.1:8000")  # doctest: +SKIP
    >>> obs, info = env.reset(seed=0, options={"index": 3})  # doctest: +SKIP
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        action_field: str = "message",
        observation_field: str = "text",
        max_turns: int | None = None,
        **reset_defaults: Any,
    ) -> None:
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"drift/Remote-v0: {name} must be a number of seconds > 0, got {value!r}")
        self.url = url
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.action_field = action_field
        self.observation_field = observation_field
        self.reset_defaults = dict(reset_defaults)
        try:
            json.dumps(self.reset_defaults)
        except TypeError as err:
            raise ValueError(f"drift/Remote-v0: reset defaults must be JSON data: {err}") from err
        self._ws_url = ws_url(url)
        self._ws: Any = None
        self._done = True
        self._started = False
        self._pending: str | None = None  # the reply of a step sent by prefetch() and not yet read
        self._connect()
        self.facts = self._state()
        length = self.facts.get("max_text_length")
        length = int(length) if isinstance(length, int) and length > 0 else DEFAULT_MAX_TEXT_LENGTH
        self.observation_space = UnicodeText(length)
        self.action_space = UnicodeText(length)
        served_turns = self.facts.get("max_turns")
        if max_turns is not None and served_turns is not None and max_turns != served_turns:
            self.close()
            raise ValueError(
                f"drift/Remote-v0: max_turns={max_turns} but the env at {url} was served with max_turns="
                f"{served_turns}; the turn budget is the server's (drift serve-env --env-kwargs "
                f"'{{\"max_turns\": {max_turns}}}')"
            )
        if served_turns is not None:
            self.max_turns = int(served_turns)
        if isinstance(self.facts.get("format_penalty"), (int, float)):
            # the rollout engine records the penalty apart from the turn reward (PenalisesFormat)
            self.format_penalty = float(self.facts["format_penalty"])
        if isinstance(self.facts.get("num_tasks"), int):
            # an instance attribute, so that an env whose server does not say has no num_tasks at all
            # (the rollout engine then asks for --num-tasks instead of reading a wrong count)
            self.num_tasks = functools.partial(int, self.facts["num_tasks"])

    # -- the session

    def _connect(self) -> None:
        from websockets.sync.client import connect

        host = urlsplit(self._ws_url).hostname or ""
        local = host in ("localhost", "127.0.0.1", "::1")
        try:
            connection = connect(
                self._ws_url,
                open_timeout=self.connect_timeout,
                close_timeout=1,
                max_size=None,  # a long conversation in info["messages"] is one big message
                compression=None,  # loopback and LAN: compressing costs more than it saves
                proxy=None if local else True,
            )
            # held open across calls: entered as the context manager websockets wants it used as
            self._ws = connection.__enter__()
        except Exception as err:  # noqa: BLE001 - every way of not connecting reads the same to a user
            raise RemoteSessionLost(
                f"drift/Remote-v0: cannot open a session with the env server at {self.url} ({self._ws_url}): "
                f"{type(err).__name__}: {err}. Is `drift serve-env` running there?"
            ) from err

    def _request(self, message: dict, call: str) -> dict:
        self._settle()
        self._send(message, call)
        return self._receive(call)

    def _send(self, message: dict, call: str) -> None:
        if self._ws is None:
            raise RemoteSessionLost(f"drift/Remote-v0: {call}() on a closed env (server {self.url})")
        try:
            self._ws.send(json.dumps(message))
        except Exception as err:  # noqa: BLE001 - ConnectionClosed or an OSError: the session is gone
            self._lost(err, call)

    def _receive(self, call: str) -> dict:
        try:
            raw = self._ws.recv(timeout=self.timeout)
        except TimeoutError as err:
            self._drop()
            raise RemoteSessionLost(
                f"drift/Remote-v0: the env server at {self.url} sent no answer to {call}() within "
                f"{self.timeout:g} s (timeout=); the session is abandoned"
            ) from err
        except Exception as err:  # noqa: BLE001 - ConnectionClosed or an OSError: the session is gone
            self._lost(err, call)
        response = json.loads(raw)
        if response.get("type") == "error":
            self._refused(response, call)
        return response.get("data") or {}

    def _refused(self, response: dict, call: str) -> typing.NoReturn:
        """Raise :class:`RemoteEnvError` with the server's error ``response`` to ``call``."""
        data = response.get("data") or {}
        detail = data.get("message", "unknown error")
        if data.get("errors"):
            detail += f": {data['errors']}"
        if data.get("code") == "CAPACITY_REACHED":
            detail += (
                "; each Remote-v0 env holds one session (a rollout: one per episode of a chunk), so serve "
                "with a larger --max-sessions or roll out with a smaller --batch-size"
            )
        raise RemoteEnvError(
            f"drift/Remote-v0: the env server at {self.url} refused {call}(): {detail} "
            f"({data.get('code', 'no code')})"
        )

    def _lost(self, err: Exception, call: str) -> typing.NoReturn:
        # a server that refuses a session (at capacity) says why, then closes: that reason, not the close
        last = None
        if self._ws is not None:
            try:
                last = json.loads(self._ws.recv(timeout=0))
            except Exception:  # noqa: BLE001 - nothing was left to read
                last = None
        self._drop()
        if isinstance(last, dict) and last.get("type") == "error":
            self._refused(last, call)
        raise RemoteSessionLost(
            f"drift/Remote-v0: lost the session with the env server at {self.url} during {call}() "
            f"({type(err).__name__}: {err}); restart the server, then resume (drift rollout --resume)"
        ) from err

    def _settle(self) -> None:
        """Read the answer to a prefetched step that no ``step`` collected (the episode moved on anyway)."""
        if self._pending is not None:
            self._pending = None
            try:
                self._receive("step")
            except RemoteEnvError:
                pass  # a refused step changed nothing on the server

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - the connection is gone already
                pass

    def _state(self) -> dict:
        return self._request({"type": "state"}, "state")

    def served_env(self) -> tuple[str, dict] | None:
        """``(env_id, env_kwargs)`` of the env the server plays, where it says (``drift serve-env`` does;
        another project's OpenEnv server may not): ``drift rollout`` writes these in each record, as a
        local rollout of that env does, and the remote itself in ``meta.served_by``."""
        env_id, env_kwargs = self.facts.get("env_id"), self.facts.get("env_kwargs")
        if isinstance(env_id, str) and env_id and isinstance(env_kwargs, dict):
            return env_id, dict(env_kwargs)
        return None

    # -- gymnasium

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        """Start an episode on the server: ``seed`` and ``options`` (``{"index": i}`` or ``{"task_id":
        id}``) go to the served env's ``reset``, with the reset defaults."""
        super().reset(seed=seed)
        data = dict(self.reset_defaults)
        if seed is not None:
            data["seed"] = int(seed)
        if options is not None:
            data["options"] = dict(options)
        obs, _, _, _, info = self._unpack(self._request({"type": "reset", "data": data}, "reset"), "reset")
        self._done = False
        self._started = True
        return obs, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        """Send one reply; returns the served env's ``(obs, reward, terminated, truncated, info)``."""
        if not isinstance(action, str):
            raise TypeError(f"RemoteEnv.step expects the model's reply as a str, got {type(action).__name__}")
        if not self._started:
            raise RemoteEnvError("drift/Remote-v0: call reset() before step()")
        if self._done:
            raise RemoteEnvError("drift/Remote-v0: the episode has ended; call reset() to start a new one")
        if self._pending is not None:
            sent, self._pending = self._pending, None
            answer = self._receive("step")
            if sent != action:
                self._done = True
                raise RemoteEnvError(
                    "drift/Remote-v0: step() got another reply than the one prefetch() already sent; the "
                    "server stepped with the prefetched one, so this episode cannot go on: reset it"
                )
        else:
            answer = self._request({"type": "step", "data": {self.action_field: action}}, "step")
        result = self._unpack(answer, "step")
        self._done = result[2] or result[3]
        return result

    def prefetch(self, action: str) -> None:
        """Send the step of ``action`` now and read its answer in the next ``step(action)``: the rollout
        engine prefetches a whole batch of steps first, so the server works on them all at once (one
        session each) instead of one round trip after another."""
        if self._pending is None and self._started and not self._done and isinstance(action, str):
            self._send({"type": "step", "data": {self.action_field: action}}, "step")
            self._pending = action

    def _unpack(self, data: dict, call: str) -> tuple[str, float, bool, bool, dict]:
        observation = data.get("observation")
        if not isinstance(observation, dict) or not isinstance(observation.get(self.observation_field), str):
            raise RemoteEnvError(
                f"drift/Remote-v0: the answer to {call}() from {self.url} has no text field "
                f"{self.observation_field!r} in its observation (got {sorted(observation or {})}); set "
                "observation_field= to the field that holds the env's text"
            )
        done = bool(data.get("done", False))
        info = observation.get("info")
        info = dict(info) if isinstance(info, dict) else {}
        # a server that does not say which way the episode ended: done without a reward is truncated
        terminated = bool(observation.get("terminated", done and bool(data.get("reward"))))
        truncated = bool(observation.get("truncated", done and not terminated))
        reward = data.get("reward")
        reward = float(reward) if isinstance(reward, (int, float)) and math.isfinite(reward) else 0.0
        # a drift server's text is valid already; another server's is made a member of the space here
        text = valid_text(observation[self.observation_field], self.observation_space.max_length)
        return text, reward, terminated, truncated, info

    def oracle_reply(self) -> str | None:
        """The served env's oracle reply for the current episode (from the session's state), or None
        where the served env has no oracle, the episode has ended, or the server does not say."""
        reply = self._state().get("oracle_reply")
        return reply if isinstance(reply, str) else None

    def close(self) -> None:
        """End the session (the server frees its env)."""
        self._pending = None  # its answer, if any, goes with the connection
        if self._ws is not None:
            try:
                self._ws.send(json.dumps({"type": "close"}))
            except Exception:  # noqa: BLE001 - closing a session that is already gone
                pass
        self._drop()
        super().close()
