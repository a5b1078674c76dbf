"""Finding a run's evidence: every file under the run folders the report can show, recognised by content.

Metrics files (``eval_*.json``, ``metrics.json``, ``leaderboard.json``), trainer and online-RL logs, the
benchmarks' curves and sweeps, trajectory files (weighted or not; each read once, with its per-turn facts
from :mod:`drift_train.facts`) and saved PNG figures.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MAX_JSON_BYTES", "MAX_PNG_BYTES", "collect"]

MAX_JSON_BYTES = 20_000_000
MAX_PNG_BYTES = 600_000


def _load_json(path: Path) -> Any:
    if path.stat().st_size > MAX_JSON_BYTES:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _label(root: Path, path: Path) -> str:
    rel = path.relative_to(root)
    return f"{root.name}/{rel.with_suffix('')}" if str(rel) != "." else root.name


def _is_metrics(d: Any) -> bool:
    return isinstance(d, dict) and isinstance(d.get("success_at"), dict) and "max_turns" in d


def collect(run_dirs: Sequence[str | Path]) -> dict:
    """Everything the report shows, found by content under each folder (see :mod:`drift_train.report`)."""
    from drift_train.evaluate import multiturn_metrics, records_turn_budget
    from drift_train.facts import record_facts, turn_counts
    from drift_train.trajectories import read_trajectories

    found: dict[str, list] = {
        "metrics": [],
        "trainer_logs": [],
        "rl_logs": [],
        "benchmarks": [],
        "sweeps": [],
        "weighted": [],
        "trajectories": [],
        "figures": [],
    }
    for run in run_dirs:
        root = Path(run)
        if not root.is_dir():
            raise FileNotFoundError(
                f"{root}: not a folder (give the output folder of a quickstart, eval or benchmark)"
            )
        evaluated: set[Path] = set()
        for path in sorted(root.rglob("*.json")):
            d = _load_json(path)
            if d is None:
                continue
            if _is_metrics(d):
                found["metrics"].append({"run": root.name, "label": _label(root, path), "metrics": d})
                evaluated.add(path.with_suffix(".jsonl"))
                evaluated.add(path.with_name(path.stem + ".trajectories.jsonl"))
            elif (
                isinstance(d, list)
                and d
                and all(isinstance(e, dict) and _is_metrics(e.get("metrics")) for e in d)
            ):
                for e in d:  # leaderboard.json
                    found["metrics"].append(
                        {
                            "run": root.name,
                            "label": f"{e.get('model')} @ {e.get('env')}",
                            "metrics": e["metrics"],
                        }
                    )
            elif isinstance(d, dict) and "log_history" in d:
                found["trainer_logs"].append({"label": _label(root, path.parent), "log": d["log_history"]})
            elif (
                isinstance(d, dict)
                and isinstance(d.get("log"), list)
                and "tasks_per_step" in (d.get("config") or {})
            ):
                found["rl_logs"].append({"label": _label(root, path.parent), **d})
            elif isinstance(d, dict) and "curves" in d and "table" in d:
                found["benchmarks"].append({"label": _label(root, path), **d})
            elif isinstance(d, dict) and "sweeps" in d and "points" in d:
                found["sweeps"].append({"label": _label(root, path), **d})
        for path in sorted(root.rglob("*.jsonl")):
            if path.name.endswith(".tasks.jsonl"):
                continue
            try:
                records = list(read_trajectories(path))
            except (ValueError, OSError):
                continue  # not a trajectory file
            if not records:
                continue
            # every section reads the records' turns through drift_train.facts, as eval and weights do
            source = {
                "label": _label(root, path),
                "records": records,
                "facts": [record_facts(r) for r in records],
                "turns": turn_counts(records),
            }
            if "weight" in records[0]:
                found["weighted"].append(source)
            elif path.name.startswith("eval") or "trajectories" in path.name:
                if path not in evaluated:
                    budget = records_turn_budget(records)
                    found["metrics"].append(
                        {
                            "run": root.name,
                            "label": _label(root, path),
                            "metrics": multiturn_metrics(records, budget),
                        }
                    )
                found["trajectories"].append(source)
        for path in sorted(root.rglob("*.png")):
            if path.stat().st_size <= MAX_PNG_BYTES:
                found["figures"].append(
                    {"label": _label(root, path), "png": base64.b64encode(path.read_bytes()).decode()}
                )
    return found
