"""The Celery app. Configuration comes from Django settings (``CELERY_*``).

Logging: the worker and beat log through Django's ``LOGGING`` (one JSON object a line, credentials
redacted) instead of Celery's own format: ``worker_hijack_root_logger`` is off and the
``setup_logging`` receiver below configures it. Metrics: task runs, failures, duration and lag
(authserver.observability.jobs); every message published carries its send time for the lag.
"""

import logging.config
import os
import sys
import time
from typing import Any

from celery import Celery, signals

from authserver import datadir
from authserver.conf_parsers import EX_CONFIG, ConfigurationErrors

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")

app = Celery("authserver")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _prepare_data_dir(**kwargs: Any) -> None:
    # Sent once per process, before the app first reads Django's settings: the entry point of
    # `celery -A authserver worker|beat`. Idempotent, so a web process that already prepared the
    # data directory and then sends a task only re-checks it. A bad configuration stops the worker or
    # beat here with the one listing of every bad variable (not a traceback, nor a retry loop).
    try:
        datadir.prepare()
    except ConfigurationErrors as exc:
        sys.stderr.write(f"{exc}\n")
        sys.stderr.flush()
        raise SystemExit(EX_CONFIG) from None


@signals.setup_logging.connect
def _json_logging(loglevel: int | str | None = None, **kwargs: Any) -> None:
    # A receiver here means Celery configures no logging of its own (worker and beat alike).
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    # Celery's own --loglevel governs Celery's loggers (and its beat scheduler's); the application's
    # follow AUTHSERVER_LOG_LEVEL. manage.py serve starts its children at WARNING, quiet.
    if loglevel:
        for name in ("celery", "django_celery_beat"):
            logging.getLogger(name).setLevel(loglevel)


@signals.before_task_publish.connect
def _stamp_sent_at(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None:
        headers.setdefault("sent_at", time.time())


@signals.task_prerun.connect
def _task_prerun(**kwargs: Any) -> None:
    from authserver.observability import jobs

    jobs.task_prerun(**kwargs)


@signals.task_postrun.connect
def _task_postrun(**kwargs: Any) -> None:
    from authserver.observability import jobs

    jobs.task_postrun(**kwargs)


@signals.task_failure.connect
def _task_failure(**kwargs: Any) -> None:
    from authserver.observability import jobs

    jobs.task_failure(**kwargs)
