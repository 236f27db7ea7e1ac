"""``manage.py client create|list|show|delete|update|rotate-secret|revoke-tokens``, ``webhook-secret rotate``,
``path-key rotate``, ``discovery-url rotate|revoke``.

One JSON object on stdout; arguments and examples in :mod:`authserver.cliargs.clients`.

A webhook URL set for the first time creates the client's ``whsec_`` signing secret, printed once
as ``webhook_secret``; ``webhook-secret rotate`` issues a new one, the old one signing next to it
for the overlap.

A resource server's rotating paths (docs/rotating-paths.md) are set with ``update``
(``--rotating-paths``, ``--public-url``, ``--per-client-aliases``, ``--path-window``) and shown
by ``show`` (never the key); ``path-key rotate`` issues a new key (its version is printed, not the key).

A confidential client or resource server gets its discovery URL (``/d/<dc_…>``, RFC 8414 for its
holder) at creation, printed once as ``discovery_url``; ``discovery-url rotate`` prints a new one
(the old one stops at once), ``discovery-url revoke`` ends it (clients.discovery).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from authserver import cliargs
from authserver.cli import JsonCommand, parse_duration
from authserver.errors import NotFound
from clients import selectors
from clients.discovery.services import (
    discovery_capability_revoke,
    discovery_capability_rotate,
    discovery_url,
    discovery_url_at_creation,
)
from clients.models import Client
from clients.registration.models import InitialAccessToken
from clients.registration.selectors import initial_access_tokens_list
from clients.registration.services import (
    initial_access_token_create,
    initial_access_token_revoke,
)
from clients.resource_paths.models import ResourceServerPaths
from clients.resource_paths.services import path_key_rotate, resource_paths_update
from clients.services import ClientError, client_register, client_revoke_tokens, client_secret_rotate
from clients.webhooks.services import client_contact_set, webhook_secret_rotate
from keys.deletion import LIVE_KEY_STATES, client_delete
from keys.models import ApiKey


def describe(client: Client) -> dict[str, Any]:
    """A client as listed and shown: never its secret or digest (the hint is its last characters)."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "client_type": client.client_type,
        "grant_types": client.grant_types,
        "redirect_uris": client.redirect_uris.split(),
        "scopes": sorted(scope.name for scope in client.allowed_scopes.all()),
        "audiences": client.allowed_audiences,
        "resource_server": client.audience if client.is_resource_server else None,
        # "manual" (an operator), "dcr" (RFC 7591) or "cimd" (a metadata document): the last two are unverified.
        "registration_source": client.registration_source,
        "secret_hint": client.client_secret_hint or None,
        "secret_rotated": client.client_secret_rotated,
        "credentials_revoked_at": client.credentials_revoked_at,
        "webhook_url": client.webhook_url or None,
        "contact_email": client.contact_email or None,
        "created": client.created,
        "updated": client.updated,
    }


def describe_initial_access_token(token: InitialAccessToken) -> dict[str, Any]:
    return {"id": token.pk, "hint": token.hint, "created_at": token.created_at, "expires_at": token.expires_at,
            "uses": token.uses, "uses_allowed": token.uses_allowed, "revoked_at": token.revoked_at,
            "usable": token.refusal(timezone.now()) is None}


def live_credentials(client: Client) -> dict[str, int]:
    now = timezone.now()
    return {
        "api_keys": ApiKey.objects.filter(client=client, status__in=LIVE_KEY_STATES).count(),
        "access_tokens": get_access_token_model().objects.filter(application=client, expires__gt=now).count(),
        "refresh_tokens": get_refresh_token_model().objects.filter(application=client, revoked__isnull=True).count(),
        "retired_secrets": client.retired_secrets.filter(expires__gt=now).count(),
    }


PATH_OPTIONS = ("rotating_paths", "public_url", "per_client_aliases", "path_window")


