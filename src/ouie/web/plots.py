"""Small server-side SVG plots: no JavaScript, no plotting library, readable at 1366×768.

Every plot is an ``<svg role="img">`` with a ``<title>`` and per-mark ``<title>`` tooltips,
so a screen reader and a mouse both get the numbers. Colours come from ``LABEL_COLOURS``,
shared with the map so a class looks the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

from ouie.core.labels import EVENT_LABELS

LABEL_COLOURS: dict[str, str] = {
    "gunshot": "#c0392b",
    "explosion": "#7f3b08",
    "scream": "#8e44ad",
    "glass_breaking": "#138d90",
    "vehicle_crash": "#d35400",
    "siren": "#1f5fa8",
    "car_alarm": "#8a7d00",
    "spray_can": "#2e8b3a",
}
AXIS = "#4a4f57"
GRID = "#d5d9de"
TEXT = "#1d2228"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    base = 10**exponent
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * base:
            return float(step * base)
    return float(10 * base)


def _ticks(maximum: float, count: int = 4) -> list[float]:
    return [maximum * i / count for i in range(count + 1)]


def _count_axis(maximum: float) -> float:
    """Top of an axis of counts: four whole-number steps of 1, 2, 5, 10, 20, 50… ."""
    step = 1
    while step * 4 < maximum:
        for factor in (2, 2.5, 2):
            step = int(step * factor)
            if step * 4 >= maximum:
                break
    return float(step * 4)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def stacked_bars(
    categories: Sequence[str],
    series: Mapping[str, Sequence[int]],
    names: Mapping[str, str],
    title: str,
    width: int = 640,
    height: int = 240,
) -> Markup:
    """Stacked vertical bars: one bar per category (a day), one colour per series (a class)."""
    left, right, top, bottom = 36, 150, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(series[k][i] for k in series) for i in range(len(categories))]
    ymax = _count_axis(max(totals, default=0))
    parts = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in _ticks(ymax):
        y = top + plot_h - plot_h * tick / ymax
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{AXIS}">{_fmt(tick)}</text>'
        )
    n = max(len(categories), 1)
    slot = plot_w / n
    bar_w = max(2.0, min(28.0, slot * 0.7))
    label_every = max(1, math.ceil(n / 10))
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for key in series:
            value = series[key][i]
            if value <= 0:
                continue
            h = plot_h * value / ymax
            y -= h
            colour = LABEL_COLOURS.get(key, "#666")
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(category)} — {escape(names.get(key, key))}: '
                f"{value}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{left + slot * i + slot / 2:.1f}" y="{top + plot_h + 16}" '
                f'text-anchor="middle" font-size="11" fill="{AXIS}">{escape(category[5:])}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{AXIS}"/>'
    )
    legend_y = top + 4
    for key in series:
        if not any(series[key]):
            continue
        colour = LABEL_COLOURS.get(key, "#666")
        parts.append(
            f'<rect x="{width - right + 14}" y="{legend_y}" width="12" height="12" '
            f'fill="{colour}"/><text x="{width - right + 32}" y="{legend_y + 10}" '
            f'font-size="12" fill="{TEXT}">{escape(names.get(key, key))} '
            f"({sum(series[key])})</text>"
        )
        legend_y += 18
    parts.append("</svg>")
    return Markup("".join(parts))


def precision_bars(
    rows: Sequence[tuple[str, float | None, int]],
    title: str,
    colours: Mapping[str, str] | None = None,
    width: int = 640,
    row_h: int = 22,
) -> Markup:
    """Horizontal bars of precision (0–100 %) with the number of judged incidents."""
    left, right, top = 170, 96, 20
    plot_w = width - left - right
    height = top + row_h * max(len(rows), 1) + 24
    parts = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for pct in (0, 25, 50, 75, 100):
        x = left + plot_w * pct / 100
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 20}" stroke="{GRID}"/>'
            f'<text x="{x:.1f}" y="{top - 8}" text-anchor="middle" font-size="11" '
            f'fill="{AXIS}">{pct} %</text>'
        )
    for i, (name, precision, n) in enumerate(rows):
        y = top + i * row_h
        parts.append(
            f'<text x="{left - 8}" y="{y + row_h * 0.65:.1f}" text-anchor="end" font-size="12" '
            f'fill="{TEXT}">{escape(name)}</text>'
        )
        colour = (colours or {}).get(name, "#1f5fa8")
        if precision is None:
            parts.append(
                f'<text x="{left + 4}" y="{y + row_h * 0.65:.1f}" font-size="12" '
                f'fill="{AXIS}">— (n = {n})</text>'
            )
            continue
        w = plot_w * precision
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}">'
            f"<title>{escape(name)}: {precision * 100:.0f} % (n = {n})</title></rect>"
            f'<text x="{left + plot_w + 6}" y="{y + row_h * 0.65:.1f}" font-size="12" '
            f'fill="{TEXT}">{precision * 100:.0f} % · n={n}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


#: Response-time buckets (upper bounds in seconds) and their labels.
RESPONSE_BUCKETS: tuple[tuple[float, str], ...] = (
    (30, "< 30 s"),
    (60, "30 s–1 min"),
    (120, "1–2 min"),
    (300, "2–5 min"),
    (900, "5–15 min"),
    (3600, "15–60 min"),
    (math.inf, "> 1 h"),
)


def response_histogram(
    series: Mapping[str, Sequence[float]], title: str, width: int = 640, height: int = 220
) -> Markup:
    """Side-by-side histograms of durations (seconds) in human buckets, one colour per series."""
    colours = ("#1f5fa8", "#d35400", "#2e8b3a")
    left, right, top, bottom = 36, 10, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    counts: dict[str, list[int]] = {}
    for key, values in series.items():
        row = [0] * len(RESPONSE_BUCKETS)
        for value in values:
            for i, (upper, _) in enumerate(RESPONSE_BUCKETS):
                if value < upper:
                    row[i] += 1
                    break
        counts[key] = row
    ymax = _count_axis(max((max(r) for r in counts.values() if r), default=0))
    parts = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in _ticks(ymax):
        y = top + plot_h - plot_h * tick / ymax
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{AXIS}">{_fmt(tick)}</text>'
        )
    slot = plot_w / len(RESPONSE_BUCKETS)
    k = max(len(counts), 1)
    bar_w = slot * 0.8 / k
    for s, (key, row) in enumerate(counts.items()):
        colour = colours[s % len(colours)]
        for i, value in enumerate(row):
            h = plot_h * value / ymax
            x = left + slot * i + slot * 0.1 + bar_w * s
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(key)} '
                f"{escape(RESPONSE_BUCKETS[i][1])}: {value}</title></rect>"
            )
        parts.append(
            f'<rect x="{left + 8 + 190 * s}" y="6" width="12" height="12" fill="{colour}"/>'
            f'<text x="{left + 26 + 190 * s}" y="16" font-size="12" fill="{TEXT}">'
            f"{escape(key)}</text>"
        )
    for i, (_, name) in enumerate(RESPONSE_BUCKETS):
        parts.append(
            f'<text x="{left + slot * i + slot / 2:.1f}" y="{top + plot_h + 16}" '
            f'text-anchor="middle" font-size="11" fill="{AXIS}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(
    values: Sequence[float],
    width: int = 160,
    height: int = 32,
    colour: str = "#1f5fa8",
    ymax: float = 1.0,
    title: str = "",
) -> Markup:
    """A line of values in [0, ymax] (scores), newest on the right."""
    parts = [
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    parts.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f4f6f8" rx="3"/>')
    if values:
        n = len(values)
        step = width / max(n - 1, 1)
        points = " ".join(
            f"{i * step:.1f},{height - 2 - (height - 4) * min(max(v, 0.0), ymax) / ymax:.1f}"
            for i, v in enumerate(values)
        )
        if n == 1:
            points = f"0,{points.split(',')[1]} {width},{points.split(',')[1]}"
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def label_order() -> list[str]:
    return [label.value for label in EVENT_LABELS]
