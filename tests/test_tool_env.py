"""drift/ToolUse-v0: the procedural world, call parsing, adversarial replies, MTU-Bench files, tool
metrics, trajectory validation, rendering with tools, and the tiny-model pipeline on the env."""

from __future__ import annotations

import json
import time
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import drift_envs  # noqa: F401 - registers the ids
from drift_envs.sources.records import DataError
from drift_envs.tool.calls import ToolCall, format_calls, parse_reply
from drift_envs.tool.tasks import DOMAINS
from drift_train.tool_metrics import dialogue_metrics, episode_tool_metrics, turn_metrics
from drift_train.trajectories import TrajectoryError, validate_record

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ENV_ID = "drift/ToolUse-v0"
MTU_FILE = Path(__file__).parent / "data" / "mtu_bench_sample.jsonl"


def make(**kwargs):
    return gym.make(ENV_ID, disable_env_checker=True, **kwargs)


def call(name: str, **arguments) -> str:
    return format_calls([ToolCall(name, arguments)])


def play_oracle(env, index: int) -> tuple[float, bool, dict, list[float]]:
    """Run the oracle to the end; (return, terminated, last info, rewards)."""
    _, info = env.reset(options={"index": index})
    rewards = []
    while True:
        reply = env.unwrapped.oracle_reply()
        assert reply is not None, info["messages"]
        _, reward, terminated, truncated, info = env.step(reply)
        rewards.append(reward)
        if terminated or truncated:
            return sum(rewards), terminated, info, rewards


def record_of(env, info: dict, rewards: list[float], env_kwargs: dict | None = None) -> dict:
    """A trajectory record of the episode just played (as the rollout engine writes one)."""
    n = len(rewards)
    verifier = {f"t{k}": int(k == n and rewards[-1] >= 1.0) for k in range(1, n + 1)}
    return {
        "prompt_id": 0,
        "traj_idx": 0,
        "env_id": ENV_ID,
        "env_kwargs": env_kwargs
        if env_kwargs is not None
        else {"domains": list(env.unwrapped.source.config.domains), "split": env.unwrapped.split},
        "task_id": info["task_id"],
        "messages": info["messages"],
        "turn_rewards": {f"t{k}": float(r >= 1.0) for k, r in enumerate(rewards, start=1)},
        "verifier": verifier,
        "t_star": n if verifier[f"t{n}"] else None,
        "answer_norms": ["x"] * n,
        "format_penalty": 0.0,
        "meta": {"schema_version": 1, "tools": info["tools"]},
    }


# ---- the env contract ---------------------------------------------------------------------------


def test_env_contract_and_manual() -> None:
    env = gym.make(ENV_ID)
    check_env(env.unwrapped)
    doc = type(env.unwrapped).__doc__
    for section in ("## Description", "## Action Space", "## Observation Space", "## Rewards", "## Feedback",
                    "## Starting State", "## Episode End", "## Arguments", "## Example"):  # fmt: skip
        assert section in doc
    obs, info = env.reset(seed=0, options={"index": 0})
    assert info["messages"][-1] == {"role": "user", "content": obs}
    assert info["tools"] and all(t["type"] == "function" for t in info["tools"])
    with pytest.raises(TypeError):
        env.step(None)


def test_docstring_example_holds() -> None:
    env = make(domains=["bank"])
    obs, info = env.reset(seed=0, options={"index": 0})
    doc = type(env.unwrapped).__doc__
    assert repr(obs) in doc
    owner = obs.removeprefix("How much money is in ").removesuffix("'s bank account?")
    obs, *_ = env.step(call("find_account", owner=owner))
    assert obs.startswith("find_account: {") and obs in doc


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_oracle_solves_every_domain(domain: str, split: str) -> None:
    env = make(domains=[domain], split=split)
    for index in range(6):
        total, terminated, info, rewards = play_oracle(env, index)
        assert terminated and total == pytest.approx(1.0) and rewards[-1] == 1.0
        assert info["requests_done"] == info["num_requests"] >= 2  # follow-up requests were revealed
        record = record_of(env, info, rewards)
        validate_record(record)  # tool_calls and tool messages in OpenAI shapes
        assert any(m.get("tool_calls") for m in info["messages"]) and any(
            m["role"] == "tool" for m in info["messages"]
        )
        metrics = episode_tool_metrics(record)
        assert (
            metrics is not None and metrics["success_rate"] == 1.0 and metrics["tool_order_accuracy"] == 1.0
        )


