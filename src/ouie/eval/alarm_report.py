"""The ``ouie eval tune --split source`` console table."""

from __future__ import annotations

from rich.table import Table

from ouie.eval.alarm_result import AlarmTuneResult, LabelAlarms

HEADERS = (
    "label",
    "threshold",
    "false alarms/day",
    "events",
    "on speech",
    "targets found",
    "note",
)


def _targets(block: LabelAlarms) -> str:
    t = block.targets
    if t is None:
        return "–"
    recall = "–" if t.recall is None else f"{t.recall:.3f}"
    return f"{t.found}/{t.n} ({recall})"


def label_rows(result: AlarmTuneResult) -> list[tuple[str, ...]]:
    """One row per label, cells as in ``HEADERS``."""
    top = result.grid[-1]
    rows: list[tuple[str, ...]] = []
    for block in result.labels:
        note = "" if block.met else f"no grid value meets the rate: {top:g} written"
        rows.append(
            (
                block.label,
                f"{block.threshold:.2f}",
                f"{block.false_alarms_per_day:.2f}",
                str(block.events),
                str(block.speech_events),
                _targets(block),
                note,
            )
        )
    return rows


def alarm_table(result: AlarmTuneResult) -> Table:
    title = (
        f"{result.backend} ({result.model_family}): lowest threshold with at most "
        f"{result.max_false_per_day:g} false alarms per day per label, on "
        f"{result.measured_hours:.2f} h of non-target audio ({result.measured_clips} clips, "
        f"{result.speech_hours:.2f} h speech) from {len(result.sources_measured)} sources, "
        f"scored out of source; one event = {result.resolution_per_day:.1f} per day"
    )
    skipped = "; ".join(
        f"{s.source} ({s.non_target_clips} non-target, {s.target_clips} target clips)"
        for s in result.skipped_sources
    )
    table = Table(
        *HEADERS,
        title=title,
        title_justify="left",
        caption=f"skipped (no build excludes them): {skipped}" if skipped else None,
        caption_justify="left",
    )
    for row in label_rows(result):
        table.add_row(*row)
    return table
