"""MTU-Bench tool metrics of tool-use episodes, with the DRIFT release's definitions.

Per dialogue, against the reference calls of each user request ("turn", in MTU-Bench's words), with the
model's calls made while that request was open (requests never reached count as no calls)::

    per turn (gold calls g_1..g_n, predicted p_1..p_m):
      tool selection   #{i <= min(m, n): name(p_i) = name(g_i)} / n
      param selection  #{i <= min(m, n): name(p_i) = name(g_i) and every argument of g_i is in p_i
                         with an equal value} / n
      tool number      1[m = n]
      tool order       1[names(p) = names(g)]
      turn success     1[all n names and parameters right and m = n]
      (a turn with no gold calls scores 1 on each when the model made no call, else 0; order 1)

    per dialogue of T turns:
      tool_selection_accuracy, parameter_selection_accuracy, tool_number_accuracy, tool_order_accuracy,
      turn_success_rate (ATS): the per-turn means
      soft_turn_success_rate (SATS): Σ_t d^(t-1) success_t / Σ_t d^(t-1), decay factor d (0.9)
      success_rate (SR): 1[every turn succeeded]
      task_process_rate (TPR): ATS, as the release computes it

Names compare lower-cased with ``_``/``-``/space runs folded; argument values as strings stripped and
lower-cased (the release's ``normalize_param_value``); extra predicted arguments are allowed (its
lenient mode). Unlike the release, an argument whose value is falsy (``0``, ``""``) counts as present.

These are ``compute_mtu_bench_metrics`` of the release's ``src/benchmark.py`` applied to every call the
model made on each request. The numbers the release *reports* come from ``evaluate_mtu_bench``
(``src/eval_math_multiturn_vllm.py``), which differs in four ways; ``drift eval`` reports those too,
as ``release_mtu_<name>`` (:data:`RELEASE_MTU_METRICS`, :func:`release_dialogue_metrics`):

1. **final attempt only.** The release retries a request after "incorrect" feedback and scores only
   the attempt that solved it (else the last one), not the wrong attempts before it. Here an attempt at
   a request is the calls made since the previous reply the user judged (an ``Answer:`` that was not
   accepted, or a format error) up to the next one; a solved request's final attempt is the one its
   accepted answer closed; an unsolved request's is its last (the open one, or the one the last judged
   reply closed, ``[]`` when that reply came with no calls since the one before); a request never
   reached is ``[]``. So ``release_mtu_tool_number_accuracy`` forgives a wrong call the model then
   retried, where ``tool_number_accuracy`` counts it.
2. **success = solved.** ``release_mtu_success_rate`` and ``release_mtu_task_process_rate`` are both
   1 when the episode was solved (the record's ``t_star`` is set), else 0, as the release overrides
   them; here ``success_rate`` needs every request's calls right and ``task_process_rate`` is ATS.
   "Solved" is the env's verdict: ours accepts a request once its reference calls have all been made
   (in any attempts) and the answer is right, the release's loop one reply holding exactly the gold
   calls in order; so on the same replies the two can disagree on whether an episode was solved.
3. **``None`` counts as missing**: the release reads ``pred.get(key) or pred.get(key.lower())`` and
   fails on None, so a falsy value (``0``, ``""``) under a gold key that is not lower case falls
   through to the lower-case key and is missing when the prediction has none.
4. **argument keys by the gold key or its lower case**: a predicted ``AMOUNT`` does not match a gold
   ``amount`` (here both sides are lower-cased, so it does).

Names and values compare the same way in both (``normalize_tool_name``, ``normalize_param_value``),
and the per-request and per-dialogue arithmetic is the same ``compute_mtu_bench_metrics``. On a
dialogue of one request (MTU-Bench's single-turn rows, all the release evaluates) the ``release_mtu_*``
values are exactly the release's per-sample values; ``tests/test_release_metrics.py`` checks them
against the release's own functions.

:func:`episode_tool_metrics` gets the per-request calls of a trajectory record by replaying its
assistant messages in a fresh env (``env_id``, ``env_kwargs``, ``task_id`` of the record): the env is
deterministic, so the replay passes through the same requests as the rollout did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = [
    "DEFAULT_DECAY",
    "RELEASE_MTU_METRICS",
    "TOOL_METRICS",
    "dialogue_metrics",
    "episode_tool_metrics",
    "is_tool_record",
    "release_dialogue_metrics",
    "release_params_right",
    "reply_text",
    "tool_metric_observations",
    "turn_metrics",
]

DEFAULT_DECAY = 0.9
TOOL_METRICS = (
    "tool_selection_accuracy",
    "parameter_selection_accuracy",
    "tool_number_accuracy",
    "tool_order_accuracy",
    "turn_success_rate",
    "soft_turn_success_rate",
    "success_rate",
    "task_process_rate",
)
# the same eight as the release's evaluate_mtu_bench reports them (module docstring, points 1-4)
RELEASE_MTU_METRICS = tuple(f"release_mtu_{name}" for name in TOOL_METRICS)


def _name(call: Any) -> str:
    from drift_envs.tool.calls import normalize_tool_name

    return normalize_tool_name(call.name)


def _params_right(pred: Any, gold: Any) -> bool:
    from drift_envs.tool.calls import normalize_argument

    given = {str(k).lower(): v for k, v in pred.arguments.items()}
    for key, value in gold.arguments.items():
        key = str(key).lower()
        if key not in given or normalize_argument(given[key]) != normalize_argument(value):
            return False
    return True


def release_params_right(pred: Any, gold: Any) -> bool:
    """The release's lenient argument check (``compare_tool_calls``): every gold argument is found in
    the prediction under the gold key, or failing a truthy value there under its lower case, is not
    None, and has an equal value after ``normalize_param_value``."""
    from drift_envs.tool.calls import normalize_argument

    for key, value in gold.arguments.items():
        given = pred.arguments.get(key) or pred.arguments.get(str(key).lower())
        if given is None or normalize_argument(given) != normalize_argument(value):
            return False
    return True


def turn_metrics(
    pred: Sequence[Any], gold: Sequence[Any], *, release_arguments: bool = False
) -> dict[str, float]:
    """The per-turn scores of the module docstring (``tool_selection``, ``param_selection``,
    ``tool_number``, ``tool_order``, ``turn_success``); calls have ``name`` and ``arguments``.
    ``release_arguments`` compares arguments as the release's ``compare_tool_calls`` does
    (:func:`release_params_right`) instead of with lower-cased keys on both sides."""
    params_right = release_params_right if release_arguments else _params_right
    if not gold:
        none = float(not pred)
        return {"tool_selection": none, "param_selection": none, "tool_number": none, "tool_order": 1.0,
                "turn_success": none}  # fmt: skip
    n = len(gold)
    names = sum(1 for p, g in zip(pred, gold, strict=False) if _name(p) == _name(g))
    params = sum(1 for p, g in zip(pred, gold, strict=False) if _name(p) == _name(g) and params_right(p, g))
    return {
        "tool_selection": names / n,
        "param_selection": params / n,
        "tool_number": float(len(pred) == n),
        "tool_order": float([_name(p) for p in pred] == [_name(g) for g in gold]),
        "turn_success": float(names == n and params == n and len(pred) == n),
    }


def dialogue_metrics(
    pred_turns: Sequence[Sequence[Any]],
    gold_turns: Sequence[Sequence[Any]],
    decay: float = DEFAULT_DECAY,
    *,
    release_arguments: bool = False,
) -> dict[str, float]:
    """The eight dialogue metrics (:data:`TOOL_METRICS`); missing predicted turns count as no calls.
    ``release_arguments``: see :func:`turn_metrics`."""
    if not 0 < decay <= 1:
        raise ValueError(f"the decay factor must be in (0, 1], got {decay!r}")
    if not gold_turns:
        return dict.fromkeys(TOOL_METRICS, 0.0)
    turns = [
        turn_metrics(pred_turns[t] if t < len(pred_turns) else [], gold, release_arguments=release_arguments)
        for t, gold in enumerate(gold_turns)
    ]
    T = len(turns)

    def mean(key: str) -> float:
        return sum(m[key] for m in turns) / T

    weights = [decay**t for t in range(T)]
    ats = mean("turn_success")
    return {
        "tool_selection_accuracy": mean("tool_selection"),
        "parameter_selection_accuracy": mean("param_selection"),
        "tool_number_accuracy": mean("tool_number"),
        "tool_order_accuracy": mean("tool_order"),
        "turn_success_rate": ats,
        "soft_turn_success_rate": sum(w * m["turn_success"] for w, m in zip(weights, turns, strict=True))
        / sum(weights),
        "success_rate": float(all(m["turn_success"] == 1.0 for m in turns)),
        "task_process_rate": ats,
    }


def release_dialogue_metrics(
    final_turns: Sequence[Sequence[Any]],
    gold_turns: Sequence[Sequence[Any]],
    solved: bool,
    decay: float = DEFAULT_DECAY,
) -> dict[str, float]:
    """The eight metrics as the release's ``evaluate_mtu_bench`` reports them, keyed
    :data:`RELEASE_MTU_METRICS`: ``final_turns[k]`` is the final attempt at request k (module docstring,
    point 1), arguments compare as the release does (points 3-4), and success and task process rate are
    ``solved`` (point 2). A request without gold calls is scored as ``[[]]`` is there."""
    metrics = dialogue_metrics(
        final_turns, [list(g) for g in gold_turns] or [[]], decay, release_arguments=True
    )
    metrics["success_rate"] = metrics["task_process_rate"] = float(solved)
    return {f"release_mtu_{name}": metrics[name] for name in TOOL_METRICS}


def is_tool_record(record: dict) -> bool:
    """A trajectory of a tool-use env: its env is ``drift/ToolUse-*`` or its record keeps ``meta.tools``."""
    env_id = record.get("env_id") or ""
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    return "ToolUse-" in str(env_id) or bool(meta.get("tools"))


def reply_text(message: dict) -> str:
    """The reply text an assistant message stands for: its content, then its ``tool_calls`` as Hermes
    blocks (what the env parses)."""
    from drift_envs.tool.calls import format_calls

    calls = []
    for item in message.get("tool_calls") or []:
        fn = item.get("function", item)
        arguments = fn.get("arguments", {})
        if isinstance(arguments, str):
            arguments = json.loads(arguments) if arguments.strip() else {}
        calls.append({"name": fn["name"], "arguments": arguments})
    content = message.get("content") or ""
    if not calls:
        return content
    return f"{content}\n{format_calls(calls)}" if content else format_calls(calls)


_ENVS: dict[str, Any] = {}


def _env_for(record: dict) -> Any:
    import gymnasium as gym

    import drift_envs  # noqa: F401 - registers the ids

    kwargs = dict(record.get("env_kwargs") or {})
    key = json.dumps([record.get("env_id"), kwargs], sort_keys=True, default=str)
    if key not in _ENVS:
        if len(_ENVS) > 16:
            _ENVS.clear()
        _ENVS[key] = gym.make(record["env_id"], disable_env_checker=True, **kwargs).unwrapped
    return _ENVS[key]


# the feedback kinds of a reply that ran calls; any other reply is judged by the user, which ends an attempt
_CALL_KINDS = ("tool_results",)
_SOLVED_KINDS = ("next_request", "success")


def episode_tool_metrics(record: dict, decay: float = DEFAULT_DECAY) -> dict[str, float] | None:
    """The eight tool metrics of one trajectory record (:data:`TOOL_METRICS`) and the release's
    versions of them (:data:`RELEASE_MTU_METRICS`), or None when it is not a tool-use episode whose env
    can be rebuilt (no ``env_id``, or an env without ``tool_trace``)."""
    if not is_tool_record(record) or not record.get("env_id"):
        return None
    env = _env_for(record)
    if not hasattr(env, "tool_trace"):
        return None
    env.reset(options={"task_id": record["task_id"]})
    num_requests = len(env.tool_trace())
    attempts: list[list[list]] = [[] for _ in range(num_requests)]  # closed attempts per request
    current: list[list] = [[] for _ in range(num_requests)]  # the open attempt's calls
    final: list[list | None] = [None] * num_requests  # the attempt an accepted answer closed
    for message in record["messages"]:
        if message.get("role") != "assistant":
            continue
        before = [len(p) for p, _ in env.tool_trace()]
        *_, terminated, truncated, info = env.step(reply_text(message))
        trace = env.tool_trace()
        for k, (pred, _) in enumerate(trace):
            current[k].extend(pred[before[k] :])
        feedback = info.get("feedback") if isinstance(info.get("feedback"), dict) else {}
        kind = feedback.get("kind")
        k = int(info.get("request", 1)) - 1
        if kind not in _CALL_KINDS and 0 <= k < num_requests:
            attempts[k].append(current[k])
            current[k] = []
            if kind in _SOLVED_KINDS:
                final[k] = attempts[k][-1]
        if terminated or truncated:
            break
    trace = env.tool_trace()
    for k in range(num_requests):
        if final[k] is None:
            final[k] = current[k] if current[k] or not attempts[k] else attempts[k][-1]
    metrics = dialogue_metrics([p for p, _ in trace], [g for _, g in trace], decay)
    solved = record.get("t_star") is not None
    metrics.update(release_dialogue_metrics(final, [g for _, g in trace], solved, decay))
    return metrics


def tool_metric_observations(records: Sequence[dict], decay: float = DEFAULT_DECAY) -> dict[str, tuple]:
    """``{metric: (y, x)}`` for :func:`drift_train.evaluate.metric_observations`: each tool episode's value
    with weight 1, other episodes weight 0, for :data:`TOOL_METRICS` and :data:`RELEASE_MTU_METRICS`;
    empty when no record is a tool episode."""
    per_episode = [episode_tool_metrics(r, decay) for r in records]
    if all(m is None for m in per_episode):
        return {}
    return {
        name: ([m[name] if m else 0.0 for m in per_episode], [1.0 if m else 0.0 for m in per_episode])
        for name in TOOL_METRICS + RELEASE_MTU_METRICS
    }
