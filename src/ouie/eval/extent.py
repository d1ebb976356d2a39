"""Where the event is inside an isolated clip: its energetic extent, as ground truth.

Isolated clips carry one label and no times. Before a clip is mixed into a background, the
part that actually sounds is found from its short-time energy, so the mixture's ground
truth onset is the sound's onset and not the file's first sample (a 2 s gunshot file may
start with 0.7 s of room noise).

Rule (documented in docs/eval.md): 20 ms frames, 10 ms hop, RMS in dB. With the clip's
floor (10th percentile) and peak (maximum), frames at or above
``floor + 0.5 × (peak − floor)`` are active; an onset is refined to the first 2 ms block of
its first active frame at that level. Active runs closer than ``merge_gap_s`` (1 s,
the node's merge gap, so a burst of shots is one event as the detector reports it) are
joined. A clip whose dynamic range is under 6 dB (a siren or alarm that fills the file) is
active over its whole length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME_S = 0.02
HOP_S = 0.01
FLOOR_PERCENTILE = 10.0
ACTIVE_FRACTION = 0.5
MIN_RANGE_DB = 6.0
MERGE_GAP_S = 1.0
REFINE_S = 0.002


@dataclass(frozen=True)
class Segment:
    onset_s: float
    offset_s: float

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s


def frame_levels_db(
    audio: npt.NDArray[np.float32], rate: int, frame_s: float = FRAME_S, hop_s: float = HOP_S
) -> npt.NDArray[np.float64]:
    """RMS level (dBFS) of each frame; frame ``i`` starts at ``i × hop``."""
    frame = max(1, round(frame_s * rate))
    hop = max(1, round(hop_s * rate))
    if audio.size <= frame:
        power = (
            np.array([np.mean(np.square(audio, dtype=np.float64))]) if audio.size else np.zeros(1)
        )
    else:
        n = 1 + (audio.size - frame) // hop
        windows = np.lib.stride_tricks.sliding_window_view(audio, frame)[::hop][:n]
        power = np.mean(np.square(windows, dtype=np.float64), axis=1)
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def energetic_segments(
    audio: npt.NDArray[np.float32], rate: int, merge_gap_s: float = MERGE_GAP_S
) -> list[Segment]:
    """The sounding parts of an isolated clip (see the module docstring for the rule)."""
    duration = audio.size / rate
    if audio.size == 0:
        return []
    levels = frame_levels_db(audio, rate)
    hop_s = max(1, round(HOP_S * rate)) / rate
    frame_s = max(1, round(FRAME_S * rate)) / rate
    floor = float(np.percentile(levels, FLOOR_PERCENTILE))
    peak = float(levels.max())
    if peak - floor < MIN_RANGE_DB:
        return [Segment(0.0, duration)]
    threshold = floor + ACTIVE_FRACTION * (peak - floor)
    active = levels >= threshold
    padded = np.concatenate([[False], active, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]  # frame indices, end exclusive
    segments: list[Segment] = []
    for start, end in zip(starts, ends, strict=True):
        onset = _refined_onset(audio, rate, float(start) * hop_s, frame_s, threshold)
        offset = min(duration, float(end - 1) * hop_s + frame_s)
        if segments and onset - segments[-1].offset_s < merge_gap_s:
            segments[-1] = Segment(segments[-1].onset_s, offset)
        else:
            segments.append(Segment(onset, offset))
    return segments


def _refined_onset(
    audio: npt.NDArray[np.float32],
    rate: int,
    frame_start_s: float,
    frame_s: float,
    threshold: float,
) -> float:
    """The first ``REFINE_S`` block inside the first active frame that reaches the threshold:
    a 20 ms frame turns active when only its tail holds the sound, so the frame start alone
    would put the onset up to a frame early."""
    block = max(1, round(REFINE_S * rate))
    first = round(frame_start_s * rate)
    span = audio[first : first + round(frame_s * rate)]
    n = span.size // block
    if n == 0:
        return frame_start_s
    power = np.mean(np.square(span[: n * block].reshape(n, block), dtype=np.float64), axis=1)
    above = np.flatnonzero(10.0 * np.log10(np.maximum(power, 1e-12)) >= threshold)
    return (first + int(above[0]) * block) / rate if above.size else frame_start_s


def clip_segments(
    audio: npt.NDArray[np.float32],
    rate: int,
    onset_s: float | None = None,
    offset_s: float | None = None,
) -> list[Segment]:
    """Annotated times when labels.csv gives them, else the energetic extent."""
    duration = audio.size / rate
    if onset_s is not None or offset_s is not None:
        onset = min(max(0.0, onset_s or 0.0), duration)
        offset = duration if offset_s is None else min(max(onset, offset_s), duration)
        return [Segment(onset, offset)] if offset > onset else []
    return energetic_segments(audio, rate)
