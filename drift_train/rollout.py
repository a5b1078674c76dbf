"""Reference-policy rollouts: N tasks x K samples of multi-turn episodes in any registered env.

The engine runs episodes in *chunks*: a chunk holds whole groups (all K samples of ``batch_size // K``
tasks, at least one task). Within a chunk, two schedules:

* ``lockstep`` (the default): every turn makes one batched ``policy.generate`` call over the
  chunk's live episodes, steps each env with its reply, and drops the episodes that ended. Works
  with every backend (vLLM and OpenAI-compatible servers batch each call on their side); with the
  hf backend's prefix cache a turn only encodes the new feedback, not the whole history.
* ``continuous`` (policies with sessions: the hf backend): each episode takes its next turn as soon
  as its own reply is done and the env has answered, joining the running batch, so no turn waits
  for its slowest reply. Worth it when reply lengths have a long tail and a decode step costs about
  the same at any batch size (GPUs); on the CPU benchmark it is 5-11% faster than lock-step.

Both are one loop: each chunk opens a :class:`~drift_train.policies.base.Session` (the policy's own
for ``continuous``; for ``lockstep`` a :class:`~drift_train.policies.base.LockstepSession` that answers
everything submitted in one ``generate`` call), submits every episode, and resubmits an episode as
soon as its env has answered, until no episode is live.

Records are written as episodes end. All K samples of a task share ``prompt_id`` (the task index),
reset options and env seed, so they replay the same task. A step whose verdict the env's checker could
not reach in time (``info["undecided"]``) is recorded as the env scored it and listed in the record's
``undecided_turns``; the field is left out when every verdict was reached.

What the engine hands the policy besides the conversation: the tools the env offers
(``info["tools"]`` of the latest reset/step, a list of OpenAI function schemas, per conversation as
``tools=``; only when some episode has tools, so policies written without the argument keep working
with other envs), and, for a policy that declares ``needs_env``, the live episodes' env objects
(``envs=``). A record of an episode with tools keeps them as ``meta.tools``. The policy's optional
capabilities (``needs_env``, ``has_sessions``, ``describe``, ``token_meta``, ``reset_prefix_cache``)
are declared by the :class:`~drift_train.policies.Policy` protocol; subclass
:class:`~drift_train.policies.PolicyBase` for their defaults.

Reproducibility and resume: chunks are fixed by (num_tasks, task_offset, samples, batch_size);
in lock-step each episode's sampling seed is a function of (seed, prompt_id, traj_idx, turn), in a
continuous chunk one session seeded from (seed, first task) samples everything in a fixed order, and
the policy's prefix cache is emptied at each chunk, so the same settings give the same records.
``resume=True`` reads the records already in the output file, skips finished chunks, and re-runs a
partly written chunk in full, writing only the episodes that are missing: the file ends up with the
same records as an uninterrupted run, none twice.

Python API: :func:`iter_rollouts` streams records, :func:`rollout` runs to a file and returns the
records and a summary; ``drift rollout`` (:mod:`drift_train.commands.rollout`) is the CLI and
:mod:`drift_train.display` the live display, both outside the engine.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from drift_train.facts import turn_counts
from drift_train.policies import Policy, SamplingParams
from drift_train.policies.base import LockstepSession, Session, combine_seeds, missing_members
from drift_train.tokens import encode_tokens
from drift_train.trajectories import (
    SCHEMA_VERSION,
    TrajectoryWriter,
    read_trajectories,
    turn_keys,
)

__all__ = [
    "CountsTasks",
    "PenalisesFormat",
    "PrefetchingEnv",
    "RolloutConfig",
    "RolloutStats",
    "iter_rollouts",
    "rollout",
    "summarize",
]

SCHEDULES = ("lockstep", "continuous")
MAX_TURNS_GUARD = 1000  # an env that never ends an episode is a bug; stop instead of looping forever


@dataclass
class RolloutConfig:
    """What to roll out. ``num_tasks=None`` takes every task the env has (from ``task_offset`` on)."""

    env_id: str
    env_kwargs: dict = field(default_factory=dict)
    num_tasks: int | None = None
    samples: int = 4  # K, trajectories per task
    task_offset: int = 0
    max_turns: int | None = None  # overrides env_kwargs["max_turns"] when given
    sampling: SamplingParams = field(default_factory=SamplingParams)
    seed: int = 0
    batch_size: int = 64  # episodes per chunk (rounded down to whole groups, at least one)
    schedule: str = "lockstep"  # or "continuous" (policies with sessions): see the module docstring
    record_tokens: bool = (
        True  # write each turn's token ids (the `tokens` field) where the backend returns them
    )

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if not isinstance(self.env_kwargs, dict):
            raise ValueError(f"env_kwargs must be a dict, got {type(self.env_kwargs).__name__}")
        if self.num_tasks is not None and self.num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {self.num_tasks}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.task_offset < 0:
            raise ValueError(f"task_offset must be >= 0, got {self.task_offset}")
        if self.max_turns is not None and self.max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {self.max_turns}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.sampling.n != 1:
            raise ValueError("sampling.n must be 1 in rollouts; use samples=K for K trajectories per task")
        self.sampling.validate()

    @property
    def effective_env_kwargs(self) -> dict:
        """``env_kwargs`` with ``max_turns`` applied."""
        kwargs = dict(self.env_kwargs)
        if self.max_turns is not None:
            kwargs["max_turns"] = self.max_turns
        return kwargs

    @property
    def groups_per_chunk(self) -> int:
        """Tasks whose K samples run together."""
        return max(1, self.batch_size // self.samples)


@dataclass
class RolloutStats:
    """Counters of one run (not of records read back on resume)."""

    episodes: int = 0
    skipped: int = 0  # already in the output file
    generate_calls: int = 0
    generated_tokens: int = 0
    generate_s: float = 0.0
    env_s: float = 0.0
    wall_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second of wall time (environment and bookkeeping included)."""
        return self.generated_tokens / self.wall_s if self.wall_s > 0 else 0.0


