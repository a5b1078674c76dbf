"""benchmarks/drift_vs_online_rl.py end to end on the random tiny model in the parity env (small sizes):
every phase runs for real, and the summary's table, time-to-target, sweep pick and plateau check agree
with the per-run curves they are computed from."""

from __future__ import annotations

import importlib.util
import json
from argparse import Namespace
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import pytest
from parity_env import ParityEnv

from drift_train.quickstart import QuickstartConfig

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "drift_vs_online_rl.py"
ENV_ID = "drift-test/BenchParity-v0"

# one torch thread (conftest), as the benchmark's own main() sets: on shared cores a second thread contends;
# this test took 464 s with two threads and 119 s with one at load 8-10
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class SplitParityEnv(ParityEnv):
    """The parity env with the train/test split the quickstart's held-out evaluation asks for."""

    def __init__(self, *, split: str = "train", **kwargs) -> None:
        super().__init__(**kwargs)
        self.split = split

    def get_task(self, index: int):
        task = super().get_task(index)
        return type(task)(
            task_id=f"{self.split}-{task.task_id}", prompt=task.prompt, answer=task.answer, meta={}
        )


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("drift_vs_online_rl", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_phases_and_summary(bench, tiny_model_dir: Path, tmp_path: Path) -> None:
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=SplitParityEnv)
    base = replace(
        QuickstartConfig(),
        env_id=ENV_ID,
        env_kwargs={"max_turns": 2},
        model=str(tiny_model_dir),
        eval_tasks=8,
        samples=4,
        max_new_tokens=6,
        train_epochs=1.0,
        batch_size=16,
    )
    args = Namespace(
        rl_eval_every=1, rl_tasks_per_step=3, rl_plain=False, rl_kl_coef=0.05, validation_tasks=4
    )
    root = tmp_path / "bench"
    for seed in (0, 1):
        bench.drift_phase(base, tiny_model_dir, root / f"seed{seed}", seed, [2, 4], ["wsft"], [])
    for lr in (1e-3, 3e-2):
        bench.rl_phase(base, tiny_model_dir, root / "sweep", 0, lr, args, 1)
    best = bench.best_learning_rate(root)
    sweep = {lr: json.loads((root / "sweep" / f"rl_lr{lr:g}.json").read_text()) for lr in (1e-3, 3e-2)}
    assert best == max(sweep, key=lambda lr: sweep[lr]["validation"]["success_at_T"])
    for seed in (0, 1):
        bench.rl_phase(base, tiny_model_dir, root / f"seed{seed}", seed, best, args, 2)
    # --baseline trl-grpo: TRL's GRPOTrainer at the same budget, on seed 0 only (it is the slow part)
    trl = bench.trl_phase(base, tiny_model_dir, root / "seed0", 0, best, args, 2)

    result = bench.summarise(root, base)
    assert result["seeds"] == [0, 1] and result["rl_best_learning_rate"] == best
    assert (root / "curves.png").stat().st_size > 0 and "| online_rl | 2 |" in (
        root / "results.md"
    ).read_text()
    curves = result["curves"]
    # DRIFT curves: the reference, then one point per budget with growing tokens and CPU time
    wsft = curves["wsft"]["0"] if "0" in curves["wsft"] else curves["wsft"][0]
    assert [p.get("budget_tasks") for p in wsft] == [None, 2, 4]
    assert 0 == wsft[0]["generated_tokens"] < wsft[1]["generated_tokens"] < wsft[2]["generated_tokens"]
    assert wsft[1]["cpu_s"] > 0
    # online RL: evaluations at steps 0, 1, 2 along its run, tokens and CPU time growing
    rl = list(curves["online_rl"].values())[0]
    assert [p["step"] for p in rl] == [0, 1, 2]
    assert rl[0]["generated_tokens"] == 0 < rl[1]["generated_tokens"] < rl[2]["generated_tokens"]
    # the table is the last point of each curve, averaged over seeds
    finals = [c[-1]["success_at_T"] for c in curves["online_rl"].values()]
    assert result["table"]["online_rl"]["success_at_T"][0] == pytest.approx(sum(finals) / len(finals))
    # time to target: the first point of each seed's curve at or above the target
    target = result["target_success_at_T"]
    for method, by_seed in curves.items():
        hits = [next((p for p in c if p["success_at_T"] >= target), None) for c in by_seed.values()]
        reached = [h for h in hits if h is not None]
        assert result["time_to_target"][method]["reached"] == len(reached)
        if reached:
            mean_tokens = sum(h["generated_tokens"] for h in reached) / len(reached)
            assert result["time_to_target"][method]["generated_tokens"][0] == pytest.approx(mean_tokens)
    # plateau: last minus middle evaluation, paired over the same tasks
    for seed, run in result["plateau"].items():
        c = curves["online_rl"][seed]
        assert run["delta_success_at_T"]["value"] == pytest.approx(
            c[-1]["success_at_T"] - c[len(c) // 2]["success_at_T"]
        )
    # TRL's GRPO: evaluations at the same rounds, tokens and CPU time growing, the same number of episodes
    # (2 rounds x 3 tasks x K=4) as our online RL, and its costs beside the others' in the table
    trl_curve = curves["trl_grpo"][0] if 0 in curves["trl_grpo"] else curves["trl_grpo"]["0"]
    assert trl_curve == trl["curve"] and [p["step"] for p in trl_curve] == [0, 1, 2]
    assert (
        trl_curve[0]["generated_tokens"]
        == 0
        < trl_curve[1]["generated_tokens"]
        < trl_curve[2]["generated_tokens"]
    )
    assert 0 < trl_curve[1]["cpu_s"] < trl_curve[2]["cpu_s"]
    assert [p["episodes"] for p in trl_curve] == [0, 12, 24] and trl["episodes"] == 2 * 3 * 4
    assert trl["config"]["max_steps"] == 2 * 4 and trl["config"]["num_iterations"] == 2  # stabilised
    rewards = [h["rewards/env_reward/mean"] for h in trl["train_log"] if "rewards/env_reward/mean" in h]
    assert len(rewards) == 2  # one scored batch per generation round
    assert result["table"]["trl_grpo"]["generated_tokens"][0] == trl["generated_tokens"]
    assert result["trl_grpo_versions"]["trl"] and "| trl_grpo | 1 |" in (root / "results.md").read_text()
