"""One self-contained HTML page of a run's evidence (the command: ``drift report RUN_DIR ... --out report.html``,
:mod:`drift_train.commands.report`).

Reads what ``drift quickstart``, ``drift eval``, ``benchmarks/leaderboard.py``, ``benchmarks/drift_vs_online_rl.py``
and ``benchmarks/weight_sweeps.py`` write (any mix, found by content under each folder) and shows:

* **metrics** — every evaluation (``eval_*.json``, ``metrics.json``, ``leaderboard.json``; trajectory files
  without a metrics file are evaluated here): success@1..T, correction rate, non-repetition and format errors,
  each ± its standard error clustered by task (:mod:`drift_train.evaluate`);
* **success within t turns** — one chart per folder, ±1 s.e. bands;
* **learning curves** — training loss per step (``trainer_state.json``), online RL's rollout success per step
  (``online_rl_log.json``), the benchmark's held-out success against generated tokens and CPU time
  (mean ± std over seeds), and the β/γ sweeps (± clustered s.e.);
* **weight diagnostics** — for each weighted rollout file: effective sample size per group (Kish, from
  :func:`drift_train.weights.effective_sample_size`), the distribution of weights, and the weights of each
  group's members, coloured by outcome;
* **trajectory browser** — filter by source, task, outcome and weight (a link can preset them:
  ``report.html#outcome=solved&wmin=1``); each conversation with its per-turn rewards, verifier bits,
  feedback and weights;
* the PNG figures the benchmarks saved, inlined.

Everything is in the one file: charts are inline SVG, figures base64 PNG, the browser's data a JSON block and
its code an inline script. Nothing is fetched when the page is viewed. The page sets
``<html data-report-status="ok" data-script-errors="0">`` once its script has run, so a headless browser can
tell a page that rendered from one whose script failed.
"""

from __future__ import annotations

import base64
import html
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_report", "collect", "svg_chart"]

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
MAX_JSON_BYTES = 20_000_000
MAX_PNG_BYTES = 600_000


# --------------------------------------------------------------------------------------------------
# SVG charts


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * step:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4:
        return f"{v / 1000:.0f}k"
    return f"{v:.3g}"


