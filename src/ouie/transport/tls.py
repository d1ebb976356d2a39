"""TLS parameters of an ``mqtts://`` connection, for the node's publisher and the hub's ingest.

The broker's certificate is checked against the site CA when one is configured (its host
name included), else against the system's CAs; the client certificate, when configured,
is what the broker authenticates the client by (``ouie.hub.broker``: its common name is
the MQTT user name the ACL applies to).
"""

from __future__ import annotations

import aiomqtt

from ouie.config.security import TlsSettings


def tls_parameters(tls: TlsSettings | None) -> aiomqtt.TLSParameters:
    if tls is None:
        return aiomqtt.TLSParameters()
    return aiomqtt.TLSParameters(
        ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file)
    )


def check_tls_url(tls: TlsSettings | None, uses_tls: bool, where: str) -> None:
    """Refuse, at start rather than on every reconnect: a client certificate configured for
    a plain ``mqtt://`` URL (everything would go in clear text while the operator believes
    otherwise), or certificate files that are not there."""
    if tls is None:
        return
    if not uses_tls:
        raise ValueError(f"{where}: a TLS client certificate is set but the URL is not mqtts://")
    for path in (tls.ca_file, tls.cert_file, tls.key_file):
        if not path.is_file():
            raise ValueError(f"{where}: TLS file {path} not found (ouie sensor add, ouie pki init)")


__all__ = ["check_tls_url", "tls_parameters"]
