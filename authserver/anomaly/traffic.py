"""Per-minute traffic counts, the anomaly detector's input, kept in the counter store.

``count_minute`` is called by the telemetry subscribers (:mod:`authserver.anomaly.observers`),
never by the hot paths themselves: it adds to an in-process buffer that a background thread pushes
to the store every second (:mod:`authserver.counters.buffer`), losing at most a couple of seconds
of counts if the process dies: a side effect, it fails open. The per-minute job
(:mod:`authserver.anomaly.jobs`) drains them.
"""

from __future__ import annotations

import logging
import time

from authserver import counters, events

log = logging.getLogger("authserver.anomaly")

# Events per (series, minute), and the (key id, network) pairs seen (new-network detection).
TRAFFIC = counters.Tally(counts="traffic", pairs="keynets")
_buffer = counters.buffered(TRAFFIC)
MAX_PAIRS = 100_000  # per flush: a flood of addresses must not grow the buffer without bound


def _minute(ts: float) -> int:
    return int(ts // 60 * 60)


def count_minute(series: str, *, pair: tuple[str, str] | None = None, n: int = 1, now: float | None = None) -> None:
    """Count ``n`` events of ``series`` in the current minute (and remember a key/network pair). Never raises."""
    try:
        bucket = _minute(time.time() if now is None else now)
        with _buffer.adding() as batch:
            batch.count(series, bucket, n)
            if pair is not None and len(batch.pairs) < MAX_PAIRS:
                batch.pairs.add(pair)
    except Exception:  # noqa: BLE001 - a side effect
        log.warning("traffic counter unavailable; one event not counted")


def flush_traffic() -> None:
    """Push this process's pending events and buffered traffic counts to the shared store now."""
    events.deliver_all()
    _buffer.flush()


def drain_traffic() -> tuple[dict[tuple[str, int], int], set[tuple[str, str]]]:
    """Take every counted ``(series, minute) -> n`` and ``(key_id, network)`` pair out of the store."""
    events.deliver_all()
    batch = counters.drain(TRAFFIC)
    return batch.counts, batch.pairs
