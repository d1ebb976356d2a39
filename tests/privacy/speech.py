"""Speech recordings made on the spot with espeak-ng (several languages and voices)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from tests._services import need

SENTENCES = {
    "en": "Good evening, I am waiting for my friend near the square, she should be here soon.",
    "fr": "Bonsoir, j'attends mon amie près de la place, elle devrait bientôt arriver.",
    "de": "Guten Abend, ich warte auf meine Freundin am Platz, sie kommt gleich.",
    "es": "Buenas noches, estoy esperando a mi amiga cerca de la plaza, llegará pronto.",
    "it": "Buonasera, sto aspettando la mia amica vicino alla piazza, arriverà presto.",
    "ar": "مساء الخير، أنا أنتظر صديقتي قرب الساحة",
}
VOICES = ["", "+f3", "+m5"]


def speak(text: str, voice: str, out: Path) -> tuple[np.ndarray, int]:
    """Tests that speak say so with ``@pytest.mark.needs("espeak-ng")``; this check is the
    safety net for one that forgets (skip, or failure under OUIE_REQUIRE_SERVICES=1)."""
    need("espeak-ng")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True)
    audio, rate = sf.read(str(out), dtype="float32")
    out.unlink()  # the test's own synthetic speech; nothing is kept
    return audio, int(rate)
