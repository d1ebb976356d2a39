"""``ouie eval tune --split source``: thresholds from a false-alarm rate, on generated data.

``PeakClassifier`` scores gunshot as the window's peak amplitude (every other label 0.02),
so a tone burst of amplitude a raises exactly one gunshot event at every threshold ≤ a.
The data (float WAVs, exact amplitudes; bursts off the 0.01 grid):

* ``o/a``: a 60 s background with bursts of .355, .655 and .655 (10, 30, 45 s), and
  gunshots of .505 and .805;
* ``o/b``: a 20 s speech clip with a burst of .455;
* ``o/c``: a 10 s background with a burst of .955 and a gunshot (no build excludes it).

With every source (zero-shot): 90 s, one event = 86 400 / 90 = 960 per day, and gunshot
events are 5 up to 0.35, 4 up to 0.45, 3 up to 0.65, 1 up to 0.95, then none. With builds
that skip ``o/c``: 80 s (one event = 1080 per day), 4, 3, 2 and none.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from typer.testing import CliRunner

import ouie.eval.alarm_tune as tune_module
from ouie.cli import app
from ouie.config.node import EventSettings, NodeSettings, PrivacySettings
from ouie.core.labels import EVENT_LABELS, EventLabel
from ouie.eval.alarm_replay import (
    CachedGuard,
    ReplayClassifier,
    ReplayError,
    label_event_counts,
    replay,
    score_clip,
)
from ouie.eval.alarm_report import label_rows
from ouie.eval.alarm_result import AlarmTuneResult
from ouie.eval.alarm_tune import GRID, AlarmTuneOptions, lowest_meeting, run_alarm_tune
from ouie.eval.builds import BUILD_FILE
from ouie.eval.runner import EvalError, EvalOptions
from ouie.node.classifiers.compact import DIGEST_FILE, MODEL_FILE
from ouie.node.pipeline import detect_offline
from ouie.node.tuned import TunedThresholds, model_family
from ouie.privacy.speech_guard import GuardDecision, SpeechGuard

RATE = 16000
GUNSHOT = EVENT_LABELS.index(EventLabel.GUNSHOT)
FloatArray = npt.NDArray[np.float32]


class PeakClassifier:
    """gunshot = the window's peak amplitude; every other label 0.02."""

    def __init__(self, model_id: str = "peak-test") -> None:
        self.model_id = model_id
        self.sample_rate = RATE
        self.window_samples = RATE // 2
        self.hop_samples = RATE // 4
        self.calls = 0

    def scores(self, frames: FloatArray) -> FloatArray:
        self.calls += len(frames)
        out = np.full((len(frames), len(EVENT_LABELS)), 0.02, dtype=np.float32)
        out[:, GUNSHOT] = np.minimum(np.abs(frames).max(axis=1), 1.0)
        return out


def _clip(seconds: float, bursts: dict[float, float], seed: int) -> FloatArray:
    """Quiet noise with 0.1 s tone bursts (amplitude by start second) replacing it."""
    audio = (0.002 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(
        np.float32
    )
    t = np.arange(int(0.1 * RATE)) / RATE
    for start, amplitude in bursts.items():
        i = int(start * RATE)
        audio[i : i + t.size] = amplitude * np.sin(2 * np.pi * 1000.0 * t)
    return audio


def _write(root: Path, rows: list[tuple[str, str, str, FloatArray]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, _, _, audio in rows:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(root / name), audio, RATE, subtype="FLOAT")
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "source_repo"])
        writer.writerows((name, label, source) for name, label, source, _ in rows)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("alarms")
    return _write(
        root,
        [
            ("a/street.wav", "background", "o/a", _clip(60, {10: 0.355, 30: 0.655, 45: 0.655}, 1)),
            ("a/shot1.wav", "gunshot", "o/a", _clip(2, {0.5: 0.505}, 2)),
            ("a/shot2.wav", "gunshot", "o/a", _clip(2, {0.5: 0.805}, 3)),
            ("b/talk.wav", "speech", "o/b", _clip(20, {5: 0.455}, 4)),
            ("c/street.wav", "background", "o/c", _clip(10, {5: 0.955}, 5)),
            ("c/shot.wav", "gunshot", "o/c", _clip(2, {0.5: 0.905}, 6)),
        ],
    )


def _peak(options: EvalOptions, settings: NodeSettings) -> PeakClassifier:
    return PeakClassifier()


def _index(t: float) -> int:
    return GRID.index(t)


# --- the replay ---------------------------------------------------------------------------


