"""Inline SVG charts for the report: lines with ±s.e. bands or error bars, scatters, log x, reference lines.

Plain strings, no plotting library: the page stays one self-contained file that any browser draws.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

__all__ = ["PALETTE", "svg_chart"]

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
