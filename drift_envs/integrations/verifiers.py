"""Any registered env as a ``verifiers`` environment (tested with verifiers 0.3.1).

:func:`load_environment` returns a ``vf.MultiTurnEnv`` — the classic API, which verifiers 0.3.x keeps
under ``verifiers.legacy`` and serves as ``import verifiers as vf``; verifiers 0.4.0 ships only the new
``verifiers.v1`` stack (``Env``/``Taskset``/``Harness``), without ``MultiTurnEnv``, hence the pin.

* The dataset: one row per task (``prompt`` = the env's opening messages, system prompt included;
  ``info`` = ``task_index``, ``task_id``, ``env_seed``: the seed ``drift rollout --seed S`` resets that
  task with), the same rows as ``eval_dataset``.
* ``env_response``: each model reply steps the env; its feedback comes back as a user message, as in
  our own conversations. When the env ends the episode (solved, or ``max_turns`` replies spent) the
  rollout stops; the env's own turn budget decides, so the ``MultiTurnEnv``'s ``max_turns`` is off.
* The rubric: ``drift_return`` (weight 1), the episode's DRIFT return (γ-discounted rewards, format
  penalty, repeated-answer penalty: :meth:`~drift_envs.integrations.episode.Episode.episode_return`),
  and, at weight 0, the metrics ``solved`` and ``turns``. The rollout's state also keeps
  ``drift_record`` (the episode's trajectory-record fields).

    import verifiers as vf
    from drift_envs.integrations.verifiers import load_environment

    env = load_environment(env_id="drift/MathFeedback-v0", num_tasks=100, max_turns=3)
    results = env.evaluate_sync(client=vf.ClientConfig(api_base_url="http://127.0.0.1:8000/v1"),
                                model="Qwen/Qwen2.5-0.5B-Instruct", rollouts_per_example=4)
"""

from __future__ import annotations

from typing import Any

import verifiers as vf
from datasets import Dataset

from drift_envs.integrations.episode import DEFAULT_DIVERSITY_LAMBDA, DEFAULT_GAMMA, Episode, task_rows

__all__ = ["DriftMultiTurnEnv", "load_environment"]


def _text(message: Any) -> str:
    """The text of a chat message, a dict or one of verifiers' pydantic messages."""
    content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") if isinstance(p, dict) else getattr(p, "text", "") or "" for p in content]
    return "".join(parts)


def _role(message: Any) -> str:
    return message.get("role") if isinstance(message, dict) else getattr(message, "role", "")


