"""The site's certificate authority and the identities it issues (``ouie pki init``,
``ouie sensor add``).

One folder holds everything; private keys are created mode 0600::

    <pki_dir>/ca.crt, ca.key                 the site CA (ECDSA P-256, 10 years)
    <pki_dir>/hub-signing.key, .pub          Ed25519: the hub signs threshold configs
    <pki_dir>/broker/server.crt, server.key  the broker's TLS certificate (names it answers to)
    <pki_dir>/hubs/<name>/client.crt, .key   the hub's client certificate (CN = <name>)
    <pki_dir>/sensors/<site>/<sensor>/       one folder to copy onto the lamp post:
        client.crt, client.key               its client certificate (CN = <site>/<sensor>)
        signing.key, signing.pub             Ed25519: the sensor signs its events and status
        ca.crt, hub-signing.pub              what it checks the broker and the hub's configs by

The broker (``ouie.hub.broker``) takes a client certificate's common name as the MQTT user
name, and its ACL lets ``<site>/<sensor>`` write only ``ouie/v1/<site>/<sensor>/events`` and
``/status``. X.509 keys are ECDSA P-256 (what every TLS stack accepts); message signing keys
are Ed25519 (``ouie.transport.signing``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ouie.config.security import HubIdentitySettings
from ouie.core.timebase import utc_now
from ouie.transport.signing import SigningKey, SigningKeyError, VerifyKey, write_private

CA_DAYS = 3650
LEAF_DAYS = 825  # the longest leaf lifetime TLS clients commonly accept
DEFAULT_HUB = "ouie-hub"
DEFAULT_BROKER_HOSTS = ("localhost", "127.0.0.1")


class PkiError(RuntimeError):
    """The PKI folder is missing, incomplete, or would be overwritten."""


def sensor_common_name(site: str, sensor_id: str) -> str:
    """The certificate CN, hence the MQTT user name, of a sensor. Site and sensor ids never
    hold ``/``, ``+`` or ``#``, so ``ouie/v1/%u/events`` in the ACL is exactly its topic."""
    return f"{site}/{sensor_id}"


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex: how the registry and the console name it."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class IssuedCertificate:
    cert_file: Path
    key_file: Path
    fingerprint: str
    not_after: datetime


@dataclass(frozen=True)
class SensorIdentity:
    """What ``issue_sensor`` wrote, and what the hub's registry keeps of it."""

    folder: Path
    certificate: IssuedCertificate
    signing_key_file: Path
    public_key: VerifyKey
    ca_file: Path
    hub_public_key_file: Path


