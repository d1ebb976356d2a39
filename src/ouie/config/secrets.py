"""What config holds instead of a secret, and where the key that opens it comes from.

Secrets (camera passwords, webhook signing secrets) appear in config only as Fernet tokens;
``ouie.verify.credentials`` encrypts and decrypts them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints

from ouie.config.base import Section

#: A Fernet token: version byte 0x80, base64url. What config holds instead of a secret.
EncryptedSecret = Annotated[
    str, StringConstraints(pattern=r"^gAAAAA[A-Za-z0-9_\-]+=*$", max_length=4096)
]


class SecretSettings(Section):
    key_file: Path | None = Field(
        default=None, description="Fernet key file (mode 600); OUIE_SECRET_KEY wins"
    )
