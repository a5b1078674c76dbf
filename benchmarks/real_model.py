"""DRIFT with a real model as the reference policy: SmolLM2-135M-Instruct on MathFeedback, end to end.

    python benchmarks/real_model.py --out-dir runs/real_model                 # the full run (hours on a CPU)
    python benchmarks/real_model.py --quick --out-dir runs/real_model_quick   # a smoke run of a few minutes
    python benchmarks/real_model.py --stages probe --out-dir runs/real_model_probe   # turn-1 success grid
    python benchmarks/real_model.py --model Qwen/Qwen2.5-0.5B-Instruct --backend vllm --device cuda \\
        --out-dir runs/real_model_qwen                                        # a GPU and a bigger model

Stages (``--stages``, comma-separated, default all but ``probe``), each resumable in ``--out-dir``: a stage
whose output is there is skipped, so an interrupted run is started again with the same command, and a
stage runs the earlier ones it needs (``--stages eval`` trains what is not trained yet). Seeds can run
as separate processes in one ``--out-dir`` (``--seeds 1 --stages train``), then ``--stages summary``.

* ``probe`` — turn-1 success of the model on ``drift/MathFeedback-v0`` per difficulty preset, answer format
  and temperature (``--probe-*``): how the setting below was chosen (``probe.json``, ``probe.md``).
* ``rollouts`` — the reference's rollouts on the train split: ``--rollout-tasks`` x ``--samples``,
  ``--max-turns`` turns, hint feedback (``rollouts.jsonl``, appended and resumed), then DRIFT weights
  (``rollouts.weighted.jsonl``, ``weights_summary.json``).
* ``train`` — for each ``--seeds`` seed and ``--methods`` loss (sft, rft, wsft = DRIFT, drift-otr), the
  reference fine-tuned on the same weighted rollouts (``train/seed<S>/<method>/``).
* ``online_rl`` — ``drift online-rl`` (GRPO advantages, PPO clipping, KL to the reference) per seed, at a
  generation budget of ``--rl-steps`` x ``--rl-tasks-per-step`` x ``--samples`` episodes: by default the
  same number of episodes as the reference rollouts (``rl/seed<S>/``).
* ``eval`` — every model (reference, each trained one, online RL) on ``--eval-tasks`` held-out test tasks
  of the main env and ``--second-env-tasks`` tasks of ``--second-env`` (an env nobody trained on, to show
  nothing collapsed), one sample per task at ``--eval-temperature`` with one seed for every model
  (``eval/<model>/main.json``, ``second.json`` and their trajectories).
* ``summary`` — ``results.json`` (success@1..T per method, mean ± sd over seeds, paired task-clustered
  s.e. against the reference and against RFT of the same seed, the second env, CPU seconds and generated
  tokens per method, library versions), ``results.md`` and ``success_main.png``/``success_second.png``.
  ``drift report OUT_DIR`` renders the folder.

Held-out prompts: the procedural train and test splits are separate streams but can draw the same problem
(``Compute 3 + 4.``), so the test tasks are the first test-split tasks whose problem text is not among the
train tasks any method sees (rollouts and online RL), written to a JSONL file that the evaluation env reads
(``held_out.json`` counts what was dropped). CPU seconds are ``time.process_time`` of this process (a vLLM
engine process is not in it: compare wall seconds there); generated tokens count every sampled token.
Nothing here assumes a CPU: ``--device auto`` is CUDA when there is one (``--device cpu`` hides it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

MAIN_ENV = "drift/MathFeedback-v0"
METHODS = ("sft", "rft", "wsft", "drift-otr")
STAGES = ("probe", "rollouts", "train", "online_rl", "eval", "summary")
DEFAULT_STAGES = ("rollouts", "train", "online_rl", "eval", "summary")

#: difficulty settings beyond the env's presets (``--probe-presets`` and ``difficulty`` take their names)
DIFFICULTIES: dict[str, dict] = {
    # sums and differences of two numbers in 0..20: 882 distinct problems, between easy (0..9, 200
    # problems: too few to hold 200 test problems apart from the train ones) and two_digit
    "up_to_20": {"kinds": ["arithmetic"], "min_value": 0, "max_value": 20, "num_terms": 2, "operators": "+-"},
    # sums and differences of two numbers in 10..99: 16,200 distinct problems
    "two_digit": {
        "kinds": ["arithmetic"],
        "min_value": 10,
        "max_value": 99,
        "num_terms": 2,
        "operators": "+-",
    },
}

#: the chosen setting of issue 22's point 3: SmolLM2's turn-1 success 0.26 ± 0.03 (256 tasks) at temperature 0.7; the probe table
#: and why are in benchmarks/README.md ("DRIFT on a real model")
SETTING = {"difficulty": "up_to_20", "answer_format": "final_number", "feedback": "hint"}

#: every size flag: (full run, --quick smoke run)
SIZES: dict[str, tuple[Any, Any]] = {
    "seeds": ([0, 1, 2], [0]),
    "rollout_tasks": (128, 4),
    "samples": (8, 2),
    "max_turns": (3, 2),
    "max_new_tokens": (192, 12),
    "eval_tasks": (200, 4),
    "second_env_tasks": (200, 4),
    "train_epochs": (2.0, 1.0),
    "max_steps": (-1, 1),
    "rl_steps": (None, 1),  # None: the reference rollouts' episodes / (tasks per step x samples)
    "rl_tasks_per_step": (16, 2),
    "probe_tasks": (64, 4),
    "batch_size": (64, 8),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags; sizes left unset take the full run's value, or the smoke run's with ``--quick``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out-dir", default="runs/real_model")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of a few minutes")
    parser.add_argument(
        "--stages", default=",".join(DEFAULT_STAGES), help=f"comma-separated, of {', '.join(STAGES)}"
    )
    parser.add_argument(
        "--model", default="smollm2-135m-instruct", help="folder, hub id, or a name --model takes"
    )
    parser.add_argument("--backend", default="hf", choices=("hf", "vllm"), help="rollouts and evaluation")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (full: 0 1 2)")
    parser.add_argument(
        "--env-kwargs", type=json.loads, default=None, help=f"main env kwargs (default {SETTING})"
    )
    parser.add_argument("--rollout-tasks", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None, help="K rollouts per task (one weight group)")
    parser.add_argument("--max-turns", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--rollout-temperature", type=float, default=0.7)
    parser.add_argument("--rollout-seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=None, help="episodes generated at once")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--weight-beta", type=float, default=0.1)
    parser.add_argument("--train-epochs", type=float, default=None)
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps (-1: epochs decide)")
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--per-device-batch", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--use-peft", action="store_true", help="LoRA (merged into the saved model)")
    parser.add_argument("--rl-steps", type=int, default=None)
    parser.add_argument("--rl-tasks-per-step", type=int, default=None)
    parser.add_argument("--rl-learning-rate", type=float, default=1e-6)
    parser.add_argument("--rl-kl-coef", type=float, default=0.05)
    parser.add_argument("--eval-tasks", type=int, default=None)
    parser.add_argument("--eval-temperature", type=float, default=0.7)
    parser.add_argument("--eval-seed", type=int, default=1000, help="the same for every model (paired)")
    parser.add_argument("--second-env", default="drift/MultipleChoice-v0")
    parser.add_argument("--second-env-kwargs", type=json.loads, default={"max_turns": 3})
    parser.add_argument("--second-env-tasks", type=int, default=None)
    parser.add_argument("--probe-presets", nargs="+", default=["tiny", "easy", "medium", "hard"])
    parser.add_argument("--probe-formats", nargs="+", default=["boxed", "final_number"])
    parser.add_argument("--probe-temperatures", type=float, nargs="+", default=[0.7, 1.0])
    parser.add_argument("--probe-prompt-styles", nargs="+", default=["minimal"])
    parser.add_argument("--probe-tasks", type=int, default=None)
    args = parser.parse_args(argv)
    for name, (full, quick) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        parser.error(f"--stages: unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    bad = sorted(set(args.methods) - {"sft", "rft", "wsft", "otr", "otr-exact", "drift-otr"})
    if bad:
        parser.error(f"--methods: unknown loss(es) {bad}")
    if args.rl_steps is None:  # the same number of episodes as the reference rollouts
        args.rl_steps = max(1, round(args.rollout_tasks / args.rl_tasks_per_step))
    if args.env_kwargs is None:
        args.env_kwargs = dict(SETTING)
    args.env_kwargs = {**args.env_kwargs, "max_turns": args.max_turns}
    if isinstance(args.env_kwargs.get("difficulty"), str) and args.env_kwargs["difficulty"] in DIFFICULTIES:
        args.env_kwargs["difficulty"] = dict(DIFFICULTIES[args.env_kwargs["difficulty"]])
    return args


def resolve_device(device: str) -> str:
    """``auto``: CUDA when torch sees a GPU, else CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def versions() -> dict[str, str]:
    """Library versions the run used (written into results.json and the README's tables)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "vllm", "drift-toolkit"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def make_run_policy(args, model_dir: str | Path):
    """The rollout/evaluation backend for ``model_dir`` on ``args.device``."""
    from drift_train.policies import make_policy

    if args.backend == "vllm":
        return make_policy("vllm", str(model_dir), seed=args.rollout_seed)
    return make_policy("hf", str(model_dir), device=args.device, batch_size=args.batch_size)


# --------------------------------------------------------------------------------------------------
# probe: turn-1 success per preset, answer format and temperature


def probe_stage(args, reference: str, out: Path) -> dict:
    """Turn-1 success of the reference per (preset, format, prompt style, temperature) on train-split tasks."""
    from drift_train.evaluate import eval_config, evaluate_model
    from drift_train.policies import SamplingParams

    path = out / "probe.json"
    cells = json.loads(path.read_text())["cells"] if path.exists() else []
    done = {(c["preset"], c["answer_format"], c["prompt_style"], c["temperature"]) for c in cells}
    policy = make_run_policy(args, reference)
    try:
        for preset in args.probe_presets:
            for answer_format in args.probe_formats:
                for style in args.probe_prompt_styles:
                    for temperature in args.probe_temperatures:
                        key = (preset, answer_format, style, temperature)
                        if key in done:
                            continue
                        cpu0, wall0 = time.process_time(), time.perf_counter()
                        config = eval_config(
                            MAIN_ENV,
                            env_kwargs={
                                "difficulty": DIFFICULTIES.get(preset, preset),
                                "answer_format": answer_format,
                                "prompt_style": style,
                                "max_turns": 1,
                                "split": "train",
                            },
                            num_tasks=args.probe_tasks,
                            seed=args.rollout_seed,
                            batch_size=args.batch_size,
                            sampling=SamplingParams(
                                temperature=temperature, max_new_tokens=args.max_new_tokens
                            ),
                        )
                        metrics, records = evaluate_model(policy, config, progress=False)
                        lengths = [
                            len(r["tokens"]["t1"]["completion_ids"]) for r in records if r.get("tokens")
                        ]
                        cut = [
                            r["tokens"]["t1"]["finish_reason"] == "length" for r in records if r.get("tokens")
                        ]
                        cells.append(
                            {
                                "preset": preset,
                                "answer_format": answer_format,
                                "prompt_style": style,
                                "temperature": temperature,
                                "episodes": len(records),
                                "success": metrics["success_at"]["1"],
                                "format_error_rate": metrics["format_error_rate"]["value"],
                                "mean_tokens": statistics.fmean(lengths) if lengths else None,
                                "cut_at_max_new_tokens": sum(cut) / len(cut) if cut else None,
                                "cpu_s": time.process_time() - cpu0,
                                "wall_s": time.perf_counter() - wall0,
                            }
                        )
                        c = cells[-1]
                        print(
                            f"probe {preset:>6} {answer_format:>12} {style:>12} T={temperature}: "
                            f"success {c['success']['value']:.3f} ± {c['success']['se'] or 0:.3f}, "
                            f"format errors {c['format_error_rate']:.2f}, {c['mean_tokens']:.0f} tokens "
                            f"({c['cut_at_max_new_tokens']:.0%} cut), {c['wall_s']:.0f} s",
                            flush=True,
                        )
                        path.write_text(json.dumps(_probe_result(args, reference, cells), indent=2))
    finally:
        policy.close()
    result = _probe_result(args, reference, cells)
    path.write_text(json.dumps(result, indent=2))
    (out / "probe.md").write_text(probe_markdown(result))
    return result


def _probe_result(args, reference: str, cells: list[dict]) -> dict:
    return {
        "model": args.model,
        "model_dir": reference,
        "max_new_tokens": args.max_new_tokens,
        "tasks_per_cell": args.probe_tasks,
        "versions": versions(),
        "cells": cells,
    }


def probe_markdown(result: dict) -> str:
    """The probe grid as a Markdown table (benchmarks/README.md carries it)."""
    lines = [
        "| preset | answer format | prompt style | temperature | turn-1 success | format errors | "
        "mean reply tokens | cut at the limit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in result["cells"]:
        s = c["success"]
        lines.append(
            f"| {c['preset']} | {c['answer_format']} | {c['prompt_style']} | {c['temperature']} | "
            f"{s['value']:.3f} ± {s['se'] or 0:.3f} | {c['format_error_rate']:.2f} | "
            f"{c['mean_tokens']:.0f} | {c['cut_at_max_new_tokens']:.0%} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# held-out test tasks: the test split minus every problem a train task shows


def train_task_count(args) -> int:
    """How many train-split tasks (from index 0) any method sees: the rollouts' and online RL's."""
    return max(args.rollout_tasks, args.rl_steps * args.rl_tasks_per_step)


def math_source(env_kwargs: dict, split: str):
    """The task source the main env reads for ``env_kwargs`` and ``split`` (without starting an env and
    its verifier workers): ``source[i]`` is the env's task ``i``."""
    from drift_envs.sources import make_source

    options = {
        k: env_kwargs[k] for k in ("difficulty", "schema", "dataset_name") if env_kwargs.get(k) is not None
    }
    return make_source(
        "math",
        env_kwargs.get("dataset"),
        split=split,
        seed=env_kwargs.get("seed", 0),
        max_tasks=env_kwargs.get("max_tasks"),
        **options,
        **(env_kwargs.get("source_options") or {}),
    )


