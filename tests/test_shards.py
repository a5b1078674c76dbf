"""``drift rollout --shard i/N`` and ``drift merge``: the shards of a job are the unsharded rollout, each
trajectory once; bad shard sets are refused with the file and line; weights, train and eval read shards.

Real rollouts of the tiny model through the hf backend (sampling at temperature 1, so a shard that ran
other batches than the unsharded run would show it), driven through the ``drift`` command in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from parity_env import register_parity_env

from drift_train.cli import main as drift
from drift_train.trajectories import read_trajectories

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ENV_ID = "drift-test/ParityShards-v0"


def _rollout(model: Path, out: Path, *extra: str) -> int:
    env_id = register_parity_env(ENV_ID, num_tasks=20, max_turns=2)
    argv = ["rollout", "--env", env_id, "--model", str(model), "--num-tasks", "5", "--samples", "2"]
    argv += ["--max-turns", "2", "--batch-size", "4", "--max-new-tokens", "6", "--seed", "3"]
    return drift([*argv, "--no-progress", "--out", str(out), *extra])


def _without_meta(records: list[dict]) -> list[dict]:
    rows = [{k: v for k, v in r.items() if k != "meta"} for r in records]
    return sorted(rows, key=lambda r: (r["prompt_id"], r["traj_idx"]))


@pytest.fixture(scope="module")
def job(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One unsharded rollout and the same job in 2 shards (5 tasks, 2 per chunk: 3 chunks, 2 + 1)."""
    folder = tmp_path_factory.mktemp("shards")
    full = folder / "full.jsonl"
    assert _rollout(tiny_model_dir, full) == 0
    parts = [folder / f"part-{i}.jsonl" for i in range(2)]
    for i, part in enumerate(parts):
        assert _rollout(tiny_model_dir, part, "--shard", f"{i}/2") == 0
    return {"folder": folder, "full": full, "parts": parts, "model": tiny_model_dir}


def test_shards_take_whole_chunks_and_merge_into_the_unsharded_rollout(job, tmp_path):
    full = list(read_trajectories(job["full"]))
    shard_records = [list(read_trajectories(part)) for part in job["parts"]]
    # chunk c (2 tasks) goes to shard c % 2: tasks 0, 1, 4 and tasks 2, 3
    assert {r["prompt_id"] for r in shard_records[0]} == {0, 1, 4}
    assert {r["prompt_id"] for r in shard_records[1]} == {2, 3}
    assert {r["meta"]["shard"] for r in shard_records[0]} == {"0/2"}
    assert {r["meta"]["shard"] for r in shard_records[1]} == {"1/2"}
    assert all("shard" not in r["meta"] for r in full)
    merged = tmp_path / "merged.jsonl"
    assert drift(["merge", str(merged), str(job["parts"][1]), str(job["parts"][0])]) == 0
    records = list(read_trajectories(merged))
    assert [(r["prompt_id"], r["traj_idx"]) for r in records] == [(p, j) for p in range(5) for j in range(2)]
    assert _without_meta(records) == _without_meta(full)
    # sampled at temperature 1: the replies differ between tasks, so equality is not a coincidence
    assert len({json.dumps(r["messages"]) for r in full}) > 5
    # a glob, quoted (the program expands it), gives the same file
    again = tmp_path / "again.parquet"
    assert drift(["merge", str(again), str(job["folder"] / "part-*.jsonl")]) == 0
    assert _without_meta(list(read_trajectories(again))) == _without_meta(full)


def _copy(lines: list[str], path: Path) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_merge_refuses_bad_shard_sets_with_file_and_line(job, tmp_path, capsys):
    part0, part1 = job["parts"]
    lines1 = part1.read_text().splitlines()
    out = tmp_path / "out.jsonl"

    def refused(*shards: Path) -> str:
        capsys.readouterr()
        assert drift(["merge", str(out), *map(str, shards)]) == 2
        assert not out.exists()
        return capsys.readouterr().err

    twice = _copy(lines1[:1], tmp_path / "twice.jsonl")
    err = refused(part0, part1, twice)
    assert f"{twice}:1: field 'traj_idx'" in err and f"is also at {part1}:1" in err
    assert "1/2 missing" in refused(part0)
    cut = _copy(lines1[:-1], tmp_path / "cut.jsonl")
    err = refused(part0, cut)
    assert f"{cut}:" in err and "a shard is incomplete" in err
    other = json.loads(lines1[2])
    other["meta"]["sampling"]["temperature"] = 0.5
    changed = _copy([*lines1[:2], json.dumps(other), *lines1[3:]], tmp_path / "changed.jsonl")
    err = refused(part0, changed)
    assert f"{changed}:3: field 'meta.sampling'" in err and f"{part0}:1 has" in err
    broken = _copy([*lines1[:1], "{not json", *lines1[1:]], tmp_path / "broken.jsonl")
    assert f"{broken}:2: not valid JSON" in refused(part0, broken)
    assert "no trajectory file matches" in refused(tmp_path / "nothing-*.jsonl")
    # nothing already written is lost: an existing OUT stays as it was without --overwrite
    out.write_text("keep me\n")
    assert drift(["merge", str(out), str(part0), str(part1)]) == 2
    assert out.read_text() == "keep me\n" and "--overwrite" in capsys.readouterr().err
    assert drift(["merge", str(part0), str(part0), str(part1)]) == 2
    assert "is one of the shards" in capsys.readouterr().err
    assert drift(["merge", str(out), str(part0), str(part1), "--overwrite"]) == 0
    assert len(list(read_trajectories(out))) == 10