def _on_off(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _window(value: str) -> int | None:
    if value == "":
        return None  # the server default
    try:
        return int(value)
    except ValueError:
        raise ClientError("--path-window is a whole number of seconds") from None


def describe_paths(row: ResourceServerPaths | None) -> dict[str, Any]:
    """A resource server's rotating-path settings as shown: never the key (its version only)."""
    if row is None:
        return {"rotating": False}
    return {"rotating": row.rotating_paths, "public_url": row.public_url or None,
            "per_client_aliases": row.per_client_aliases, "window_seconds": row.effective_window_seconds,
            "key_version": row.key_version, "key_rotated": row.key_rotated}


class Command(JsonCommand):
    help = cliargs.spec("client").help

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "create":
                self._create(options)
            elif action == "list":
                self.emit({"clients": [describe(c) for c in selectors.clients_list()]})
            elif action == "show":
                client = self._client(options["client_id"])
                paths = {"rotating_paths": describe_paths(selectors.resource_paths_get(client=client))
                         } if client.is_resource_server else {}
                self.emit({**describe(client), "live": live_credentials(client), **paths})
            elif action == "delete":
                revoked = client_delete(client=self._client(options["client_id"]), actor="cli")
                self.emit({"client_id": options["client_id"], "deleted": True, "revoked": revoked})
            elif action == "rotate-secret":
                client = self._client(options["client_id"])
                grace = parse_duration(options["grace"]) if options["grace"] else None
                client, secret = client_secret_rotate(client=client, grace=grace, actor="cli")
                self.emit({
                    "client_id": client.client_id,
                    "client_secret": secret,
                    "previous_secret_valid_until": client.retired_secrets.order_by("-retired").values_list(
                        "expires", flat=True).first(),
                })
            elif action == "update":
                self._update(options)
            elif action == "path-key":
                client = self._client(options["client_id"])
                rotated = path_key_rotate(client=client, actor="cli")
                self.emit({"client_id": client.client_id, "key_version": rotated.key_version,
                           "key_rotated": rotated.key_rotated})
            elif action == "webhook-secret":
                client = self._client(options["client_id"])
                overlap = parse_duration(options["overlap"]) if options["overlap"] else None
                row, whsec = webhook_secret_rotate(client=client, overlap=overlap, actor="cli")
                self.emit({"client_id": client.client_id, "webhook_secret": whsec, "hint": row.hint,
                           "previous_secret_signs_until": client.webhook_secrets.filter(retires__isnull=False)
                           .order_by("-retires").values_list("retires", flat=True).first()})
            elif action == "discovery-url":
                client = self._client(options["client_id"])
                if options["discovery_action"] == "rotate":
                    capability, value = discovery_capability_rotate(client=client, actor="cli")
                    self.emit({"client_id": client.client_id, "discovery_url": discovery_url(value),
                               "hint": capability.hint})
                else:
                    self.emit({"client_id": client.client_id,
                               "revoked": discovery_capability_revoke(client=client, actor="cli")})
            elif action == "registration-token":
                self._registration_token(options)
            elif action == "revoke-tokens":
                counts = client_revoke_tokens(client=self._client(options["client_id"]), actor="cli")
                self.emit({"client_id": options["client_id"], "revoked": sum(counts.values()), **counts})
        except ClientError as exc:
            self.fail(str(exc))
        except ValidationError as exc:
            self.fail("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                      if hasattr(exc, "error_dict") else "; ".join(exc.messages))

    def _registration_token(self, options: dict[str, Any]) -> None:
        """RFC 7591 §3 initial access tokens: the plaintext once, at creation; hints otherwise."""
        if options["iat_action"] == "create":
            expires = options["expires_in"]
            token, value = initial_access_token_create(
                expires_in=timedelta(seconds=expires) if expires is not None else None, uses=options["uses"],
                actor="cli")
            self.emit({**describe_initial_access_token(token), "initial_access_token": value})
        elif options["iat_action"] == "list":
            self.emit({"registration_tokens": [describe_initial_access_token(t)
                                               for t in initial_access_tokens_list()]})
        else:
            token = initial_access_token_revoke(token_id=options["token_id"], actor="cli")
            self.emit(describe_initial_access_token(token))

    def _client(self, client_id: str) -> Client:
        client = selectors.client_get(client_id=client_id)
        if client is None:
            raise NotFound("no such client")
        return client

    def _update(self, options: dict[str, Any]) -> None:
        contact = options["webhook_url"] is not None or options["contact_email"] is not None
        path_options = {name: options[name] for name in PATH_OPTIONS if options[name] is not None}
        if not contact and not path_options:
            self.fail("nothing to change: give --webhook-url, --contact-email or a rotating-paths option")
        client = self._client(options["client_id"])
        payload: dict[str, Any] = {"client_id": client.client_id}
        with transaction.atomic():  # a refused value leaves nothing changed
            if contact:
                client, whsec = client_contact_set(client=client, webhook_url=options["webhook_url"],
                                                   contact_email=options["contact_email"], actor="cli")
                payload = self._contact(client, whsec)
            if path_options:
                window = path_options.get("path_window")
                row = resource_paths_update(
                    client=client, actor="cli", public_url=path_options.get("public_url"),
                    rotating_paths=_on_off(path_options.get("rotating_paths")),
                    per_client_aliases=_on_off(path_options.get("per_client_aliases")),
                    **({"window_seconds": _window(window)} if window is not None else {}))
                payload["rotating_paths"] = describe_paths(row)
        self.emit(payload)

    @staticmethod
    def _contact(client: Client, whsec: str | None) -> dict[str, Any]:
        payload = {"client_id": client.client_id, "webhook_url": client.webhook_url,
                   "contact_email": client.contact_email}
        return {**payload, "webhook_secret": whsec} if whsec else payload

    def _create(self, options: dict[str, Any]) -> None:
        with transaction.atomic():  # a refused webhook URL or address leaves no client behind
            client, secret, whsec = self._register(options)
            discovery = discovery_url_at_creation(client=client, actor="cli")
        payload: dict[str, Any] = {
            **self._contact(client, whsec),
            "name": client.name,
            "client_type": client.client_type,
            "grant_types": client.grant_types,
            "redirect_uris": client.redirect_uris.split(),
            "scopes": sorted(client.allowed_scopes.values_list("name", flat=True)),
            "audiences": client.allowed_audiences,
            "resource_server": client.audience if client.is_resource_server else None,
        }
        if secret:
            payload["client_secret"] = secret
        if discovery:
            payload["discovery_url"] = discovery
        self.emit(payload)

    def _register(self, options: dict[str, Any]) -> tuple[Client, str | None, str | None]:
        client, secret = client_register(
            name=options["name"],
            client_type=options["client_type"],
            grant_types=options["grants"],
            redirect_uris=options["redirect_uris"],
            scopes=options["scopes"],
            audiences=options["audiences"],
            resource_server_audience=options["resource_server"],
            allow_unregistered_audience=options["allow_unregistered_audience"],
            remember_consent=options["remember_consent"],
            actor="cli",
        )
        whsec = None
        if options["webhook_url"] or options["contact_email"]:
            client, whsec = client_contact_set(client=client, webhook_url=options["webhook_url"],
                                               contact_email=options["contact_email"], actor="cli")
        return client, secret, whsec