def held_out_env_kwargs(args, out: Path) -> dict:
    """Env kwargs of the main evaluation: the first ``eval_tasks`` test-split tasks whose problem text no
    train task has, as a JSONL file (content-addressed in the DRIFT cache, so two runs read the same path)."""
    from drift_train.tiny import default_cache_dir

    train = math_source(args.env_kwargs, "train")
    train_problems = {train[i].prompt for i in range(min(train_task_count(args), len(train)))}
    test = math_source(args.env_kwargs, "test")
    rows, seen, dropped, repeats, index = [], set(), 0, 0, 0
    while len(rows) < args.eval_tasks and index < len(test):
        task = test[index]
        index += 1
        if task.prompt in train_problems:
            dropped += 1
        elif task.prompt in seen:  # one problem twice would be one task counted twice
            repeats += 1
        else:
            seen.add(task.prompt)
            rows.append({"id": str(task.task_id), "problem": task.prompt, "answer": str(task.answer)})
    if len(rows) < args.eval_tasks:
        raise ValueError(
            f"only {len(rows)} test-split problems of {MAIN_ENV} {args.env_kwargs} are not train problems "
            f"(asked for {args.eval_tasks}): pick a harder preset or fewer train tasks"
        )
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = default_cache_dir() / "held_out" / f"math-{digest}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    (out / "held_out.json").write_text(
        json.dumps(
            {
                "file": str(path),
                "test_tasks": len(rows),
                "test_split_tasks_scanned": index,
                "dropped_as_train_problems": dropped,
                "dropped_as_repeats": repeats,
                "train_tasks": train_task_count(args),
            },
            indent=2,
        )
    )
    # the procedural source's own knobs do not apply to a file
    kwargs = {k: v for k, v in args.env_kwargs.items() if k not in ("difficulty", "source_options")}
    return {**kwargs, "dataset": str(path), "schema": "generic", "split": "test"}


