"""Rollout throughput: the engine vs a bare ``model.generate`` loop vs one episode at a time.

All three run one model (the embedded tiny one by default; ``--model smollm2-135m-instruct`` for the
real SmolLM2-135M-Instruct, or any folder or ``.gguf`` file) with the hf backend on
``drift/MathFeedback-v0`` with the same sampling parameters, and report generated tokens per second:

* **engine**: ``drift_train.rollout.rollout`` over N tasks x K samples in chunks of ``--batch-size``
  episodes with ``--batch-size`` sequences decoding at once (the ``drift rollout`` defaults for hf),
  one batched generate call per turn (``--schedule continuous``: each episode takes its next turn
  as soon as its reply is done); env steps, chat templating, prefix cache and bookkeeping included.
* **bare generate**: the same conversations (rebuilt from the engine's records, turn by turn, one
  batch per chunk and turn), pre-tokenised, fed straight to ``model.generate`` with the same
  sampling parameters. Target: engine / bare >= 0.9 (the engine's env steps, templating and
  bookkeeping cost less than 10%). The engine can beat it: its decode loop drops finished rows,
  refills the batch and reuses cached prefixes; the replies are not the same samples.
* **one at a time**: the same policy and env, one episode after the other (batch of one, the prefix
  cache still reusing each episode's earlier turns), on the first ``--sequential-episodes``
  episodes. Target: engine / sequential >= 5.

Seconds are this process's CPU time by default (``--clock wall`` for elapsed time): with one torch
thread that equals wall time on an idle machine, and unlike wall time it does not swing with what
other processes do on a shared one.

``--backend vllm`` (run it with vLLM's Python, e.g. ``.venv-vllm/bin/python``) measures instead, in
wall-clock seconds (vLLM decodes in its own engine process, which a CPU clock of this one misses):

* **engine (vllm)**: ``rollout`` with the in-process ``vllm`` backend;
* **bare LLM.chat**: the same conversations (rebuilt from the engine's records), one ``LLM.chat`` call
  per chunk and turn with the same per-request seeds and sampling parameters. Target: engine / bare
  >= 0.9 (the engine must not slow vLLM down);
* **engine (hf)** and **bare generate**: the same rollout with the hf backend and the bare
  ``model.generate`` loop over its conversations, side by side, so one run shows both ratios.

and how long the vllm engine took to start (``LLM(...)``: on CPU the backend runs eager by default,
``--compile`` restores vLLM's torch.compile warm-up to compare).

Usage::

    python benchmarks/rollout_throughput.py                 # defaults below, prints a table
    python benchmarks/rollout_throughput.py --json out.json # also save the numbers
    .venv-vllm/bin/python benchmarks/rollout_throughput.py --backend vllm
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from drift_train.commands._args import DataclassArgumentParser  # noqa: E402
from drift_train.commands.rollout import config_line, rollout_options  # noqa: E402
from drift_train.models import resolve_model  # noqa: E402
from drift_train.policies import SamplingParams, make_policy  # noqa: E402
from drift_train.policies.base import combine_seeds  # noqa: E402
from drift_train.rollout import RolloutConfig, make_env, rollout  # noqa: E402

# Seconds of this process's CPU time (default) or of wall time; see --clock.
CLOCK = time.process_time


def turn_batches(
    records: list[dict], config: RolloutConfig
) -> list[tuple[list[list[dict]], list[int], list[str]]]:
    """The engine's generate calls, rebuilt from its records: (conversations, seeds, replies) per call."""
    by_key = {(r["prompt_id"], r["traj_idx"]): r for r in records}
    prompt_ids = sorted({r["prompt_id"] for r in records})
    per_chunk = config.groups_per_chunk
    calls = []
    for start in range(0, len(prompt_ids), per_chunk):
        episodes = [
            by_key[(p, j)] for p in prompt_ids[start : start + per_chunk] for j in range(config.samples)
        ]
        turn = 1
        while True:
            live = [r for r in episodes if len(r["turn_rewards"]) >= turn]
            if not live:
                break
            conversations, replies = [], []
            for r in live:
                # the conversation up to (not including) the turn-th assistant message
                seen = 0
                for i, message in enumerate(r["messages"]):
                    if message["role"] == "assistant":
                        seen += 1
                        if seen == turn:
                            conversations.append(r["messages"][:i])
                            replies.append(message["content"])
                            break
            seeds = [combine_seeds([config.seed, r["prompt_id"], r["traj_idx"], turn]) for r in live]
            calls.append((conversations, seeds, replies))
            turn += 1
    return calls


