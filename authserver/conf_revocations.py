"""The revocation stream's bounds (``GET /oauth/revocations``, docs/revocation-stream.md, contract C7).

A section of :class:`authserver.conf.AuthServerConfig`, kept here so authserver/conf.py stays short.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver.conf_parsers import _float, _int, var


@dataclass(frozen=True, kw_only=True)
class RevocationStreamConfig:
    """How often an idle stream says it is alive, how long one lasts, how long events are kept
    (a consumer that was away longer starts over with ``reset``), and how many streams one web
    process serves at once (each holds a web thread: docs/revocation-stream.md, "Sizing")."""

    heartbeat_seconds: float = var("AUTHSERVER_REVOCATIONS_HEARTBEAT_SECONDS", 1.0, _float(0.05, 60.0),
                                   flat="REVOCATIONS_HEARTBEAT_SECONDS")
    max_seconds: float = var("AUTHSERVER_REVOCATIONS_MAX_SECONDS", 300.0, _float(1.0), flat="REVOCATIONS_MAX_SECONDS")
    retention_seconds: int = var("AUTHSERVER_REVOCATIONS_RETENTION_SECONDS", 86400, _int(60),
                                 flat="REVOCATIONS_RETENTION_SECONDS")
    max_streams: int = var("AUTHSERVER_REVOCATIONS_MAX_STREAMS", 8, _int(0), flat="REVOCATIONS_MAX_STREAMS")

    def as_tuple(self) -> tuple[float, float, int, int]:
        """The settings, in the order authserver/settings.py names them."""
        return self.heartbeat_seconds, self.max_seconds, self.retention_seconds, self.max_streams