def test_partial_credit_pays_each_request() -> None:
    env = make(domains=["bank"], partial_credit=True)
    total, terminated, info, rewards = play_oracle(env, 0)
    n = info["num_requests"]
    assert terminated and total == pytest.approx(1.0)
    assert sorted(r for r in rewards if r) == pytest.approx([1 / n] * n)
    plain = make(domains=["bank"])
    _, _, _, rewards = play_oracle(plain, 0)
    assert rewards[:-1] == [0.0] * (len(rewards) - 1) and rewards[-1] == 1.0


def test_determinism_and_disjoint_splits() -> None:
    a, b = make(), make()
    for index in (0, 7, 123):
        obs_a, info_a = a.reset(seed=1, options={"index": index})
        obs_b, info_b = b.reset(seed=99, options={"index": index})
        assert (obs_a, info_a["tools"], info_a["task_id"]) == (obs_b, info_b["tools"], info_b["task_id"])
        assert play_oracle(a, index)[2]["messages"] == play_oracle(b, index)[2]["messages"]
    assert a.reset(options={"index": 1})[0] != a.reset(options={"index": 6})[0]
    assert make(seed=1).reset(options={"index": 0})[0] != make(seed=2).reset(options={"index": 0})[0] or (
        make(seed=1).unwrapped.get_task(0).meta != make(seed=2).unwrapped.get_task(0).meta
    )

    def first_requests(split: str) -> set[str]:
        env = make(split=split)
        return {env.unwrapped.get_task(i).prompt for i in range(300)}

    assert not first_requests("train") & first_requests("test")


# ---- feedback on wrong calls --------------------------------------------------------------------


def bank_env():
    env = make(domains=["bank"])
    obs, info = env.reset(options={"index": 0})
    return env, obs.removeprefix("How much money is in ").removesuffix("'s bank account?")


def test_hallucinated_tool_gets_an_error_result() -> None:
    env, _ = bank_env()
    obs, reward, terminated, _, info = env.step(call("delete_all_accounts"))
    tool = info["messages"][-1]
    assert tool["role"] == "tool" and tool["name"] == "delete_all_accounts"
    assert "unknown tool 'delete_all_accounts'" in tool["content"] and "find_account" in tool["content"]
    assert info["tool_errors"] == 1 and info["format_ok"] and reward == 0.0 and not terminated
    assert info["messages"][-2]["tool_calls"][0]["id"] == tool["tool_call_id"]


def test_missing_and_ill_typed_arguments_get_clear_errors() -> None:
    env, _ = bank_env()
    _, _, _, _, info = env.step(call("find_account"))
    assert "missing required argument 'owner'" in info["messages"][-1]["content"]
    _, _, _, _, info = env.step(call("get_balance", account_id=42))
    assert "'account_id' must be of type string" in info["messages"][-1]["content"]
    _, _, _, _, info = env.step(call("get_balance", account_id="ACC-1", colour="red"))
    assert "unexpected argument 'colour'" in info["messages"][-1]["content"]
    _, _, _, _, info = env.step(call("get_balance", account_id="ACC-0000"))
    assert "no account with id 'ACC-0000'" in info["messages"][-1]["content"]


def test_distractor_tool_is_offered_but_wrong() -> None:
    env, owner = bank_env()
    tools = [t["function"]["name"] for t in env.unwrapped.episode_info()["tools"]]
    distractor = next(t for t in tools if t not in ("find_account", "get_balance", "transfer"))
    _, _, _, _, info = env.step(call(distractor))
    assert (
        "missing required argument" in info["messages"][-1]["content"]
        or "error" in info["messages"][-1]["content"]
    )
    _, _, _, _, info = env.step("Answer: 100")
    assert info["feedback"]["kind"] == "not_done" and "isn't done yet" in info["feedback"]["text"]


