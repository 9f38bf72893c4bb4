"""Small line charts drawn in Python as inline SVG, for a method page's search curves: they
need no interaction, so the page shows them without its script, byte for byte the same
for the same store."""
from __future__ import annotations

import math
from html import escape
from typing import Mapping, Sequence

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
"""Matplotlib's default colours, as the report's PNG figures use them."""
WIDTH, HEIGHT = 320.0, 190.0
LEFT, RIGHT, TOP, BOTTOM = 48.0, 10.0, 8.0, 34.0


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    if high <= low:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(s * power for s in (1, 2, 5, 10) if s * power >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step - 1e-9)) + 1)]


def _tick(value: float) -> str:
    return f"{value:.4g}"


def _f(value: float) -> str:
    return f"{value:.1f}"


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float]]], x_label: str, y_label: str,
               y_range: tuple[float, float] | None = None, steps: bool = False) -> str:
    """A figure with one line per series (a dot where a series has one point) and its legend;
    empty when no series has a point. ``y_range``: the axis' extent where the values have one
    (a share's is 0 to 1), else the values'. ``steps``: a value holds until the next (a best so far)."""
    series = {name: [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
              for name, points in series.items()}
    series = {name: points for name, points in series.items() if points}
    if not series:
        return ""
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs)), nice_ticks(*(y_range or (min(ys), max(ys))))
    x_low, x_high, y_low, y_high = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * (WIDTH - LEFT - RIGHT)

    def py(y: float) -> float:
        return HEIGHT - BOTTOM - (y - y_low) / (y_high - y_low) * (HEIGHT - TOP - BOTTOM)

    parts = [f'<line class="axis" x1="{_f(LEFT)}" y1="{_f(HEIGHT - BOTTOM)}" x2="{_f(WIDTH - RIGHT)}" '
             f'y2="{_f(HEIGHT - BOTTOM)}"/>',
             f'<line class="axis" x1="{_f(LEFT)}" y1="{_f(TOP)}" x2="{_f(LEFT)}" y2="{_f(HEIGHT - BOTTOM)}"/>']
    parts += [f'<text x="{_f(px(x))}" y="{_f(HEIGHT - BOTTOM + 13)}" text-anchor="middle">{_tick(x)}</text>'
              for x in x_ticks]
    parts += [f'<line class="grid" x1="{_f(LEFT)}" y1="{_f(py(y))}" x2="{_f(WIDTH - RIGHT)}" y2="{_f(py(y))}"/>'
              f'<text x="{_f(LEFT - 4)}" y="{_f(py(y) + 4)}" text-anchor="end">{_tick(y)}</text>' for y in y_ticks]
    parts.append(f'<text x="{_f((LEFT + WIDTH - RIGHT) / 2)}" y="{_f(HEIGHT - 4)}" text-anchor="middle">'
                 f'{escape(x_label)}</text>')
    parts.append(f'<text transform="translate(11 {_f((TOP + HEIGHT - BOTTOM) / 2)}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    legend = []
    for i, (name, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        if len(points) == 1:
            parts.append(f'<circle cx="{_f(px(points[0][0]))}" cy="{_f(py(points[0][1]))}" r="3" fill="{colour}"/>')
        else:
            if steps:
                points = [corner for (x, y), (next_x, _) in zip(points, points[1:]) for corner in ((x, y), (next_x, y))] \
                    + points[-1:]
            coords = " ".join(f"{_f(px(x))},{_f(py(y))}" for x, y in points)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        legend.append(f'<li><span class="swatch" style="background:{colour}"></span>{escape(name)}</li>')
    return (f'<figure class="curve"><figcaption>{escape(title)}</figcaption>'
            f'<svg class="curve-plot" width="{_f(WIDTH)}" height="{_f(HEIGHT)}" viewBox="0 0 {_f(WIDTH)} {_f(HEIGHT)}" '
            f'font-family="sans-serif" font-size="10" role="img" aria-label="{escape(title)}">'
            + "".join(parts) + "</svg>"
            + (f'<ul class="legend">{"".join(legend)}</ul>' if len(series) > 1 else "") + "</figure>")
