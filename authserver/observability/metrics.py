"""Every Prometheus series the server exports, in prometheus-client's multi-process mode.

Several processes serve and work (gunicorn or granian workers, the Celery worker and its pool
processes, beat): each writes its values to its own memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` and :func:`render` adds them up. prometheus-client picks the mode when
it is first imported, so this module sets the variable (default ``<data dir>/metrics``) before
importing it. Whoever starts the processes empties the directory first (``manage.py serve``; see
the README for containers): files left by an earlier run would be counted again.

Labels are bounded sets only: route names (never a raw path), policy names, grant types, task
names. Never a client id, an address or anything a caller can vary at will.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

# settings: the variable if set, else <data dir>/metrics (authserver.conf.load).
_directory = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(settings.PROMETHEUS_MULTIPROC_DIR))
_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_directory)

from prometheus_client import (  # noqa: E402 - after the multi-process directory is set
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

requests = Counter("authserver_http_requests_total", "HTTP requests answered, by route name, method and status.",
                   ["route", "method", "status"])
request_seconds = Histogram("authserver_http_request_duration_seconds", "Time to answer a request, by route name.",
                            ["route"], buckets=_LATENCY_BUCKETS)
tokens_issued = Counter("authserver_tokens_issued_total", "Tokens issued at the token endpoint, by grant type.",
                        ["grant"])
introspections = Counter("authserver_introspections_total",
                         "Introspection answers: active, inactive, rate_limited, or error (a refused request).",
                         ["result"])
revocations = Counter("authserver_revocations_total", "Credentials revoked, by kind.", ["kind"])
rate_limit_refusals = Counter("authserver_rate_limit_refusals_total", "Requests refused by a rate-limit policy.",
                              ["policy"])
anomalies = Counter("authserver_anomalies_total", "Anomalies detected (new ones, not repeats), by signal.",
                    ["signal"])
keystore_operations = Counter("authserver_keystore_operations_total",
                              "Key-store operations, by backend, operation and outcome.",
                              ["backend", "operation", "outcome"])
dependency_errors = Counter("authserver_dependency_errors_total",
                            "Requests refused (503) because a dependency was down, by dependency.", ["dependency"])
audit_witness_failures = Counter("authserver_audit_witness_failures_total",
                                 "Audit checkpoints the witness did not acknowledge (sent again next time).")
task_runs = Counter("authserver_celery_task_runs_total", "Celery task runs started, by task.", ["task"])
task_failures = Counter("authserver_celery_task_failures_total", "Celery task runs that raised, by task.", ["task"])
task_lag_seconds = Histogram("authserver_celery_task_lag_seconds",
                             "From a task message being sent (or its ETA) to the task starting, by task.",
                             ["task"], buckets=_LAG_BUCKETS)
task_seconds = Histogram("authserver_celery_task_duration_seconds", "Celery task run time, by task.", ["task"],
                         buckets=_LAG_BUCKETS)


def directory() -> Path:
    return _directory


def render() -> tuple[bytes, str]:
    """The exposition of every process's values, added up: (body, content type)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(_directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
