"""The ``ouie eval --split source`` summary: table rows for the console, a minimal HTML page.

One row per source (evaluated or skipped) and a pooled row; the same cells in both.
"""

from __future__ import annotations

import html

from ouie.eval.clip_recall import FALSE_CLIP_RATES, PER_CLASS_RATE
from ouie.eval.report import STYLE
from ouie.eval.source_result import (
    ClipRecall,
    DeployedScores,
    SourceMixtures,
    SourceSplitResult,
)

HEADERS = (
    "source",
    "clips T/N",
    "model",
    "R@1%",
    "R@2%",
    "R@5%",
    "R@2% one t",
    "found (deployed)",
    "non-target w/ event",
    "FA/h bg",
    "speech events",
    "mix F1 -6/0/+6",
)


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _recall_cells(figures: ClipRecall | None) -> list[str]:
    """Per-class operating points at each rate, then the single threshold's 2 % point."""
    if figures is None:
        return ["–"] * (len(FALSE_CLIP_RATES) + 1)
    mark = "" if figures.basis == "own" else "*"
    cells = [f"{_f(p.recall)}{mark if p.recall is not None else ''}" for p in figures.points]
    single = next(
        (p for p in figures.single_threshold.points if p.max_false_clip_rate == PER_CLASS_RATE),
        None,
    )
    recall = None if single is None else single.recall
    cells.append(f"{_f(recall)}{mark if recall is not None else ''}")
    return cells


def pooled_thresholds_text(figures: ClipRecall | None) -> str:
    """The pooled per-class thresholds at the 2 % point, ``label t`` pairs."""
    point = (
        None
        if figures is None
        else next((p for p in figures.points if p.max_false_clip_rate == PER_CLASS_RATE), None)
    )
    if point is None:
        return "–"
    pairs = ", ".join(f"{label} {_f(t, 4)}" for label, t in point.thresholds.items())
    return f"q = {point.per_label_false_rate:.4f}: {pairs}"


def balanced_text(figures: ClipRecall | None) -> str:
    """Balanced recall at each rate, ``a / b / c``, and the cells it averages."""
    if figures is None or not figures.points:
        return "–"
    values = " / ".join(_f(p.balanced_recall) for p in figures.points)
    return f"{values} ({figures.points[0].balanced_cells} source × label cells)"


def _deployed_cells(deployed: DeployedScores | None) -> list[str]:
    if deployed is None:
        return ["–", "–", "–", "–"]
    return [
        f"{deployed.targets_found}/{deployed.targets}",
        f"{deployed.non_target_clips_with_event}/{deployed.non_target_clips}",
        _f(deployed.false_alarms_per_hour, 2),
        f"{deployed.speech_events} ({deployed.speech_clips_with_event}/{deployed.speech_clips})",
    ]


def _mixture_cell(mixtures: SourceMixtures | None) -> str:
    if mixtures is None or not mixtures.n:
        return "–"
    cells = "/".join(_f(e.event_f1, 2) for e in mixtures.by_ebr)
    if mixtures.data_ambience_background:  # backgrounds a trained model may have heard
        cells += f" ({mixtures.data_ambience_background} on data ambience)"
    if mixtures.generated_background:
        cells += f" ({mixtures.generated_background} on generated noise)"
    return cells


def summary_rows(result: SourceSplitResult) -> list[tuple[str, ...]]:
    """One row per source and the pooled row, cells as in ``HEADERS``."""
    rows: list[tuple[str, ...]] = []
    for block in result.sources:
        clips = f"{block.n_targets}/{block.n_non_targets}"
        if block.status == "skipped":
            rows.append(
                (block.source, clips, f"skipped: {block.skip_reason}", *["–"] * (len(HEADERS) - 3))
            )
            continue
        model = block.build or block.model_id or "–"
        rows.append(
            (
                block.source,
                clips,
                model,
                *_recall_cells(block.clip_recall),
                *_deployed_cells(block.deployed),
                _mixture_cell(block.mixtures),
            )
        )
    o = result.overall
    rows.append(
        (
            f"pooled ({len(o.sources_evaluated)} sources)",
            f"{o.n_targets}/{o.n_non_targets}",
            result.backend,
            *_recall_cells(o.clip_recall),
            *_deployed_cells(o.deployed),
            _mixture_cell(o.mixtures),
        )
    )
    street = o.street_clip_recall
    if street is not None:  # the same targets against street non-targets only
        n_street = street.points[0].n_non_targets if street.points else 0
        rows.append(
            (
                "pooled, street non-targets",
                f"{o.n_targets}/{n_street}",
                result.backend,
                *_recall_cells(street),
                *["–"] * (len(HEADERS) - 3 - len(_recall_cells(street))),
            )
        )
    return rows


def render_source_report(result: SourceSplitResult) -> str:
    """A self-contained HTML page: the summary table and the pooled thresholds."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in summary_rows(result)
    )
    thresholds = pooled_thresholds_text(result.overall.clip_recall)
    return "\n".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<title>ouie evaluation: leave one source out</title>",
            f"<style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(result.backend)}: leave one source out</h1>",
            '<p class="note">Recall at a false-clip rate of at most 1, 2 and 5 % (clip level, '
            "threshold-free, a threshold per class calibrated on its own false clips; "
            "* at the pooled thresholds where a source lacks targets or non-targets), the "
            "same at 2 % with one threshold for every class, then the deployed thresholds "
            "through the node's event logic, then mixture event F1 at EBR −6/0/+6 dB. "
            "Definitions: docs/eval.md, “Source-disjoint validation”. Pooled per-class "
            f"thresholds at 2 %: {html.escape(thresholds)}. "
            f"Created {html.escape(result.created_at)}.</p>",
            f"<table><tr>{head}</tr>{body}</table>",
            "</body></html>",
        ]
    )
