"""A private Mosquitto started with the config ``ouie broker config`` writes: TLS only,
client certificates of a site CA made for the test, the per-sensor ACL, persistence on every
change. Each test gets its own CA, port and data folder."""

from __future__ import annotations

import getpass
from pathlib import Path

import aiomqtt

from ouie.config.security import TlsSettings
from ouie.hub.broker import MosquittoPlan, write_broker_config
from ouie.hub.pki import SitePki
from tests.integration.mosquitto import Mosquitto


class TrustedBroker(Mosquitto):
    """``Mosquitto`` whose config is replaced by ouie's generated one before it starts."""

    def __init__(self, folder: Path, pki: SitePki | None = None, durable: bool = True) -> None:
        """``durable=False``: the generated config less its ``autosave_*`` lines, so the
        store is saved only at shutdown (Mosquitto's default), to show what a crash loses."""
        super().__init__(folder / "broker")
        self.pki = pki or SitePki(folder / "pki")
        if not self.pki.exists():
            self.pki.init(broker_hosts=("127.0.0.1", "localhost"))
        self.plan = MosquittoPlan(
            ca_file=self.pki.ca_cert,
            cert_file=self.pki.broker_cert,
            key_file=self.pki.broker_key,
            acl_file=self.config.with_suffix(".acl"),
            data_dir=self.folder / "data",
            hub_identities=tuple(self.pki.hub_names()),
            listen_host="127.0.0.1",
            port=self.port,
            # started as root, Mosquitto would switch to this user: the test's own
            run_as_user=getpass.getuser(),
            log_file=self.folder / "mosquitto.log",
        )
        write_broker_config(self.plan, self.config)
        if not durable:
            lines = self.config.read_text(encoding="utf-8").splitlines()
            kept = [line for line in lines if not line.strip().startswith("autosave_")]
            assert len(kept) == len(lines) - 2, "the generated config changed its autosave"
            self.config.write_text("\n".join(kept) + "\n", encoding="utf-8")

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def hub_tls(self, name: str = "ouie-hub") -> TlsSettings:
        folder = self.pki.hub_dir(name)
        return TlsSettings(
            ca_file=self.pki.ca_cert,
            cert_file=folder / "client.crt",
            key_file=folder / "client.key",
        )

    def sensor_tls(self, site: str, sensor_id: str) -> TlsSettings:
        folder = self.pki.sensor_dir(site, sensor_id)
        return TlsSettings(
            ca_file=folder / "ca.crt",
            cert_file=folder / "client.crt",
            key_file=folder / "client.key",
        )

    def client(
        self,
        tls: TlsSettings | None,
        identifier: str,
        *,
        ca_file: Path | None = None,
        protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V311,
        timeout: float = 5.0,
    ) -> aiomqtt.Client:
        """A raw client of this broker: with ``tls`` (a certificate), or with none but the
        CA to check the broker by (``ca_file``), as an intruder would connect."""
        params = (
            aiomqtt.TLSParameters(
                ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file)
            )
            if tls is not None
            else aiomqtt.TLSParameters(ca_certs=str(ca_file or self.pki.ca_cert))
        )
        return aiomqtt.Client(
            "127.0.0.1",
            self.port,
            identifier=identifier,
            protocol=protocol,
            tls_params=params,
            timeout=timeout,
        )

    def log_text(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
