"""Impulse onsets: the node notes when loud, sudden sounds began and answers the hub's
bounded, signed requests for them with times and levels only."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from ouie.core.messages import (
    MAX_ONSETS_PER_ANSWER,
    ImpulseOnsetMessage,
    OnsetRequestMessage,
    StatusMessage,
    topic_for,
)
from ouie.node.impulses import ImpulseLog
from ouie.node.onset import refine_onset
from ouie.node.runtime import NodeRuntime
from ouie.transport.base import encode
from ouie.transport.inproc import InProcBus
from ouie.transport.signing import SigningKey
from tests.node.fakes import LoudnessClassifier
from tests.node.test_runtime import ORIGIN, RATE, bangs, settings, source_of

BANGS_S = [1.5, 2.2, 2.45, 4.0, 6.75]


def _push(log: ImpulseLog, audio: np.ndarray, chunk: int) -> None:  # type: ignore[type-arg]
    for start in range(0, audio.size, chunk):
        log.push(audio[start : start + chunk])


@pytest.mark.parametrize("chunk", [1600, 333, 16000])
def test_bangs_in_noise_are_found_where_the_event_onsets_would_be(chunk: int) -> None:
    audio = bangs(BANGS_S, 8.0)
    log = ImpulseLog(RATE)
    _push(log, audio, chunk)
    found = [o.onset_s for o in log.onsets]
    assert len(found) == len(BANGS_S)
    for onset, truth in zip(found, BANGS_S, strict=True):
        # the rule of ``refine_onset``, so both kinds of onset share their bias
        start = int((truth - 1.0) * RATE)
        refined = (
            start
            + refine_onset(audio[start : start + int(1.5 * RATE)], RATE, peak_from=int(0.9 * RATE))
        ) / RATE
        assert abs(onset - truth) <= 0.002
        assert abs(onset - refined) <= 0.002
    assert all(o.prominence_db > 30.0 and -30.0 < o.level_dbfs < 0.0 for o in log.onsets)


def test_steady_noise_and_slow_rises_are_not_impulses() -> None:
    rng = np.random.default_rng(3)
    noise = (rng.standard_normal(10 * RATE) * 0.01).astype(np.float32)
    swell = np.linspace(0.0, 1.0, 10 * RATE, dtype=np.float32) ** 2  # 10 s crescendo
    log = ImpulseLog(RATE)
    _push(log, noise * (0.05 + swell), 1600)
    assert list(log.onsets) == []


def test_memory_is_bounded_in_time_and_answers_in_count() -> None:
    times = [0.5 + 0.5 * k for k in range(40)]
    audio = bangs(times, 21.0)
    log = ImpulseLog(RATE, keep_s=5.0)
    _push(log, audio, 1600)
    assert min(o.onset_s for o in log.onsets) >= 21.0 - 5.0 - 0.1
    picked = log.between(15.0, 21.0, MAX_ONSETS_PER_ANSWER)
    assert len(picked) == MAX_ONSETS_PER_ANSWER
    assert [o.onset_s for o in picked] == sorted(o.onset_s for o in picked)


def test_digital_silence_and_capture_gaps_give_no_onsets() -> None:
    audio = bangs([3.0], 5.0)
    audio[: RATE // 2] = 0.0  # a file's padding: its end is no bang
    log = ImpulseLog(RATE)
    _push(log, audio, 1600)
    assert [round(o.onset_s, 2) for o in log.onsets] == [3.0]
    log.mark_gap(2.9, 3.2)
    assert log.between(0.0, 5.0, 8) == []


def _request(start_s: float, end_s: float, **changes: object) -> OnsetRequestMessage:
    message = OnsetRequestMessage(
        site="s1",
        sensor_id="n1",
        issued_at=ORIGIN + timedelta(seconds=10),
        start=ORIGIN + timedelta(seconds=start_s),
        end=ORIGIN + timedelta(seconds=end_s),
    )
    return message.model_copy(update=changes)


async def _serve(
    requests: list[OnsetRequestMessage], **overrides: object
) -> tuple[list[ImpulseOnsetMessage], StatusMessage, NodeRuntime]:
    bus = InProcBus()
    answers = bus.subscribe("ouie/v1/s1/n1/onsets")
    statuses = bus.subscribe("ouie/v1/s1/n1/status")
    runtime = NodeRuntime(
        settings(**overrides),
        classifier=LoudnessClassifier(loud_dbfs=10.0),  # classifies nothing: onsets only
        source=source_of(bangs(BANGS_S, 8.0), endless=True),
        bus=bus,
        clock_origin=ORIGIN,
        handle_signals=False,
    )
    task = asyncio.create_task(runtime.run())
    while runtime.pipeline is None or runtime.pipeline.stream_time_s < 8.0:
        await asyncio.sleep(0.01)
    for request in requests:
        await bus.publish(topic_for("s1", "n1", "onset-request"), encode(request))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if runtime.onset_requests_answered + runtime.onset_requests_refused >= len(requests):
            break
    await asyncio.sleep(0.1)  # a heartbeat after the answers
    runtime.request_stop()
    await asyncio.wait_for(task, 5)
    out = []
    while (message := answers.get_nowait()) is not None:
        out.append(ImpulseOnsetMessage.model_validate_json(message.payload))
    last = None
    while (message := statuses.get_nowait()) is not None:
        last = StatusMessage.model_validate_json(message.payload)
    assert last is not None
    return out, last, runtime


def test_the_node_answers_with_the_onsets_of_the_window() -> None:
    asked = _request(2.0, 3.0)
    quiet = _request(3.0, 3.5)
    answers, status, _ = asyncio.run(_serve([asked, quiet]))
    mine = [a for a in answers if a.request_id == asked.request_id]
    assert [a.index for a in mine] == [0, 1] and {a.count for a in mine} == {2}
    assert all(
        a.onset is not None and abs((a.onset - ORIGIN).total_seconds() - t) < 0.002
        for a, t in zip(mine, [2.2, 2.45], strict=True)
    )
    none = [a for a in answers if a.request_id == quiet.request_id]
    assert len(none) == 1 and none[0].count == 0 and none[0].onset is None
    assert status.onset_requests_answered == 2 and status.onset_requests_refused == 0


def test_too_long_a_window_too_many_requests_and_onsets_off_are_refused() -> None:
    long = _request(0.0, 5.0)
    burst = [_request(1.0, 2.0) for _ in range(4)]
    answers, status, _ = asyncio.run(_serve([long, *burst], onsets={"max_requests_per_minute": 2}))
    assert {a.request_id for a in answers} == {burst[0].request_id, burst[1].request_id}
    assert status.onset_requests_answered == 2 and status.onset_requests_refused == 3

    async def off() -> int:
        bus = InProcBus()
        runtime = NodeRuntime(
            settings(onsets={"answer_requests": False}),
            classifier=LoudnessClassifier(),
            source=source_of(bangs([0.5], 1.0), endless=True),
            bus=bus,
            handle_signals=False,
        )
        task = asyncio.create_task(runtime.run())
        while runtime.pipeline is None:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        subscribers = bus.subscriber_count  # no subscription to requests at all
        assert runtime.pipeline.impulses is None  # and nothing is noted
        runtime.request_stop()
        await asyncio.wait_for(task, 5)
        return subscribers

    assert asyncio.run(off()) == 1  # the config topic only


def test_with_the_hubs_key_only_signed_requests_are_answered(tmp_path: Path) -> None:
    hub = SigningKey.generate()
    hub.public.save(tmp_path / "hub.pub")
    signed = hub.sign_message(_request(2.0, 3.0))
    unsigned = _request(2.0, 3.0)
    forged = SigningKey.generate().sign_message(_request(2.0, 3.0))
    answers, status, _ = asyncio.run(
        _serve([signed, unsigned, forged], identity={"hub_public_key": str(tmp_path / "hub.pub")})
    )
    assert {a.request_id for a in answers} == {signed.request_id}
    assert status.onset_requests_refused == 2