class SitePki:
    """The PKI folder. ``init`` creates it; the other methods need it complete."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- paths ----------------------------------------------------------------------------
    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def hub_signing_key(self) -> Path:
        return self.root / "hub-signing.key"

    @property
    def hub_signing_pub(self) -> Path:
        return self.root / "hub-signing.pub"

    @property
    def broker_cert(self) -> Path:
        return self.root / "broker" / "server.crt"

    @property
    def broker_key(self) -> Path:
        return self.root / "broker" / "server.key"

    def hub_dir(self, name: str) -> Path:
        return self.root / "hubs" / name

    def sensor_dir(self, site: str, sensor_id: str) -> Path:
        return self.root / "sensors" / site / sensor_id

    def exists(self) -> bool:
        return self.ca_cert.exists() and self.ca_key.exists()

    def hub_names(self) -> list[str]:
        """Every hub identity issued (each hub worker has its own certificate)."""
        folder = self.root / "hubs"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / "client.crt").exists())

    # -- creation -------------------------------------------------------------------------
    def init(
        self,
        *,
        organisation: str = "ouie site",
        broker_hosts: tuple[str, ...] = DEFAULT_BROKER_HOSTS,
        hub_name: str = DEFAULT_HUB,
        now: datetime | None = None,
    ) -> None:
        """Create the CA, the hub's signing key and client certificate and the broker's
        server certificate. Refuses to replace an existing CA: every issued certificate
        would stop working."""
        if self.exists():
            raise PkiError(f"a site CA already exists in {self.root}; refusing to replace it")
        now = now or utc_now()
        self.root.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} CA"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_private(self.ca_key, _key_pem(key))
        self.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if not self.hub_signing_key.exists():
            signing = SigningKey.generate()
            signing.save(self.hub_signing_key)
            signing.public.save(self.hub_signing_pub)
        self.issue_broker(broker_hosts, now=now)
        self.issue_hub(hub_name, now=now)

    def issue_broker(
        self, hosts: tuple[str, ...], now: datetime | None = None
    ) -> IssuedCertificate:
        """The broker's server certificate, valid for ``hosts`` (names or IP addresses)."""
        if not hosts:
            raise PkiError("the broker certificate needs at least one host name or address")
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        return self._issue(
            hosts[0],
            self.broker_cert,
            self.broker_key,
            ExtendedKeyUsageOID.SERVER_AUTH,
            san=names,
            now=now,
        )

    def issue_hub(self, name: str = DEFAULT_HUB, now: datetime | None = None) -> IssuedCertificate:
        """A hub worker's client certificate (CN = ``name``; each worker needs its own: the
        broker makes the CN the client id, so two workers with one certificate would keep
        disconnecting each other)."""
        if "/" in name or "+" in name or "#" in name or not name:
            raise PkiError(f"hub identity {name!r} may not contain / + or #")
        folder = self.hub_dir(name)
        return self._issue(
            name,
            folder / "client.crt",
            folder / "client.key",
            ExtendedKeyUsageOID.CLIENT_AUTH,
            now=now,
        )

    def issue_sensor(
        self, site: str, sensor_id: str, now: datetime | None = None
    ) -> SensorIdentity:
        """A sensor's client certificate and Ed25519 signing key, replacing earlier ones
        (the registry then stores the new public key, so the old key stops being valid)."""
        folder = self.sensor_dir(site, sensor_id)
        issued = self._issue(
            sensor_common_name(site, sensor_id),
            folder / "client.crt",
            folder / "client.key",
            ExtendedKeyUsageOID.CLIENT_AUTH,
            now=now,
        )
        signing = SigningKey.generate()
        signing_file = folder / "signing.key"
        signing.save(signing_file)
        signing.public.save(folder / "signing.pub")
        shutil.copyfile(self.ca_cert, folder / "ca.crt")
        hub_pub = folder / "hub-signing.pub"
        shutil.copyfile(self.hub_signing_pub, hub_pub)
        return SensorIdentity(
            folder=folder,
            certificate=issued,
            signing_key_file=signing_file,
            public_key=signing.public,
            ca_file=folder / "ca.crt",
            hub_public_key_file=hub_pub,
        )

    # -- internals ------------------------------------------------------------------------
    def _ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if not self.exists():
            raise PkiError(f"no site CA in {self.root}: run `ouie pki init` first")
        cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{self.ca_key} is not the CA's EC key")
        return cert, key

    def _issue(
        self,
        common_name: str,
        cert_file: Path,
        key_file: Path,
        usage: x509.ObjectIdentifier,
        *,
        san: list[x509.GeneralName] | None = None,
        now: datetime | None = None,
    ) -> IssuedCertificate:
        ca_cert, ca_key = self._ca()
        now = now or utc_now()
        key = ec.generate_private_key(ec.SECP256R1())
        not_after = min(now + timedelta(days=LEAF_DAYS), ca_cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        write_private(key_file, _key_pem(key))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return IssuedCertificate(cert_file, key_file, fingerprint(cert), not_after)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def config_signing_key(identity: HubIdentitySettings) -> SigningKey | None:
    """The key the hub signs threshold configs with: ``identity.signing_key``, else the PKI
    folder's ``hub-signing.key`` when there is one; None: configs go unsigned (a node that
    holds the hub's public key then refuses them)."""
    path = identity.signing_key
    if path is None and identity.pki_dir is not None:
        path = SitePki(identity.pki_dir).hub_signing_key
        if not path.exists():
            return None
    if path is None:
        return None
    try:
        return SigningKey.load(path)
    except OSError as exc:  # named but not readable: an error at start, not unsigned configs
        raise PkiError(f"the hub's config-signing key {path} cannot be read: {exc}") from exc
    except SigningKeyError as exc:
        raise PkiError(str(exc)) from exc


__all__ = [
    "DEFAULT_BROKER_HOSTS",
    "DEFAULT_HUB",
    "IssuedCertificate",
    "PkiError",
    "SensorIdentity",
    "SitePki",
    "config_signing_key",
    "fingerprint",
    "sensor_common_name",
]
