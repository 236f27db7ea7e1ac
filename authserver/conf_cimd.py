"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; docs/client-metadata-documents.md).

A section of :class:`authserver.conf.AuthServerConfig`, kept here so authserver/conf.py stays short.
The fetcher's fixed bounds (time, size, cache ages) are DOT's ``CIMD_*`` settings, set in
authserver/settings_oauth.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from authserver.conf_parsers import _bool, _one_of, _path, var


@dataclass(frozen=True, kw_only=True)
class CimdConfig:
    """``on``: a ``client_id`` that is an https URL is resolved by fetching that document through the
    safe fetcher (authserver.oauth.cimd). The fetcher never reaches loopback, private, link-local or
    otherwise non-global addresses unless ``allow_private`` (tests, labs); ``ca_file`` is a PEM bundle
    it trusts besides the system's (a lab's or a test's own CA)."""

    mode: str = var("AUTHSERVER_CIMD", "off", _one_of("off", "on"), flat="CIMD")
    allow_private: bool = var("AUTHSERVER_CIMD_ALLOW_PRIVATE", False, _bool, flat="CIMD_ALLOW_PRIVATE")
    ca_file: Path | None = var("AUTHSERVER_CIMD_CA_FILE", None, _path, flat="CIMD_CA_FILE")

    def as_tuple(self) -> tuple[str, bool, Path | None]:
        """The settings, in the order authserver/settings.py names them."""
        return self.mode, self.allow_private, self.ca_file
