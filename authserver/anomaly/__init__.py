"""Adaptive rate limits and anomaly detection.

Hot paths only count into :mod:`authserver.counters` (in-process buffer, flushed every second) and
read effective limits from an in-process cache (:mod:`authserver.anomaly.hooks`). A per-minute job
(:mod:`authserver.anomaly.jobs`) drains the counts into ``TrafficMinute`` rows, updates each
credential's ``Baseline`` and effective limit (pure functions in :mod:`authserver.anomaly.detection`),
records anomalies and takes the configured action (:mod:`authserver.anomaly.services`).
"""
