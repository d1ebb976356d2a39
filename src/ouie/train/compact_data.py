"""Training windows for ouie-compact, built once as log-mel patches.

Sources come from the training folds of a dataset (``ouie.eval.dataset``) plus synthetic
events (``ouie.train.synth``); a label with few real clips draws mostly synthetic sources
(``Pools.event_source``). A positive window is cut around an energetic part of an
event clip (the peak, or any frame within 15 dB of it) with the event anywhere in the
window, then augmented:

- reverberation (p = 0.3): exponentially decaying noise impulse responses, RT60 0.2–1.2 s;
- distance (p = 0.3): a low-pass on the event alone;
- mixing (p = 0.85) into a background window at an event-to-background ratio drawn
  uniformly from −6 to +20 dB (event energy over its active frames, background over the
  window); sometimes a second target event (multi-label) or a speech/non-target sound too;
- channel (p = 0.4): a random low-pass or high-pass on the mixture;
- level: the mixture's RMS drawn from −50 to −12 dBFS, peaks kept below full scale, except
  for some clipped and some overdriven (saturated) captures.

Negative windows are speech (both speech folders; weighted ×3 in the loss; half of them
cut anywhere in the recording, pauses, breaths and its first and last instants included,
and 40 % left unmixed, as quiet as it was recorded), non-target sounds (``other``, ESC-50
non-target classes) mixed into backgrounds, and backgrounds alone (background clips, long
ambience, generated traffic). Everything is drawn from one ``numpy`` generator, so a seed
fixes the set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, fftconvolve, sosfilt

from ouie.core.labels import EVENT_LABELS, EventLabel, is_target
from ouie.eval.dataset import Clip
from ouie.node.audio_io import read_audio, to_rate
from ouie.node.frontends import yamnet as frontend
from ouie.train import synth

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

SAMPLE_RATE = frontend.SAMPLE_RATE
WINDOW = frontend.PATCH_SAMPLES
FRAME = SAMPLE_RATE // 100  # 10 ms energy frames
ACTIVE_DB = 15.0  # frames within this of the clip's loudest are "energetic"
FLOOR_DBFS = -70.0
EBR_RANGE_DB = (-6.0, 20.0)
#: Where a positive window's anchor (an energetic frame of the event) sits, as a fraction
#: of the window. The node's windows overlap by three quarters, so some window always holds
#: an event's start with most of its first second after it; a window holding only the last
#: few milliseconds of an impulse taught the model that faint edges are shots too.
POSITIVE_POSITION = (0.05, 0.8)
#: Windows of anything else may hold their sound anywhere.
ANY_POSITION = (0.0, 0.95)
LEVEL_RANGE_DBFS = (-50.0, -12.0)
#: Dataset labels used as backgrounds to mix into (everything else non-target is foreground).
BACKGROUND_LABELS = frozenset({"background", "crowd"})
SPEECH_LABEL = "speech"
#: Share of speech windows cut anywhere in the recording rather than around its energetic
#: parts: the model must also stay quiet on what comes before, between and after words
#: (breaths, lip noise, a handled microphone), not only on the words themselves.
SPEECH_ANYWHERE = 0.5
#: Share of speech windows mixed into a background (the rest stay as recorded); other
#: negative sounds are mixed with ``FOREGROUND_MIX_P``.
SPEECH_MIX_P = 0.6
FOREGROUND_MIX_P = 0.8


@dataclass(frozen=True)
class Source:
    """One sound at 16 kHz with the samples around which windows may be centred."""

    name: str
    label: str
    audio: FloatArray
    peak: int
    anchors: IntArray


@dataclass
class Pools:
    events: dict[EventLabel, list[Source]] = field(default_factory=dict)
    speech: list[Source] = field(default_factory=list)
    synthetic_events: dict[EventLabel, list[Source]] = field(default_factory=dict)
    foreground: list[Source] = field(default_factory=list)  # non-target, non-speech
    backgrounds: list[FloatArray] = field(default_factory=list)
    synthetic: dict[EventLabel, int] = field(default_factory=dict)  # sources per label

    def event_source(self, label: EventLabel, rng: np.random.Generator) -> Source:
        """A real or synthetic source of ``label``: synthetic with probability
        max(0.5, n_synth / (n_synth + 10·n_real)), so a single real clip is not
        over-used and plentiful real clips still make up half the windows."""
        real, made = self.events.get(label, []), self.synthetic_events.get(label, [])
        share = max(0.5, len(made) / (len(made) + 10 * len(real))) if made else 0.0
        pool = made if (not real or rng.random() < share) and made else real
        return _pick(pool, rng)

    def counts(self) -> dict[str, int]:
        out = {label.value: len(sources) for label, sources in self.events.items()}
        out.update({f"{k.value} (synthetic)": len(v) for k, v in self.synthetic_events.items()})
        out.update(
            speech=len(self.speech),
            foreground=len(self.foreground),
            backgrounds=len(self.backgrounds),
        )
        return out


def frame_db(audio: FloatArray) -> npt.NDArray[np.float64]:
    """10 ms RMS level in dBFS per frame (at least one frame)."""
    n = max(1, audio.size // FRAME)
    padded = np.zeros(n * FRAME, dtype=np.float64)
    padded[: min(audio.size, n * FRAME)] = audio[: n * FRAME]
    rms = np.sqrt(np.mean(np.square(padded.reshape(n, FRAME)), axis=1))
    return np.asarray(20.0 * np.log10(np.maximum(rms, 1e-10)), dtype=np.float64)


def make_source(name: str, label: str, audio: FloatArray) -> Source | None:
    """A source with its peak and energetic frames; ``None`` for (near) silent audio."""
    levels = frame_db(audio)
    top = float(levels.max())
    if top < FLOOR_DBFS:
        return None
    active = np.flatnonzero(levels >= max(top - ACTIVE_DB, FLOOR_DBFS))
    centres = (active * FRAME + FRAME // 2).astype(np.int64)
    return Source(name, label, audio, int(np.argmax(levels)) * FRAME + FRAME // 2, centres)


def load_clip(clip: Clip) -> FloatArray:
    audio, rate = read_audio(clip.path)
    return to_rate(audio, rate, SAMPLE_RATE)


def build_pools(
    clips: Sequence[Clip],
    rng: np.random.Generator,
    synth_per_class: int,
    traffic_clips: int,
    noise_clips: int = 0,
) -> Pools:
    """Sources of the given (training) clips plus synthetic events and traffic."""
    pools = Pools(events={label: [] for label in EVENT_LABELS})
    pools.synthetic_events = {label: [] for label in synth.EVENT_GENERATORS}
    for clip in clips:
        audio = load_clip(clip)
        if clip.label in BACKGROUND_LABELS:
            if audio.size:
                pools.backgrounds.append(audio)
            continue
        source = make_source(clip.file, clip.label, audio)
        if source is None:
            continue
        if is_target(clip.label):
            pools.events[EventLabel(clip.label)].append(source)
        elif clip.label == SPEECH_LABEL:
            pools.speech.append(source)
        else:
            pools.foreground.append(source)
    for label, generator in synth.EVENT_GENERATORS.items():
        made = 0
        for i in range(synth_per_class):
            source = make_source(f"synth:{label.value}:{i}", label.value, generator(rng))
            if source is not None:
                pools.synthetic_events[label].append(source)
                made += 1
        pools.synthetic[label] = made
    for _ in range(traffic_clips):
        pools.backgrounds.append(synth.traffic(rng, duration_s=rng.uniform(2.0, 6.0)))
    for _ in range(noise_clips):
        pools.backgrounds.append(synth.steady_noise(rng, duration_s=rng.uniform(2.0, 6.0)))
    empty = [
        label.value
        for label in EVENT_LABELS
        if not pools.events[label] and not pools.synthetic_events.get(label)
    ]
    if empty:
        raise ValueError(f"no training sources for: {', '.join(empty)}")
    if not pools.backgrounds:
        raise ValueError("no background audio to mix into")
    return pools


# --- cutting and augmenting ---------------------------------------------------------------


def cut(audio: FloatArray, start: int, length: int = WINDOW) -> FloatArray:
    """``audio[start:start+length]``, zero-padded where it runs off either end."""
    out = np.zeros(length, dtype=np.float32)
    lo, hi = max(0, start), min(audio.size, start + length)
    if hi > lo:
        out[lo - start : hi - start] = audio[lo:hi]
    return out


def event_window(
    source: Source, rng: np.random.Generator, position: tuple[float, float] = ANY_POSITION
) -> FloatArray:
    """A window holding an energetic part of ``source`` at a fraction ``position`` in."""
    anchor = source.peak if rng.random() < 0.4 else int(rng.choice(source.anchors))
    return cut(source.audio, anchor - int(rng.uniform(*position) * WINDOW))


def speech_window(source: Source, rng: np.random.Generator) -> FloatArray:
    """A window of speech: around its energetic parts, or (``SPEECH_ANYWHERE``) anywhere,
    including windows that hold only the recording's first or last instants."""
    if rng.random() >= SPEECH_ANYWHERE:
        return event_window(source, rng)
    size = source.audio.size
    return cut(source.audio, int(rng.integers(-(WINDOW // 2), max(1, size - WINDOW // 2))))


def background_window(audio: FloatArray, rng: np.random.Generator) -> FloatArray:
    if audio.size < WINDOW:  # loop short backgrounds
        audio = np.tile(audio, WINDOW // max(1, audio.size) + 1)
    start = int(rng.integers(0, audio.size - WINDOW + 1))
    return np.array(audio[start : start + WINDOW], dtype=np.float32)


def active_rms(window: FloatArray) -> float:
    """RMS over the window's energetic frames (within 15 dB of its loudest)."""
    levels = frame_db(window)
    active = levels >= levels.max() - ACTIVE_DB
    power = np.power(10.0, levels[active] / 10.0)
    return float(np.sqrt(power.mean()))


def rms(window: FloatArray) -> float:
    return float(np.sqrt(np.mean(np.square(window, dtype=np.float64))))


def _filter(audio: FloatArray, kind: str, cutoff: float, order: int) -> FloatArray:
    sos = butter(order, cutoff, btype=kind, fs=SAMPLE_RATE, output="sos")
    return np.asarray(sosfilt(sos, audio), dtype=np.float32)


def reverb(audio: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Exponentially decaying noise impulse response, direct path kept (DRR −3…+10 dB)."""
    rt60 = rng.uniform(0.2, 1.2)
    n = int(min(rt60, 0.8) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0  # first reflections arrive a little later
    tail /= np.sqrt(np.sum(tail**2)) + 1e-12
    drr = 10 ** (rng.uniform(-3.0, 10.0) / 20.0)
    wet = fftconvolve(audio, tail)[: audio.size]
    return np.asarray(audio + wet / drr, dtype=np.float32)


def augment_event(window: FloatArray, rng: np.random.Generator) -> FloatArray:
    if rng.random() < 0.3:
        window = reverb(window, rng)
    if rng.random() < 0.3:  # distance
        window = _filter(window, "lowpass", rng.uniform(1500.0, 6000.0), 2)
    return window


def mix_at(background: FloatArray, event: FloatArray, ebr_db: float) -> FloatArray:
    """``background + event`` with the event scaled to ``ebr_db`` over the background."""
    level_bg, level_ev = rms(background), active_rms(event)
    if level_bg < 1e-7 or level_ev < 1e-7:
        return np.asarray(background + event, dtype=np.float32)
    gain = 10 ** (ebr_db / 20.0) * level_bg / level_ev
    return np.asarray(background + gain * event, dtype=np.float32)


def finish(mixture: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Channel filtering and level."""
    roll = rng.random()
    if roll < 0.2:
        mixture = _filter(mixture, "lowpass", rng.uniform(2000.0, 7000.0), int(rng.integers(2, 5)))
    elif roll < 0.4:
        mixture = _filter(mixture, "highpass", rng.uniform(60.0, 600.0), int(rng.integers(1, 4)))
    level = rms(mixture)
    if level < 1e-8:
        return np.zeros_like(mixture)
    target = 10 ** (rng.uniform(*LEVEL_RANGE_DBFS) / 20.0)
    mixture = mixture * (target / level)
    peak = float(np.max(np.abs(mixture)))
    if rng.random() < 0.08:  # an overdriven capture: loud sounds saturate the input
        mixture = np.clip(mixture * (rng.uniform(1.5, 6.0) / peak), -0.99, 0.99)
    elif peak > 0.99:
        clips_hard = rng.random() < 0.15  # some captures clip
        mixture = np.clip(mixture, -0.99, 0.99) if clips_hard else mixture * (0.99 / peak)
    return np.asarray(mixture, dtype=np.float32)


def _pick(items: Sequence[Source], rng: np.random.Generator) -> Source:
    return items[int(rng.integers(0, len(items)))]


def _background(pools: Pools, rng: np.random.Generator) -> FloatArray:
    window = background_window(pools.backgrounds[int(rng.integers(0, len(pools.backgrounds)))], rng)
    if rng.random() < 0.25:  # layered ambience
        other = pools.backgrounds[int(rng.integers(0, len(pools.backgrounds)))]
        window = mix_at(window, background_window(other, rng), rng.uniform(-10.0, 5.0))
    return window


def positive(
    label: EventLabel, pools: Pools, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """One augmented window holding ``label`` (and sometimes a second target event)."""
    target = np.zeros(len(EVENT_LABELS), dtype=np.float32)
    target[EVENT_LABELS.index(label)] = 1.0
    source = pools.event_source(label, rng)
    event = augment_event(event_window(source, rng, POSITIVE_POSITION), rng)
    if rng.random() < 0.08:  # two target classes at once
        other = EVENT_LABELS[int(rng.integers(0, len(EVENT_LABELS)))]
        if other != label:
            second_source = pools.event_source(other, rng)
            second = augment_event(event_window(second_source, rng, POSITIVE_POSITION), rng)
            event = mix_at(event, second, rng.uniform(-6.0, 6.0))
            target[EVENT_LABELS.index(other)] = 1.0
    if rng.random() < 0.85:
        background = _background(pools, rng)
        if rng.random() < 0.1 and pools.speech:  # a voice in the scene too
            voice = event_window(_pick(pools.speech, rng), rng)
            background = mix_at(background, voice, rng.uniform(-5.0, 10.0))
        mixture = mix_at(background, event, rng.uniform(*EBR_RANGE_DB))
    else:
        mixture = event
    return finish(mixture, rng), target


def negative(pools: Pools, rng: np.random.Generator) -> tuple[FloatArray, bool]:
    """One augmented window holding no target event, and whether it holds speech."""
    roll = rng.random()
    is_speech = roll < 0.3 and bool(pools.speech)
    if is_speech:
        sound: FloatArray | None = speech_window(_pick(pools.speech, rng), rng)
    elif roll < 0.75 and pools.foreground:
        sound = event_window(_pick(pools.foreground, rng), rng)
    else:
        sound = None
    if sound is None:
        return finish(_background(pools, rng), rng), False
    sound = augment_event(sound, rng)
    if rng.random() < (SPEECH_MIX_P if is_speech else FOREGROUND_MIX_P):
        sound = mix_at(_background(pools, rng), sound, rng.uniform(-5.0, 20.0))
    return finish(sound, rng), is_speech


def patches_of(windows: FloatArray, batch: int = 256) -> npt.NDArray[np.float16]:
    """Log-mel patches ``[n, 96, 64]`` (float16 to halve the memory) of ``[n, 15600]``."""
    out = np.empty((len(windows), frontend.PATCH_FRAMES, frontend.N_MELS), dtype=np.float16)
    for i in range(0, len(windows), batch):
        out[i : i + batch] = frontend.log_mel_batch(windows[i : i + batch])
    return out


#: Scores a teacher network gives log-mel patches ``[n, 96, 64]``: ``[n, classes]``.
Teacher = Callable[[FloatArray], FloatArray]


#: Loss weight of speech windows: an event on speech is a privacy failure, not just a
#: false alarm, so the model pays more for any score it gives speech.
SPEECH_WEIGHT = 3.0


@dataclass(frozen=True)
class TrainingSet:
    patches: npt.NDArray[np.float16]  # [n, 96, 64]
    targets: FloatArray  # [n, 8]
    weights: FloatArray  # [n] loss weight per window
    teacher: npt.NDArray[np.float16] | None = None  # [n, classes] soft targets


def build_training_set(
    pools: Pools,
    rng: np.random.Generator,
    windows_per_class: int,
    negative_windows: int,
    chunk: int = 1024,
    teacher: Teacher | None = None,
) -> TrainingSet:
    """Balanced positives (``windows_per_class`` per label) plus negatives, as patches,
    with the teacher's scores of every patch when a teacher is given."""
    plan: list[EventLabel | None] = [
        label for label in EVENT_LABELS for _ in range(windows_per_class)
    ] + [None] * negative_windows
    total = len(plan)
    patches = np.empty((total, frontend.PATCH_FRAMES, frontend.N_MELS), dtype=np.float16)
    targets = np.zeros((total, len(EVENT_LABELS)), dtype=np.float32)
    weights = np.ones(total, dtype=np.float32)
    soft: list[npt.NDArray[np.float16]] = []
    for start in range(0, total, chunk):
        part = plan[start : start + chunk]
        windows = np.empty((len(part), WINDOW), dtype=np.float32)
        for i, label in enumerate(part):
            if label is None:
                windows[i], is_speech = negative(pools, rng)
                weights[start + i] = SPEECH_WEIGHT if is_speech else 1.0
            else:
                windows[i], targets[start + i] = positive(label, pools, rng)
        patches[start : start + len(part)] = patches_of(windows)
        if teacher is not None:
            done = patches[start : start + len(part)].astype(np.float32)
            soft.append(np.asarray(teacher(done), dtype=np.float16))
    return TrainingSet(patches, targets, weights, np.concatenate(soft) if soft else None)
