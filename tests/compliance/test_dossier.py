"""``ouie dossier``: four parts, French by default, every figure from the inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ouie.cli import app
from ouie.compliance.dossier import DossierError, calendar, generate_dossier
from ouie.compliance.leakage import write_report
from ouie.config.compliance import ComplianceSettings
from ouie.core.labels import EVENT_LABELS
from ouie.eval.result import Timing
from ouie.eval.source_result import (
    ClassRecall,
    ClipRecall,
    ClipScoreRow,
    DeployedScores,
    OverallBlock,
    RecallPoint,
    SingleThresholdRecall,
    SourceSplitResult,
)
from tests.compliance.test_dpia import PRODUCTION, _report

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUIE_NODE__PUBLISH__MQTT__PASSWORD", "vJ3#qT9!mZ2$wK7pL4")


def _street(name: str, seconds: float, events: list[str]) -> ClipScoreRow:
    scores = {str(label): 0.0 for label in EVENT_LABELS}
    return ClipScoreRow(
        data_dir="d",
        file=name,
        source="s",
        label="background",
        duration_s=seconds,
        scores=scores,
        events=events,
    )


def _detection(
    backend: str = "cascade",  # what examples/production/node.yaml runs
    found: int = 123,
    targets: int = 456,
    per_hour: float = 2.5,
    street_events: int = 1,
) -> SourceSplitResult:
    per_class = {str(label): ClassRecall(found=0, n=0, recall=None) for label in EVENT_LABELS}
    per_class["gunshot"] = ClassRecall(found=found, n=targets, recall=found / targets)
    deployed = DeployedScores(
        targets_found=found,
        targets=targets,
        per_class=per_class,
        non_target_clips_with_event=7,
        non_target_clips=300,
        background_hours=4.0,
        background_events=int(per_hour * 4),
        false_alarms_per_hour=per_hour,
        speech_clips=40,
        speech_clips_with_event=0,
        speech_events=0,
    )
    return SourceSplitResult(
        backend=backend,
        builds_dir=None,
        data_dirs=["dev"],
        mode="clips",
        seed=1,
        collar_s=0.5,
        false_clip_rates=[0.01, 0.02, 0.05],
        created_at="2026-12-01T10:00:00Z",
        model_ids={"s": f"{backend}@12345678"},
        sources=[],
        overall=OverallBlock(
            sources_evaluated=["s", "t", "u"],
            sources_skipped=[],
            n_clips=800,
            n_targets=targets,
            n_non_targets=300,
            n_speech=40,
            clip_recall=None,
            deployed=deployed,
            mixtures=None,
        ),
        clips=[
            _street("a.wav", 1800.0, ["siren"] * street_events),
            _street("b.wav", 1800.0, []),
        ],
        timing=Timing(audio_s=100.0, wall_s=12.0, x_realtime=8.0, device="cpu"),
        versions={},
        skipped_files=[],
    )


def _clip_recall(pooled: float, balanced: float) -> ClipRecall:
    point = RecallPoint(
        max_false_clip_rate=0.02,
        per_label_false_rate=0.003,
        thresholds={},
        recall=pooled,
        found=0,
        n_targets=0,
        false_clip_rate=0.02,
        false_clips=0,
        n_non_targets=0,
        false_clips_by_label={},
        balanced_recall=balanced,
        balanced_cells=14,
    )
    return ClipRecall(
        basis="own",
        points=[point],
        per_class_rate=0.02,
        per_class={},
        single_threshold=SingleThresholdRecall(points=[], per_class={}),
    )


def _inputs(tmp_path: Path, **report: object) -> tuple[Path, Path]:
    privacy = tmp_path / "privacy.json"
    write_report(_report(**report), privacy)
    detection = tmp_path / "detection.json"
    detection.write_text(_detection().model_dump_json(), encoding="utf-8")
    return privacy, detection


def test_dossier_has_four_parts_in_french_with_figures_from_the_inputs(tmp_path: Path) -> None:
    privacy, detection = _inputs(tmp_path)
    written = generate_dossier(PRODUCTION, privacy, tmp_path / "out", detection)
    assert {p.name for p in written} == {"dossier.md", "dossier.pdf", "sensor-map.png"}
    text = (tmp_path / "out" / "dossier.md").read_text(encoding="utf-8")
    for part in ("Partie 1 — Technique", "Partie 2 — Juridique", "Partie 3 — Stratégie"):
        assert f"# {part}" in text
    assert "# Partie 4 — Calendrier" in text
    # detection (from the --split source JSON): recall, false alarms per sensor-day
    assert "123 / 456 (27,0 %)" in text
    assert "2,5 (10 sur 4,00 h)" in text  # all backgrounds, per hour
    assert "**25** tous fonds" in text  # 2.5 /h × 10 listening hours
    assert "1,0 (1 sur 1,00 h)" in text and "**10** ambiances de rue" in text
    assert "0,20 | 25 tous fonds, 10 ambiances de rue : **non démontré en laboratoire**" in text
    assert "latence | non mesurée" in text
    # privacy (from the `ouie eval privacy` JSON)
    assert "**0** sur 278 enregistrements (41,7 min)" in text and "57,7 ko" in text
    # configuration: zone, experiment, calendar, purposes in French, alternatives, criteria
    assert "13,91 ha" in text and "20:00-06:00" in text
    assert "du 04/01/2027 au 30/06/2028 (544 jours)" in text
    assert "| 15/09/2027 | J+254 | revue à mi-parcours |" in text
    assert "| 30/06/2028 | J+543 | fin : purge" in text
    assert "Détecter les sons qui révèlent une urgence" in text
    assert "Patrouilles renforcées la nuit" in text
    assert "80 %, après au moins 50 alertes jugées" in text
    assert "Saint-Étienne" in text and "Orléans" in text  # the CNIL's positions
    assert "coup de feu, bris de verre" in text  # class names in French
    # audit anchoring is off in the example: the log is not called tamper-evident
    assert "Ancrage de l'audit désactivé" in text and "pas présenté comme infalsifiable" in text
    assert "ne quitte pas la mémoire du capteur" in text
    # the cascade's three models, each with its card: ouie-compact's own, the teachers' third-party
    assert "| cascade (compact) | ouie-compact@" in text and "DATA_CARD.md" in text
    assert "| cascade (yamnet) | yamnet-tflite@0a266465 | modèle AudioSet tiers" in text
    assert "| cascade (mn04) | — | modèle AudioSet tiers" in text
    assert "n'est pas celui que les capteurs" not in text  # measured = configured
    pdf = (tmp_path / "out" / "dossier.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 5


def test_other_inputs_give_other_figures(tmp_path: Path) -> None:
    privacy, detection = _inputs(tmp_path, events_on_speech=3, bytes_per_hour=61234.0)
    detection.write_text(
        _detection(
            backend="yamnet", found=50, targets=200, per_hour=0.01, street_events=0
        ).model_dump_json(),
        encoding="utf-8",
    )
    generate_dossier(PRODUCTION, privacy, tmp_path / "out", detection, pdf=False)
    text = (tmp_path / "out" / "dossier.md").read_text(encoding="utf-8")
    assert "**3** sur 278 enregistrements" in text and "61,2 ko" in text
    assert "50 / 200 (25,0 %)" in text
    # 0 events on 1 h of street ambience resolves nothing below 10 per listening day: one
    # more event would be 10 per day, above the 0.2 criterion, so it is not called met
    assert "0 tous fonds, 0 ambiances de rue : **non démontré en laboratoire**" in text
    # the measured classifier is not the one the sensors run: said, not hidden
    assert "n'est pas celui que les capteurs configurés utilisent (cascade)" in text


def test_without_a_detection_run_the_dossier_says_so(tmp_path: Path) -> None:
    privacy, _ = _inputs(tmp_path)
    generate_dossier(PRODUCTION, privacy, tmp_path / "out", None, pdf=False)
    text = (tmp_path / "out" / "dossier.md").read_text(encoding="utf-8")
    assert "Aucune mesure de détection n'a été fournie" in text
    assert "| fausses alertes par capteur et par jour d'écoute, au plus | 0,20 | non mesurée |" in (
        text
    )


def test_the_balanced_recall_is_shown_beside_the_pooled_one(tmp_path: Path) -> None:
    privacy, detection = _inputs(tmp_path)
    result = _detection()
    overall = result.overall.model_copy(
        update={
            "clip_recall": _clip_recall(pooled=0.179, balanced=0.406),
            "street_clip_recall": _clip_recall(pooled=0.421, balanced=0.635),
        }
    )
    detection.write_text(
        result.model_copy(update={"overall": overall}).model_dump_json(), encoding="utf-8"
    )
    generate_dossier(PRODUCTION, privacy, tmp_path / "out", detection, pdf=False)
    text = (tmp_path / "out" / "dossier.md").read_text(encoding="utf-8")
    assert "sans seuil réglé (tous sons / ambiances de rue) | 17,9 % / 42,1 % |" in text
    assert (
        "chaque source d'un son pesant autant (tous sons / ambiances de rue) | 40,6 % / 63,5 %"
        in (text)
    )


def test_english_dossier(tmp_path: Path) -> None:
    privacy, detection = _inputs(tmp_path)
    generate_dossier(PRODUCTION, privacy, tmp_path / "out", detection, lang="en", pdf=False)
    text = (tmp_path / "out" / "dossier.md").read_text(encoding="utf-8")
    for part in ("Part 1 — Technical", "Part 2 — Legal", "Part 3 — Strategy", "Part 4 — Calendar"):
        assert f"# {part}" in text
    assert "Detect sounds that indicate an emergency" in text
    assert "123 / 456 (27.0 %)" in text and "| 2027-09-15 | D+254 | mid-term review |" in text


def test_calendar_lists_a_review_on_a_phase_day_once() -> None:
    raw = yaml.safe_load((REPO / "examples/production/hub.yaml").read_text(encoding="utf-8"))
    comp = ComplianceSettings.model_validate(raw["compliance"])
    assert comp.experiment is not None
    keys = [m.key for m in calendar(comp.experiment)]
    assert keys[0] == "start" and keys[-1] == "end"
    assert keys.count("mid_term_review") == 1 and keys.count("review") == 3


def test_cli(tmp_path: Path) -> None:
    privacy, detection = _inputs(tmp_path)
    args = ["dossier", "--eval-json", str(privacy), "--out", str(tmp_path / "o"), "--no-pdf"]
    for path in PRODUCTION:
        args += ["--config", str(path)]
    result = CliRunner().invoke(app, [*args, "--detection-json", str(detection)])
    assert result.exit_code == 0, result.output
    assert "dossier.md" in result.output
    junk = tmp_path / "junk.json"
    junk.write_text("{}", encoding="utf-8")
    bad = CliRunner().invoke(app, [*args, "--detection-json", str(junk)])
    assert bad.exit_code == 2 and "ouie eval --split source" in bad.output
    with pytest.raises(DossierError):
        generate_dossier(PRODUCTION, privacy, tmp_path / "x", junk, pdf=False)


def test_a_false_alert_criterion_is_met_only_when_the_measurement_resolves_it() -> None:
    from ouie.compliance.dossier import _shows_at_most

    # 0 events in 0.29 h: one more would be 34 per 10-hour day, far above 0.2
    assert not _shows_at_most(0, 0.29, 10.0, 0.2)
    # 0 events in 100 h: one more would be 0.1 per day, within 0.2
    assert _shows_at_most(0, 100.0, 10.0, 0.2)
    # 1 event in 100 h: two would be 0.2 per day, exactly the limit
    assert _shows_at_most(1, 100.0, 10.0, 0.2)
    assert not _shows_at_most(2, 100.0, 10.0, 0.2)
    assert not _shows_at_most(0, 0.0, 10.0, 0.2)
