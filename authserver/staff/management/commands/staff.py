"""``manage.py staff reset-factors USERNAME``: a staff member lost their second factor.

Removes every second factor of the account (audited, actor ``cli``) and signs out nothing else:
the next login asks to enrol again. Run it only after checking who is asking (docs/security.md)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from authserver.staff import services


class Command(BaseCommand):
    help = "Staff plane maintenance: reset-factors USERNAME removes an account's second factors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["reset-factors"])
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: options["username"]})
        except user_model.DoesNotExist:
            raise CommandError(f'no user "{options["username"]}"') from None
        removed = services.factors_reset(user=user, actor="cli")
        self.stdout.write(f'Removed {removed} second factor(s) of "{user.get_username()}"; '
                          "the next login enrols a new one.")
