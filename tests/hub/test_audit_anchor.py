"""Issue 18, finding 7: a full rewrite of the audit log (delete entries, re-hash the rest with
the project's own ``entry_hash``) passes the chain check, and the signed anchors catch it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ouie.cli import app as cli_app
from ouie.config.hub import AuditSettings
from ouie.core.timebase import utc_now
from ouie.hub import anchor, audit
from ouie.hub.anchor import AnchorKey, AnchorKeyError, SignedHead
from ouie.hub.api import create_app
from ouie.hub.db import AuditEntry, AuditHead
from ouie.hub.service import Hub
from ouie.web.app import create_hub_app
from tests.hub.helpers import settings_for


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "anchor.pem"
    path.parent.mkdir()
    AnchorKey.generate(path)
    return path


@pytest.fixture
def config(tmp_path: Path, key_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("OUIE_DATABASE_URL", raising=False)
    path = tmp_path / "hub.yaml"
    path.write_text(
        f"database:\n  url: sqlite:///{tmp_path / 'hub.sqlite3'}\n"
        f"audit:\n  anchor_key: {key_path}\n  anchor_log: {tmp_path / 'anchors.jsonl'}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def hub(tmp_path: Path, key_path: Path) -> Iterator[Hub]:
    settings = settings_for(f"sqlite:///{tmp_path / 'hub.sqlite3'}").model_copy(
        update={"audit": AuditSettings(anchor_key=key_path, anchor_log=tmp_path / "anchors.jsonl")}
    )
    instance = Hub(settings)
    instance.prepare()
    yield instance
    instance.close()


def _record(hub: Hub, n: int, start: int = 0) -> None:
    with hub.sessions() as session, session.begin():
        for i in range(start, start + n):
            audit.record(session, audit.AuditEvent("alice", "incident.read", "incident", f"i{i}"))


def _rewrite_without(session: Session, doomed: set[int]) -> None:
    """The issue's attack, with database write access only: delete entries, then re-number
    and re-hash every remaining one with ``audit.entry_hash`` and fix the head."""
    entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
    kept = [
        (e.at, e.actor, e.action, e.object_type, e.object_id, e.detail)
        for e in entries
        if e.seq not in doomed
    ]
    session.execute(delete(AuditEntry))
    prev = audit.GENESIS
    for seq, (at, actor, action, object_type, object_id, detail) in enumerate(kept, 1):
        digest = audit.entry_hash(seq, at, actor, action, object_type, object_id, detail, prev)
        session.add(
            AuditEntry(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                detail=detail,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    head = session.get(AuditHead, 1)
    assert head is not None
    head.seq, head.hash = len(kept), prev


def test_key_file_is_private_and_signatures_verify(key_path: Path) -> None:
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    key = AnchorKey.load(key_path)
    public = anchor.load_public_key(Path(f"{key_path}.pub").read_text("utf-8"))
    assert anchor.key_id_of(public) == key.key_id
    assert anchor.load_public_key(key.public_b64).public_bytes_raw() == public.public_bytes_raw()
    signed = key.sign(7, "ab" * 32, utc_now())
    public.verify(base64.b64decode(signed.signature), signed.message())
    with pytest.raises(FileExistsError):
        AnchorKey.generate(key_path)  # never overwritten


def test_missing_key_stops_the_hub(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'h.sqlite3'}").model_copy(
        update={"audit": AuditSettings(anchor_key=tmp_path / "nope.pem")}
    )
    hub = Hub(settings)
    with pytest.raises(AnchorKeyError, match="ouie audit keygen"):
        hub.prepare()
    hub.close()


def test_anchor_once_signs_only_a_new_head(hub: Hub, tmp_path: Path) -> None:
    assert hub.anchor_once() is None  # empty chain: nothing to sign
    _record(hub, 3)
    first = hub.anchor_once()
    assert first is not None and first.seq == 3
    assert hub.anchor_once() is None  # unchanged head
    _record(hub, 2, 3)
    second = hub.anchor_once()
    assert second is not None and second.seq == 5
    lines = (tmp_path / "anchors.jsonl").read_text("utf-8").splitlines()
    assert [SignedHead.model_validate_json(line).seq for line in lines] == [3, 5]
    with hub.sessions() as session:
        assert audit.verify(session).ok
        check = anchor.check_anchors(session, [first, second], [hub.anchor_key.public])  # type: ignore[union-attr]
    assert check.ok and check.anchors == 2


def test_the_issues_rewrite_passes_the_chain_but_not_the_anchors(hub: Hub) -> None:
    _record(hub, 10)
    anchored = hub.anchor_once()
    assert anchored is not None
    _record(hub, 5, 10)
    later = hub.anchor_once()
    assert later is not None
    with hub.sessions() as session, session.begin():
        _rewrite_without(session, {3, 4, 5})
    with hub.sessions() as session:
        chain = audit.verify(session)
        assert chain.ok, chain.problems  # the issue: "ouie audit verify said intact"
        check = anchor.check_anchors(session, [anchored, later], [hub.anchor_key.public])  # type: ignore[union-attr]
    assert not check.ok
    assert any("entry 10 no longer has the anchored hash" in p for p in check.problems)
    assert any("anchored entry 15 is missing" in p for p in check.problems)


def test_a_cut_tail_is_detected(hub: Hub) -> None:
    _record(hub, 6)
    anchored = hub.anchor_once()
    assert anchored is not None
    with hub.sessions() as session, session.begin():
        _rewrite_without(session, {5, 6})
    with hub.sessions() as session:
        assert audit.verify(session).ok
        check = anchor.check_anchors(session, [anchored], [hub.anchor_key.public])  # type: ignore[union-attr]
    assert check.problems == [
        "anchored entry 6 is missing: entries were deleted "
        "(the chain was cut or rewritten after it was anchored)"
    ]


def test_forged_or_foreign_anchors_are_refused(hub: Hub, tmp_path: Path) -> None:
    _record(hub, 4)
    real = hub.anchor_once()
    assert real is not None
    with hub.sessions() as session, session.begin():
        _rewrite_without(session, {2})
    with hub.sessions() as session:
        rewritten = session.get(AuditEntry, 3)
        assert rewritten is not None
        # the attacker edits the recorded anchor to match the rewritten chain
        forged = real.model_copy(update={"seq": 3, "hash": rewritten.hash})
        # or signs with a key of their own
        other = tmp_path / "other.pem"
        theirs = AnchorKey.generate(other).sign(3, rewritten.hash, utc_now())
        trusted = [hub.anchor_key.public]  # type: ignore[union-attr]
        forged_check = anchor.check_anchors(session, [forged], trusted)
        foreign_check = anchor.check_anchors(session, [theirs], trusted)
    assert "signature does not verify" in forged_check.problems[0]
    assert "signed by unknown key" in foreign_check.problems[0]


def test_cli_verify_with_anchors_detects_the_rewrite(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli_app, ["hub", "-c", str(config), "--migrate-only"]).exit_code == 0
    hub = Hub(_settings(config))
    hub.prepare()
    _record(hub, 8)
    assert hub.anchor_once() is not None
    hub.close()
    anchors = tmp_path / "anchors.jsonl"
    # as an outsider would: save the public document too
    saved = tmp_path / "published.json"
    hub = Hub(_settings(config))
    hub.prepare()
    saved.write_text(hub.anchor_publication().model_dump_json(), "utf-8")
    intact = runner.invoke(cli_app, ["audit", "verify", "-c", str(config), "--anchors", str(saved)])
    assert intact.exit_code == 0 and "1 anchor(s) matched" in intact.output
    with hub.sessions() as session, session.begin():
        _rewrite_without(session, {2, 3})
    hub.close()
    verify = ["audit", "verify", "-c", str(config), "--anchors", str(anchors)]
    plain = runner.invoke(cli_app, ["audit", "verify", "-c", str(config)])
    assert plain.exit_code == 0  # the chain alone cannot tell
    caught = runner.invoke(
        cli_app,
        [*verify, "--public-key", f"{config.parent / 'keys' / 'anchor.pem'}.pub"],
    )
    assert caught.exit_code == 1
    assert "anchored entry 8 is missing" in caught.output
    # the key given on the command line must be the one that signed
    stranger = tmp_path / "stranger.pem"
    AnchorKey.generate(stranger)
    wrong_key = runner.invoke(
        cli_app,
        [*verify, "--public-key", f"{stranger}.pub"],
    )
    assert wrong_key.exit_code == 1 and "unknown key" in wrong_key.output


def _settings(config: Path) -> Any:
    from ouie.config.hub import load_hub_settings

    return load_hub_settings(config)


def test_cli_keygen_and_anchor(tmp_path: Path, config: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "new.pem"
    made = runner.invoke(cli_app, ["audit", "keygen", "--out", str(out)])
    assert made.exit_code == 0 and "public key: " in made.output
    assert runner.invoke(cli_app, ["audit", "keygen", "--out", str(out)]).exit_code == 2
    assert runner.invoke(cli_app, ["hub", "-c", str(config), "--migrate-only"]).exit_code == 0
    empty = runner.invoke(cli_app, ["audit", "anchor", "-c", str(config)])
    assert empty.exit_code == 0 and "already anchored" in empty.output
    hub = Hub(_settings(config))
    hub.prepare()
    _record(hub, 2)
    hub.close()
    signed = runner.invoke(cli_app, ["audit", "anchor", "-c", str(config)])
    assert signed.exit_code == 0 and json.loads(signed.output)["seq"] == 2


def test_the_signed_head_is_published(hub: Hub) -> None:
    _record(hub, 3)
    signed = hub.anchor_once()
    assert signed is not None
    api = TestClient(create_app(hub, manage_hub=False))
    body = api.get("/api/v1/public/audit-anchor").json()
    assert body["enabled"] is True and body["latest"]["seq"] == 3
    assert body["public_key"] == hub.anchor_key.public_b64  # type: ignore[union-attr]
    assert SignedHead.model_validate(body["latest"]) == signed
    page = TestClient(create_hub_app(hub, manage_hub=False)).get(
        "/public", headers={"accept": "text/html"}
    )
    assert page.status_code == 200
    assert signed.hash in page.text and signed.signature in page.text
    assert hub.anchor_key.public_b64 in page.text  # type: ignore[union-attr]


def test_the_hub_anchors_periodically_while_running(hub: Hub) -> None:
    hub.settings = hub.settings.model_copy(
        update={"audit": hub.settings.audit.model_copy(update={"anchor_interval_s": 1.0})}
    )
    _record(hub, 2)

    async def run() -> list[int]:
        await hub.start()
        try:
            seen: list[int] = []
            for _ in range(100):
                await asyncio.sleep(0.05)
                latest = hub.anchor_publication().latest
                if latest is not None and latest.seq not in seen:
                    seen.append(latest.seq)
                    if len(seen) == 1:
                        _record(hub, 1, 2)  # a new head: signed at the next tick
                if len(seen) == 2:
                    break
            return seen
        finally:
            await hub.stop()

    # the retention job audits its runs too, so the heads are at least these
    first, second = asyncio.run(run())
    assert first >= 2 and second > first


def test_without_a_key_nothing_is_signed(tmp_path: Path) -> None:
    hub = Hub(settings_for(f"sqlite:///{tmp_path / 'plain.sqlite3'}"))
    hub.prepare()
    _record(hub, 2)
    assert hub.anchor_once() is None
    body = TestClient(create_app(hub, manage_hub=False)).get("/api/v1/public/audit-anchor").json()
    assert body == {
        "enabled": False,
        "key_id": None,
        "public_key": None,
        "latest": None,
        "recent": [],
    }
    hub.close()
