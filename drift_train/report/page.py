"""The report page: what :func:`~drift_train.report.collect` found, as one self-contained HTML file."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from drift_train.report.assets import CSS, ERRORS_SCRIPT, SCRIPT
from drift_train.report.collect import collect
from drift_train.report.sections import (
    browser_rows,
    learning_section,
    metrics_section,
    success_curves,
    turn_facts_section,
    weights_section,
)

__all__ = ["build_report"]


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
    rows = browser_rows(found, trajectories_per_file, max_trajectories)
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
<script>{ERRORS_SCRIPT}</script><style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1><p class="note">from {sources}; self-contained: nothing is loaded from the network.</p>
<h2 id="metrics">Metrics</h2>{metrics_section(found["metrics"])}
<h2 id="turn-facts">Per-turn facts</h2>{turn_facts_section(found)}
<h2 id="success-curves">Success within t turns</h2><div class="row">{success_curves(found["metrics"])}</div>
<h2 id="learning-curves">Learning curves</h2><div class="row">{learning_section(found)}</div>
<h2 id="weights">Weight diagnostics</h2>{weights_section(found["weighted"])}
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
<script>{SCRIPT}</script>
</body></html>
"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
