"""Backend ``auto``: the best backend that is installed.

The cascade (ouie-compact gating, the AudioSet teachers confirming) needs the teachers'
files in the model directory, which ouie never downloads. ``auto`` is the cascade when
YAMNet is installed (``ouie models import``), and the bundled ouie-compact otherwise; the
model id says which one runs. Which is better depends on the model: with ouie-compact@
162e0551 the cascade is ahead only at 5 % false clips against street non-targets on the
source-disjoint yardstick, and behind everywhere else (docs/benchmarks.md), so the node's
default backend is ``compact`` and ``auto`` is an opt-in.
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
