"""Client authentication pieces shared by the token endpoint (DOT validator) and introspection."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from urllib.parse import unquote_plus

from django.utils import timezone

from authserver.hashers import CredentialHasher

_hasher = CredentialHasher()
MAX_BASIC_LENGTH = 512


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from an ``Authorization: Basic`` value (RFC 6749 §2.3.1:
    form-urlencoded, then base64), or None if it isn't a well-formed Basic credential."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > MAX_BASIC_LENGTH:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):  # ValueError: a non-ASCII character (WSGI: latin-1)
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def retired_secret_expiry(client_pk: int, secret: str) -> datetime | None:
    """When a rotated-out ``secret`` of the client stops authenticating, or None if it doesn't."""
    from clients.models import RetiredClientSecret

    return (
        RetiredClientSecret.objects.filter(
            client_id=client_pk, secret=_hasher.encode(secret, ""), expires__gt=timezone.now()
        )
        .values_list("expires", flat=True)
        .first()
    )