def test_replay_counts_what_detect_offline_emits() -> None:
    audio = _clip(60, {10: 0.355, 30: 0.655, 45: 0.655}, 1)
    classifier = PeakClassifier()
    clip = score_clip(audio, RATE, classifier)
    calls = classifier.calls
    guard = CachedGuard(PrivacySettings())
    events, privacy = EventSettings(), PrivacySettings()
    counts = label_event_counts(clip, classifier, EventLabel.GUNSHOT, GRID, events, privacy, guard)
    assert classifier.calls == calls  # scored once, replayed without the classifier
    for t in (0.05, 0.35, 0.36, 0.45, 0.46, 0.65, 0.66, 0.99):
        others = {label: 0.99 for label in EVENT_LABELS}  # 0.02 never reaches them
        settings = EventSettings(thresholds={**others, EventLabel.GUNSHOT: t})
        direct = detect_offline(audio, RATE, classifier, settings, privacy)
        assert counts[_index(t)] == len(direct)
    assert counts[_index(0.35)] == 3 and counts[_index(0.36)] == 2 and counts[_index(0.66)] == 0
    # the same confirmation recurs at every threshold up to its peak: one guard decision each
    assert guard.calls == 3


class _DenyAll(SpeechGuard):
    def decide(self, label: EventLabel, peak_score: float, audio_16k: FloatArray) -> GuardDecision:
        return GuardDecision(allowed=False, speech_present=True)


def test_the_speech_guard_decides_in_the_replay() -> None:
    classifier = PeakClassifier()
    clip = score_clip(_clip(20, {5: 0.455}, 4), RATE, classifier)
    events, privacy = EventSettings(), PrivacySettings()
    allowed = label_event_counts(
        clip, classifier, EventLabel.GUNSHOT, GRID, events, privacy, CachedGuard(privacy)
    )
    denied = label_event_counts(
        clip, classifier, EventLabel.GUNSHOT, GRID, events, privacy, _DenyAll(privacy)
    )
    assert allowed[_index(0.45)] == 1 and allowed[_index(0.46)] == 0
    assert sum(denied) == 0


def test_replay_refuses_another_window_grid() -> None:
    classifier = PeakClassifier()
    clip = score_clip(_clip(3, {}, 0), RATE, classifier)
    short = ReplayClassifier(classifier, clip.rows[:-1], EventLabel.GUNSHOT)
    with pytest.raises(ReplayError):
        replay(clip, short, EventSettings(), PrivacySettings(), CachedGuard(PrivacySettings()))


def test_lowest_threshold_meeting_the_rate() -> None:
    counts = [4, 4, 3, 1, 2, 0]  # not monotone: the lowest that meets it wins
    assert lowest_meeting(counts, 86_400.0, 1.0) == 3
    assert lowest_meeting(counts, 86_400.0, 0.5) == 5
    assert lowest_meeting(counts, 43_200.0, 1.0) == 5  # half a day: 1 event = 2 per day
    assert lowest_meeting([5, 5], 86_400.0, 1.0) is None


# --- the run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def result(data: Path) -> AlarmTuneResult:
    options = AlarmTuneOptions(data_dirs=(data,), backend="peak", max_false_per_day=1080)
    return run_alarm_tune(options, make=_peak)


def _label(result: AlarmTuneResult, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in result.labels if b.label == label)


def test_the_lowest_threshold_meeting_the_rate_is_chosen(result: AlarmTuneResult) -> None:
    assert result.measured_clips == 3 and result.speech_clips == 1  # zero-shot: o/c too
    gunshot = _label(result, "gunshot")
    # 90 s measured: one event = 960 per day; 1080 per day allows 1.125 events: one
    assert result.resolution_per_day == 960.0
    events = gunshot.events_by_threshold
    assert events[_index(0.05)] == events[_index(0.35)] == 5
    assert (events[_index(0.36)], events[_index(0.46)], events[_index(0.66)]) == (4, 3, 1)
    assert events[_index(0.95)] == 1 and events[_index(0.96)] == 0
    assert (gunshot.threshold, gunshot.met, gunshot.events) == (0.66, True, 1)
    assert gunshot.false_alarms_per_day == 960.0
    assert gunshot.speech_events == 0  # the speech burst (.455) is below 0.66
    assert events[_index(0.45)] == 4 and gunshot.events_by_threshold[_index(0.4)] == 4
    # targets: .505 and .805 and o/c's .905: two of three fire at 0.66
    assert gunshot.targets is not None
    assert (gunshot.targets.found, gunshot.targets.n) == (2, 3)
    siren = _label(result, "siren")  # 0.02 everywhere: the lowest grid value, no event
    assert (siren.threshold, siren.events, siren.met) == (0.05, 0, True)
    assert siren.targets is not None and siren.targets.recall is None


