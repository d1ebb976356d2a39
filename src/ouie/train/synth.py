"""Synthetic sound sources for the classes the dev data barely has, and for backgrounds.

``../shared/data/dev`` holds one or two real clips each of ``car_alarm``, ``spray_can`` and
``vehicle_crash`` — enough to check a mapping, not to train. ouie-compact learns these
classes from the generators below (its data card says so), built from what the sounds are
physically:

- car alarm: a piezo horn driven by an electronic pattern — stepped two-tone, fast warble,
  repeated chirps, pulsed beeps — rich in odd harmonics and saturated;
- spray can: band-passed hiss bursts, often after a shake (a mixing ball rattling);
- vehicle crash: a tyre skid (tonal squeal with harmonics and road noise), an impact
  (low thump, metal crunch) and debris, alone or in sequence;
- traffic: low-passed rumble with pass-bys, an extra background for mixing (non-target).
- steady_noise: coloured hiss (microphone, wind, ventilation), another background.

Every generator takes a ``numpy.random.Generator`` and returns float32 mono audio at
16 kHz with a peak near 0.5, so runs are reproducible from a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, resample_poly, sosfilt

from ouie.core.labels import EventLabel

FloatArray = npt.NDArray[np.float32]
SAMPLE_RATE = 16000
NYQUIST = SAMPLE_RATE / 2.0

Generator = Callable[[np.random.Generator], FloatArray]


def _normalise(audio: npt.NDArray[np.float64], peak: float = 0.5) -> FloatArray:
    top = float(np.max(np.abs(audio))) if audio.size else 0.0
    scaled = audio * (peak / top) if top > 0.0 else audio
    return np.asarray(scaled, dtype=np.float32)


def _band(
    audio: npt.NDArray[np.float64], low: float | None, high: float | None, order: int = 4
) -> npt.NDArray[np.float64]:
    """Butterworth band/low/high-pass; ``None`` leaves that side open."""
    high = min(high, NYQUIST * 0.98) if high is not None else None
    if low is not None and high is not None:
        sos = butter(order, [low, high], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    elif low is not None:
        sos = butter(order, low, btype="highpass", fs=SAMPLE_RATE, output="sos")
    elif high is not None:
        sos = butter(order, high, btype="lowpass", fs=SAMPLE_RATE, output="sos")
    else:
        return audio
    return np.asarray(sosfilt(sos, audio), dtype=np.float64)


def _smooth_noise(rng: np.random.Generator, n: int, cutoff_hz: float) -> npt.NDArray[np.float64]:
    """Slowly varying zero-mean noise (unit std), for pitch jitter and amplitude flutter."""
    noise = _band(rng.standard_normal(n + SAMPLE_RATE // 2), None, cutoff_hz, order=2)
    noise = noise[SAMPLE_RATE // 2 :]
    std = float(noise.std())
    return noise / std if std > 0 else noise


def _harmonic_tone(
    rng: np.random.Generator, freq: npt.NDArray[np.float64], max_harmonics: int
) -> npt.NDArray[np.float64]:
    """Sum of harmonics of an instantaneous-frequency track, below Nyquist."""
    phase = 2.0 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    n_harm = int(rng.integers(2, max_harmonics + 1))
    tilt = rng.uniform(0.6, 1.6)
    odd_only = rng.random() < 0.6
    out = np.zeros_like(freq)
    for k in range(1, n_harm + 1):
        if odd_only and k % 2 == 0:
            continue
        audible = freq * k < NYQUIST * 0.95
        out += audible * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k**tilt
    return out


def _saturate(audio: npt.NDArray[np.float64], drive: float) -> npt.NDArray[np.float64]:
    """``tanh`` overdrive computed at 4× the rate, so its new harmonics do not alias."""
    up = resample_poly(audio / (np.max(np.abs(audio)) + 1e-9), 4, 1)
    return np.asarray(resample_poly(np.tanh(drive * up), 1, 4)[: audio.size], dtype=np.float64)


def _envelope(n: int, attack: int, release: int) -> npt.NDArray[np.float64]:
    env = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    if attack > 0:
        env[:attack] = np.linspace(0.0, 1.0, attack)
    if release > 0:
        env[n - release :] *= np.linspace(1.0, 0.0, release)
    return env


# --- car alarm --------------------------------------------------------------------------


def _alarm_pattern(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """Instantaneous frequency [n] of one alarm pattern, and gating folded in as 0 Hz."""
    t = np.arange(n) / SAMPLE_RATE
    kind = rng.choice(["two_tone", "warble", "chirp", "beep"])
    base = rng.uniform(500.0, 2200.0)
    if kind == "two_tone":
        step = rng.uniform(0.06, 0.4)
        high = base * rng.uniform(1.15, 1.9)
        return np.where((t // step) % 2 == 0, base, high)
    if kind == "warble":
        rate = rng.uniform(4.0, 14.0)
        depth = base * rng.uniform(0.15, 0.6)
        shape = np.sin(2 * np.pi * rate * t)
        if rng.random() < 0.5:  # triangle sweep
            shape = 2.0 * np.abs(2.0 * ((rate * t) % 1.0) - 1.0) - 1.0
        return base + depth * shape
    if kind == "chirp":
        period = rng.uniform(0.08, 0.45)
        span = base * rng.uniform(0.4, 1.5)
        ramp = (t % period) / period
        return base + span * (ramp if rng.random() < 0.7 else 1.0 - ramp)
    on, off = rng.uniform(0.05, 0.35), rng.uniform(0.04, 0.3)
    gate = (t % (on + off)) < on
    return np.where(gate, base, 0.0)


def car_alarm(rng: np.random.Generator) -> FloatArray:
    """1.5–4 s of a car alarm: one or two patterns through a saturated horn."""
    n = int(rng.uniform(1.5, 4.0) * SAMPLE_RATE)
    split = int(n * rng.uniform(0.3, 0.7)) if rng.random() < 0.4 else n
    freq = np.concatenate([_alarm_pattern(rng, split), _alarm_pattern(rng, n - split)])
    gate = (freq > 0).astype(np.float64)
    freq = np.where(freq > 0, freq, 1.0)
    freq = freq * (1.0 + 0.003 * _smooth_noise(rng, n, 5.0))
    gate = _band(gate, None, 200.0, order=2)  # soften the on/off clicks
    tone = _harmonic_tone(rng, freq, max_harmonics=9) * gate
    drive = rng.uniform(1.0, 6.0)  # piezo horns run saturated
    tone = _saturate(tone, drive)
    resonance = rng.uniform(1500.0, 4000.0)
    tone = tone + 0.6 * _band(tone, resonance * 0.7, resonance * 1.3, order=2)
    if rng.random() < 0.5:  # distance: highs fade
        tone = _band(tone, None, rng.uniform(2500.0, 7000.0), order=2)
    return _normalise(tone * _envelope(n, 80, 400))


# --- spray can --------------------------------------------------------------------------


def _hiss(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    low = rng.uniform(300.0, 3500.0)
    high = rng.uniform(max(low * 1.5, 5500.0), 7900.0)
    hiss = _band(rng.standard_normal(n), low, high, order=int(rng.integers(2, 5)))
    flutter = 1.0 + rng.uniform(0.03, 0.2) * _smooth_noise(rng, n, 12.0)
    attack = int(rng.uniform(0.01, 0.08) * SAMPLE_RATE)
    release = int(rng.uniform(0.03, 0.2) * SAMPLE_RATE)
    return np.asarray(hiss * flutter * _envelope(n, attack, release), dtype=np.float64)


def _rattle(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """A mixing ball knocking inside the can: clusters of short resonant clicks."""
    out = np.zeros(n)
    rate = rng.uniform(3.0, 8.0)
    mode = rng.uniform(1800.0, 6000.0)
    decay = rng.uniform(0.002, 0.01)
    click_len = int(0.04 * SAMPLE_RATE)
    tc = np.arange(click_len) / SAMPLE_RATE
    t = 0.0
    while t < n / SAMPLE_RATE - 0.05:
        for _ in range(int(rng.integers(2, 7))):
            start = int((t + rng.uniform(0.0, 0.05)) * SAMPLE_RATE)
            if start + click_len >= n:
                continue
            f = mode * rng.uniform(0.85, 1.15)
            click = np.sin(2 * np.pi * f * tc) * np.exp(-tc / decay)
            click += 0.3 * rng.standard_normal(click_len) * np.exp(-tc / (decay / 2))
            out[start : start + click_len] += rng.uniform(0.3, 1.0) * click
        t += 1.0 / rate * rng.uniform(0.8, 1.2)
    return out


def spray_can(rng: np.random.Generator) -> FloatArray:
    """A shake then a hiss, a hiss alone, or a shake alone (1–3.5 s)."""
    kind = rng.choice(["shake_spray", "spray", "spray", "shake"])
    parts: list[npt.NDArray[np.float64]] = []
    if kind in ("shake_spray", "shake"):
        rattle = _rattle(rng, int(rng.uniform(0.6, 1.8) * SAMPLE_RATE))
        parts.append(rattle / (np.max(np.abs(rattle)) + 1e-9) * rng.uniform(0.3, 1.0))
        parts.append(np.zeros(int(rng.uniform(0.05, 0.4) * SAMPLE_RATE)))
    if kind != "shake":
        for _ in range(int(rng.integers(1, 3))):
            burst = _hiss(rng, int(rng.uniform(0.4, 2.0) * SAMPLE_RATE))
            parts.append(burst / (np.max(np.abs(burst)) + 1e-9))
            parts.append(np.zeros(int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)))
    return _normalise(np.concatenate(parts))


# --- vehicle crash ----------------------------------------------------------------------


def _skid(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    f0 = rng.uniform(350.0, 1600.0)
    drift = 1.0 + rng.uniform(-0.25, 0.15) * np.linspace(0.0, 1.0, n)
    jitter = 1.0 + rng.uniform(0.005, 0.04) * _smooth_noise(rng, n, 30.0)
    t = np.arange(n) / SAMPLE_RATE
    vibrato = 1.0 + rng.uniform(0.0, 0.04) * np.sin(2 * np.pi * rng.uniform(4.0, 15.0) * t)
    squeal = _harmonic_tone(rng, f0 * drift * jitter * vibrato, max_harmonics=6)
    rough = 1.0 + rng.uniform(0.1, 0.5) * _smooth_noise(rng, n, rng.uniform(20.0, 80.0))
    road = _band(rng.standard_normal(n), 150.0, rng.uniform(2000.0, 5000.0), order=2)
    road_gain = 10 ** (rng.uniform(-20.0, -6.0) / 20) * np.std(squeal) / (np.std(road) + 1e-9)
    attack = int(rng.uniform(0.02, 0.2) * SAMPLE_RATE)
    release = int(rng.uniform(0.05, 0.4) * SAMPLE_RATE)
    return np.asarray((squeal * rough + road_gain * road) * _envelope(n, attack, release))


def _impact(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    t = np.arange(n) / SAMPLE_RATE
    thump_f = rng.uniform(35.0, 120.0)
    thump = np.sin(2 * np.pi * thump_f * t) * np.exp(-t / rng.uniform(0.05, 0.2))
    thump += _band(rng.standard_normal(n), None, 400.0, order=2) * np.exp(-t / 0.06)
    crunch = np.zeros(n)
    for _ in range(int(rng.integers(3, 8))):  # metal panel modes
        f = rng.uniform(300.0, 4500.0)
        width = f * rng.uniform(0.05, 0.3)
        crunch += _band(rng.standard_normal(n), f - width, f + width, order=2) * rng.uniform(
            0.3, 1.0
        )
    crunch *= np.exp(-t / rng.uniform(0.15, 0.7))
    crunch *= 1.0 + 0.6 * np.abs(_smooth_noise(rng, n, 60.0))  # crumpling
    debris = np.zeros(n)
    if rng.random() < 0.7:
        n_bits = int(rng.integers(10, 60))
        times = rng.exponential(rng.uniform(0.15, 0.6), n_bits)
        bit_len = int(0.03 * SAMPLE_RATE)
        tb = np.arange(bit_len) / SAMPLE_RATE
        for when in times:
            start = int(when * SAMPLE_RATE)
            if start + bit_len >= n:
                continue
            f = rng.uniform(1500.0, 7000.0)
            bit = np.sin(2 * np.pi * f * tb) * np.exp(-tb / rng.uniform(0.002, 0.012))
            debris[start : start + bit_len] += rng.uniform(0.05, 0.5) * bit
    mix = (
        rng.uniform(0.5, 1.5) * thump / (np.max(np.abs(thump)) + 1e-9)
        + rng.uniform(0.5, 1.5) * crunch / (np.max(np.abs(crunch)) + 1e-9)
        + debris
    )
    return np.asarray(mix * _envelope(n, int(0.002 * SAMPLE_RATE), int(0.1 * SAMPLE_RATE)))


def vehicle_crash(rng: np.random.Generator) -> FloatArray:
    """A skid, an impact, or a skid into an impact (1–4 s)."""
    kind = rng.choice(["skid_crash", "skid", "crash"])
    parts: list[npt.NDArray[np.float64]] = []
    if kind in ("skid_crash", "skid"):
        skid = _skid(rng, int(rng.uniform(0.6, 2.5) * SAMPLE_RATE))
        parts.append(skid / (np.max(np.abs(skid)) + 1e-9) * rng.uniform(0.3, 0.8))
    if kind in ("skid_crash", "crash"):
        impact = _impact(rng, int(rng.uniform(0.8, 2.0) * SAMPLE_RATE))
        parts.append(impact / (np.max(np.abs(impact)) + 1e-9))
    parts.append(np.zeros(int(0.1 * SAMPLE_RATE)))
    return _normalise(np.concatenate(parts))


# --- siren ------------------------------------------------------------------------------


def siren(rng: np.random.Generator) -> FloatArray:
    """2–5 s of an emergency siren: wail, yelp or hi-lo, passing by (Doppler, swell).

    The dev data has real sirens (about 25 training clips); these add variety so that the
    tonal classes (siren, car alarm, skid, scream) are told apart by their patterns.
    """
    n = int(rng.uniform(2.0, 5.0) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    kind = rng.choice(["wail", "yelp", "hilo"])
    low = rng.uniform(450.0, 900.0)
    high = low * rng.uniform(1.6, 2.6)
    if kind == "wail":
        period = rng.uniform(2.0, 6.0)
        phase = (t / period + rng.uniform(0, 1)) % 1.0
        rise = rng.uniform(0.4, 0.7)
        shape = np.where(phase < rise, phase / rise, (1.0 - phase) / (1.0 - rise))
        freq = low + (high - low) * np.sin(0.5 * np.pi * shape)
    elif kind == "yelp":
        period = rng.uniform(0.15, 0.45)
        phase = (t / period) % 1.0
        freq = low + (high - low) * (0.5 - 0.5 * np.cos(2 * np.pi * phase))
    else:
        step = rng.uniform(0.4, 0.9)
        high = low * rng.uniform(1.15, 1.5)
        freq = np.where((t // step) % 2 == 0, low, high)
        freq = _band(freq, None, 30.0, order=1)  # mechanical glide between the tones
    doppler = 1.0 + rng.uniform(0.0, 0.04) * np.tanh((t - rng.uniform(0, t[-1])) * 2.0)
    tone = _harmonic_tone(rng, freq * doppler, max_harmonics=7)
    tone = _saturate(tone, rng.uniform(0.5, 3.0))
    centre, width = rng.uniform(0.0, t[-1]), rng.uniform(1.0, 6.0)
    swell = 0.3 + np.exp(-0.5 * ((t - centre) / width) ** 2)
    if rng.random() < 0.6:  # distance
        tone = _band(tone, None, rng.uniform(2000.0, 6000.0), order=2)
    return _normalise(tone * swell * _envelope(n, 800, 800))


# --- traffic background (non-target) ----------------------------------------------------


def traffic(rng: np.random.Generator, duration_s: float = 4.0) -> FloatArray:
    """Traffic-like ambience: brown rumble, tyre hiss, engine hum, cars passing by."""
    n = int(duration_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rumble = np.cumsum(rng.standard_normal(n))
    rumble = _band(rumble - rumble.mean(), 20.0, rng.uniform(300.0, 1500.0), order=2)
    rumble /= np.std(rumble) + 1e-9
    tyres = _band(rng.standard_normal(n), 300.0, rng.uniform(2000.0, 6000.0), order=2)
    tyres /= np.std(tyres) + 1e-9
    swell = np.full(n, 0.3)
    for _ in range(int(rng.integers(0, 4))):  # pass-bys
        centre, width = rng.uniform(0, duration_s), rng.uniform(0.5, 2.0)
        swell += rng.uniform(0.5, 2.0) * np.exp(-0.5 * ((t - centre) / (width / 2.0)) ** 2)
    hum_f = rng.uniform(25.0, 110.0)
    hum = sum(np.sin(2 * np.pi * hum_f * k * t + rng.uniform(0, 6.28)) / k for k in (1, 2, 3, 4))
    audio = rumble + rng.uniform(0.1, 0.6) * tyres * swell + rng.uniform(0.0, 0.4) * hum * swell
    return _normalise(np.asarray(audio, dtype=np.float64), peak=rng.uniform(0.05, 0.5))


def steady_noise(rng: np.random.Generator, duration_s: float = 4.0) -> FloatArray:
    """Steady coloured noise (slope −9…+3 dB/octave, slow wobble): microphone and
    preamplifier hiss, wind, ventilation. A background, so that a hiss alone is not read
    as a spray can: the spray-can generator is itself band-passed noise."""
    n = int(duration_s * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE), 20.0)
    slope_db_per_octave = rng.uniform(-9.0, 3.0)
    spectrum *= (freqs / 1000.0) ** (slope_db_per_octave / (20.0 * np.log10(2.0)))
    noise = np.fft.irfft(spectrum, n)
    if rng.random() < 0.5:
        noise = _band(noise, rng.uniform(20.0, 400.0), rng.uniform(3000.0, 7900.0), order=2)
    wobble = 1.0 + rng.uniform(0.0, 0.3) * _smooth_noise(rng, n, rng.uniform(0.5, 4.0))
    return _normalise(noise * wobble, peak=rng.uniform(0.02, 0.5))


def skid(rng: np.random.Generator) -> FloatArray:
    """A tyre skid alone (0.6–2.5 s)."""
    return _normalise(_skid(rng, int(rng.uniform(0.6, 2.5) * SAMPLE_RATE)))


def crash(rng: np.random.Generator) -> FloatArray:
    """An impact with crunch and debris, no skid (0.8–2 s)."""
    return _normalise(_impact(rng, int(rng.uniform(0.8, 2.0) * SAMPLE_RATE)))


#: Generators of target events, by label (siren adds variety to the real sirens).
EVENT_GENERATORS: dict[EventLabel, Generator] = {
    EventLabel.CAR_ALARM: car_alarm,
    EventLabel.SPRAY_CAN: spray_can,
    EventLabel.VEHICLE_CRASH: vehicle_crash,
    EventLabel.SIREN: siren,
}
#: Labels whose real training clips are too few to learn from: synthetic sources dominate.
SPARSE_LABELS = frozenset({EventLabel.CAR_ALARM, EventLabel.SPRAY_CAN, EventLabel.VEHICLE_CRASH})


SimGenerator = Callable[[np.random.Generator, int], npt.NDArray[np.float64]]


def _at_rate(generator: Generator) -> SimGenerator:
    def generate(rng: np.random.Generator, rate: int) -> npt.NDArray[np.float64]:
        audio = generator(rng).astype(np.float64)
        if rate == SAMPLE_RATE:
            return audio
        ratio = Fraction(rate, SAMPLE_RATE).limit_denominator(1000)
        return np.asarray(resample_poly(audio, ratio.numerator, ratio.denominator), np.float64)

    return generate


#: The same sources for the digital twin (``ouie.sim.synthetic``): ``(rng, rate)`` → float64,
#: so the twin plays what the model was taught.
SIM_GENERATORS: dict[str, SimGenerator] = {
    "car_alarm": _at_rate(car_alarm),
    "spray": _at_rate(spray_can),
    "skid": _at_rate(skid),
    "crash": _at_rate(crash),
}


#: ``source_repo`` of the generated clips in a dataset written by ``write_dataset``.
SYNTH_SOURCE = "ouie/train.synth"


def write_dataset(out_dir: Path, per_class: int, seed: int) -> Path:
    """Write ``per_class`` generated events of every ``EVENT_GENERATORS`` label, and as many
    traffic and steady-noise backgrounds, as 16 kHz FLAC with a ``labels.csv`` (the dataset
    layout of ``ouie.eval.dataset``), so the teacher cache and the distillation treat them
    like any recording source. Outside the repository: generated audio is never committed."""
    import csv

    import soundfile as sf

    rng = np.random.default_rng(seed)
    jobs: list[tuple[str, str, Callable[[np.random.Generator], FloatArray]]] = [
        (label.value, label.value, generator) for label, generator in EVENT_GENERATORS.items()
    ]
    jobs += [("traffic", "background", traffic), ("steady_noise", "background", steady_noise)]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    for name, label, generator in jobs:
        (out_dir / name).mkdir(exist_ok=True)
        for i in range(per_class):
            audio = generator(rng)
            file = f"{name}/{name}_{i:04d}.flac"
            sf.write(str(out_dir / file), audio, SAMPLE_RATE, subtype="PCM_16")
            rows.append(
                {
                    "file": file,
                    "label": label,
                    "source_repo": SYNTH_SOURCE,
                    "licence": "generated by ouie (Apache-2.0)",
                    "duration_s": f"{len(audio) / SAMPLE_RATE:.3f}",
                }
            )
    with (out_dir / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out_dir
