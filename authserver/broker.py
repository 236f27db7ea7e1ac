"""The embedded broker: kombu's filesystem transport, made safe against damaged files.

``manage.py serve`` and every process on the embedded defaults share a Celery broker that is just
folders in the data directory (settings: ``CELERY_BROKER_TRANSPORT``). Kombu's own transport
trusts every file it finds there: a message file that is empty or not a message (a publisher that
hit a full disk leaves a zero-byte one) raises out of the worker's consumer loop and kills the
worker, at every start, until someone deletes the file by hand. This transport changes three
things, all inside the transport so that they also hold for files that appear while running:

- **Reading**: a message file that cannot be read, is not JSON, or is not a message kombu can build
  is logged (its name, size and the reason; never its content, which may carry task arguments)
  and moved aside to the quarantine folder (``<broker>/bad/``), then the next message is taken.
- **Writing**: a message is written to the staging folder and renamed into the queue only once
  complete, so a full disk or a crash mid-write never leaves a partial message where a consumer
  looks; the failed write's staging file is removed and the publisher gets kombu's ``ChannelError``.
- **Exchange tables** (``<broker>/control/*.exchange``): a damaged table read while publishing counts
  as no bindings (logged); binding a queue replaces a damaged table (quarantined) with a fresh one.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger("authserver.broker")

QUARANTINE_FOLDER = "bad"
STAGING_FOLDER = "tmp"
# What json.loads, base64 and kombu's Message raise on a file that is not a message.
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError)


class Channel(filesystem.Channel):
    """Kombu's filesystem channel that discards damaged files instead of dying on them."""

    def _get(self, queue: str) -> dict[str, Any]:  # type: ignore[override]  # kombu's own signature
        wanted = f"{queue}.msg"
        claim_folder = Path(self.processed_folder)
        claim_folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for filename in sorted(os.listdir(self.data_folder_in)):
            if filename.partition(".")[2] != wanted:
                continue
            claimed = claim_folder / filename
            try:
                # A rename is the claim: of several consumers, exactly one moves the file.
                os.rename(Path(self.data_folder_in) / filename, claimed)
            except OSError:
                continue  # another consumer took it first
            try:
                raw = claimed.read_bytes()
            except OSError as exc:
                self._quarantine(claimed, f"unreadable ({exc.strerror})")
                continue
            try:
                payload = loads(bytes_to_str(raw))
                if not isinstance(payload, dict):
                    raise TypeError("not a JSON object")
                self.Message(payload, channel=self)  # what the consumer will build: it must not raise
            except MALFORMED as exc:
                reason = "empty" if not raw else f"not a message ({type(exc).__name__})"
                self._quarantine(claimed, reason)
                continue
            if self.store_processed:
                return payload
            try:
                claimed.unlink()
            except OSError:
                log.warning("broker: could not remove a delivered message file", extra={"file": filename})
            return payload
        raise Empty()

    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        filename = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        staging = self._folder(STAGING_FOLDER) / filename
        try:
            with open(staging, "xb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
                fh.flush()
                os.fsync(fh.fileno())
            # Complete before it is visible: a consumer never sees a partial message.
            os.rename(staging, Path(self.data_folder_out) / filename)
        except OSError as exc:
            staging.unlink(missing_ok=True)
            raise ChannelError(f"Cannot add file {filename!r} to the queue: {exc.strerror}") from exc

    def get_table(self, exchange: str) -> list[filesystem.exchange_queue_t]:  # type: ignore[override]
        try:
            table: list[filesystem.exchange_queue_t] = super().get_table(exchange)
        except MALFORMED as exc:
            # Not quarantined here: a writer creating the table may not have written it yet. The
            # next bind (any worker's start) replaces a table that stays damaged.
            log.warning(
                "broker: damaged exchange table read as empty",
                extra={"file": self._table_file(exchange).name, "reason": type(exc).__name__},
            )
            return []
        return table

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str | None, queue: str) -> None:
        try:
            super()._queue_bind(exchange, routing_key, pattern, queue)
        except MALFORMED as exc:
            self._quarantine(self._table_file(exchange), f"damaged exchange table ({type(exc).__name__})")
            super()._queue_bind(exchange, routing_key, pattern, queue)

    # --- helpers ------------------------------------------------------------------------------
    def _table_file(self, exchange: str) -> Path:
        # Only called after kombu read the file, so after it accepted the exchange name.
        return Path(self.control_folder) / f"{exchange}.exchange"

    def _folder(self, name: str) -> Path:
        """A folder beside the queue folder (same filesystem: a rename into the queue is atomic)."""
        folder = Path(self.data_folder_in).parent / name
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder

    def _quarantine(self, path: Path, reason: str) -> None:
        try:
            size: int | None = path.stat().st_size
        except OSError:
            size = None
        try:
            target = self._folder(QUARANTINE_FOLDER) / f"{path.name}.{uuid.uuid4().hex[:8]}"
            os.rename(path, target)
            where = str(target)
        except OSError:
            # Even moving it aside failed: dropping it is still better than dying on it.
            path.unlink(missing_ok=True)
            where = "deleted"
        log.error(
            "broker: discarded a damaged message file",
            extra={"file": path.name, "bytes": size, "reason": reason, "moved_to": where},
        )


class Transport(filesystem.Transport):
    Channel = Channel


def quarantined(broker_dir: Path) -> list[Path]:
    """The files moved aside so far (for operators and tests)."""
    folder = broker_dir / QUARANTINE_FOLDER
    return sorted(folder.iterdir()) if folder.is_dir() else []


__all__ = ["Channel", "Transport", "quarantined"]
