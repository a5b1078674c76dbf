"""drift envs inside TRL (the real trl package): the environment class, the task dataset,
``GRPOTrainer(environment_factory=...)`` training two steps of the tiny model on rewards from the env, and
``GRPOTrainer(rollout_func=...)`` doing the same with the env's feedback as user turns."""

from __future__ import annotations

import inspect
import json

import gymnasium as gym
import pytest

pytest.importorskip("trl", reason="the [trl] extra: pip install 'drift-toolkit[trl]'")

import drift_envs  # noqa: E402, F401
from drift_envs.integrations.trl import (  # noqa: E402
    env_reward,
    environment_factory,
    rollout_func,
    task_dataset,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: the tiny model on one thread

ENV = "drift/MathFeedback-v0"
KWARGS = {"difficulty": "tiny", "max_turns": 2, "feedback": "hint"}


def naive_return(rewards: list[float], penalty: float, answers: list, gamma=0.9, lam=0.5) -> float:
    """docs/design.md's R, written out: Σ γ^(t-1) r_t + format_penalty − λ (1 − unique/answers)."""
    given = [a for a in answers if a is not None]
    unique = len({a for a in given if a}) / len(given) if given else 1.0
    return sum(gamma**t * r for t, r in enumerate(rewards)) + penalty - lam * (1 - unique)


def replay(row: dict, replies: list[str]) -> float:
    """The return a fresh gym env gives the same replies on the row's task (None: nothing submitted)."""
    env = gym.make(ENV, split="train", **KWARGS)
    env.reset(seed=row["env_seed"], options={"index": row["task_index"]})
    rewards, penalty, answers = [], 0.0, []
    for reply in replies:
        _, reward, terminated, truncated, info = env.step(reply)
        step_penalty = 0.0 if info["format_ok"] else env.unwrapped.format_penalty
        rewards.append(reward - step_penalty)
        penalty += step_penalty
        answers.append(info["answer"])
        if terminated or truncated:
            break
    env.close()
    return naive_return(rewards, penalty, answers)


def env_feedback(row: dict, replies: list[str]) -> list[str]:
    """The observations a fresh gym env answers the replies with on the row's task."""
    env = gym.make(ENV, split="train", **KWARGS)
    env.reset(seed=row["env_seed"], options={"index": row["task_index"]})
    observations = [env.step(reply)[0] for reply in replies]
    env.close()
    return observations


def test_environment_class_plays_the_env_through_one_tool() -> None:
    data = task_dataset(ENV, "train", 3, **KWARGS)
    assert set(data.column_names) == {"prompt", "task_index", "task_id", "env_seed"}
    Env = environment_factory(ENV, **KWARGS)
    assert Env.__name__ == "MathFeedback_v0"
    # TRL offers every public function of the class as a tool: only submit may be one
    public = {name for name, _ in inspect.getmembers(Env, inspect.isfunction) if not name.startswith("_")}
    assert public == {"reset", "submit", "get_reward"}

    row = data[1]
    env = Env()
    assert env.reset(**row) is None  # the row's prompt already holds the opening messages
    reference = gym.make(ENV, split="train", **KWARGS)
    _, info = reference.reset(seed=row["env_seed"], options={"index": 1})
    assert row["prompt"] == info["messages"]
    right = reference.unwrapped.oracle_reply()
    feedback = env.submit("\\boxed{99}")
    obs, *_ = reference.step("\\boxed{99}")
    assert feedback == obs and "Incorrect" in feedback
    assert env.submit(right) == "Correct."
    assert env.get_reward() == pytest.approx(replay(row, ["\\boxed{99}", right]))
    assert env.get_reward() == pytest.approx(0.9)
    with pytest.raises(ValueError, match="episode is over"):
        env.submit(right)

    env.reset(**data[0])
    assert env.get_reward() == pytest.approx(-0.1)  # nothing submitted: the format penalty
    env.submit("no idea")
    env.submit("still none")
    assert (
        env.get_reward() == pytest.approx(replay(data[0], ["no idea", "still none"])) == pytest.approx(-0.2)
    )

    with pytest.raises(ValueError, match="opens that task with"):
        env.reset(**{**data[0], "task_index": 2})
    with pytest.raises(ValueError, match="names no task"):
        env.reset(prompt=data[0]["prompt"])
    with pytest.raises(ValueError, match="cannot make env"):
        environment_factory(ENV, no_such_kwarg=1)


def test_grpo_trainer_trains_two_steps_on_rewards_from_the_env(tiny_model_dir, tmp_path) -> None:
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_template

    data = task_dataset(ENV, "train", 4, **KWARGS)
    Env = environment_factory(ENV, **KWARGS)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    # the tiny template writes Hermes <tool_call> blocks after a ChatML assistant header, as Qwen's does;
    # TRL only recognises known templates, so it gets TRL's own Qwen reader
    tokenizer.response_template = qwen3_template

    seen: list[list[tuple[dict, list[str], float]]] = []

    def observe(completions, environments, task_index, **kwargs):
        """Weight 0: records what each rollout submitted and what its env scored, changes nothing."""
        seen.append(
            [
                (data[i], list(e.episode.replies), e.get_reward())
                for i, e in zip(task_index, environments, strict=True)
                if e.episode.info["task_id"] == data[i]["task_id"]  # reset(**row) opened the row's task
            ]
        )
        return [0.0] * len(completions)

    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=48,
        max_tool_calling_iterations=1,
        learning_rate=1e-4,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        reward_weights=[0.0],  # observe only; TRL appends the env's get_reward at weight 1
        seed=0,
    )
    trainer = GRPOTrainer(
        model=str(tiny_model_dir),
        processing_class=tokenizer,
        args=args,
        train_dataset=data,
        environment_factory=Env,
        reward_funcs=[observe],
    )
    trainer.train()

    assert trainer.state.global_step == 2
    assert len(seen) == 2 and all(len(batch) == 4 for batch in seen)
    rollouts = [r for batch in seen for r in batch]
    # the random tiny model rarely writes a well-formed submit call: such rollouts are scored as no
    # answer (the format penalty); any that did submit are scored as the env scores the same replies
    for row, replies, reward in rollouts:
        expected = replay(row, replies) if replies else -0.1
        assert reward == pytest.approx(expected), (row["task_index"], replies)
    logged = [
        h["rewards/MathFeedback_v0/mean"]
        for h in trainer.state.log_history
        if "rewards/MathFeedback_v0/mean" in h
    ]
    assert logged == pytest.approx([sum(r for _, _, r in batch) / len(batch) for batch in seen])
    assert [h["reward"] for h in trainer.state.log_history if "reward" in h] == pytest.approx(logged)


