"""benchmarks/real_model.py: ``--quick`` end to end (twice with the same seed: the same records), and the
held-out test file that keeps every train problem out of the evaluation.

The end-to-end runs use the embedded tiny model in place of SmolLM2: every stage runs for real (rollouts,
weights, four losses, online RL, evaluation on two envs, the summary and ``drift report``), but SmolLM2's
``--quick`` takes minutes per run on 2 shared cores (benchmarks/README.md gives the measured time)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "real_model.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("real_model", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _records(out: Path) -> dict[str, list[dict]]:
    """Every trajectory file of a run, its own folder written as <out> and the write time dropped."""
    files = {}
    for path in sorted(out.rglob("*.jsonl")):  # rollouts, weighted rollouts, every evaluation
        rows = []
        for line in path.read_text().splitlines():
            row = json.loads(line.replace(str(out), "<out>"))
            row["meta"].pop("created_at", None)
            rows.append(row)
        files[str(path.relative_to(out))] = rows
    return files


def test_quick_runs_end_to_end_and_repeats(bench, tiny_model_dir: Path, tmp_path: Path) -> None:
    from drift_train.report import build_report

    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = bench.main(["--quick", "--model", str(tiny_model_dir), "--out-dir", str(out)])
        runs.append((out, result))
    (a, result), (b, _) = runs

    records_a, records_b = _records(a), _records(b)
    assert "rollouts.jsonl" in records_a and "eval/reference/main.trajectories.jsonl" in records_a
    assert sorted(records_a) == sorted(records_b)
    for name, rows in records_a.items():
        assert rows == records_b[name], f"{name} differs between two runs with the same seed"

    on_disk = json.loads((a / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert set(on_disk["methods"]) == {"reference", "sft", "wsft", "drift-otr", "online_rl"} | (
        {"rft"} if "rft_seed0" not in on_disk["skipped"] else set()
    )
    T = on_disk["max_turns"]
    for method, entry in on_disk["methods"].items():
        assert set(entry["main"]) == {str(t) for t in range(1, T + 1)}, method
        assert str(T) in entry["second"], method
        assert entry["cpu_s"][0] >= 0 and entry["generated_tokens"][0] >= 0, method
        if method != "reference":
            assert "vs_reference" in entry and "second_vs_reference" in entry, method
    assert on_disk["methods"]["wsft"]["generated_tokens"][0] == on_disk["rollouts"]["generated_tokens"] > 0
    assert on_disk["methods"]["online_rl"]["generated_tokens"][0] > 0
    assert {"torch", "transformers"} <= set(on_disk["versions"])
    assert on_disk["held_out"]["test_tasks"] == on_disk["sizes"]["eval_tasks"]
    for path in ("results.md", "success_main.png", "success_second.png", "weights_summary.json"):
        assert (a / path).stat().st_size > 0, path

    page = build_report([a], tmp_path / "report.html").read_text()
    assert "eval/wsft_seed0/main" in page and "rollouts.weighted" in page

    # a finished run is resumed, not redone: the same command is quick and changes nothing
    again = bench.main(["--quick", "--model", str(tiny_model_dir), "--out-dir", str(a)])
    assert again["methods"] == on_disk["methods"]


def test_held_out_problems_are_not_train_problems(bench, tmp_path: Path) -> None:
    from drift_envs.sources.procedural_math import ProceduralMath

    args = bench.parse_args(["--rollout-tasks", "300", "--eval-tasks", "200"])
    kwargs = bench.held_out_env_kwargs(args, tmp_path)
    summary = json.loads((tmp_path / "held_out.json").read_text())
    assert summary["file"] == kwargs["dataset"] and kwargs["split"] == "test"
    # read back independently: the procedural generator itself, and the file the evaluation env reads
    train_source = ProceduralMath(difficulty=args.env_kwargs["difficulty"], split="train")
    train = {train_source[i].prompt for i in range(bench.train_task_count(args))}
    test = [json.loads(line)["problem"] for line in Path(kwargs["dataset"]).read_text().splitlines()]
    assert len(test) == len(set(test)) == 200
    assert not train & set(test)
    # the procedural test split does draw train problems: they are what was dropped
    assert summary["dropped_as_train_problems"] > 0
    assert summary["test_split_tasks_scanned"] == (
        200 + summary["dropped_as_train_problems"] + summary["dropped_as_repeats"]
    )

    # a preset with too few distinct problems cannot give a held-out set: said, not papered over
    small = bench.parse_args(["--env-kwargs", '{"difficulty": "easy", "answer_format": "final_number"}'])
    with pytest.raises(ValueError, match="not train problems"):
        bench.held_out_env_kwargs(small, tmp_path)