def svg_chart(
    series: Sequence[dict],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
    width: int = 460,
    height: int = 280,
    y_range: tuple[float, float] | None = None,
    hlines: Sequence[dict] = (),
    kind: str = "line",
) -> str:
    """An inline SVG chart. ``series``: ``{"label", "x", "y"}`` with optional ``"lo"``/``"hi"`` (a band or
    error bars); ``kind`` "line" or "scatter"; ``hlines``: ``{"y", "label"}`` dashed references."""
    pts = [(x, y) for s in series for x, y in zip(s["x"], s["y"], strict=True) if y is not None]
    lows = [v for s in series for v in (s.get("lo") or []) if v is not None]
    highs = [v for s in series for v in (s.get("hi") or []) if v is not None]
    if not pts:
        return ""
    tx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs = [tx(x) for x, _ in pts if not log_x or x > 0]
    ys = [y for _, y in pts] + lows + highs + [h["y"] for h in hlines]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range or (min(ys), max(ys))
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    left, right, top, bottom = 56, 130, 26, 40
    pw, ph = width - left - right, height - top - bottom

    def X(v: float) -> float:
        return left + (tx(v) - x0) / (x1 - x0) * pw

    def Y(v: float) -> float:
        return top + (1 - (v - y0) / (y1 - y0)) * ph

    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{html.escape(title)}</title>',
        f'<text x="{left}" y="16" class="ctitle">{html.escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>',
    ]
    for t in _ticks(y0, y1):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{Y(t) + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>'
        )
    xt = [10**e for e in range(math.floor(x0), math.ceil(x1) + 1)] if log_x else _ticks(x0, x1)
    for t in xt:
        if x0 - 1e-9 <= tx(t) <= x1 + 1e-9:
            out.append(
                f'<text x="{X(t):.1f}" y="{top + ph + 14}" text-anchor="middle" class="tick">{_fmt(t)}</text>'
            )
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" class="axis">{html.escape(xlabel)}</text>'
    )
    out.append(
        f'<text x="12" y="{top + ph / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 12 {top + ph / 2})">{html.escape(ylabel)}</text>'
    )
    for h in hlines:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{Y(h["y"]):.1f}" y2="{Y(h["y"]):.1f}" stroke="#888" '
            f'stroke-dasharray="4 3"/><text x="{left + pw - 2}" y="{Y(h["y"]) - 3:.1f}" text-anchor="end" '
            f'class="tick">{html.escape(h["label"])}</text>'
        )
    for i, s in enumerate(series):
        color = s.get("color") or PALETTE[i % len(PALETTE)]
        data = [
            (x, y, lo, hi)
            for x, y, lo, hi in zip(
                s["x"],
                s["y"],
                s.get("lo") or [None] * len(s["x"]),
                s.get("hi") or [None] * len(s["x"]),
                strict=True,
            )
            if y is not None and (not log_x or x > 0)
        ]
        if not data:
            continue
        band = [(x, lo, hi) for x, _, lo, hi in data if lo is not None and hi is not None]
        if kind == "line" and len(band) > 1:
            poly = [f"{X(x):.1f},{Y(hi):.1f}" for x, _, hi in band] + [
                f"{X(x):.1f},{Y(lo):.1f}" for x, lo, _ in band[::-1]
            ]
            out.append(f'<polygon points="{" ".join(poly)}" fill="{color}" opacity="0.15"/>')
        elif band:
            out += [
                f'<line x1="{X(x):.1f}" x2="{X(x):.1f}" y1="{Y(lo):.1f}" y2="{Y(hi):.1f}" stroke="{color}"/>'
                for x, lo, hi in band
            ]
        if kind == "line":
            out.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="'
                + " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y, _, _ in data)
                + '"/>'
            )
        out += [
            f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="{2.5 if kind == "line" else 2}" fill="{color}"/>'
            for x, y, _, _ in data
        ]
        ly = top + 10 + 14 * i
        out.append(
            f'<rect x="{left + pw + 8}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
            f'<text x="{left + pw + 22}" y="{ly + 1}" class="legend">{html.escape(str(s["label"])[:24])}</text>'
        )
    out.append("</svg>")
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# collecting a run's files


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
    """Everything the report shows, found by content under each folder (see the module docstring)."""
    from drift_train.evaluate import multiturn_metrics, records_turn_budget
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
            if "weight" in records[0]:
                found["weighted"].append({"label": _label(root, path), "records": records})
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
                found["trajectories"].append({"label": _label(root, path), "records": records})
        for path in sorted(root.rglob("*.png")):
            if path.stat().st_size <= MAX_PNG_BYTES:
                found["figures"].append(
                    {"label": _label(root, path), "png": base64.b64encode(path.read_bytes()).decode()}
                )
    return found


# --------------------------------------------------------------------------------------------------
# sections


def _metrics_section(rows: list[dict]) -> str:
    from drift_train.evaluate import format_metric

    if not rows:
        return "<p>No evaluations found.</p>"
    T = max(r["metrics"]["max_turns"] for r in rows)
    head = "".join(f"<th>success@{t}</th>" for t in range(1, T + 1))
    # turns without a verdict get a column only where some evaluation has them (most envs never do)
    columns = ("correction_rate", "non_repeat_ratio", "format_error_rate")
    if any(r["metrics"].get("num_undecided_turns") for r in rows):
        columns += ("undecided_turn_rate",)
    body = []
    for r in rows:
        m = r["metrics"]
        cells = "".join(
            f"<td>{format_metric(m['success_at'][str(t)]) if str(t) in m['success_at'] else '—'}</td>"
            for t in range(1, T + 1)
        )
        extra = "".join(f"<td>{format_metric(m[k]) if k in m else '—'}</td>" for k in columns)
        body.append(
            f"<tr><td class='name'>{html.escape(r['label'])}</td><td>{m.get('num_episodes', '—')}</td>"
            f"<td>{m.get('num_tasks', '—')}</td>{cells}{extra}</tr>"
        )
    return (
        "<table class='metrics' id='metrics-table'><thead><tr><th>evaluation</th><th>episodes</th><th>tasks</th>"
        f"{head}<th>correction</th><th>non-repeat</th><th>format err</th>"
        + ("<th>undecided</th>" if "undecided_turn_rate" in columns else "")
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table><p class='note'>value ± standard error clustered by task "
        "(CR1; <code>drift_train.evaluate</code>).</p>"
    )


