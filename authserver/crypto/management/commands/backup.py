"""``manage.py backup --output FILE``: an encrypted, authenticated archive of the database.

Prints one JSON object (the file, its size, the vendor and the KEK version); progress goes to
stderr as JSON lines (``{"progress": "backup", ...}``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import connections

from authserver import cliargs
from authserver.cli import DependencyCommand
from authserver.crypto import backup, envelope, trail


class Command(DependencyCommand):
    help = cliargs.spec("backup").help

    def handle(self, *args: Any, **options: Any) -> None:
        output = Path(options["output"])
        if output.exists():
            raise CommandError(f"{output} already exists")
        db = connections[options["database"]].settings_dict
        try:
            store = envelope.keystore_ready()
            vendor = backup.vendor_of(db)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        partial = output.with_name(f".{output.name}.partial")
        progress = backup.Progress("backup", self.stderr)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out, backup.make_workdir(Path(settings.DATA_DIR) / "run") as workdir:
                writer = backup.ArchiveWriter(out, store, vendor)

                def sink(chunk: bytes) -> None:
                    writer.write(chunk)
                    progress.add(len(chunk))

                backup.dump(db, sink, Path(workdir))
                writer.close()
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, output)
        except (RuntimeError, OSError) as exc:
            raise CommandError(f"backup failed: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
        progress.finish()
        # The file's name, never its path's secrets or contents: the archive holds no key.
        trail.record(event="backup.created", actor="cli", subject=f"backup:{output.name}",
                     details={"file": output.name, "bytes": output.stat().st_size, "vendor": vendor,
                              "kek_version": store.current_version()})
        self.emit({"backup": str(output), "bytes": output.stat().st_size, "vendor": vendor,
                   "kek_version": store.current_version()})
