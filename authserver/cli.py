"""Shared plumbing for the JSON command-line interface.

Every command prints exactly one JSON object on stdout; errors go to stderr as one JSON object
and exit non-zero (2 for usage errors, 1 for refused operations). A domain error
(authserver.errors) or a model validation error raised by a service is turned into that here, in
one place, for every command.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from authserver.errors import DomainError

_DURATION_RE = re.compile(r"^(\d{1,9})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d`` → timedelta; anything else is a usage error."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise CommandError(f"invalid duration {text!r}: use a number followed by s, m, h or d (e.g. 24h)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class JsonCommand(BaseCommand):
    """A management command whose result is one JSON object on stdout."""

    def emit(self, payload: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(payload, sort_keys=True, default=str))

    def fail(self, message: str, code: int = 1) -> None:
        sys.stderr.write(json.dumps({"error": message}) + "\n")
        sys.exit(code)

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            self.fail(str(exc), getattr(exc, "returncode", 1) or 1)
        except DomainError as exc:
            self.fail(str(exc))
        except ValidationError as exc:
            self.fail("; ".join(exc.messages))
