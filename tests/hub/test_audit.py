"""The audit chain detects edited, deleted and reordered entries."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from ouie.hub import audit
from ouie.hub.db import AuditEntry
from ouie.hub.service import Hub


def _fill(hub: Hub, n: int = 5) -> None:
    for i in range(n):
        with hub.sessions() as session, session.begin():
            audit.record(
                session, audit.AuditEvent("alice", "incident.read", "incident", f"i{i}", {"n": i})
            )


def test_clean_chain_verifies(hub: Hub) -> None:
    _fill(hub)
    result = hub.audit_verify()
    assert result.ok and result.entries == 5
    with hub.sessions() as session:
        lines = list(audit.export_jsonl(session))
    assert len(lines) == 5 and '"prev_hash"' in lines[0]


def test_edit_is_detected(hub: Hub) -> None:
    _fill(hub)
    with hub.sessions() as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="mallory"))
    result = hub.audit_verify()
    assert not result.ok and any("entry 3" in p and "edited" in p for p in result.problems)


def test_delete_in_middle_and_at_end_are_detected(hub: Hub) -> None:
    _fill(hub)
    with hub.sessions() as session, session.begin():
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    assert not hub.audit_verify().ok

    _fill(hub, 0)
    with hub.sessions() as session, session.begin():
        last = (
            session.execute(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()))
            .scalars()
            .first()
        )
        session.execute(delete(AuditEntry).where(AuditEntry.seq == last))
    assert not hub.audit_verify().ok


def test_reorder_is_detected(hub: Hub) -> None:
    _fill(hub)
    with hub.sessions() as session, session.begin():
        a = session.get(AuditEntry, 2)
        b = session.get(AuditEntry, 4)
        assert a is not None and b is not None
        fields = (
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "detail",
            "prev_hash",
            "hash",
        )
        va = {f: getattr(a, f) for f in fields}
        vb = {f: getattr(b, f) for f in fields}
        for f in fields:
            setattr(a, f, vb[f])
            setattr(b, f, va[f])
    result = hub.audit_verify()
    assert not result.ok


def test_tail_truncation_detected_via_head(hub: Hub) -> None:
    _fill(hub)
    with hub.sessions() as session, session.begin():
        session.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))
    result = hub.audit_verify()
    assert not result.ok and "head" in result.problems[-1]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.needs("postgresql"))]
)
def test_concurrent_appends_keep_one_chain(tmp_path: Path, backend: str) -> None:
    """API reads are audited while ingest writes: appends from many connections at once,
    from the very first one on a fresh database, must neither collide on a sequence number
    (or on creating the chain's head) nor break the chain."""
    if backend == "sqlite":
        _concurrent_appends(f"sqlite:///{tmp_path / 'race.sqlite3'}")
        return
    from tests.hub.helpers import pg_schema_url

    with pg_schema_url() as url:
        _concurrent_appends(url)


def _concurrent_appends(url: str) -> None:
    import threading

    from ouie.hub import audit as audit_module
    from ouie.hub.db import make_engine, migrate, session_factory

    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    failures: list[BaseException] = []

    def append(worker: int) -> None:
        for n in range(20):
            try:
                with sessions() as session, session.begin():
                    audit_module.record(
                        session, audit_module.AuditEvent("t", "x", "y", f"{worker}-{n}", {})
                    )
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with sessions() as session:
        result = audit_module.verify(session)
    assert result.ok
    assert result.entries == 120
    engine.dispose()
