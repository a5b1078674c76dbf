"""The trajectory record: validation with file/line/field, JSONL and Parquet, the reference rows, the writer."""

from __future__ import annotations

import copy
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drift_train.trajectories import (
    TrajectoryError,
    TrajectoryWriter,
    group_by_prompt,
    normalize_record,
    read_trajectories,
    validate_groups,
    validate_record,
    write_trajectories,
)


def make_record(prompt_id=0, traj_idx=0, verdicts=(0, 1), answers=("5", "6"), format_ok=(True, True)) -> dict:
    """A complete record of our schema, built by hand."""
    messages = [{"role": "system", "content": "Solve it."}, {"role": "user", "content": "2*3?"}]
    for t, answer in enumerate(answers):
        messages.append({"role": "assistant", "content": f"\\boxed{{{answer}}}"})
        if t < len(answers) - 1:
            messages.append({"role": "user", "content": "Incorrect. Please think again."})
    keys = [f"t{t}" for t in range(1, len(verdicts) + 1)]
    return {
        "prompt_id": prompt_id,
        "traj_idx": traj_idx,
        "env_id": "drift/MathFeedback-v0",
        "env_kwargs": {"max_turns": 2},
        "task_id": f"task-{prompt_id}",
        "messages": messages,
        "turn_rewards": {k: float(v) for k, v in zip(keys, verdicts, strict=True)},
        "verifier": dict(zip(keys, verdicts, strict=True)),
        "t_star": next((t for t, v in enumerate(verdicts, start=1) if v), None),
        "answer_norms": list(answers),
        "format_penalty": sum(-0.1 for ok in format_ok if not ok),
        "meta": {"schema_version": 1, "model": "tiny", "backend": "hf"},
    }


# Rows laid out like the DRIFT reference release's files (fields named in docs/design.md): no traj_idx,
# env_id, task_id or meta; dict/list columns sometimes stored as JSON text; verifier as a list.
REFERENCE_ROWS = [
    {
        "prompt_id": 17,
        "messages": [
            {"role": "user", "content": "What is 7*8?"},
            {"role": "assistant", "content": "\\boxed{54}"},
            {"role": "user", "content": "Incorrect. Please think again."},
            {"role": "assistant", "content": "\\boxed{56}"},
        ],
        "turn_rewards": '{"t1": 0.0, "t2": 1.0}',
        "verifier": [0, 1],
        "t_star": 2,
        "answer_norms": ["54", "56"],
        "format_penalty": 0.0,
    },
    {
        "prompt_id": 17,
        "messages": json.dumps(
            [
                {"role": "user", "content": "What is 7*8?"},
                {"role": "assistant", "content": "no idea"},
            ]
        ),
        "turn_rewards": {"t1": 0.0},
        "t_star": None,
        "answer_norms": [None],
        "format_penalty": -0.1,
    },
    {
        "prompt_id": 18,
        "messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "\\boxed{2}"}],
        "turn_rewards": [1.0],
        "answer_norms": ["2"],
        "format_penalty": 0.0,
    },
]


def test_valid_record_passes_and_round_trips_jsonl(tmp_path):
    records = [
        make_record(0, 0),
        make_record(0, 1, verdicts=(0, 0), answers=(None, "4"), format_ok=(False, True)),
    ]
    for r in records:
        validate_record(r)
    path = write_trajectories(records, tmp_path / "r.jsonl")
    assert list(read_trajectories(path)) == records


def test_parquet_round_trip_with_different_turn_counts(tmp_path):
    records = [
        make_record(0, 0),
        make_record(1, 0, verdicts=(1,), answers=("6",)),
        make_record(2, 0, verdicts=(0, 0, 0), answers=("1", "2", None), format_ok=(True, True, False)),
    ]
    path = write_trajectories(records, tmp_path / "r.parquet")
    assert list(read_trajectories(path)) == records


