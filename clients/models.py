"""Clients (DOT's Application model, swapped in from the first migration), scopes and secrets."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from oauth2_provider.models import AbstractApplication

from clients.redirects import redirect_uri_matches, validate_redirect_uris
from clients.url_rules import absolute_url, is_loopback

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); we also cap the length.
SCOPE_NAME_RE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,64}$")

# The grant types a client may be given (RFC names), mapped to DOT's application constants.
GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 §3.4
GRANT_TYPES = {
    GRANT_AUTHORIZATION_CODE: AbstractApplication.GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS: AbstractApplication.GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE: AbstractApplication.GRANT_DEVICE_CODE,
}
# Short forms the CLI and API accept for the RFC names above.
GRANT_ALIASES = {"device_code": GRANT_DEVICE_CODE}
# DOT's single-grant column for a resource server registered without any grant: it only
# introspects, so it never needs (and must never get) a token of its own.
GRANT_NONE = "none"


def validate_scope_name(value: str) -> None:
    if not SCOPE_NAME_RE.match(value):
        raise ValidationError("scope names are 1-64 printable ASCII characters without spaces, quotes or \\")


def validate_audience(value: str) -> None:
    """Audiences are RFC 8707 resource indicators: absolute https URIs without a fragment."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValidationError("audience must be an absolute URI") from exc
    if parts.scheme not in {"https", "http"} or not parts.hostname or parts.fragment or "@" in parts.netloc:
        raise ValidationError("audience must be an absolute http(s) URI with a host and no fragment")
    if len(value) > 255 or any(ch.isspace() for ch in value):
        raise ValidationError("audience must be at most 255 characters without spaces")


WEBHOOK_URL_MAX_LENGTH = 500


def webhook_url_refusal(url: str) -> str | None:
    """Why ``url`` may not receive webhooks, or None: the one rule for forms, CLI and delivery.

    https only; http only on a loopback host and only with the development override
    (AUTHSERVER_WEBHOOK_ALLOW_HTTP_LOOPBACK, refused in production). No userinfo, no fragment.
    """
    parts, refusal = absolute_url(url, max_length=WEBHOOK_URL_MAX_LENGTH)
    if parts is None:
        return refusal
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback(parts.hostname or "") and settings.WEBHOOK_ALLOW_HTTP_LOOPBACK:
        return None
    return "webhook URLs must use https"


def validate_webhook_url(value: str) -> None:
    refusal = webhook_url_refusal(value)
    if refusal:
        raise ValidationError(refusal)


