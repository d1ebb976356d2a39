"""The public page and the notices claim only what is configured and tested
(``ouie.web.claims``)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from ouie.config.compliance import ComplianceSettings
from ouie.config.hub import HubSettings
from ouie.core.labels import EventLabel
from ouie.web.claims import EVIDENCE, audit_anchored, public_claims
from ouie.web.i18n import catalogue
from tests.web.hubenv import HubEnv

REPO = Path(__file__).resolve().parents[2]
HTML = {"accept": "text/html"}
STRONG_WORDS = re.compile(r"tamper-evident|infalsifiable|scellé|inaltérable", re.I)


def _text(settings: HubSettings, lang: str, **kwargs: object) -> str:
    claims = public_claims(settings, ComplianceSettings(), lang, **kwargs)  # type: ignore[arg-type]
    return " ".join(c.text for c in claims)


def test_tamper_evident_is_said_only_with_anchoring() -> None:
    plain = HubSettings()
    assert not audit_anchored(plain)
    for lang in ("fr", "en"):
        assert not STRONG_WORDS.search(_text(plain, lang))
    anchored = plain.model_copy(
        update={"audit": plain.audit.model_copy(update={"anchor_key": Path("/etc/ouie/a.pem")})}
    )
    assert audit_anchored(anchored)
    assert "tamper-evident" in _text(anchored, "en")
    assert "toute réécriture ultérieure du journal est détectable" in _text(anchored, "fr")
    # the fixed catalogue itself makes no such claim: only the generated one may
    for en, fr in catalogue().values():
        assert not STRONG_WORDS.search(en) and not STRONG_WORDS.search(fr), (en, fr)


def test_claims_follow_cameras_counts_and_retention() -> None:
    settings = HubSettings()
    assert "No camera is turned" in _text(settings, "en")
    cued = _text(settings, "en", auto_cue_labels=[EventLabel.GUNSHOT])
    assert "turned automatically towards gunshot" in cued and "No camera" not in cued
    settings.web.public_counts.delay_h = 48
    settings.web.public_counts.min_count = 7
    assert "at least 48 h" in _text(settings, "en") and "'< 7'" in _text(settings, "en")
    assert f"after {settings.retention.days} days" in _text(settings, "en")


def test_every_claim_names_tests_that_exist() -> None:
    for key, tests in EVIDENCE.items():
        assert tests, key
        for test in tests:
            file, _, name = test.partition("::")
            path = REPO / file
            assert path.is_file(), f"{key}: {file} is missing"
            assert re.search(rf"^def {re.escape(name)}\(", path.read_text(), re.M), test


def test_french_page_shows_french_purposes_and_delayed_counts(
    web: tuple[HubEnv, TestClient],
) -> None:
    _, client = web
    french = client.get("/public", headers={**HTML, "accept-language": "fr-FR"}).text
    assert "Détecter les sons qui révèlent une urgence" in french
    assert "Detect sounds that indicate" not in french
    assert "Comptés jusqu" in french and 'data-testid="public-counts-until"' in french
    assert not STRONG_WORDS.search(french)
    english = client.get("/public", headers={**HTML, "accept-language": "en"}).text
    assert "Detect sounds that indicate an emergency" in english
    assert "Détecter les sons" not in english


def test_stats_page_shows_the_experiment_criteria(web: tuple[HubEnv, TestClient]) -> None:
    from datetime import timedelta

    from ouie.config.compliance import Experiment, SuccessCriteria
    from ouie.core.timebase import utc_now
    from tests.web.test_pages import login

    _, client = web
    stats = "/console/stats"
    login(client, "viewer")
    assert 'data-testid="experiment-criteria"' not in client.get(stats, headers=HTML).text
    today = utc_now().date()
    web_app = client.app.state.web  # type: ignore[attr-defined]
    web_app.compliance = ComplianceSettings(
        experiment=Experiment(
            start=today - timedelta(days=3),
            end=today + timedelta(days=60),
            success=SuccessCriteria(min_precision=0.8, max_false_alerts_per_sensor_day=0.2),
        )
    )
    page = client.get(stats, headers={**HTML, "accept-language": "fr"}).text
    assert 'data-testid="experiment-criteria"' in page
    assert "Fausses alertes par capteur et par jour" in page and "≥ 80 %" in page
    assert "trop peu d&#39;alertes jugées" in page  # no feedback yet: nothing is judged
