"""Dynamic client registration (RFC 7591/7592, docs/dynamic-registration.md): the policy, how long an
unused registration lives, and what a self-registered client (dcr or cimd) may be given.

A section of :class:`authserver.conf.AuthServerConfig`, kept here so authserver/conf.py stays short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from authserver.conf_parsers import _int, _one_of, var

# RFC 6749 §3.3 scope-token, as clients.models.SCOPE_NAME_RE (the platform layer can't import it).
_SCOPE_RE = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]{1,64}")


def _words(name: str, raw: str) -> tuple[str, ...]:
    """Space- or comma-separated, duplicates dropped, order kept."""
    return tuple(dict.fromkeys(word for word in re.split(r"[\s,]+", raw) if word))


def _scopes(name: str, raw: str) -> tuple[str, ...]:
    words = _words(name, raw)
    bad = [word for word in words if not _SCOPE_RE.fullmatch(word)]
    if bad:
        raise ImproperlyConfigured(f"{name}: not scope names: {', '.join(bad[:3])}")
    return words


def _audiences(name: str, raw: str) -> tuple[str, ...]:
    words = _words(name, raw)
    bad = [word for word in words if not re.fullmatch(r"https?://[^\s#@]+", word)]
    if bad:
        raise ImproperlyConfigured(f"{name}: not absolute http(s) URIs without fragment: {', '.join(bad[:3])}")
    return words


@dataclass(frozen=True, kw_only=True)
class RegistrationConfig:
    """``off``: no dynamic registration (the endpoint is the uniform 404). ``open``: anyone may register
    a public client within the policy. ``token``: only with an initial access token (RFC 7591 §3)."""

    mode: str = var("AUTHSERVER_DCR", "off", _one_of("off", "open", "token"), flat="DCR")
    unused_seconds: int = var("AUTHSERVER_DCR_UNUSED_SECONDS", 86400, _int(60), flat="DCR_UNUSED_SECONDS")
    scopes: tuple[str, ...] = var("AUTHSERVER_REGISTRABLE_SCOPES", (), _scopes, flat="REGISTRABLE_SCOPES")
    audiences: tuple[str, ...] = var("AUTHSERVER_REGISTRABLE_AUDIENCES", (), _audiences, flat="REGISTRABLE_AUDIENCES")

    def as_tuple(self) -> tuple[str, int, list[str], list[str]]:
        """The settings, in the order authserver/settings.py names them (lists, as flat_settings gives them)."""
        return self.mode, self.unused_seconds, list(self.scopes), list(self.audiences)
