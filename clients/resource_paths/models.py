"""Rotating public paths of a resource server (an AI API): its settings, its path key and the URLs
callers are told (docs/rotating-paths.md).

A resource server that turns rotating paths on is reached at ``<public_url>/<alias>/…``, where
the alias changes every window: ``paths.prefix(path_key, "rs", window)``, or with per-client
aliases ``paths.prefix(path_key, "rs|<client_id>", window)`` so that a leaked URL names the client
it was given to. The resource server re-derives the aliases itself with the key it fetches from
``POST /oauth/path-key`` (the kit, ``rs/``); callers learn the current URL from the discovery
call (``GET /oauth/discovery``). The previous, current and next window's aliases are accepted.

The key is a server-held secret of the resource server: 32 random bytes, kept as base64url text
encrypted at rest (:class:`authserver.crypto.EncryptedTextField`), never logged or shown outside
the authenticated path-key answer. Rotating it changes every alias at once (no overlap: a
rotation is the answer to a leaked key or to URLs that leaked too widely).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from authserver import paths
from authserver.crypto import EncryptedTextField
from clients.url_rules import absolute_url, is_loopback

KEY_BYTES = 32
PUBLIC_URL_MAX_LENGTH = 500
ALIAS_LABEL = "rs"


def mint_path_key() -> str:
    """A fresh path key: 256 bits from the OS CSPRNG, as unpadded base64url (how it is stored and sent)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=").decode("ascii")


def _new_path_key() -> str:
    return mint_path_key()  # looked up at call time: the test suite records every key it mints


def key_bytes(key: str) -> bytes:
    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))


def public_url_refusal(url: str) -> str | None:
    """Why ``url`` can't be a resource server's public base URL, or None.

    https, a host, no credentials, query or fragment (aliases are appended as path segments).
    http only on a loopback host: this server never fetches the URL (it only tells callers), so
    there is no request forgery to fear, and a loopback API is a developer's own machine.
    """
    parts, refusal = absolute_url(url, max_length=PUBLIC_URL_MAX_LENGTH)
    if parts is None:
        return refusal
    if parts.query or "?" in url or "#" in url:
        return "no query or fragment: aliases are appended to the path"
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        return None
    return "public URLs must use https (http only on a loopback host)"


def validate_public_url(value: str) -> None:
    refusal = public_url_refusal(value)
    if refusal:
        raise ValidationError(refusal)


def server_window_seconds() -> int:
    """The server's default window (AUTHSERVER_ENDPOINTS_WINDOW_SECONDS, conf_endpoints)."""
    return int(settings.ENDPOINTS_WINDOW_SECONDS)


class ResourceServerPaths(models.Model):
    """One resource server's rotating-path settings (one-to-one with a resource-server client)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)  # the key's AAD
    client = models.OneToOneField(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE,
                                  related_name="resource_paths")
    rotating_paths = models.BooleanField(
        default=False, help_text="Callers reach this API under a path alias that changes every window.")
    public_url = models.CharField(
        "public URL", max_length=PUBLIC_URL_MAX_LENGTH, blank=True, validators=[validate_public_url],
        help_text="The API's https base URL; the alias is appended as a path segment.")
    per_client_aliases = models.BooleanField(
        default=False, help_text="Each client gets its own alias, so a leaked URL names its client.")
    window_seconds: models.PositiveIntegerField[int | None, int | None] = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Seconds per alias window; empty for the server default (AUTHSERVER_ENDPOINTS_WINDOW_SECONDS).")
    path_key = EncryptedTextField(default=_new_path_key, editable=False)
    key_version = models.PositiveIntegerField(default=1, editable=False)
    key_rotated: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, editable=False)
    updated = models.DateTimeField(auto_now=True)

    objects: ClassVar[models.Manager[ResourceServerPaths]]

    class Meta:
        verbose_name = "rotating paths"
        verbose_name_plural = "rotating paths"

    def __str__(self) -> str:  # never the key
        return f"rotating paths (key version {self.key_version})"

    def clean(self) -> None:
        if self.rotating_paths and not self.public_url:
            raise ValidationError({"public_url": "rotating paths need the API's public URL"})

    @property
    def effective_window_seconds(self) -> int:
        return self.window_seconds or server_window_seconds()

    def alias(self, *, window: int, client_id: str | None) -> str:
        """The alias of ``window`` (for ``client_id`` when per-client aliases are on)."""
        label = f"{ALIAS_LABEL}|{client_id}" if self.per_client_aliases and client_id else ALIAS_LABEL
        return paths.prefix(key_bytes(self.path_key), label, window)

    def url(self, alias: str) -> str:
        return self.public_url.rstrip("/") + "/" + alias + "/"

    def discovery(self, *, audience: str, client_id: str | None) -> dict[str, Any]:
        """What a caller of ``audience`` is told: the current and next window's URLs, each with the
        last moment it is accepted (the end of the window after its own: the next window still
        accepts its previous window's alias)."""
        seconds = self.effective_window_seconds
        current = paths.current_window(seconds)
        return {
            "audience": audience,
            "url": self.url(self.alias(window=current, client_id=client_id)),
            "valid_until": paths.window_bounds(current + 1, seconds)[1],
            "next_url": self.url(self.alias(window=current + 1, client_id=client_id)),
            "next_valid_until": paths.window_bounds(current + 2, seconds)[1],
            "window_seconds": seconds,
        }
