"""Retention with a controlled clock, and the audit chain, as privacy properties.

Data older than the limit must be *gone from the database* (SQLite and PostgreSQL), data
inside it must stay, and the purge must be in the audit log as counts, never content. The
audit log must expose any edit, deletion or reordering, including of the purge record
itself (hiding a purge, or pretending one happened), and an auditor can export it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ouie.config.hub import DatabaseSettings, HubSettings, RetentionSettings
from ouie.core.timebase import utc_now
from ouie.hub import audit
from ouie.hub.db import AuditEntry, Detection, ImpulseOnsetRow, Incident
from ouie.hub.ingest import Envelope
from ouie.hub.service import Hub
from ouie.transport.base import encode
from tests.hub.helpers import (
    SITE,
    events_for_source,
    pg_schema_url,
    register_sensors,
    sensor_grid,
)

OTHER_SITE_DAYS = 7


def _hub(url: str) -> Hub:
    settings = HubSettings(
        database=DatabaseSettings(url=url, batch_wait_ms=5.0),
        retention=RetentionSettings(days=30, per_site={SITE: OTHER_SITE_DAYS}),
    )
    hub = Hub(settings)
    hub.prepare()
    return hub


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.needs("postgresql"))]
)
def hub(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Hub]:
    if request.param == "sqlite":
        instance = _hub(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
        yield instance
        instance.close()
        return
    with pg_schema_url() as url:
        instance = _hub(url)
        yield instance
        instance.close()


def _ingest(hub: Hub, when: datetime, sequence: int) -> None:
    layout = sensor_grid(4)
    events = events_for_source(layout, 5.0, -3.0, when, sequence=sequence)
    envelopes = [Envelope("bus", f"ouie/v1/{SITE}/{m.sensor_id}/events", encode(m)) for m in events]
    hub.processor.process(envelopes)
    # and the onset a fifth sensor reported of that sound, on the hub's request (stored
    # directly: ingest refuses onsets days old, as it refuses such events)
    with hub.sessions() as session, session.begin():
        sensor = hub.registry.get(SITE, "s1")
        assert sensor is not None
        session.add(
            ImpulseOnsetRow(
                message_id=f"{sequence:032x}",
                request_id="0" * 32,
                sensor_pk=sensor.pk,
                site=SITE,
                sensor_id="s1",
                onset=when + timedelta(seconds=0.1),
                level_dbfs=-30.0,
                prominence_db=20.0,
                received_at=when,
            )
        )


def _counts(session: Session) -> tuple[int, int]:
    detections = session.execute(select(func.count()).select_from(Detection)).scalar_one()
    incidents = session.execute(select(func.count()).select_from(Incident)).scalar_one()
    return int(detections), int(incidents)


def test_retention_deletes_expired_rows_and_audits(hub: Hub) -> None:
    register_sensors(hub, sensor_grid(4))
    now = utc_now()
    _ingest(hub, now - timedelta(hours=1), sequence=0)  # recent: kept
    _ingest(hub, now - timedelta(days=2), sequence=1)  # recent: kept
    with hub.sessions() as session:
        assert _counts(session) == (8, 2)

    # The controlled clock: nothing is old yet.
    report = hub.retention_once(now=now)
    assert report[SITE] == {
        "days": OTHER_SITE_DAYS,
        "detections": 0,
        "impulses": 0,
        "incidents": 0,
    }

    # Six days later the older incident is 8 days old: over this site's 7-day limit.
    report = hub.retention_once(now=now + timedelta(days=6))
    assert report[SITE] == {
        "days": OTHER_SITE_DAYS,
        "detections": 4,
        "impulses": 1,
        "incidents": 1,
    }
    with hub.sessions() as session:
        assert _counts(session) == (4, 1)
        oldest = session.execute(select(func.min(Detection.onset))).scalar_one()
        assert oldest > now - timedelta(days=1)

    # A week later everything is past the limit: gone from the database.
    hub.retention_once(now=now + timedelta(days=14))
    with hub.sessions() as session:
        assert _counts(session) == (0, 0)
        runs = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "retention.run")
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
    assert len(runs) == 3
    details = [json.loads(r.detail) for r in runs]
    assert [d["sites"][SITE]["detections"] for d in details] == [0, 4, 4]
    # Counts, never content: no label, time, position or message id in the record.
    text = " ".join(r.detail for r in runs)
    for leaked in ("gunshot", "lat", "onset", "message_id", "sensor_id"):
        assert leaked not in text
    assert hub.audit_verify().ok


def _purge_then(hub: Hub) -> int:
    register_sensors(hub, sensor_grid(4))
    now = utc_now()
    _ingest(hub, now - timedelta(hours=1), sequence=0)
    report = hub.retention_once(now=now + timedelta(days=10))
    assert report[SITE]["detections"] == 4
    with hub.sessions() as session:
        audit.record(session, audit.AuditEvent("alice", "incident.read", "incident", "x", {}))
        session.commit()
        seq = session.execute(
            select(AuditEntry.seq).where(AuditEntry.action == "retention.run")
        ).scalar_one()
    assert hub.audit_verify().ok
    return int(seq)


def _tamper(hub: Hub, how: str, seq: int) -> None:
    with hub.sessions() as session, session.begin():
        if how == "edit":  # pretend nothing was deleted
            entry = session.get(AuditEntry, seq)
            assert entry is not None
            detail = json.loads(entry.detail)
            detail["sites"][SITE]["detections"] = 0
            session.execute(
                update(AuditEntry)
                .where(AuditEntry.seq == seq)
                .values(detail=json.dumps(detail, sort_keys=True, separators=(",", ":")))
            )
        elif how == "delete":  # hide that a purge ran
            session.execute(delete(AuditEntry).where(AuditEntry.seq == seq))
        elif how == "reorder":  # move the purge after the read
            first = session.get(AuditEntry, seq)
            second = session.get(AuditEntry, seq + 1)
            assert first is not None and second is not None
            fields = ("at", "actor", "action", "object_type", "object_id", "detail")
            a = {f: getattr(first, f) for f in fields}
            b = {f: getattr(second, f) for f in fields}
            for name in fields:
                setattr(first, name, b[name])
                setattr(second, name, a[name])


@pytest.mark.parametrize("how", ["edit", "delete", "reorder"])
def test_audit_verify_detects_tampering(hub: Hub, how: str) -> None:
    seq = _purge_then(hub)
    _tamper(hub, how, seq)
    result = hub.audit_verify()
    assert not result.ok
    assert any(f"entry {seq}" in p or f"entry {seq + 1}" in p for p in result.problems), (
        result.problems
    )


def test_auditor_can_export_the_log_and_an_operator_cannot(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from ouie.hub import auth
    from ouie.hub.api import create_app

    hub = _hub(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    try:
        _purge_then(hub)
        with TestClient(create_app(hub)) as client:
            tokens = {}
            with hub.sessions() as session, session.begin():
                for role in ("auditor", "operator"):
                    user = auth.create_user(session, role, "correct horse battery", role, utc_now())
                    tokens[role] = auth.create_api_token(session, user, "t", utc_now())
            auditor = {"Authorization": f"Bearer {tokens['auditor']}"}
            operator = {"Authorization": f"Bearer {tokens['operator']}"}
            entries = client.get("/api/v1/audit", headers=auditor).json()["entries"]
            assert any(e["action"] == "retention.run" for e in entries)
            assert client.get("/api/v1/audit/verify", headers=auditor).status_code == 200
            assert client.get("/api/v1/audit", headers=operator).status_code == 403
        with hub.sessions() as session:
            lines = [json.loads(line) for line in audit.export_jsonl(session)]
        assert {"seq", "prev_hash", "hash", "detail"} <= set(lines[0])
    finally:
        hub.close()