def test_speech_events_are_counted_apart(data: Path) -> None:
    options = AlarmTuneOptions(data_dirs=(data,), backend="peak", max_false_per_day=4 * 960 + 1)
    r = run_alarm_tune(options, make=_peak)
    gunshot = _label(r, "gunshot")
    # 4 events allowed on 90 s: 0.36 (.455 on speech, .655 twice, .955)
    assert (gunshot.threshold, gunshot.events, gunshot.speech_events) == (0.36, 4, 1)
    assert r.speech_hours == pytest.approx(20 / 3600, abs=1e-4)


def test_builds_score_each_source_out_of_source_and_skip_the_rest(
    data: Path, tmp_path: Path
) -> None:
    root = tmp_path / "builds"
    for name, excluded in (("00-no-a", ["o/a"]), ("01-no-b", ["o/b"])):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / MODEL_FILE).write_bytes(b"stand-in")
        (folder / DIGEST_FILE).write_text("0" * 64 + "\n", encoding="utf-8")
        info = {"excluded_sources": excluded, "model_id": name}
        (folder / BUILD_FILE).write_text(json.dumps(info), encoding="utf-8")
    asked: list[str] = []

    def make(options: EvalOptions, settings: NodeSettings) -> PeakClassifier:
        assert settings.classifier.model_dir is not None
        asked.append(settings.classifier.model_dir.name)
        return PeakClassifier(f"peak@{settings.classifier.model_dir.name}")

    options = AlarmTuneOptions(
        data_dirs=(data,), backend="compact", builds=root, max_false_per_day=1080
    )
    r = run_alarm_tune(options, make=make)
    assert asked == ["00-no-a", "01-no-b"]
    assert r.model_ids == {"o/a": "peak@00-no-a", "o/b": "peak@01-no-b"}
    assert r.model_family == "peak" == model_family("peak@00-no-a")
    assert [s.source for s in r.skipped_sources] == ["o/c"]
    skipped = r.skipped_sources[0]
    assert (skipped.non_target_clips, skipped.target_clips) == (1, 1)
    assert skipped.non_target_hours == pytest.approx(10 / 3600, abs=1e-4)
    assert "excluded_sources" in skipped.reason
    # 80 s measured: one event = 1080 per day; at most one allowed -> above .655
    assert r.measured_clips == 2 and r.resolution_per_day == 1080.0
    gunshot = _label(r, "gunshot")
    events = gunshot.events_by_threshold
    assert (events[_index(0.35)], events[_index(0.45)], events[_index(0.65)]) == (4, 3, 2)
    assert (gunshot.threshold, gunshot.events, gunshot.false_alarms_per_day) == (0.66, 0, 0.0)
    assert gunshot.targets is not None  # o/c's gunshot is skipped; .805 fires, .505 not
    assert (gunshot.targets.found, gunshot.targets.n) == (1, 2)
    assert "1 non-target clips of 1 sources no build excludes skipped" in r.tuned.tuned_on


def test_builds_of_several_model_families_are_refused(data: Path, tmp_path: Path) -> None:
    root = tmp_path / "builds"
    for name, excluded in (("x", ["o/a"]), ("y", ["o/b", "o/c"])):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / MODEL_FILE).write_bytes(b"stand-in")
        (folder / DIGEST_FILE).write_text("0" * 64 + "\n", encoding="utf-8")
        info = {"excluded_sources": excluded, "model_id": name}
        (folder / BUILD_FILE).write_text(json.dumps(info), encoding="utf-8")

    def make(options: EvalOptions, settings: NodeSettings) -> PeakClassifier:
        assert settings.classifier.model_dir is not None
        return PeakClassifier(f"{settings.classifier.model_dir.name}@1")

    options = AlarmTuneOptions(
        data_dirs=(data,), backend="compact", builds=root, max_false_per_day=1
    )
    with pytest.raises(EvalError, match="several model families"):
        run_alarm_tune(options, make=make)


def test_without_targets_no_target_clip_is_scored(data: Path) -> None:
    classifier = PeakClassifier()
    options = AlarmTuneOptions(
        data_dirs=(data,), backend="peak", max_false_per_day=1080, targets=False
    )
    r = run_alarm_tune(options, make=lambda o, s: classifier)
    assert all(block.targets is None for block in r.labels)
    # 90 s of non-target audio, each window once: 60 s, 20 s, 10 s at a 0.25 s hop
    assert classifier.calls == sum(int((s - 0.5) / 0.25) + 1 for s in (60, 20, 10))
    assert r.timing.replays > 0 and r.timing.audio_s == pytest.approx(90.0)


