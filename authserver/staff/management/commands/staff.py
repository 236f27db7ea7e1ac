"""``manage.py staff reset-factors USERNAME``: a staff member lost their second factor.

Removes every second factor of the account (audited, actor ``cli``) and signs out nothing else:
the next login asks to enrol again. Run it only after checking who is asking (docs/security.md).
Arguments and examples in :mod:`authserver.cliargs.operations`; one JSON object on stdout."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from authserver import cliargs
from authserver.cli import JsonCommand
from authserver.errors import NotFound
from authserver.staff import services


class Command(JsonCommand):
    help = cliargs.spec("staff").help

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: options["username"]})
        except user_model.DoesNotExist:
            raise NotFound("no such user") from None
        removed = services.factors_reset(user=user, actor="cli")
        self.emit({"username": user.get_username(), "factors_removed": removed})
