"""``manage.py apikey create|rotate|revoke|suspend|resume|list|show|delete|revoke-all``: one JSON object on stdout.

Arguments and examples in :mod:`authserver.cliargs.keys`. ``revoke`` keeps the key listed as
revoked; ``delete`` revokes it and removes the row (keys.deletion.api_key_delete).

Refusals (domain errors, validation errors) are answered by :class:`authserver.cli.JsonCommand`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from authserver import cliargs
from authserver.cli import JsonCommand, parse_duration
from authserver.errors import NotFound
from clients.models import Client
from keys import policy, services
from keys.deletion import api_key_delete
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
        "expires": key.expires,
        "grace_ends": key.grace_ends,
        "revoked": key.revoked,
        "suspended": key.suspended,
        "created": key.created,
        "created_by": key.created_by_label,
        "last_used": key.last_used,
        "last_used_ip": key.last_used_ip,
        "uses": key.uses,
    }


class Command(JsonCommand):
    help = cliargs.spec("apikey").help

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            self._create(options)
        elif action == "rotate":
            grace = parse_duration(options["grace"]) if options["grace"] else None
            new, plaintext = services.api_key_rotate(key=self._key(options["key_id"]), grace=grace, actor="cli")
            old = ApiKey.objects.get(pk=options["key_id"])
            self.emit({**describe(new), "key": plaintext, "previous_id": str(old.id),
                       "previous_valid_until": old.grace_ends})
        elif action in {"revoke", "suspend", "resume"}:
            change = {"revoke": services.api_key_revoke, "suspend": services.api_key_suspend,
                      "resume": services.api_key_resume}[action]
            self.emit(describe(change(key=self._key(options["key_id"]), actor="cli")))
        elif action == "show":
            self.emit(describe(self._key(options["key_id"])))
        elif action == "delete":
            self.emit({**api_key_delete(key=self._key(options["key_id"]), actor="cli"), "deleted": True})
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
