"""The public summary's counts: whole days at least a day old, small counts suppressed, so it
cannot tell anyone whether the sound they just made was detected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient

from ouie.config.web import PublicCountsSettings, WebSettings
from ouie.core.labels import EventLabel
from ouie.core.timebase import utc_now
from ouie.hub.api import create_app
from ouie.hub.ingest import Envelope
from ouie.hub.public_counts import publishable, published_until, suppressed
from ouie.hub.service import Hub
from ouie.transport.base import encode
from tests.hub.helpers import SITE, events_for_source, register_sensors, sensor_grid, settings_for

LAYOUT = sensor_grid(4)


def _sound(hub: Hub, when: datetime, label: EventLabel, sequence: int) -> None:
    events = events_for_source(LAYOUT, 5.0, -3.0, when, label=label, sequence=sequence)
    hub.processor.process(
        [Envelope("bus", f"ouie/v1/{SITE}/{m.sensor_id}/events", encode(m)) for m in events]
    )


@pytest.fixture
def client(sqlite_url: str) -> Iterator[tuple[Hub, TestClient]]:
    hub = Hub(settings_for(sqlite_url))
    with TestClient(create_app(hub)) as test_client:
        register_sensors(hub, LAYOUT)
        yield hub, test_client
    hub.close()


def test_public_counts_are_delayed_and_suppressed(client: tuple[Hub, TestClient]) -> None:
    hub, test_client = client
    now = utc_now()
    # noon (UTC) two days ago: the whole day is published at any time of today, where "now
    # minus two days" run just before midnight would spill its later sounds into yesterday
    two_days_ago = datetime.combine((now - timedelta(days=2)).date(), time(12), UTC)
    seq = 0
    for i in range(6):  # six gunshots two days ago: published
        seq += 10
        _sound(hub, two_days_ago + timedelta(minutes=5 * i), EventLabel.GUNSHOT, seq)
    for i in range(2):  # two sirens two days ago: below the minimum of 5
        seq += 10
        _sound(hub, two_days_ago + timedelta(minutes=5 * i + 2), EventLabel.SIREN, seq)
    for i in range(3):  # just now: not yet published, whatever the count
        seq += 10
        _sound(hub, now - timedelta(minutes=5 * i + 1), EventLabel.SCREAM, seq)
    body = test_client.get("/api/v1/public/summary").json()
    assert body["incidents_last_7_days"] == {"gunshot": 6}
    assert "siren" in body["below_min_count"] and "scream" in body["below_min_count"]
    assert "gunshot" not in body["below_min_count"]
    assert body["counts_delay_h"] == 24.0 and body["min_count"] == 5
    until = datetime.fromisoformat(body["counts_until"])
    assert until <= now - timedelta(hours=24) and until.time().isoformat() == "00:00:00"
    assert datetime.fromisoformat(body["counts_from"]) == until - timedelta(days=7)
    # a sound made just now changes nothing the public can read, even with a minimum of 1
    hub.settings.web.public_counts.min_count = 1
    seq += 10
    _sound(hub, utc_now(), EventLabel.GUNSHOT, seq)
    again = test_client.get("/api/v1/public/summary").json()
    assert again["incidents_last_7_days"] == {"gunshot": 6, "siren": 2}


def test_published_until_is_a_whole_day_at_least_the_delay_ago() -> None:
    settings = PublicCountsSettings()
    now = datetime(2027, 3, 10, 9, 30, tzinfo=UTC)
    assert published_until(now, settings) == datetime(2027, 3, 9, tzinfo=UTC)
    late = datetime(2027, 3, 10, 23, 59, tzinfo=UTC)
    assert published_until(late, settings) == datetime(2027, 3, 9, tzinfo=UTC)
    two_days = PublicCountsSettings(delay_h=48)
    assert published_until(now, two_days) == datetime(2027, 3, 8, tzinfo=UTC)
    assert suppressed(4, settings) is None and suppressed(0, settings) is None
    assert suppressed(5, settings) == 5
    assert publishable({"gunshot": 5, "siren": 1, "scream": 0}, settings) == {"gunshot": 5}
    assert WebSettings().public_counts == settings
