"""What a self-registered client (RFC 7591 dynamic registration, or a Client ID Metadata Document) may
be given: the registrable scopes and audiences (issue 16 contract; owned by the dcr part, defined
here identically until it lands: the lead keeps one copy).

A section of :class:`authserver.conf.AuthServerConfig`, kept here so authserver/conf.py stays short.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver.conf_parsers import var


def _words(name: str, raw: str) -> tuple[str, ...]:
    """Space- or comma-separated, order kept, duplicates dropped."""
    return tuple(dict.fromkeys(item for item in raw.replace(",", " ").split() if item))


@dataclass(frozen=True, kw_only=True)
class RegistrableConfig:
    scopes: tuple[str, ...] = var("AUTHSERVER_REGISTRABLE_SCOPES", (), _words, flat="REGISTRABLE_SCOPES")
    audiences: tuple[str, ...] = var("AUTHSERVER_REGISTRABLE_AUDIENCES", (), _words, flat="REGISTRABLE_AUDIENCES")