# ---- what the engine uses of an env beyond gymnasium's reset/step (each optional; every drift env
# has the first two, CodeFeedback the third); a plain gymnasium env that follows the drift contract
# without them still runs


@runtime_checkable
class CountsTasks(Protocol):
    """An env that says how many tasks it has (then ``num_tasks=None`` rolls out all of them)."""

    def num_tasks(self) -> int:
        """How many tasks ``reset(options={"index": i})`` can select."""
        ...


@runtime_checkable
class PenalisesFormat(Protocol):
    """An env whose reward includes ``format_penalty`` on a turn with no readable answer; the engine
    records that penalty apart from the turn reward (``turn_rewards`` + ``format_penalty``)."""

    format_penalty: float


@runtime_checkable
class PrefetchingEnv(Protocol):
    """An env whose checks run elsewhere (CodeFeedback's sandbox workers): ``prefetch(action)`` starts
    the check of the reply the next ``step(action)`` gets, so a batch of steps overlaps."""

    def prefetch(self, action: str) -> None:
        """Start checking ``action``; the next ``step`` with the same action uses the result."""
        ...


@dataclass
class _Episode:
    env: Any
    prompt_id: int
    traj_idx: int
    task_id: str = ""
    messages: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    verifier: list = field(default_factory=list)
    answers: list = field(default_factory=list)
    penalties: list = field(default_factory=list)
    undecided: list = field(default_factory=list)  # 1-based turns whose verdict was undecided
    turns: list = field(default_factory=list)
    tools: list | None = None  # the OpenAI function schemas the env offers (info["tools"]), if any
    token_turns: list = field(
        default_factory=list
    )  # (prompt_ids, completion_ids, finish_reason) or None per turn
    done: bool = False
    terminated: bool = False
    truncated: bool = False


