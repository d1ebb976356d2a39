"""Every UI string the templates and scripts ask for exists in French and English."""

from __future__ import annotations

import re
from pathlib import Path

from ouie.core.labels import EVENT_LABELS
from ouie.hub.auth import Role
from ouie.hub.incidents import STATES, VERDICTS
from ouie.web import i18n

WEB = Path(i18n.__file__).parent


def test_catalogue_is_complete_in_both_languages() -> None:
    for key, (en, fr) in i18n.catalogue().items():
        assert en.strip() and fr.strip(), key
        assert set(re.findall(r"\{(\w+)\}", en)) == set(re.findall(r"\{(\w+)\}", fr)), key


def test_every_key_used_by_templates_and_scripts_exists() -> None:
    known = i18n.keys()
    used: set[str] = set()
    for path in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", path.read_text("utf-8")))
    for path in (WEB / "static" / "js").glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", path.read_text("utf-8")))
    used = {key for key in used if not key.endswith(".")}  # prefixes of dynamic keys
    assert used, "no keys found: the pattern is wrong"
    assert sorted(used - known) == []
    dynamic = (
        [f"label.{label.value}" for label in EVENT_LABELS]
        + [f"state.{state}" for state in STATES]
        + [f"role.{role.value}" for role in Role]
        + [f"feedback.{verdict}" for verdict in VERDICTS]
        + [f"health.{h}" for h in ("ok", "clock", "offline", "unknown")]
    )
    assert sorted(set(dynamic) - known) == []
    js_used = set()
    for path in (WEB / "static" / "js").glob("*.js"):
        js_used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", path.read_text("utf-8")))
    js_used = {key for key in js_used if not key.endswith(".")}
    assert sorted(js_used - set(i18n.JS_KEYS)) == []


def test_language_choice() -> None:
    assert i18n.pick_lang("en", "fr-FR") == "en"
    assert i18n.pick_lang(None, "de-DE,en;q=0.8") == "en"
    assert i18n.pick_lang(None, "fr-CA,en;q=0.8") == "fr"
    assert i18n.pick_lang(None, None) == "fr"
    assert i18n.pick_lang("xx", "", default="en") == "en"
    assert i18n.translate("en", "public.retention_text", days=30).endswith("30 days.")
