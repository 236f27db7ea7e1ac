"""The Celery app. Configuration comes from Django settings (``CELERY_*``)."""

import os
from typing import Any

from celery import Celery

from authserver import datadir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")

app = Celery("authserver")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _prepare_data_dir(**kwargs: Any) -> None:
    # Sent once per process, before the app first reads Django's settings: the entry point of
    # `celery -A authserver worker|beat`. Idempotent, so a web process that already prepared the
    # data directory and then sends a task only re-checks it.
    datadir.prepare()