def test_parquet_keeps_a_field_the_first_row_lacks(tmp_path):
    """pyarrow's from_pylist takes its columns from the first row: the writer must not lose the others'."""
    weighted = dict(make_record(1, 0, verdicts=(1,), answers=("6",)), weight=1.5)
    records = [make_record(0, 0), weighted]
    back = list(read_trajectories(write_trajectories(records, tmp_path / "r.parquet")))
    assert back[1]["weight"] == 1.5 and back[0].get("weight") is None


def test_parquet_with_native_struct_columns(tmp_path):
    """Parquet written by other tools keeps dicts as structs: absent turns read back as None and are dropped."""
    records = [make_record(0, 0), make_record(1, 0, verdicts=(1,), answers=("6",))]
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "native.parquet")
    assert list(read_trajectories(tmp_path / "native.parquet")) == records


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_reference_release_rows_are_read(tmp_path, suffix):
    path = tmp_path / f"reference{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in REFERENCE_ROWS))
    else:
        rows = [
            {
                k: (
                    v
                    if isinstance(v, str) or k in ("prompt_id", "t_star", "format_penalty")
                    else json.dumps(v)
                )
                for k, v in r.items()
            }
            for r in REFERENCE_ROWS
        ]
        pq.write_table(pa.Table.from_pylist(rows), path)
    records = list(read_trajectories(path))
    assert [(r["prompt_id"], r["traj_idx"]) for r in records] == [(17, 0), (17, 1), (18, 0)]
    first, second, third = records
    assert first["turn_rewards"] == {"t1": 0.0, "t2": 1.0} and first["verifier"] == {"t1": 0, "t2": 1}
    assert second["verifier"] == {"t1": 0} and second["t_star"] is None and second["format_penalty"] == -0.1
    assert second["messages"][1]["content"] == "no idea"
    assert third["verifier"] == {"t1": 1} and third["t_star"] == 1  # both derived from turn_rewards
    assert third["task_id"] == "18" and third["env_id"] is None and third["meta"] == {}
    validate_groups(records)


def _corrupt(field_path: str, value):
    record = make_record()
    target = record
    *parents, last = field_path.split(".")
    for p in parents:
        target = target[int(p)] if p.isdigit() else target[p]
    if value is KeyError:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return record


BAD_ROWS = [
    ("prompt_id", KeyError, "prompt_id", "missing"),
    ("prompt_id", 1.5, "prompt_id", "int or a str"),
    ("traj_idx", -1, "traj_idx", "non-negative"),
    ("messages", [], "messages", "non-empty"),
    ("messages.2.role", "robot", "messages[2].role", "role must be"),
    ("messages.3.content", None, "messages[3].content", "must be a str"),
    ("turn_rewards.t2", "high", "turn_rewards.t2", "finite number"),
    ("turn_rewards.t2", float("nan"), "turn_rewards.t2", "finite number"),
    ("turn_rewards", {"t1": 0.0, "t3": 1.0}, "turn_rewards", "without gaps"),
    ("turn_rewards", {"turn1": 0.0, "t2": 1.0}, "turn_rewards", "not of the form"),
    ("verifier.t1", 2, "verifier.t1", "0 or 1"),
    ("t_star", 1, "t_star", "first turn the verifier marks correct is 2"),
    ("t_star", 5, "t_star", "1..2"),
    ("answer_norms", ["5"], "answer_norms", "one entry per turn"),
    ("answer_norms.0", 5, "answer_norms[0]", "str or null"),
    ("format_penalty", "none", "format_penalty", "finite number"),
    ("env_kwargs", "max_turns=2", "env_kwargs", "not valid JSON"),
    ("meta", [1], "meta", "must be a dict"),
]


@pytest.mark.parametrize(("field_path", "value", "field", "problem"), BAD_ROWS)
def test_malformed_rows_are_rejected_with_file_line_and_field(tmp_path, field_path, value, field, problem):
    path = tmp_path / "bad.jsonl"
    good = make_record(0, 0)
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(_corrupt(field_path, value)) + "\n")
    with pytest.raises(TrajectoryError) as info:
        list(read_trajectories(path))
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), 3, field)
    assert str(err).startswith(f"{path}:3: field {field!r}: ")
    assert problem in str(err)


