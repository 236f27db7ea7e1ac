"""Admin forms for API keys.

Issuing goes through :func:`keys.services.api_key_create` (server-generated key, stored as a digest),
so :class:`ApiKeyCreationForm` is a plain form that only collects and shapes input. The policy
checks themselves live in :mod:`keys.policy`; the form runs the ones that need no client (CIDRs,
rate limit, lifetime) per field so their errors land next to the input, and maps the service's
:class:`~keys.policy.KeyPolicyError` (scopes and audiences the client doesn't allow, ...) back onto
the field it is about.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from authserver.cli import parse_duration
from clients.forms import CHECKBOXES, LinesField
from clients.models import Client, Scope
from keys import policy
from keys.models import ApiKey, ApiKeyStatus


def format_duration(seconds: int) -> str:
    """The inverse of :func:`authserver.cli.parse_duration`, preferring hours over days (24h, 90d)."""
    if seconds and seconds % 86400 == 0 and seconds // 86400 > 1:
        return f"{seconds // 86400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _duration(value: str) -> timedelta:
    text = value.strip()
    if text == "0":
        return timedelta(0)
    try:
        return parse_duration(text)
    except CommandError as exc:
        raise ValidationError(str(exc)) from None


class ClientChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Client) -> str:
        return f"{obj.name} ({obj.client_id})" if obj.name else obj.client_id


class ApiKeyCreationForm(forms.Form):
    """Collects what ``api_key_create`` needs; ``create()`` calls it and maps its errors back."""

    client = ClientChoiceField(
        queryset=Client.objects.order_by("name", "client_id"),
        help_text="The client that owns the key. The key can never have more than this client is allowed.",
    )
    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text="What the key is for, e.g. “billing-service production”.",
    )
    scopes = forms.ModelMultipleChoiceField(
        queryset=Scope.objects.order_by("name"),
        required=False,
        widget=CHECKBOXES,
        help_text="Must be among the client's allowed scopes. None ticked: every scope the client is allowed.",
    )
    audiences = LinesField(
        label="Audiences",
        help_text="Resource servers (audience URIs) that may accept the key, one per line; each must be among "
        "the client's allowed audiences. Empty: every audience the client is allowed.",
    )
    allowed_ips = LinesField(
        label="Allowed IPs",
        help_text="IPv4/IPv6 networks in CIDR notation (203.0.113.0/24, 2001:db8::/32, 198.51.100.7/32), one "
        "per line. Empty: any address.",
    )
    expires_in = forms.CharField(
        label="Expires in",
        required=False,
        max_length=12,
        widget=forms.TextInput(attrs={"size": 8, "spellcheck": "false"}),
        help_text="",  # set in __init__ (depends on settings)
    )
    rate_limit = forms.CharField(
        label="Rate limit",
        required=False,
        max_length=24,
        widget=forms.TextInput(attrs={"size": 12, "spellcheck": "false"}),
        # Empty stores no limit of the key's own; a limit learned by anomaly detection (or its action)
        # can still apply (keys.verification._with_effective_limit).
        help_text="N/PERIOD, e.g. 100/m (also 10/s, 5000/h, 100000/d, 100/30s). Empty = no limit of the key's "
        "own (a limit learned from its traffic may still apply).",
    )
    quota = forms.IntegerField(
        required=False,
        min_value=1,
        widget=forms.NumberInput(attrs={"style": "width: 10em"}),
        help_text="Total number of requests the key may ever make. Empty: unlimited.",
    )

    # Where a KeyPolicyError from the service lands, by the start of its message.
    ERROR_PREFIXES = (
        ("name", "name"),
        ("scope", "scopes"),
        ("audience", "audiences"),
        ("invalid CIDR", "allowed_ips"),
        ("expiry", "expires_in"),
        ("rate limit", "rate_limit"),
        ("invalid rate limit", "rate_limit"),
        ("quota", "quota"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        default = format_duration(settings.API_KEY_DEFAULT_LIFETIME_SECONDS)
        maximum = format_duration(settings.API_KEY_MAX_LIFETIME_SECONDS)
        self.fields["expires_in"].help_text = (
            f"A number followed by s, m, h or d, e.g. 30d or 12h. Empty = the server default, {default} "
            f"(AUTHSERVER_API_KEY_DEFAULT_LIFETIME_SECONDS). At most {maximum}."
        )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        return name.strip()

    def clean(self) -> dict[str, Any]:
        # A second key of the same name for the same client is almost always this form sent twice
        # (Back on the page that showed the key, then Issue: Chromium fetches the form again with a
        # fresh one-time token and restores what was typed). Say so, and link to the key.
        from django.urls import reverse
        from django.utils.html import format_html

        data = super().clean() or {}
        client, name = data.get("client"), data.get("name")
        if client is not None and name:
            existing = (ApiKey.objects.filter(client=client, name=name).exclude(status=ApiKeyStatus.REVOKED)
                        .order_by("-created").first())
            if existing is not None:
                url = reverse("admin:keys_apikey_change", args=[existing.pk])
                self.add_error("name", ValidationError(format_html(
                    '{} already has a key named “{}”: <a href="{}" class="as-existing">{}</a>. If this form was '
                    "sent twice (Back, then Issue), that key is the one issued, shown then. Choose another name "
                    "for a new key.", client.name or client.client_id, name, url, existing), code="name_taken"))
        if client is not None:  # the client-dependent rules in the same round as the field errors
            self._check_for_client(client, data)
        return data

    def _check_for_client(self, client: Any, data: dict[str, Any]) -> None:
        checks = (("scopes", policy.check_scopes, [scope.name for scope in data.get("scopes") or []]),
                  ("audiences", policy.check_audiences, list(data.get("audiences") or [])))
        for field, check, requested in checks:
            if field in data:
                try:
                    check(client, requested or None)
                except policy.KeyPolicyError as exc:
                    self.add_error(field, str(exc))

    def clean_allowed_ips(self) -> list[str]:
        try:
            return policy.parse_networks(self.cleaned_data["allowed_ips"])
        except policy.KeyPolicyError as exc:
            raise ValidationError(str(exc)) from None

    def clean_expires_in(self) -> timedelta | None:
        text = self.cleaned_data["expires_in"].strip()
        if not text:
            return None
        lifetime = _duration(text)
        try:
            return policy.check_lifetime(lifetime)
        except policy.KeyPolicyError as exc:
            raise ValidationError(str(exc)) from None

    def clean_rate_limit(self) -> tuple[int, int] | None:
        text = self.cleaned_data["rate_limit"].strip()
        if not text:
            return None
        try:
            parsed = policy.parse_rate_limit(text)
            policy.check_rate_limit(parsed)
        except policy.KeyPolicyError as exc:
            raise ValidationError(str(exc)) from None
        return parsed

    def create(self, *, actor: Any = None) -> tuple[ApiKey, str] | None:
        """Issue the key; on a policy error add it to the form and return None."""
        from keys.services import api_key_create

        data = self.cleaned_data
        scopes = [scope.name for scope in data["scopes"]] or None
        try:
            return api_key_create(
                client=data["client"],
                name=data["name"],
                scopes=scopes,
                audiences=data["audiences"] or None,
                allowed_ips=data["allowed_ips"],
                expires_in=data["expires_in"],
                rate_limit=data["rate_limit"],
                quota=data["quota"],
                actor=actor,
            )
        except policy.KeyPolicyError as exc:
            self.add_error(self._field_for(str(exc)), str(exc))
        return None

    def _field_for(self, message: str) -> str | None:
        for prefix, field in self.ERROR_PREFIXES:
            if message.startswith(prefix):
                return field
        return None


class RotateKeyForm(forms.Form):
    grace = forms.CharField(
        label="Grace period",
        max_length=12,
        widget=forms.TextInput(attrs={"size": 8, "spellcheck": "false"}),
        help_text="How long this key keeps working next to its successor, so deployed services can switch "
        "over: a number followed by s, m, h or d (e.g. 24h, 7d). 0 revokes it immediately. At most 30d; "
        "never beyond the key's own expiry.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["grace"].initial = format_duration(settings.API_KEY_GRACE_SECONDS)

    def clean_grace(self) -> timedelta:
        grace = _duration(self.cleaned_data["grace"])
        if grace > timedelta(days=30):
            raise ValidationError("the grace period is at most 30 days (30d)")
        return grace