def test_no_measurable_audio_is_an_error(tmp_path: Path) -> None:
    root = _write(tmp_path / "d", [("s.wav", "gunshot", "o/a", _clip(2, {0.5: 0.5}, 0))])
    options = AlarmTuneOptions(data_dirs=(root,), backend="peak", max_false_per_day=1)
    with pytest.raises(EvalError, match="no non-target audio"):
        run_alarm_tune(options, make=_peak)


# --- the command line, the JSON and the tuned-thresholds file -----------------------------


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["eval", "tune", *args])


def test_cli_writes_json_table_and_a_tuned_file_that_loads(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tune_module, "make_classifier", _peak)
    out, tuned = tmp_path / "tune.json", tmp_path / "tuned" / "peak-test.json"
    run = _invoke(
        "--split", "source", "--data", str(data), "--backend", "peak",
        "--max-false-per-day", "1080", "--json", str(out), "--write-thresholds", str(tuned),
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    result = AlarmTuneResult.model_validate_json(out.read_text(encoding="utf-8"))
    assert result.schema_version == 1 and result.grid[0] == 0.05 and result.grid[-1] == 0.99
    assert len(result.grid) == 95 and [b.label for b in result.labels] == [
        label.value for label in EVENT_LABELS
    ]
    assert "gunshot" in run.stderr and "one event = 960.0 per day" in run.stderr.replace("\n", " ")
    # exactly the format of src/ouie/node/classifiers/tuned/*.json, read as ouie.node.tuned does
    raw = json.loads(tuned.read_text(encoding="utf-8"))
    assert list(raw) == ["model_family", "thresholds", "tuned_on", "objective", "date"]
    loaded = TunedThresholds.model_validate(raw)
    assert loaded.model_family == "peak-test" == model_family(PeakClassifier().model_id)
    assert loaded.thresholds[EventLabel.GUNSHOT] == 0.66
    assert set(loaded.thresholds) == set(EVENT_LABELS)
    assert "at most 1080 false alarms per day per label" in loaded.objective
    assert "speech" in loaded.objective and "not trained on its source" in loaded.objective
    assert loaded == result.tuned
    data_back = json.loads(out.read_text(encoding="utf-8"))
    data_back["labels"][0]["surprise"] = 1
    with pytest.raises(ValueError, match="surprise"):
        AlarmTuneResult.model_validate(data_back)


def test_a_label_no_grid_value_meets_gets_the_top(data: Path) -> None:
    options = AlarmTuneOptions(
        data_dirs=(data,), backend="peak", max_false_per_day=0, grid=(0.3, 0.6, 0.9)
    )
    r = run_alarm_tune(options, make=_peak)
    gunshot = _label(r, "gunshot")
    assert gunshot.events_by_threshold == [5, 3, 1]  # .955 still fires at 0.9
    assert (gunshot.threshold, gunshot.met, gunshot.events) == (0.9, False, 1)
    assert r.tuned.thresholds[EventLabel.GUNSHOT] == 0.9
    assert "no grid value meets it for gunshot: 0.9" in r.tuned.objective
    assert "no grid value meets the rate" in label_rows(r)[0][-1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--split", "source", "--backend", "peak"], "needs --max-false-per-day"),
        (["--split", "source", "--max-false-per-day", "1", "--folds", "1"], "--folds: not with"),
        (["--split", "source", "--max-false-per-day", "1", "--backend", "compact"], "--builds"),
        (["--max-false-per-day", "1"], "--max-false-per-day need --split source"),
        (["--builds", "{tmp}"], "--builds need --split source"),
    ],
)
def test_bad_combinations_are_one_line_errors(
    data: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    filled = [a.format(tmp=tmp_path) for a in args]
    run = _invoke("--data", str(data), *filled)
    assert run.exit_code == 2, run.output
    assert expected in run.stderr


def test_street_negatives_leave_out_hard_negatives() -> None:
    from pathlib import Path

    from ouie.eval.alarm_tune import counts_as_negative
    from ouie.eval.dataset import Clip

    def clip(label: str) -> Clip:
        return Clip(Path("x.wav"), "x.wav", label, None, None, "g", 0)

    assert [counts_as_negative(clip(x), "street") for x in ("background", "speech", "crowd")] == [
        True,
        True,
        True,
    ]
    assert not counts_as_negative(clip("door_knock"), "street")
    assert counts_as_negative(clip("door_knock"), "all")
    assert not counts_as_negative(clip("gunshot"), "all")
