"""Settings of sensor identity and message authenticity, shared by the node and the hub.

A site has one certificate authority (``ouie pki init``). Each sensor gets an X.509 client
certificate from it for the broker (mutual TLS; the broker takes the certificate's common
name as the MQTT user name and applies its ACL to it) and an Ed25519 key that signs its
events and status; the hub gets a client certificate and an Ed25519 key that signs the
threshold configs it pushes. ``ouie sensor add`` writes a sensor's files; docs/security.md
gives the threat model.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ouie.config.base import Section


class TlsSettings(Section):
    """Mutual TLS to the MQTT broker (an ``mqtts://`` URL)."""

    ca_file: Path = Field(description="the site CA certificate (PEM) the broker's must chain to")
    cert_file: Path = Field(description="this process's client certificate (PEM)")
    key_file: Path = Field(description="its private key (PEM, readable by this service only)")


class NodeIdentitySettings(Section):
    """The keys of a sensor (``ouie sensor add`` writes them)."""

    signing_key: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs every event and status; "
        "None: messages go unsigned (development only: a hub requiring signatures drops them)",
    )
    hub_public_key: Path | None = Field(
        default=None,
        description="the hub's Ed25519 public key (PEM); when set, a threshold config that "
        "it did not sign is refused and counted (status rejected_configs)",
    )


class HubIdentitySettings(Section):
    """The hub's own identity and the site's certificate authority."""

    pki_dir: Path | None = Field(
        default=None,
        description="folder of the site CA and issued identities (`ouie pki init`); "
        "`ouie sensor add` issues each sensor's certificate and signing key into it",
    )
    signing_key: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs threshold configs; "
        "default: hub-signing.key in pki_dir when that exists",
    )


__all__ = ["HubIdentitySettings", "NodeIdentitySettings", "TlsSettings"]
