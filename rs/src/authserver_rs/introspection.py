"""RFC 7662 introspection over pooled connections, authenticated as the resource server (HTTP Basic).

Fail closed: an unreachable server, a timeout, a 5xx, or any answer that is not an RFC 7662
document raises :class:`~authserver_rs.errors.Unavailable` (the request gets 503, never served).
A 404 means the endpoint URL rotated away: the endpoints are looked up again and the call retried once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from authserver_rs.endpoints import EndpointDirectory
from authserver_rs.errors import Unavailable

Answer = dict[str, Any]


def _form(credential: str, client_ip: str | None) -> dict[str, str]:
    form = {"token": credential}
    if client_ip:
        form["client_ip"] = client_ip
    return form


def _answer(response: httpx.Response) -> Answer:
    if response.status_code != 200:
        raise Unavailable(f"introspection answered {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise Unavailable("introspection answered no JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
        raise Unavailable("introspection answered no RFC 7662 document")
    return body


class Introspector:
    def __init__(self, endpoints: EndpointDirectory, client: httpx.Client,
                 async_client_factory: Any) -> None:
        self._endpoints = endpoints
        self._client = client
        self._async_factory = async_client_factory
        self._async_clients: dict[int, httpx.AsyncClient] = {}
        self.calls = 0

    def introspect(self, credential: str, client_ip: str | None) -> Answer:
        for attempt in (0, 1):
            url = self._endpoints.get(force=attempt == 1).introspection
            self.calls += 1
            try:
                response = self._client.post(url, data=_form(credential, client_ip),
                                             headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise Unavailable("introspection unreachable") from exc
            if response.status_code != 404 or attempt == 1:
                return _answer(response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def introspect_async(self, credential: str, client_ip: str | None) -> Answer:
        client = self._async_client()
        for attempt in (0, 1):
            endpoints = self._endpoints.fresh() if attempt == 0 else None
            if endpoints is None:
                endpoints = await asyncio.to_thread(self._endpoints.get, force=attempt == 1)
            self.calls += 1
            try:
                response = await client.post(endpoints.introspection, data=_form(credential, client_ip),
                                             headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise Unavailable("introspection unreachable") from exc
            if response.status_code != 404 or attempt == 1:
                return _answer(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _async_client(self) -> httpx.AsyncClient:
        # An AsyncClient's pool belongs to one event loop: one client per running loop.
        loop = id(asyncio.get_running_loop())
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = self._async_factory()
        return client

    async def aclose(self) -> None:
        clients, self._async_clients = list(self._async_clients.values()), {}
        for client in clients:
            await client.aclose()
