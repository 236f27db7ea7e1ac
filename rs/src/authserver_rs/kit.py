"""The resource server's verifier: cache, introspection, pushed revocations and path aliases in one object.

One :class:`ResourceServer` per process, shared by every request (the integrations in
:mod:`authserver_rs.wsgi`, :mod:`authserver_rs.asgi`, :mod:`authserver_rs.django` and
:mod:`authserver_rs.fastapi` call it). A request's credential is served from the cache only when the
answer was cached under the rule of :mod:`authserver_rs.stream`; otherwise it is introspected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections.abc import Callable

import httpx

from authserver_rs.aliases import FetchNeeded, PathAliases, Routed
from authserver_rs.cache import Answer, AnswerCache, Entry, digest
from authserver_rs.config import Config
from authserver_rs.endpoints import EndpointDirectory
from authserver_rs.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    NoCredential,
    NotFound,
    RateLimited,
    Refusal,
    Unavailable,
)
from authserver_rs.introspection import Introspector
from authserver_rs.principal import Principal
from authserver_rs.resource_metadata import ResourceMetadata, is_well_known
from authserver_rs.rfc6750 import HttpAnswer, answer, metadata_document, method_not_allowed, not_found, unavailable
from authserver_rs.stream import RevocationConsumer


def bearer_credential(authorization: str | None) -> str:
    """The credential of an ``Authorization: Bearer`` header (RFC 6750 §2.1)."""
    if not authorization:
        raise NoCredential()
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise NoCredential()  # another scheme: no bearer credential was sent (§3.1)
    credential = credential.strip()
    if not credential or " " in credential or len(credential) > 4096:
        raise InvalidRequest()
    return credential


class ResourceServer:
    def __init__(self, config: Config, *, transport: httpx.BaseTransport | None = None,
                 async_transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        verify: ssl.SSLContext | bool = config.verify_tls
        if config.ca_file:
            verify = ssl.create_default_context(cafile=config.ca_file)
        auth = httpx.BasicAuth(config.client_id, config.client_secret)
        timeout = httpx.Timeout(config.timeout, connect=config.connect_timeout)
        limits = httpx.Limits(max_connections=config.max_connections,
                              max_keepalive_connections=config.max_connections)
        self.http = httpx.Client(auth=auth, verify=verify, timeout=timeout, limits=limits, transport=transport)
        # The stream's reads time out after stream_grace: a silent stream is a lost one.
        self._stream_http = httpx.Client(auth=auth, verify=verify, transport=transport,
                                         timeout=httpx.Timeout(config.stream_grace, connect=config.connect_timeout))

        def async_client() -> httpx.AsyncClient:
            return httpx.AsyncClient(auth=auth, verify=verify, timeout=timeout, limits=limits,
                                     transport=async_transport)

        self.cache = AnswerCache(max_entries=config.cache_size)
        self.endpoints = EndpointDirectory(config, self.http, clock)
        self.introspector = Introspector(self.endpoints, self.http, async_client)
        self.stream = RevocationConsumer(config, self.cache, self.endpoints, self._stream_http, monotonic=monotonic)
        self.aliases = PathAliases(self.endpoints, self.http, refetch_interval=config.key_refetch_interval,
                                   clock=clock, monotonic=monotonic)
        self.metadata = ResourceMetadata(config, self.endpoints, self.http, clock, monotonic)
        self._proxies = config.proxy_networks

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the revocation consumer (also done on first use)."""
        if self.config.revocation_stream:
            self.stream.start()

    def close(self) -> None:
        self.stream.stop()
        self.http.close()
        self._stream_http.close()

    async def aclose(self) -> None:
        await self.introspector.aclose()
        await asyncio.to_thread(self.close)

    # -- the caller's address ------------------------------------------------------------------
    def client_ip(self, peer: str | None, forwarded: str | None = None) -> str | None:
        """The peer's address, or the configured header's last entry when the peer is a trusted proxy."""
        if not (self.config.client_ip_header and forwarded and peer):
            return peer
        try:
            trusted = any(ipaddress.ip_address(peer) in network for network in self._proxies)
        except ValueError:
            return peer
        if not trusted:
            return peer
        candidate = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return peer

    # -- aliases -------------------------------------------------------------------------------
    def route(self, path: str) -> Routed:
        """The path the application sees; raises NotFound for an unknown alias."""
        if not self.config.rotating_paths:
            return Routed(None, path)
        return self.aliases.route(path)

    async def route_async(self, path: str) -> Routed:
        if not self.config.rotating_paths:
            return Routed(None, path)
        try:
            return self.aliases.route(path, fetch=False)  # an HMAC or three, in the event loop
        except FetchNeeded:
            return await asyncio.to_thread(self.aliases.route, path)  # a key fetch: off the loop

    # -- RFC 9728 protected-resource metadata ---------------------------------------------------
    def well_known(self, method: str, path: str) -> HttpAnswer | None:
        """The answer for a request to the metadata's well-known URLs, or None for any other path.

        Checked before aliases and credentials: the document is public (RFC 9728 §3) and lives at
        the host's root, under no rotating alias."""
        if not (self.metadata.enabled and is_well_known(path)):
            return None
        try:
            if not self.metadata.serves(path):
                return not_found()
        except Unavailable:
            return unavailable()
        if method not in ("GET", "HEAD"):
            return method_not_allowed()
        reply = metadata_document(self.metadata.body)
        return HttpAnswer(reply.status, reply.headers, b"" if method == "HEAD" else reply.body)

    async def well_known_async(self, method: str, path: str) -> HttpAnswer | None:
        if not (self.metadata.enabled and is_well_known(path)):
            return None
        if self.metadata.cached() is not None:
            return self.well_known(method, path)
        return await asyncio.to_thread(self.well_known, method, path)  # a fetch: off the loop

    def refusal(self, refusal: Refusal) -> HttpAnswer:
        """RFC 6750 §3's answer, naming the metadata URL in 401 and 403 challenges (RFC 9728 §5.1)."""
        named = self.metadata.challenge_url() if refusal.status in (401, 403) and self.metadata.enabled else None
        return answer(refusal, realm=self.config.realm, resource_metadata=named)

    async def refusal_async(self, refusal: Refusal) -> HttpAnswer:
        if refusal.status not in (401, 403) or not self.metadata.enabled or self.metadata.cached() is not None:
            return self.refusal(refusal)
        return await asyncio.to_thread(self.refusal, refusal)

    # -- verification --------------------------------------------------------------------------
    def _positive_allowed(self) -> bool:
        if not self.config.revocation_stream:
            return True  # no pushed revocations: the operator chose a TTL-bounded cache
        self.stream.start()
        return self.stream.healthy()

    def _cached(self, key: str, client_ip: str | None) -> tuple[Answer | None, int, bool]:
        allowed = self._positive_allowed()
        epoch = self.cache.epoch  # read before asking the server (the race in authserver_rs.cache)
        hit = self.cache.get(key, client_ip=client_ip, now=self._clock(), positive_allowed=allowed)
        return hit, epoch, allowed

    def _store(self, key: str, answer: Answer, client_ip: str | None, *, epoch: int, allowed_before: bool) -> None:
        now = self._clock()
        if answer.get("active"):
            # Only while the stream was healthy both when asking and now; never answers the server
            # must count per use (a key with a rate limit or quota): each request reaches it.
            if not (allowed_before and self._positive_allowed()) or "rate_limit" in answer or "quota" in answer:
                return
            deadline = now + self.config.cache_ttl
            exp = answer.get("exp")
            if isinstance(exp, int | float):
                deadline = min(deadline, float(exp))
            bound = answer.get("token_type") == "api_key"  # API-key answers depend on the address
        else:
            ttl = self.config.negative_ttl
            if answer.get("rate_limited"):
                ttl = min(ttl, float(answer.get("retry_after") or 1))
            deadline, bound = now + ttl, True
        if deadline > now:
            self.cache.put_if_unchanged(key, Entry(answer, deadline, client_ip, bound), epoch=epoch)

    def authenticate(self, credential: str, client_ip: str | None) -> Principal:
        key = digest(credential)
        answer, epoch, allowed = self._cached(key, client_ip)
        if answer is None:
            answer = self.introspector.introspect(credential, client_ip)
            self._store(key, answer, client_ip, epoch=epoch, allowed_before=allowed)
        return _verdict(answer)

    async def authenticate_async(self, credential: str, client_ip: str | None) -> Principal:
        key = digest(credential)
        answer, epoch, allowed = self._cached(key, client_ip)
        if answer is None:
            answer = await self.introspector.introspect_async(credential, client_ip)
            self._store(key, answer, client_ip, epoch=epoch, allowed_before=allowed)
        return _verdict(answer)

    # -- one request ---------------------------------------------------------------------------
    def authorize(self, routed: Routed, authorization: str | None, client_ip: str | None,
                  scopes: tuple[str, ...] = ()) -> Principal:
        try:
            principal = self.authenticate(bearer_credential(authorization), client_ip)
        except (NoCredential, InvalidRequest, InvalidToken):
            if routed.per_client:
                raise NotFound() from None  # an alias no client can be found for is an unknown path
            raise
        return self._checked(routed, principal, scopes)

    async def authorize_async(self, routed: Routed, authorization: str | None, client_ip: str | None,
                              scopes: tuple[str, ...] = ()) -> Principal:
        try:
            principal = await self.authenticate_async(bearer_credential(authorization), client_ip)
        except (NoCredential, InvalidRequest, InvalidToken):
            if routed.per_client:
                raise NotFound() from None
            raise
        try:
            return self._checked(routed, principal, scopes, fetch=False)
        except FetchNeeded:
            return await asyncio.to_thread(self._checked, routed, principal, scopes)

    def _checked(self, routed: Routed, principal: Principal, scopes: tuple[str, ...], *,
                 fetch: bool = True) -> Principal:
        if routed.per_client:
            self.aliases.check_client(routed, principal.client_id or "", fetch=fetch)
        require_scopes(principal, scopes)
        return principal


def require_scopes(principal: Principal, scopes: tuple[str, ...]) -> None:
    if scopes and not principal.has_scopes(*scopes):
        raise InsufficientScope(scopes)


def _verdict(answer: Answer) -> Principal:
    if answer.get("active") is True:
        return Principal.from_answer(answer)
    if answer.get("rate_limited"):
        retry_after = answer.get("retry_after")
        raise RateLimited(max(1, int(retry_after)) if isinstance(retry_after, int | float) else 1)
    raise InvalidToken()