# --------------------------------------------------------------------------------------------------
# rollouts, training, online RL, evaluation


def rollouts_stage(args, reference: str, out: Path) -> dict:
    """Reference rollouts (resumed when interrupted), then DRIFT weights; returns costs and paths."""
    from drift_train.policies import SamplingParams
    from drift_train.rollout import RolloutConfig, rollout
    from drift_train.trajectories import read_trajectories, validate_groups, write_trajectories
    from drift_train.weights import WeightConfig, add_weights

    cost_path = out / "rollouts.cost.json"
    if cost_path.exists():
        return json.loads(cost_path.read_text())
    config = RolloutConfig(
        env_id=MAIN_ENV,
        env_kwargs={**args.env_kwargs, "split": "train"},
        num_tasks=args.rollout_tasks,
        samples=args.samples,
        seed=args.rollout_seed,
        batch_size=args.batch_size,
        sampling=SamplingParams(temperature=args.rollout_temperature, max_new_tokens=args.max_new_tokens),
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    policy = make_run_policy(args, reference)
    try:
        _, stats = rollout(policy, config, out / "rollouts.jsonl", resume=True, progress=not args.quick)
    finally:
        policy.close()
    records = list(read_trajectories(out / "rollouts.jsonl"))
    validate_groups(records, samples=args.samples)
    weighted, summary = add_weights(records, WeightConfig(beta=args.weight_beta))
    write_trajectories(weighted, out / "rollouts.weighted.jsonl")
    (out / "weights_summary.json").write_text(json.dumps(summary, indent=2))
    cost = {
        "episodes": len(records),
        # every sampled token of the file (a resumed run's earlier part included)
        "generated_tokens": sum(
            len(turn["completion_ids"]) for r in records for turn in (r.get("tokens") or {}).values()
        ),
        "generated_tokens_this_run": stats.generated_tokens,
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
        "success_at_1": sum(1 for r in records if r.get("t_star") == 1) / len(records),
        "success_at_T": sum(1 for r in records if r.get("t_star") is not None) / len(records),
    }
    cost_path.write_text(json.dumps(cost, indent=2))
    return cost


def train_stage(args, reference: str, out: Path, seed: int, method: str) -> dict:
    """One fine-tuning of the reference on the weighted rollouts; ``done.json`` marks it finished."""
    from drift_train.trainer import DriftConfig, train

    run = out / "train" / f"seed{seed}" / method
    done = run / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    run.mkdir(parents=True, exist_ok=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    cuda = args.device == "cuda"
    try:
        metrics = train(
            DriftConfig(
                output_dir=str(run / "model"),
                data=str(out / "rollouts.weighted.jsonl"),
                model=reference,
                loss=method,
                assistant_turns="last",
                num_train_epochs=args.train_epochs,
                max_steps=args.max_steps,
                learning_rate=args.learning_rate,
                per_device_train_batch_size=args.per_device_batch,
                gradient_accumulation_steps=args.grad_accum,
                max_length=args.max_length,
                lr_scheduler_type="constant",
                weight_decay=0.0,
                save_strategy="no",
                report_to=[],
                logging_steps=5,
                seed=seed,
                use_cpu=not cuda,
                bf16=cuda,
                use_peft=args.use_peft,
                disable_tqdm=True,
            )
        )
        result = {"method": method, "seed": seed, "model": str(run / "model"), "metrics": metrics}
    except ValueError as err:  # rft when no rollout succeeded: nothing to train on, reported as such
        result = {"method": method, "seed": seed, "model": None, "skipped": str(err)}
    result.update(cpu_s=time.process_time() - cpu0, wall_s=time.perf_counter() - wall0)
    done.write_text(json.dumps(result, indent=2, default=str))
    return result


def online_rl_stage(args, reference: str, out: Path, seed: int) -> dict:
    """``drift online-rl`` from the reference at the stated generation budget; ``done.json`` marks it."""
    from drift_train.online_rl import OnlineRLConfig, train_online_rl
    from drift_train.policies import SamplingParams
    from drift_train.rollout import RolloutConfig

    run = out / "rl" / f"seed{seed}"
    done = run / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    run.mkdir(parents=True, exist_ok=True)
    config = OnlineRLConfig(
        rollout=RolloutConfig(
            env_id=MAIN_ENV,
            env_kwargs={**args.env_kwargs, "split": "train"},
            samples=args.samples,
            seed=seed,
            sampling=SamplingParams(temperature=args.rollout_temperature, max_new_tokens=args.max_new_tokens),
        ),
        model=reference,
        output_dir=str(run / "model"),
        steps=args.rl_steps,
        tasks_per_step=args.rl_tasks_per_step,
        learning_rate=args.rl_learning_rate,
        micro_batch_size=args.per_device_batch,
        ppo_epochs=2,
        minibatches=2,
        clip_epsilon=0.2,
        kl_coef=args.rl_kl_coef,
    )
    summary = train_online_rl(config, progress=not args.quick)
    result = {
        "method": "online_rl",
        "seed": seed,
        "model": str(run / "model"),
        "episodes": args.rl_steps * args.rl_tasks_per_step * args.samples,
        "generated_tokens": summary["generated_tokens"],
        "cpu_s": summary["cpu_s"],
        "wall_s": summary["wall_s"],
        "log": summary["log"],
    }
    done.write_text(json.dumps(result, indent=2))
    return result


def eval_stage(args, name: str, model_dir: str, out: Path, main_kwargs: dict) -> dict:
    """``name``'s metrics on the held-out main tasks and on the second env (files under ``eval/<name>/``)."""
    from drift_train.evaluate import eval_config, evaluate_model
    from drift_train.policies import SamplingParams

    folder = out / "eval" / name
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for which, env_id, kwargs, tasks in (
        ("main", MAIN_ENV, main_kwargs, args.eval_tasks),
        ("second", args.second_env, {**args.second_env_kwargs, "split": "test"}, args.second_env_tasks),
    ):
        path = folder / f"{which}.json"
        if path.exists():
            results[which] = json.loads(path.read_text())
            continue
        policy = make_run_policy(args, model_dir)
        try:
            config = eval_config(
                env_id,
                env_kwargs=kwargs,
                num_tasks=tasks,
                seed=args.eval_seed,
                batch_size=args.batch_size,
                sampling=SamplingParams(
                    temperature=args.eval_temperature, max_new_tokens=args.max_new_tokens
                ),
            )
            metrics, _ = evaluate_model(
                policy,
                config,
                out_trajectories=folder / f"{which}.trajectories.jsonl",
                progress=not args.quick,
            )
        finally:
            policy.close()
        metrics.update(model=name, env=env_id)
        path.write_text(json.dumps(metrics, indent=2))
        results[which] = metrics
    return results


# --------------------------------------------------------------------------------------------------
# summary


def _mean_sd(values: list[float]) -> list[float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return [None, None]
    return [statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0]


def summarise(args, out: Path, rollout_cost: dict, runs: dict[str, dict]) -> dict:
    """Every model's metrics, the paired differences, per-method aggregates over seeds and costs."""
    from drift_train.evaluate import paired_differences
    from drift_train.trajectories import read_trajectories

    T = args.max_turns

    def records(name: str, which: str) -> list[dict]:
        return list(read_trajectories(out / "eval" / name / f"{which}.trajectories.jsonl"))

    def success(name: str, which: str) -> dict:
        m = json.loads((out / "eval" / name / f"{which}.json").read_text())
        return {t: m["success_at"][t] for t in sorted(m["success_at"], key=int)}

    def paired(name: str, other: str, which: str) -> dict:
        d = paired_differences(records(name, which), records(other, which))
        return {t: d["success_at"][t] for t in sorted(d["success_at"], key=int)}

    models: dict[str, dict] = {"reference": {"method": "reference", "seed": None}}
    for name, run in runs.items():
        if run.get("model"):
            models[name] = {"method": run["method"], "seed": run["seed"]}
    for name, info in models.items():
        info["main"] = success(name, "main")
        info["second"] = success(name, "second")
        if name != "reference":
            info["vs_reference"] = paired(name, "reference", "main")
            info["second_vs_reference"] = paired(name, "reference", "second")
            rft = f"rft_seed{info['seed']}"
            if rft in models and rft != name:
                info["vs_rft"] = paired(name, rft, "main")
    methods: dict[str, dict] = {}
    for method in ["reference", *args.methods, "online_rl"]:
        names = [n for n, i in models.items() if i["method"] == method]
        if not names:
            continue
        entry: dict[str, Any] = {"seeds": [models[n]["seed"] for n in names], "models": names}
        for which in ("main", "second"):
            entry[which] = {
                t: _mean_sd([models[n][which][t]["value"] for n in names]) for t in models[names[0]][which]
            }
        for key in ("vs_reference", "vs_rft", "second_vs_reference"):
            if all(key in models[n] for n in names):
                entry[key] = {
                    t: {
                        "mean_sd": _mean_sd([models[n][key][t]["value"] for n in names]),
                        "paired_se_mean": _mean_sd([models[n][key][t]["se"] for n in names])[0],
                    }
                    for t in models[names[0]][key]
                }
        if method == "reference":
            entry.update(cpu_s=[0.0, 0.0], generated_tokens=[0, 0])
        elif method == "online_rl":
            entry["cpu_s"] = _mean_sd([runs[n]["cpu_s"] for n in names])
            entry["wall_s"] = _mean_sd([runs[n]["wall_s"] for n in names])
            entry["generated_tokens"] = _mean_sd([runs[n]["generated_tokens"] for n in names])
            entry["episodes"] = runs[names[0]]["episodes"]
        else:  # the shared rollouts plus this method's own training
            entry["cpu_s"] = _mean_sd([rollout_cost["cpu_s"] + runs[n]["cpu_s"] for n in names])
            entry["wall_s"] = _mean_sd([rollout_cost["wall_s"] + runs[n]["wall_s"] for n in names])
            entry["generated_tokens"] = [rollout_cost["generated_tokens"], 0.0]
            entry["episodes"] = rollout_cost["episodes"]
        methods[method] = entry
    skipped = {n: r["skipped"] for n, r in runs.items() if r.get("skipped")}
    result = {
        "model": args.model,
        "backend": args.backend,
        "device": args.device,
        "quick": args.quick,
        "main_env": MAIN_ENV,
        "main_env_kwargs": args.env_kwargs,
        "second_env": args.second_env,
        "second_env_kwargs": args.second_env_kwargs,
        "max_turns": T,
        "held_out": json.loads((out / "held_out.json").read_text()),
        "rollouts": rollout_cost,
        "sizes": {k: getattr(args, k) for k in SIZES},
        "settings": {
            k: getattr(args, k)
            for k in (
                "rollout_temperature",
                "eval_temperature",
                "eval_seed",
                "rollout_seed",
                "learning_rate",
                "rl_learning_rate",
                "rl_kl_coef",
                "per_device_batch",
                "grad_accum",
                "use_peft",
                "weight_beta",
            )
        },
        "versions": versions(),
        "methods": methods,
        "models": models,
        "skipped": skipped,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "results.md").write_text(markdown(result))
    plot(result, out)
    return result


def _cell(v: list | None, digits: int = 3) -> str:
    if not v or v[0] is None:
        return "—"
    return f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}"


def _delta(entry: dict, key: str, T: int) -> str:
    """``mean ± sd (paired s.e.)`` of a difference at success@T, or ``—``."""
    if key not in entry or entry[key][str(T)]["mean_sd"][0] is None:
        return "—"
    d = entry[key][str(T)]
    se = d["paired_se_mean"]
    return f"{d['mean_sd'][0]:+.3f} ± {d['mean_sd'][1]:.3f}" + (f" ({se:.3f})" if se is not None else "")


def markdown(result: dict) -> str:
    """results.json as the Markdown tables benchmarks/README.md carries."""
    T = result["max_turns"]
    ts = [str(t) for t in range(1, T + 1)]
    head = " | ".join(f"success@{t}" for t in ts)
    lines = [
        f"| method | seeds | {head} | Δ@{T} vs reference (paired s.e.) | Δ@{T} vs RFT (paired s.e.) | "
        f"second env success@{T} | CPU s | generated tokens |",
        "|---|---|" + "---|" * (len(ts) + 5),
    ]
    for method, e in result["methods"].items():
        lines.append(
            f"| {method} | {len(e['seeds'])} | "
            + " | ".join(_cell(e["main"][t]) for t in ts)
            + f" | {_delta(e, 'vs_reference', T)} | {_delta(e, 'vs_rft', T)} | {_cell(e['second'][str(T)])} | "
            f"{_cell(e['cpu_s'], 0)} | {e['generated_tokens'][0]:,.0f} |"
        )
    lines += [
        "",
        "Values are mean ± sd over training seeds; Δ columns: mean ± sd over seeds of the paired difference, "
        "with the mean paired task-clustered s.e. in brackets.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
    ]
    return "\n".join(lines) + "\n"


def plot(result: dict, out: Path) -> None:
    """success@t curves of every method (mean over seeds, ± sd as the band), main and second env."""
    from drift_train.evaluate import plot_success_curves

    for which, env in (("main", result["main_env"]), ("second", result["second_env"])):
        curves = {
            method: {"success_at": {t: {"value": v[0], "se": v[1]} for t, v in e[which].items()}}
            for method, e in result["methods"].items()
        }
        plot_success_curves(
            curves,
            out / f"success_{which}.png",
            title=f"{Path(result['model']).name}: {env.split('/')[-1]}, mean ± sd over seeds",
        )


# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict | None:
    """Run the chosen stages in ``--out-dir``; returns the summary when the ``summary`` stage ran."""
    args = parse_args(argv)
    if args.device == "cpu":  # everything (online RL and the trainer included) then stays off any GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    from drift_train.models import resolve_model

    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = resolve_device(args.device)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reference = resolve_model(args.model)
    (out / "config.json").write_text(json.dumps({**vars(args), "reference_dir": reference}, indent=2))
    if "probe" in args.stages:
        probe_stage(args, reference, out)
    # a stage runs the stages it needs whose outputs are not there yet (those that are, are skipped)
    stages = set(args.stages)
    need_rollouts = bool(stages & {"rollouts", "train", "eval", "summary"})
    need_train = bool(stages & {"train", "eval", "summary"})
    need_rl = bool(stages & {"online_rl", "eval", "summary"})
    need_eval = bool(stages & {"eval", "summary"})
    runs: dict[str, dict] = {}
    rollout_cost = rollouts_stage(args, reference, out) if need_rollouts else None
    main_kwargs = held_out_env_kwargs(args, out) if need_eval else None
    for seed in args.seeds:
        if need_train:
            for method in args.methods:
                runs[f"{method}_seed{seed}"] = train_stage(args, reference, out, seed, method)
        if need_rl:
            runs[f"online_rl_seed{seed}"] = online_rl_stage(args, reference, out, seed)
    if need_eval:
        eval_stage(args, "reference", reference, out, main_kwargs)
        for name, run in runs.items():
            if run.get("model"):
                eval_stage(args, name, run["model"], out, main_kwargs)
    if "summary" in args.stages:
        result = summarise(args, out, rollout_cost, runs)
        print(markdown(result))
        print(f"results -> {out / 'results.json'}, {out / 'results.md'}; `drift report {out}` renders it")
        return result
    return None


if __name__ == "__main__":
    main()
