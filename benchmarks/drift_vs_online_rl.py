"""DRIFT vs online multi-turn RL on the tiny model: learning curves against generated tokens and CPU time.

    python benchmarks/drift_vs_online_rl.py --seeds 0 1 2 --out-dir runs/drift_vs_online_rl

From the same pretrained tiny reference (the quickstart's, cached), per seed:

* DRIFT family: reference rollouts collected in increments (``--drift-budgets`` tasks × K, default 50
  and 200), and at each budget the reference fine-tuned on the rollouts so far with each loss
  (``--methods``, default rft and wsft = DRIFT; ``--full-budget-methods``, e.g. sft, only at the largest
  budget). A point's cost is the rollouts up to its budget plus its own training.
* TRL's GRPO (``--baseline trl-grpo``, :func:`trl_phase`): ``trl.GRPOTrainer`` playing the same episodes
  through :func:`drift_envs.integrations.trl.rollout_func` at online RL's generation budget (rounds × tasks
  × K episodes, tokens per reply) and learning rate, evaluated at the same rounds; ``seed*/trl_grpo_lr*.json``.
* Online RL (:mod:`drift_train.online_rl`): rollouts from the current policy every step, GRPO advantages,
  with the stabilisers on by default (PPO clipped ratio ε = 0.2, 2 epochs × 2 minibatches per batch, k3 KL
  to the reference β_KL = 0.05, ``--rl-kl-coef``), evaluated every ``--rl-eval-every`` steps. Its learning
  rate is the best of a sweep (``--rl-learning-rates``, ``--sweep-steps`` steps each, on the first seed;
  under ``sweep/``)
  picked by success@T on *validation* tasks (test-split tasks after the reported ones); every seed then
  runs ``--rl-steps`` steps at that rate.

Every model is evaluated on the same held-out tasks (test split, the first ``--eval-tasks``), success@1 and
success@T with the s.e. clustered by task. Cost axes: generated tokens, and CPU time (``time.process_time``
of the process doing the work, torch on one thread; evaluation excluded) — CPU time rather than wall clock
because the machine is shared. Outputs under ``--out-dir``: ``seed*/drift.json`` and ``seed*/rl_lr*.json``
and ``sweep/rl_lr*.json`` (per-run curves; runs already there are reused, so phases and seeds can run as
separate processes with ``--phase``),
then ``results.json``, ``curves.png`` (one figure, mean ± std bands over seeds) and ``results.md``: the final
table, the learning-rate sweep, the plateau check (last vs middle evaluation of RL, paired s.e.), and each
method's tokens and CPU time to reach the target success@T (reference + half the gap to the best method's
final success@T, or ``--target``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

METHODS = ("rft", "wsft")
FULL_BUDGET_METHODS: tuple[str, ...] = ()  # e.g. sft, otr, drift-otr: only at the largest budget


def _success(metrics: dict, T: int) -> dict:
    s = metrics["success_at"]
    return {
        "success_at_1": s["1"]["value"],
        "success_at_1_se": s["1"]["se"],
        "success_at_T": s[str(T)]["value"],
        "success_at_T_se": s[str(T)]["se"],
    }


def _lr_tag(lr: float) -> str:
    return f"{lr:g}"


def drift_phase(
    base,
    reference: Path,
    out: Path,
    seed: int,
    budgets: list[int],
    methods: list[str],
    full_methods: list[str],
) -> dict:
    """Reference eval, incremental rollouts, and every method trained and evaluated at every budget."""
    from drift_train.policies import SamplingParams, make_policy
    from drift_train.quickstart import evaluate_stage, train_env_kwargs, train_stage
    from drift_train.rollout import RolloutConfig, rollout
    from drift_train.trajectories import write_trajectories
    from drift_train.weights import WeightConfig, add_weights

    path = out / "drift.json"
    if path.exists():
        return json.loads(path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    T = base.env_kwargs["max_turns"]
    reference_metrics = evaluate_stage(base, "reference", reference, out, seed + 1)
    records: list[dict] = []
    tokens, rollout_cpu, rollout_wall = 0, 0.0, 0.0
    curves: dict[str, list[dict]] = {}
    policy = make_policy("hf", str(reference), batch_size=256)
    done = 0
    for budget in sorted(budgets):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        new, stats = rollout(
            policy,
            RolloutConfig(
                env_id=base.env_id,
                env_kwargs=train_env_kwargs(base),
                num_tasks=budget - done,
                task_offset=done,
                samples=base.samples,
                seed=seed,
                batch_size=512,
                sampling=SamplingParams(
                    temperature=base.rollout_temperature, max_new_tokens=base.max_new_tokens
                ),
            ),
        )
        rollout_cpu += time.process_time() - cpu0
        rollout_wall += time.perf_counter() - wall0
        tokens += stats.generated_tokens
        records += new
        done = budget
        weighted, summary = add_weights(
            records, WeightConfig(beta=base.weight_beta)
        )  # groups are independent
        data = write_trajectories(weighted, out / f"rollouts_{budget}.weighted.jsonl")
        chosen = list(methods) + (list(full_methods) if budget == max(budgets) else [])
        for method in chosen:
            cpu0 = time.process_time()
            model_dir, train_wall = train_stage(base, reference, data, method, out / f"b{budget}", seed)
            train_cpu = time.process_time() - cpu0
            name = f"{method}_b{budget}"
            metrics = evaluate_stage(base, name, model_dir, out, seed + 1)
            curves.setdefault(method, []).append(
                {
                    "budget_tasks": budget,
                    "generated_tokens": tokens,
                    "cpu_s": rollout_cpu + train_cpu,
                    "wall_s": rollout_wall + train_wall,
                    "train_cpu_s": train_cpu,
                    "weights": summary,
                    "eval_records": str(out / f"eval_{name}.jsonl"),
                    **_success(metrics, T),
                }
            )
    policy.close()
    result = {
        "seed": seed,
        "max_turns": T,
        "reference": {
            "generated_tokens": 0,
            "cpu_s": 0.0,
            "wall_s": 0.0,
            "eval_records": str(out / "eval_reference.jsonl"),
            **_success(reference_metrics, T),
        },
        "curves": curves,
    }
    path.write_text(json.dumps(result, indent=2))
    return result


def rl_phase(base, reference: Path, out: Path, seed: int, lr: float, args, steps: int) -> dict:
    """One online RL run with held-out evaluations along the way and a final validation score."""
    from drift_train.evaluate import evaluate_model
    from drift_train.online_rl import OnlineRLConfig, train_online_rl
    from drift_train.policies import SamplingParams, make_policy
    from drift_train.quickstart import eval_rollout_config
    from drift_train.rollout import RolloutConfig

    path = out / f"rl_lr{_lr_tag(lr)}.json"
    if path.exists():
        return json.loads(path.read_text())
    run_dir = out / f"rl_lr{_lr_tag(lr)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    T = base.env_kwargs["max_turns"]
    counter = {"step": 0}

    def evaluate(policy) -> dict:
        # same tasks and eval seed as evaluate_stage uses for every other model
        target = run_dir / f"eval_step{counter['step']}.jsonl"
        metrics, _ = evaluate_model(
            policy, eval_rollout_config(base, seed + 1), out_trajectories=target, progress=False
        )
        counter["step"] += args.rl_eval_every
        return {"eval_records": str(target), **_success(metrics, T)}

    stabilised = not args.rl_plain
    config = OnlineRLConfig(
        rollout=RolloutConfig(
            env_id=base.env_id,
            env_kwargs={**base.env_kwargs, "split": "train"},
            samples=base.samples,
            seed=seed,
            sampling=SamplingParams(temperature=base.rollout_temperature, max_new_tokens=base.max_new_tokens),
        ),
        model=str(reference),
        output_dir=str(run_dir / "model"),
        steps=steps,
        tasks_per_step=args.rl_tasks_per_step,
        learning_rate=lr,
        eval_every=args.rl_eval_every,
        ppo_epochs=2 if stabilised else 1,
        minibatches=2 if stabilised else 1,
        clip_epsilon=0.2 if stabilised else None,
        kl_coef=args.rl_kl_coef if stabilised else 0.0,
    )
    summary = train_online_rl(config, evaluate=evaluate)
    # validation: test-split tasks after the reported ones, for picking the learning rate
    validation_config = replace(
        eval_rollout_config(base, seed + 1), num_tasks=args.validation_tasks, task_offset=base.eval_tasks
    )
    policy = make_policy("hf", str(run_dir / "model"))
    try:
        validation, _ = evaluate_model(policy, validation_config, progress=False)
    finally:
        policy.close()
    result = {
        "seed": seed,
        "learning_rate": lr,
        "config": asdict(config),
        "curve": summary["evals"],
        "train_log": summary["log"],
        "cpu_s": summary["cpu_s"],
        "wall_s": summary["wall_s"],
        "generated_tokens": summary["generated_tokens"],
        "validation": _success(validation, T),
    }
    path.write_text(json.dumps(result, indent=2))
    return result


def trl_phase(base, reference: Path, out: Path, seed: int, lr: float, args, steps: int) -> dict:
    """TRL's ``GRPOTrainer`` as the online RL baseline, at the generation budget of :func:`rl_phase`.

    Generation goes through :func:`drift_envs.integrations.trl.rollout_func` (whole episodes, feedback as
    user turns, the DRIFT return as the reward). Same budget as our online RL: ``steps`` generation rounds
    of ``--rl-tasks-per-step`` train tasks × K episodes, the same temperature, tokens per reply, learning
    rate (constant, AdamW without weight decay, gradient norm clipped at 1), float32 (TRL's default is
    bf16 autocast, even on CPU) and, stabilised, the same
    stabilisers in TRL's terms: ``num_iterations`` = 2 passes × ``steps_per_generation`` = 2 minibatches
    per round, clip ε = 0.2, ``beta`` = β_KL; plain: one update per round, no KL. Everything else is
    TRL's default (``loss_type``, advantage scaling by the group's std). Held-out evaluations at the same
    rounds, on the same tasks and seed, with the same evaluation function; their time is kept out of the
    CPU clock, as in :func:`rl_phase`. The learning rate is the one picked for our online RL (no sweep of
    its own)."""
    import os

    import torch
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from drift_envs.integrations.trl import env_reward, rollout_func, task_dataset
    from drift_train.evaluate import evaluate_model
    from drift_train.policies.hf import HFPolicy
    from drift_train.quickstart import eval_rollout_config
    from drift_train.rollout import make_env

    path = out / f"trl_grpo_lr{_lr_tag(lr)}.json"
    if path.exists():
        return json.loads(path.read_text())
    run_dir = out / f"trl_grpo_lr{_lr_tag(lr)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental in TRL 1.16
    T = base.env_kwargs["max_turns"]
    env_kwargs = {k: v for k, v in base.env_kwargs.items() if k != "split"}
    env = make_env(base.env_id, {**env_kwargs, "split": "train"})
    num_tasks = env.unwrapped.num_tasks()
    env.close()
    stabilised = not args.rl_plain
    passes, minibatches = (2, 2) if stabilised else (1, 1)
    episodes_per_round = args.rl_tasks_per_step * base.samples
    if episodes_per_round % minibatches:
        raise ValueError(
            f"--rl-tasks-per-step {args.rl_tasks_per_step} x K={base.samples} episodes do not split into "
            f"{minibatches} minibatches"
        )
    updates = passes * minibatches  # optimizer steps per generation round
    data = task_dataset(
        base.env_id, "train", min(num_tasks, steps * args.rl_tasks_per_step), seed=seed, **env_kwargs
    )
    play = rollout_func(base.env_id, max_new_tokens=base.max_new_tokens, **env_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(reference)
    config = GRPOConfig(
        output_dir=str(run_dir / "model"),
        max_steps=steps * updates,
        per_device_train_batch_size=episodes_per_round // minibatches,
        steps_per_generation=minibatches,
        num_iterations=passes,
        gradient_accumulation_steps=1,
        num_generations=base.samples,
        max_completion_length=base.max_new_tokens,
        temperature=base.rollout_temperature,
        top_p=1.0,
        top_k=0,
        learning_rate=lr,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=1.0,
        epsilon=0.2,
        beta=args.rl_kl_coef if stabilised else 0.0,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        bf16=False,  # TRL's default is True, i.e. bf16 autocast even on CPU; our online RL runs in float32
        seed=seed,
    )
    trainer = GRPOTrainer(
        model=str(reference),
        processing_class=tokenizer,
        args=config,
        train_dataset=data,
        rollout_func=play,
        reward_funcs=env_reward,
    )
    clock = {"cpu0": 0.0, "wall0": 0.0, "cpu_eval": 0.0, "wall_eval": 0.0}
    curve: list[dict] = []

    def evaluate(model, step: int) -> None:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        training = model.training
        target = run_dir / f"eval_step{step}.jsonl"
        policy = HFPolicy(model, tokenizer=tokenizer, batch_size=256)
        try:
            metrics, _ = evaluate_model(
                policy, eval_rollout_config(base, seed + 1), out_trajectories=target, progress=False
            )
        finally:
            policy.close()
            model.train(training)
        point = {
            "step": step,
            "generated_tokens": play.generated_tokens,
            "episodes": play.episodes,
            "cpu_s": cpu0 - clock["cpu0"] - clock["cpu_eval"],
            "elapsed_s": wall0 - clock["wall0"] - clock["wall_eval"],
            "eval_records": str(target),
            **_success(metrics, T),
        }
        clock["cpu_eval"] += time.process_time() - cpu0
        clock["wall_eval"] += time.perf_counter() - wall0
        curve.append(point)

    class Evaluations(TrainerCallback):
        """Held-out evaluation before training and every ``--rl-eval-every`` generation rounds."""

        def on_train_begin(self, args_, state, control, model=None, **kwargs):
            clock["cpu0"], clock["wall0"] = time.process_time(), time.perf_counter()
            evaluate(model, 0)

        def on_step_end(self, args_, state, control, model=None, **kwargs):
            if state.global_step % updates:
                return
            rounds = state.global_step // updates
            if rounds == steps or (args.rl_eval_every and rounds % args.rl_eval_every == 0):
                evaluate(model, rounds)

    trainer.add_callback(Evaluations())
    trainer.train()
    play.close()
    result = {
        "seed": seed,
        "learning_rate": lr,
        "baseline": "trl-grpo",
        "versions": _versions(),
        "config": {
            k: getattr(config, k)
            for k in (
                "max_steps",
                "per_device_train_batch_size",
                "steps_per_generation",
                "num_iterations",
                "num_generations",
                "max_completion_length",
                "temperature",
                "learning_rate",
                "epsilon",
                "beta",
                "loss_type",
                "scale_rewards",
            )
        },
        "curve": curve,
        "train_log": trainer.state.log_history,
        "cpu_s": curve[-1]["cpu_s"],
        "wall_s": curve[-1]["elapsed_s"],
        "generated_tokens": play.generated_tokens,
        "episodes": play.episodes,
    }
    path.write_text(json.dumps(result, indent=2, default=str))
    return result


def _versions() -> dict:
    """Versions of what the TRL baseline ran on (recorded with its results)."""
    from importlib.metadata import version

    return {name: version(name) for name in ("trl", "transformers", "torch")}


def best_learning_rate(root: Path) -> float | None:
    """The sweep's learning rate with the highest validation success@T (None without a sweep)."""
    runs = [json.loads(p.read_text()) for p in sorted((root / "sweep").glob("rl_lr*.json"))]
    return max(runs, key=lambda r: r["validation"]["success_at_T"])["learning_rate"] if runs else None


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(root: Path, base, target: float | None = None) -> dict:
    """Read every seed's runs, pick RL's learning rate, and write results.json, results.md and curves.png."""
    from drift_train.evaluate import paired_differences
    from drift_train.trajectories import read_trajectories

    seeds = sorted(int(p.name[4:]) for p in root.glob("seed*") if (p / "drift.json").exists())
    T = base.env_kwargs["max_turns"]
    drift = {s: json.loads((root / f"seed{s}" / "drift.json").read_text()) for s in seeds}
    rl_runs: dict[float, dict[int, dict]] = {}
    for s in seeds:
        for p in sorted((root / f"seed{s}").glob("rl_lr*.json")):
            run = json.loads(p.read_text())
            rl_runs.setdefault(run["learning_rate"], {})[s] = run
    sweep = {
        run["learning_rate"]: run
        for run in map(json.loads, (p.read_text() for p in sorted((root / "sweep").glob("rl_lr*.json"))))
    }
    best_lr = best_learning_rate(root)
    if best_lr is None and len(rl_runs) == 1:  # no sweep (--rl-learning-rate): the one rate that ran
        best_lr = next(iter(rl_runs))
    trl_runs: dict[float, dict[int, dict]] = {}
    for s in seeds:
        for p in sorted((root / f"seed{s}").glob("trl_grpo_lr*.json")):
            run = json.loads(p.read_text())
            trl_runs.setdefault(run["learning_rate"], {})[s] = run
    trl_lr = best_lr if best_lr in trl_runs else (next(iter(trl_runs)) if len(trl_runs) == 1 else None)
    sweep_seed = next(iter(sweep.values()))["seed"] if sweep else None

    # curves: method -> seed -> points (x: tokens, cpu_s; y: success@1, success@T), starting at the reference
    curves: dict[str, dict[int, list[dict]]] = {}
    for s in seeds:
        ref = drift[s]["reference"]
        for method, points in drift[s]["curves"].items():
            curves.setdefault(method, {})[s] = [ref, *points]
        if best_lr in rl_runs and s in rl_runs[best_lr]:
            curves.setdefault("online_rl", {})[s] = rl_runs[best_lr][s]["curve"]
        if trl_lr in trl_runs and s in trl_runs[trl_lr]:
            curves.setdefault("trl_grpo", {})[s] = trl_runs[trl_lr][s]["curve"]
    finals = {m: {s: pts[-1] for s, pts in by_seed.items()} for m, by_seed in curves.items()}
    table = {
        "reference": {
            k: _mean_std([drift[s]["reference"][k] for s in seeds]) for k in ("success_at_1", "success_at_T")
        }
    }
    table["reference"].update(cpu_s=(0.0, 0.0), generated_tokens=(0.0, 0.0), seeds=len(seeds))
    for m, by_seed in finals.items():
        table[m] = {
            k: _mean_std([p[k] for p in by_seed.values()])
            for k in ("success_at_1", "success_at_T", "cpu_s", "generated_tokens")
        }
        table[m]["se_mean"] = statistics.fmean(p["success_at_T_se"] or 0.0 for p in by_seed.values())
        table[m]["seeds"] = len(by_seed)
    ref_T = table["reference"]["success_at_T"][0]
    best_T = max(v["success_at_T"][0] for k, v in table.items() if k != "reference")
    target = target if target is not None else ref_T + 0.5 * (best_T - ref_T)
    to_target = {}
    for m, by_seed in curves.items():
        hits = []
        for pts in by_seed.values():
            hit = next((p for p in pts if p["success_at_T"] >= target), None)
            if hit is not None:
                hits.append(hit)
        to_target[m] = {
            "reached": len(hits),
            "seeds": len(by_seed),
            "generated_tokens": _mean_std([h["generated_tokens"] for h in hits]) if hits else None,
            "cpu_s": _mean_std([h["cpu_s"] for h in hits]) if hits else None,
        }
    # plateau: RL's last evaluation against its middle one, paired over the same tasks
    plateau = {}
    if best_lr in rl_runs:
        for s, run in rl_runs[best_lr].items():
            curve = run["curve"]
            mid, last = curve[len(curve) // 2], curve[-1]
            d = paired_differences(
                list(read_trajectories(last["eval_records"])), list(read_trajectories(mid["eval_records"])), T
            )
            plateau[s] = {
                "from_step": mid["step"],
                "to_step": last["step"],
                "delta_success_at_T": d["success_at"][str(T)],
                "delta_success_at_1": d["success_at"]["1"],
            }
    result = {
        "config": asdict(base),
        "seeds": seeds,
        "max_turns": T,
        "target_success_at_T": target,
        "rl_best_learning_rate": best_lr,
        "trl_grpo_learning_rate": trl_lr,
        "trl_grpo_versions": next(iter(trl_runs[trl_lr].values()))["versions"]
        if trl_lr in trl_runs
        else None,
        "rl_sweep_seed": sweep_seed,
        "rl_sweep": {
            _lr_tag(lr): {
                "validation": run["validation"],
                "final": run["curve"][-1],
                "cpu_s": run["cpu_s"],
                "generated_tokens": run["generated_tokens"],
            }
            for lr, run in sorted(sweep.items())
        },
        "rl_config": next(iter(sweep.values()))["config"] if sweep else None,
        "table": table,
        "time_to_target": to_target,
        "plateau": plateau,
        "curves": curves,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (root / "results.json").write_text(json.dumps(result, indent=2, default=str))
    plot_curves(result, root / "curves.png")
    (root / "results.md").write_text(markdown(result))
    return result


def _band(by_seed: dict[int, list[dict]], x: str, y: str):
    """Mean x, mean y and std y at each point index, over the seeds (every seed has the same points)."""
    n = min(len(p) for p in by_seed.values())
    xs = [statistics.fmean(p[i][x] for p in by_seed.values()) for i in range(n)]
    ys = [[p[i][y] for p in by_seed.values()] for i in range(n)]
    return xs, [statistics.fmean(v) for v in ys], [statistics.stdev(v) if len(v) > 1 else 0.0 for v in ys]


def plot_curves(result: dict, path: Path) -> Path:
    """One figure, 2 × 2: success@1 and success@T against generated tokens and CPU time, mean ± std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = result["max_turns"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=90, sharey="row")
    for row, (y, label) in enumerate((("success_at_1", "success@1"), ("success_at_T", f"success@{T}"))):
        for col, (x, xlabel) in enumerate(
            (("generated_tokens", "generated tokens"), ("cpu_s", "CPU seconds"))
        ):
            ax = axes[row][col]
            for method, by_seed in result["curves"].items():
                xs, mean, std = _band(by_seed, x, y)
                (line,) = ax.plot(
                    xs, mean, marker="o", markersize=3, label=f"{method} ({len(by_seed)} seeds)"
                )
                ax.fill_between(
                    xs,
                    [m - s for m, s in zip(mean, std, strict=True)],
                    [m + s for m, s in zip(mean, std, strict=True)],
                    color=line.get_color(),
                    alpha=0.18,
                )
            if y == "success_at_T":
                ax.axhline(
                    result["target_success_at_T"], color="grey", linestyle="--", linewidth=0.8, label="target"
                )
            ax.set_xscale("symlog", linthresh=1e4 if x == "generated_tokens" else 10)
            ax.set_xlim(left=0)
            ax.set_xlabel(xlabel + " (symlog)")
            ax.set_ylabel(f"held-out {label}")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    axes[1][0].legend(fontsize=8)
    fig.suptitle(
        f"DRIFT vs online RL, tiny model, {result['config']['env_id']} "
        f"(seeds {result['seeds']}, mean ± std; online RL lr {result['rl_best_learning_rate']})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def markdown(result: dict) -> str:
    """The tables of results.json as Markdown (pasted into benchmarks/README.md)."""
    T = result["max_turns"]
    lines = [
        f"| method | seeds | success@1 | success@{T} | mean clustered s.e. | CPU s | generated tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, v in result["table"].items():
        se = f"{v['se_mean']:.3f}" if "se_mean" in v else "—"
        lines.append(
            f"| {m} | {v['seeds']} | {v['success_at_1'][0]:.3f} ± {v['success_at_1'][1]:.3f} | "
            f"{v['success_at_T'][0]:.3f} ± {v['success_at_T'][1]:.3f} | {se} | "
            f"{v['cpu_s'][0]:.0f} ± {v['cpu_s'][1]:.0f} | {v['generated_tokens'][0]:,.0f} |"
        )
    if result.get("trl_grpo_versions"):
        v = result["trl_grpo_versions"]
        lines += [
            "",
            f"trl_grpo: TRL's GRPOTrainer (trl {v['trl']}, transformers {v['transformers']}, torch {v['torch']}) "
            f"through drift_envs.integrations.trl.rollout_func at lr {result['trl_grpo_learning_rate']}, the same "
            "rounds × tasks × K episodes as online_rl.",
        ]
    lines += [
        "",
        f"Target success@{T} = {result['target_success_at_T']:.3f}:",
        "",
        "| method | seeds reaching it | generated tokens | CPU s |",
        "|---|---|---|---|",
    ]
    for m, v in result["time_to_target"].items():
        tok = (
            f"{v['generated_tokens'][0]:,.0f} ± {v['generated_tokens'][1]:,.0f}"
            if v["generated_tokens"]
            else "—"
        )
        cpu = f"{v['cpu_s'][0]:.0f} ± {v['cpu_s'][1]:.0f}" if v["cpu_s"] else "—"
        lines.append(f"| {m} | {v['reached']}/{v['seeds']} | {tok} | {cpu} |")
    lines += [
        "",
        f"Online RL learning-rate sweep (seed {result['rl_sweep_seed']}; picked by validation success@{T}):"
        if result["rl_sweep"]
        else f"Online RL learning rate {result['rl_best_learning_rate']} as given (--rl-learning-rate; no sweep).",
    ]
    if result["rl_sweep"]:
        lines += [
            "",
            f"| learning rate | steps | validation success@{T} | held-out success@1 | held-out success@{T} | CPU s |",
            "|---|---|---|---|---|---|",
        ]
    for lr, v in result["rl_sweep"].items():
        lines.append(
            f"| {lr} | {v['final']['step']} | {v['validation']['success_at_T']:.3f} ± "
            f"{v['validation']['success_at_T_se']:.3f} | {v['final']['success_at_1']:.3f} | "
            f"{v['final']['success_at_T']:.3f} | {v['cpu_s']:.0f} |"
        )
    lines += [
        "",
        f"Plateau (online RL at lr {result['rl_best_learning_rate']}: last evaluation minus the middle one, "
        "paired s.e. over the same tasks):",
        "",
        f"| seed | steps | Δ success@1 | Δ success@{T} |",
        "|---|---|---|---|",
    ]
    for s, v in result["plateau"].items():
        d1, dT = v["delta_success_at_1"], v["delta_success_at_T"]
        lines.append(
            f"| {s} | {v['from_step']} → {v['to_step']} | {d1['value']:+.3f} ± {d1['se']:.3f} | "
            f"{dT['value']:+.3f} ± {dT['se']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the phases for the given seeds, then summarise everything found under --out-dir."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--phase", choices=("all", "drift", "sweep", "rl", "summarise"), default="all")
    parser.add_argument("--config", help="QuickstartConfig YAML (env, sizes); defaults to the quickstart's")
    parser.add_argument(
        "--eval-tasks", type=int, default=300, help="held-out tasks (test split, from index 0)"
    )
    parser.add_argument(
        "--validation-tasks", type=int, default=200, help="test-split tasks after the held-out ones"
    )
    parser.add_argument(
        "--methods", nargs="*", default=list(METHODS), help="DRIFT-family losses at every budget"
    )
    parser.add_argument("--full-budget-methods", nargs="*", default=list(FULL_BUDGET_METHODS))
    parser.add_argument("--drift-budgets", type=int, nargs="+", default=[50, 200], help="rollout tasks")
    parser.add_argument("--rl-steps", type=int, default=120)
    parser.add_argument("--rl-eval-every", type=int, default=15)
    parser.add_argument("--rl-tasks-per-step", type=int, default=16)
    parser.add_argument(
        "--rl-learning-rates",
        type=float,
        nargs="+",
        default=[3e-4, 1e-3, 3e-3],
        help="swept on the first seed; the best on validation tasks is used for every seed",
    )
    parser.add_argument("--sweep-steps", type=int, default=60, help="steps of each sweep run")
    parser.add_argument(
        "--rl-learning-rate", type=float, default=None, help="skip the sweep: this rate for every seed"
    )
    parser.add_argument(
        "--baseline",
        choices=("online-rl", "trl-grpo"),
        default="online-rl",
        help="trl-grpo: also run TRL's GRPOTrainer (drift_envs.integrations.trl.rollout_func) at our online "
        "RL's generation budget and learning rate, after it in the rl phase",
    )
    parser.add_argument("--rl-plain", action="store_true", help="no clipping, one update per batch, no KL")
    parser.add_argument("--rl-kl-coef", type=float, default=0.05, help="β_KL of the stabilised online RL")
    parser.add_argument("--target", type=float, default=None, help="target success@T (default: see above)")
    parser.add_argument("--out-dir", default="runs/drift_vs_online_rl")
    args = parser.parse_args()

    import torch
    from rich.console import Console

    from drift_train.quickstart import QuickstartConfig, pretrain_reference

    torch.set_num_threads(1)
    base = QuickstartConfig.from_yaml(args.config) if args.config else QuickstartConfig()
    base = replace(base, eval_tasks=args.eval_tasks)
    root = Path(args.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    console = Console()
    reference = Path(base.model) if base.model else pretrain_reference(base, console)
    if args.phase in ("all", "sweep") and args.rl_learning_rate is None:
        for lr in args.rl_learning_rates:
            rl_phase(base, reference, root / "sweep", min(args.seeds), lr, args, args.sweep_steps)
    for seed in args.seeds if args.phase in ("all", "drift", "rl") else []:
        out = root / f"seed{seed}"
        console.rule(f"[bold]seed {seed}")
        if args.phase in ("all", "drift"):
            drift_phase(
                base, reference, out, seed, args.drift_budgets, args.methods, args.full_budget_methods
            )
        if args.phase in ("all", "rl"):
            lr = args.rl_learning_rate if args.rl_learning_rate is not None else best_learning_rate(root)
            if lr is None:
                parser.error(
                    f"no learning-rate sweep under {root / 'sweep'}: run --phase sweep first, or give "
                    "--rl-learning-rate"
                )
            rl_phase(base, reference, out, seed, lr, args, args.rl_steps)
            if args.baseline == "trl-grpo":
                trl_phase(base, reference, out, seed, lr, args, args.rl_steps)
    if args.phase in ("all", "summarise"):
        result = summarise(root, base, args.target)
        console.print(markdown(result))
        console.print(
            f"results → {root / 'results.json'}, {root / 'results.md'}; figure → {root / 'curves.png'}"
        )


if __name__ == "__main__":
    main()
