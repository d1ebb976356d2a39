"""The evaluation report: one self-contained HTML file, plots embedded as base64 PNG.

Sections: summary (one row per result, i.e. per backend when comparing), backend
comparison charts (several results), and per result: the mixture protocol (saying when
backgrounds were constructed), per-class table, figures per EBR, confusion between
classes, PR curves, and score timelines of a few mixtures with the ground truth drawn.
Plots use matplotlib's Agg backend through ``Figure`` objects (no pyplot global state).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ouie.core.labels import EVENT_LABELS
from ouie.eval.result import EvalResult
from ouie.eval.runner import NON_TARGET_ROW, SPEECH_ROW, MixtureTrace

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
"""


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


class _Plots:
    """Collects figures as PNG bytes; embeds them and optionally writes them to a folder."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.count = 0

    def img(self, figure: Figure, name: str) -> str:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        data = buffer.getvalue()
        self.count += 1
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{self.count:02d}_{name}.png").write_bytes(data)
        encoded = base64.b64encode(data).decode("ascii")
        return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{encoded}">'


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _title(result: EvalResult) -> str:
    fold = "all folds" if result.fold is None else f"fold {result.fold}"
    return f"{result.backend} ({result.model_id}), {fold}, mode {result.mode}"


def _summary_table(results: Sequence[EvalResult]) -> str:
    head = (
        "<tr><th>backend</th><th>files</th><th>event F1</th><th>ER</th><th>F1 macro</th>"
        "<th>segment F1</th><th>mAP (1 s)</th><th>PSDS</th><th>FA/h background</th>"
        "<th>FA/h speech</th><th>latency p50 / p95 (s)</th><th>clip acc.</th>"
        "<th>× real time</th></tr>"
    )
    rows = []
    for r in results:
        lat = r.latency_s
        latency = f"{_f(lat.p50, 2)} / {_f(lat.p95, 2)}" if lat else "–"
        rows.append(
            f"<tr><td>{html.escape(_title(r))}</td><td>{r.n_files}</td><td>{_f(r.event_f1)}</td>"
            f"<td>{_f(r.error_rate)}</td><td>{_f(r.event_f1_macro)}</td>"
            f"<td>{_f(r.segment_f1)}</td><td>{_f(r.mean_average_precision)}</td>"
            f"<td>{_f(r.psds)}</td><td>{_f(r.false_alarms_per_hour, 2)}</td>"
            f"<td>{_f(r.speech_false_alarms_per_hour, 2)}</td><td>{latency}</td>"
            f"<td>{_f(r.clip_accuracy)}</td><td>{_f(r.timing.x_realtime, 0)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _per_class_table(result: EvalResult) -> str:
    basis = (
        "event-based on mixtures (sed_eval, onset collar "
        f"{result.collar_s:g} s, offsets not scored); AP segment-based 1 s (sed_scores_eval)"
        if result.per_class_basis == "mixtures"
        else "clip level: a clip counts for a class when that label came out"
    )
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{c.n}</td><td>{_f(c.f1)}</td>"
        f"<td>{_f(c.precision)}</td><td>{_f(c.recall)}</td><td>{_f(c.error_rate)}</td>"
        f"<td>{_f(c.average_precision)}</td></tr>"
        for label, c in result.per_class.items()
    )
    return (
        f'<p class="note">Basis: {html.escape(basis)}.</p><table><tr><th>class</th><th>n</th>'
        "<th>F1</th><th>precision</th><th>recall</th><th>ER</th><th>AP</th></tr>"
        f"{rows}</table>"
    )


def _ebr_table(result: EvalResult) -> str:
    if not result.by_ebr:
        return ""
    rows = "".join(
        f"<tr><td>{e.ebr_db:+g} dB</td><td>{e.n}</td><td>{_f(e.event_f1)}</td>"
        f"<td>{_f(e.error_rate)}</td></tr>"
        for e in result.by_ebr
    )
    return (
        "<h3>By event-to-background ratio</h3><table><tr><th>EBR</th><th>events</th>"
        f"<th>event F1</th><th>ER</th></tr>{rows}</table>"
    )


def _protocol(result: EvalResult) -> str:
    m = result.mixtures
    if m is None:
        return '<p class="note">No mixtures in this run (mode clips).</p>'
    built = (
        f"<b>{m.constructed} of {m.n} mixtures use a constructed background</b>: non-target "
        "clips of the fold laid end to end with 0.5 s equal-power crossfades, over generated "
        "traffic-like noise (brown-noise rumble plus vehicle pass-bys), because the fold holds "
        "too little long street ambience."
        if m.constructed
        else "All mixtures use long ambience recordings."
    )
    files = ", ".join(html.escape(f) for f in m.ambience_files) or "none in this fold"
    return (
        f'<p class="note">Mixtures ({html.escape(m.protocol)}): {m.n} × {m.duration_s:g} s at '
        f"{m.rate} Hz, one target event each, EBR {', '.join(f'{e:+g}' for e in m.ebrs_db)} dB "
        f"(balanced), seed {m.seed}. {m.ambience} on long ambience ({files}). {built} "
        f"Skipped (no sounding part): {m.skipped_silent}.</p>"
    )


def _confusion_plot(result: EvalResult, plots: _Plots) -> str:
    table = result.confusion
    if not table:
        return ""
    target_rows = [label.value for label in EVENT_LABELS if label.value in table]
    rows = target_rows + [r for r in (NON_TARGET_ROW, SPEECH_ROW) if r in table]
    rows += sorted(set(table) - set(rows))
    found = {col for row in table.values() for col in row}
    cols: list[str] = [label.value for label in EVENT_LABELS if label.value in found]
    cols += sorted(found - set(cols))
    counts = np.array([[table[r].get(c, 0) for c in cols] for r in rows], dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = _figure(1.2 + 0.8 * len(cols), 1.0 + 0.45 * len(rows))
    ax = fig.add_subplot()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("detected")
    ax.set_ylabel("true")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if counts[i, j]:
                colour = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", color=colour)
    ax.set_title(f"confusion ({result.confusion_basis})")
    note = (
        '<p class="note">Rows: the true class of each clip (mixtures: of each true event); '
        "columns: every distinct label that came out (within the collar for mixtures), or "
        "<i>none</i>. A clip with two labels counts in two columns.</p>"
    )
    return note + plots.img(fig, f"confusion_{result.backend}")


def _pr_plot(results: Sequence[EvalResult], plots: _Plots) -> str:
    labels = [
        label.value for label in EVENT_LABELS if any(label.value in r.pr_curves for r in results)
    ]
    if not labels:
        return ""
    cols = min(4, len(labels))
    rows = -(-len(labels) // cols)
    fig = _figure(3.2 * cols, 2.8 * rows)
    for k, label in enumerate(labels):
        ax = fig.add_subplot(rows, cols, k + 1)
        for r in results:
            curve = r.pr_curves.get(label)
            if curve is not None:
                ap = r.per_class[label].average_precision if label in r.per_class else None
                ax.plot(curve.recall, curve.precision, label=f"{r.backend} AP {_f(ap, 2)}")
        ax.set_title(label)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.legend(fontsize="small")
    note = (
        '<p class="note">Segment-based (1 s) precision/recall over all thresholds '
        "(sed_scores_eval).</p>"
    )
    return note + plots.img(fig, "pr_curves")


def _timeline_plot(
    traces: Sequence[MixtureTrace], thresholds: dict[str, float], plots: _Plots
) -> str:
    if not traces:
        return ""
    fig = _figure(11, 2.2 * len(traces))
    for k, trace in enumerate(traces):
        ax = fig.add_subplot(len(traces), 1, k + 1)
        bounds, scores = trace.timeline.boundaries_s, trace.timeline.scores
        centres = (bounds[:-1] + bounds[1:]) / 2
        for truth in trace.truth:
            ax.axvspan(truth.onset_s, truth.offset_s, color="tab:green", alpha=0.25)
        shown = {trace.label} | {str(e.label) for e in trace.detected}
        for column, label in enumerate(EVENT_LABELS):
            if label.value in shown or (scores.size and float(scores[:, column].max()) >= 0.3):
                ax.step(centres, scores[:, column], where="mid", label=label.value, linewidth=1)
        if trace.label in thresholds:
            ax.axhline(thresholds[trace.label], color="grey", linestyle=":", linewidth=1)
        for event in trace.detected:
            ax.axvline(event.onset_s, color="tab:red", linewidth=1)
            ax.annotate(str(event.label), (event.onset_s, 1.0), fontsize="small", color="tab:red")
        ax.set_xlim(0, trace.duration_s)
        ax.set_ylim(0, 1.08)
        ax.set_ylabel("score")
        ax.set_title(
            f"{trace.mixture_id}: {trace.label} at {trace.ebr_db:+g} dB EBR, "
            f"{trace.background_kind} background",
            fontsize="medium",
        )
        ax.legend(fontsize="x-small", loc="upper right", ncol=4)
    ax.set_xlabel("time (s)")
    note = (
        '<p class="note">Green: ground truth. Red lines: detected events (onset). Dotted: '
        "the true class's threshold.</p>"
    )
    return note + plots.img(fig, "timelines")


def _comparison_plot(results: Sequence[EvalResult], plots: _Plots) -> str:
    if len(results) < 2:
        return ""
    names = [f"{r.backend}" + ("" if r.fold is None else f" f{r.fold}") for r in results]
    fig = _figure(11, 3.2)
    panels = [
        (
            "event F1 / clip accuracy / mAP",
            [
                ("event F1", [r.event_f1 for r in results]),
                ("clip acc.", [r.clip_accuracy for r in results]),
                ("mAP", [r.mean_average_precision for r in results]),
            ],
        ),
        (
            "false alarms per hour",
            [
                ("background", [r.false_alarms_per_hour for r in results]),
                ("speech", [r.speech_false_alarms_per_hour for r in results]),
            ],
        ),
        (
            "latency (s)",
            [
                ("p50", [r.latency_s.p50 if r.latency_s else None for r in results]),
                ("p95", [r.latency_s.p95 if r.latency_s else None for r in results]),
            ],
        ),
    ]
    x = np.arange(len(results))
    for k, (title, series) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        width = 0.8 / len(series)
        for s, (name, values) in enumerate(series):
            heights = [np.nan if v is None else v for v in values]
            ax.bar(x + s * width - 0.4 + width / 2, heights, width, label=name)
        ax.set_xticks(x, names, rotation=20)
        ax.set_title(title, fontsize="medium")
        ax.legend(fontsize="small")
    return plots.img(fig, "comparison")


def render_report(
    results: Sequence[EvalResult],
    traces: Sequence[MixtureTrace] = (),
    plots_dir: Path | None = None,
) -> str:
    plots = _Plots(plots_dir)
    first = results[0]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(first.versions.items()))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>ouie evaluation</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>ouie evaluation</h1>",
        f'<p class="note">Metrics: sed_eval (event-based, onset collar {first.collar_s:g} s, '
        "offsets not scored; segment-based 1 s), sed_scores_eval (segment AP, PSDS "
        f"{html.escape(', '.join(f'{k}={v:g}' for k, v in first.psds_params.items()))}). "
        f"Versions: {html.escape(versions)}. Created {html.escape(first.created_at)}.</p>",
        "<h2>Summary</h2>",
        _summary_table(results),
    ]
    if len(results) > 1:
        parts += ["<h2>Backend comparison</h2>", _comparison_plot(results, plots)]
        parts += ["<h2>PR curves</h2>", _pr_plot(results, plots)]
    for result in results:
        parts += [
            f"<h2>{html.escape(_title(result))}</h2>",
            _protocol(result),
            "<h3>Per class</h3>",
            _per_class_table(result),
            _ebr_table(result),
            "<h3>Confusion between classes</h3>",
            _confusion_plot(result, plots),
        ]
        if len(results) == 1:
            parts += ["<h3>PR curves</h3>", _pr_plot(results, plots)]
        if result.skipped_files:
            items = "".join(f"<li>{html.escape(s)}</li>" for s in result.skipped_files)
            parts.append(f"<h3>Skipped files</h3><ul>{items}</ul>")
    if traces:
        parts += [
            "<h2>Score timelines</h2>",
            _timeline_plot(traces, dict(first.thresholds), plots),
        ]
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part)


def write_report(
    results: Sequence[EvalResult],
    path: Path,
    traces: Sequence[MixtureTrace] = (),
    plots_dir: Path | None = None,
) -> None:
    if not results:
        raise ValueError("no results to report")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(results, traces, plots_dir), encoding="utf-8")
