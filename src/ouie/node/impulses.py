"""Impulse onsets: when a loud, sudden sound began at this sensor, kept for the hub to ask.

A shot that two sensors classify is heard by more: at 65-95 m the bang still stands 25 dB
above the street, but its spectrum, filtered by air and doubled by the pavement's echo, no
longer scores as a gunshot (docs/twin.md, session 21). Gunshot-location systems get their
third and fourth sensor from such arrivals: every sensor notes impulse onsets, and the
server asks for them around a shot it wants to locate. This module is the noting.

On the 1 ms energy envelope of the stream (the envelope ``ouie.node.onset`` refines event
onsets on, so both kinds of onset carry the same bias, which cancels in time differences),
an impulse is a millisecond at least ``min_prominence_db`` above the background (the 20th
percentile of the second before). Its onset is placed by ``refine_onset``'s rule: the
start of the rise to the loudest millisecond of the next 50 ms, where the envelope first
exceeds the background by a quarter of the peak's excess. Its level is the RMS of the 50 ms
from the onset. A new impulse is looked for once the envelope has fallen back to within
half the prominence of the background (the one it rose from, or the current one if the
street has grown louder since).

What is kept: ``ImpulseOnset`` (a sample index, a level, a prominence), for ``keep_s`` of
stream time, at most ``MAX_KEPT``; no audio, no spectrum, no label. Nothing leaves the
node except in answer to a signed, bounded request (``ouie.node.runtime``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ouie.node.onset import ENVELOPE_S, FLOOR_DB

FloatArray = npt.NDArray[np.float32]

#: The background is the 20th percentile of the envelope over this much before a block.
BACKGROUND_S = 1.0
BACKGROUND_PERCENTILE = 20.0
#: Where an impulse peaks: the loudest millisecond this long after the first one over the
#: prominence (a shot's peak comes within a few ms; a crash's within tens).
PEAK_S = 0.05
#: How far before that first millisecond the walk back to the rise's start may go.
RISE_BACK_S = 0.1
LEVEL_S = 0.05
RISE_FRACTION = 0.25
#: A background quieter than this is a digital silence (a file's padding, a capture gap),
#: not a street: nothing is looked for against it (every first sound would be an impulse).
MIN_BACKGROUND_DBFS = -90.0
#: An onset this close to a capture gap is the gap's edge, not a sound.
GAP_MARGIN_S = 0.05
MAX_KEPT = 4096


@dataclass(frozen=True)
class ImpulseOnset:
    """One impulse: where it began (seconds of stream time), how loud, how sudden."""

    onset_s: float
    level_dbfs: float
    prominence_db: float


class ImpulseLog:
    """Streaming impulse-onset detector and its bounded memory (module docstring)."""

    def __init__(
        self, sample_rate: int, min_prominence_db: float = 15.0, keep_s: float = 30.0
    ) -> None:
        self.rate = sample_rate
        self.step = max(1, round(sample_rate * ENVELOPE_S))
        self.frame_s = self.step / sample_rate
        self.min_prominence_db = min_prominence_db
        self.keep_s = keep_s
        self._background_frames = round(BACKGROUND_S / self.frame_s)
        self._peak_frames = max(1, round(PEAK_S / self.frame_s))
        self._back_frames = round(RISE_BACK_S / self.frame_s)
        self._level_frames = max(1, round(LEVEL_S / self.frame_s))
        keep_frames = self._background_frames + self._peak_frames + self._back_frames + 64
        self._history = np.full(keep_frames, FLOOR_DB, dtype=np.float64)
        self._frames = 0  # frames seen: the next frame's index
        self._carry = np.zeros(0, dtype=np.float32)
        self._armed = True
        self._candidate: tuple[int, float] | None = None  # (first frame over, background)
        self._rearm_level = math.inf
        self._search_from = 0
        self._gaps: deque[tuple[float, float]] = deque()
        self.onsets: deque[ImpulseOnset] = deque(maxlen=MAX_KEPT)
        self.detected = 0

    # -- input ------------------------------------------------------------------------
    def push(self, audio: FloatArray) -> None:
        """The next samples of the stream (the pipeline's rate)."""
        if self._carry.size:
            audio = np.concatenate([self._carry, np.asarray(audio, dtype=np.float32)])
        n = audio.size // self.step
        self._carry = np.array(audio[n * self.step :], dtype=np.float32)
        if n == 0:
            return
        frames = audio[: n * self.step].reshape(n, self.step).astype(np.float64)
        db = 10.0 * np.log10(np.maximum(np.mean(np.square(frames), axis=1), 1e-20))
        first = self._frames
        background = self._background()
        self._append(db)
        self._scan(first, background)
        self._forget()

    def mark_gap(self, start_s: float, end_s: float) -> None:
        """A capture gap filled with silence: onsets at its edges are not sounds."""
        self._gaps.append((start_s, end_s))

    # -- queries ----------------------------------------------------------------------
    @property
    def stream_s(self) -> float:
        """Stream time up to which impulses have been looked for (a candidate waits for the
        50 ms that decide its peak)."""
        return (self._frames - self._peak_frames) * self.frame_s

    def between(self, start_s: float, end_s: float, limit: int) -> list[ImpulseOnset]:
        """The onsets in ``[start_s, end_s]``, at most ``limit``: the most prominent ones,
        returned in time order."""
        found = [o for o in self.onsets if start_s <= o.onset_s <= end_s and not self._in_gap(o)]
        if len(found) > limit:
            found = sorted(found, key=lambda o: (-o.prominence_db, o.onset_s))[:limit]
        return sorted(found, key=lambda o: o.onset_s)

    # -- internals --------------------------------------------------------------------
    def _frame(self, index: int) -> float:
        return float(self._history[index - self._frames + self._history.size])

    def _background(self) -> float:
        """The envelope's quiet level over the second before the new frames."""
        available = min(self._frames, self._background_frames)
        if available < self._background_frames // 4:
            return math.inf  # too little heard yet to say what is loud
        recent = self._history[self._history.size - available :]
        # digital silence (padding, a capture gap) is no street: nothing is loud against it
        heard = recent[recent >= MIN_BACKGROUND_DBFS]
        if heard.size < self._background_frames // 2:
            return math.inf
        return float(np.percentile(heard, BACKGROUND_PERCENTILE))

    def _append(self, db: npt.NDArray[np.float64]) -> None:
        size = self._history.size
        if db.size >= size:
            self._history[:] = db[-size:]
        else:
            self._history[: size - db.size] = self._history[db.size :]
            self._history[size - db.size :] = db
        self._frames += db.size

    def _scan(self, first: int, background: float) -> None:
        end = self._frames
        index = max(first, self._search_from, end - self._history.size)
        while index < end or self._candidate is not None:
            if self._candidate is not None:
                start, candidate_background = self._candidate
                if end < start + self._peak_frames:
                    return  # its peak window is not complete yet
                self._candidate = None
                index = self._finish(start, candidate_background)
                continue
            segment = self._history[index - end + self._history.size :]
            if not self._armed:
                # back near the background it was loud against, or near today's: a street
                # that grew louder since (traffic starting) must not keep it disarmed
                level = self._rearm_level
                if math.isfinite(background):
                    level = max(level, background + 0.5 * self.min_prominence_db)
                quiet = np.nonzero(segment < level)[0]
                if quiet.size == 0:
                    self._search_from = end
                    return
                index += int(quiet[0])
                self._armed = True
                continue
            if not math.isfinite(background):
                self._search_from = end
                return
            loud = np.nonzero(segment >= background + self.min_prominence_db)[0]
            if loud.size == 0:
                self._search_from = end
                return
            index += int(loud[0])
            self._candidate = (index, background)
        self._search_from = max(index, self._search_from)

    def _finish(self, start: int, background: float) -> int:
        """Place the impulse that crossed at frame ``start``; returns where to look next."""
        offset = self._history.size - self._frames
        window = self._history[start + offset : start + offset + self._peak_frames]
        peak = start + int(np.argmax(window))
        excess = self._frame(peak) - background
        rise = background + RISE_FRACTION * excess
        lowest = max(start - self._back_frames, self._frames - self._history.size)
        onset = peak
        while onset > lowest and self._frame(onset - 1) >= rise:
            onset -= 1
        level_end = min(onset + self._level_frames, self._frames)
        power = np.power(10.0, self._history[onset + offset : level_end + offset] / 10.0)
        level = 10.0 * math.log10(max(float(np.mean(power)), 1e-20))
        self.onsets.append(
            ImpulseOnset(
                onset_s=onset * self.frame_s,
                level_dbfs=round(min(0.0, max(FLOOR_DB, level)), 2),
                prominence_db=round(min(200.0, excess), 2),
            )
        )
        self.detected += 1
        self._armed = False
        self._rearm_level = background + 0.5 * self.min_prominence_db
        return peak + 1

    def _forget(self) -> None:
        horizon = self._frames * self.frame_s - self.keep_s
        while self.onsets and self.onsets[0].onset_s < horizon:
            self.onsets.popleft()
        while self._gaps and self._gaps[0][1] < horizon:
            self._gaps.popleft()

    def _in_gap(self, onset: ImpulseOnset) -> bool:
        return any(
            start - GAP_MARGIN_S <= onset.onset_s <= end + GAP_MARGIN_S for start, end in self._gaps
        )
