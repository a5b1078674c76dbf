"""A multi-turn online policy-gradient baseline (GRPO / PPO-style), for comparison with DRIFT.

Each step samples ``tasks_per_step`` tasks x ``samples`` episodes from the *current* policy in the
same env and with the same rollout engine DRIFT uses, scores each trajectory with DRIFT's return
(:func:`drift_train.weights.trajectory_returns`: same γ, format penalty and repetition term), turns
returns into group-normalised advantages, and updates the policy on that batch::

    A_i    = (R_i − mean_g R) / (std_g R + ε)              (GRPO, within each task's group g)
    ρ_t    = π_θ(x_t | x_<t) / π_old(x_t | x_<t)            (π_old: the policy that sampled the batch)
    L_clip = −(1/N) Σ_i Σ_{t ∈ assistant tokens of i} min(ρ_t A_i, clip(ρ_t, 1 − ε_c, 1 + ε_c) A_i)
    L      = L_clip + β_KL (1/N) Σ_t k3_t,   k3_t = e^{δ_t} − δ_t − 1,  δ_t = log π_ref(x_t) − log π_θ(x_t)

N is the number of assistant tokens in the minibatch; k3 is the non-negative, unbiased estimator of
KL(π_θ ‖ π_ref) that GRPO uses, with π_ref the starting (reference) model. The stabilisers are options:

* ``ppo_epochs`` passes over each batch, each split into ``minibatches`` optimizer steps (PPO). Past
  the first update π_θ ≠ π_old, so ``clip_epsilon`` (ε_c, PPO's 0.2) bounds how far one batch moves it.
* ``kl_coef`` (β_KL) > 0 adds the KL term (trajectories with zero advantage then train too: they
  carry no policy-gradient signal but do carry the KL's).

A trajectory with an undecided turn (the checker reached no verdict in time; ``undecided_turns``) is
neither right nor wrong (:mod:`drift_train.facts`): its return rests on a verdict nobody reached, so its
group has no baseline and every member gets advantage 0 (:func:`trajectory_advantages`), the way
``drift weights`` gives the group weight 0 by default; each log entry counts them
(``undecided_trajectories``).

With the defaults (one update per batch, no KL) ρ_t ≡ 1 and the gradient is plain on-policy
REINFORCE with group-normalised advantages, ``−(1/N) Σ A_i ∇ log π_θ(x_t)`` — the baseline as it was
first written. Every update is on rollouts of the same env through the same engine DRIFT uses.

Cost accounting: each log entry carries ``generated_tokens`` (cumulative) and ``cpu_s``, the CPU time
(``time.process_time``) of this process spent on rollouts and updates, and ``elapsed_s`` (wall clock).
An ``evaluate`` callback passed to :func:`train_online_rl` runs every ``eval_every`` steps (and at step
0 and the last step); its time is kept out of both clocks, so the log is a learning curve against
tokens and time.

Why our own loop beside TRL's ``GRPOTrainer``: TRL drives multi-turn episodes only through hooks
(``environment_factory``, where our feedback comes back as a tool message, or a ``rollout_func``:
:mod:`drift_envs.integrations.trl`), with its own generation and accounting. Writing the loop on our
rollout engine keeps DRIFT and this baseline on identical infrastructure, so the time and token counts
compare like with like; ``benchmarks/drift_vs_online_rl.py --baseline trl-grpo`` runs TRL's GRPO
through ``rollout_func`` at the same generation budget as a second, independent baseline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from drift_train.policies.base import SamplingParams
from drift_train.rollout import RolloutConfig

__all__ = ["OnlineRLConfig", "group_advantages", "policy_loss", "train_online_rl", "trajectory_advantages"]


def default_rollout() -> RolloutConfig:
    """The baseline's episodes unless told otherwise: groups of G = 8 at temperature 1, 16 tokens a reply."""
    return RolloutConfig(
        env_id="drift/MathFeedback-v0",
        samples=8,
        sampling=SamplingParams(temperature=1.0, max_new_tokens=16),
    )


