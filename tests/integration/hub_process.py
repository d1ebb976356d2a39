"""A real ``ouie hub`` process for fault tests: started, SIGTERMed or SIGKILLed at will.

It runs the hub exactly as a site does (``ouie hub --config hub.yaml``), with the settings a
test passes; ``start`` returns once the hub's health endpoint says its MQTT ingest is
connected.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.integration.mosquitto import free_port


class HubProcess:
    def __init__(self, folder: Path, settings: dict[str, Any]) -> None:
        """``settings``: the hub YAML's sections; ``http`` is set here (a free port)."""
        self.http_port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "hub.yaml"
        self.config.write_text(
            yaml.safe_dump({**settings, "http": {"host": "127.0.0.1", "port": self.http_port}}),
            encoding="utf-8",
        )
        self.log = folder / "hub.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if k != "OUIE_DATABASE_URL"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from ouie.cli import main; main()",
                    "hub",
                    "--config",
                    str(self.config),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                health = httpx.get(
                    f"http://127.0.0.1:{self.http_port}/api/v1/health", timeout=1
                ).json()
                if health.get("mqtt") == "connected":
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError("hub did not become ready:\n" + self.log.read_text())

    def kill(self) -> None:
        """SIGKILL: no drain, no clean disconnect."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