def make_env(env_id: str, env_kwargs: dict) -> Any:
    """``gym.make(env_id, **env_kwargs)`` with the ``drift/*`` ids registered first."""
    import gymnasium as gym

    import drift_envs  # noqa: F401 - registers drift/* ids

    try:
        return gym.make(env_id, disable_env_checker=True, **env_kwargs)
    except (gym.error.Error, TypeError) as err:  # unknown id / unexpected kwarg
        raise ValueError(f"cannot make env {env_id!r} with kwargs {env_kwargs}: {err}") from err


def count_tasks(env: Any) -> int | None:
    """The env's number of tasks (``num_tasks()`` of the unwrapped env), or None if it does not say."""
    base = env.unwrapped
    return int(base.num_tasks()) if isinstance(base, CountsTasks) else None


def task_indices(config: RolloutConfig, env: Any) -> list[int]:
    """The task indices a config covers (``prompt_id`` of each group)."""
    available = count_tasks(env)
    if config.num_tasks is None:
        if available is None:
            raise ValueError(f"{config.env_id} does not report num_tasks(); pass num_tasks")
        stop = available
    else:
        stop = config.task_offset + config.num_tasks
        if available is not None and stop > available:
            raise ValueError(
                f"{config.env_id} has {available} tasks; task_offset={config.task_offset} + "
                f"num_tasks={config.num_tasks} goes past the end"
            )
    if config.task_offset >= stop:
        raise ValueError(f"task_offset={config.task_offset} leaves no tasks (the env has {available})")
    return list(range(config.task_offset, stop))


def _messages(info: dict, env_id: str, call: str) -> list:
    messages = info.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError(
            f"{env_id}: info from {call}() has no 'messages' list; the drift env contract requires the whole "
            "conversation as info['messages'] = [{'role', 'content'}, ...] after every reset and step"
        )
    return messages


def _served_identity(probe: Any, config: RolloutConfig) -> tuple[str, dict] | None:
    """``(env_id, env_kwargs)`` of the env behind a remote one (``drift/Remote-v0``: the env the server
    plays, ``max_turns`` applied as :attr:`RolloutConfig.effective_env_kwargs` does), so that its records
    name it as a local rollout of it would; ``None`` for a local env or a server that does not say."""
    served = getattr(getattr(probe, "unwrapped", probe), "served_env", None)
    identity = served() if callable(served) else None
    if identity is None:
        return None
    env_id, env_kwargs = identity
    if config.max_turns is not None:
        env_kwargs = {**env_kwargs, "max_turns": config.max_turns}
    return env_id, env_kwargs