def _success_curves(rows: list[dict]) -> str:
    charts = []
    by_run: dict[str, list[dict]] = {}
    for r in rows:
        by_run.setdefault(r["run"], []).append(r)
    for run, group in by_run.items():
        series = []
        for r in group[:10]:
            m = r["metrics"]
            ts = sorted(int(t) for t in m["success_at"])
            vals = [m["success_at"][str(t)]["value"] for t in ts]
            ses = [m["success_at"][str(t)]["se"] or 0.0 for t in ts]
            series.append(
                {
                    "label": r["label"].split("/", 1)[-1],
                    "x": ts,
                    "y": vals,
                    "lo": [v - s if v is not None else None for v, s in zip(vals, ses, strict=True)],
                    "hi": [v + s if v is not None else None for v, s in zip(vals, ses, strict=True)],
                }
            )
        charts.append(
            svg_chart(
                series,
                title=f"{run}: success within t turns (±1 s.e.)",
                xlabel="turns t",
                ylabel="success within t",
                y_range=(0, 1),
            )
        )
    return "".join(charts) or "<p>No evaluations found.</p>"


def _mean_band(by_seed: dict, x: str, y: str) -> tuple[list, list, list, list]:
    n = min(len(p) for p in by_seed.values())
    xs = [statistics.fmean(p[i][x] for p in by_seed.values()) for i in range(n)]
    ys = [[p[i][y] for p in by_seed.values()] for i in range(n)]
    mean = [statistics.fmean(v) for v in ys]
    std = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in ys]
    return (
        xs,
        mean,
        [m - s for m, s in zip(mean, std, strict=True)],
        [m + s for m, s in zip(mean, std, strict=True)],
    )


def _learning_section(found: dict) -> str:
    charts = []
    for b in found["benchmarks"]:
        T = b["max_turns"]
        for x, xlabel in (("generated_tokens", "generated tokens"), ("cpu_s", "CPU seconds")):
            series = []
            for method, by_seed in b["curves"].items():
                xs, mean, lo, hi = _mean_band(by_seed, x, "success_at_T")
                series.append({"label": f"{method} ({len(by_seed)})", "x": xs, "y": mean, "lo": lo, "hi": hi})
            charts.append(
                svg_chart(
                    series,
                    title=f"held-out success@{T} vs {xlabel} (mean ± std, seeds)",
                    xlabel=xlabel + " (log)",
                    ylabel=f"success@{T}",
                    log_x=True,
                    hlines=[
                        {"y": b["target_success_at_T"], "label": "target"},
                        {"y": b["table"]["reference"]["success_at_T"][0], "label": "reference"},
                    ],
                )
            )
    for s in found["sweeps"]:
        T = s["max_turns"]
        for knob in ("beta", "gamma"):
            series = []
            for key in ("1", str(T)):
                pts = [s["points"][p["point"]]["metrics"]["success_at"][key] for p in s["sweeps"][knob]]
                vals = [p["value"] for p in pts]
                series.append(
                    {
                        "label": f"wsft success@{key}",
                        "x": [p[knob] for p in s["sweeps"][knob]],
                        "y": vals,
                        "lo": [v - (p["se"] or 0) for v, p in zip(vals, pts, strict=True)],
                        "hi": [v + (p["se"] or 0) for v, p in zip(vals, pts, strict=True)],
                    }
                )
            rft = s["points"]["rft"]["metrics"]["success_at"]
            charts.append(
                svg_chart(
                    series,
                    title=f"{s['label'].split('/')[0]}: {knob} sweep (± clustered s.e.)",
                    xlabel=knob,
                    ylabel="held-out success",
                    log_x=knob == "beta",
                    kind="scatter",
                    hlines=[
                        {"y": rft["1"]["value"], "label": "RFT @1"},
                        {"y": rft[str(T)]["value"], "label": f"RFT @{T}"},
                    ],
                )
            )
    if found["trainer_logs"]:
        series = [
            {
                "label": "/".join(t["label"].split("/")[-2:]),
                "x": [e["step"] for e in t["log"] if "loss" in e],
                "y": [e["loss"] for e in t["log"] if "loss" in e],
            }
            for t in found["trainer_logs"][:10]
        ]
        series = [s for s in series if s["x"]]
        if series:
            charts.append(
                svg_chart(
                    series, title="training loss per step (trainer_state.json)", xlabel="step", ylabel="loss"
                )
            )
    for r in found["rl_logs"][:6]:
        steps = [e["step"] for e in r["log"]]
        series = [
            {"label": "rollout success", "x": steps, "y": [e["success"] for e in r["log"]]},
            {"label": "mean return", "x": steps, "y": [e["mean_return"] for e in r["log"]]},
        ]
        charts.append(
            svg_chart(series, title=f"{r['label']}: online RL per step", xlabel="step", ylabel="value")
        )
    return "".join(charts) or "<p>No training logs found.</p>"


