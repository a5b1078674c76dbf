"""A multi-turn online policy-gradient baseline (GRPO-style), for comparison with DRIFT.

Each step samples ``tasks_per_step`` tasks x ``samples`` episodes from the *current* policy in the
same env and with the same rollout engine DRIFT uses, scores each trajectory with DRIFT's return
(:func:`drift_train.weights.trajectory_returns`: same γ, format penalty and repetition term), turns
returns into group-normalised advantages, and takes one policy-gradient step::

    A_i = (R_i − mean_g R) / (std_g R + ε)              (GRPO, within each task's group g)
    L   = −(1/N) Σ_i A_i Σ_{t ∈ assistant tokens of i} log π_θ(x_t | x_<t)

where N is the number of assistant tokens in the batch. The update is on-policy (one step per batch of
rollouts), so no importance ratio or clipping is needed. The loss is DRIFT's own weighted-SFT loss
(:func:`drift_train.losses.drift_loss`, mode ``wsft``) with the advantage as the trajectory weight, so
the two methods differ only in where the data comes from and how it is weighted.

Why not TRL's ``GRPOTrainer``: it generates single-turn completions from a prompt dataset; our
episodes interleave generation with environment feedback over several turns, which it does not
drive. Writing the loop on our rollout engine keeps both methods on identical infrastructure, so the
wall-clock and token counts compare like with like.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["OnlineRLConfig", "group_advantages", "main", "train_online_rl"]


@dataclass
class OnlineRLConfig:
    """Knobs of the online RL baseline."""

    env_id: str = "drift/MathFeedback-v0"
    env_kwargs: dict = field(default_factory=dict)
    model: str = ""
    output_dir: str = "runs/online_rl"
    steps: int = 40
    tasks_per_step: int = 32
    samples: int = 8  # group size G
    temperature: float = 1.0
    max_new_tokens: int = 16
    learning_rate: float = 1e-3
    micro_batch_size: int = 64
    gamma: float = 0.9
    diversity_lambda: float = 0.5
    assistant_turns: str = "all"
    seed: int = 0
    max_grad_norm: float = 1.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        for name in ("steps", "tasks_per_step", "samples", "max_new_tokens", "micro_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.samples < 2:
            raise ValueError("samples must be >= 2: advantages are normalised within each task's group")
        if not self.model:
            raise ValueError("model is required")


def group_advantages(returns: np.ndarray, group_index: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """GRPO advantages: returns standardised within each group (zero where a group's returns are all equal)."""
    groups = int(group_index.max()) + 1 if len(group_index) else 0
    counts = np.maximum(np.bincount(group_index, minlength=groups), 1)  # unused ids: no 0/0 warning
    mean = np.bincount(group_index, weights=returns, minlength=groups) / counts
    centred = returns - mean[group_index]
    var = np.bincount(group_index, weights=centred**2, minlength=groups) / counts
    # A tied group must give exactly 0 (the loop skips those trajectories), but its float mean can miss
    # the common value by an ulp (3 x 0.1 sums to 0.30000000000000004), leaving ~1e-11 "advantages".
    lowest = np.full(groups, np.inf)
    highest = np.full(groups, -np.inf)
    np.minimum.at(lowest, group_index, returns)
    np.maximum.at(highest, group_index, returns)
    tied = (lowest == highest)[group_index]
    return np.where(tied, 0.0, centred / (np.sqrt(var)[group_index] + eps))


def train_online_rl(config: OnlineRLConfig, progress: bool = True) -> dict:
    """Run the baseline; save the final model to ``output_dir`` and return the training log."""
    import torch
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from drift_train.data import DriftCollator, RenderConfig, Renderer
    from drift_train.losses import IGNORE_INDEX, drift_loss
    from drift_train.policies.base import SamplingParams
    from drift_train.policies.hf import HFPolicy
    from drift_train.rollout import RolloutConfig, make_env, rollout
    from drift_train.weights import records_to_inputs, trajectory_returns

    config.validate()
    console = Console()
    torch.manual_seed(config.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    model = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch.float32).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    policy = HFPolicy(model, tokenizer=tokenizer, batch_size=256)
    collate = DriftCollator(pad_token_id=tokenizer.pad_token_id)
    renderer = Renderer(tokenizer, RenderConfig(assistant_turns=config.assistant_turns),
                        end_token_ids=model.generation_config.eos_token_id)
    env = make_env(config.env_id, config.env_kwargs)
    num_tasks = env.unwrapped.num_tasks()
    env.close()

    log: list[dict] = []
    generated_tokens = 0
    started = time.perf_counter()
    for step in range(config.steps):
        # 1. rollouts from the current policy (fresh tasks each step, cycling through the split)
        model.eval()
        offset = (step * config.tasks_per_step) % max(num_tasks - config.tasks_per_step, 1)
        rollout_config = RolloutConfig(
            env_id=config.env_id, env_kwargs=config.env_kwargs, num_tasks=config.tasks_per_step,
            task_offset=offset, samples=config.samples, seed=config.seed * 100_003 + step,
            batch_size=config.tasks_per_step * config.samples,
            sampling=SamplingParams(temperature=config.temperature, max_new_tokens=config.max_new_tokens),
        )
        records, stats = rollout(policy, rollout_config)
        generated_tokens += stats.generated_tokens
        # 2. returns (DRIFT's formula) -> group-normalised advantages
        inputs = records_to_inputs(records)
        returns = trajectory_returns(inputs, config.gamma, config.diversity_lambda)
        advantages = group_advantages(returns, inputs.group_index)
        examples = []
        for i, (record, advantage) in enumerate(zip(records, advantages, strict=True)):
            if advantage == 0.0:
                continue
            examples += renderer.examples({**record, "weight": float(advantage)}, weighted=True, index=i)
        # 3. one policy-gradient step over the whole batch (micro-batched, one global normaliser)
        model.train()
        loss_value = 0.0
        if examples:
            total_tokens = sum(sum(1 for label in e["labels"] if label != IGNORE_INDEX) for e in examples)
            optimizer.zero_grad(set_to_none=True)
            for start in range(0, len(examples), config.micro_batch_size):
                batch = collate(examples[start : start + config.micro_batch_size])
                batch = {k: v.to(device) for k, v in batch.items()}
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                loss, _ = drift_loss(logits, batch["labels"], batch["token_weights"], "wsft", normaliser=total_tokens)
                loss.backward()
                loss_value += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
        entry = {
            "step": step + 1, "success": float(inputs.success.mean()), "mean_return": float(returns.mean()),
            "loss": loss_value, "trained_trajectories": len(examples), "generated_tokens": generated_tokens,
            "elapsed_s": time.perf_counter() - started,
        }
        log.append(entry)
        if progress:
            console.print(f"online RL step {entry['step']}/{config.steps}: success {entry['success']:.3f} "
                          f"return {entry['mean_return']:+.3f} loss {loss_value:+.4f} ({entry['elapsed_s']:.0f} s)")
    policy.close()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    summary = {"config": asdict(config), "log": log, "wall_s": time.perf_counter() - started,
               "generated_tokens": generated_tokens}
    (out / "online_rl_log.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m drift_train.online_rl --model DIR --env ID [...]``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--env", default=OnlineRLConfig.env_id)
    parser.add_argument("--env-kwargs", default="{}", help="JSON object")
    parser.add_argument("--output-dir", default=OnlineRLConfig.output_dir)
    for name in ("steps", "tasks_per_step", "samples", "max_new_tokens", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(OnlineRLConfig, name))
    for name in ("temperature", "learning_rate"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(OnlineRLConfig, name))
    args = parser.parse_args(argv)
    config = OnlineRLConfig(
        env_id=args.env, env_kwargs=json.loads(args.env_kwargs), model=args.model, output_dir=args.output_dir,
        steps=args.steps, tasks_per_step=args.tasks_per_step, samples=args.samples,
        max_new_tokens=args.max_new_tokens, seed=args.seed, temperature=args.temperature,
        learning_rate=args.learning_rate,
    )
    train_online_rl(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