def test_bad_shard_flags_are_refused(job, tmp_path, capsys):
    for bad, message in [("2/2", "0 <= i < N"), ("one/two", "expected i/N"), ("3/4", "only 3 chunk(s)")]:
        out = tmp_path / f"{bad.replace('/', '-')}.jsonl"
        assert _rollout(job["model"], out, "--shard", bad) != 0
        assert message in capsys.readouterr().err
    # resuming a shard's file as another shard would mix two shards in one file
    assert _rollout(job["model"], job["parts"][0], "--shard", "1/2", "--resume") != 0
    assert "meta.shard='0/2'" in capsys.readouterr().err


def test_weights_and_eval_read_shard_lists_and_globs(job, tmp_path):
    full, parts = job["full"], job["parts"]
    assert drift(["weights", str(full), "--out", str(tmp_path / "w-full.jsonl")]) == 0
    glob = str(job["folder"] / "part-*.jsonl")
    assert drift(["weights", glob, "--out", str(tmp_path / "w-glob.jsonl")]) == 0
    listed = f"{parts[0]},{parts[1]}"
    assert drift(["weights", listed, "--out", str(tmp_path / "w-list.jsonl")]) == 0
    weighted = [
        _without_meta(list(read_trajectories(tmp_path / f"w-{n}.jsonl"))) for n in ("full", "glob", "list")
    ]
    assert weighted[0] == weighted[1] == weighted[2]
    assert {"weight", "return"} <= set(weighted[1][0])
    assert drift(["eval", "--records", str(full), "--out", str(tmp_path / "e-full.json")]) == 0
    assert drift(["eval", "--records", glob, "--out", str(tmp_path / "e-glob.json")]) == 0
    metrics = [json.loads((tmp_path / f"e-{n}.json").read_text()) for n in ("full", "glob")]
    for m in metrics:
        m.pop("records")
    assert metrics[0] == metrics[1] and metrics[0]["num_episodes"] == 10


def test_weights_refuses_a_duplicated_shard_with_file_and_line(job, tmp_path, capsys):
    copy = tmp_path / "copy.jsonl"
    copy.write_text(job["parts"][0].read_text())
    out = tmp_path / "w.jsonl"
    assert drift(["weights", f"{job['parts'][0]},{job['parts'][1]},{copy}", "--out", str(out)]) == 2
    assert f"{copy}:1: field 'traj_idx'" in capsys.readouterr().err and not out.exists()


def test_train_reads_shard_globs(job, tmp_path):
    from drift_train.commands.train import parse_config
    from drift_train.trainer import train

    def run(data: str, name: str) -> dict:
        flags = ["--data", data, "--model", str(job["model"]), "--loss", "sft", "--max_steps", "2"]
        flags += ["--train_sampling_strategy", "sequential", "--save_strategy", "no", "--report_to", "none"]
        flags += ["--per_device_train_batch_size", "4", "--disable_tqdm", "true"]
        return train(parse_config([*flags, "--output_dir", str(tmp_path / name)]))

    merged = tmp_path / "merged.jsonl"
    assert drift(["merge", str(merged), *map(str, job["parts"])]) == 0
    from_glob = run(str(job["folder"] / "part-*.jsonl"), "glob")
    from_file = run(str(merged), "file")
    assert from_glob["train_loss"] == pytest.approx(from_file["train_loss"], rel=1e-6)
    copy = tmp_path / "copy.jsonl"
    copy.write_text(job["parts"][1].read_text())
    with pytest.raises(ValueError, match=f"{copy}:1: field 'traj_idx'"):
        run(f"{job['parts'][0]},{job['parts'][1]},{copy}", "bad")


VLLM_SHARDS_SCRIPT = """
import sys
from pathlib import Path

from drift_train.policies import SamplingParams
from drift_train.policies.vllm import VLLMPolicy
from drift_train.rollout import RolloutConfig, rollout


def main(model, folder):
    policy = VLLMPolicy(model, enforce_eager=True)
    config = RolloutConfig(env_id="drift/MathFeedback-v0", env_kwargs={"difficulty": "tiny", "feedback": "binary"},
                           num_tasks=5, samples=2, max_turns=2, batch_size=4,
                           sampling=SamplingParams(max_new_tokens=8))
    rollout(policy, config, Path(folder) / "full.jsonl")
    for i in range(2):
        rollout(policy, config, Path(folder) / f"part-{i}.jsonl", shard=(i, 2))


if __name__ == "__main__":  # vLLM's engine process re-imports this file (spawn)
    main(sys.argv[1], sys.argv[2])
"""


def test_vllm_backend_shards_merge_into_the_unsharded_rollout(tiny_model_dir, tmp_path):
    import subprocess

    from conftest import VLLM_MISSING, VLLM_PYTHON, VLLM_START_TIMEOUT_S, vllm_env

    if VLLM_MISSING:
        pytest.skip(VLLM_MISSING)
    script = tmp_path / "shards.py"
    script.write_text(VLLM_SHARDS_SCRIPT)
    done = subprocess.run(
        [VLLM_PYTHON, str(script), str(tiny_model_dir), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=VLLM_START_TIMEOUT_S,
        cwd=tmp_path,
        env=vllm_env(),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    merged = tmp_path / "merged.jsonl"
    assert drift(["merge", str(merged), str(tmp_path / "part-*.jsonl")]) == 0
    full = list(read_trajectories(tmp_path / "full.jsonl"))
    assert len(full) == 10 and {r["meta"]["backend"] for r in full} == {"vllm"}
    assert _without_meta(list(read_trajectories(merged))) == _without_meta(full)