def test_wrong_tool_wrong_argument_and_wrong_order_in_the_metrics() -> None:
    gold = [ToolCall("delete_event", {"event_id": "EV-1"}), ToolCall("create_event", {"title": "yoga"})]
    right = turn_metrics(gold, gold)
    assert all(v == 1.0 for v in right.values())
    swapped = turn_metrics(gold[::-1], gold)
    assert swapped["tool_order"] == 0.0 and swapped["tool_number"] == 1.0 and swapped["turn_success"] == 0.0
    assert swapped["tool_selection"] == 0.0
    wrong_arg = turn_metrics([gold[0], ToolCall("create_event", {"title": "tennis"})], gold)
    assert wrong_arg["tool_selection"] == 1.0 and wrong_arg["param_selection"] == 0.5
    assert wrong_arg["turn_success"] == 0.0 and wrong_arg["tool_order"] == 1.0
    wrong_tool = turn_metrics([ToolCall("list_events", {}), gold[1]], gold)
    assert wrong_tool["tool_selection"] == 0.5 and wrong_tool["tool_order"] == 0.0
    stuffed = turn_metrics([*gold, gold[1]], gold)
    assert stuffed["tool_number"] == 0.0 and stuffed["turn_success"] == 0.0
    assert turn_metrics([], []) == {"tool_selection": 1.0, "param_selection": 1.0, "tool_number": 1.0,
                                     "tool_order": 1.0, "turn_success": 1.0}  # fmt: skip
    assert turn_metrics([gold[0]], [])["turn_success"] == 0.0
    # extra predicted arguments are allowed (the release's lenient mode); a falsy value still counts
    assert turn_metrics([ToolCall("f", {"a": 0, "b": 1})], [ToolCall("f", {"a": 0})])["turn_success"] == 1.0


def test_dialogue_metrics_follow_the_release() -> None:
    g = [ToolCall("a", {}), ToolCall("b", {})]
    m = dialogue_metrics([[g[0]], [g[1]], []], [[g[0]], [g[1]], [g[0]]], decay=0.5)
    assert m["turn_success_rate"] == pytest.approx(2 / 3) == m["task_process_rate"]
    assert m["soft_turn_success_rate"] == pytest.approx((1 + 0.5) / (1 + 0.5 + 0.25))
    assert m["success_rate"] == 0.0 and m["tool_number_accuracy"] == pytest.approx(2 / 3)
    assert (
        dialogue_metrics([[g[0]]], [[g[0]], [g[1]]])["success_rate"] == 0.0
    )  # turns never reached: no calls


def test_swapped_order_still_succeeds_in_the_env_but_not_in_tool_order() -> None:
    env = make(domains=["calendar"])
    _, info = env.reset(options={"index": 0})
    env.step(env.unwrapped.oracle_reply())
    env.step(env.unwrapped.oracle_reply())  # request 1 answered: request 2 (delete + create) is open
    calls = parse_reply(env.unwrapped.oracle_reply()).calls
    assert [c.name for c in calls] == ["delete_event", "create_event"]
    env.step(format_calls(calls[::-1]))
    *_, terminated, _, info = env.step(env.unwrapped.oracle_reply())
    assert terminated
    n = len(info["messages"])
    rewards = [0.0] * (sum(m["role"] == "assistant" for m in info["messages"]) - 1) + [1.0]
    metrics = episode_tool_metrics(record_of(env, info, rewards))
    assert n and metrics["tool_order_accuracy"] == 0.5 and metrics["success_rate"] == 0.0
    assert metrics["tool_selection_accuracy"] == 0.5 and metrics["tool_number_accuracy"] == 1.0


