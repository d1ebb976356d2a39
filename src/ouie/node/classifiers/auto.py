"""Backend ``auto``: the best backend that is installed.

The cascade (ouie-compact gating, the AudioSet teachers confirming) needs the teachers'
files in the model directory, which ouie never downloads. ``auto`` is the cascade when
YAMNet is installed (``ouie models import``), and the bundled ouie-compact otherwise; the
model id says which one runs. On the source-disjoint yardstick's balanced recall (every
recording source of a label weighing the same; docs/benchmarks.md, session 10) the cascade
is ahead of ouie-compact alone at every point and level with YAMNet zero-shot, with a sixth
of YAMNet's false alarms, so ``auto`` is the backend to run where the teachers are
installed, and the node's default: a ``classifier:`` section without ``backend`` (or no section)
means ``auto``. A deployment whose DPIA and dossier quote one classifier's figures names that
backend instead (``examples/production/node.yaml`` says ``cascade``), so a sensor missing the
teachers fails to start rather than running another model than the one measured.
"""

from __future__ import annotations

from ouie.config.classifiers import AutoSettings
from ouie.node.classifiers import cascade, compact
from ouie.node.classifiers.base import Classifier

BACKEND = "auto"
DESCRIPTION = "the cascade when the AudioSet teachers are installed, else ouie-compact"


def create(settings: AutoSettings) -> Classifier:
    """The cascade when YAMNet's file is in the model directory, else ouie-compact. A teacher
    file that is there but damaged is an error, never a silent fall-back."""
    if cascade.teacher_folder(settings) is None:
        return compact.create(settings)
    return cascade.create(settings)
