"""Strongly labelled synthetic mixtures, DCASE 2017 task 2 style (docs/eval.md).

Each target clip of the selected fold becomes one 30 s mixture: its energetic extent
(``ouie.eval.extent``) is placed at a seeded random onset into a street background of the same
fold (``ouie.eval.backgrounds``) at an event-to-background ratio of −6, 0 or +6 dB. The
ground truth is exact by construction: the extent's onsets and offsets shifted by the
placement.

Determinism: the plan (which clip, which EBR, which background kind) is drawn from
``default_rng(seed)`` over the target clips sorted by file; everything inside mixture ``i``
(background file and excerpt, levels, onset) from ``default_rng([seed, i])``. The same
dataset, fold and seed therefore give the same mixtures sample for sample, in any order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from ouie.eval.audio import ClipCache
from ouie.eval.backgrounds import ambience_excerpt, constructed_background, fade_edges, rms
from ouie.eval.dataset import Clip
from ouie.eval.extent import Segment, clip_segments

FloatArray = npt.NDArray[np.float32]

PROTOCOL = "ouie-mixtures/1"
MIXTURE_RATE = 32000
EBRS_DB = (-6.0, 0.0, 6.0)
MIN_AMBIENCE_S = 30.0
#: Non-target labels whose long recordings count as street ambience.
AMBIENCE_LABELS = frozenset({"background", "ambience", "crowd", "street", "traffic"})
#: Non-target labels that form the speech (privacy) set; never used in backgrounds.
SPEECH_LABELS = frozenset({"speech"})
MAX_EVENT_S = 20.0
PLACEMENT_MARGIN_S = 1.0
EDGE_FADE_S = 0.005
CROP_PRE_S = 0.05
CROP_POST_S = 0.05
PEAK_LIMIT = 0.99

BackgroundKind = Literal["ambience", "constructed"]


@dataclass(frozen=True)
class MixtureSpec:
    seed: int = 2017
    duration_s: float = 30.0
    ebrs_db: tuple[float, ...] = EBRS_DB
    rate: int = MIXTURE_RATE
    #: Share of mixtures on a long ambience recording when the fold has one (else all built).
    ambience_share: float = 0.5
    #: Background RMS level range (dBFS) drawn per mixture.
    background_dbfs: tuple[float, float] = (-40.0, -25.0)


@dataclass(frozen=True)
class TruthEvent:
    label: str
    onset_s: float
    offset_s: float


@dataclass(frozen=True)
class MixturePlan:
    index: int
    event_clip: Clip
    ebr_db: float
    background_kind: BackgroundKind

    @property
    def mixture_id(self) -> str:
        return f"mix{self.index:04d}"


@dataclass(frozen=True)
class Mixture:
    mixture_id: str
    audio: FloatArray
    rate: int
    events: tuple[TruthEvent, ...]
    label: str
    ebr_db: float
    event_file: str
    background_kind: BackgroundKind
    background_files: tuple[str, ...]

    @property
    def duration_s(self) -> float:
        return self.audio.size / self.rate


def is_speech(clip: Clip) -> bool:
    return clip.label in SPEECH_LABELS


def is_ambience(clip: Clip, duration_s: float) -> bool:
    return not clip.is_target and clip.label in AMBIENCE_LABELS and duration_s >= MIN_AMBIENCE_S


@dataclass(frozen=True)
class BackgroundSources:
    ambience: tuple[Clip, ...]  # long street ambience
    pool: tuple[Clip, ...]  # short non-target, non-speech clips for constructed backgrounds


def background_sources(clips: Sequence[Clip], durations: Mapping[str, float]) -> BackgroundSources:
    ambience = tuple(
        sorted((c for c in clips if is_ambience(c, durations[c.file])), key=lambda c: c.file)
    )
    taken = {c.file for c in ambience}
    pool = tuple(
        sorted(
            (c for c in clips if not c.is_target and not is_speech(c) and c.file not in taken),
            key=lambda c: c.file,
        )
    )
    return BackgroundSources(ambience, pool)


def plan_mixtures(
    clips: Sequence[Clip], sources: BackgroundSources, spec: MixtureSpec
) -> list[MixturePlan]:
    """One mixture per target clip; EBRs balanced over the set, background kind drawn."""
    targets = sorted((c for c in clips if c.is_target), key=lambda c: c.file)
    rng = np.random.default_rng(spec.seed)
    ebr_slots = rng.permutation(len(targets)) % len(spec.ebrs_db)
    use_ambience = rng.random(len(targets)) < spec.ambience_share
    plans: list[MixturePlan] = []
    for index, clip in enumerate(targets):
        kind: BackgroundKind = (
            "ambience" if sources.ambience and bool(use_ambience[index]) else "constructed"
        )
        if not sources.ambience and not sources.pool:
            kind = "constructed"  # traffic noise alone
        plans.append(MixturePlan(index, clip, spec.ebrs_db[int(ebr_slots[index])], kind))
    return plans


class _LazyPool(Sequence[FloatArray]):
    def __init__(self, clips: Sequence[Clip], cache: ClipCache) -> None:
        self._clips = clips
        self._cache = cache

    def __len__(self) -> int:
        return len(self._clips)

    @overload
    def __getitem__(self, index: int) -> FloatArray: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[FloatArray]: ...
    def __getitem__(self, index: int | slice) -> FloatArray | Sequence[FloatArray]:
        if isinstance(index, slice):
            return [self._cache.get(c.path) for c in self._clips[index]]
        return self._cache.get(self._clips[index].path)


def _crop(
    audio: FloatArray, rate: int, segments: list[Segment]
) -> tuple[FloatArray, list[Segment]]:
    """The event's extent (a little margin) as audio, segments relative to the crop."""
    duration = audio.size / rate
    start = max(0.0, segments[0].onset_s - CROP_PRE_S)
    end = min(duration, segments[-1].offset_s + CROP_POST_S, start + MAX_EVENT_S)
    kept = [
        Segment(max(s.onset_s, start) - start, min(s.offset_s, end) - start)
        for s in segments
        if s.onset_s < end
    ]
    cropped = audio[round(start * rate) : round(end * rate)]
    return fade_edges(cropped, round(EDGE_FADE_S * rate)), kept


