"""``drift report``: built from real rollouts of the tiny model, opened in a real headless Chromium.

The run folder is made here: the tiny model rolls out in the parity env (solved and unsolved episodes,
distinct returns), the rollouts get DRIFT weights, and an evaluation file gets its metrics. The report of
that folder is then rendered by Chromium (``--dump-dom``: the DOM after the page's scripts ran); the page
marks ``data-report-status="ok"`` at the end of its script and counts script errors, which a broken copy
of the page shows the check catches.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from parity_env import register_parity_env

from drift_train.cli import main as drift_main
from drift_train.evaluate import multiturn_metrics
from drift_train.policies import SamplingParams, make_policy
from drift_train.report import build_report, svg_chart
from drift_train.rollout import RolloutConfig, rollout
from drift_train.trajectories import write_trajectories
from drift_train.weights import add_weights

ENV_ID = "drift-test/ReportParity-v0"
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as the quickstart leaves one: weighted rollouts, an evaluation's trajectories and metrics."""
    register_parity_env(ENV_ID)
    out = tmp_path_factory.mktemp("report-run")
    policy = make_policy("hf", str(tiny_model_dir), batch_size=64)
    try:
        records, _ = rollout(
            policy,
            RolloutConfig(
                env_id=ENV_ID,
                env_kwargs={"max_turns": 3},
                num_tasks=6,
                samples=4,
                seed=3,
                sampling=SamplingParams(temperature=1.0, max_new_tokens=6),
            ),
        )
        evals, _ = rollout(
            policy,
            RolloutConfig(
                env_id=ENV_ID,
                env_kwargs={"max_turns": 3},
                num_tasks=8,
                samples=1,
                task_offset=20,
                seed=4,
                sampling=SamplingParams(temperature=1.0, max_new_tokens=6),
            ),
        )
    finally:
        policy.close()
    weighted, _ = add_weights(records)
    write_trajectories(weighted, out / "rollouts.weighted.jsonl")
    write_trajectories(evals, out / "eval_tiny.jsonl")
    (out / "eval_tiny.json").write_text(json.dumps(multiturn_metrics(evals, 3)))
    return out


def _dump_dom(html_path: Path, tmp_path: Path, fragment: str = "") -> tuple[str, str]:
    """The DOM Chromium holds after loading ``html_path`` (scripts run), and its log on stderr."""
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            html_path.resolve().as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def _listed(dom: str) -> str:
    """The trajectory list as the script filled it (the script's own source also holds the markup)."""
    return dom.split('id="traj-list">', 1)[1].split('<h2 id="figures"', 1)[0]


def _attr(dom: str, name: str) -> str | None:
    match = re.search(rf'<html[^>]*\s{name}="([^"]*)"', dom)
    return match.group(1) if match else None


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    page = build_report([run_dir], tmp_path / "report.html")
    dom, log = _dump_dom(page, tmp_path)
    assert _attr(dom, "data-report-status") == "ok", "the page's script did not run to its end"
    assert _attr(dom, "data-script-errors") == "0"
    assert "Uncaught" not in log, log[-2000:]
    # the metrics table, with the evaluation's row and its clustered s.e.
    table = dom[dom.index('id="metrics-table"') :]
    table = table[: table.index("</table>")]
    assert "eval_tiny" in table and "success@3" in table and "±" in table
    # plots: success-within-t curves and the weight diagnostics, as inline SVG with drawn marks
    charts = re.findall(r'<svg class="chart".*?</svg>', dom, flags=re.S)
    assert len(charts) >= 4 and any("<polyline" in c for c in charts) and any("<circle" in c for c in charts)
    assert "success within t turns" in dom and "ESS / K per group" in dom
    # the browser: rows drawn by the script (24 rollouts + 8 evaluations, all under the 50 shown)
    assert _listed(dom).count('<details class="traj">') == 32
    assert "32 of 32 trajectories match" in dom
    # self-contained: nothing to fetch
    assert not re.search(r'(src|href)="(https?:)?//', dom)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium)")
