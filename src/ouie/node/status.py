"""The node's heartbeat: a ``StatusMessage`` built from the pipeline's counters and the process.

Levels are per heartbeat interval (mean and max of the per-chunk RMS level in dBFS, and the
clipped fraction); counters (events, suppressions, dropped chunks, invalid samples) are
totals since the node started. The clock source comes from the kernel's time discipline
(``adjtimex``): a clock kept in sync by NTP/chrony/PTP reports ``ntp`` with its current
offset estimate; an undisciplined clock reports ``system``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psutil

from ouie.core.messages import LevelStats, StatusMessage
from ouie.core.timebase import utc_now
from ouie.node.pipeline import PipelineStats

log = logging.getLogger(__name__)

ClockSource = Literal["system", "ntp", "gps", "ptp", "simulated"]
FLOOR_DBFS = -200.0


@dataclass(frozen=True)
class ClockInfo:
    source: ClockSource
    offset_ms: float


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """``struct timex`` of Linux/glibc (``man 2 adjtimex``)."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


_TIME_ERROR = 5
_STA_UNSYNC = 0x0040
_STA_NANO = 0x2000


def read_clock() -> ClockInfo:
    """Whether the system clock is disciplined, and the discipline's offset estimate.

    Read-only ``adjtimex`` (modes = 0) needs no privileges. Anything but Linux, or any
    failure, reports an undisciplined ``system`` clock with offset 0.
    """
    if not sys.platform.startswith("linux"):
        return ClockInfo("system", 0.0)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        timex = _Timex()
        state = int(libc.adjtimex(ctypes.byref(timex)))
    except (OSError, AttributeError):
        return ClockInfo("system", 0.0)
    if state < 0 or state == _TIME_ERROR or timex.status & _STA_UNSYNC:
        return ClockInfo("system", 0.0)
    scale = 1e6 if timex.status & _STA_NANO else 1e3
    return ClockInfo("ntp", round(timex.offset / scale, 3))


class LevelWindow:
    """Level statistics of the audio since the last heartbeat, from the pipeline counters.

    ``observe`` is called after every ``push``; each push holds one capture chunk, so the
    change in the pipeline's level sum is that chunk's level.
    """

    def __init__(self) -> None:
        self._sum_db = 0.0
        self._chunks = 0
        self._samples = 0
        self._clipped = 0
        self._reset_window()

    def _reset_window(self) -> None:
        self.window_sum_db = 0.0
        self.window_chunks = 0
        self.window_max_dbfs = FLOOR_DBFS
        self.window_samples = 0
        self.window_clipped = 0

    def observe(self, stats: PipelineStats) -> None:
        chunks = stats.level_chunks - self._chunks
        if chunks > 0:
            delta_db = stats.level_sum_db - self._sum_db
            self.window_sum_db += delta_db
            self.window_chunks += chunks
            self.window_max_dbfs = max(self.window_max_dbfs, delta_db / chunks)
        self.window_samples += stats.samples_in - self._samples
        self.window_clipped += stats.clipped_samples - self._clipped
        self._sum_db, self._chunks = stats.level_sum_db, stats.level_chunks
        self._samples, self._clipped = stats.samples_in, stats.clipped_samples

    def take(self) -> LevelStats:
        """This interval's statistics; starts the next interval."""
        mean = self.window_sum_db / self.window_chunks if self.window_chunks else FLOOR_DBFS
        clipped = self.window_clipped / self.window_samples if self.window_samples else 0.0
        level = LevelStats(
            mean_dbfs=round(mean, 2),
            max_dbfs=round(self.window_max_dbfs, 2),
            clipped_fraction=min(1.0, max(0.0, clipped)),
        )
        self._reset_window()
        return level


class StatusBuilder:
    """Builds heartbeats for one node process."""

    def __init__(
        self,
        site: str,
        sensor_id: str,
        model_id: str,
        clock_source: ClockSource | None = None,
    ) -> None:
        self.site = site
        self.sensor_id = sensor_id
        self.model_id = model_id
        self.clock_source = clock_source  # None: ask the kernel each heartbeat
        self.started = time.monotonic()
        self.levels = LevelWindow()
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # first call primes the counter

    def clock(self) -> ClockInfo:
        if self.clock_source is not None:
            return ClockInfo(self.clock_source, 0.0)
        return read_clock()

    def build(
        self,
        stats: PipelineStats,
        spooled_events: int,
        now: datetime | None = None,
        rejected_configs: int = 0,
        onset_requests: tuple[int, int] = (0, 0),
    ) -> StatusMessage:
        clock = self.clock()
        return StatusMessage(
            site=self.site,
            sensor_id=self.sensor_id,
            sent_at=now or utc_now(),
            uptime_s=round(time.monotonic() - self.started, 3),
            cpu_percent=round(self._process.cpu_percent(None), 1),
            rss_mb=round(self._process.memory_info().rss / 2**20, 1),
            level=self.levels.take(),
            clock_source=clock.source,
            clock_offset_ms=clock.offset_ms,
            model_id=self.model_id,
            events_emitted=stats.events_emitted,
            speech_suppressions=stats.speech_suppressions,
            dropped_chunks=stats.dropped_chunks,
            invalid_samples=stats.invalid_samples,
            spooled_events=spooled_events,
            rejected_configs=rejected_configs,
            onset_requests_answered=onset_requests[0],
            onset_requests_refused=onset_requests[1],
        )
