"""A server-held secret for the key-store tests (like the audit chain key; the name is the tests' own)."""

from authserver.crypto import secret


def held_secret() -> bytes:
    return secret("held-example", legacy_file="held-example-key")