def _segment_mask(n: int, rate: int, segments: list[Segment]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(n, dtype=bool)
    for seg in segments:
        mask[max(0, round(seg.onset_s * rate)) : round(seg.offset_s * rate)] = True
    return mask


class MixtureSet:
    """The mixtures of a fold: planned up front, rendered one at a time when iterated."""

    def __init__(
        self,
        clips: Sequence[Clip],
        durations: Mapping[str, float],
        spec: MixtureSpec,
        cache: ClipCache | None = None,
    ) -> None:
        self.spec = spec
        self.cache = cache or ClipCache(spec.rate)
        if self.cache.rate != spec.rate:
            raise ValueError("clip cache rate differs from the mixture rate")
        self.sources = background_sources(clips, durations)
        self.plans = plan_mixtures(clips, self.sources, spec)
        self._pool = _LazyPool(self.sources.pool, self.cache)

    def __len__(self) -> int:
        return len(self.plans)

    def __iter__(self) -> Iterator[Mixture]:
        for plan in self.plans:
            mixture = self.render(plan)
            if mixture is not None:
                yield mixture

    def render(self, plan: MixturePlan) -> Mixture | None:
        """The mixture of ``plan``; None when the event clip has no sounding part."""
        parts = self._parts(plan)
        if parts is None:
            return None
        background, event, start, segments, files = parts
        rate = self.spec.rate
        audio = background.copy()
        audio[start : start + event.size] += event
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > PEAK_LIMIT:  # scale the whole mixture: the EBR is unchanged
            audio *= np.float32(PEAK_LIMIT / peak)
        start_s = start / rate
        clip = plan.event_clip
        truth = tuple(
            TruthEvent(clip.label, start_s + s.onset_s, start_s + s.offset_s) for s in segments
        )
        return Mixture(
            mixture_id=plan.mixture_id,
            audio=audio.astype(np.float32),
            rate=rate,
            events=truth,
            label=clip.label,
            ebr_db=plan.ebr_db,
            event_file=clip.file,
            background_kind=plan.background_kind,
            background_files=files,
        )

    def render_parts(
        self, plan: MixturePlan
    ) -> tuple[FloatArray, FloatArray, int, npt.NDArray[np.bool_]]:
        """Background, scaled event, its start sample and its sounding-part mask (tests)."""
        parts = self._parts(plan)
        if parts is None:
            raise ValueError(f"{plan.event_clip.file} has no sounding part")
        background, event, start, segments, _ = parts
        return background, event, start, _segment_mask(event.size, self.spec.rate, segments)

    def _parts(
        self, plan: MixturePlan
    ) -> tuple[FloatArray, FloatArray, int, list[Segment], tuple[str, ...]] | None:
        spec, rate = self.spec, self.spec.rate
        rng = np.random.default_rng([spec.seed, plan.index])
        clip = plan.event_clip
        source = self.cache.get(clip.path)
        segments = clip_segments(source, rate, clip.onset_s, clip.offset_s)
        if not segments:
            return None
        event, segments = _crop(source, rate, segments)
        n = round(spec.duration_s * rate)
        n = max(n, event.size + round(2 * PLACEMENT_MARGIN_S * rate))
        background, files = self._background(plan.background_kind, n, rng)
        background = background * np.float32(10 ** (rng.uniform(*spec.background_dbfs) / 20))
        room = (n - event.size) / rate
        margin = min(PLACEMENT_MARGIN_S, room / 2)
        start = round(float(rng.uniform(margin, room - margin)) * rate)
        # EBR over the event's sounding part and the background under it (DCASE 2017 task 2).
        mask = _segment_mask(event.size, rate, segments)
        event_level = rms(event[mask]) if mask.any() else rms(event)
        window = background[start : start + event.size]
        background_level = rms(window[mask]) if mask.any() else rms(window)
        if background_level <= 0:
            background_level = max(rms(background), 1e-6)
        gain = 10 ** (plan.ebr_db / 20) * background_level / max(event_level, 1e-9)
        return background, (gain * event).astype(np.float32), start, segments, files

    def _background(
        self, kind: BackgroundKind, n: int, rng: np.random.Generator
    ) -> tuple[FloatArray, tuple[str, ...]]:
        if kind == "ambience":
            clip = self.sources.ambience[int(rng.integers(len(self.sources.ambience)))]
            excerpt, _ = ambience_excerpt(self.cache.get(clip.path), n, self.spec.rate, rng)
            return excerpt, (clip.file,)
        audio, used = constructed_background(n, self.spec.rate, self._pool, rng)
        return audio, tuple(dict.fromkeys(self.sources.pool[i].file for i in used))
