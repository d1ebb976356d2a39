"""``ouie eval privacy``: measure what the real node emits when it hears people talk.

Recordings go through the real streaming pipeline (``DetectionPipeline.push``, in capture
sized chunks, with the real speech guard) and every event is turned into the real wire
message (``ouie.node.runtime.event_message``) and serialised by the real encoder; status
heartbeats are added at the node's interval. Meanwhile a ``FileWatch`` records every audio
or array file written under the temporary folder, the working directory and the home
directory. The figures feed the DPIA.

Recording sets:

* ``espeak``: synthetic speech, several languages and voices, made in memory with
  ``espeak-ng --stdout`` (no file is written, so the file watch stays meaningful);
* ``dataset_speech``: clips labelled ``speech`` in a ``labels.csv`` dataset;
* ``speech_in_noise``: each speech recording mixed with street background (``background``
  clips of the dataset, else generated noise) at each ratio of ``SPEECH_NOISE_RATIOS_DB``
  (+6, 0 and −6 dB: a voice across the street is quieter than the traffic, and that is
  where the speech detector hears least) — still nothing to report;
* ``speech_with_events``: speech with a target sound laid over it (a mixture of the two):
  measures what the guard lets through when something does happen during a conversation.

``events_on_speech`` counts events on the first three sets (there is nothing to detect in
them); ``suppression_rate`` is the share of candidate events on them that the guard
suppressed (``None`` when the classifier never proposed one, reported as such).
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field

from ouie.compliance.fswatch import AudioFile, FileWatch, default_roots
from ouie.config.node import EventSettings, NodeSettings, PrivacySettings
from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, StatusMessage
from ouie.eval.backgrounds import fade_edges
from ouie.eval.dataset import load_dataset
from ouie.eval.noise import RATE, mix, overlay, street_noise
from ouie.node.audio_io import read_audio, to_rate
from ouie.node.classifiers.base import Classifier
from ouie.node.pipeline import detect_offline
from ouie.node.runtime import NodeRuntime
from ouie.node.sources import AudioChunk, AudioSource
from ouie.transport.base import encode

FloatArray = npt.NDArray[np.float32]
CHUNK_S = 0.1
STATUS_INTERVAL_S = 30.0
GAP_S = 1.0
#: Each recording fades in and out over this many seconds in the node's stream. A microphone
#: never jumps from digital silence to a street's full level; without the fade, the step into
#: a recording mixed at 0 dB over traffic was itself heard as a faint crash (the cascade,
#: peak 0.054, session 15): an artefact of laying recordings end to end, not of speech.
FADE_S = 0.1
MAX_BACKGROUNDS = 20
CLOCK_ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)

SENTENCES: dict[str, str] = {
    "en": "Good evening, I am waiting for my friend near the square, she should be here soon.",
    "fr": "Bonsoir, j'attends mon amie près de la place, elle devrait bientôt arriver.",
    "de": "Guten Abend, ich warte auf meine Freundin am Platz, sie kommt gleich.",
    "es": "Buenas noches, estoy esperando a mi amiga cerca de la plaza, llegará pronto.",
    "it": "Buonasera, sto aspettando la mia amica vicino alla piazza, arriverà presto.",
    "pt": "Boa noite, estou à espera da minha amiga perto da praça, ela chega já.",
    "nl": "Goedenavond, ik wacht op mijn vriendin bij het plein, ze komt zo.",
    "ar": "مساء الخير، أنا أنتظر صديقتي قرب الساحة، ستصل قريبا",
    "tr": "İyi akşamlar, meydanın yakınında arkadaşımı bekliyorum, birazdan gelir.",
    "pl": "Dobry wieczór, czekam na przyjaciółkę przy placu, zaraz przyjdzie.",
}
VOICES: tuple[str, ...] = ("", "+f3", "+m5")
#: A loud, fast and a shouted-like variant (espeak amplitude, speed, pitch).
STYLES: tuple[tuple[str, ...], ...] = ((), ("-a", "180", "-s", "190", "-p", "70"))
EVENT_LABELS_FOR_MIX = ("gunshot", "glass_breaking", "scream", "siren", "explosion")

SetName = Literal["espeak", "dataset_speech", "speech_in_noise", "speech_with_events"]
SPEECH_ONLY_SETS: tuple[SetName, ...] = ("espeak", "dataset_speech", "speech_in_noise")
#: Speech-to-background ratios (RMS) of the ``speech_in_noise`` set; each speech recording is
#: mixed at every one. Until session 15 only +6 dB was measured.
SPEECH_NOISE_RATIOS_DB: tuple[float, ...] = (6.0, 0.0, -6.0)


class PrivacyEvalError(RuntimeError):
    """The evaluation could not run (no speech at all, espeak failure...)."""


@dataclass(frozen=True)
class Recording:
    name: str
    set: SetName
    audio: FloatArray
    rate: int

    @property
    def seconds(self) -> float:
        return self.audio.size / self.rate


# --------------------------------------------------------------------------- sources


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak(text: str, voice: str, extra: Sequence[str] = ()) -> tuple[FloatArray, int]:
    """Speech from espeak-ng, read from its standard output: nothing touches the disk."""
    result = subprocess.run(
        ["espeak-ng", "-v", voice, *extra, "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    audio, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    return np.asarray(audio, dtype=np.float32), int(rate)


def espeak_recordings(
    languages: Sequence[str] | None = None, voices: Sequence[str] = VOICES
) -> Iterator[Recording]:
    for language in languages or sorted(SENTENCES):
        for voice in voices:
            for style in STYLES:
                audio, rate = espeak(SENTENCES[language], language + voice, style)
                tag = "loud" if style else "plain"
                yield Recording(f"espeak:{language}{voice}:{tag}", "espeak", audio, rate)


@dataclass(frozen=True)
class DatasetClips:
    speech: list[Path]
    background: list[Path]
    events: dict[str, list[Path]]


def dataset_clips(directory: Path) -> DatasetClips:
    clips = load_dataset(directory)
    by_label: dict[str, list[Path]] = {}
    for clip in clips:
        by_label.setdefault(clip.label, []).append(clip.path)
    return DatasetClips(
        speech=sorted(by_label.get("speech", [])),
        background=sorted(by_label.get("background", [])),
        events={label: sorted(by_label.get(label, [])) for label in EVENT_LABELS_FOR_MIX},
    )


def _at_rate(audio: FloatArray, rate: int) -> FloatArray:
    return to_rate(audio, rate, RATE) if rate != RATE else audio


@dataclass
class BuildNotes:
    backgrounds_used: int = 0
    backgrounds_rejected: int = 0


def build_recordings(
    data_dir: Path | None,
    use_espeak: bool,
    max_clips: int | None,
    seed: int = 0,
    languages: Sequence[str] | None = None,
    screen: Callable[[FloatArray], bool] | None = None,
    notes: BuildNotes | None = None,
) -> Iterator[Recording]:
    """Every recording of the evaluation, at 16 kHz, generated lazily.

    ``screen(background)`` says whether a background clip may be mixed under speech: a
    background in which the classifier already finds an event (a real siren in a city
    ambience) would make an event "on speech" that speech did not cause."""
    notes = notes if notes is not None else BuildNotes()
    rng = np.random.default_rng(seed)
    clips = dataset_clips(data_dir) if data_dir is not None else None
    speech: list[Recording] = []
    if use_espeak:
        if not espeak_available():
            raise PrivacyEvalError("espeak-ng is not installed (apt-get install espeak-ng)")
        speech += list(espeak_recordings(languages))
    if clips is not None:
        chosen = clips.speech[:max_clips] if max_clips else clips.speech
        for path in chosen:
            audio, rate = read_audio(path)
            speech.append(Recording(f"dataset:{path.name}", "dataset_speech", audio, rate))
    if not speech:
        raise PrivacyEvalError("no speech to evaluate: give --data with speech clips or espeak")
    speech = [Recording(r.name, r.set, _at_rate(r.audio, r.rate), RATE) for r in speech]
    yield from speech
    backgrounds = []
    for path in clips.background[:MAX_BACKGROUNDS] if clips else []:
        audio = _at_rate(*read_audio(path))
        if screen is None or screen(audio):
            backgrounds.append(audio)
        else:
            notes.backgrounds_rejected += 1
    notes.backgrounds_used = len(backgrounds)
    for step, ratio in enumerate(SPEECH_NOISE_RATIOS_DB):
        for index, rec in enumerate(speech):
            # each ratio puts a recording over another background (the first as before)
            noise = (
                backgrounds[(index + step) % len(backgrounds)]
                if backgrounds
                else street_noise(rec.audio.size, rng)
            )
            yield Recording(
                f"{rec.name}+noise{ratio:+.0f}dB",
                "speech_in_noise",
                mix(rec.audio, noise, ratio_db=ratio),
                RATE,
            )
    if clips is None:
        return
    per_label = max(1, (max_clips or 10) // 2)
    for label in EVENT_LABELS_FOR_MIX:
        paths = clips.events.get(label, [])
        if not paths:
            continue
        picks = rng.choice(len(paths), size=min(per_label, len(paths)), replace=False)
        for n, pick in enumerate(sorted(int(p) for p in picks)):
            event = _at_rate(*read_audio(paths[pick]))
            rec = speech[(n * 7 + len(label)) % len(speech)]
            yield Recording(
                f"{rec.name}+{label}:{paths[pick].name}",
                "speech_with_events",
                overlay(rec.audio, event),
                RATE,
            )


# --------------------------------------------------------------------------- the run


class SetStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recordings: int = 0
    seconds: float = 0.0
    events: int = 0
    suppressions: int = 0
    events_by_label: dict[str, int] = Field(default_factory=dict)


class SpeechEvent(BaseModel):
    """One event published on a speech-only recording: which one, and where in it, so that a
    failing run can be looked into (the recording's name, never its audio)."""

    model_config = ConfigDict(extra="forbid")

    recording: str
    set: SetName
    label: EventLabel
    onset_s: float = Field(description="seconds from the start of the recording")
    peak_score: float
    speech_present: bool


class AudioFileReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    reason: str
    seen_by: str
    owner: str
    pid: int | None


class PrivacyReport(BaseModel):
    """The JSON that ``ouie eval privacy --json`` writes and ``ouie dpia`` reads."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ouie.eval.privacy"] = "ouie.eval.privacy"
    version: Literal[1] = 1
    created_at: datetime
    backend: str
    model_id: str
    data_dir: str | None
    espeak: bool
    speech_settings: dict[str, float]
    # headline figures
    events_on_speech: int
    speech_seconds: float
    speech_recordings: int
    speech_candidates: int
    speech_suppressions: int
    suppression_rate: float | None
    bytes_per_hour: float
    largest_message_bytes: int
    largest_message_kind: str
    audio_files_written: int
    # detail
    sets: dict[str, SetStats]
    speech_events: list[SpeechEvent] = Field(
        default_factory=list, description="every event on a speech-only recording"
    )
    messages: int
    event_messages: int
    status_messages: int
    bytes_total: int
    status_message_mean_bytes: float
    status_interval_s: float
    audio_hours: float
    messages_with_arrays: int
    backgrounds_used: int = 0
    backgrounds_rejected: int = Field(
        default=0, description="background clips left out because they hold an event"
    )
    audio_files: list[AudioFileReport]
    foreign_audio_files: list[AudioFileReport] = Field(
        default_factory=list,
        description="audio written meanwhile by processes outside this run (not counted)",
    )
    watched_roots: list[str]
    watch_method: str
    files_checked: int
    wall_s: float
    passed: bool
    failures: list[str]


class _CapturingPublisher:
    """The node's publisher, keeping each serialised message (what would go on the wire)."""

    def __init__(self) -> None:
        self.events: list[tuple[EventMessage, bytes]] = []
        self.status: list[bytes] = []

    async def publish_event(self, message: EventMessage) -> None:
        self.events.append((message, encode(message)))

    async def publish_status(self, message: StatusMessage) -> None:
        self.status.append(encode(message))

    async def close(self) -> None:
        return None

    @property
    def spooled_events(self) -> int:
        return 0


@dataclass
class _Span:
    recording: Recording
    start_s: float
    end_s: float  # end of the silence gap after it
    suppressions_before: int


class _Feed:
    """The node's audio source: all recordings as one 16 kHz stream, 0.1 s chunks, with a
    silence gap after each so that one recording's events cannot run into the next."""

    def __init__(self, recordings: Iterator[Recording], gap_s: float = GAP_S) -> None:
        self.recordings = recordings
        self.gap = np.zeros(round(gap_s * RATE), dtype=np.float32)
        self.spans: list[_Span] = []
        self.runtime: NodeRuntime | None = None
        self.progress: Callable[[Recording], None] | None = None

    def _suppressions(self) -> int:
        pipeline = self.runtime.pipeline if self.runtime is not None else None
        return pipeline.stats.speech_suppressions if pipeline is not None else 0

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        position = 0
        step = round(CHUNK_S * RATE)
        for recording in self.recordings:
            if self.progress is not None:
                self.progress(recording)
            # the previous chunk has been processed when the runtime asks for the next one
            start = position
            self.spans.append(_Span(recording, start / RATE, 0.0, self._suppressions()))
            audio = np.concatenate([fade_edges(recording.audio, round(FADE_S * RATE)), self.gap])
            for offset in range(0, audio.size, step):
                yield AudioChunk(audio[offset : offset + step])
                await asyncio.sleep(0)
            position += audio.size
            self.spans[-1].end_s = position / RATE

    def span_of_event(self, onset_s: float, offset_s: float) -> _Span | None:
        """The recording an event belongs to: the one its midpoint falls in (an onset rounded
        to the millisecond can fall a fraction of a sample before its recording starts)."""
        return self.span_of(0.5 * (onset_s + max(onset_s, offset_s)))

    def span_of(self, seconds: float) -> _Span | None:
        for span in self.spans:
            if span.start_s <= seconds < span.end_s:
                return span
        return self.spans[-1] if self.spans and seconds >= self.spans[-1].end_s else None


def _run_node(
    classifier: Classifier,
    events: EventSettings,
    privacy: PrivacySettings,
    feed: _Feed,
    status_interval_s: float,
) -> tuple[_CapturingPublisher, int]:
    """``ouie node`` (the real runtime) over the feed; returns what it published and the
    final suppression count."""
    settings = NodeSettings.model_validate(
        {
            "site": "privacy-eval",
            "sensor_id": "eval-1",
            "events": events.model_dump(),
            "privacy": privacy.model_dump(),
            "publish": {"kind": "jsonl", "status_interval_s": status_interval_s},
        }
    )
    publisher = _CapturingPublisher()
    runtime = NodeRuntime(
        settings,
        classifier=classifier,
        publisher=publisher,
        source=AudioSource(RATE, feed.chunks()),
        clock_origin=CLOCK_ORIGIN,
        clock_source="simulated",
        handle_signals=False,
    )
    feed.runtime = runtime
    summary = asyncio.run(runtime.run())
    return publisher, summary.stats.speech_suppressions


def _has_array(value: Any) -> bool:
    if isinstance(value, list):
        return True
    if isinstance(value, dict):
        return any(_has_array(v) for v in value.values())
    return False


def run_privacy_eval(
    classifier: Classifier,
    recordings: Callable[[], Iterator[Recording]],
    *,
    backend: str,
    events: EventSettings | None = None,
    privacy: PrivacySettings | None = None,
    watch_roots: Sequence[Path] | None = None,
    data_dir: Path | None = None,
    espeak_used: bool = True,
    status_interval_s: float = STATUS_INTERVAL_S,
    progress: Callable[[Recording], None] | None = None,
) -> PrivacyReport:
    """Run every recording through the node, under a file watch, and report.

    Bytes per hour: the event messages actually published, plus one heartbeat every
    ``status_interval_s`` of audio at the mean size of the heartbeats the node published
    (the runtime's heartbeat follows the wall clock, and this run is faster than real time).
    """
    events = events or EventSettings()
    privacy = privacy or PrivacySettings()
    started = time.monotonic()
    roots = list(watch_roots) if watch_roots is not None else default_roots()
    feed = _Feed(recordings())
    feed.progress = progress
    with FileWatch(roots) as watch:
        publisher, total_suppressions = _run_node(
            classifier, events, privacy, feed, status_interval_s
        )
    result = watch.result
    assert result is not None
    if not feed.spans:
        raise PrivacyEvalError("no recording was evaluated")

    sets: dict[str, SetStats] = {}
    labels: dict[str, Counter[str]] = {}
    for index, span in enumerate(feed.spans):
        stats = sets.setdefault(span.recording.set, SetStats())
        stats.recordings += 1
        stats.seconds += span.recording.seconds
        after = (
            feed.spans[index + 1].suppressions_before
            if index + 1 < len(feed.spans)
            else total_suppressions
        )
        stats.suppressions += after - span.suppressions_before
    speech_events: list[SpeechEvent] = []
    for message, _payload in publisher.events:
        onset_s = (message.onset - CLOCK_ORIGIN).total_seconds()
        owner = feed.span_of_event(onset_s, (message.offset - CLOCK_ORIGIN).total_seconds())
        if owner is None:
            continue
        sets[owner.recording.set].events += 1
        if owner.recording.set in SPEECH_ONLY_SETS:
            speech_events.append(
                SpeechEvent(
                    recording=owner.recording.name,
                    set=owner.recording.set,
                    label=message.label,
                    onset_s=round(onset_s - owner.start_s, 3),
                    peak_score=message.peak_score,
                    speech_present=message.speech_present,
                )
            )
        labels.setdefault(owner.recording.set, Counter())[message.label.value] += 1
    for name, counter in labels.items():
        sets[name].events_by_label = dict(sorted(counter.items()))
    for stats in sets.values():
        stats.seconds = round(stats.seconds, 2)

    speech_sets = [sets[s] for s in SPEECH_ONLY_SETS if s in sets]
    events_on_speech = sum(s.events for s in speech_sets)
    suppressions = sum(s.suppressions for s in speech_sets)
    candidates = events_on_speech + suppressions
    hours = feed.spans[-1].end_s / 3600.0
    payloads = [p for _m, p in publisher.events] + publisher.status
    event_bytes = sum(len(p) for _m, p in publisher.events)
    status_mean = sum(map(len, publisher.status)) / max(1, len(publisher.status))
    heartbeats_per_hour = 3600.0 / status_interval_s
    bytes_per_hour = event_bytes / hours + status_mean * heartbeats_per_hour if hours else 0.0
    largest = max(payloads, key=len, default=b"")
    largest_kind = "event" if any(largest is p for _m, p in publisher.events) else "status"
    with_arrays = sum(_has_array(json.loads(p)) for p in payloads)

    failures = []
    if events_on_speech:
        failures.append(f"{events_on_speech} event(s) emitted on speech-only recordings")
    if result.count:
        failures.append(f"{result.count} audio file(s) written during the run")
    if with_arrays:
        failures.append(f"{with_arrays} message(s) carried an array")
    return PrivacyReport(
        created_at=datetime.now(UTC),
        backend=backend,
        model_id=classifier.model_id,
        data_dir=str(data_dir) if data_dir is not None else None,
        espeak=espeak_used,
        speech_settings={
            "speech_probability": privacy.speech_probability,
            "speech_fraction": privacy.speech_fraction,
            "impulsive_threshold": privacy.impulsive_threshold,
        },
        events_on_speech=events_on_speech,
        speech_seconds=round(sum(s.seconds for s in speech_sets), 2),
        speech_recordings=sum(s.recordings for s in speech_sets),
        speech_candidates=candidates,
        speech_suppressions=suppressions,
        suppression_rate=round(suppressions / candidates, 4) if candidates else None,
        bytes_per_hour=round(bytes_per_hour, 1),
        largest_message_bytes=len(largest),
        largest_message_kind=largest_kind if largest else "",
        audio_files_written=result.count,
        sets=sets,
        speech_events=speech_events,
        messages=len(payloads),
        event_messages=len(publisher.events),
        status_messages=len(publisher.status),
        bytes_total=sum(map(len, payloads)),
        status_message_mean_bytes=round(status_mean, 1),
        status_interval_s=status_interval_s,
        audio_hours=round(hours, 4),
        messages_with_arrays=with_arrays,
        audio_files=[_file_report(f) for f in result.audio_files],
        foreign_audio_files=[_file_report(f) for f in result.foreign_files],
        watched_roots=result.roots,
        watch_method=result.method,
        files_checked=result.files_checked,
        wall_s=round(time.monotonic() - started, 2),
        passed=not failures,
        failures=failures,
    )


def _file_report(found: AudioFile) -> AudioFileReport:
    return AudioFileReport(
        path=found.path,
        reason=found.reason,
        seen_by=found.seen_by,
        owner=found.owner,
        pid=found.pid,
    )


def clean_background_screen(
    classifier: Classifier, events: EventSettings, privacy: PrivacySettings
) -> Callable[[FloatArray], bool]:
    """A ``screen`` for ``build_recordings``: the background alone yields no event."""

    def screen(audio: FloatArray) -> bool:
        return not detect_offline(audio, RATE, classifier, events, privacy)

    return screen


def write_report(report: PrivacyReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")


def read_report(path: Path) -> PrivacyReport:
    return PrivacyReport.model_validate_json(path.read_text(encoding="utf-8"))