def test_assistant_turns_must_match_turn_count(tmp_path):
    record = make_record()
    record["messages"] = record["messages"][:3]  # drop the last two messages: 1 assistant turn, 2 rewards
    with pytest.raises(TrajectoryError, match="1 assistant messages but turn_rewards has 2 turns"):
        normalize_record(record, path="x.jsonl", line=7)


def test_invalid_json_line_names_the_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(make_record()) + "\n{not json\n")
    with pytest.raises(TrajectoryError, match=r"broken.jsonl:2: not valid JSON"):
        list(read_trajectories(path))


def test_parquet_errors_name_the_row(tmp_path):
    rows = [make_record(0, 0), _corrupt("format_penalty", None)]
    rows[1]["format_penalty"] = float("inf")
    for r in rows:
        for k in ("turn_rewards", "verifier", "env_kwargs", "meta"):
            r[k] = json.dumps(r[k])
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    with pytest.raises(TrajectoryError) as info:
        list(read_trajectories(tmp_path / "bad.parquet"))
    assert (info.value.line, info.value.field) == (2, "format_penalty")


def test_writer_appends_flushes_and_trims_a_cut_line(tmp_path):
    path = tmp_path / "out.jsonl"
    with TrajectoryWriter(path) as writer:
        writer.write(make_record(0, 0))
        # flushed: another reader sees the line while the writer is still open
        assert [r["traj_idx"] for r in read_trajectories(path)] == [0]
        writer.write(make_record(0, 1))
    # an interrupted write leaves half a line behind
    with open(path, "a") as handle:
        handle.write(json.dumps(make_record(0, 2))[:40])
    with pytest.raises(TrajectoryError, match=":3: not valid JSON"):
        list(read_trajectories(path))
    assert [r["traj_idx"] for r in read_trajectories(path, allow_partial_tail=True)] == [0, 1]
    with TrajectoryWriter(path) as writer:
        assert writer.trimmed_bytes == 40
        writer.write(make_record(0, 2))
    assert [r["traj_idx"] for r in read_trajectories(path)] == [0, 1, 2]


def test_writer_rejects_invalid_records_before_writing(tmp_path):
    path = tmp_path / "out.jsonl"
    with TrajectoryWriter(path) as writer, pytest.raises(TrajectoryError, match="t_star"):
        writer.write(_corrupt("t_star", None))
    assert path.read_text() == ""


def test_group_checks():
    good = [make_record(0, 0), make_record(0, 1), make_record(1, 0), make_record(1, 1)]
    validate_groups(good, samples=2)
    assert list(group_by_prompt(good)) == [0, 1]
    with pytest.raises(TrajectoryError, match=r"prompt_id=0: traj_idx values \[0, 0\]"):
        validate_groups([make_record(0, 0), make_record(0, 0)])
    with pytest.raises(TrajectoryError, match="expected \\[0, 1, 2\\]"):
        validate_groups(good, samples=3)
    mixed = copy.deepcopy(good)
    mixed[1]["task_id"] = "other"
    with pytest.raises(TrajectoryError, match="disagree on task_id"):
        validate_groups(mixed)


def test_turns_after_the_solved_turn_are_refused(tmp_path):
    """The env ends an episode at its first correct turn: a record with more turns after t_star would add
    return nobody earned (red team: a solved record padded with a second rewarded turn outweighed its group)."""
    padded = make_record(verdicts=(1, 1), answers=("6", "6"))
    assert padded["t_star"] == 1
    path = tmp_path / "padded.jsonl"
    path.write_text(json.dumps(padded) + "\n")
    with pytest.raises(TrajectoryError, match=r"padded.jsonl:1: .*turn_rewards.*solved at turn 1"):
        list(read_trajectories(path))
