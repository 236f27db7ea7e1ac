"""``manage.py client create|update|rotate-secret|revoke-tokens|webhook-secret rotate`` — one JSON object on stdout.

A webhook URL set for the first time creates the client's ``whsec_`` signing secret, printed once
as ``webhook_secret``; ``webhook-secret rotate`` issues a new one, the old one signing next to it
for the overlap.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from authserver.cli import JsonCommand, parse_duration
from clients.models import Client
from clients.services import ClientError, client_register, client_revoke_tokens, client_secret_rotate
from clients.webhooks.services import client_contact_set, webhook_secret_rotate


class Command(JsonCommand):
    help = "Register clients, rotate their secrets and revoke their tokens."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Register a client; prints its secret once.")
        create.add_argument("--name", required=True)
        create.add_argument("--type", dest="client_type", required=True, choices=["confidential", "public"])
        create.add_argument(
            "--grant", dest="grants", action="append", default=[],
            choices=["authorization_code", "client_credentials"],
            help="repeatable; required except for a resource server (--resource-server), which may have none",
        )
        create.add_argument("--redirect-uri", dest="redirect_uris", action="append", default=[])
        create.add_argument("--scope", dest="scopes", action="append", default=[])
        create.add_argument("--audience", dest="audiences", action="append", default=[],
                            help="a registered resource server's audience URI (repeatable)")
        create.add_argument("--allow-unregistered-audience", action="store_true",
                            help="accept --audience values that name no registered resource server")
        create.add_argument("--resource-server", dest="resource_server", metavar="AUD", default=None)
        create.add_argument("--remember-consent", action="store_true")
        for verb in (create, update := sub.add_parser("update", help="Change where notifications go.")):
            verb.add_argument("--webhook-url", default=None, help="https URL (\"\" clears it)")
            verb.add_argument("--contact-email", default=None, help="e-mail address (\"\" clears it)")
        update.add_argument("client_id")

        hooks = sub.add_parser("webhook-secret", help="Webhook signing secrets.")
        hooks_sub = hooks.add_subparsers(dest="secret_action", required=True)
        rotate_hook = hooks_sub.add_parser("rotate", help="New whsec_ secret, printed once; the old one overlaps.")
        rotate_hook.add_argument("client_id")
        rotate_hook.add_argument("--overlap", default=None, help="DURATION, e.g. 24h (default: server setting)")

        rotate = sub.add_parser("rotate-secret", help="Issue a new secret; the old one works during the grace.")
        rotate.add_argument("client_id")
        rotate.add_argument("--grace", default=None, help="DURATION, e.g. 24h (default: server setting)")

        revoke = sub.add_parser("revoke-tokens", help="Revoke every token and pending code of a client.")
        revoke.add_argument("client_id")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "create":
                self._create(options)
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
                if options["webhook_url"] is None and options["contact_email"] is None:
                    self.fail("nothing to change: give --webhook-url and/or --contact-email")
                client, whsec = client_contact_set(client=self._client(options["client_id"]),
                                                   webhook_url=options["webhook_url"],
                                                   contact_email=options["contact_email"], actor="cli")
                self.emit(self._contact(client, whsec))
            elif action == "webhook-secret":
                client = self._client(options["client_id"])
                overlap = parse_duration(options["overlap"]) if options["overlap"] else None
                row, whsec = webhook_secret_rotate(client=client, overlap=overlap, actor="cli")
                self.emit({"client_id": client.client_id, "webhook_secret": whsec, "hint": row.hint,
                           "previous_secret_signs_until": client.webhook_secrets.filter(retires__isnull=False)
                           .order_by("-retires").values_list("retires", flat=True).first()})
            elif action == "revoke-tokens":
                counts = client_revoke_tokens(client=self._client(options["client_id"]), actor="cli")
                self.emit({"client_id": options["client_id"], "revoked": sum(counts.values()), **counts})
        except ClientError as exc:
            self.fail(str(exc))
        except ValidationError as exc:
            self.fail("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                      if hasattr(exc, "error_dict") else "; ".join(exc.messages))

    def _client(self, client_id: str) -> Client:
        client = Client.objects.filter(client_id=client_id).first()
        if client is None:
            self.fail("no such client")
        return client  # type: ignore[return-value]

    @staticmethod
    def _contact(client: Client, whsec: str | None) -> dict[str, Any]:
        payload = {"client_id": client.client_id, "webhook_url": client.webhook_url,
                   "contact_email": client.contact_email}
        return {**payload, "webhook_secret": whsec} if whsec else payload

    def _create(self, options: dict[str, Any]) -> None:
        with transaction.atomic():  # a refused webhook URL or address leaves no client behind
            client, secret, whsec = self._register(options)
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
