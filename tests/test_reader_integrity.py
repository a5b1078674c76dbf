"""The reader refuses rows that would silently change a weight, naming the file, line and field."""

from __future__ import annotations

import json

import pytest

from drift_train.commands.weights import main as drift_weights
from drift_train.trajectories import TrajectoryError, read_trajectories, validate_groups


def record(prompt_id=0, traj_idx=0, solved=True, **fields) -> dict:
    """A complete record of our schema: one turn, right or wrong."""
    row = {
        "prompt_id": prompt_id,
        "traj_idx": traj_idx,
        "env_id": "drift/MathFeedback-v0",
        "env_kwargs": {"max_turns": 1},
        "task_id": f"task-{prompt_id}",
        "messages": [{"role": "user", "content": "2*3?"}, {"role": "assistant", "content": "\\boxed{6}"}],
        "turn_rewards": {"t1": float(solved)},
        "verifier": {"t1": int(solved)},
        "t_star": 1 if solved else None,
        "answer_norms": ["6" if solved else "5"],
        "format_penalty": 0.0,
        "meta": {"schema_version": 1},
    }
    row.update(fields)
    return row


def release_row(prompt_id="MATH_0", rewards=(0.0, 1.0), **fields) -> dict:
    """A row as the release's generator writes it: padded to five turns, no traj_idx/env_id/meta."""
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]
    for t, _ in enumerate(rewards):
        messages.append({"role": "assistant", "content": f"<answer>{t}</answer>"})
        if t < len(rewards) - 1:
            messages.append({"role": "user", "content": "Incorrect."})
    padded = {f"t{t}": (rewards[t - 1] if t <= len(rewards) else 0.0) for t in range(1, 6)}
    row = {
        "prompt_id": prompt_id,
        "gold": "1",
        "messages": messages,
        "verifier": {k: int(v == 1.0) for k, v in padded.items()},
        "turn_rewards": padded,
        "reward_details": {},
        "t_star": next((t + 1 for t, r in enumerate(rewards) if r == 1.0), None),
        "answer_norms": [str(t) for t in range(len(rewards))],
        "format_penalty": 0.0,
    }
    row.update(fields)
    return row


def write(tmp_path, rows: list[dict]):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def refusal(path) -> TrajectoryError:
    with pytest.raises(TrajectoryError) as info:
        list(read_trajectories(path))
    return info.value


REFUSED = [
    # (rows, line at fault, field, words of the problem)
    ([record(0, 0), record(0, 1, solved=False), record(0, 0)], 3, "traj_idx", "already appeared at line 1"),
    ([record(0, 0), record(0, 1, task_id="task-9")], 2, "task_id", "line 1 of the same group"),
    ([record(0, 0), record(0, 1, env_id="drift/CodeFeedback-v0")], 2, "env_id", "one task of one env"),
    (
        [record(0, 0), record(0, 1, env_kwargs={"max_turns": 1, "split": "test"})],
        2,
        "env_kwargs",
        "same group",
    ),
    ([record(0, 0), record(0, 1, solved=False, format_penalty=5.0)], 2, "format_penalty", "must be <= 0"),
    ([record(1, 0), record("1", 1)], 2, "prompt_id", "one group in the release and two here"),
    ([record("", 0)], 1, "prompt_id", "is empty"),
    (
        [release_row(), release_row(turn_rewards={"t1": 0.0, "t2": 1.0, "t3": 0.0, "t4": 1.0, "t5": 0.0})],
        2,
        "turn_rewards.t4",
        "2 assistant messages but turn_rewards has 5 turns",
    ),
    ([release_row(verifier={"t1": 0, "t2": 1, "t3": 1, "t4": 0, "t5": 0})], 1, "verifier.t3", "not padding"),
    (
        [
            release_row(),
            {k: v for k, v in release_row(trajectory_penalty=0.3).items() if k != "format_penalty"},
        ],
        2,
        "format_penalty",
        "must be <= 0",
    ),
]


@pytest.mark.parametrize(("rows", "line", "field", "problem"), REFUSED)
def test_the_reader_refuses_with_file_line_and_field(tmp_path, rows, line, field, problem) -> None:
    path = write(tmp_path, rows)
    err = refusal(path)
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert problem in str(err)
    assert str(err).startswith(f"{path}:{line}: field {field!r}: ")


def test_the_issue_rows_are_refused_by_drift_weights(tmp_path, capsys) -> None:
    """The issue's five rows: a duplicate, a second task, and a failure with penalty +5 that took weight 4.0."""
    rows = [
        record(0, 0),
        record(0, 1),
        record(0, 1, solved=False),
        record(0, 2, task_id="other"),
        record(0, 3, solved=False, format_penalty=5.0),
    ]
    for bad, field in ((2, "traj_idx"), (3, "task_id"), (4, "format_penalty")):
        path = write(tmp_path, [*rows[:2], rows[bad]])  # each fault alone, at line 3
        out = tmp_path / "weighted.jsonl"
        assert drift_weights([str(path), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{path}:3: field {field!r}" in err
        assert not out.exists()


def test_release_rows_without_traj_idx_take_their_order_in_the_group(tmp_path) -> None:
    rows = [
        release_row("a"),
        release_row("b"),
        release_row("a", rewards=(0.0, 0.0, 0.0, 0.0, 0.0)),
        release_row("a", rewards=(1.0,)),
    ]
    records = list(read_trajectories(write(tmp_path, rows)))
    assert [(r["prompt_id"], r["traj_idx"]) for r in records] == [("a", 0), ("b", 0), ("a", 1), ("a", 2)]
    assert [len(r["turn_rewards"]) for r in records] == [2, 2, 5, 1]
    validate_groups(records)
    # where rows carry no env_id, task_id or env_kwargs there is nothing to disagree on
    assert {r["env_id"] for r in records} == {None} and records[0]["task_id"] == "a"


def test_trajectory_penalty_stands_in_for_a_missing_format_penalty(tmp_path) -> None:
    """weight_sft.py reads trajectory_penalty when format_penalty is absent; so does the reader."""
    row = release_row(trajectory_penalty=-0.2)
    del row["format_penalty"]
    (record_,) = read_trajectories(write(tmp_path, [row]))
    assert record_["format_penalty"] == -0.2


def test_a_lost_group_member_is_refused_by_drift_weights(tmp_path, capsys) -> None:
    """validate_groups runs in `drift weights`: traj_idx 0 and 2 without 1 means a sample went missing."""
    path = write(tmp_path, [record(0, 0), record(0, 2, solved=False)])
    assert len(list(read_trajectories(path))) == 2  # a partial rollout file still reads (resume needs it)
    assert drift_weights([str(path), "--out", str(tmp_path / "w.jsonl")]) == 2
    assert "prompt_id=0: traj_idx values [0, 2], expected [0, 1]" in capsys.readouterr().err


def test_validate_groups_names_the_record_in_memory() -> None:
    with pytest.raises(TrajectoryError, match="disagree on env_id"):
        validate_groups([record(0, 0), record(0, 1, env_id="other")])
    with pytest.raises(TrajectoryError) as info:
        validate_groups([record(0, 0), record(0, 1, env_kwargs={})])
    assert (info.value.line, info.value.field) == (2, "env_kwargs")
