"""``manage.py keys status|rotate|retire VERSION|check``: the key store and what depends on each KEK.

Each prints one JSON object (arguments and examples in :mod:`authserver.cliargs.operations`)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import transaction

from authserver import cliargs
from authserver.cli import DependencyCommand
from authserver.crypto import envelope, rotation, trail


class Command(DependencyCommand):
    help = cliargs.spec("keys").help

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "do_" + options["action"])(options)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

    def do_status(self, options: dict[str, Any]) -> None:
        self.emit(rotation.status())

    def do_check(self, options: dict[str, Any]) -> None:
        store = envelope.keystore_ready()
        self.emit({"ok": True, "key_store": store.describe(), "kek_versions": store.versions()})

    def do_rotate(self, options: dict[str, Any]) -> None:
        from authserver.crypto import tasks
        from authserver.crypto.models import Rotation
        from authserver.crypto.tasks import rotation_finished
        from authserver.jobs import enqueue_on_commit

        current = None
        if options["resume"]:
            job = Rotation.objects.first()
            if job is None:
                raise CommandError("no rotation to resume")
            if not options["foreground"]:
                tasks.rotation_run.delay(str(job.pk))
        else:
            with transaction.atomic():
                job = rotation.rotate()
                trail.record(event="keystore.rotated", actor="cli", subject=f"kek:{job.target_version}",
                             details={"version": job.target_version, "rotation": str(job.pk)})
                if not options["foreground"]:
                    enqueue_on_commit(tasks.rotation_run, str(job.pk))
            current = job.target_version
        result: dict[str, Any] = {"rotation": str(job.pk), "kek_version": job.target_version,
                                  "created_version": current}
        if options["foreground"]:
            self.emit({**result, "status": "done", "counts": rotation_finished(str(job.pk), actor="cli")})
        else:
            self.emit({**result, "status": "enqueued", "follow": "manage.py keys status"})

    def do_retire(self, options: dict[str, Any]) -> None:
        try:
            result = rotation.retire(options["version"])
        except rotation.RetireRefused as exc:
            raise CommandError(str(exc)) from exc
        trail.record(event="keystore.retired", actor="cli", subject=f"kek:{result['version']}", details=result)
        # Backups made under a retired version can no longer be restored.
        self.emit({**result, "retired": True})
