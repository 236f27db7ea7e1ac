"""``manage.py scope create|list|show|delete``: one JSON object on stdout.

Arguments and examples in :mod:`authserver.cliargs.clients`. ``create`` is idempotent; ``delete``
is refused while anything holds the scope, unless ``--force`` (keys.deletion.scope_delete).
"""

from __future__ import annotations

from typing import Any

from authserver import cliargs
from authserver.cli import JsonCommand
from authserver.errors import NotFound
from clients import selectors
from clients.models import Client, Scope
from clients.services import scope_create
from keys.deletion import ScopeInUse, scope_delete, scope_usage


def describe(scope: Scope) -> dict[str, Any]:
    return {"name": scope.name, "description": scope.description, "created": scope.created,
            "clients": getattr(scope, "client_count", None)}


class Command(JsonCommand):
    help = cliargs.spec("scope").help

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            scope, created = scope_create(name=options["name"], description=options["description"], actor="cli")
            self.emit({"name": scope.name, "description": scope.description, "created": created})
        elif action == "list":
            self.emit({"scopes": [describe(scope) for scope in selectors.scopes_list()]})
        elif action == "show":
            scope = self._scope(options["name"])
            self.emit({**describe(scope), "client_ids": sorted(Client.objects.filter(allowed_scopes=scope)
                                                     .values_list("client_id", flat=True)),
                       "held_by": scope_usage(scope=scope)})
        elif action == "delete":
            try:
                revoked = scope_delete(scope=self._scope(options["name"]), force=options["force"], actor="cli")
            except ScopeInUse as exc:
                self.fail(str(exc), held_by=exc.usage)
            self.emit({"name": options["name"], "deleted": True, "revoked": revoked})

    @staticmethod
    def _scope(name: str) -> Scope:
        scope = selectors.scope_get(name=name)
        if scope is None:
            raise NotFound("no such scope")
        return scope