def bare_generate(policy, calls, params: SamplingParams) -> tuple[int, float]:
    """Time ``model.generate`` alone over pre-tokenised batches; returns (tokens, seconds)."""
    model = policy.model
    eos = set(policy.eos_token_ids)
    prepared = []
    for conversations, seeds, _ in calls:
        prompts = policy.render(conversations)
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # the policy's batch order
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), policy.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(order):
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]) :] = 1
        prepared.append((ids, mask, combine_seeds(seeds, 0)))
    kwargs = dict(
        do_sample=True,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        max_new_tokens=params.max_new_tokens,
        pad_token_id=policy.pad_token_id,
        eos_token_id=policy.eos_token_ids,
    )
    outputs = []
    start = CLOCK()
    for ids, mask, seed in prepared:
        torch.manual_seed(seed)
        with torch.inference_mode():
            outputs.append(
                model.generate(input_ids=ids, attention_mask=mask, **kwargs)[:, ids.shape[1] :].tolist()
            )
    seconds = CLOCK() - start
    tokens = 0
    for generated in outputs:
        for row in generated:
            end = next((j for j, t in enumerate(row) if t in eos), None)
            tokens += len(row) if end is None else end + 1
    return tokens, seconds


def one_at_a_time(policy, config: RolloutConfig, episodes: int) -> tuple[int, float, int]:
    """Roll ``episodes`` episodes out one by one with batch-of-one generate calls."""
    env = make_env(config.env_id, config.effective_env_kwargs)
    tokens = done = 0
    policy.reset_prefix_cache()  # as the engine does at each chunk
    start = CLOCK()
    prompt_id = config.task_offset
    while done < episodes:
        for j in range(config.samples):
            if done == episodes:
                break
            _, info = env.reset(seed=combine_seeds([config.seed, prompt_id]), options={"index": prompt_id})
            turn, finished = 0, False
            while not finished:
                turn += 1
                seed = combine_seeds([config.seed, prompt_id, j, turn])
                ((completion,),) = policy.generate([info["messages"]], config.sampling, [seed])
                tokens += completion.num_tokens
                _, _, terminated, truncated, info = env.step(completion.text)
                finished = terminated or truncated
            done += 1
        prompt_id += 1
    return tokens, CLOCK() - start, done


def bare_llm_chat(policy, calls, params: SamplingParams) -> tuple[int, float]:
    """Time ``vllm.LLM.chat`` alone over the engine's generate calls; returns (tokens, wall seconds)."""
    import vllm

    start = time.perf_counter()
    tokens = 0
    for conversations, seeds, _ in calls:
        sampling = [
            vllm.SamplingParams(
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k if params.top_k > 0 else -1,
                max_tokens=params.max_new_tokens,
                seed=int(seed),
                allowed_token_ids=policy._allowed,
            )
            for seed in seeds
        ]
        outputs = policy.llm.chat(
            [list(c) for c in conversations],
            sampling_params=sampling,
            use_tqdm=False,
            add_generation_prompt=True,
        )
        tokens += sum(len(choice.token_ids) for output in outputs for choice in output.outputs)
    return tokens, time.perf_counter() - start