def test_grpo_trainer_rollout_func_plays_episodes_with_feedback_as_user_turns(
    tiny_model_dir, tmp_path
) -> None:
    import torch
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    data = task_dataset(ENV, "train", 4, **KWARGS)
    play = rollout_func(ENV, max_new_tokens=6, **KWARGS)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    calls: list[tuple[list, dict]] = []
    first_logprobs: list[list[float]] = []

    def recording(prompts, trainer):
        """Passes the rollout through; on the first call (weights not yet updated) also scores each
        completion with a forward pass of the trainer's model, for the sampling log-probs."""
        out = play(prompts, trainer)
        calls.append((prompts, out))
        if len(calls) == 1:
            with torch.no_grad():
                for p, c in zip(out["prompt_ids"], out["completion_ids"], strict=True):
                    logits = trainer.model(input_ids=torch.tensor([p + c])).logits[0, len(p) - 1 : -1]
                    # the tokens the model's generation config suppresses are out of the sampling distribution
                    logits[:, trainer.model.generation_config.suppress_tokens or []] = float("-inf")
                    lp = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(c)[:, None])
                    first_logprobs.append(lp.squeeze(-1).tolist())
        return out

    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=64,
        learning_rate=1e-4,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        bf16=False,  # TRL's default autocasts to bf16 even on CPU
        seed=0,
    )
    trainer = GRPOTrainer(
        model=str(tiny_model_dir),
        processing_class=tokenizer,
        args=args,
        train_dataset=data,
        rollout_func=recording,
        reward_funcs=env_reward,
    )
    trainer.train()

    assert trainer.state.global_step == 2 and len(calls) == 2
    assert play.episodes == 8 and play.calls == 2
    rows = {json.dumps(r["prompt"]): r for r in data}
    sampled = 0
    for prompts, out in calls:
        assert len(out["completion_ids"]) == len(prompts) == 4
        for i, prompt in enumerate(prompts):
            row, record = rows[json.dumps(prompt)], out["drift_record"][i]
            assert record["task_id"] == row["task_id"]
            messages = record["messages"]
            replies = [m["content"] for m in messages if m["role"] == "assistant"]
            # the reward is the env's: a fresh env scores the same replies the same way
            assert out["env_reward"][i] == pytest.approx(replay(row, replies))
            # the prompt is the opening rendered by the chat template; after it, sampled replies (mask 1)
            # alternate with the env's feedback as a user turn (mask 0), each turn's text as recorded
            assert out["prompt_ids"][i] == tokenizer.apply_chat_template(
                prompt, add_generation_prompt=True, tokenize=True, return_dict=False
            )
            ids, mask, lps = out["completion_ids"][i], out["env_mask"][i], out["logprobs"][i]
            assert len(ids) == len(mask) == len(lps)
            segments: list[tuple[int, list[int]]] = []
            for token, m in zip(ids, mask, strict=True):
                if segments and segments[-1][0] == m:
                    segments[-1][1].append(token)
                else:
                    segments.append((m, [token]))
            assert [m for m, _ in segments] == [1, 0] * (len(replies) - 1) + [1]
            feedback = [m["content"] for m in messages[len(prompt) :] if m["role"] == "user"]
            assert feedback == env_feedback(row, replies[:-1])
            for k, (m, seg) in enumerate(segments):
                if m == 1:
                    assert tokenizer.decode(seg, skip_special_tokens=True) == replies[k // 2]
                    sampled += len(seg)
                else:
                    closed = segments[k - 1][1][-1] == tokenizer.eos_token_id
                    assert tokenizer.decode(seg) == (
                        ("" if closed else "<|im_end|>")
                        + f"\n<|im_start|>user\n{feedback[k // 2]}<|im_end|>\n<|im_start|>assistant\n"
                    )
            assert all(lp == 0.0 for lp, m in zip(lps, mask, strict=True) if m == 0)
    assert play.generated_tokens == sampled
    # log-probs are those of the sampling distribution (temperature 1, no top-k/p: the model's own, less
    # the suppressed tokens)
    for _, out in calls[:1]:
        for i, mine in enumerate(first_logprobs):
            for lp, want, m in zip(out["logprobs"][i], mine, out["env_mask"][i], strict=True):
                if m:
                    assert lp == pytest.approx(want, abs=1e-4)
    logged = [
        h["rewards/env_reward/mean"] for h in trainer.state.log_history if "rewards/env_reward/mean" in h
    ]
    assert logged == pytest.approx([sum(out["env_reward"]) / 4 for _, out in calls])
    # multi-turn episodes happened (the random model rarely solves a task in one turn)
    assert any(len(out["drift_record"][i]["turn_rewards"]) == 2 for _, out in calls for i in range(4))
    with pytest.raises(ValueError, match="rollout_func"):
        env_reward(["x"])


def test_rollout_func_refuses_rows_that_name_no_task(tiny_model_dir, tmp_path) -> None:
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    with pytest.raises(ValueError, match="cannot make env"):
        rollout_func(ENV, no_such_kwarg=1)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        rollout_func(ENV, max_new_tokens=0, **KWARGS)
    play = rollout_func(ENV, max_new_tokens=4, **KWARGS)
    data = task_dataset(ENV, "train", 2, **KWARGS)
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=2,
        num_generations=2,
        report_to="none",
        use_cpu=True,
        bf16=False,
    )

    trainer = GRPOTrainer(
        model=str(tiny_model_dir),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
        args=args,
        train_dataset=Dataset.from_list([{"prompt": data[0]["prompt"]}]),
        rollout_func=play,
        reward_funcs=env_reward,
    )
    with pytest.raises(ValueError, match=r"name their task \(columns prompt, task_index, env_seed\)"):
        play([data[0]["prompt"]], trainer)
    trainer.train_dataset = data  # one trainer for both cases: building one is the slow part
    stranger = [{"role": "user", "content": "What is 1 + 1?"}]
    with pytest.raises(ValueError, match="is no row of the trainer's datasets"):
        play([stranger], trainer)
    out = play([data[1]["prompt"]] * 2, trainer)  # the rows' tasks play
    assert [r["task_id"] for r in out["drift_record"]] == [data[1]["task_id"]] * 2
    play.close()
