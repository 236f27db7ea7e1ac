"""Standard Webhooks secrets and signatures, made with the ``standardwebhooks`` library itself.

Secret format (spec, "Signing secrets"): ``whsec_`` + base64 of 24 to 64 random bytes; we use 32.
Signature (spec, "Signature scheme"): ``v1,`` + base64 HMAC-SHA256 over ``<msg_id>.<timestamp>.<body>``;
several signatures are separated by a space (rotation).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32


def mint_secret() -> str:
    """A fresh ``whsec_`` secret: 256 bits from the OS CSPRNG."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_hint(value: str) -> str:
    return f"{PREFIX}…{value.rstrip('=')[-4:]}"  # the last four characters before base64's padding


def signature_header(*, msg_id: str, timestamp: int, body: bytes, keys: Sequence[str]) -> str:
    """``webhook-signature``: one ``v1,<sig>`` per secret, newest first, space-separated."""
    when = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(Webhook(key).sign(msg_id, when, body.decode()) for key in keys)
