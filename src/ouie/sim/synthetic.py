"""Sources generated in code, for when no recordings are at hand (and labelled as synthetic).

Each generator takes a seeded ``numpy.random.Generator`` and a sample rate and returns a
mono float64 signal; ``synthesise`` normalises it so its loudest 50 ms RMS is 1.0 (the
renderer then applies the scenario's level in dB SPL at 1 m). They are plausible, not
realistic: enough spectral and temporal structure for a classifier and an onset detector
to have something to work on. Car alarm, spray can, skid and crash come from
``ouie.train.synth.SIM_GENERATORS`` (the compact model's training synthesiser) when it is
importable, so the twin plays what the model was taught; the rest live here (and local
fallbacks of those four).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, lfilter, sosfilt

from ouie.sim.render import normalise_loudest

F64 = npt.NDArray[np.float64]
Generator = Callable[[np.random.Generator, int], F64]


def _t(duration_s: float, rate: int) -> F64:
    return np.arange(round(duration_s * rate), dtype=np.float64) / rate


def band(x: F64, rate: int, low: float | None, high: float | None, order: int = 4) -> F64:
    nyq = rate / 2.0
    if low and high:
        sos = butter(order, [low / nyq, min(high, 0.95 * nyq) / nyq], btype="band", output="sos")
    elif low:
        sos = butter(order, low / nyq, btype="high", output="sos")
    elif high:
        sos = butter(order, min(high, 0.95 * nyq) / nyq, btype="low", output="sos")
    else:
        return x
    return np.asarray(sosfilt(sos, x), dtype=np.float64)


def _place(out: F64, sig: F64, at: int) -> None:
    end = min(out.size, at + sig.size)
    if end > at:
        out[at:end] += sig[: end - at]


def shot(rng: np.random.Generator, rate: int) -> F64:
    """Gunshot: a ~1.5 ms N-wave muzzle blast, then a decaying street-reverb tail."""
    out = np.zeros(round(1.2 * rate))
    lead = round(0.02 * rate)
    n_len = max(4, round(rng.uniform(1.0, 2.0) * 1e-3 * rate))
    n_wave = np.linspace(1.0, -1.0, n_len)
    _place(out, n_wave, lead)
    t = _t(1.2 - 0.02, rate)
    decay = rng.uniform(0.08, 0.16)
    tail = rng.standard_normal(t.size) * np.exp(-t / decay) * 0.35
    tail = band(tail, rate, 150.0, 6000.0, order=2)
    _place(out, tail, lead + n_len)
    echo_at = lead + round(rng.uniform(0.03, 0.09) * rate)
    _place(out, 0.3 * band(tail[: round(0.3 * rate)], rate, 300.0, 3000.0, 2), echo_at)
    return out


def firework(rng: np.random.Generator, rate: int) -> F64:
    """Firework: a low boom (long N-wave, low-passed), a rumble and a crackle."""
    duration = 2.5
    out = np.zeros(round(duration * rate))
    lead = round(0.02 * rate)
    n_len = round(rng.uniform(4e-3, 8e-3) * rate)
    _place(out, np.linspace(1.0, -1.0, n_len), lead)
    t = _t(duration, rate)
    rumble = band(rng.standard_normal(t.size), rate, 40.0, 800.0, 2) * np.exp(-t / 0.5) * 0.6
    _place(out, rumble, lead)
    for _ in range(int(rng.integers(20, 60))):
        at = lead + round(rng.uniform(0.3, 2.0) * rate)
        click = rng.standard_normal(round(0.002 * rate)) * rng.uniform(0.05, 0.25)
        _place(out, click, at)
    return band(out, rate, 30.0, None, 2)


def glass(rng: np.random.Generator, rate: int) -> F64:
    """Breaking glass: the pane's crack (a broadband burst of ~25 ms), shards ringing as they
    fly, then a second shower as they land 0.3–0.6 s later (the fall from a window's height);
    each shard a click that excites three inharmonic modes (about 1 : 2.7 : 5.4, as a thin
    plate's) from 1.5 kHz up. Session 15: the previous model (an impact click and single
    tones at 2–9 kHz over ~0.8 s) scored a median 0.11 on YAMNet's Shatter and 0.03 on
    ouie-compact; this one 0.46 and 0.07 (12 renderings each, as generated)."""
    duration = 1.4
    out = np.zeros(round(duration * rate))
    lead = round(0.01 * rate)
    nyq = rate / 2.0
    crack = rng.standard_normal(round(0.025 * rate)) * np.exp(-_t(0.025, rate) / 0.006)
    _place(out, crack * 2.0, lead)

    def shard(at: int) -> None:
        click = max(1, round(rng.uniform(0.0005, 0.002) * rate))
        _place(out, rng.standard_normal(click) * rng.uniform(0.2, 0.8), at)
        f0 = rng.uniform(1500.0, 6000.0)
        amplitude = rng.uniform(0.15, 0.8)
        for ratio in (1.0, rng.uniform(2.4, 3.0), rng.uniform(4.8, 6.0)):
            freq = f0 * ratio
            if freq >= 0.9 * nyq:
                continue
            ring = _t(rng.uniform(0.03, 0.15), rate)
            tone = np.sin(2 * np.pi * freq * ring + rng.uniform(0, 2 * np.pi))
            _place(out, tone * np.exp(-ring / rng.uniform(0.01, 0.04)) * amplitude / ratio, at)

    for _ in range(int(rng.integers(30, 60))):  # flying, right after the crack
        shard(lead + round(rng.exponential(0.08) * rate))
    landing = rng.uniform(0.3, 0.6)
    for _ in range(int(rng.integers(30, 70))):  # landing
        at = lead + round(max(0.0, rng.normal(landing, 0.12)) * rate)
        if at < out.size:
            shard(at)
    return band(out, rate, 800.0, None, 2)


def siren(rng: np.random.Generator, rate: int) -> F64:
    """Emergency siren: a wail sweep, a yelp, or the French two-tone (435/580 Hz)."""
    duration = 8.0
    t = _t(duration, rate)
    style = rng.integers(0, 3)
    if style == 0:  # wail: 600 → 1400 Hz over ~4 s, and back
        period = rng.uniform(3.5, 5.0)
        freq = 1000.0 - 400.0 * np.cos(2 * np.pi * t / period)
    elif style == 1:  # yelp
        period = rng.uniform(0.25, 0.35)
        freq = 700.0 + 700.0 * ((t / period) % 1.0)
    else:  # deux-tons
        freq = np.where((t % 1.2) < 0.6, 435.0, 580.0)
    phase = 2 * np.pi * np.cumsum(freq) / rate
    tone = np.sin(phase) + np.sin(2 * phase) / 2 + np.sin(3 * phase) / 3 + np.sin(5 * phase) / 5
    return band(tone, rate, 200.0, 6000.0, 2)


def car_alarm(rng: np.random.Generator, rate: int) -> F64:
    """Car alarm: cycles of a warbling tone, a chirp series and a steady beep (square waves)."""
    out: list[F64] = []
    for _ in range(int(rng.integers(2, 4))):
        t = _t(2.0, rate)
        warble = 1800.0 + 600.0 * np.sign(np.sin(2 * np.pi * 8.0 * t))
        chirp_t = _t(2.0, rate)
        chirp = 1000.0 + 2000.0 * ((chirp_t * 4.0) % 1.0)
        beep_t = _t(2.0, rate)
        beep = np.full(beep_t.size, 2400.0)
        gate = (np.sin(2 * np.pi * 3.0 * beep_t) > 0).astype(np.float64)
        for freq, g in ((warble, 1.0), (chirp, 1.0), (beep, gate)):
            phase = 2 * np.pi * np.cumsum(freq) / rate
            out.append(np.sign(np.sin(phase)) * 0.5 * g)
    return band(np.concatenate(out), rate, 400.0, 7000.0, 2)


def spray(rng: np.random.Generator, rate: int) -> F64:
    """Spray can: the mixing ball rattled a few times, then a steady high hiss."""
    parts: list[F64] = []
    for _ in range(int(rng.integers(1, 3))):
        shake = np.zeros(round(0.8 * rate))
        for k in range(int(rng.integers(5, 9))):
            at = round((k * 0.09 + rng.uniform(0, 0.02)) * rate)
            _place(shake, rng.standard_normal(round(0.006 * rate)) * 0.5, at)
        parts.append(band(shake, rate, 1500.0, None, 2))
        t = _t(rng.uniform(1.5, 3.0), rate)
        env = np.minimum(1.0, t / 0.05) * (1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))
        hiss = band(rng.standard_normal(t.size), rate, 2500.0, None, 4) * env
        parts.append(hiss)
        parts.append(np.zeros(round(rng.uniform(0.3, 0.8) * rate)))
    return np.concatenate(parts)


def skid(rng: np.random.Generator, rate: int) -> F64:
    """Tyre skid: a squealing harmonic tone with jittery pitch over road noise."""
    t = _t(rng.uniform(1.2, 2.2), rate)
    f0 = rng.uniform(700.0, 1100.0)
    jitter = np.cumsum(rng.standard_normal(t.size)) / np.sqrt(rate) * 40.0
    freq = f0 * (1.0 - 0.15 * t / t[-1]) + jitter
    phase = 2 * np.pi * np.cumsum(freq) / rate
    env = np.minimum(1.0, t / 0.1) * np.minimum(1.0, (t[-1] - t) / 0.1 + 0.05)
    tone = (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase)) * env
    noise = band(rng.standard_normal(t.size), rate, 200.0, 4000.0, 2) * env * 0.3
    out: F64 = tone + noise
    return out


def crash(rng: np.random.Generator, rate: int) -> F64:
    """Vehicle impact: a low thud, a crunch of metal resonances, then falling debris."""
    duration = 2.0
    out = np.zeros(round(duration * rate))
    lead = round(0.01 * rate)
    t = _t(duration, rate)
    thud = band(rng.standard_normal(t.size), rate, 30.0, 300.0, 2) * np.exp(-t / 0.08) * 2.0
    crunch = band(rng.standard_normal(t.size), rate, 300.0, 6000.0, 2) * np.exp(-t / 0.25)
    _place(out, thud + crunch, lead)
    for _ in range(int(rng.integers(8, 20))):
        freq = rng.uniform(200.0, 2500.0)
        ring = _t(rng.uniform(0.1, 0.6), rate)
        tone = np.sin(2 * np.pi * freq * ring) * np.exp(-ring / rng.uniform(0.05, 0.2))
        _place(out, tone * rng.uniform(0.1, 0.5), lead + round(rng.uniform(0.0, 0.15) * rate))
    for _ in range(int(rng.integers(5, 15))):
        at = lead + round(rng.uniform(0.3, 1.8) * rate)
        _place(out, rng.standard_normal(round(0.01 * rate)) * rng.uniform(0.05, 0.3), at)
    return out


def _formant(x: F64, freq: float, bandwidth: float, rate: int) -> F64:
    """A vocal-tract resonance: a two-pole resonator at ``freq`` Hz, ``bandwidth`` Hz wide."""
    radius = np.exp(-np.pi * bandwidth / rate)
    theta = 2 * np.pi * freq / rate
    out: F64 = lfilter([1.0 - radius], [1.0, -2.0 * radius * np.cos(theta), radius**2], x)
    return out


def scream(rng: np.random.Generator, rate: int) -> F64:
    """Scream, 1–2 s: a source-filter voice. A glottal pulse train (every harmonic, 1/k) at
    f0 500–1000 Hz arching up by a third and wandering a few per cent, a subharmonic for the
    roughness of a strained voice, shimmer and breath noise, through the formants of an open
    /a/ (F1 ~1 kHz, F2 ~1.5 kHz, F3 ~3 kHz), then the soft clipping of a voice at full force.

    The earlier model (harmonics through a band-pass, no formants) was heard by YAMNet as an
    owl or a theremin (Screaming 0.08); this one as Screaming (0.23, its top class; mn04 0.10
    against 0.01; medians of 12 renderings). docs/twin.md, session 16.
    """
    t = _t(rng.uniform(1.0, 2.0), rate)
    arch = np.sin(np.pi * np.clip(t / t[-1], 0.0, 1.0)) ** 0.5
    wander = band(rng.standard_normal(t.size), rate, None, 25.0, 2)
    wander /= wander.std() + 1e-9
    freq = (
        rng.uniform(500.0, 1000.0) * (0.85 + 0.3 * arch) * (1.0 + 0.02 * np.clip(wander, -2.5, 2.5))
    )
    phase = np.cumsum(freq) / rate
    source = np.zeros(t.size)
    for k in range(1, 30):
        source += (freq * k < rate * 0.45) * np.sin(2 * np.pi * k * phase) / k
    source *= 1.0 + 0.1 * np.sin(np.pi * phase)  # subharmonic: period doubling
    shimmer = band(rng.standard_normal(t.size), rate, None, 60.0, 2)
    source *= 1.0 + 0.15 * shimmer / (shimmer.std() + 1e-9)
    source += 0.6 * rng.standard_normal(t.size) * np.abs(source).mean() * 3  # breath
    voice = (
        _formant(source, rng.uniform(850.0, 1150.0), 250.0, rate)
        + 0.9 * _formant(source, rng.uniform(1300.0, 1800.0), 300.0, rate)
        + 0.6 * _formant(source, rng.uniform(2600.0, 3300.0), 400.0, rate)
    )
    env = np.minimum(1.0, t / 0.04) * np.minimum(1.0, (t[-1] - t) / 0.2 + 0.02)
    shaped: F64 = np.tanh(2.0 * voice / (np.abs(voice).max() + 1e-9)) * env
    return shaped


def crowd(rng: np.random.Generator, rate: int) -> F64:
    """Crowd murmur: many syllable-rate bursts of voice-band noise (no intelligible speech)."""
    t = _t(10.0, rate)
    out = np.zeros(t.size)
    for _ in range(12):
        syllables = (np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6)) > 0.2).astype(
            np.float64
        )
        smooth = band(syllables, rate, None, 20.0, 2)
        low, high = rng.uniform(250, 500), rng.uniform(1500, 3000)
        voices = band(rng.standard_normal(t.size), rate, low, high, 2)
        out += voices * np.clip(smooth, 0.0, None) * rng.uniform(0.3, 1.0)
    return out


def door_slam(rng: np.random.Generator, rate: int) -> F64:
    """A car door or shutter slamming (non-target confuser): a dull thump with a short rattle."""
    t = _t(0.6, rate)
    thump = band(rng.standard_normal(t.size), rate, 60.0, 900.0, 2) * np.exp(-t / 0.04)
    rattle = band(rng.standard_normal(t.size), rate, 800.0, 4000.0, 2) * np.exp(-t / 0.1) * 0.2
    return thump + rattle


LOCAL_GENERATORS: dict[str, Generator] = {
    "shot": shot,
    "firework": firework,
    "glass": glass,
    "siren": siren,
    "car_alarm": car_alarm,
    "spray": spray,
    "skid": skid,
    "crash": crash,
    "scream": scream,
    "crowd": crowd,
    "door_slam": door_slam,
}

#: Kinds ``ouie.train.synth.SIM_GENERATORS`` provides (``(rng, rate) -> float64``): the
#: twin plays these from the compact model's own training synthesiser when it is importable.
TRAIN_SYNTH_KINDS = frozenset({"car_alarm", "spray", "skid", "crash"})
#: A real alarm sounds for tens of seconds; the training clips are a few seconds long.
MIN_DURATION_S: dict[str, float] = {"car_alarm": 12.0}

#: The synthetic kind played for a label when a scenario says ``source: auto``.
DEFAULT_KIND: dict[str, str] = {
    "gunshot": "shot",
    "explosion": "firework",
    "glass_breaking": "glass",
    "siren": "siren",
    "car_alarm": "car_alarm",
    "spray_can": "spray",
    "vehicle_crash": "vehicle_crash",
    "scream": "scream",
    "crowd": "crowd",
    "door_slam": "door_slam",
}


def _train_generator(kind: str) -> Generator | None:
    """``ouie.train.synth``'s generator for ``kind``, when that module offers one."""
    if kind not in TRAIN_SYNTH_KINDS:
        return None
    try:
        module = importlib.import_module("ouie.train.synth")
    except ImportError:
        return None
    registry = getattr(module, "SIM_GENERATORS", None)
    if isinstance(registry, dict) and callable(registry.get(kind)):
        found: Generator = registry[kind]
        return found
    return None


def _generator(kind: str) -> Generator | None:
    return _train_generator(kind) or LOCAL_GENERATORS.get(kind)


def _skid_then_crash(rng: np.random.Generator, rate: int) -> F64:
    skid_gen, crash_gen = _generator("skid"), _generator("crash")
    assert skid_gen is not None and crash_gen is not None
    first = skid_gen(rng, rate)
    second = crash_gen(rng, rate)
    return np.concatenate([first / max(float(np.abs(first).max()), 1e-9) * 0.6, second])


def _lengthen(signal: F64, rate: int, minimum_s: float) -> F64:
    """Repeat a pattern (with a short gap) until it lasts ``minimum_s``."""
    if signal.size >= minimum_s * rate:
        return signal
    gap = np.zeros(round(0.15 * rate))
    repeats = int(np.ceil(minimum_s * rate / (signal.size + gap.size)))
    return np.concatenate([np.concatenate([signal, gap]) for _ in range(repeats)])


LOCAL_GENERATORS["vehicle_crash"] = _skid_then_crash


def kinds() -> list[str]:
    return sorted(LOCAL_GENERATORS)


def synthesise(kind: str, rng: np.random.Generator, rate: int) -> F64:
    """A ``kind`` source at ``rate`` Hz, loudest 50 ms RMS = 1.0."""
    generator = _generator(kind)
    if generator is None:
        raise KeyError(f"unknown synthetic source {kind!r}; known: {', '.join(kinds())}")
    signal = _lengthen(generator(rng, rate), rate, MIN_DURATION_S.get(kind, 0.0))
    return normalise_loudest(signal, rate)


def provenance(kind: str) -> str:
    """Which code generates ``kind``: ``ouie.train.synth.<name>`` or ``ouie.sim.synthetic``."""
    if _train_generator(kind) is not None:
        return "ouie.train.synth"
    return "ouie.sim.synthetic"
