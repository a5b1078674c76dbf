"""``drift report RUN_DIR [RUN_DIR ...] --out report.html``: one self-contained HTML page of run folders.

What the page shows is :func:`drift_train.report.build_report`'s docstring.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field

from drift_train.commands._args import DataclassArgumentParser

__all__ = ["ReportConfig", "build_parser", "main"]


def _build_report():
    from drift_train.report import build_report

    return build_report


# drift report's defaults are build_report's (its keyword defaults, read once here)
_DEFAULTS = {name: p.default for name, p in inspect.signature(_build_report()).parameters.items()}


@dataclass
class ReportConfig:
    """What ``drift report`` puts on its page.

    Args:
        run_dirs: output folders of quickstart / eval / benchmark runs
        out: the HTML file to write
        trajectories_per_file: trajectories of each file put in the browser (the diagnostics use all)
        max_trajectories: trajectories in the browser in all
        title: the page's title
    """

    run_dirs: list[str] = field(metadata={"positional": True})
    out: str = "report.html"
    trajectories_per_file: int = _DEFAULTS["trajectories_per_file"]
    max_trajectories: int = _DEFAULTS["max_trajectories"]
    title: str = _DEFAULTS["title"]


def build_parser() -> DataclassArgumentParser:
    """The ``drift report`` parser: one flag per :class:`ReportConfig` field (``run_dirs`` positional)."""
    from drift_train import report

    parser = DataclassArgumentParser(prog="drift report", description=report.__doc__)
    parser.add_dataclass(ReportConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``drift report RUN_DIR [RUN_DIR ...] --out report.html``."""
    parser = build_parser()
    args = parser.build(ReportConfig, parser.parse_args(argv))
    try:
        path = _build_report()(
            args.run_dirs,
            args.out,
            trajectories_per_file=args.trajectories_per_file,
            max_trajectories=args.max_trajectories,
            title=args.title,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"drift report: {err}", file=sys.stderr)
        return 2
    print(f"report -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