# ---- format errors and parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, fragment",
    [
        ('<tool_call>{"name": "get_balance", "arguments": {</tool_call>', "not valid JSON"),
        ("<tool_call>{}", "never closed"),
        ('<tool_call>["get_balance"]</tool_call>', "must hold a JSON object"),
        ('<tool_call>{"arguments": {}}</tool_call>', 'needs "name"'),
        ('<tool_call>{"name": "f", "arguments": [1]}</tool_call>', "must be a JSON object"),
        ("<tool_call>" + "[" * 100_000 + "</tool_call>", "nests too deeply"),
        ("", "empty"),
    ],
)
def test_malformed_calls_are_format_errors_with_feedback(reply: str, fragment: str) -> None:
    env, _ = bank_env()
    obs, reward, terminated, truncated, info = env.step(reply)
    assert not info["format_ok"] and info["answer"] is None and reward == pytest.approx(-0.1)
    assert info["feedback"]["kind"] == "format_error" and fragment in obs
    assert info["messages"][-1] == {"role": "user", "content": obs}


def test_structured_openai_calls_and_several_calls_per_reply() -> None:
    env, owner = bank_env()
    block = json.dumps(
        {"type": "function", "function": {"name": "find_account", "arguments": json.dumps({"owner": owner})}}
    )
    _, _, _, _, info = env.step(
        f"Let me look.\n<tool_call>{block}</tool_call>\n" + call("find_account", owner=owner)
    )
    assistant = info["messages"][-3]
    assert assistant["content"] == "Let me look." and len(assistant["tool_calls"]) == 2
    assert [m["role"] for m in info["messages"][-2:]] == ["tool", "tool"]


