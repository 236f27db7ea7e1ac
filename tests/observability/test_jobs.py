"""Celery task series from the task signals, the send-time stamp for lag, and JSON logging."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from celery import signals

from authserver import celery as celery_module
from authserver.observability import jobs
from tests.observability.helpers import delta, samples


class _Task:
    """What the signal handlers read of a task: its name and its request (hashable, as a sender)."""

    def __init__(self, name: str, **request: object) -> None:
        self.name = name
        self.request = SimpleNamespace(**request)


_task = _Task


def test_a_run_counts_with_its_lag_and_duration():
    task = _task("authserver.test.ok", sent_at=time.time() - 3.0, eta=None)
    before = samples()
    signals.task_prerun.send(sender=task, task_id="t-1", task=task, args=(), kwargs={})
    signals.task_postrun.send(sender=task, task_id="t-1", task=task, args=(), kwargs={}, retval=None,
                              state="SUCCESS")
    after = samples()
    assert delta(before, after, "authserver_celery_task_runs_total", task="authserver.test.ok") == 1
    assert delta(before, after, "authserver_celery_task_failures_total", task="authserver.test.ok") == 0
    assert delta(before, after, "authserver_celery_task_lag_seconds_count", task="authserver.test.ok") == 1
    assert 3.0 <= delta(before, after, "authserver_celery_task_lag_seconds_sum", task="authserver.test.ok") < 10
    assert delta(before, after, "authserver_celery_task_lag_seconds_bucket", task="authserver.test.ok",
                 le="1.0") == 0
    assert delta(before, after, "authserver_celery_task_duration_seconds_count", task="authserver.test.ok") == 1


def test_a_failure_counts():
    task = _task("authserver.test.fails")
    before = samples()
    signals.task_prerun.send(sender=task, task_id="t-2", task=task, args=(), kwargs={})
    signals.task_failure.send(sender=task, task_id="t-2", exception=RuntimeError("x"), args=(), kwargs={},
                              traceback=None, einfo=None)
    after = samples()
    assert delta(before, after, "authserver_celery_task_runs_total", task="authserver.test.fails") == 1
    assert delta(before, after, "authserver_celery_task_failures_total", task="authserver.test.fails") == 1
    # No send time on the message: no lag observed rather than a made-up one.
    assert delta(before, after, "authserver_celery_task_lag_seconds_count", task="authserver.test.fails") == 0


@pytest.mark.parametrize(("request_fields", "expected"), [
    ({"sent_at": 100.0}, 5.0),
    ({"sent_at": 100.0, "eta": None}, 5.0),
    ({"sent_at": 100.0, "eta": datetime.fromtimestamp(103.0, UTC).isoformat()}, 2.0),  # due at its ETA
    ({"sent_at": 100.0, "eta": datetime.fromtimestamp(103.0, UTC)}, 2.0),
    ({"sent_at": 100.0, "eta": "not a date"}, 5.0),
    ({"sent_at": 110.0}, 0.0),  # clocks disagree: never negative
    ({}, None),
    ({"sent_at": "100"}, None),
])
def test_lag(request_fields, expected):
    assert jobs.lag_seconds(SimpleNamespace(**request_fields), 105.0) == expected


def test_every_published_message_carries_its_send_time():
    headers: dict[str, object] = {}
    before = time.time()
    signals.before_task_publish.send(sender="authserver.test", headers=headers, body=None)
    assert before <= headers["sent_at"] <= time.time()
    kept = {"sent_at": 1.0}
    signals.before_task_publish.send(sender="authserver.test", headers=kept, body=None)
    assert kept["sent_at"] == 1.0


def test_celery_logs_through_the_application_logging():
    assert celery_module.app.conf.worker_hijack_root_logger is False
    assert any(signals.setup_logging.receivers), "a receiver stops Celery configuring its own format"
