"""Rule ``camera-auto-cue``: in production, a video-protection camera turns towards an acoustic
detection without an operator only when the declared legal instrument explicitly covers
audio-triggered cameras.

This is what the CNIL answered on Orléans in 2023: no legal framework covers cameras driven
by sound. ``verify.cueing.auto_cue_labels`` does exactly that (actor ``system:auto-cue``),
and with forged sensor traffic a fake event could move a camera. Cueing by an operator stays
an audited human action and is not concerned. When the instrument is declared
(``compliance.legal_basis.audio_triggered_cameras``) the DPIA and the dossier state it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ouie.compliance.findings import Finding
from ouie.config.compliance import ComplianceSettings
from ouie.core.labels import EventLabel


def camera_findings(
    compliance: ComplianceSettings,
    auto_cue_labels: Sequence[EventLabel],
    source: str = "",
    where: str = "verify.cueing.auto_cue_labels",
) -> list[Finding]:
    if not auto_cue_labels or not compliance.production:
        return []
    basis = compliance.legal_basis
    if basis is not None and basis.audio_triggered_cameras:
        return []
    labels = ", ".join(str(label) for label in auto_cue_labels)
    return [
        Finding(
            "camera-auto-cue",
            f"cameras would turn automatically on {labels} with no operator; the CNIL found no "
            "legal framework for audio-triggered cameras (Orléans, 2023). Remove "
            "auto_cue_labels (operators can still cue), or cite the provision that authorises "
            "it in compliance.legal_basis.audio_triggered_cameras",
            where,
            source,
        )
    ]
