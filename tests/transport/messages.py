"""Small valid messages for transport tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, LevelStats, StatusMessage

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def event(sequence: int, site: str = "s1", sensor: str = "n1") -> EventMessage:
    onset = T0 + timedelta(seconds=sequence)
    return EventMessage(
        site=site,
        sensor_id=sensor,
        label=EventLabel.GUNSHOT,
        onset=onset,
        offset=onset + timedelta(milliseconds=300),
        peak_score=0.9,
        level_dbfs=-12.0,
        model_id="test",
        sequence=sequence,
    )


def status(n: int = 0, site: str = "s1", sensor: str = "n1") -> StatusMessage:
    return StatusMessage(
        site=site,
        sensor_id=sensor,
        sent_at=T0 + timedelta(seconds=n),
        uptime_s=float(n),
        cpu_percent=1.0,
        rss_mb=50.0,
        level=LevelStats(mean_dbfs=-40.0, max_dbfs=-20.0, clipped_fraction=0.0),
        clock_source="system",
        clock_offset_ms=0.0,
        model_id="test",
        events_emitted=0,
        speech_suppressions=0,
        dropped_chunks=0,
        invalid_samples=0,
        spooled_events=0,
    )
