"""The kit's configuration: one frozen dataclass, validated once."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Config:
    """How this resource server talks to the authorization server.

    Endpoints come either explicitly (``introspection_endpoint`` and, for pushed revocations and
    rotating aliases, ``revocation_events_endpoint`` / ``path_key_endpoint``) or from
    ``metadata_url``: the per-client discovery URL (``/d/dc_…``) whose RFC 8414 document names
    them, refreshed before its ``endpoints_valid_until``.
    """

    client_id: str
    client_secret: str = field(repr=False)
    metadata_url: str | None = None
    introspection_endpoint: str | None = None
    revocation_events_endpoint: str | None = None
    path_key_endpoint: str | None = None
    # RFC 9728: serve this API's protected-resource metadata (fetched from the server's
    # resource_metadata_endpoint, named by the discovery document or given here) at
    # /.well-known/oauth-protected-resource[/<audience path>], and name it in every 401/403.
    resource_metadata: bool = True
    resource_metadata_endpoint: str | None = None
    realm: str = "api"
    # Cache (seconds): a positive answer is kept until min(now + cache_ttl, its exp).
    cache_ttl: float = 60.0
    cache_size: int = 10_000
    negative_ttl: float = 2.0
    # Pushed revocations (C7). Cached answers are served only while the stream is connected, caught
    # up, and heard from (event or heartbeat) within stream_grace seconds (README, "The rule").
    revocation_stream: bool = True
    stream_grace: float = 3.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    # Rotating path aliases (C6): verify the first path segment when the server says rotating.
    rotating_paths: bool = False
    key_refetch_interval: float = 30.0
    # Refresh metadata this long before endpoints_valid_until (or every metadata_max_age without it).
    metadata_refresh_margin: float = 600.0
    metadata_max_age: float = 3600.0
    # HTTP: TLS verification is on; ca_file replaces the system's trust store.
    verify_tls: bool = True
    ca_file: str | None = None
    connect_timeout: float = 2.0
    timeout: float = 5.0
    max_connections: int = 20
    # The caller's address: the peer, or client_ip_header's last value when the peer is a trusted proxy.
    client_ip_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.metadata_url and not self.introspection_endpoint:
            raise ValueError("set metadata_url or introspection_endpoint")
        if self.stream_grace <= 1.0:
            raise ValueError("stream_grace must exceed the server's 1 s heartbeat")
        if self.cache_size < 1 or self.cache_ttl < 0 or self.negative_ttl < 0:
            raise ValueError("cache_size must be >= 1, cache_ttl and negative_ttl >= 0")
        for network in self.trusted_proxies:
            ipaddress.ip_network(network, strict=False)
        if self.client_ip_header and not self.trusted_proxies:
            raise ValueError("client_ip_header needs trusted_proxies (whose header to believe)")

    @property
    def proxy_networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.trusted_proxies)