def _weights_section(weighted: list[dict]) -> str:
    import numpy as np

    from drift_train.weights import effective_sample_size

    parts = []
    for w in weighted:
        records = w["records"]
        groups = {}
        index = np.array([groups.setdefault(str(r.get("prompt_id")), len(groups)) for r in records])
        weights = np.array([float(r["weight"]) for r in records])
        solved = np.array([r.get("t_star") is not None for r in records])
        sizes = np.bincount(index, minlength=len(groups))
        ess = effective_sample_size(weights, index, len(groups))
        positive = weights[weights > 0]
        stats = {
            "trajectories": len(records),
            "groups": len(groups),
            "ESS per group (mean)": float(ess.mean()),
            "ESS / K (mean)": float((ess / sizes).mean()),
            "ESS per group (min)": float(ess.min()),
            "max weight": float(weights.max()),
            "zero weights": int((weights == 0).sum()),
            "weight on solved trajectories": float(weights[solved].sum() / max(weights.sum(), 1e-12)),
        }
        undecided = sum(1 for r in records if r.get("undecided_turns"))
        if undecided:  # drift weights drops them by default: say how many zero weights that explains
            stats["trajectories with an undecided turn"] = undecided
        table = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>"
            if isinstance(v, float)
            else f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>"
            for k, v in stats.items()
        )
        edges = np.linspace(0, 1, 11)
        frac = ess / sizes
        counts = [
            int(((frac >= lo) & ((frac < hi) | (hi == 1))).sum())
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        ess_chart = svg_chart(
            [{"label": "groups", "x": [float(e) + 0.05 for e in edges[:-1]], "y": counts}],
            title="ESS / K per group (histogram)",
            xlabel="ESS / K",
            ylabel="groups",
            width=380,
            height=240,
        )
        log_w = np.log10(positive) if positive.size else np.array([0.0])
        bins = np.linspace(log_w.min(), max(log_w.max(), log_w.min() + 1e-6), 16)
        hist, _ = np.histogram(log_w, bins=bins)
        dist_chart = svg_chart(
            [
                {
                    "label": "trajectories",
                    "x": [float(10 ** ((a + b) / 2)) for a, b in zip(bins[:-1], bins[1:], strict=True)],
                    "y": hist.tolist(),
                }
            ],
            title="weight distribution (w > 0)",
            xlabel="weight (log)",
            ylabel="trajectories",
            log_x=True,
            width=380,
            height=240,
        )
        shown = list(range(min(len(groups), 40)))
        floor = float(positive.min()) if positive.size else 1e-6
        series = []
        for label, mask, color in (("solved", solved, "#2ca02c"), ("unsolved", ~solved, "#d62728")):
            keep = mask & np.isin(index, shown)
            series.append(
                {
                    "label": label,
                    "x": (index[keep] + 1).tolist(),
                    "y": np.log10(np.maximum(weights[keep], floor)).tolist(),
                    "color": color,
                }
            )
        group_chart = svg_chart(
            series,
            title="weights of each group's members (first 40 groups)",
            xlabel="group",
            ylabel="log10 weight",
            kind="scatter",
            width=620,
            height=260,
        )
        parts.append(
            f"<h3>{html.escape(w['label'])}</h3><div class='row'><table class='diag'>{table}</table>"
            f"{ess_chart}{dist_chart}</div>{group_chart}"
        )
    return "".join(parts) or "<p>No weighted rollout files (<code>*.weighted.jsonl</code>) found.</p>"


def _browser_rows(found: dict, per_file: int, total: int) -> list[dict]:
    rows = []
    for source in found["weighted"] + found["trajectories"]:
        for r in source["records"][: min(per_file, total - len(rows))]:
            messages = r.get("messages") or []
            kinds = [t.get("feedback_kind") for t in (r.get("meta") or {}).get("turns") or []]
            turn_weights = r.get("turn_weights") or {}
            turns, k = [], 0
            prompt = next((m.get("content") for m in messages if m.get("role") == "user"), "")
            for i, m in enumerate(messages):
                if m.get("role") != "assistant":
                    continue
                k += 1
                key = f"t{k}"
                after = (
                    messages[i + 1]
                    if i + 1 < len(messages) and messages[i + 1].get("role") != "assistant"
                    else None
                )
                answers = r.get("answer_norms") or []
                turns.append(
                    {
                        "reply": m.get("content"),
                        "reward": (r.get("turn_rewards") or {}).get(key),
                        "verifier": (r.get("verifier") or {}).get(key),
                        "answer": answers[k - 1] if k <= len(answers) else None,
                        "feedback": after.get("content") if after else "",
                        "kind": kinds[k - 1] if k <= len(kinds) else None,
                        "turn_weight": turn_weights.get(key),
                    }
                )
            rows.append(
                {
                    "src": source["label"],
                    "task": str(r.get("task_id", r.get("prompt_id"))),
                    "group": str(r.get("prompt_id")),
                    "traj": r.get("traj_idx"),
                    "t_star": r.get("t_star"),
                    "weight": r.get("weight"),
                    "ret": r.get("return"),
                    "prompt": prompt,
                    "turns": turns,
                    "penalty": r.get("format_penalty"),
                }
            )
    return rows


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:1280px;padding:12px 20px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right;font-size:13px;white-space:nowrap}
td.name,th:first-child{text-align:left}thead th{background:#f4f4f4;position:sticky;top:0}
.note{color:#666;font-size:12px}.chart{margin:6px 10px 6px 0;background:#fff}.ctitle{font-size:12px;font-weight:600}
.tick{font-size:10px;fill:#555}.axis{font-size:11px;fill:#333}.legend{font-size:10px}.row{display:flex;flex-wrap:wrap;align-items:flex-start;gap:8px}
.diag td:first-child{text-align:left}#filters{display:flex;flex-wrap:wrap;gap:10px;align-items:center;background:#f7f7f7;padding:8px;border-radius:6px}
#filters label{font-size:13px}#traj-list{margin-top:8px}.traj{border:1px solid #ddd;border-radius:6px;margin:6px 0;padding:6px 10px}
.traj summary{cursor:pointer}.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.msg{margin:4px 0;padding:4px 8px;border-radius:4px;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px}
.user{background:#eef3fb}.assistant{background:#f3f8ee}.feedback{background:#fdf6e7}.meta{color:#555;font-size:12px}
img.fig{max-width:100%;border:1px solid #eee}
"""

_JS = r"""
(function(){
  const data = JSON.parse(document.getElementById('trajectory-data').textContent);
  const $ = id => document.getElementById(id);
  const sources = [...new Set(data.map(r => r.src))];
  const srcSel = $('f-source');
  for (const s of sources) { const o = document.createElement('option'); o.value = s; o.textContent = s; srcSel.appendChild(o); }
  const esc = s => String(s == null ? '' : s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
  const num = v => (v == null || Number.isNaN(v)) ? '—' : (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  function matches(r) {
    const src = srcSel.value, task = $('f-task').value.trim().toLowerCase(), outcome = $('f-outcome').value;
    const wmin = parseFloat($('f-wmin').value), wmax = parseFloat($('f-wmax').value);
    if (src && r.src !== src) return false;
    if (task && !(r.task.toLowerCase().includes(task) || r.prompt.toLowerCase().includes(task))) return false;
    if (outcome === 'solved' && r.t_star == null) return false;
    if (outcome === 'unsolved' && r.t_star != null) return false;
    if (outcome === 'first' && r.t_star !== 1) return false;
    if (outcome === 'later' && !(r.t_star > 1)) return false;
    if (!Number.isNaN(wmin) && !(r.weight != null && r.weight >= wmin)) return false;
    if (!Number.isNaN(wmax) && !(r.weight != null && r.weight <= wmax)) return false;
    return true;
  }
  function render(r) {
    const head = `<span class="${r.t_star != null ? 'ok' : 'bad'}">${r.t_star != null ? 'solved at turn ' + r.t_star : 'unsolved'}</span>`
      + ` · task <b>${esc(r.task)}</b> · sample ${esc(r.traj)} · weight ${num(r.weight)} · return ${num(r.ret)}`
      + ` · ${esc(r.src)}`;
    let body = `<div class="msg user">${esc(r.prompt)}</div>`;
    r.turns.forEach((t, i) => {
      body += `<div class="meta">turn ${i + 1}: reward ${num(t.reward)} · verifier ${esc(t.verifier)} · answer ${esc(t.answer)}`
        + (t.turn_weight != null ? ` · turn weight ${num(t.turn_weight)}` : '') + (t.kind ? ` · feedback: ${esc(t.kind)}` : '') + `</div>`;
      body += `<div class="msg assistant">${esc(t.reply)}</div>`;
      if (t.feedback) body += `<div class="msg feedback">${esc(t.feedback)}</div>`;
    });
    return `<details class="traj"><summary>${head}</summary>${body}</details>`;
  }
  function update() {
    const shown = data.filter(matches);
    const limit = parseInt($('f-limit').value, 10) || 50;
    $('traj-count').textContent = `${shown.length} of ${data.length} trajectories match` + (shown.length > limit ? ` (first ${limit} shown)` : '');
    $('traj-list').innerHTML = shown.slice(0, limit).map(render).join('');
  }
  const ids = {source: 'f-source', task: 'f-task', outcome: 'f-outcome', wmin: 'f-wmin', wmax: 'f-wmax', limit: 'f-limit'};
  // a link can preset the filters: report.html#outcome=solved&wmin=1
  for (const [key, value] of new URLSearchParams(location.hash.slice(1))) if (ids[key]) $(ids[key]).value = value;
  for (const id of Object.values(ids)) $(id).addEventListener('input', update);
  update();
  document.documentElement.setAttribute('data-report-status', 'ok');
  document.documentElement.setAttribute('data-script-errors', String(window.__reportErrors.length));
})();
"""

_ERRORS_JS = (
    "window.__reportErrors=[];window.addEventListener('error',function(e){window.__reportErrors.push(String("
    "e.message));document.documentElement.setAttribute('data-script-errors',String(window.__reportErrors.length));});"
)


def build_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    trajectories_per_file: int = 200,
    max_trajectories: int = 3000,
    title: str = "DRIFT report",
) -> Path:
    """Write the HTML report of ``run_dirs`` to ``out``; returns its path. The browser holds the first
    ``trajectories_per_file`` records of each file (weighted rollouts first), ``max_trajectories`` in all."""
    found = collect(run_dirs)
    rows = _browser_rows(found, trajectories_per_file, max_trajectories)
    payload = json.dumps(rows, separators=(",", ":")).replace("</", "<\\/")  # no "</script>" inside the block
    figures = (
        "".join(
            f"<figure><img class='fig' alt='{html.escape(f['label'])}' src='data:image/png;base64,{f['png']}'>"
            f"<figcaption class='note'>{html.escape(f['label'])}.png</figcaption></figure>"
            for f in found["figures"]
        )
        or "<p>No saved figures.</p>"
    )
    sources = ", ".join(html.escape(str(Path(d))) for d in run_dirs)
    page = f"""<!DOCTYPE html>
<html lang="en" data-report-status="loading" data-script-errors="0"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>
<script>{_ERRORS_JS}</script><style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1><p class="note">from {sources}; self-contained: nothing is loaded from the network.</p>
<h2 id="metrics">Metrics</h2>{_metrics_section(found["metrics"])}
<h2 id="success-curves">Success within t turns</h2><div class="row">{_success_curves(found["metrics"])}</div>
<h2 id="learning-curves">Learning curves</h2><div class="row">{_learning_section(found)}</div>
<h2 id="weights">Weight diagnostics</h2>{_weights_section(found["weighted"])}
<h2 id="browser">Trajectory browser</h2>
<div id="filters"><label>source <select id="f-source"><option value="">all</option></select></label>
<label>task <input id="f-task" placeholder="task id or text" size="18"></label>
<label>outcome <select id="f-outcome"><option value="">any</option><option value="solved">solved</option>
<option value="unsolved">unsolved</option><option value="first">solved at turn 1</option>
<option value="later">solved after feedback</option></select></label>
<label>weight ≥ <input id="f-wmin" type="number" step="any" size="6"></label>
<label>weight ≤ <input id="f-wmax" type="number" step="any" size="6"></label>
<label>show <input id="f-limit" type="number" value="50" min="1" size="4"></label></div>
<p id="traj-count" class="note"></p><div id="traj-list"></div>
<h2 id="figures">Saved figures</h2>{figures}
<script type="application/json" id="trajectory-data">{payload}</script>
<script>{_JS}</script>
</body></html>
"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
