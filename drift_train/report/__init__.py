"""One self-contained HTML page of a run's evidence (the command: ``drift report RUN_DIR ... --out report.html``,
:mod:`drift_train.commands.report`).

Reads what ``drift quickstart``, ``drift eval``, ``benchmarks/leaderboard.py``, ``benchmarks/drift_vs_online_rl.py``
and ``benchmarks/weight_sweeps.py`` write (any mix, found by content under each folder) and shows:

* **metrics** — every evaluation (``eval_*.json``, ``metrics.json``, ``leaderboard.json``; trajectory files
  without a metrics file are evaluated here): success@1..T, correction rate, non-repetition and format errors,
  each ± its standard error clustered by task (:mod:`drift_train.evaluate`);
* **per-turn facts** — for each trajectory file, per turn: episodes that reached it, correct, format errors,
  undecided verdicts, repeated answers, solved by then (:mod:`drift_train.facts`, the one reading of a
  record that eval, weights and the rollout summary share);
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

The package, one job per module: :mod:`~drift_train.report.collect` finds a run's files by content,
:mod:`~drift_train.report.svg` draws the inline charts, :mod:`~drift_train.report.sections` turns what was
found into the page's HTML sections, :mod:`~drift_train.report.assets` holds the page's CSS and script,
and :mod:`~drift_train.report.page` puts them together (:func:`build_report`).
"""

from drift_train.report.collect import collect
from drift_train.report.page import build_report
from drift_train.report.svg import svg_chart

__all__ = ["build_report", "collect", "svg_chart"]
