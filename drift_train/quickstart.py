"""``drift quickstart``: the whole DRIFT loop on the embedded tiny model, offline, on a CPU.

1. Build the tiny reference model and pretrain it briefly on episodes of a noisy scripted teacher
   (:class:`~drift_train.policies.scripted.OracleTeacher`: the env's ``oracle_reply()`` with mistakes,
   run by the rollout engine), so its first-turn accuracy is low but not zero (cached after the first
   run). Any env with an oracle works; one without is refused unless ``model:`` gives the reference.
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

``--env ID`` picks the env (its ``env_kwargs`` and ``max_new_tokens`` then default to what the env
states: :func:`env_preset`, a reply budget from its own oracle replies); ``--config run.yaml`` sets
any field of :class:`QuickstartConfig` (another env, another model, more tasks), and every field is also a flag
(``--eval-tasks 100`` or ``--eval_tasks 100``) that overrides the file. With ``model:`` set, step 1 is
skipped and that model is the reference.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = [
    "QuickstartConfig",
    "check_held_out",
    "check_teacher",
    "env_preset",
    "eval_env_kwargs",
    "evaluate_stage",
    "pretrain_reference",
    "reference_rollout_config",
    "rollout_stage",
    "run_quickstart",
    "teacher_episodes",
    "train_env_kwargs",
    "train_stage",
]


DEFAULT_ENV = "drift/MathFeedback-v0"
TEACHER_VERSION = "oracle-teacher/2"  # in the pretraining cache key: a new teacher retrains the reference

#: the reply budget of an env that states no quickstart preset (not a ``MultiTurnTextEnv``)
GENERIC_MAX_NEW_TOKENS = 64
#: oracle replies (first train tasks) the teacher check counts; more than this share over the budget is refused
TEACHER_SAMPLE = 64
MAX_CUT_SHARE = 0.1


def env_preset(env_id: str) -> dict[str, Any]:
    """The quickstart's defaults for ``env_id`` (``env_kwargs`` and ``max_new_tokens``), as the env states
    them: :meth:`~drift_envs.core.MultiTurnTextEnv.quickstart_preset`, whose reply budget comes from the
    env's own oracle replies. An env that is not a ``MultiTurnTextEnv`` (or cannot be made with
    ``split=``, which :func:`check_held_out` then refuses) runs with its own kwargs and 64 tokens."""
    return copy.deepcopy(_env_preset(env_id))


@functools.cache
def _env_preset(env_id: str) -> dict[str, Any]:
    import importlib

    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    import drift_envs  # noqa: F401  (registers the drift/* ids)
    from drift_envs.core import MultiTurnTextEnv

    generic = {"env_kwargs": {}, "max_new_tokens": GENERIC_MAX_NEW_TOKENS}
    module, _, name = env_id.rpartition(":")
    if module:  # "module:id": importing the module registers the id, as gym.make does
        importlib.import_module(module)
    try:
        entry_point = gym.spec(name).entry_point
    except gym.error.Error:
        return generic  # an unknown id: refused with gymnasium's own message when the run makes it
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    if not (isinstance(creator, type) and issubclass(creator, MultiTurnTextEnv)):
        return generic
    try:
        return creator.quickstart_preset(lambda **kwargs: gym.make(env_id, **kwargs))
    except TypeError:
        return generic


@dataclass
class QuickstartConfig:
    """Every knob of the quickstart; a ``--config`` YAML file or a flag may set any of them.

    ``env_kwargs`` and ``max_new_tokens`` default to the env's own preset, :func:`env_preset` (build a
    config for another env with :meth:`for_env`, as ``--env`` and a YAML ``env_id:`` do).

    Args:
        output_dir: where every file of the run goes
        seed: seed of the whole run (teacher, pretraining, rollouts, training, evaluation)
        tiny_model: size of the embedded tiny model (``drift_train.tiny.build_tiny_model`` kwargs)
        pretrain_episodes: teacher episodes the tiny reference is pretrained on
        pretrain_epochs: epochs of that pretraining
        pretrain_learning_rate: learning rate of that pretraining
        eval_tasks: held-out tasks (split="test") every model is evaluated on
        eval_temperature: sampling temperature of the evaluation
        rollout_tasks: train tasks of the reference rollouts
        samples: rollouts per task (K, one DRIFT weight group)
        rollout_temperature: sampling temperature of the rollouts
        methods: losses to fine-tune with on the same rollouts (wsft = DRIFT, sft, rft, otr, ...)
        train_epochs: epochs of each fine-tuning
        learning_rate: learning rate of each fine-tuning
        batch_size: per-device batch size of pretraining and fine-tuning
        weight_beta: DRIFT temperature beta of the importance weights
    """

    env_id: str = DEFAULT_ENV
    env_kwargs: dict = field(default_factory=lambda: env_preset(DEFAULT_ENV)["env_kwargs"])
    model: str | None = None  # None: the embedded tiny model, pretrained by step 1
    output_dir: str = "runs/quickstart"
    seed: int = 0
    # step 1: pretraining the tiny reference on a noisy scripted teacher (the env's oracle, made noisy)
    tiny_model: dict = field(
        default_factory=lambda: {"hidden_size": 64, "num_layers": 2, "intermediate_size": 192}
    )
    pretrain_episodes: int = 4000
    pretrain_epochs: float = 6.0
    pretrain_learning_rate: float = 1e-2
    teacher_accuracy: float = 0.3  # chance the teacher's reply is the oracle's, at every turn
    teacher_format_errors: float = 0.0  # chance it is a reply without an answer; the rest are wrong replies
    teacher_near_miss: int = 3  # without teacher_spread: a wrong reply is the nearest of this many drawn
    # a wrong reply is drawn uniformly from those within this distance of the right one (math: |n - gold|)
    teacher_spread: float | None = 3.0
    # steps 2 and 4: evaluation on held-out tasks
    eval_tasks: int = 500
    eval_temperature: float = 1.0
    eval_env_kwargs: dict = field(default_factory=dict)  # over env_kwargs + split="test", evaluation only
    # step 3: reference rollouts, weights and training
    rollout_tasks: int = 200
    samples: int = 8
    rollout_temperature: float = 1.0
    max_new_tokens: int = field(default_factory=lambda: env_preset(DEFAULT_ENV)["max_new_tokens"])
    methods: list = field(default_factory=lambda: ["wsft", "sft", "rft"])
    train_epochs: float = 3.0
    learning_rate: float = 3e-3
    batch_size: int = 64
    weight_beta: float = 0.1

    @property
    def evaluation(self):
        """The :class:`~drift_train.rollout.RolloutConfig` of every held-out evaluation (steps 2 and 4):
        ``eval_tasks`` tasks of the ``test`` split (:func:`eval_env_kwargs`), one episode each at
        ``eval_temperature``, seed ``seed + 1``; the rest as :func:`drift_train.evaluate.eval_config` has it."""
        from drift_train.evaluate import eval_config
        from drift_train.policies import SamplingParams

        return eval_config(
            self.env_id,
            env_kwargs=eval_env_kwargs(self),
            num_tasks=self.eval_tasks,
            samples=1,
            seed=self.seed + 1,
            sampling=SamplingParams(temperature=self.eval_temperature, max_new_tokens=self.max_new_tokens),
        )

    @property
    def reference_rollout(self):
        """The :class:`~drift_train.rollout.RolloutConfig` of the reference rollouts DRIFT trains on (step 3):
        ``rollout_tasks`` x ``samples`` on the ``train`` split at ``rollout_temperature``, seed ``seed``."""
        from drift_train.policies import SamplingParams
        from drift_train.rollout import RolloutConfig

        return RolloutConfig(
            env_id=self.env_id,
            env_kwargs=train_env_kwargs(self),
            num_tasks=self.rollout_tasks,
            samples=self.samples,
            seed=self.seed,
            batch_size=512,
            sampling=SamplingParams(temperature=self.rollout_temperature, max_new_tokens=self.max_new_tokens),
        )

    @property
    def stages(self) -> dict:
        """Each stage that runs episodes -> its :class:`~drift_train.rollout.RolloutConfig` (printed at the
        start of a run and written in full to ``results.json``, ``"rollouts"``)."""
        return {"evaluation": self.evaluation, "reference_rollout": self.reference_rollout}

    @classmethod
    def for_env(cls, env_id: str, **fields_: Any) -> QuickstartConfig:
        """The config of a run in ``env_id``: its :func:`env_preset`, then ``fields_``."""
        return cls(env_id=env_id, **{**env_preset(env_id), **fields_})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides: Any) -> QuickstartConfig:
        """Defaults (those of its ``env_id``) overridden by the fields of a YAML file, then ``overrides``
        (unknown fields are an error)."""
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of QuickstartConfig fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown field(s) {unknown}; known: {sorted(known)}")
        data.update(overrides)
        return cls.for_env(data.pop("env_id", DEFAULT_ENV), **data)


def teacher_episodes(
    config: QuickstartConfig, n: int, seed: int, out: str | Path | None = None, progress: bool = False
) -> list[dict]:
    """About ``n`` episodes of the noisy scripted teacher on the ``train`` split: rollout records for SFT.

    The teacher is :class:`~drift_train.policies.scripted.OracleTeacher` (the env's oracle made noisy:
    right with probability ``teacher_accuracy`` at every turn, a format error with probability
    ``teacher_format_errors``, else another task's oracle reply that is wrong here and new in the
    episode: drawn uniformly from those within ``teacher_spread`` of the right reply, or without a
    spread the nearest of ``teacher_near_miss`` drawn), run by the rollout
    engine, so the records are the engine's (without token ids: training renders their text). ``n``
    tasks once each when the env has that many, else every task as often as needed. The tiny model
    imitates the teacher: it starts as a weak but non-trivial reference policy whose multi-turn
    behaviour DRIFT can improve. ``out``: also write the records there (JSONL)."""
    from drift_train.policies import SamplingParams
    from drift_train.policies.scripted import OracleTeacher
    from drift_train.rollout import RolloutConfig, rollout

    available = _train_task_count(config)
    samples = -(-n // available)  # ceil: every task as often as n episodes need
    teacher = OracleTeacher(
        accuracy=config.teacher_accuracy,
        format_errors=config.teacher_format_errors,
        near_miss=config.teacher_near_miss,
        spread=config.teacher_spread,
        seed=seed,
    )
    rollout_config = RolloutConfig(
        env_id=config.env_id,
        env_kwargs=train_env_kwargs(config),
        num_tasks=-(-n // samples),
        samples=samples,
        seed=seed,
        batch_size=max(samples, 64),
        sampling=SamplingParams(),  # recorded in meta; a scripted reply samples nothing
    )
    with teacher:
        records, _ = rollout(teacher, rollout_config, out, overwrite=True, progress=progress)
    return records


def _train_task_count(config: QuickstartConfig) -> int:
    from drift_train.rollout import count_tasks, make_env

    env = make_env(config.env_id, train_env_kwargs(config))
    try:
        return count_tasks(env) or 1
    finally:
        env.close()


def check_teacher(config: QuickstartConfig) -> None:
    """Refuse a run whose reference would be pretrained (no ``model:``) on a teacher it cannot learn from:
    an env without an oracle, or one whose oracle replies do not fit ``max_new_tokens`` (more than
    :data:`MAX_CUT_SHARE` of them, in the tiny model's tokens, on the first :data:`TEACHER_SAMPLE` train
    tasks), so that the reference would be cut off before its answers."""
    from drift_train.rollout import make_env

    if config.model is not None:
        return
    env = make_env(config.env_id, train_env_kwargs(config))
    try:
        env.reset(options={"index": 0})
        oracle = env.unwrapped.oracle_reply()
        replies = _oracle_replies(env, TEACHER_SAMPLE) if oracle is not None else []
    finally:
        env.close()
    if oracle is None:
        raise ValueError(
            f"{config.env_id} has no oracle (env.unwrapped.oracle_reply() is None), so the quickstart's "
            "scripted teacher cannot pretrain the tiny reference in it; give a reference model "
            "(model: in the config) or use an env with an oracle"
        )
    from transformers import AutoTokenizer

    from drift_train.tiny import tiny_model_path

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path(**config.tiny_model))
    lengths = sorted(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in replies)
    cut = sum(n > config.max_new_tokens for n in lengths)
    if cut > MAX_CUT_SHARE * len(lengths):
        need = lengths[int(0.95 * (len(lengths) - 1))]
        raise ValueError(
            f"{config.env_id}: {cut} of the teacher's {len(lengths)} replies on the first train tasks (the "
            f"env's oracle replies) are longer than max_new_tokens={config.max_new_tokens} tokens (the longest "
            f"is {lengths[-1]}), so the reference would be cut off before its answers and learn nothing; "
            f"set max_new_tokens to at least {need} (95% of them fit) or give the env a shorter answer format"
        )


def _oracle_replies(env: Any, count: int) -> list[str]:
    """The oracle's first reply on each of the first ``count`` tasks of ``env`` (any env with an oracle)."""
    from drift_train.rollout import count_tasks

    replies = []
    for index in range(min(count, count_tasks(env) or count)):
        env.reset(options={"index": index})
        reply = env.unwrapped.oracle_reply()
        if reply is not None:
            replies.append(reply)
    return replies


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
            "teacher_format_errors",
            "teacher_near_miss",
            "teacher_spread",
            "batch_size",
            "seed",
        )
    }
    versions = {"tiny": FORMAT_VERSION, "teacher": TEACHER_VERSION}
    key = hashlib.sha256(json.dumps({**knobs, **versions}, sort_keys=True).encode()).hexdigest()[:12]
    out = default_cache_dir() / f"quickstart-reference-{key}"
    if (out / "config.json").exists() and (out / ".complete").exists():
        if console:
            console.print(f"[green]pretrained reference cached[/green] at {out}")
        return out
    base = tiny_model_path(**config.tiny_model)
    work = out.with_name(out.name + ".partial")
    work.mkdir(parents=True, exist_ok=True)
    data = work / "teacher.jsonl"
    teacher_episodes(config, config.pretrain_episodes, config.seed, out=data, progress=console is not None)
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
    """Refuse a run whose held-out success cannot be measured: the evaluation must have test tasks, the
    ``task_id`` of every evaluated test task must differ from those of the train tasks that pretraining and
    rollouts use, and where the env has an oracle, its reply must score as correct on the first test tasks
    (else no reply could)."""
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
    if not test:
        raise ValueError(
            f"{config.env_id} has no tasks with {eval_env_kwargs(config)}, so held-out success cannot be "
            "measured; point eval_env_kwargs at held-out data"
        )
    _check_oracle_scores(config)
    shared = sorted(train & test)
    if shared:
        raise ValueError(
            f"{config.env_id}: {len(shared)} of the {len(test)} evaluation tasks (split='test') are also "
            f"train tasks (e.g. {shared[:3]}), so the evaluation would not be held out; use an env whose "
            "splits differ, or point eval_env_kwargs at held-out data"
        )


