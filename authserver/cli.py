"""Shared plumbing for the JSON command-line interface.

Every command prints exactly one JSON object on stdout; errors go to stderr as one JSON object
and exit non-zero (2 for usage errors, 1 for refused operations). A dependency that is down (the
database, read-only or unreachable; Redis; a full disk) is ``{"error": "unavailable", "detail": ...}``
with exit status 1, never a traceback. A domain error
(authserver.errors) or a model validation error raised by a service is turned into that here, in
one place, for every command.
"""

from __future__ import annotations

import errno
import json
import re
import sys
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from authserver.counters import CountersUnavailable
from authserver.errors import DomainError
from authserver.revocation import GenerationUnavailable

_DURATION_RE = re.compile(r"^(\d{1,9})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d`` → timedelta; anything else is a usage error."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise CommandError(f"invalid duration {text!r}: use a number followed by s, m, h or d (e.g. 24h)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class DependencyCommand(BaseCommand):
    """A management command that answers a dependency down (the database, read-only or unreachable;
    Redis; a full disk) with one JSON line on stderr and exit status 1, never a traceback."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except UNAVAILABLE as exc:
            # The detail is chosen here, not the exception's text (which may name hosts, paths or statements).
            sys.stderr.write(json.dumps({"error": "unavailable", "detail": unavailable_detail(exc)}) + "\n")
            sys.exit(1)


class JsonCommand(DependencyCommand):
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


UNAVAILABLE: tuple[type[BaseException], ...] = (
    DatabaseError, RedisConnectionError, RedisTimeoutError, CountersUnavailable, GenerationUnavailable, OSError,
)


def unavailable_detail(exc: BaseException) -> str:
    if isinstance(exc, DatabaseError):
        if "read-only" in str(exc) or "readonly" in str(exc):
            return "the database is read-only"
        return "the database is unavailable"
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, CountersUnavailable)):
        return "redis (the counter store) is unavailable"
    if isinstance(exc, GenerationUnavailable):
        return "the revocation store (redis or the data directory) is unavailable"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "no space left on device"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "a file could not be written (read-only or permission denied)"
    return "a file or service could not be used"
