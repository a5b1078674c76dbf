"""The report's sections as HTML: metrics table, per-turn facts, success curves, learning curves, weight
diagnostics, and the rows of the trajectory browser. Each takes what :func:`~drift_train.report.collect`
found.
"""

from __future__ import annotations

import html
import statistics

from drift_train.report.svg import svg_chart

__all__ = [
    "browser_rows",
    "learning_section",
    "metrics_section",
    "success_curves",
    "turn_facts_section",
    "weights_section",
]


def metrics_section(rows: list[dict]) -> str:
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


def success_curves(rows: list[dict]) -> str:
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


def mean_band(by_seed: dict, x: str, y: str) -> tuple[list, list, list, list]:
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


def learning_section(found: dict) -> str:
    charts = []
    for b in found["benchmarks"]:
        T = b["max_turns"]
        for x, xlabel in (("generated_tokens", "generated tokens"), ("cpu_s", "CPU seconds")):
            series = []
            for method, by_seed in b["curves"].items():
                xs, mean, lo, hi = mean_band(by_seed, x, "success_at_T")
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


def weights_section(weighted: list[dict]) -> str:
    import numpy as np

    from drift_train.weights import effective_sample_size

    parts = []
    for w in weighted:
        records = w["records"]
        groups = {}
        index = np.array([groups.setdefault(str(r.get("prompt_id")), len(groups)) for r in records])
        weights = np.array([float(r["weight"]) for r in records])
        solved = np.array([f.t_star is not None for f in w["facts"]])
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
        undecided = sum(w["turns"]["first_undecided"])
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


def browser_rows(found: dict, per_file: int, total: int) -> list[dict]:
    rows = []
    for source in found["weighted"] + found["trajectories"]:
        shown = min(per_file, total - len(rows))
        for r, facts in zip(source["records"][:shown], source["facts"][:shown], strict=True):
            messages = r.get("messages") or []
            kinds = [t.get("feedback_kind") for t in (r.get("meta") or {}).get("turns") or []]
            turn_weights = r.get("turn_weights") or {}
            replies = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
            prompt = next((m.get("content") for m in messages if m.get("role") == "user"), "")
            turns = []
            for k, (i, fact) in enumerate(zip(replies, facts.turns, strict=False), start=1):
                after = (
                    messages[i + 1]
                    if i + 1 < len(messages) and messages[i + 1].get("role") != "assistant"
                    else None
                )
                given = [a for a in fact.answers if a is not None]
                turns.append(
                    {
                        "reply": messages[i].get("content"),
                        "reward": fact.reward,
                        "verifier": int(fact.correct),
                        "answer": ", ".join(given) if given else None,
                        "format_error": fact.format_error,
                        "undecided": fact.undecided,
                        "feedback": after.get("content") if after else "",
                        "kind": kinds[k - 1] if k <= len(kinds) else None,
                        "turn_weight": turn_weights.get(f"t{k}"),
                    }
                )
            rows.append(
                {
                    "src": source["label"],
                    "task": str(r.get("task_id", r.get("prompt_id"))),
                    "group": str(r.get("prompt_id")),
                    "traj": r.get("traj_idx"),
                    "t_star": facts.t_star,
                    "weight": r.get("weight"),
                    "ret": r.get("return"),
                    "prompt": prompt,
                    "turns": turns,
                    "penalty": r.get("format_penalty"),
                }
            )
    return rows


def turn_facts_section(found: dict) -> str:
    """Per turn of each trajectory file: episodes that reached it, correct, format errors, undecided
    verdicts, charged (repeated or empty) answers and episodes solved by then (drift_train.facts)."""
    sources = found["weighted"] + found["trajectories"]
    if not sources:
        return "<p>No trajectory files found.</p>"
    columns = ("reached", "correct", "format_errors", "undecided", "repeated", "solved_within")
    body = []
    for source in sources:
        counts = source["turns"]
        for t in range(len(counts["reached"])):
            cells = "".join(f"<td>{counts[c][t]}</td>" for c in columns)
            body.append(
                f"<tr><td class='name'>{html.escape(source['label'])}</td><td>{t + 1}</td>{cells}</tr>"
            )
    return (
        "<table class='metrics' id='turn-facts-table'><thead><tr><th>trajectory file</th><th>turn</th>"
        "<th>reached</th><th>correct</th><th>format errors</th><th>undecided</th><th>repeated answers</th>"
        "<th>solved by then</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table><p class='note'>episode counts per turn, read by <code>drift_train.facts</code> "
        "(the reading drift eval, drift weights and drift rollout's summary use).</p>"
    )
