"""``manage.py migrate_locked``: the release step. Apply every migration exactly once, however many
replicas run it at the same moment, then make sure the key store exists.

On PostgreSQL the step runs under a session-level advisory lock on a fixed key
(``pg_advisory_lock``), taken on a connection of its own so that nothing ``migrate`` does with its
connection can drop it: the first replica migrates, a second one waits (up to ``--wait`` seconds),
then finds nothing left to apply. The key store is checked under the same lock, so a fresh
install gets exactly one KEK version 1.

On SQLite there is no lock: SQLite is the embedded deployment on one machine, where ``manage.py
serve`` is the only process that migrates (and it refuses to start twice on one data directory),
so there are no replicas to race.

The container's ``migrate`` role runs this; the ``web`` role no longer migrates, and its
``/readyz`` answers 503 (``"migrations": "pending"``) until the schema is current.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

from authserver.db import unbounded_waits

# A fixed 64-bit key every replica agrees on: b"authmigr" read as a big-endian integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"authmigr", "big")


@contextmanager
def migration_lock(alias: str, *, wait: float, say: Any = None) -> Iterator[None]:
    """Hold the migration advisory lock (PostgreSQL) for the duration; a no-op on SQLite."""
    if connections[alias].vendor != "postgresql":
        yield
        return
    holder = connections.create_connection(alias)  # its own session: the lock lives as long as it
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
            if not cursor.fetchone()[0]:
                if say:
                    say(f"Another process is migrating; waiting up to {wait:g} s for it to finish.")
                # lock_timeout bounds the wait (advisory locks are heavyweight locks).
                cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{max(1, int(wait * 1000))}ms"])
                try:
                    cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
                except OperationalError as exc:
                    raise CommandError(
                        f"the migration lock was still held after {wait:g} s; is another migration stuck?"
                    ) from exc
                cursor.execute("SELECT set_config('lock_timeout', '0', false)")
        try:
            yield
        finally:
            with holder.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
    finally:
        holder.close()  # also releases the lock if the unlock above could not run


class Command(BaseCommand):
    help = ("Apply migrations once across replicas (PostgreSQL advisory lock; SQLite needs none), "
            "then check the key store (creating it on a fresh install).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument("--wait", type=float, default=600.0,
                            help="seconds to wait for another process's migration (default 600)")

    def handle(self, *args: Any, **options: Any) -> None:
        from authserver.crypto import keystore_ready

        alias = options["database"]
        verbosity = options["verbosity"]
        with migration_lock(alias, wait=options["wait"], say=self.stdout.write):
            with unbounded_waits(alias):  # a long migration is no request: no lock or statement timeout
                call_command("migrate", database=alias, interactive=False, verbosity=verbosity,
                             stdout=self.stdout)
            try:
                store = keystore_ready()
            except ImproperlyConfigured as exc:
                raise CommandError(f"key store: {exc}") from exc
        if verbosity:
            self.stdout.write(f"Key store: {store.describe()} (KEK version {store.current_version()}).")
