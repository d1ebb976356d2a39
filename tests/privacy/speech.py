"""Speech recordings made on the spot with espeak-ng (several languages and voices)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SENTENCES = {
    "en": "Good evening, I am waiting for my friend near the square, she should be here soon.",
    "fr": "Bonsoir, j'attends mon amie près de la place, elle devrait bientôt arriver.",
    "de": "Guten Abend, ich warte auf meine Freundin am Platz, sie kommt gleich.",
    "es": "Buenas noches, estoy esperando a mi amiga cerca de la plaza, llegará pronto.",
    "it": "Buonasera, sto aspettando la mia amica vicino alla piazza, arriverà presto.",
    "ar": "مساء الخير، أنا أنتظر صديقتي قرب الساحة",
}
VOICES = ["", "+f3", "+m5"]


def espeak_available() -> bool:
    if shutil.which("espeak-ng"):
        return True
    if os.environ.get("OUIE_REQUIRE_SHARED") == "1":
        pytest.fail("espeak-ng is missing: .ci/run installs it (apt-get install espeak-ng)")
    pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")


def speak(text: str, voice: str, out: Path) -> tuple[np.ndarray, int]:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True)
    audio, rate = sf.read(str(out), dtype="float32")
    out.unlink()  # the test's own synthetic speech; nothing is kept
    return audio, int(rate)
