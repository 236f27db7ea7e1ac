"""``manage.py scope create NAME [--description TEXT]`` (idempotent)."""

from __future__ import annotations

from typing import Any

from authserver.cli import JsonCommand
from clients.services import scope_create


class Command(JsonCommand):
    help = "Manage the scope registry."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a scope (no change if it exists).")
        create.add_argument("name")
        create.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        scope, created = scope_create(name=options["name"], description=options["description"], actor="cli")
        self.emit({"name": scope.name, "description": scope.description, "created": created})
