"""``drift quickstart``: the whole DRIFT loop on the embedded tiny model, offline, on a CPU.

1. Build the tiny reference model and pretrain it briefly on procedural math episodes played by a
   noisy scripted teacher, so its first-turn accuracy is low but not zero (cached after the first run).
2. Evaluate it on held-out tasks: the env's ``split="test"`` (any env), while pretraining and
   rollouts use ``split="train"``; a run whose test tasks share a ``task_id`` with its train tasks (an
   env that ignores ``split``, or one dataset file for both) is refused before anything runs.
   ``eval_env_kwargs`` overrides kwargs of the evaluation only (e.g. a held-out dataset file).
3. Collect K reference rollouts per task, compute DRIFT importance weights, and fine-tune with DRIFT
   weighted SFT (``wsft``) and the SFT and RFT baselines on the same rollouts.
4. Evaluate every model on the same held-out tasks; print success@1..T (± the s.e. clustered by task),
   non-repetition and training time, and each method's difference to the reference with its paired
   s.e. over the same tasks; save ``results.json``, ``curves.png`` and every intermediate file under
   ``--output-dir``.

``--config run.yaml`` overrides any field of :class:`QuickstartConfig` (another env, another model,
more tasks). With ``model:`` set, step 1 is skipped and that model is the reference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "QuickstartConfig",
    "check_held_out",
    "eval_env_kwargs",
    "evaluate_stage",
    "main",
    "pretrain_reference",
    "rollout_stage",
    "run_quickstart",
    "teacher_episodes",
    "train_env_kwargs",
    "train_stage",
]


@dataclass
class QuickstartConfig:
    """Every knob of the quickstart; a ``--config`` YAML file may set any of them."""

    env_id: str = "drift/MathFeedback-v0"
    env_kwargs: dict = field(
        default_factory=lambda: {
            "difficulty": "tiny",
            "feedback": "hint",
            "max_turns": 3,
            "system_prompt": "",
        }
    )
    model: str | None = None  # None: the embedded tiny model, pretrained by step 1
    output_dir: str = "runs/quickstart"
    seed: int = 0
    # step 1: pretraining the tiny reference on a noisy scripted teacher
    tiny_model: dict = field(
        default_factory=lambda: {"hidden_size": 64, "num_layers": 2, "intermediate_size": 192}
    )
    pretrain_episodes: int = 4000
    pretrain_epochs: float = 3.0
    pretrain_learning_rate: float = 1e-2
    teacher_accuracy: float = 0.3  # chance the teacher's reply is right, at every turn
    teacher_spread: int = 3  # wrong answers lie within gold ± spread
    # steps 2 and 4: evaluation on held-out tasks
    eval_tasks: int = 500
    eval_temperature: float = 1.0
    eval_env_kwargs: dict = field(default_factory=dict)  # over env_kwargs + split="test", evaluation only
    # step 3: reference rollouts, weights and training
    rollout_tasks: int = 200
    samples: int = 8
    rollout_temperature: float = 1.0
    max_new_tokens: int = 16
    methods: list = field(default_factory=lambda: ["wsft", "sft", "rft"])
    train_epochs: float = 3.0
    learning_rate: float = 3e-3
    batch_size: int = 64
    weight_beta: float = 0.1

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> QuickstartConfig:
        """Defaults overridden by the fields of a YAML file (unknown fields are an error)."""
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of QuickstartConfig fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


def _perturbed_guesses(gold: int, spread: int, rng: random.Random, taken: set) -> int:
    options = [gold + d for d in range(-spread, spread + 1) if d and gold + d not in taken]
    return rng.choice(options) if options else gold + spread + len(taken)


def teacher_episodes(config: QuickstartConfig, n: int, seed: int) -> list[dict]:
    """Episodes of a noisy scripted teacher in the math env: records with ``messages`` for SFT.

    At every turn the teacher answers right with probability ``teacher_accuracy``, and otherwise
    gives a number near the gold answer that it has not tried yet. The tiny model imitates that: it
    starts as a weak but non-trivial reference policy whose multi-turn behaviour DRIFT can improve.
    """
    import gymnasium as gym

    import drift_envs  # noqa: F401

    env = gym.make(config.env_id, **train_env_kwargs(config)).unwrapped
    rng = random.Random(f"teacher:{seed}")
    records = []
    for i in range(n):
        index = i % env.num_tasks()
        env.reset(options={"index": index})
        try:
            gold = int(str(env.task.answer))
        except ValueError as e:
            raise ValueError(
                f"the scripted teacher needs integer answers; task {env.task.task_id} has "
                f"{env.task.answer!r} (use difficulty 'tiny' or 'easy', or pass model: in the config)"
            ) from e
        taken: set[int] = set()
        rewards, verifier, answers, penalty = {}, {}, [], 0.0
        done, info = False, {}
        while not done:
            guess = (
                gold
                if rng.random() < config.teacher_accuracy
                else _perturbed_guesses(gold, config.teacher_spread, rng, taken)
            )
            taken.add(guess)
            _, reward, terminated, truncated, info = env.step(f"\\boxed{{{guess}}}")
            turn = f"t{info['turn']}"
            turn_penalty = 0.0 if info["format_ok"] else env.format_penalty
            # as the rollout engine records it: r_t without the format penalty, which has its own field
            rewards[turn], verifier[turn] = reward - turn_penalty, int(info["correct"])
            answers.append(info["answer"])
            penalty += turn_penalty
            done = terminated or truncated
        records.append(
            {
                "prompt_id": index,
                "traj_idx": i // env.num_tasks(),
                "env_id": config.env_id,
                "env_kwargs": train_env_kwargs(config),
                "task_id": env.task.task_id,
                "messages": info["messages"],
                "turn_rewards": rewards,
                "verifier": verifier,
                "t_star": info["turn"] if info["correct"] else None,
                "answer_norms": answers,
                "format_penalty": penalty,
                "meta": {"policy": "scripted-teacher", "seed": seed},
            }
        )
    return records


def pretrain_reference(config: QuickstartConfig, console: Any = None) -> Path:
    """The pretrained tiny reference model folder, built once per pretraining config and cached."""
    from drift_train.tiny import FORMAT_VERSION, default_cache_dir, tiny_model_path
    from drift_train.trainer import DriftConfig, train

    knobs = {
        k: getattr(config, k)
        for k in (
            "env_id",
            "env_kwargs",
            "tiny_model",
            "pretrain_episodes",
            "pretrain_epochs",
            "pretrain_learning_rate",
            "teacher_accuracy",
            "teacher_spread",
            "batch_size",
            "seed",
        )
    }
    key = hashlib.sha256(json.dumps({**knobs, "tiny": FORMAT_VERSION}, sort_keys=True).encode()).hexdigest()[
        :12
    ]
    out = default_cache_dir() / f"quickstart-reference-{key}"
    if (out / "config.json").exists() and (out / ".complete").exists():
        if console:
            console.print(f"[green]pretrained reference cached[/green] at {out}")
        return out
    base = tiny_model_path(**config.tiny_model)
    work = out.with_name(out.name + ".partial")
    work.mkdir(parents=True, exist_ok=True)
    data = work / "teacher.jsonl"
    with open(data, "w") as f:
        for record in teacher_episodes(config, config.pretrain_episodes, config.seed):
            f.write(json.dumps(record) + "\n")
    train(
        DriftConfig(
            output_dir=str(work / "model"),
            data=str(data),
            model=str(base),
            loss="sft",
            assistant_turns="all",
            num_train_epochs=config.pretrain_epochs,
            learning_rate=config.pretrain_learning_rate,
            per_device_train_batch_size=config.batch_size,
            lr_scheduler_type="cosine",
            warmup_steps=0.05,
            weight_decay=0.0,
            save_strategy="no",
            report_to=[],
            logging_steps=50,
            seed=config.seed,
            disable_tqdm=False,
            use_cpu=not _has_cuda(),
        )
    )
    if out.exists():
        shutil.rmtree(out)
    (work / "model").rename(out)
    (out / ".complete").write_text("ok\n")
    shutil.rmtree(work, ignore_errors=True)
    return out


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def eval_env_kwargs(config: QuickstartConfig) -> dict:
    """The env kwargs of the held-out evaluation: ``split="test"``, then ``eval_env_kwargs``."""
    return {**config.env_kwargs, "split": "test", **config.eval_env_kwargs}


def train_env_kwargs(config: QuickstartConfig) -> dict:
    """The env kwargs of pretraining and rollouts: ``split="train"``."""
    return {**config.env_kwargs, "split": "train"}


def check_held_out(config: QuickstartConfig) -> None:
    """Refuse a run whose evaluation tasks are not held out: the ``task_id`` of every evaluated test task
    must differ from those of the train tasks that pretraining and rollouts use."""
    import gymnasium as gym

    import drift_envs  # noqa: F401

    def task_ids(kwargs: dict, count: int, role: str) -> set[str]:
        try:
            env = gym.make(config.env_id, **kwargs)
        except TypeError as e:
            raise ValueError(
                f"{config.env_id} cannot be made with {kwargs} for the {role} ({e}); the quickstart "
                "needs an env that takes split='train'/'test'"
            ) from None
        try:
            source = env.unwrapped
            return {str(source.get_task(i).task_id) for i in range(min(count, source.num_tasks()))}
        finally:
            env.close()

    train_count = max(config.rollout_tasks, config.pretrain_episodes if config.model is None else 0)
    train = task_ids(train_env_kwargs(config), train_count, "rollouts")
    test = task_ids(eval_env_kwargs(config), config.eval_tasks, "held-out evaluation")
    shared = sorted(train & test)
    if shared:
        raise ValueError(
            f"{config.env_id}: {len(shared)} of the {len(test)} evaluation tasks (split='test') are also "
            f"train tasks (e.g. {shared[:3]}), so the evaluation would not be held out; use an env whose "
            "splits differ, or point eval_env_kwargs at held-out data"
        )


def evaluate_stage(config: QuickstartConfig, name: str, model_dir: str | Path, out: Path, seed: int) -> dict:
    """Metrics of ``model_dir`` on the held-out tasks (:func:`eval_env_kwargs`); files go to ``out``."""
    from drift_train.evaluate import evaluate_model

    metrics, _ = evaluate_model(
        str(model_dir),
        config.env_id,
        env_kwargs=eval_env_kwargs(config),
        num_tasks=config.eval_tasks,
        samples=1,
        temperature=config.eval_temperature,
        max_new_tokens=config.max_new_tokens,
        seed=seed,
        out_trajectories=out / f"eval_{name}.jsonl",
    )
    (out / f"eval_{name}.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def rollout_stage(config: QuickstartConfig, reference: str | Path, out: Path, seed: int) -> dict:
    """Reference rollouts on the ``train`` split, then DRIFT weights; returns paths, summary and costs."""
    from drift_train.policies import SamplingParams, make_policy
    from drift_train.rollout import RolloutConfig, rollout
    from drift_train.trajectories import validate_groups, write_trajectories
    from drift_train.weights import WeightConfig, add_weights, print_summary

    started = time.perf_counter()
    policy = make_policy("hf", str(reference), batch_size=256)
    rollout_config = RolloutConfig(
        env_id=config.env_id,
        env_kwargs=train_env_kwargs(config),
        num_tasks=config.rollout_tasks,
        samples=config.samples,
        seed=seed,
        batch_size=512,
        sampling=SamplingParams(temperature=config.rollout_temperature, max_new_tokens=config.max_new_tokens),
    )
    try:
        records, stats = rollout(
            policy, rollout_config, out / "rollouts.jsonl", overwrite=True, progress=True
        )
    finally:
        policy.close()
    validate_groups(records, samples=config.samples)
    weighted, summary = add_weights(records, WeightConfig(beta=config.weight_beta))
    data = write_trajectories(weighted, out / "rollouts.weighted.jsonl")
    (out / "rollouts.weighted.summary.json").write_text(json.dumps(summary, indent=2))
    print_summary(summary)
    return {
        "data": data,
        "summary": summary,
        "seconds": time.perf_counter() - started,
        "generated_tokens": stats.generated_tokens,
    }


def train_stage(
    config: QuickstartConfig, reference: str | Path, data: str | Path, method: str, out: Path, seed: int
) -> tuple[Path, float]:
    """Fine-tune the reference on the weighted rollouts with loss ``method``; returns (model folder, seconds)."""
    from drift_train.trainer import DriftConfig, train

    started = time.perf_counter()
    model_dir = out / f"model_{method}"
    train(
        DriftConfig(
            output_dir=str(model_dir),
            data=str(data),
            model=str(reference),
            loss=method,
            assistant_turns="last",
            num_train_epochs=config.train_epochs,
            learning_rate=config.learning_rate,
            per_device_train_batch_size=config.batch_size,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            save_strategy="no",
            report_to=[],
            logging_steps=20,
            seed=seed,
            use_cpu=not _has_cuda(),
        )
    )
    return model_dir, time.perf_counter() - started


def run_quickstart(config: QuickstartConfig) -> dict:
    """Run the four steps and return the results (also written to ``output_dir/results.json``)."""
    from rich.console import Console

    from drift_train.evaluate import metrics_table, paired_differences, plot_success_curves
    from drift_train.trajectories import read_trajectories

    check_held_out(config)  # before anything is written
    console = Console()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    started = time.perf_counter()
    timings: dict[str, float] = {}

    console.rule("[bold]1. reference model")
    t = time.perf_counter()
    reference = Path(config.model) if config.model else pretrain_reference(config, console)
    timings["reference"] = time.perf_counter() - t

    console.rule("[bold]2. evaluate the reference on held-out tasks")
    results: dict[str, dict] = {
        "reference": {
            "metrics": evaluate_stage(config, "reference", reference, out, config.seed + 1),
            "train_s": 0.0,
        }
    }
    console.print(metrics_table({"reference": results["reference"]["metrics"]}, title="reference"))

    console.rule("[bold]3. reference rollouts → weights → training")
    stage = rollout_stage(config, reference, out, config.seed)
    timings["rollouts"] = stage["seconds"]
    skipped: dict[str, str] = {}
    for method in config.methods:
        console.rule(f"[bold]train {method}")
        try:
            model_dir, train_s = train_stage(config, reference, stage["data"], method, out, config.seed)
        except ValueError as e:  # e.g. rft when the reference never succeeded: no data, not a crash
            console.print(f"[yellow]skipping {method}: {e}[/yellow]")
            skipped[method] = str(e)
            continue
        console.rule(f"[bold]4. evaluate {method}")
        results[method] = {
            "metrics": evaluate_stage(config, method, model_dir, out, config.seed + 1),
            "train_s": train_s,
        }
    T = results["reference"]["metrics"]["max_turns"]

    console.print(_with_train_time(results, config, T))
    ref = results["reference"]["metrics"]["success_at"][str(T)]
    ref_records = list(read_trajectories(out / "eval_reference.jsonl"))
    verdicts = {}
    for name, r in results.items():
        if name == "reference":
            continue
        m = r["metrics"]["success_at"][str(T)]
        # the same held-out tasks: the difference's s.e. comes from the per-task differences (paired)
        d = paired_differences(list(read_trajectories(out / f"eval_{name}.jsonl")), ref_records, T)[
            "success_at"
        ][str(T)]
        z = d["value"] / d["se"] if d["se"] else (0.0 if d["value"] == 0 else None)
        verdicts[name] = {
            "success_at_T": m["value"],
            "delta": d["value"],
            "se": d["se"],
            "tasks": d["tasks"],
            "z": z,
        }
        console.print(
            f"{name}: success@{T} {m['value']:.3f} vs reference {ref['value']:.3f} "
            f"(Δ={d['value']:+.3f} ± {d['se'] or 0:.3f} paired over {d['tasks']} tasks"
            + (f", {z:+.1f} SE)" if z is not None else ")")
        )
    png = plot_success_curves(
        {n: r["metrics"] for n, r in results.items()},
        out / "curves.png",
        title=f"{config.env_id} (tiny model)",
    )
    timings["total"] = time.perf_counter() - started
    summary_out = {
        "config": asdict(config),
        "results": results,
        "vs_reference": verdicts,
        "skipped": skipped,
        "timings_s": timings,
        "reference_model": str(reference),
        "curves_png": str(png),
    }
    (out / "results.json").write_text(json.dumps(summary_out, indent=2))
    console.print(f"results → {out / 'results.json'}; curves → {png}; total {timings['total']:.0f} s")
    return summary_out


def _with_train_time(results: dict, config: QuickstartConfig, T: int):
    from rich.table import Table

    from drift_train.evaluate import format_metric

    table = Table(
        title=f"{config.env_id}: {config.eval_tasks} held-out tasks, mean ± s.e. (clustered by task)"
    )
    table.add_column("model")
    for t in range(1, T + 1):
        table.add_column(f"success@{t}", justify="right")
    table.add_column("non-repeat", justify="right")
    table.add_column("train (s)", justify="right")
    for name, r in results.items():
        m = r["metrics"]
        table.add_row(
            name,
            *[format_metric(m["success_at"][str(t)]) for t in range(1, T + 1)],
            format_metric(m["non_repeat_ratio"]),
            f"{r['train_s']:.0f}",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    """``drift quickstart [--config run.yaml] [--output-dir DIR]``."""
    parser = argparse.ArgumentParser(
        prog="drift quickstart", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="YAML file overriding QuickstartConfig fields")
    parser.add_argument("--output-dir", help="where every file of the run goes (default runs/quickstart)")
    parser.add_argument("--seed", type=int, help="seed of the whole run")
    args = parser.parse_args(argv)
    try:
        config = QuickstartConfig.from_yaml(args.config) if args.config else QuickstartConfig()
    except (OSError, ValueError, TypeError) as e:
        parser.error(str(e))
    if args.output_dir:
        config.output_dir = args.output_dir
    if args.seed is not None:
        config.seed = args.seed
    try:
        check_held_out(config)
    except ValueError as e:
        parser.error(str(e))
    run_quickstart(config)
    return 0