def test_browser_filters_in_chromium(run_dir: Path, tmp_path: Path) -> None:
    page = build_report([run_dir], tmp_path / "report.html")
    records = [
        json.loads(line)
        for name in ("rollouts.weighted.jsonl", "eval_tiny.jsonl")
        for line in (run_dir / name).read_text().splitlines()
    ]
    unsolved = sum(r["t_star"] is None for r in records)
    assert 0 < unsolved < len(records)
    dom, _ = _dump_dom(page, tmp_path, "#outcome=unsolved")
    assert f"{unsolved} of {len(records)} trajectories match" in dom
    assert _listed(dom).count('<details class="traj">') == unsolved and 'class="ok"' not in _listed(dom)
    heavy = sum(1 for r in records if r.get("weight") is not None and r["weight"] >= 1.5)
    dom, _ = _dump_dom(page, tmp_path, "#wmin=1.5")
    assert f"{heavy} of {len(records)} trajectories match" in dom


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium)")
def test_a_script_error_is_caught(run_dir: Path, tmp_path: Path) -> None:
    page = build_report([run_dir], tmp_path / "report.html")
    broken = tmp_path / "broken.html"
    broken.write_text(
        page.read_text().replace("const data = JSON.parse(", "const data = JSON.parse(undefinedThing + ")
    )
    dom, _ = _dump_dom(broken, tmp_path)
    assert _attr(dom, "data-report-status") == "loading"
    assert _attr(dom, "data-script-errors") == "1"


def test_report_cli_and_self_contained_html(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "r.html"
    assert drift_main(["report", str(run_dir), "--out", str(out)]) == 0
    text = out.read_text()
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    data = json.loads(re.search(r'id="trajectory-data">(.*?)</script>', text, flags=re.S).group(1))
    assert len(data) == 32
    weighted = [r for r in data if r["weight"] is not None]
    assert len(weighted) == 24 and all(len(r["turns"]) >= 1 for r in data)
    first = next(r for r in data if len(r["turns"]) > 1)
    assert first["turns"][0]["feedback"] == "Wrong parity, try again." and first["turns"][0]["verifier"] == 0
    assert drift_main(["report", str(run_dir), "--out", str(out), "--max-trajectories", "10"]) == 0
    capped = json.loads(
        re.search(r'id="trajectory-data">(.*?)</script>', out.read_text(), flags=re.S).group(1)
    )
    assert len(capped) == 10 and all(r["weight"] is not None for r in capped)  # weighted rollouts come first
    assert drift_main(["report", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_svg_chart_places_points_on_the_axes() -> None:
    svg = svg_chart(
        [{"label": "a", "x": [1, 2, 3], "y": [0.0, 0.5, 1.0]}],
        title="t",
        xlabel="x",
        ylabel="y",
        y_range=(0, 1),
        width=300,
        height=200,
    )
    ys = [float(v) for v in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert ys[0] > ys[1] > ys[2]  # higher values are drawn higher (smaller y)
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2])
    assert svg_chart([{"label": "empty", "x": [], "y": []}], title="t", xlabel="x", ylabel="y") == ""


def test_leaderboard_and_trainer_logs_are_read(run_dir: Path, tmp_path: Path) -> None:
    # a leaderboard.json as benchmarks/leaderboard.py writes it, and a trainer_state.json beside a model
    records = [json.loads(line) for line in (run_dir / "eval_tiny.jsonl").read_text().splitlines()]
    board = tmp_path / "board"
    board.mkdir()
    metrics = multiturn_metrics(records, 3)
    (board / "leaderboard.json").write_text(
        json.dumps(
            [
                {"model": "tiny-a", "env": ENV_ID, "env_kwargs": {}, "metrics": metrics, "success_at_T": 0.5},
                {"model": "tiny-b", "env": ENV_ID, "env_kwargs": {}, "metrics": metrics, "success_at_T": 0.5},
            ]
        )
    )
    (board / "model_x").mkdir()
    (board / "model_x" / "trainer_state.json").write_text(
        json.dumps(
            {
                "log_history": [
                    {"step": 1, "loss": 0.9},
                    {"step": 2, "loss": 0.5},
                    {"train_runtime": 1.0, "step": 2},
                ]
            }
        )
    )
    text = build_report([board], tmp_path / "b.html").read_text()
    start = text.index("id='metrics-table'")
    table = text[start : text.index("</table>", start)]
    assert f"tiny-a @ {ENV_ID}" in table and f"tiny-b @ {ENV_ID}" in table
    assert "training loss per step" in text
    from drift_train.evaluate import format_metric

    assert format_metric(metrics["success_at"]["3"]) in table