class DriftMultiTurnEnv(vf.MultiTurnEnv):
    """A drift env behind ``vf.MultiTurnEnv``: one :class:`Episode` per rollout, feedback as user turns.

    Args:
        env_id: the registered id.
        env_kwargs: the env's kwargs (``split`` included).
        rows: the task rows (:func:`drift_envs.integrations.episode.task_rows`).
        gamma, diversity_lambda: γ and λ of the return.
        **kwargs: passed to ``vf.MultiTurnEnv`` (``sampling_args``, ``max_seq_len``, ...).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict,
        rows: list[dict],
        *,
        gamma: float = DEFAULT_GAMMA,
        diversity_lambda: float = DEFAULT_DIVERSITY_LAMBDA,
        **kwargs: Any,
    ) -> None:
        self.drift_env_id = env_id
        self.drift_env_kwargs = dict(env_kwargs)
        self.gamma = float(gamma)
        self.diversity_lambda = float(diversity_lambda)
        self._episodes: dict[str, Episode] = {}
        data = Dataset.from_list(
            [
                {
                    "prompt": row["prompt"],
                    "info": {k: row[k] for k in ("task_index", "task_id", "env_seed")},
                    "answer": "",
                }
                for row in rows
            ]
        )
        rubric = vf.Rubric(funcs=[self.drift_return, self.solved, self.turns], weights=[1.0, 0.0, 0.0])
        super().__init__(
            dataset=data, eval_dataset=data, rubric=rubric, max_turns=-1, env_id=env_id, **kwargs
        )

    # ---- the rubric: reads what the episode left in the state --------------------------------
    async def drift_return(self, state: vf.State) -> float:
        """The episode's DRIFT return (0.0 when the rollout stepped no reply)."""
        return float(state.get("drift_return", 0.0))

    async def solved(self, state: vf.State) -> float:
        """1.0 when the env declared the episode solved."""
        return float(state.get("drift_solved", 0.0))

    async def turns(self, state: vf.State) -> float:
        """Replies the env judged."""
        return float(state.get("drift_turns", 0))

    # ---- the episode --------------------------------------------------------------------------
    async def setup_state(self, state: vf.State) -> vf.State:
        """Make the rollout's env and reset it on the row's task; the row's prompt must be what it opens with."""
        info = state.get("info") or {}
        if "task_index" not in info and "task_id" not in info:
            raise ValueError(
                f"{self.drift_env_id}: the row's info names no task ({info!r}); rows come from load_environment"
            )
        episode = Episode(self.drift_env_id, self.drift_env_kwargs)
        episode.reset(index=info.get("task_index"), task_id=info.get("task_id"), seed=info.get("env_seed"))
        given = [(_role(m), _text(m)) for m in state["prompt"]]
        opening = [(m["role"], m["content"]) for m in episode.messages]
        if given != opening:
            episode.close()
            raise ValueError(
                f"{self.drift_env_id}: the row's prompt {given!r} is not what the env (kwargs "
                f"{self.drift_env_kwargs}) opens task {info!r} with ({opening!r})"
            )
        self._episodes[state["trajectory_id"]] = episode
        self._score(state, episode)
        return state

    async def env_response(self, messages: vf.Messages, state: vf.State, **kwargs: Any) -> vf.Messages:
        """Step the env with the last reply; its feedback as a user message, or the end of the rollout."""
        episode = self._episodes[state["trajectory_id"]]
        reply = _text(messages[-1]) if messages and _role(messages[-1]) == "assistant" else ""
        feedback, *_ = episode.step(reply)
        self._score(state, episode)
        if episode.done:
            state["final_env_response"] = []
            return []
        return [{"role": "user", "content": feedback}]

    def _score(self, state: vf.State, episode: Episode) -> None:
        """Plain numbers and the record in the state: the rubric runs after the env is closed."""
        state["drift_return"] = episode.episode_return(self.gamma, self.diversity_lambda)
        state["drift_solved"] = float(episode.terminated)
        state["drift_turns"] = len(episode.replies)
        state["drift_record"] = episode.record()

    @vf.cleanup
    async def close_episode(self, state: vf.State) -> None:
        """Close the rollout's env (CodeFeedback stops its sandbox workers)."""
        episode = self._episodes.pop(state.get("trajectory_id"), None)
        if episode is not None:
            episode.close()


def load_environment(
    env_id: str = "drift/MathFeedback-v0",
    *,
    split: str = "test",
    num_tasks: int | None = 100,
    seed: int = 0,
    gamma: float = DEFAULT_GAMMA,
    diversity_lambda: float = DEFAULT_DIVERSITY_LAMBDA,
    env_kwargs: dict | None = None,
    **kwargs: Any,
) -> DriftMultiTurnEnv:
    """A ``vf.MultiTurnEnv`` over tasks ``0..num_tasks-1`` of ``env_id`` (``None``: all of them).

    ``split`` (``"test"``, the env default) and ``env_kwargs`` (or any keyword this function does not
    take: ``max_turns=3``, ``feedback="hint"``) make the env; ``seed`` is ``drift rollout --seed``'s, so
    task ``i`` is the task of its ``prompt_id=i``; ``gamma``/``diversity_lambda`` are the return's γ and λ.
    """
    verifier_keys = {"sampling_args", "max_seq_len", "max_workers", "score_rollouts", "pass_threshold"}
    env_kwargs = {**(env_kwargs or {}), **{k: v for k, v in kwargs.items() if k not in verifier_keys}}
    env_kwargs["split"] = split
    rows = task_rows(
        env_id, split, num_tasks, seed=seed, **{k: v for k, v in env_kwargs.items() if k != "split"}
    )
    return DriftMultiTurnEnv(
        env_id,
        env_kwargs,
        rows,
        gamma=gamma,
        diversity_lambda=diversity_lambda,
        **{k: v for k, v in kwargs.items() if k in verifier_keys},
    )