def _record(
    ep: _Episode,
    config: RolloutConfig,
    policy_meta: dict,
    token_meta: dict,
    env_seed: int,
    identity: tuple[str, dict] | None = None,
) -> dict:
    keys = turn_keys(len(ep.rewards))
    t_star = next((t for t, v in enumerate(ep.verifier, start=1) if v), None)
    tokens = None
    if "tokens_unavailable" not in token_meta:
        missing = next((t for t, turn in enumerate(ep.token_turns, start=1) if turn is None), None)
        if missing is None:
            tokens = encode_tokens(ep.token_turns)
        else:
            token_meta = {
                "tokens_unavailable": f"the {policy_meta.get('backend')} backend returned no token ids "
                f"for turn {missing}",
                **_template_kwargs(token_meta),
            }
    record = {
        "prompt_id": ep.prompt_id,
        "traj_idx": ep.traj_idx,
        "env_id": identity[0] if identity else config.env_id,
        "env_kwargs": identity[1] if identity else config.effective_env_kwargs,
        "task_id": ep.task_id,
        "messages": ep.messages,
        "turn_rewards": dict(zip(keys, ep.rewards, strict=True)),
        "verifier": dict(zip(keys, ep.verifier, strict=True)),
        "t_star": t_star,
        "answer_norms": ep.answers,
        "format_penalty": round(float(sum(ep.penalties)), 12),
        "meta": {
            "schema_version": SCHEMA_VERSION,
            **policy_meta,
            **token_meta,
            "sampling": config.sampling.to_dict(),
            "seed": config.seed,
            "env_seed": env_seed,
            "num_turns": len(keys),
            "terminated": ep.terminated,
            "truncated": ep.truncated,
            "turns": ep.turns,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }
    if ep.undecided:  # absent when every verdict was reached: such records stay as they always were
        record["undecided_turns"] = list(ep.undecided)
    if ep.tools is not None:
        record["meta"]["tools"] = ep.tools
    if tokens is not None:
        record["tokens"] = tokens
    return record


def check_policy(policy: Policy, schedule: str) -> None:
    """Raise ``TypeError`` unless ``policy`` implements the whole :class:`Policy` protocol, and
    ``ValueError`` when ``schedule`` needs a capability it lacks."""
    if not isinstance(policy, Policy):
        raise TypeError(
            f"{type(policy).__name__} does not implement the Policy protocol "
            f"(missing {', '.join(missing_members(policy))}); "
            "subclass drift_train.policies.PolicyBase, which gives every optional capability a default"
        )
    if schedule == "continuous" and not policy.has_sessions:
        raise ValueError(
            f"schedule='continuous' needs a policy with sessions (the hf backend); "
            f"the {policy.backend} backend runs lock-step"
        )


def _policy_meta(policy: Policy) -> dict:
    return {k: v for k, v in policy.describe().items() if isinstance(v, (str, int, float, bool)) or v is None}


def _token_meta(policy: Policy, config: RolloutConfig) -> dict:
    """What every record's ``meta`` says about token ids (tokenizer and template kwargs, or why there are none)."""
    meta = dict(policy.token_meta())
    if not config.record_tokens:
        meta = {"tokens_unavailable": "not recorded (record_tokens=False)", **_template_kwargs(meta)}
    return meta


def _open_session(
    policy: Policy, config: RolloutConfig, chunk: list[int], episodes: list[_Episode]
) -> Session:
    """The chunk's session: the policy's own (continuous), or lock-step turns over ``generate``.

    Lock-step seeds each reply from (seed, prompt_id, traj_idx, turn), so an episode's replies do not
    depend on which others share its turn; a continuous session samples everything from one
    generator seeded from (seed, first task, tasks in the chunk), in the order the engine submits.
    """
    if config.schedule == "continuous":
        return policy.session(config.sampling, seed=combine_seeds([config.seed, chunk[0], len(chunk)]))

    def seed_of(i: int) -> int:
        ep = episodes[i]
        return combine_seeds([config.seed, ep.prompt_id, ep.traj_idx, len(ep.rewards) + 1])

    def episode_of(i: int) -> str:
        return f"{episodes[i].prompt_id}:{episodes[i].traj_idx}"

    return LockstepSession(policy, config.sampling, seed_of, episode_of)


def _template_kwargs(token_meta: dict) -> dict:
    """The ``chat_template_kwargs`` entry of a token meta (the text path applies them when ids are missing)."""
    return (
        {"chat_template_kwargs": token_meta["chat_template_kwargs"]}
        if "chat_template_kwargs" in token_meta
        else {}
    )


def iter_rollouts(
    policy: Policy,
    config: RolloutConfig,
    *,
    done: set[tuple[Any, int]] | None = None,
    stats: RolloutStats | None = None,
    on_event: Callable[[dict], None] | None = None,
    shard: tuple[int, int] | None = None,
) -> Iterator[dict]:
    """Yield one trajectory record per finished episode, as episodes finish.

    ``done`` holds ``(prompt_id, traj_idx)`` pairs to leave out (already written); chunks made only
    of such pairs are skipped without generating. ``stats`` (if given) is updated in place.
    ``on_event`` is called with progress events (``{"event": "turn"|"chunk", ...}``). ``shard=(i, N)``
    runs only every N-th chunk from the i-th (:mod:`drift_train.merge`); records then say
    ``meta.shard = "i/N"``.
    """
    config.validate()
    check_policy(policy, config.schedule)
    done = done or set()
    stats = stats if stats is not None else RolloutStats()
    env_kwargs = config.effective_env_kwargs
    probe = make_env(config.env_id, env_kwargs)
    tasks = task_indices(config, probe)
    k = config.samples
    per_chunk = config.groups_per_chunk
    chunks = [tasks[i : i + per_chunk] for i in range(0, len(tasks), per_chunk)]
    if shard is not None:
        from drift_train.merge import shard_chunks

        chunks = shard_chunks(chunks, shard)
    envs = [probe] + [make_env(config.env_id, env_kwargs) for _ in range(min(len(tasks), per_chunk) * k - 1)]
    policy_meta = _policy_meta(policy)
    token_meta = _token_meta(policy, config)
    policy_meta["schedule"] = config.schedule
    if shard is not None:  # absent otherwise: unsharded records stay as they always were
        policy_meta["shard"] = f"{shard[0]}/{shard[1]}"
    identity = _served_identity(probe, config)
    if identity is not None:  # a served env's records name it; the remote that served it goes in meta
        policy_meta["served_by"] = {"env_id": config.env_id, "env_kwargs": env_kwargs}
    started = time.perf_counter()
    try:
        for chunk_number, chunk in enumerate(chunks):
            wanted = {(p, j) for p in chunk for j in range(k)} - done
            if not wanted:
                stats.skipped += len(chunk) * k
                if on_event:
                    on_event({"event": "chunk", "chunk": chunk_number, "groups": len(chunk), "skipped": True})
                continue
            stats.skipped += len(chunk) * k - len(wanted)
            policy.reset_prefix_cache()  # a chunk's replies never depend on what ran before it (resume, reruns)
            episodes = []
            env_seeds = {}
            t0 = time.perf_counter()
            for p in chunk:
                env_seeds[p] = combine_seeds([config.seed, p])
                for j in range(k):
                    ep = _Episode(env=envs[len(episodes)], prompt_id=p, traj_idx=j)
                    _, info = ep.env.reset(seed=env_seeds[p], options={"index": p})
                    ep.task_id = str(info.get("task_id", p))
                    ep.messages = _messages(info, config.env_id, "reset")
                    ep.tools = info.get("tools")
                    episodes.append(ep)
            stats.env_s += time.perf_counter() - t0
            emit = functools.partial(
                _emit,
                wanted=wanted,
                config=config,
                policy_meta=policy_meta,
                token_meta=token_meta,
                env_seeds=env_seeds,
                stats=stats,
                started=started,
                identity=identity,
            )
            session = _open_session(policy, config, chunk, episodes)
            for i, ep in enumerate(episodes):
                session.submit(i, ep.messages, tools=ep.tools, env=ep.env)
            while session.busy:
                if on_event:
                    live = [ep for ep in episodes if not ep.done]
                    on_event(
                        {
                            "event": "turn",
                            "chunk": chunk_number,
                            "turn": max(len(ep.rewards) + 1 for ep in live),
                            "live": len(live),
                        }
                    )
                t0 = time.perf_counter()
                replies = session.poll()
                stats.generate_s += time.perf_counter() - t0
                stats.generate_calls += 1
                stepped = [episodes[i] for i, _ in replies]
                yield from emit(_step_episodes(stepped, [c for _, c in replies], config=config, stats=stats))
                for i, _ in replies:
                    ep = episodes[i]
                    if ep.done:
                        continue
                    if len(ep.rewards) >= MAX_TURNS_GUARD:
                        raise RuntimeError(
                            f"{config.env_id}: an episode ran past {MAX_TURNS_GUARD} turns without ending"
                        )
                    session.submit(i, ep.messages, tools=ep.tools, env=ep.env)
            if on_event:
                on_event({"event": "chunk", "chunk": chunk_number, "groups": len(chunk), "skipped": False})
    finally:
        stats.wall_s = time.perf_counter() - started
        policy.reset_prefix_cache()  # free the cached prefixes (memory) once the rollout is over
        for env in envs:
            env.close()


def _step_episodes(
    episodes: list[_Episode], completions: list, *, config: RolloutConfig, stats: RolloutStats
) -> list[_Episode]:
    """Step each episode's env with its reply and record the turn; returns the episodes that ended."""
    t0 = time.perf_counter()
    # envs whose checks run elsewhere (CodeFeedback's sandbox workers) start them all now, so the
    # steps below overlap instead of waiting one check at a time
    for ep, completion in zip(episodes, completions, strict=True):
        if isinstance(ep.env.unwrapped, PrefetchingEnv):
            ep.env.unwrapped.prefetch(completion.text)
    finished = []
    for ep, completion in zip(episodes, completions, strict=True):
        _, reward, terminated, truncated, info = ep.env.step(completion.text)
        format_ok = bool(info.get("format_ok", True))
        base = ep.env.unwrapped
        penalty = 0.0 if format_ok or not isinstance(base, PenalisesFormat) else float(base.format_penalty)
        ep.rewards.append(float(reward) - penalty)
        ep.penalties.append(penalty)
        ep.verifier.append(int(bool(info.get("correct", terminated))))
        if info.get("undecided", False):  # envs without a checker deadline never set it
            ep.undecided.append(len(ep.rewards))
        answer = info.get("answer")
        ep.answers.append(None if answer is None else str(answer))
        feedback = info.get("feedback")
        ep.turns.append(
            {
                "tokens": completion.num_tokens,
                "finish_reason": completion.finish_reason,
                "format_ok": format_ok,
                "repeated": bool(info.get("repeated", False)),
                "feedback_kind": feedback.get("kind") if isinstance(feedback, dict) else None,
            }
        )
        ep.token_turns.append(
            None
            if completion.token_ids is None or completion.prompt_ids is None
            else (completion.prompt_ids, completion.token_ids, completion.finish_reason)
        )
        ep.messages = _messages(info, config.env_id, "step")
        if "tools" in info:
            ep.tools = info["tools"]
        stats.generated_tokens += completion.num_tokens
        if terminated or truncated:
            ep.done, ep.terminated, ep.truncated = True, bool(terminated), bool(truncated)
            finished.append(ep)
    stats.env_s += time.perf_counter() - t0
    return finished


def _emit(
    finished: list[_Episode],
    *,
    wanted: set,
    config: RolloutConfig,
    policy_meta: dict,
    token_meta: dict,
    env_seeds: dict,
    stats: RolloutStats,
    started: float,
    identity: tuple[str, dict] | None = None,
) -> Iterator[dict]:
    """The records of the ended episodes this run was asked for (resume leaves the others out)."""
    for ep in finished:
        if (ep.prompt_id, ep.traj_idx) in wanted:
            stats.episodes += 1
            stats.wall_s = time.perf_counter() - started
            yield _record(ep, config, policy_meta, token_meta, env_seeds[ep.prompt_id], identity)


def _check_compatible(
    existing: dict, config: RolloutConfig, policy: Policy, path: Path, shard: tuple[int, int] | None = None
) -> None:
    """A resumed file must have been written with the same settings, or the groups would mix."""
    meta = existing["meta"]
    now = {
        "meta.shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        "env_id": config.env_id,
        "env_kwargs": config.effective_env_kwargs,
        "meta.model": policy.model_id,
        "meta.backend": policy.backend,
        "meta.sampling": config.sampling.to_dict(),
        "meta.seed": config.seed,
    }
    served_by = meta.get("served_by") or {}  # a served env's file: what was configured is the remote
    before = {
        "meta.shard": meta.get("shard"),
        "env_id": served_by.get("env_id", existing["env_id"]),
        "env_kwargs": served_by.get("env_kwargs", existing["env_kwargs"]),
        "meta.model": meta.get("model"),
        "meta.backend": meta.get("backend"),
        "meta.sampling": meta.get("sampling"),
        "meta.seed": meta.get("seed"),
    }
    for name, value in now.items():
        if json.dumps(before[name], sort_keys=True) != json.dumps(value, sort_keys=True):
            raise ValueError(
                f"{path}: cannot resume: the file was written with {name}={before[name]!r}, this run has "
                f"{value!r}; use the same settings or another --out"
            )


def rollout(
    policy: Policy,
    config: RolloutConfig,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    console: Any = None,
    shard: tuple[int, int] | None = None,
) -> tuple[list[dict], RolloutStats]:
    """Run the rollouts, appending each record to ``out`` (JSONL) as it finishes.

    Returns the records of this run (plus, with ``resume``, those already in the file, file first)
    and the run's :class:`RolloutStats`. ``out=None`` keeps records in memory only. An existing
    non-empty ``out`` needs ``resume=True`` (continue it) or ``overwrite=True`` (start over).
    ``progress`` shows a rich progress display. ``shard=(i, N)``: only that shard (:func:`iter_rollouts`).
    """
    config.validate()
    previous: list[dict] = []
    writer = None
    if out is not None:
        out = Path(out)
        if out.suffix == ".parquet":
            raise ValueError(
                f"{out}: rollouts are written as JSONL (.jsonl); convert with write_trajectories()"
            )
        if out.exists() and out.stat().st_size > 0 and not resume:
            if not overwrite:
                raise FileExistsError(
                    f"{out} already holds trajectories; pass resume (--resume) or overwrite"
                )
            out.unlink()
        if resume and out.exists():
            previous = list(read_trajectories(out, allow_partial_tail=True))
            if previous:
                _check_compatible(previous[0], config, policy, out, shard)
        writer = TrajectoryWriter(out)
    done = {(r["prompt_id"], r["traj_idx"]) for r in previous}
    stats = RolloutStats()
    records: list[dict] = []
    display = None
    if progress:
        from drift_train.display import RolloutProgress

        display = RolloutProgress(config, console=console)
    try:
        if display:
            display.start(done)
        for record in iter_rollouts(
            policy, config, done=done, stats=stats, on_event=display.event if display else None, shard=shard
        ):
            if writer:
                writer.write(record)
            records.append(record)
            if display:
                display.finished(record, stats)
    finally:
        if writer:
            writer.close()
        if display:
            display.stop()
    return previous + records, stats


def summarize(records: Sequence[dict]) -> dict:
    """Per-turn accuracy, success within t turns, format-error rate and answer statistics.

    ``turn_accuracy[t-1]``: of the episodes that reached turn t, the fraction correct at turn t.
    ``success_within[t-1]``: of all episodes, the fraction solved by turn t (an undecided turn counts
    as not solved, as the record scores it). ``undecided_turns``/``undecided_episodes``: how many turns
    had no verdict, and in how many episodes. Every count is :func:`drift_train.facts.turn_counts`.
    """
    n = len(records)
    if n == 0:
        return {
            "episodes": 0,
            "groups": 0,
            "turn_accuracy": [],
            "reached": [],
            "success_within": [],
            "format_error_rate": 0.0,
            "mean_turns": 0.0,
            "undecided_turns": 0,
            "undecided_episodes": 0,
        }
    counts = turn_counts(records)
    reached = counts["reached"]
    turns = sum(reached)
    return {
        "episodes": n,
        "groups": len({r["prompt_id"] for r in records}),
        "reached": reached,
        "turn_accuracy": [c / m if m else 0.0 for c, m in zip(counts["correct"], reached, strict=True)],
        "success_within": [s / n for s in counts["solved_within"]],
        "format_error_rate": sum(counts["format_errors"]) / turns if turns else 0.0,
        "mean_turns": turns / n,
        "undecided_turns": sum(counts["undecided"]),
        "undecided_episodes": sum(counts["first_undecided"]),
    }