@dataclass
class OnlineRLConfig:
    """Knobs of the online RL baseline.

    ``rollout`` is how each step's episodes are run (env, group size G = ``rollout.samples``, sampling,
    ``rollout.seed``, which also seeds the model's initialisation order and the minibatch shuffles); its
    ``num_tasks``, ``task_offset`` and ``batch_size`` are set per step (``tasks_per_step`` tasks, cycling
    through the split, all in one chunk) and its ``seed`` becomes ``seed * 100_003 + step``.
    """

    model: str = ""
    output_dir: str = "runs/online_rl"
    steps: int = 40
    tasks_per_step: int = 32
    rollout: RolloutConfig = field(default_factory=default_rollout)
    learning_rate: float = 1e-3
    micro_batch_size: int = 64
    gamma: float = 0.9
    diversity_lambda: float = 0.5
    assistant_turns: str = "all"
    max_grad_norm: float = 1.0
    # stabilisers (module docstring); the defaults are plain on-policy REINFORCE with GRPO advantages
    ppo_epochs: int = 1  # passes over each batch of rollouts
    minibatches: int = 1  # optimizer steps per pass (the batch's trajectories split this many ways)
    clip_epsilon: float | None = None  # ε_c of the clipped ratio (PPO: 0.2); None: no clipping
    kl_coef: float = 0.0  # β_KL, weight of the k3 KL to the reference model
    eval_every: int = 0  # call the evaluate callback every this many steps (0: only at step 0 and the end)

    def step_rollout(self, step: int, task_offset: int) -> RolloutConfig:
        """The :class:`~drift_train.rollout.RolloutConfig` of step ``step`` (0-based), from ``task_offset``."""
        return replace(
            self.rollout,
            num_tasks=self.tasks_per_step,
            task_offset=task_offset,
            seed=self.rollout.seed * 100_003 + step,
            batch_size=self.tasks_per_step * self.rollout.samples,
        )

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        for name in ("steps", "tasks_per_step", "micro_batch_size", "ppo_epochs", "minibatches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self.rollout.validate()
        if self.rollout.samples < 2:
            raise ValueError("samples must be >= 2: advantages are normalised within each task's group")
        if self.clip_epsilon is not None and not 0 < self.clip_epsilon < 1:
            raise ValueError(f"clip_epsilon must be in (0, 1) or None, got {self.clip_epsilon}")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")
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


def trajectory_advantages(returns: np.ndarray, inputs: Any) -> np.ndarray:
    """GRPO advantages of one batch (:func:`group_advantages` within each ``prompt_id`` group).

    A trajectory with an undecided turn (``inputs.undecided_turns``, from
    :func:`drift_train.weights.records_to_inputs`) is neither right nor wrong (:mod:`drift_train.facts`),
    so its group has no baseline: a mean and std without that member would move the others' advantages
    by a verdict nobody reached. Every member of such a group gets advantage 0, as ``drift weights``
    gives every member weight 0 by default; the other groups are untouched.
    """
    advantages = group_advantages(np.asarray(returns, dtype=np.float64), inputs.group_index)
    advantages[inputs.in_undecided_group()] = 0.0
    return advantages


def policy_loss(
    logp,
    old_logp,
    advantages,
    ref_logp=None,
    *,
    clip_epsilon: float | None,
    kl_coef: float,
    normaliser: float,
):
    """The module docstring's L over flat per-token tensors; returns ``(loss, stats)``.

    ``logp``/``old_logp``/``ref_logp``: log-probabilities of the sampled tokens under π_θ, π_old, π_ref;
    ``advantages``: A_i at each of trajectory i's tokens. ``stats`` holds the summed clipped-token count
    and k3 (divide by the token count for means).
    """
    import torch

    ratio = torch.exp(logp - old_logp)
    surrogate = ratio * advantages
    clipped = torch.zeros((), device=logp.device)
    if clip_epsilon is not None:
        bounded = torch.clamp(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon) * advantages
        clipped = (bounded < surrogate).sum()  # tokens where the clip is the active side of the min
        surrogate = torch.minimum(surrogate, bounded)
    loss = -surrogate.sum() / normaliser
    k3 = torch.zeros((), device=logp.device)
    if kl_coef > 0:
        delta = ref_logp - logp
        k3_terms = torch.exp(delta) - delta - 1.0
        k3 = k3_terms.detach().sum()
        loss = loss + kl_coef * k3_terms.sum() / normaliser
    return loss, {"clipped": float(clipped), "k3": float(k3)}


def _token_logprobs(model, batch: dict):
    """(B, L-1) log π(x_{t+1} | x_≤t) and the (B, L-1) mask of supervised positions."""
    import torch

    from drift_train.losses import IGNORE_INDEX

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    targets = batch["labels"][:, 1:]
    mask = targets != IGNORE_INDEX
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
    return logp, mask


def train_online_rl(
    config: OnlineRLConfig, progress: bool = True, evaluate: Callable[[Any], dict] | None = None
) -> dict:
    """Run the baseline; save the final model to ``output_dir`` and return the training log.

    ``evaluate(policy)`` -> a dict of held-out metrics, called at step 0, every ``eval_every`` steps
    and after the last; each call lands in ``summary["evals"]`` with the step, tokens and times reached
    so far (its own time excluded).
    """
    import torch
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from drift_train.data import DriftCollator, RenderConfig, Renderer
    from drift_train.policies.hf import HFPolicy
    from drift_train.rollout import make_env, rollout
    from drift_train.weights import records_to_inputs, trajectory_returns

    config.validate()
    console = Console()
    torch.manual_seed(config.rollout.seed)
    shuffle = np.random.default_rng(config.rollout.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    model = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch.float32).to(device)
    reference = None
    if config.kl_coef > 0:
        reference = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch.float32).to(device).eval()
        reference.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    policy = HFPolicy(model, tokenizer=tokenizer, batch_size=256)
    collate = DriftCollator(pad_token_id=tokenizer.pad_token_id)
    renderer = Renderer(
        tokenizer,
        RenderConfig(assistant_turns=config.assistant_turns),
        end_token_ids=model.generation_config.eos_token_id,
    )
    env = make_env(config.rollout.env_id, config.rollout.effective_env_kwargs)
    num_tasks = env.unwrapped.num_tasks()
    env.close()
    updates_per_batch = config.ppo_epochs * config.minibatches

    log: list[dict] = []
    evals: list[dict] = []
    generated_tokens = 0
    clock = {"cpu": 0.0, "wall": 0.0}  # work time so far, evaluation excluded

    def run_eval(step: int) -> None:
        if evaluate is None:
            return
        model.eval()
        evals.append(
            {
                "step": step,
                "generated_tokens": generated_tokens,
                "cpu_s": clock["cpu"],
                "elapsed_s": clock["wall"],
                **evaluate(policy),
            }
        )

    def batches(examples: list[dict], store: list[dict]):
        for start in range(0, len(examples), config.micro_batch_size):
            chunk = examples[start : start + config.micro_batch_size]
            batch = {k: v.to(device) for k, v in collate(chunk).items()}
            yield chunk, batch, [store[e["_row"]] for e in chunk]

    def stored(rows: list[dict], key: str, mask):
        out = torch.zeros(mask.shape, device=device)
        for r, row in enumerate(
            rows
        ):  # right padding: a row's supervised positions are the same in any batch
            out[r][mask[r]] = row[key]
        return out[mask]

    run_eval(0)
    for step in range(config.steps):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        # 1. rollouts from the current policy (fresh tasks each step, cycling through the split)
        model.eval()
        offset = (step * config.tasks_per_step) % max(num_tasks - config.tasks_per_step, 1)
        records, stats = rollout(policy, config.step_rollout(step, offset))
        generated_tokens += stats.generated_tokens
        # 2. returns (DRIFT's formula) -> group-normalised advantages
        inputs = records_to_inputs(records)
        returns = trajectory_returns(inputs, config.gamma, config.diversity_lambda)
        advantages = trajectory_advantages(returns, inputs)
        examples = []
        for i, (record, advantage) in enumerate(zip(records, advantages, strict=True)):
            if advantage == 0.0 and config.kl_coef == 0:
                continue  # no gradient at all without the KL term
            # the advantage rides in the weight slot; a zero weight would make the renderer drop the row
            for example in renderer.examples(
                {**record, "weight": float(advantage) or 1.0}, weighted=True, index=i
            ):
                example["advantage"] = float(advantage)
                example["_row"] = len(examples)
                examples.append(example)
        # 3. π_old and π_ref log-probs, needed only when they differ from the live policy's
        store = [{} for _ in examples]
        if examples and (updates_per_batch > 1 or reference is not None):
            with torch.no_grad():
                for _, batch, rows in batches(examples, store):
                    if updates_per_batch > 1:
                        old, mask = _token_logprobs(model, batch)
                        for r, row in enumerate(rows):
                            row["old"] = old[r][mask[r]]
                    if reference is not None:
                        ref, mask = _token_logprobs(reference, batch)
                        for r, row in enumerate(rows):
                            row["ref"] = ref[r][mask[r]]
        # 4. ppo_epochs x minibatches updates, each micro-batched with one normaliser per minibatch
        model.train()
        loss_value, clipped, k3_sum, trained_tokens = 0.0, 0.0, 0.0, 0
        for _ in range(config.ppo_epochs if examples else 0):
            order = shuffle.permutation(len(examples)) if updates_per_batch > 1 else np.arange(len(examples))
            for part in np.array_split(order, config.minibatches):
                if not len(part):
                    continue
                chosen = [examples[j] for j in part]
                tokens = sum(sum(1 for label in e["labels"][1:] if label != -100) for e in chosen)
                optimizer.zero_grad(set_to_none=True)
                for chunk, batch, rows in batches(chosen, store):
                    logp, mask = _token_logprobs(model, batch)
                    flat = logp[mask]
                    adv = torch.tensor([e["advantage"] for e in chunk], device=device)[:, None].expand_as(
                        mask
                    )[mask]
                    old = stored(rows, "old", mask) if updates_per_batch > 1 else flat.detach()
                    ref = stored(rows, "ref", mask) if reference is not None else None
                    loss, info = policy_loss(
                        flat,
                        old,
                        adv,
                        ref,
                        clip_epsilon=config.clip_epsilon,
                        kl_coef=config.kl_coef,
                        normaliser=tokens,
                    )
                    loss.backward()
                    loss_value += float(loss.detach()) / updates_per_batch
                    clipped += info["clipped"]
                    k3_sum += info["k3"]
                    trained_tokens += int(mask.sum())
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
        clock["cpu"] += time.process_time() - cpu0
        clock["wall"] += time.perf_counter() - wall0
        entry = {
            "step": step + 1,
            "success": float(inputs.success.mean()),
            "mean_return": float(returns.mean()),
            "loss": loss_value,
            "trained_trajectories": len(examples),
            "undecided_trajectories": int((inputs.undecided_turns > 0).sum())
            if inputs.undecided_turns is not None
            else 0,
            "generated_tokens": generated_tokens,
            "clip_fraction": clipped / trained_tokens if trained_tokens else 0.0,
            "kl": k3_sum / trained_tokens if trained_tokens else 0.0,
            "cpu_s": clock["cpu"],
            "elapsed_s": clock["wall"],
        }
        log.append(entry)
        if progress:
            console.print(
                f"online RL step {entry['step']}/{config.steps}: success {entry['success']:.3f} "
                f"return {entry['mean_return']:+.3f} loss {loss_value:+.4f} kl {entry['kl']:.4f} "
                f"clip {entry['clip_fraction']:.3f} ({entry['cpu_s']:.0f} s CPU)"
            )
        if evaluate is not None and (
            step + 1 == config.steps or (config.eval_every and (step + 1) % config.eval_every == 0)
        ):
            run_eval(step + 1)
    policy.close()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    summary = {
        "config": asdict(config),
        "log": log,
        "evals": evals,
        "wall_s": clock["wall"],
        "cpu_s": clock["cpu"],
        "generated_tokens": generated_tokens,
    }
    (out / "online_rl_log.json").write_text(json.dumps(summary, indent=2))
    return summary
