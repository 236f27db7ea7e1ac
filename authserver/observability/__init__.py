"""Observability: Prometheus metrics and the JSON access line (platform layer, but for the view).

* :mod:`.metrics` declares every series, in prometheus-client's multi-process mode: each process
  (web workers, the Celery worker and its pool, beat) writes its own files under
  ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up.
* :mod:`.access` subscribes to the telemetry events (authserver.events): one JSON access line per
  request, and the request, token, introspection, refusal and dependency-error series. The
  request path only emits; this runs on the events thread about once a second.
* :mod:`.jobs` counts Celery task runs, failures and lag from Celery's task signals.
* :mod:`.views` serves ``/metrics`` (interface layer): a 404 like any unknown path unless
  ``AUTHSERVER_METRICS_TOKEN`` is set and presented as a Bearer token.
"""
