"""``ouie node``'s runtime: events with UTC times, heartbeats, live thresholds, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ouie.config.node import NodeSettings
from ouie.core.labels import EventLabel
from ouie.core.messages import EventMessage, StatusMessage, ThresholdConfigMessage, topic_for
from ouie.core.timebase import SampleClock
from ouie.node.pipeline import DetectedEvent
from ouie.node.runtime import NodeRuntime, event_message
from ouie.node.sources import AudioChunk, AudioSource
from ouie.node.status import LevelWindow, StatusBuilder, read_clock
from ouie.transport.inproc import InProcBus, Subscription
from tests.node.fakes import LoudnessClassifier

RATE = 16000
ORIGIN = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
FloatArray = npt.NDArray[np.float32]


def bangs(onsets_s: list[float], duration_s: float, rate: int = RATE) -> FloatArray:
    rng = np.random.default_rng(11)
    audio = (rng.standard_normal(int(duration_s * rate)) * 0.003).astype(np.float32)
    for onset in onsets_s:
        start, n = int(onset * rate), int(0.08 * rate)
        decay = np.exp(-np.arange(n) / (0.01 * rate)).astype(np.float32)
        audio[start : start + n] += 0.8 * decay * rng.standard_normal(n).astype(np.float32)
    return audio


def source_of(
    audio: FloatArray,
    rate: int = RATE,
    chunk: int = 1600,
    gaps: dict[int, int] | None = None,
    endless: bool = False,
) -> AudioSource:
    async def chunks() -> AsyncIterator[AudioChunk]:
        for index, start in enumerate(range(0, audio.size, chunk)):
            yield AudioChunk(audio[start : start + chunk], (gaps or {}).get(index, 0))
            await asyncio.sleep(0)
        while endless:
            yield AudioChunk(np.zeros(chunk, dtype=np.float32))
            await asyncio.sleep(0.01)

    return AudioSource(rate, chunks())


def settings(**overrides: object) -> NodeSettings:
    base: dict[str, object] = {
        "site": "s1",
        "sensor_id": "n1",
        "events": {"merge_gap_s": 0.5},
        "publish": {"kind": "inproc", "status_interval_s": 0.05},
    }
    base.update(overrides)
    return NodeSettings.model_validate(base)


def drain(subscription: Subscription) -> tuple[list[EventMessage], list[StatusMessage]]:
    events: list[EventMessage] = []
    statuses: list[StatusMessage] = []
    while (message := subscription.get_nowait()) is not None:
        if message.topic.endswith("/events"):
            events.append(EventMessage.model_validate_json(message.payload))
        elif message.topic.endswith("/status"):
            statuses.append(StatusMessage.model_validate_json(message.payload))
    return events, statuses


def test_events_carry_utc_times_from_the_sample_clock_and_status_is_sent() -> None:
    onsets = [1.0, 3.3, 6.25]
    classifier = LoudnessClassifier()
    threads: set[str] = set()
    scores = classifier.scores

    def recording_scores(frames: FloatArray) -> FloatArray:
        threads.add(threading.current_thread().name)
        return scores(frames)

    classifier.scores = recording_scores  # type: ignore[method-assign]

    async def main() -> tuple[list[EventMessage], list[StatusMessage]]:
        bus = InProcBus()
        watch = bus.subscribe("ouie/v1/#")
        runtime = NodeRuntime(
            settings(calibration_db_spl=100.0),
            classifier=classifier,
            source=source_of(bangs(onsets, 8.0, 44100), rate=44100, chunk=4410),
            bus=bus,
            clock_origin=ORIGIN,
            clock_source="simulated",
            handle_signals=False,
        )
        summary = await runtime.run()
        assert summary.events_published == 3 and not summary.stopped_by_signal
        assert summary.status_published >= 2  # one at start, one at the end at least
        return drain(watch)

    events, statuses = asyncio.run(main())
    assert [e.sequence for e in events] == [0, 1, 2]
    for message, truth in zip(events, onsets, strict=True):
        assert message.label is EventLabel.GUNSHOT
        assert message.onset.tzinfo is not None
        assert abs((message.onset - ORIGIN).total_seconds() - truth) <= 0.01
        assert message.offset > message.onset
        assert message.level_db_spl == pytest.approx(message.level_dbfs + 100.0)
        assert (message.site, message.sensor_id, message.model_id) == ("s1", "n1", "test-loudness")
    assert threading.main_thread().name not in threads  # inference ran off the event loop
    last = statuses[-1]
    assert last.events_emitted == 3 and last.clock_source == "simulated"
    assert last.model_id == "test-loudness" and last.rss_mb > 0
    assert statuses[0].uptime_s <= last.uptime_s
    assert any(s.level.max_dbfs > -20.0 for s in statuses)  # the bangs show in the levels


@pytest.mark.parametrize("pushed", [False, True])
def test_hub_thresholds_apply_to_the_running_pipeline(pushed: bool) -> None:
    async def main() -> tuple[list[EventMessage], NodeRuntime]:
        bus = InProcBus()
        watch = bus.subscribe("ouie/v1/+/+/events")
        config = ThresholdConfigMessage(
            site="s1",
            sensor_id="n1",
            issued_at=ORIGIN,
            thresholds={EventLabel.GUNSHOT: 0.99},  # above the fake's 0.95: nothing passes
        )
        if pushed:
            await bus.publish(
                topic_for("s1", "n1", "config"), config.model_dump_json().encode(), retain=True
            )
        runtime = NodeRuntime(
            settings(events={"merge_gap_s": 0.5, "thresholds": {"siren": 0.7}}),
            classifier=LoudnessClassifier(),
            source=source_of(bangs([1.0, 3.0], 4.0)),
            bus=bus,
            handle_signals=False,
        )
        await runtime.run()
        return drain(watch)[0], runtime

    events, runtime = asyncio.run(main())
    assert runtime.pipeline is not None
    if not pushed:
        assert len(events) == 2
        assert runtime.events_settings.thresholds == {EventLabel.SIREN: 0.7}
        return
    assert events == []
    # the config overrides the file label by label; the file's siren threshold stays
    assert runtime.events_settings.thresholds == {EventLabel.GUNSHOT: 0.99, EventLabel.SIREN: 0.7}
    assert runtime.pipeline.stage.settings.threshold(EventLabel.GUNSHOT) == 0.99


def test_request_stop_flushes_and_closes_an_endless_source() -> None:
    async def main() -> tuple[list[EventMessage], list[StatusMessage]]:
        bus = InProcBus()
        watch = bus.subscribe("ouie/v1/#")
        runtime = NodeRuntime(
            settings(),
            classifier=LoudnessClassifier(),
            source=source_of(bangs([0.5], 1.0), endless=True),
            bus=bus,
            handle_signals=False,
        )
        task = asyncio.create_task(runtime.run())
        while runtime.summary.events_published < 1:
            await asyncio.sleep(0.01)
        runtime.request_stop()
        await asyncio.wait_for(task, 5)
        assert bus.subscriber_count == 1  # the node's config subscription is gone
        return drain(watch)

    events, statuses = asyncio.run(main())
    assert len(events) == 1
    assert statuses[-1].events_emitted == 1


def test_sigterm_stops_gracefully() -> None:
    async def main() -> bool:
        runtime = NodeRuntime(
            settings(),
            classifier=LoudnessClassifier(),
            source=source_of(np.zeros(1600, dtype=np.float32), endless=True),
            bus=InProcBus(),
        )
        task = asyncio.create_task(runtime.run())
        await asyncio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)
        summary = await asyncio.wait_for(task, 5)
        return summary.stopped_by_signal

    assert asyncio.run(main())
    # the handlers were removed again: the default disposition is back
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler)


def test_bad_samples_and_capture_gaps_are_counted_in_status() -> None:
    audio = bangs([], 2.0)
    audio[100:150] = np.nan
    audio[3000:3010] = np.inf

    async def main() -> list[StatusMessage]:
        bus = InProcBus()
        watch = bus.subscribe("ouie/v1/+/+/status")
        runtime = NodeRuntime(
            settings(),
            classifier=LoudnessClassifier(),
            source=source_of(audio, gaps={3: 800, 7: 1600}),
            bus=bus,
            handle_signals=False,
        )
        await runtime.run()
        return drain(watch)[1]

    last = asyncio.run(main())[-1]
    assert last.invalid_samples == 60
    assert last.dropped_chunks == 2
    assert last.speech_suppressions == 0 and last.spooled_events == 0


def test_jsonl_node_from_a_file_writes_no_audio_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    sf.write(inputs / "street.wav", bangs([1.0, 2.5], 3.0, 22050), 22050)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = work / "events.jsonl"
    node = settings(
        source={"kind": "file", "path": str(inputs / "street.wav")},
        publish={"kind": "jsonl", "jsonl_path": str(out), "status_interval_s": 60},
    )
    before = {p for p in tmp_path.rglob("*")}

    summary = asyncio.run(
        NodeRuntime(node, classifier=LoudnessClassifier(), handle_signals=False).run()
    )
    assert summary.events_published == 2
    created = {p for p in tmp_path.rglob("*")} - before
    assert created == {out}, f"the node wrote more than its messages: {created}"
    lines = out.read_text(encoding="utf-8").splitlines()
    events = [EventMessage.model_validate_json(line) for line in lines if '"kind":"event"' in line]
    assert all(e.offset > e.onset for e in events) and len(events) == 2
    assert abs((events[1].onset - events[0].onset).total_seconds() - 1.5) <= 0.01
    statuses = [StatusMessage.model_validate_json(x) for x in lines if '"kind":"status"' in x]
    assert statuses[-1].clock_source == "simulated"  # replayed file: derived times


def test_event_message_clamps_levels_and_omits_spl_without_calibration() -> None:
    event = DetectedEvent(
        label=EventLabel.SIREN,
        onset_s=2.0,
        offset_s=1.5,  # an offset before the onset cannot go on the wire
        peak_score=1.2,
        level_dbfs=0.4,
        speech_present=True,
        emitted_at_s=2.5,
    )
    clock = SampleClock(48000, ORIGIN)
    message = event_message(
        event,
        clock,
        site="s",
        sensor_id="n",
        model_id="m",
        sequence=4,
        calibration_db_spl=None,
    )
    assert message.onset == ORIGIN + timedelta(seconds=2)
    assert message.offset == message.onset
    assert message.level_dbfs == 0.0 and message.peak_score == 1.0
    assert message.level_db_spl is None and message.speech_present


def test_level_window_and_status_builder() -> None:
    from ouie.node.pipeline import PipelineStats

    stats = PipelineStats()
    window = LevelWindow()
    for level, samples, clipped in [(-40.0, 1000, 0), (-10.0, 1000, 10), (-30.0, 1000, 0)]:
        stats.level_sum_db += level
        stats.level_chunks += 1
        stats.samples_in += samples
        stats.clipped_samples += clipped
        window.observe(stats)
    first = window.take()
    assert first.mean_dbfs == pytest.approx(-80.0 / 3, abs=0.01)
    assert first.max_dbfs == -10.0
    assert first.clipped_fraction == pytest.approx(10 / 3000)
    empty = window.take()  # a new interval with no audio yet
    assert empty.max_dbfs == -200.0 and empty.clipped_fraction == 0.0

    builder = StatusBuilder("s", "n", "m")
    stats.events_emitted = 3
    message = builder.build(stats, spooled_events=7)
    assert message.spooled_events == 7 and message.events_emitted == 3
    assert message.clock_source == read_clock().source


def test_cli_rejects_a_bad_config_with_one_line(tmp_path: Path) -> None:
    import typer

    from ouie.node.run_cli import register_node_command

    app = typer.Typer()
    register_node_command(app)
    app.command("noop")(lambda: None)  # keep "node" a subcommand
    bad = tmp_path / "node.yaml"
    bad.write_text("publish:\n  kind: carrier-pigeon\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["node", "--config", str(bad)])
    assert result.exit_code == 2
    assert "publish.kind" in result.output
    missing = CliRunner().invoke(app, ["node", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_example_config_is_valid() -> None:
    from ouie.config.loader import load_settings

    example = Path(__file__).resolve().parents[2] / "examples" / "node.yaml"
    loaded = load_settings(NodeSettings, example)
    assert loaded.publish.kind == "mqtt"


def test_empty_source_and_failing_source() -> None:
    from ouie.node.audio_io import AudioInputError

    async def failing() -> AsyncIterator[AudioChunk]:
        yield AudioChunk(np.zeros(1600, dtype=np.float32))
        raise AudioInputError("street.wav: unreadable audio")

    async def main() -> None:
        bus = InProcBus()
        watch = bus.subscribe("ouie/v1/#")
        empty = NodeRuntime(
            settings(),
            classifier=LoudnessClassifier(),
            source=source_of(np.zeros(0, dtype=np.float32)),
            bus=bus,
            handle_signals=False,
        )
        summary = await empty.run()
        assert summary.events_published == 0 and summary.status_published >= 1
        assert drain(watch)[1][-1].level.max_dbfs == -200.0
        broken = NodeRuntime(
            settings(),
            classifier=LoudnessClassifier(),
            source=AudioSource(RATE, failing()),
            bus=bus,
            handle_signals=False,
        )
        with pytest.raises(AudioInputError, match="unreadable"):
            await broken.run()
        assert bus.subscriber_count == 1  # the failed node still closed its publisher

    asyncio.run(main())
