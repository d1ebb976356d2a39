"""Cut-offs: sound that stops dead into digital silence.

No acoustic sound ends in exact zeros: a microphone always hears its own noise. A run of
exact zero samples right after sound is missing audio — a capture dropout, a gap between
concatenated recordings, a stream that was cut — and the abrupt stop is, to a window
classifier, a broadband click: ouie-compact reads it as breaking glass. In the privacy
evaluation, where recordings follow each other with a silent gap, every event on speech
over street noise was such a cut-off 0.1–0.3 s before the gap.

So a candidate event whose own windows (onset to the end of the confirming window) hold a
cut-off is not reported; it is counted (``PipelineStats.cutoff_suppressions``). Silence
followed by sound (a file or stream that *starts* with zero padding) is not a cut-off: real
events often start like that in clipped recordings. What is lost: a real event heard in
the same window as a dropout, whose audio is incomplete anyway.

A gap the capture device reports is known exactly, and the streaming pipeline drops
candidates near either of its edges (``DetectionPipeline.mark_dropped``); this module is for
the gaps nobody reported, in any audio.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

#: Exact zeros at least this long are missing audio (2 ms of zeros happen in real signals
#: only at a zero crossing of a very quiet one).
MIN_ZERO_RUN_S = 0.02
#: The audio just before the run must be at least this loud to count as sound stopping.
SOUND_BEFORE_DBFS = -70.0
BEFORE_S = 0.01


def has_cutoff(audio: FloatArray, sample_rate: int) -> bool:
    """Whether ``audio`` holds sound that stops dead into a run of exact zeros."""
    run = max(1, round(MIN_ZERO_RUN_S * sample_rate))
    if audio.size < run + 1:
        return False
    zero = audio == 0.0
    # starts of zero runs that follow a non-zero sample
    starts = np.flatnonzero(zero[1:] & ~zero[:-1]) + 1
    if starts.size == 0:
        return False
    # length of each zero run: up to the next non-zero sample (or the end of ``audio``)
    nonzero = np.flatnonzero(~zero)
    index = np.searchsorted(nonzero, starts)
    ends = np.where(index < nonzero.size, nonzero[np.minimum(index, nonzero.size - 1)], audio.size)
    before = max(1, round(BEFORE_S * sample_rate))
    for start in starts[ends - starts >= run]:
        lead = audio[max(0, int(start) - before) : int(start)].astype(np.float64)
        power = float(np.mean(np.square(lead)))
        if power > 0 and 10.0 * math.log10(power) >= SOUND_BEFORE_DBFS:
            return True
    return False
