"""Sample clock to wall clock: event times come from sample counts, not from when code ran."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC)


class SampleClock:
    """Maps a sample index of a stream to an absolute UTC time.

    ``origin`` is the UTC time of sample 0 (taken once, when capture starts, and corrected
    by the clock offset the node reports). Sample indices then give sub-millisecond
    resolution regardless of scheduling jitter in the processing loop.
    """

    def __init__(self, sample_rate: int, origin: datetime, offset_s: float = 0.0) -> None:
        if origin.tzinfo is None:
            raise ValueError("SampleClock origin must be timezone-aware (UTC)")
        self.sample_rate = sample_rate
        self.origin = origin.astimezone(UTC)
        self.offset_s = offset_s

    def time_of(self, sample_index: int | float) -> datetime:
        seconds = float(sample_index) / self.sample_rate + self.offset_s
        return self.origin + timedelta(seconds=seconds)

    def seconds_of(self, sample_index: int | float) -> float:
        return float(sample_index) / self.sample_rate