def _check_oracle_scores(config: QuickstartConfig, tasks: int = 3) -> None:
    """Refuse an env whose own oracle, followed to the episode's end, does not solve one of the first
    ``tasks`` held-out tasks: success measured there would be 0 whatever the model replied."""
    from drift_train.rollout import make_env

    env = make_env(config.env_id, eval_env_kwargs(config))
    try:
        for index in range(min(tasks, config.eval_tasks)):
            env.reset(options={"index": index})
            reply = env.unwrapped.oracle_reply()
            if reply is None:
                return  # no oracle: nothing to check against
            first, done, info = reply, False, {}
            while not done and reply is not None:  # a tool call or a game move: up to the episode's end
                _, _, terminated, truncated, info = env.step(reply)
                done = terminated or truncated
                reply = None if done else env.unwrapped.oracle_reply()
            if not info.get("correct"):
                raise ValueError(
                    f"{config.env_id}: the env's own oracle replies ({first[:80]!r} first) do not solve "
                    f"held-out task {info.get('task_id', index)!r}, so held-out success cannot be measured; "
                    "check the env's verify and reference_reply on split='test'"
                )
    finally:
        env.close()


def evaluate_stage(config: QuickstartConfig, name: str, model_dir: str | Path, out: Path, seed: int) -> dict:
    """Metrics of ``model_dir`` on the held-out tasks (:func:`eval_env_kwargs`); files go to ``out``."""
    from drift_train.evaluate import evaluate_model
    from drift_train.policies import make_policy

    policy = make_policy("hf", str(model_dir))
    try:
        metrics, _ = evaluate_model(
            policy, eval_rollout_config(config, seed), out_trajectories=out / f"eval_{name}.jsonl"
        )
    finally:
        policy.close()
    (out / f"eval_{name}.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def eval_rollout_config(config: QuickstartConfig, seed: int):
    """:attr:`QuickstartConfig.evaluation` with another ``seed`` (the benchmarks evaluate per seed)."""
    return replace(config.evaluation, seed=seed)


def reference_rollout_config(config: QuickstartConfig, seed: int):
    """:attr:`QuickstartConfig.reference_rollout` with another ``seed`` (the weight sweeps reuse it)."""
    return replace(config.reference_rollout, seed=seed)


def rollout_stage(config: QuickstartConfig, reference: str | Path, out: Path, seed: int) -> dict:
    """Reference rollouts on the ``train`` split, then DRIFT weights; returns paths, summary and costs."""
    from drift_train.policies import make_policy
    from drift_train.rollout import rollout
    from drift_train.trajectories import validate_groups, write_trajectories
    from drift_train.weights import WeightConfig, add_weights, print_summary

    started = time.perf_counter()
    policy = make_policy("hf", str(reference), batch_size=256)
    rollout_config = reference_rollout_config(config, seed)
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
    from drift_train.models import resolve_model
    from drift_train.trajectories import read_trajectories

    check_held_out(config)  # before anything is written
    check_teacher(config)
    console = Console()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    started = time.perf_counter()
    timings: dict[str, float] = {}

    console.rule("[bold]1. reference model")
    t = time.perf_counter()
    reference = Path(resolve_model(config.model)) if config.model else pretrain_reference(config, console)
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
        "rollouts": {stage: asdict(rollout_config) for stage, rollout_config in config.stages.items()},
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