class Scope(models.Model):
    name = models.CharField(max_length=64, unique=True, validators=[validate_scope_name])
    description = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _validate_list_of_audiences(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("audiences must be a list of URIs")
    for item in value:
        validate_audience(item)


class Client(AbstractApplication):
    """An OAuth client; with ``is_resource_server`` it is also an AI API that may introspect."""

    # Declared by DOT's untyped AbstractApplication; annotated so mypy knows what they hold.
    redirect_uris: str
    objects: ClassVar[models.Manager[Client]]

    grant_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Grant types this client may use: authorization_code, client_credentials, "
        "urn:ietf:params:oauth:grant-type:device_code (RFC 8628). Refresh tokens come with authorization_code "
        "and the device grant. None: a resource server that only introspects.",
    )
    # DOT's own column, widened by GRANT_NONE; kept in step with grant_types by clean().
    authorization_grant_type: models.CharField[str, str] = models.CharField(
        "authorization grant type", max_length=44,
        choices=[*AbstractApplication.GRANT_TYPES, (GRANT_NONE, "None (resource server only)")],
    )
    allowed_scopes: models.ManyToManyField[Scope, Any] = models.ManyToManyField(
        Scope, blank=True, related_name="clients"
    )
    allowed_audiences = models.JSONField(
        default=list,
        blank=True,
        validators=[_validate_list_of_audiences],
        help_text="Resource servers (audience URIs) this client may obtain tokens for (RFC 8707).",
    )
    access_token_lifetime: models.PositiveIntegerField[int | None, int | None] = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(30)],
        help_text="Seconds; empty for the server default. Capped by the server maximum.",
    )
    refresh_token_lifetime: models.PositiveIntegerField[int | None, int | None] = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(300)],
        help_text="Absolute lifetime of a refresh-token family in seconds; empty for the server default.",
    )
    is_resource_server: models.BooleanField[bool, bool] = models.BooleanField(
        default=False, help_text="May call introspection for tokens whose audience includes its own."
    )
    audience: models.CharField[str | None, str | None] = models.CharField(
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        validators=[validate_audience],
        help_text="This resource server's audience identifier (an absolute URI).",
    )
    remember_consent: models.BooleanField[bool, bool] = models.BooleanField(
        default=False,
        help_text="Skip the consent page when the user already has a live token with the same scopes.",
    )
    client_secret_hint: models.CharField[str, str] = models.CharField(max_length=16, blank=True, editable=False)
    client_secret_rotated: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, editable=False
    )
    # Compromise response: every key and token created up to this instant is revoked, effective
    # immediately; a job then revokes them one by one (keys.services.compromise_response_start).
    credentials_revoked_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, editable=False
    )
    webhook_url: models.CharField[str, str] = models.CharField(
        "webhook URL", max_length=WEBHOOK_URL_MAX_LENGTH, blank=True, validators=[validate_webhook_url],
        help_text="HTTPS endpoint that receives signed notifications (Standard Webhooks: key expiry "
        "warnings, anomaly alerts). Setting it the first time creates the signing secret, shown once.",
    )
    contact_email: models.EmailField[str, str] = models.EmailField(
        "contact e-mail", blank=True, help_text="Where expiry warnings and anomaly alerts are e-mailed."
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_resource_server=False) | models.Q(audience__isnull=False),
                name="resource_server_has_audience",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name or 'client'} ({self.client_id})"

    def natural_key(self) -> tuple[str]:
        return (self.client_id,)

    @property
    def may_obtain_tokens(self) -> bool:
        """False for a resource server registered without a grant: it only introspects."""
        return bool(self.grant_types)

    # -- DOT seams ---------------------------------------------------------------------------------
    def allows_grant_type(self, *grant_types: str) -> bool:
        # A client without grants (a resource server that only introspects) is allowed none:
        # every grant type, refresh and token exchange included, is refused (RFC 6749 §5.2,
        # unauthorized_client).
        if not self.may_obtain_tokens:
            return False
        allowed = {GRANT_TYPES[g] for g in self.grant_types if g in GRANT_TYPES}
        return bool(allowed.intersection(grant_types))

    def redirect_uri_allowed(self, uri: str) -> bool:
        # RFC 9700 §2.1: exact string matching (DOT's component comparison is case-insensitive
        # in the host and ignores embedded CR/LF/tab); DOT's own checks still apply on top.
        return redirect_uri_matches(uri, self.redirect_uris.split()) and super().redirect_uri_allowed(uri)

    def get_allowed_schemes(self) -> list[str]:
        # Loopback http redirects are for native apps only (RFC 8252 §7.3); clean() enforces the
        # loopback host, this lets DOT's own validators accept the scheme for public clients.
        return ["https", "http"] if self.client_type == self.CLIENT_PUBLIC else ["https"]

    def clean(self) -> None:
        errors: dict[str, list[ValidationError]] = {}
        public = self.client_type == self.CLIENT_PUBLIC
        try:
            self.redirect_uris = " ".join(
                validate_redirect_uris(self.redirect_uris.split(), public_client=public)
            )
        except ValidationError as exc:
            errors["redirect_uris"] = exc.error_list
        unknown = [g for g in self.grant_types if g not in GRANT_TYPES]
        if unknown:
            errors["grant_types"] = [ValidationError(f"unsupported grant type(s): {', '.join(unknown)}")]
        if self.grant_types and self.authorization_grant_type != GRANT_TYPES.get(self.grant_types[0]):
            self.authorization_grant_type = GRANT_TYPES.get(self.grant_types[0], self.authorization_grant_type)
        if not self.grant_types:
            self.authorization_grant_type = GRANT_NONE
            if not self.is_resource_server:
                errors["grant_types"] = [ValidationError(
                    "choose at least one grant type; only a resource server may have none")]
        if public and GRANT_CLIENT_CREDENTIALS in self.grant_types:
            errors["grant_types"] = [ValidationError("public clients cannot use client_credentials")]
        if GRANT_AUTHORIZATION_CODE in self.grant_types and not self.redirect_uris.strip():
            errors.setdefault("redirect_uris", []).append(
                ValidationError("authorization_code clients need at least one redirect URI")
            )
        if self.is_resource_server and not self.audience:
            errors["audience"] = [ValidationError("a resource server needs an audience identifier")]
        if self.is_resource_server and public:
            errors["is_resource_server"] = [ValidationError("a resource server must be confidential")]
        max_access = settings.ACCESS_TOKEN_MAX_SECONDS
        if self.access_token_lifetime and self.access_token_lifetime > max_access:
            errors["access_token_lifetime"] = [ValidationError(f"at most {max_access} seconds")]
        max_refresh = settings.REFRESH_TOKEN_MAX_SECONDS
        if self.refresh_token_lifetime and self.refresh_token_lifetime > max_refresh:
            errors["refresh_token_lifetime"] = [ValidationError(f"at most {max_refresh} seconds")]
        if errors:
            raise ValidationError(errors)

    def effective_access_token_lifetime(self) -> int:
        return min(
            self.access_token_lifetime or settings.ACCESS_TOKEN_DEFAULT_SECONDS,
            settings.ACCESS_TOKEN_MAX_SECONDS,
        )

    def effective_refresh_token_lifetime(self) -> int:
        return min(
            self.refresh_token_lifetime or settings.REFRESH_TOKEN_DEFAULT_SECONDS,
            settings.REFRESH_TOKEN_MAX_SECONDS,
        )


class RetiredClientSecret(models.Model):
    """A rotated-out client secret that still authenticates until ``expires`` (the grace window).

    Only the hasher-encoded digest is kept, like the current secret. The expiry job deletes rows
    past their grace; authentication also checks ``expires`` itself, so a late job never extends
    a grace window.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="retired_secrets")
    secret = models.CharField(max_length=255, unique=True)
    hint = models.CharField(max_length=16, blank=True)
    retired = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["client", "expires"])]

    def __str__(self) -> str:
        return f"retired secret {self.hint} of {self.client_id}"



from clients.resource_paths.models import ResourceServerPaths  # noqa: E402,F401 - registered with the app here
