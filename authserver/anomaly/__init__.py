"""Adaptive rate limits and anomaly detection.

Hot paths only emit telemetry (:mod:`authserver.events`), which :mod:`authserver.anomaly.observers`
counts per minute into :mod:`authserver.counters`; the limiter and key verification read the
effective limits this app publishes there, from an in-process cache. A per-minute job
(:mod:`authserver.anomaly.jobs`) drains the counts into ``TrafficMinute`` rows, updates each
credential's ``Baseline`` and effective limit (pure functions in :mod:`authserver.anomaly.detection`),
records anomalies and takes the configured action (:mod:`authserver.anomaly.services`).
"""