def test_parsing_is_linear_in_the_reply_length() -> None:
    def seconds(n: int) -> float:
        reply = ("<tool_call>" * n) + ("x" * n) + ("</tool_call>{" * (n // 10))
        start = time.perf_counter()
        parsed = parse_reply(reply)
        assert parsed.error is not None
        return time.perf_counter() - start

    small, big = seconds(100_000 // 11), seconds(400_000 // 11)
    assert small < 0.5 and big < max(8 * small, 0.05)
    env, _ = bank_env()
    start = time.perf_counter()
    env.step(
        "<tool_call>"
        + '{"name": "get_balance", "arguments": {"account_id": "'
        + "a" * 100_000
        + '"}}'
        + "</tool_call>"
    )
    assert time.perf_counter() - start < 1.0


# ---- adversaries --------------------------------------------------------------------------------


def test_answering_with_every_candidate_fails() -> None:
    env, owner = bank_env()
    env.step(env.unwrapped.oracle_reply())
    env.step(env.unwrapped.oracle_reply())
    request = env.unwrapped.tool_task_of(env.unwrapped.task).requests[0]
    _, _, terminated, _, info = env.step("Answer: " + ", ".join(request.candidates))
    assert info["feedback"]["kind"] == "wrong_answer" and "not several" in info["feedback"]["text"]
    assert info["requests_done"] == 0
    _, _, _, _, info = env.step(env.unwrapped.oracle_reply())
    assert info["feedback"]["kind"] == "next_request"


def test_an_answer_beside_calls_is_not_taken_and_the_last_answer_line_counts() -> None:
    env, owner = bank_env()
    u = env.unwrapped
    env.step(u.oracle_reply())
    reply = u.oracle_reply()
    answer = u.tool_task_of(u.task).requests[0].answer
    _, _, _, _, info = env.step(f"{reply}\nAnswer: {answer}")  # the calls run; the request stays open
    assert info["feedback"]["kind"] == "tool_results" and info["requests_done"] == 0
    _, _, _, _, info = env.step(f"Answer: {answer}\nAnswer: 1")
    assert info["feedback"]["kind"] == "wrong_answer"
    _, _, _, _, info = env.step(f"It holds {answer} dollars.\nAnswer: {answer}")
    assert info["feedback"]["kind"] == "next_request" and info["requests_done"] == 1


def test_a_right_guess_without_the_calls_is_not_done() -> None:
    env = make(domains=["weather"])
    env.reset(options={"index": 0})
    task = env.unwrapped.tool_task_of(env.unwrapped.task)
    _, _, _, _, info = env.step(f"Answer: {task.requests[0].answer}")
    assert info["feedback"]["kind"] == "not_done" and info["requests_done"] == 0


def test_extra_state_changes_never_succeed() -> None:
    env = make(domains=["shop"])
    env.reset(options={"index": 0})
    u = env.unwrapped
    task = u.tool_task_of(u.task)
    orders = task.state["orders"]
    env.step(u.oracle_reply())  # list_orders
    extra = [oid for oid, o in orders.items() if o["status"] == "processing"]
    env.step(format_calls([ToolCall("cancel_order", {"order_id": oid}) for oid in extra]))  # cancel them all
    _, _, terminated, _, info = env.step(f"Answer: {task.requests[0].answer}")
    assert len(extra) > 1 and not terminated and info["feedback"]["kind"] == "not_done"
    assert u.oracle_reply() is None  # the world can no longer reach the goal


def test_stuffing_calls_hits_the_budget() -> None:
    env, owner = bank_env()
    u = env.unwrapped
    guesses = [ToolCall("get_balance", {"account_id": f"ACC-{n}"}) for n in range(1000, 1030)]
    _, _, _, _, info = env.step(format_calls(guesses))
    contents = [m["content"] for m in info["messages"] if m["role"] == "tool"]
    budget = len(u.tool_task_of(u.task).requests[0].reference_calls) + u.extra_calls
    assert len(contents) == 30 and all("no account with id" in c for c in contents[:budget])
    assert all("call budget for this request" in c for c in contents[budget : u.max_calls_per_reply])
    assert all(
        f"at most {u.max_calls_per_reply} calls per reply" in c for c in contents[u.max_calls_per_reply :]
    )
    _, _, _, _, info = env.step(u.oracle_reply())  # even the right call is no longer run
    assert "call budget for this request" in info["messages"][-1]["content"]
    _, _, _, _, info = env.step(u.oracle_reply())
    assert info["feedback"]["kind"] == "tool_results" and info["requests_done"] == 0


def test_truncated_after_max_turns() -> None:
    env = make(max_turns=2)
    env.reset(options={"index": 0})
    assert env.step("no idea")[3] is False
    *_, terminated, truncated, _ = env.step("still no idea")
    assert truncated and not terminated
    with pytest.raises(drift_envs.EpisodeFinishedError):
        env.step("again")


# ---- MTU-Bench files ----------------------------------------------------------------------------


def test_mtu_bench_file_loads_and_replays() -> None:
    env = make(dataset=str(MTU_FILE))
    u = env.unwrapped
    assert u.num_tasks() == 4
    _, info = env.reset(options={"task_id": "mtu-m1"})
    assert [t["function"]["name"] for t in info["tools"]] == ["search_flights", "book_flight"]
    trace_gold = [[c.name for c in g] for _, g in u.tool_trace()]
    assert trace_gold == [["search_flights"], ["book_flight"]]
    for index in range(4):
        total, terminated, info, rewards = play_oracle(env, index)
        assert terminated and total == 1.0
        record = record_of(env, info, rewards, {"dataset": str(MTU_FILE)})
        assert episode_tool_metrics(record)["success_rate"] == 1.0
    env.reset(options={"task_id": "mtu-s2"})
    obs, *_ = env.step(u.oracle_reply())
    assert 'convert_length: {"value": 3.1}' in obs  # the recorded observation of the ReAct output
    env.reset(options={"task_id": "mtu-s1"})
    obs, *_ = env.step(call("get_weather", city="Paris"))
    assert "no result for these arguments" in obs
    obs, *_ = env.step("It will be sunny.")
    assert "isn't done yet" in obs


def test_mtu_bench_bad_rows_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "input": "hi", "gold": "{}"}\n{"id": "b", "gold": "{\\"f\\": {}}"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: no request"):
        make(dataset=str(bad))
    bad.write_text('{"id": "a", "input": "hi", "gold": "{not json"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: field 'gold' is not valid JSON"):
        make(dataset=str(bad))


# ---- records, rendering -------------------------------------------------------------------------


def test_trajectory_validation_of_tool_messages() -> None:
    env = make(domains=["bank"])
    _, _, info, rewards = play_oracle(env, 0)
    record = record_of(env, info, rewards)
    validate_record(record)
    k = next(i for i, m in enumerate(record["messages"]) if m["role"] == "tool")
    bad = json.loads(json.dumps(record))
    del bad["messages"][k]["tool_call_id"]
    with pytest.raises(TrajectoryError, match=rf"messages\[{k}\]\.tool_call_id"):
        validate_record(bad)
    bad = json.loads(json.dumps(record))
    j = k - 1
    bad["messages"][j]["tool_calls"][0]["function"]["arguments"] = "{oops"
    with pytest.raises(TrajectoryError, match=rf"messages\[{j}\]\.tool_calls\[0\]\.function\.arguments"):
        validate_record(bad)
    ok = json.loads(json.dumps(record))
    ok["messages"][j]["tool_calls"][0]["function"]["arguments"] = json.dumps(
        {"owner": "x"}
    )  # OpenAI's string
    validate_record(ok)


def test_tool_results_are_never_supervised(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from drift_train.data import RenderConfig, Renderer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    env = make(domains=["calendar"], distractors=0)
    _, _, info, rewards = play_oracle(env, 0)
    record = record_of(env, info, rewards)
    [example] = Renderer(tokenizer, RenderConfig(max_length=8192, assistant_turns="all")).examples(
        record, weighted=False
    )
    text = tokenizer.decode(example["input_ids"])
    supervised = tokenizer.decode(
        [t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != -100]
    )
    assert "# Tools" in text and '"name": "create_event"' in text  # tools= reached the template
    for m in info["messages"]:
        if m["role"] == "tool":
            assert m["content"] in text and m["content"] not in supervised
        if m["role"] == "assistant":
            assert (m["content"] or "") in supervised
            for c in m.get("tool_calls") or []:
                assert json.dumps(c["function"]["arguments"]) in supervised
    assert '"event_id": "EV-1"}}' in supervised  # the call the model made, not the tool's reply


# ---- the pipeline on the tiny model -------------------------------------------------------------


def test_tiny_model_rollout_weights_train_eval(tiny_model_dir: Path, tmp_path: Path) -> None:
    from drift_train.cli import main as drift_main
    from drift_train.commands.train import parse_config
    from drift_train.policies import Completion, SamplingParams, make_policy
    from drift_train.policies.base import PolicyBase
    from drift_train.rollout import RolloutConfig, rollout
    from drift_train.trainer import train
    from drift_train.trajectories import read_trajectories, write_trajectories

    class Teacher(PolicyBase):
        """The env's oracle, but a wrong answer on a third of the seeds: groups with mixed outcomes."""

        backend, model_id, needs_env = "oracle", "oracle", True

        def generate(self, conversations, params, seeds=None, *, tools=None, envs=None):
            out = []
            for i, env in enumerate(envs):
                reply = env.unwrapped.oracle_reply() or "Answer: 0"
                if (seeds[i] if seeds else 0) % 3 == 0 and "<tool_call>" not in reply:
                    reply = "Answer: 0"
                out.append([Completion(reply, len(reply), "stop")])
            return out

    env_kwargs = {"domains": ["calendar"], "distractors": 0, "max_turns": 5}
    config = dict(env_id=ENV_ID, env_kwargs=env_kwargs, num_tasks=2, samples=2, seed=0)
    tiny, _ = rollout(
        make_policy("hf", str(tiny_model_dir), device="cpu"),
        RolloutConfig(**config, sampling=SamplingParams(max_new_tokens=24)),
        out=tmp_path / "tiny.jsonl",
    )
    assert len(tiny) == 4 and all(r["meta"]["tools"] for r in tiny)
    from transformers import AutoTokenizer

    seen = AutoTokenizer.from_pretrained(tiny_model_dir).decode(tiny[0]["tokens"]["t1"]["prompt_ids"])
    assert "# Tools" in seen and '"name": "create_event"' in seen  # the model saw the schemas
    taught, _ = rollout(Teacher(), RolloutConfig(**config, task_offset=2), out=tmp_path / "teacher.jsonl")
    assert {r["t_star"] is None for r in taught} == {True, False}
    write_trajectories(tiny + taught, tmp_path / "all.jsonl")
    assert list(read_trajectories(tmp_path / "all.jsonl"))  # validated rows
    assert (
        drift_main(["weights", str(tmp_path / "all.jsonl"), "--out", str(tmp_path / "weighted.jsonl")]) == 0
    )
    trained = tmp_path / "trained"
    train(parse_config(["--data", str(tmp_path / "weighted.jsonl"), "--model", str(tiny_model_dir), "--loss", "wsft",
                        "--output_dir", str(trained), "--max_steps", "2", "--per_device_train_batch_size", "4",
                        "--max_length", "4096", "--report_to", "none", "--save_strategy", "no",
                        "--disable_tqdm", "true"]))  # fmt: skip
    out = tmp_path / "eval" / "metrics.json"
    rc = drift_main(["eval", "--model", str(trained), "--env", ENV_ID, "--env-kwargs", json.dumps(env_kwargs),
                     "--num-tasks", "2", "--max-new-tokens", "16", "--out", str(out)])  # fmt: skip
    assert rc == 0
    metrics = json.loads(out.read_text())
    for name in ("tool_selection_accuracy", "parameter_selection_accuracy", "tool_number_accuracy",
                 "tool_order_accuracy", "turn_success_rate", "soft_turn_success_rate", "success_rate",
                 "task_process_rate"):  # fmt: skip
        assert metrics[name]["n"] == 2 and 0.0 <= metrics[name]["value"] <= 1.0
    from drift_train.evaluate import multiturn_metrics

    teacher_metrics = multiturn_metrics(taught)
    assert (
        teacher_metrics["turn_success_rate"]["value"] > 0
        and teacher_metrics["turn_success_rate"]["tasks"] == 2
    )


def test_drift_eval_tool_decay_reaches_the_soft_turn_metric(tmp_path: Path) -> None:
    """`drift eval --records F --tool-decay d`: the decay factor the command is given is the one used."""
    from drift_train.commands.eval import main as drift_eval

    env = make(domains=["bank"], max_turns=8)
    _, info = env.reset(options={"index": 0})
    rewards = []
    while info.get("requests_done", 0) == 0 and len(rewards) < 6:  # finish the first request only
        _, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_reply())
        rewards.append(reward)
        assert not (terminated or truncated)
    while True:  # then give up: every later request fails
        _, reward, terminated, truncated, info = env.step("Answer: I do not know.")
        rewards.append(reward)
        if terminated or truncated:
            break
    record = record_of(env, info, rewards)
    path = tmp_path / "tool.jsonl"
    path.write_text(json.dumps(record) + "\n")
    soft = {}
    for decay in (0.5, 0.9):
        out = tmp_path / f"m{decay}.json"
        assert drift_eval(["--records", str(path), "--out", str(out), "--tool_decay", str(decay)]) == 0
        metrics = json.loads(out.read_text())
        expected = episode_tool_metrics(record, decay)["soft_turn_success_rate"]
        found = [v for k, v in _flatten(metrics) if k.endswith("soft_turn_success_rate")]
        assert found and all(
            (v["value"] if isinstance(v, dict) else v) == pytest.approx(expected) for v in found
        ), (found, expected)
        soft[decay] = expected
    assert 0.0 < soft[0.5] < 1.0 and soft[0.5] != pytest.approx(soft[0.9])


def _flatten(obj, prefix: str = ""):
    if isinstance(obj, dict) and "value" not in obj:
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, obj
