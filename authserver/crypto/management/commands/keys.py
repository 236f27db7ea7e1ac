"""``manage.py keys status|rotate|retire VERSION|check``: the key store and what depends on each KEK."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from authserver.cli import DependencyCommand
from authserver.crypto import envelope, rotation, trail


class Command(DependencyCommand):
    help = "Key-encryption keys: status (JSON), rotate, retire VERSION, check."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="per KEK version, how much data still depends on it (JSON)")
        rotate = sub.add_parser("rotate", help="create a new KEK version and re-encrypt everything onto it")
        rotate.add_argument("--resume", action="store_true",
                            help="do not create a version: (re)run the job for the latest rotation")
        rotate.add_argument("--foreground", action="store_true",
                            help="run the re-encryption job here instead of enqueueing it for a Celery worker")
        retire = sub.add_parser("retire", help="destroy a KEK version nothing depends on any more")
        retire.add_argument("version", type=int)
        sub.add_parser("check", help="fail unless the key store is present and sound (creates it on a fresh install)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "do_" + options["action"])(options)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

    def do_status(self, options: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(rotation.status(), indent=2, sort_keys=True))

    def do_check(self, options: dict[str, Any]) -> None:
        store = envelope.keystore_ready()
        self.stdout.write(f"Key store OK: {store.describe()}, KEK versions {store.versions()}")

    def do_rotate(self, options: dict[str, Any]) -> None:
        from authserver.crypto import tasks
        from authserver.crypto.models import Rotation
        from authserver.crypto.tasks import rotation_finished
        from authserver.jobs import enqueue_on_commit

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
            self.stdout.write(f"KEK version {job.target_version} is now current.")
        if options["foreground"]:
            counts = rotation_finished(str(job.pk), actor="cli")
            self.stdout.write(f"Rotation {job.pk} done: {json.dumps(counts, sort_keys=True)}")
        else:
            self.stdout.write(f"Rotation {job.pk} enqueued; follow it with: manage.py keys status")

    def do_retire(self, options: dict[str, Any]) -> None:
        try:
            result = rotation.retire(options["version"])
        except rotation.RetireRefused as exc:
            raise CommandError(str(exc)) from exc
        trail.record(event="keystore.retired", actor="cli", subject=f"kek:{result['version']}", details=result)
        self.stdout.write(f"KEK version {result['version']} retired ({result['data_keys_deleted']} data key(s) "
                          "deleted). Backups made under it can no longer be restored.")
