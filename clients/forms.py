"""Admin forms for clients.

Creation goes through :func:`clients.services.client_register` (server-generated, hashed secret),
so :class:`ClientCreationForm` is a plain form that only collects and shapes input; the model's
``clean()`` (called by the service via ``full_clean``) remains the single source of truth for the
redirect-URI and grant-type policy, and its errors are mapped back onto these fields.

:class:`ClientChangeForm` is a ModelForm over the safe, editable fields only: the secret (and its
hashing flag) is never a form field, so it can neither be shown nor overwritten here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

from clients.models import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE,
    WEBHOOK_URL_MAX_LENGTH,
    Client,
    Scope,
    validate_audience,
    validate_webhook_url,
)
from clients.selectors import audiences_unregistered, resource_server_audiences

GRANT_TYPE_CHOICES = [
    (GRANT_AUTHORIZATION_CODE, "authorization_code (users sign in; PKCE; refresh tokens)"),
    (GRANT_CLIENT_CREDENTIALS, "client_credentials (machine to machine; confidential clients only)"),
    (GRANT_DEVICE_CODE, "device_code (RFC 8628: devices and command-line tools; the user approves on another "
                        "screen; refresh tokens)"),
]
CLIENT_TYPE_CHOICES = [
    (Client.CLIENT_CONFIDENTIAL, "Confidential (a server that can keep a secret)"),
    (Client.CLIENT_PUBLIC, "Public (browser or native app; no secret)"),
]


# "radiolist" gets the admin's styling for choice lists (labels as wide as their text).
CHECKBOXES = forms.CheckboxSelectMultiple(attrs={"class": "radiolist"})


class LinesField(forms.CharField):
    """A textarea holding one value per line; cleans to a list of non-empty, stripped lines.

    ``joiner`` turns the list back into the stored string (``" "`` for DOT's ``redirect_uris``);
    without it the field cleans to (and displays) a Python list, as stored in a JSONField.
    """

    widget = forms.Textarea(attrs={"rows": 3, "cols": 80, "spellcheck": "false", "autocapitalize": "none"})

    def __init__(self, *args: Any, joiner: str | None = None, **kwargs: Any) -> None:
        self.joiner = joiner
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(*args, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        if self.joiner is not None and isinstance(value, str) and "\n" not in value:
            return "\n".join(value.split())
        return value

    def lines(self, value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            return [str(item) for item in value]
        text = "" if value in self.empty_values else str(value)
        return [line.strip() for line in text.splitlines() if line.strip()]

    def to_python(self, value: Any) -> Any:
        items = self.lines(value)
        for item in items:
            if any(ch.isspace() for ch in item):
                raise ValidationError("one value per line, without spaces: %(value)s", params={"value": item})
        items = list(dict.fromkeys(items))
        return self.joiner.join(items) if self.joiner is not None else items

    def validate(self, value: Any) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.lines(self.prepare_value(initial)) != self.lines(self.prepare_value(data))


def _validate_audiences(values: list[str]) -> None:
    errors: list[ValidationError] = []
    for value in values:
        try:
            validate_audience(value)
        except ValidationError as exc:
            errors.extend(ValidationError(f"{value}: {message}") for message in exc.messages)
    if errors:
        raise ValidationError(errors)


def name_untaken(name: str, *, exclude_pk: Any = None) -> str:
    """``name``, or a clear error linking to the client that already has it.

    Names identify clients to people (lists, delete confirmations, audit trail), so the admin keeps
    them unique; it is also what stops Back-then-Save on the page that showed a new client's secret
    (Chromium fetches the form again, with a fresh one-time token, and restores what was typed)
    from creating a second client.
    """
    from django.urls import reverse
    from django.utils.html import format_html

    existing = Client.objects.filter(name=name).exclude(pk=exclude_pk).first()
    if existing is None:
        return name
    url = reverse("admin:clients_client_change", args=[existing.pk])
    raise ValidationError(format_html(
        'A client named “{}” already exists: <a href="{}" class="as-existing">{}</a>. If this form was sent '
        "twice (Back, then Save), that client is the one created, and its secret was shown then. Choose "
        "another name for a new client.", name, url, existing), code="name_taken")


def _lifetime_field(**kwargs: Any) -> forms.IntegerField:
    return forms.IntegerField(
        required=False,
        min_value=30,
        max_value=settings.ACCESS_TOKEN_MAX_SECONDS,
        help_text=f"Seconds. Empty for the server default ({settings.ACCESS_TOKEN_DEFAULT_SECONDS}s); "
        f"at most {settings.ACCESS_TOKEN_MAX_SECONDS}s.",
        **kwargs,
    )


REDIRECT_HELP = (
    "One per line, matched exactly. https only; http only on 127.0.0.1 or [::1] for public (native) "
    "clients. No fragments, wildcards or userinfo."
)
AUDIENCE_HELP = "The registered resource servers this client may get tokens for (RFC 8707 audiences)."
OTHER_AUDIENCE_HELP = (
    "Audience URIs that name no resource server registered here, one per line: accepted only with the "
    "box below ticked (a typo such as https://api.exmaple.test is refused otherwise)."
)
GRANT_HELP = "None ticked: a resource server that only introspects tokens (it can never obtain one)."


def _audience_choices() -> list[tuple[str, str]]:
    return [(audience, f"{name} — {audience}" if name else audience) for audience, name in resource_server_audiences()]


class AudienceChoiceField(forms.MultipleChoiceField):
    """Checkboxes of the registered resource servers ("name — URI"); blank values are ignored."""

    def to_python(self, value: Any) -> list[str]:
        return [item for item in super().to_python(value) if item]


class AudienceFields(forms.Form):
    """Audiences chosen from the registered resource servers, plus others only with an explicit override.

    ``clean_audiences()`` merges both into ``cleaned_data["allowed_audiences"]`` (what the service and
    the model store) and refuses unregistered ones unless ``allow_unregistered_audience`` is ticked.
    """

    allowed_audiences = AudienceChoiceField(
        label="Allowed audiences", choices=_audience_choices, required=False, widget=CHECKBOXES,
        help_text=AUDIENCE_HELP)
    other_audiences = LinesField(label="Other audiences (not registered)", help_text=OTHER_AUDIENCE_HELP,
                                 validators=[_validate_audiences])
    allow_unregistered_audience = forms.BooleanField(
        label="Allow audiences that name no registered resource server", required=False,
        help_text="Only for an API that is not registered here as a resource server (it cannot introspect).")

    def split_audiences(self, audiences: list[str]) -> None:
        """Initial values for a stored list: registered ones ticked, the rest in the free-text field."""
        registered = {audience for audience, _ in resource_server_audiences()}
        others = [a for a in audiences if a not in registered]
        self.initial.update({"allowed_audiences": [a for a in audiences if a in registered],
                             "other_audiences": others, "allow_unregistered_audience": bool(others)})

    def clean_audiences(self) -> None:
        chosen = list(self.cleaned_data.get("allowed_audiences") or [])
        others = list(self.cleaned_data.get("other_audiences") or [])
        unregistered = audiences_unregistered(audiences=others)
        if unregistered and not self.cleaned_data.get("allow_unregistered_audience"):
            self.add_error("other_audiences", ValidationError(
                "%(audiences)s names no registered resource server. Check for a typo (registered ones are "
                "listed above), or tick “Allow audiences that name no registered resource server”.",
                code="unregistered_audience", params={"audiences": ", ".join(unregistered)}))
        self.cleaned_data["allowed_audiences"] = list(dict.fromkeys(chosen + others))
RS_AUDIENCE_HELP = (
    "Only for a resource server (an API that introspects tokens): its own audience URI, e.g. "
    "https://api.example.com. Leave empty for an ordinary client."
)


class ClientCreationForm(AudienceFields):
    """Collects what ``client_register`` needs; ``register()`` calls it and maps its errors back."""

    name = forms.CharField(max_length=255)
    client_type = forms.ChoiceField(
        choices=CLIENT_TYPE_CHOICES,
        initial=Client.CLIENT_CONFIDENTIAL,
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
    )
    grant_types = forms.MultipleChoiceField(choices=GRANT_TYPE_CHOICES, widget=CHECKBOXES, required=False,
                                            help_text=GRANT_HELP)
    redirect_uris = LinesField(label="Redirect URIs", help_text=REDIRECT_HELP)
    allowed_scopes = forms.ModelMultipleChoiceField(
        queryset=Scope.objects.all(),
        required=False,
        widget=CHECKBOXES,
        help_text="Scopes this client may request.",
    )
    resource_server_audience = forms.CharField(
        label="Resource server audience",
        required=False,
        max_length=255,
        validators=[validate_audience],
        help_text=RS_AUDIENCE_HELP,
    )
    access_token_lifetime = _lifetime_field(label="Access token lifetime")
    remember_consent = forms.BooleanField(
        required=False,
        help_text="Skip the consent page when the user already has a live token with the same scopes.",
    )
    webhook_url = forms.CharField(
        label="Webhook URL", required=False, max_length=WEBHOOK_URL_MAX_LENGTH, validators=[validate_webhook_url],
        help_text="HTTPS endpoint for signed notifications (Standard Webhooks). Its signing secret is shown "
        "once, with the client secret.")
    contact_email = forms.EmailField(label="Contact e-mail", required=False, max_length=254,
                                     help_text="Where expiry warnings and anomaly alerts are e-mailed.")
    #: The webhook signing secret created with the client (shown once), set by register().
    webhook_secret: str | None = None

    # Where the model's / service's error keys land on this form.
    ERROR_FIELDS = {
        "name": "name",
        "client_type": "client_type",
        "grant_types": "grant_types",
        "authorization_grant_type": "grant_types",
        "redirect_uris": "redirect_uris",
        "allowed_audiences": "allowed_audiences",
        "audience": "resource_server_audience",
        "is_resource_server": "resource_server_audience",
        "access_token_lifetime": "access_token_lifetime",
        "remember_consent": "remember_consent",
        "webhook_url": "webhook_url",
        "contact_email": "contact_email",
    }

    def register(self, *, actor: Any = None) -> tuple[Client, str | None] | None:
        """Register the client; on failure add the errors to the form and return None."""
        from django.db import transaction

        from clients.services import ClientError, client_register
        from clients.webhooks.services import client_contact_set

        data = self.cleaned_data
        try:
            with transaction.atomic():  # a refused webhook URL or address leaves no client behind
                client, secret = client_register(
                    name=data["name"],
                    client_type=data["client_type"],
                    grant_types=data["grant_types"],
                    redirect_uris=data["redirect_uris"],
                    scopes=[scope.name for scope in data["allowed_scopes"]],
                    audiences=data["allowed_audiences"],
                    allow_unregistered_audience=data["allow_unregistered_audience"],
                    resource_server_audience=data["resource_server_audience"] or None,
                    access_token_lifetime=data["access_token_lifetime"],
                    remember_consent=data["remember_consent"],
                    actor=actor,
                )
                if data["webhook_url"] or data["contact_email"]:
                    client, self.webhook_secret = client_contact_set(
                        client=client, webhook_url=data["webhook_url"], contact_email=data["contact_email"],
                        actor=actor)
            return client, secret
        except ClientError as exc:
            self.add_error(None, str(exc))
        except ValidationError as exc:
            self.add_model_errors(exc)
        return None

    def clean_name(self) -> str:
        return name_untaken(self.cleaned_data["name"])

    def clean(self) -> dict[str, Any]:
        self.clean_audiences()
        self._clean_across_fields()
        return self.cleaned_data

    def _clean_across_fields(self) -> None:
        """The model's cross-field rules, run now on what was typed, so that their errors come in the
        same round as the field errors (not only once those are fixed). A field that already has an
        error keeps just that one; ``register()`` runs the full validation again."""
        data = self.cleaned_data
        rs_audience = data.get("resource_server_audience") or None
        provisional = Client(
            name=data.get("name") or "",
            client_type=data.get("client_type") or Client.CLIENT_CONFIDENTIAL,
            grant_types=list(data.get("grant_types") or []),
            redirect_uris=" ".join(data.get("redirect_uris") or []),
            is_resource_server=rs_audience is not None or "resource_server_audience" in self.errors,
            audience=rs_audience,
            access_token_lifetime=data.get("access_token_lifetime"),
        )
        try:
            provisional.clean()
        except ValidationError as exc:
            for key, errors in exc.error_dict.items():
                if self.ERROR_FIELDS.get(key) not in self.errors:
                    self.add_model_errors(ValidationError({key: errors}))

    def add_model_errors(self, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for key, errors in exc.error_dict.items():
            field = self.ERROR_FIELDS.get(key)
            if field is None:
                # Errors on fields this form does not show (or NON_FIELD_ERRORS) stay visible.
                label = "" if key == NON_FIELD_ERRORS else f"{key}: "
                for error in errors:
                    for message in error.messages:
                        self.add_error(None, f"{label}{message}")
            else:
                self.add_error(field, errors)


class ClientChangeForm(AudienceFields, forms.ModelForm):
    """Editing an existing client. ``client_secret``/``hash_client_secret`` are not fields at all.

    ModelForm validation runs ``Client.full_clean()``, i.e. the model's ``clean()`` with the same
    redirect-URI and grant-type policy as registration, so editing cannot bypass it.
    """

    grant_types = forms.MultipleChoiceField(choices=GRANT_TYPE_CHOICES, widget=CHECKBOXES, required=False,
                                            help_text=GRANT_HELP)
    redirect_uris = LinesField(label="Redirect URIs", joiner=" ", help_text=REDIRECT_HELP)
    allowed_scopes = forms.ModelMultipleChoiceField(
        queryset=Scope.objects.all(),
        required=False,
        widget=CHECKBOXES,
        help_text="Scopes this client may request.",
    )
    audience = forms.CharField(
        label="Resource server audience",
        required=False,
        max_length=255,
        validators=[validate_audience],
        help_text="This resource server's own audience URI (required when it is a resource server).",
    )
    access_token_lifetime = _lifetime_field(label="Access token lifetime")
    refresh_token_lifetime = forms.IntegerField(
        required=False,
        validators=[MinValueValidator(300), MaxValueValidator(settings.REFRESH_TOKEN_MAX_SECONDS)],
        help_text=f"Absolute lifetime of a refresh-token family in seconds; empty for the server default "
        f"({settings.REFRESH_TOKEN_DEFAULT_SECONDS}s); at most {settings.REFRESH_TOKEN_MAX_SECONDS}s.",
    )

    class Meta:
        model = Client
        fields = [
            "name",
            "grant_types",
            "redirect_uris",
            "allowed_scopes",
            "allowed_audiences",
            "is_resource_server",
            "audience",
            "access_token_lifetime",
            "refresh_token_lifetime",
            "remember_consent",
            "webhook_url",
            "contact_email",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.split_audiences(list(self.instance.allowed_audiences or []))

    def clean_name(self) -> str:
        return name_untaken(self.cleaned_data["name"], exclude_pk=self.instance.pk)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        self.clean_audiences()
        return cleaned

    def clean_audience(self) -> str | None:
        # The column is unique and nullable: an empty value must be NULL, never "".
        return self.cleaned_data.get("audience") or None
