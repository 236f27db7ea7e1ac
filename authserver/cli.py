"""Shared plumbing for the JSON command-line interface.

Every command prints exactly one JSON object on stdout (a list is one object holding an array;
``audit export`` alone writes JSON Lines); timestamps are ISO 8601 with ``T`` and the offset,
text is printed as is (UTF-8, no ``\\u`` escapes). Errors go to stderr as one JSON object and
exit non-zero (2 for usage errors, 1 for refused operations). Arguments come from
:mod:`authserver.cliargs` (shared with ``manage.py``'s front door, which answers ``--help`` and
usage errors without Django). Log records below WARNING are not written during a command: the
audit trail records what it changed, and stderr stays for its one error line. A dependency that is down (the
database, read-only or unreachable; Redis; a full disk) is ``{"error": "unavailable", "detail": ...}``
with exit status 1, never a traceback. A domain error
(authserver.errors) or a model validation error raised by a service is turned into that here, in
one place, for every command.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any, NoReturn
from uuid import UUID

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from authserver import cliargs
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


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()  # aware (USE_TZ): 2026-01-31T12:00:00.123456+00:00
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(payload: Any) -> str:
    """One JSON line: sorted keys, ISO 8601 timestamps, non-ASCII as is."""
    return json.dumps(payload, sort_keys=True, default=_json_value, ensure_ascii=False)


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Only warnings and errors reach stderr during a command (they stay JSON, redacted)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


class DependencyCommand(BaseCommand):
    """A management command that answers a dependency down (the database, read-only or unreachable;
    Redis; a full disk) with one JSON line on stderr and exit status 1, never a traceback.

    Its parser is :func:`authserver.cliargs.build` for its name. It runs no system checks: they
    import every URL map, view and admin module (about a second of CPU) and guard the web
    process; ``serve``, ``check`` and the web process run them.
    """

    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        from os.path import basename

        raise_error = None if getattr(self, "_called_from_command_line", False) else CommandError
        return cliargs.build(subcommand, f"{basename(prog_name)} {subcommand}", raise_error=raise_error)

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            with _quiet_logs():
                return super().execute(*args, **options)
        except unavailable_errors() as exc:
            # The detail is chosen here, not the exception's text (which may name hosts, paths or statements).
            cliargs.write_error({"error": "unavailable", "detail": unavailable_detail(exc)})
            sys.exit(cliargs.EXIT_REFUSED)
        except CommandError as exc:
            # On the command line a refusal is one JSON line (Django would print "CommandError: ...");
            # under call_command it stays the exception the caller can catch.
            if not getattr(self, "_called_from_command_line", False) or options.get("traceback"):
                raise
            self.fail(str(exc), exc.returncode or cliargs.EXIT_REFUSED)

    def emit(self, payload: dict[str, Any]) -> None:
        self.stdout.write(dumps(payload))

    def fail(self, message: str, code: int = cliargs.EXIT_REFUSED, **extra: Any) -> NoReturn:
        sys.stderr.write(dumps({"error": message, **extra}) + "\n")
        sys.exit(code)


class JsonCommand(DependencyCommand):
    """A management command whose result is one JSON object on stdout, and whose refusals
    (``CommandError``, domain errors, validation errors) are one JSON line on stderr."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            self.fail(str(exc), getattr(exc, "returncode", 1) or 1)
        except DomainError as exc:
            self.fail(str(exc))
        except ValidationError as exc:
            self.fail("; ".join(exc.messages))


def _redis_errors() -> tuple[type[BaseException], ...]:
    # ``import redis`` costs about 0.3 s of CPU (it loads redis.asyncio): the command line leaves it
    # to whatever talks to Redis, and a Redis error can only have been raised once it is loaded.
    errors = sys.modules.get("redis.exceptions")
    return (errors.ConnectionError, errors.TimeoutError) if errors is not None else ()


def unavailable_errors() -> tuple[type[BaseException], ...]:
    return (DatabaseError, *_redis_errors(), CountersUnavailable, GenerationUnavailable, OSError)


def unavailable_detail(exc: BaseException) -> str:
    if isinstance(exc, DatabaseError):
        if "read-only" in str(exc) or "readonly" in str(exc):
            return "the database is read-only"
        return "the database is unavailable"
    if isinstance(exc, (*_redis_errors(), CountersUnavailable)):
        return "redis (the counter store) is unavailable"
    if isinstance(exc, GenerationUnavailable):
        return "the revocation store (redis or the data directory) is unavailable"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "no space left on device"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "a file could not be written (read-only or permission denied)"
    return "a file or service could not be used"
