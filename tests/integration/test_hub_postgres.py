"""The hub on the real PostgreSQL: migrations, ingest + fusion, concurrent workers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from ouie.core.messages import topic_for
from ouie.core.timebase import utc_now
from ouie.hub.db import Base, Detection, Incident
from ouie.hub.ingest import Envelope
from ouie.hub.service import Hub
from ouie.transport.base import encode
from tests.hub.helpers import (
    SITE,
    enu_of,
    events_for_source,
    pg_schema_url,
    register_sensors,
    sensor_grid,
    settings_for,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.needs("postgresql"),
]


def test_migrations_match_models_on_postgresql() -> None:
    with pg_schema_url() as url:
        hub = Hub(settings_for(url))
        hub.prepare()
        with hub.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        hub.close()
    assert diff == []


def test_two_workers_racing_store_each_detection_once_in_one_incident() -> None:
    with pg_schema_url() as url:
        a = Hub(settings_for(url))
        a.prepare()
        b = Hub(settings_for(url, migrate=False))
        b.prepare()
        layout = sensor_grid(6)
        register_sensors(a, layout)
        b.reload_sensors()
        events = events_for_source(
            layout, 30.0, -12.0, utc_now() - timedelta(seconds=3), jitter_s=0.0003
        )
        envelopes = [
            Envelope("mqtt", topic_for(SITE, m.sensor_id, "events"), encode(m)) for m in events
        ]
        # each worker gets half, plus a redelivery of the other's first message
        halves = [envelopes[:3] + envelopes[3:4], envelopes[3:] + envelopes[:1]]
        errors: list[BaseException] = []

        def work(hub: Hub, batch: list[Envelope]) -> None:
            for _ in range(3):
                try:
                    hub.processor.process(batch)
                    return
                except Exception as exc:  # an IntegrityError on a racing duplicate: retry
                    errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(h, part))
            for h, part in zip((a, b), halves, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with a.sessions() as session:
            assert session.execute(select(func.count()).select_from(Detection)).scalar_one() == 6
            incidents = session.execute(select(Incident)).scalars().all()
        assert len(incidents) == 1, [(i.sensor_count, i.method) for i in incidents]
        incident = incidents[0]
        assert incident.sensor_count == 6 and incident.method == "tdoa"
        east, north = enu_of(incident.lat, incident.lon)
        assert abs(east - 30.0) < 1.5 and abs(north + 12.0) < 1.5
        assert a.audit_verify().ok
        a.close()
        b.close()
