"""A private Mosquitto broker for one test: its own loopback port, config and data folder.

Tests never touch the shared broker on 1883 (other suites use it); they start this one and
can stop and restart it at will. Persistence is on, in the test's temp folder, and saved on
every change (``ouie.hub.broker.durable_persistence``, what ``ouie broker config`` writes),
so a broker stopped with SIGTERM, or killed with SIGKILL, comes back with its sessions and
queued messages, as a production broker configured by ouie does.
"""

from __future__ import annotations

import getpass
import signal
import socket
import subprocess
import time
from pathlib import Path

from ouie.hub.broker import durable_persistence
from tests._services import MOSQUITTO, need


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Mosquitto:
    def __init__(self, folder: Path, port: int | None = None, durable: bool = True) -> None:
        """``durable=False``: persistence as Mosquitto does it by default, saved only at
        shutdown (and every 30 min), to show what a crash then loses."""
        need("mosquitto")  # skips the test without the binary (fails it in CI)
        self.folder = folder
        self.port = port or free_port()
        data = folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        persistence = (
            durable_persistence(data)
            if durable
            else ["persistence true", f"persistence_location {data}/"]
        )
        self.config = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # Started as root, mosquitto would switch to user "mosquitto", who cannot
            # write the test's temp folder; stay the current user instead.
            f"user {getpass.getuser()}",
            *persistence,
            "log_type error",
            "log_type warning",
            f"log_dest file {folder / 'mosquitto.log'}",
        ]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited at start: {err.strip()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {self.port} in 10 s")
            time.sleep(0.02)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None
        deadline = time.monotonic() + 5
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)