def vllm_main(args: argparse.Namespace, config: RolloutConfig, model: str) -> int:
    """The vLLM measurements: engine (vllm) vs bare LLM.chat, and the hf engine beside them (wall clock)."""
    start = time.perf_counter()
    vllm_policy = make_policy("vllm", model, **({"enforce_eager": False} if args.compile else {}))
    startup_s = time.perf_counter() - start
    hf_policy = make_policy("hf", model, batch_size=args.batch_size, device="cpu")
    warm = RolloutConfig(env_id=config.env_id, num_tasks=1, samples=2, max_turns=1, sampling=config.sampling)
    rollout(vllm_policy, warm)
    rollout(hf_policy, warm)
    engine_runs, bare_runs, hf_runs, generate_runs = [], [], [], []
    for _ in range(args.rounds):
        # both start from an empty prefix cache: the bare run replays the engine's conversations, which
        # would otherwise all be cache hits
        vllm_policy.llm.reset_prefix_cache()
        start = time.perf_counter()
        records, stats = rollout(vllm_policy, config)
        engine_runs.append((stats.generated_tokens, time.perf_counter() - start))
        vllm_policy.llm.reset_prefix_cache()
        bare_runs.append(bare_llm_chat(vllm_policy, turn_batches(records, config), config.sampling))
        start = time.perf_counter()
        hf_records, hf_stats = rollout(hf_policy, config)
        hf_runs.append((hf_stats.generated_tokens, time.perf_counter() - start))
        generate_runs.append(bare_generate(hf_policy, turn_batches(hf_records, config), config.sampling))
    best = {
        name: min(runs, key=lambda run: run[1])
        for name, runs in (
            ("engine_vllm", engine_runs),
            ("bare_llm_chat", bare_runs),
            ("engine_hf", hf_runs),
            ("bare_generate", generate_runs),
        )
    }
    tps = {name: tokens / seconds for name, (tokens, seconds) in best.items()}
    result = {
        "setup": {
            **vars(args),
            "model": model,
            "episodes": len(records),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        **{
            name: {"tokens": best[name][0], "seconds": best[name][1], "tokens_per_s": tps[name]}
            for name in best
        },
        "rounds": {
            "engine_vllm_s": [r[1] for r in engine_runs],
            "bare_llm_chat_s": [r[1] for r in bare_runs],
            "engine_hf_s": [r[1] for r in hf_runs],
            "bare_generate_s": [r[1] for r in generate_runs],
        },
        "vllm_startup_s": startup_s,
        "ratio_engine_vs_bare": tps["engine_vllm"] / tps["bare_llm_chat"],
        "ratio_hf_engine_vs_bare_generate": tps["engine_hf"] / tps["bare_generate"],
        "ratio_vllm_vs_hf": tps["engine_vllm"] / tps["engine_hf"],
    }
    table = Table(
        title=f"rollout throughput (wall seconds), vllm backend: {args.model or 'tiny'}, {args.num_tasks} tasks x {args.samples} "
        f"samples, {args.max_turns} turns, {args.max_new_tokens} new tokens"
    )
    for column in ("run", "tokens", "seconds", "tokens/s", "engine ratio", "target"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for name, label, engine, target in (
        ("engine_vllm", "engine (vllm)", "engine_vllm", ""),
        ("bare_llm_chat", "bare LLM.chat", "engine_vllm", ">= 0.9"),
        ("engine_hf", "engine (hf)", "engine_hf", ""),
        ("bare_generate", "bare generate", "engine_hf", ">= 0.9"),
    ):
        table.add_row(
            label,
            f"{best[name][0]:,}",
            f"{best[name][1]:.2f}",
            f"{tps[name]:,.1f}",
            f"{tps[engine] / tps[name]:.2f}",
            target,
        )
    table.caption = (
        f"best of {args.rounds} interleaved rounds; vllm engine start-up {startup_s:.0f} s "
        f"({'torch.compile' if args.compile else 'eager'})"
    )
    Console().print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    vllm_policy.close()
    ok = result["ratio_engine_vs_bare"] >= 0.9 and result["ratio_hf_engine_vs_bare_generate"] >= 0.9
    print("PASS" if ok else "FAIL: an engine is more than 10% slower than its bare generate loop")
    return 0 if ok else 1


# the measured episodes unless flags say otherwise
DEFAULTS = RolloutConfig(
    env_id="drift/MathFeedback-v0",
    num_tasks=16,
    samples=4,
    max_turns=3,
    batch_size=64,
    sampling=SamplingParams(max_new_tokens=128),
)


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print (and optionally save) the table."""
    parser = DataclassArgumentParser(description=__doc__.split("\n\n")[0])
    # the episodes' flags are drift rollout's (--num-tasks, --samples, --max-turns, --max-new-tokens,
    # --batch-size, --schedule, --seed, --temperature, ...), with this benchmark's defaults
    options, excluded = rollout_options(
        extra={
            "num_tasks": {"help": "tasks to roll out"},
            "batch_size": {
                "help": "episodes per chunk = sequences decoding at once (drift rollout's hf default)"
            },
        }
    )
    parser.add_dataclass(RolloutConfig, options=options, exclude=excluded, defaults=DEFAULTS)
    parser.add_argument("--sequential-episodes", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved repetitions; the best of each is kept"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: steadier timings on a shared machine; 0: torch's default)",
    )
    parser.add_argument(
        "--model",
        default="tiny",
        help="as drift rollout --model: tiny (default), smollm2-135m-instruct, a folder or a .gguf file",
    )
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: this process's CPU seconds (steady on a shared machine; with one torch thread "
        "it equals wall time on an idle one); wall: elapsed seconds",
    )
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    parser.add_argument(
        "--backend",
        choices=["hf", "vllm"],
        default="hf",
        help="hf: engine vs bare generate vs one at a time; vllm: engine vs bare LLM.chat, and hf",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="vllm on CPU: torch.compile the model at start-up as vLLM does by default (the backend runs eager)",
    )
    args = parser.parse_args(argv)

    model = resolve_model(args.model)
    config = parser.build(RolloutConfig, args)
    config.validate()
    Console().print(config_line(config, "rollout throughput"), highlight=False, soft_wrap=True)
    global CLOCK
    # vLLM decodes in its own engine process, which this process's CPU clock misses: wall time there
    CLOCK = time.process_time if args.clock == "cpu" and args.backend == "hf" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.backend == "vllm":
        return vllm_main(args, config, model)
    policy = make_policy("hf", model, batch_size=args.batch_size, device="cpu")
    # warm-up: the first calls in a process pay for lazy initialisation in torch and transformers
    warm = RolloutConfig(env_id=config.env_id, num_tasks=1, samples=2, max_turns=1, sampling=config.sampling)
    rollout(policy, warm)

    # Interleaved rounds, best of each: on a shared machine the load changes from second to second,
    # and the fastest round is the one least disturbed by other processes.
    engine_runs, bare_runs, seq_runs = [], [], []
    for _ in range(args.rounds):
        start = CLOCK()
        records, stats = rollout(policy, config)
        engine_runs.append((stats.generated_tokens, CLOCK() - start, stats))
        calls = turn_batches(records, config)
        bare_runs.append(bare_generate(policy, calls, config.sampling))
        seq_runs.append(one_at_a_time(policy, config, args.sequential_episodes))
    engine_tokens, engine_s, stats = min(engine_runs, key=lambda run: run[1])
    bare_tokens, bare_s = min(bare_runs, key=lambda run: run[1])
    seq_tokens, seq_s, seq_episodes = min(seq_runs, key=lambda run: run[1])
    engine_tps, bare_tps, seq_tps = engine_tokens / engine_s, bare_tokens / bare_s, seq_tokens / seq_s

    result = {
        "setup": {
            **vars(args),
            "clock": args.clock,
            "model": model,
            "episodes": len(records),
            "generate_calls": len(calls),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "engine": {
            "tokens": engine_tokens,
            "seconds": engine_s,
            "tokens_per_s": engine_tps,
            "generate_s": stats.generate_s,
            "env_s": stats.env_s,
            "schedule": records[0]["meta"]["schedule"],
        },
        "rounds": {
            "engine_s": [r[1] for r in engine_runs],
            "bare_s": [r[1] for r in bare_runs],
            "one_at_a_time_s": [r[1] for r in seq_runs],
        },
        "bare_generate": {"tokens": bare_tokens, "seconds": bare_s, "tokens_per_s": bare_tps},
        "one_at_a_time": {
            "tokens": seq_tokens,
            "seconds": seq_s,
            "tokens_per_s": seq_tps,
            "episodes": seq_episodes,
        },
        "ratio_engine_vs_bare": engine_tps / bare_tps,
        "ratio_engine_vs_one_at_a_time": engine_tps / seq_tps,
    }
    table = Table(
        title=f"rollout throughput ({args.clock} seconds): {args.model}, MathFeedback, {args.num_tasks} tasks x {args.samples} "
        f"samples, {args.max_turns} turns, {args.max_new_tokens} new tokens, batch {args.batch_size}"
    )
    for column in ("run", "episodes", "tokens", "seconds", "tokens/s", "engine ratio", "target"):
        table.add_column(column, justify="right" if column != "run" else "left")
    table.add_row(
        f"engine ({records[0]['meta']['schedule']})",
        str(len(records)),
        f"{engine_tokens:,}",
        f"{engine_s:.2f}",
        f"{engine_tps:,.0f}",
        "1.00",
        "",
    )
    table.add_row(
        "bare generate",
        str(len(records)),
        f"{bare_tokens:,}",
        f"{bare_s:.2f}",
        f"{bare_tps:,.0f}",
        f"{result['ratio_engine_vs_bare']:.2f}",
        ">= 0.9",
    )
    table.add_row(
        "one at a time",
        str(seq_episodes),
        f"{seq_tokens:,}",
        f"{seq_s:.2f}",
        f"{seq_tps:,.0f}",
        f"{result['ratio_engine_vs_one_at_a_time']:.2f}",
        ">= 5",
    )
    table.caption = (
        f"engine time: generate {stats.generate_s:.2f}s, env {stats.env_s:.3f}s; "
        f"{sum(len(c[0]) for c in calls)} replies (bare generate: {len(calls)} calls); "
        f"best of {args.rounds} interleaved rounds"
    )
    Console().print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    ok = result["ratio_engine_vs_bare"] >= 0.9 and result["ratio_engine_vs_one_at_a_time"] >= 5
    print("PASS" if ok else "FAIL: a throughput target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
