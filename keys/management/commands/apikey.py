"""``manage.py apikey create|rotate|revoke|suspend|resume|list|revoke-all`` — one JSON object on stdout.

Refusals (domain errors, validation errors) are answered by :class:`authserver.cli.JsonCommand`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from authserver.cli import JsonCommand, parse_duration
from authserver.errors import NotFound
from clients.models import Client
from keys import policy, services
from keys.models import ApiKey


def describe(key: ApiKey) -> dict[str, Any]:
    """A key as shown after creation: never the plaintext, never the digest."""
    return {
        "id": str(key.id),
        "name": key.name,
        "hint": key.hint,
        "client_id": key.client.client_id,
        "status": key.status,
        "scope": key.scope,
        "audiences": key.audiences,
        "allowed_ips": key.allowed_ips,
        "rate_limit": f"{key.rate_limit}/{key.rate_limit_period}s" if key.rate_limit else None,
        "quota": key.quota,
        "expires": key.expires.isoformat(),
        "grace_ends": key.grace_ends.isoformat() if key.grace_ends else None,
        "created": key.created.isoformat(),
        "created_by": key.created_by_label,
        "last_used": key.last_used.isoformat() if key.last_used else None,
        "last_used_ip": key.last_used_ip,
        "uses": key.uses,
    }


class Command(JsonCommand):
    help = "Issue, rotate, revoke and list API keys."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Issue a key; prints it once.")
        create.add_argument("--client", required=True, help="CLIENT_ID of the owning client")
        create.add_argument("--name", required=True)
        create.add_argument("--scope", dest="scopes", action="append", default=None)
        create.add_argument("--audience", dest="audiences", action="append", default=None)
        create.add_argument("--allow-ip", dest="allowed_ips", action="append", default=[], metavar="CIDR")
        create.add_argument("--expires-in", default=None, metavar="DURATION")
        create.add_argument("--rate-limit", default=None, metavar="N/PERIOD", help="e.g. 100/m, 10/s, 5000/h")
        create.add_argument("--quota", type=int, default=None, metavar="N")
        rotate = sub.add_parser("rotate", help="Issue a successor; the old key works during the grace.")
        rotate.add_argument("key_id")
        rotate.add_argument("--grace", default=None, metavar="DURATION")
        for name, text in (("revoke", "Revoke now."), ("suspend", "Suspend (reversible)."), ("resume", "Resume.")):
            sub.add_parser(name, help=text).add_argument("key_id")
        listing = sub.add_parser("list", help="List keys (no plaintext).")
        listing.add_argument("--client", default=None)
        revoke_all = sub.add_parser("revoke-all", help="Compromise response: revoke every key and token of a client.")
        revoke_all.add_argument("--client", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            self._create(options)
        elif action == "rotate":
            grace = parse_duration(options["grace"]) if options["grace"] else None
            new, plaintext = services.api_key_rotate(key=self._key(options["key_id"]), grace=grace, actor="cli")
            old = ApiKey.objects.get(pk=options["key_id"])
            self.emit({**describe(new), "key": plaintext, "previous_id": str(old.id),
                       "previous_valid_until": old.grace_ends.isoformat() if old.grace_ends else None})
        elif action in {"revoke", "suspend", "resume"}:
            change = {"revoke": services.api_key_revoke, "suspend": services.api_key_suspend,
                      "resume": services.api_key_resume}[action]
            self.emit(describe(change(key=self._key(options["key_id"]), actor="cli")))
        elif action == "list":
            keys = ApiKey.objects.select_related("client").order_by("created")
            if options["client"]:
                keys = keys.filter(client__client_id=options["client"])
            self.emit({"keys": [describe(key) for key in keys]})
        elif action == "revoke-all":
            response = services.compromise_response_start(client=self._client(options["client"]), actor="cli")
            self.emit({"client_id": options["client"], "response_id": str(response.pk),
                       "effective": response.requested.isoformat(), "status": response.status})

    def _client(self, client_id: str) -> Client:
        client = Client.objects.filter(client_id=client_id).first()
        if client is None:
            raise NotFound("no such client")
        return client

    def _key(self, key_id: str) -> ApiKey:
        try:
            key = ApiKey.objects.select_related("client").filter(pk=key_id).first()
        except ValidationError:
            key = None
        if key is None:
            raise NotFound("no such key")
        return key

    def _create(self, options: dict[str, Any]) -> None:
        client = self._client(options["client"])
        key, plaintext = services.api_key_create(
            client=client,
            name=options["name"],
            scopes=options["scopes"],
            audiences=options["audiences"],
            allowed_ips=options["allowed_ips"],
            expires_in=parse_duration(options["expires_in"]) if options["expires_in"] else None,
            rate_limit=policy.parse_rate_limit(options["rate_limit"]) if options["rate_limit"] else None,
            quota=options["quota"],
            actor="cli",
        )
        self.emit({**describe(key), "key": plaintext})
