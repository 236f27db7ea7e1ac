"""Counts added up in memory and pushed to the store by a background thread.

Hot paths (introspection, verification, the token endpoint) must not wait on a store for a side
effect, so they only add to a :class:`~authserver.counters.store.Batch` under a lock. A daemon
thread pushes the batch every ``interval`` seconds, and once more at exit. If the store is down the
batch is logged and dropped, never raised into a request: a process that dies or a store that is
away loses about a second of counts (fail open: these counts decide nothing).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from authserver.counters.store import Batch, CounterStore, Tally

log = logging.getLogger("authserver.counters")


class Buffer:
    def __init__(self, tally: Tally, store: Callable[[], CounterStore], *, interval: float = 1.0) -> None:
        self.tally, self.interval = tally, interval
        self._store = store  # looked up at each flush: tests swap the configured store
        self._lock = threading.Lock()  # guards the batch; the only lock hot paths take
        self._push_lock = threading.Lock()  # one push at a time: see flush
        self._batch = Batch()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        atexit.register(self.flush)

    @contextmanager
    def adding(self) -> Iterator[Batch]:
        """The batch to add to, under the lock; the flushing thread is started on first use."""
        with self._lock:
            yield self._batch
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._forever, name=f"{self.tally.counts}-flush",
                                                daemon=True)
                self._thread.start()

    def _forever(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Push what this process has counted to the store now. Never raises.

        Returns only once every count made before the call is in the store, including a batch the
        thread took a moment earlier and is still pushing: a drain that follows misses nothing.
        """
        with self._push_lock:
            with self._lock:
                batch, self._batch = self._batch, Batch()
            if not batch:
                return
            try:
                self._store().add(self.tally, batch)
            except Exception:  # noqa: BLE001 - a side effect: log and drop
                log.warning("%s counters unavailable; %d counts dropped", self.tally.counts, batch.events)

    def clear(self) -> None:
        """Forget what is buffered (tests: a previous test's counts must not be flushed later)."""
        with self._lock:
            self._batch = Batch()

    def stop(self) -> None:
        """End the flushing thread (it starts again on the next count)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self.interval + 1)
