"""``manage.py restore FILE``: verify a backup archive completely, then restore it into an empty database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import connections

from authserver import cliargs
from authserver.cli import DependencyCommand, dumps
from authserver.crypto import backup, envelope, trail
from authserver.crypto.backends import get_keystore


class Command(DependencyCommand):
    help = cliargs.spec("restore").help

    def handle(self, *args: Any, **options: Any) -> None:
        archive = Path(options["archive"])
        db: backup.DatabaseSettings
        if options["database_url"]:
            db = dj_database_url.parse(options["database_url"])
        else:
            db = connections[options["database"]].settings_dict
            connections[options["database"]].close()
        try:
            vendor = backup.vendor_of(db)
            store = get_keystore()  # never initialised here: a new key could not open the archive anyway
            if not backup.is_empty(db):
                raise CommandError("the target database is not empty; restore only into an empty database")
            with archive.open("rb") as fh:
                header, _ = backup.read_header(fh)
            if header["vendor"] != vendor:
                raise CommandError(f"the archive is a {header['vendor']} backup; the target database is {vendor}")
        except backup.ArchiveError as exc:
            raise CommandError(f"{archive}: {exc}; nothing was restored") from exc
        except (OSError, ImproperlyConfigured) as exc:
            raise CommandError(f"{exc}; nothing was restored") from exc

        with backup.make_workdir(Path(settings.DATA_DIR) / "run") as workdir:
            plain = Path(workdir) / "verified.dump"
            progress = backup.Progress("restore: verified", self.stderr, total=archive.stat().st_size)
            try:
                fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out, archive.open("rb") as fh:
                    for chunk in backup.decrypt_stream(fh, store):
                        out.write(chunk)
                        progress.add(len(chunk) + 20)
            except backup.ArchiveError as exc:
                raise CommandError(f"{archive}: {exc}; nothing was restored") from exc
            except ImproperlyConfigured as exc:
                raise CommandError(f"{exc}; nothing was restored") from exc
            progress.finish()
            if not backup.is_empty(db):
                raise CommandError("the target database is not empty; restore only into an empty database")
            self.stderr.write(dumps({"progress": "restore: loading into the database", "done": False}))
            try:
                backup.load(db, plain, Path(workdir))
            except RuntimeError as exc:
                raise CommandError(f"restore failed: {exc}") from exc
        envelope.reset_caches()
        # Recorded in the configured database: the restored one, unless --database-url named another.
        trail.record(event="backup.restored", actor="cli", subject=f"backup:{archive.name}",
                     details={"file": archive.name, "vendor": vendor, "kek_version": header["kek_version"],
                              "into": "configured database" if not options["database_url"] else "--database-url"})
        self.emit({"restored": str(archive), "vendor": vendor, "kek_version": header["kek_version"],
                   "into": "configured database" if not options["database_url"] else "--database-url"})
