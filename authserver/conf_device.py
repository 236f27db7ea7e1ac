"""The device authorization grant's bounds (RFC 8628; docs/device-flow.md).

A section of :class:`authserver.conf.AuthServerConfig`, kept here so authserver/conf.py stays short.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver.conf_parsers import _int, var


@dataclass(frozen=True, kw_only=True)
class DeviceConfig:
    """How long a device code and its user code live (RFC 8628 §3.2 ``expires_in``; short, because
    the user code is typed by hand and so is far weaker than any other credential), and the polling
    interval a device is told (§3.2 ``interval``; each ``slow_down`` adds 5 s, §3.5)."""

    code_seconds: int = var("AUTHSERVER_DEVICE_CODE_SECONDS", 600, _int(60), flat="DEVICE_CODE_SECONDS")
    interval_seconds: int = var("AUTHSERVER_DEVICE_INTERVAL_SECONDS", 5, _int(1), flat="DEVICE_INTERVAL_SECONDS")

    def as_tuple(self) -> tuple[int, int]:
        """The settings, in the order authserver/settings.py names them."""
        return self.code_seconds, self.interval_seconds
