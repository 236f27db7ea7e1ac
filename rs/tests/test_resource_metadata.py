"""RFC 9728: the kit serves this API's protected-resource metadata and names it in refusals (issue 16)."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from authserver_rs.asgi import ResourceServerMiddleware as AsgiMiddleware
from authserver_rs.fastapi import install, require_scopes
from authserver_rs.resource_metadata import metadata_url, well_known_path
from authserver_rs.wsgi import ResourceServerMiddleware

from .conftest import active
from .fake_server import ISSUER
from .test_aliases import key_body
from .test_wsgi import app, call

ENDPOINT = f"{ISSUER}/oauth/resource-metadata"
NAMED = 'resource_metadata="https://api.test/.well-known/oauth-protected-resource/mcp"'


@pytest.mark.parametrize(("resource", "path", "url"), [
    ("https://api.test", "/.well-known/oauth-protected-resource", "https://api.test/.well-known/oauth-protected-resource"),
    ("https://api.test/", "/.well-known/oauth-protected-resource", "https://api.test/.well-known/oauth-protected-resource"),
    ("https://api.test/mcp", "/.well-known/oauth-protected-resource/mcp",
     "https://api.test/.well-known/oauth-protected-resource/mcp"),
    ("https://api.test/v1/mcp/", "/.well-known/oauth-protected-resource/v1/mcp",
     "https://api.test/.well-known/oauth-protected-resource/v1/mcp"),
    ("https://api.test:8443/mcp", "/.well-known/oauth-protected-resource/mcp",
     "https://api.test:8443/.well-known/oauth-protected-resource/mcp"),
])
def test_the_path_inserted_url_of_rfc9728_section_3_1(resource, path, url):
    assert well_known_path(resource) == path
    assert metadata_url(resource) == url


@pytest.fixture
def wsgi(fake, make_kit):
    fake.answers.update({"at_read": active(scope="ai.read")})
    kit = make_kit(revocation_stream=False, realm="ai", resource_metadata_endpoint=ENDPOINT)
    return ResourceServerMiddleware(app, kit, scopes=("ai.infer",))


@pytest.mark.parametrize("path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"])
def test_the_document_is_served_at_both_urls_without_a_credential(wsgi, fake, path):
    status, headers, body = call(wsgi, path)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(body) == fake.resource_metadata
    assert fake.introspections == []  # no credential asked for, none checked


def test_the_document_is_fetched_once_and_cached(wsgi, fake, clock):
    for _ in range(5):
        call(wsgi, "/.well-known/oauth-protected-resource")
        call(wsgi, "/v1/infer")
    assert fake.resource_metadata_calls == 1
    clock.advance(3601)  # metadata_max_age
    call(wsgi, "/.well-known/oauth-protected-resource")
    assert fake.resource_metadata_calls == 2


@pytest.mark.parametrize(("authorization", "status", "challenge"), [
    (None, 401, f'Bearer realm="ai", {NAMED}'),
    ("Bearer at_unknown", 401, f'Bearer realm="ai", error="invalid_token", {NAMED}'),
    ("Bearer at_read", 403, f'Bearer realm="ai", error="insufficient_scope", scope="ai.infer", {NAMED}'),
    ("Bearer a b", 400, 'Bearer realm="ai", error="invalid_request"'),
])
def test_every_401_names_the_metadata_url(wsgi, authorization, status, challenge):
    got, headers, _ = call(wsgi, "/v1/infer", authorization)
    assert (got, headers["WWW-Authenticate"]) == (status, challenge)


@pytest.mark.parametrize(("path", "method", "status"), [
    ("/.well-known/oauth-protected-resource/other", "GET", 404),   # another resource's path: not ours
    ("/.well-known/oauth-protected-resourcex", "GET", None),       # not a well-known URL: the app's (401)
    ("/.well-known/oauth-protected-resource", "POST", 405),
    ("/.well-known/oauth-protected-resource", "HEAD", 200),
])
def test_only_get_and_head_at_exactly_the_two_urls(wsgi, path, method, status):
    got, headers, body = call(wsgi, path, REQUEST_METHOD=method)
    if status is None:
        assert got == 401
    else:
        assert got == status
    if method == "HEAD":
        assert body == b""


def test_a_server_without_the_document_fails_closed_and_401s_still_refuse(wsgi, fake, clock):
    fake.resource_metadata_status = 500
    assert call(wsgi, "/.well-known/oauth-protected-resource")[0] == 503
    status, headers, _ = call(wsgi, "/v1/infer")
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="ai"')
    calls = fake.resource_metadata_calls
    for _ in range(10):  # probes can't make the kit hammer the server: one try per key_refetch_interval
        call(wsgi, "/v1/infer")
    assert fake.resource_metadata_calls == calls
    fake.resource_metadata_status = 200
    clock.advance(31)
    assert call(wsgi, "/v1/infer")[1]["WWW-Authenticate"] == f'Bearer realm="ai", {NAMED}'


def test_a_failed_refresh_keeps_serving_the_last_document(wsgi, fake, clock):
    assert call(wsgi, "/.well-known/oauth-protected-resource")[0] == 200
    fake.unreachable = True
    clock.advance(3601)
    assert call(wsgi, "/.well-known/oauth-protected-resource")[0] == 200


def test_the_endpoint_comes_from_the_discovery_document(fake, make_kit):
    fake.metadata["resource_metadata_endpoint"] = ENDPOINT
    kit = make_kit(revocation_stream=False, introspection_endpoint=None, metadata_url=f"{ISSUER}/d/dc_x")
    status, headers, _ = call(ResourceServerMiddleware(app, kit), "/v1/infer")
    assert status == 401 and NAMED in headers["WWW-Authenticate"]


def test_without_an_endpoint_or_when_off_nothing_changes(fake, make_kit):
    plain = ResourceServerMiddleware(app, make_kit(revocation_stream=False))
    off = ResourceServerMiddleware(app, make_kit(revocation_stream=False, resource_metadata=False,
                                                 resource_metadata_endpoint=ENDPOINT))
    for middleware in (plain, off):
        assert call(middleware, "/v1/infer")[1]["WWW-Authenticate"] == 'Bearer realm="api"'
    assert call(plain, "/.well-known/oauth-protected-resource")[0] == 503  # on, but nothing to serve
    assert call(off, "/.well-known/oauth-protected-resource")[0] == 401  # off: the app's path like any other
    assert fake.resource_metadata_calls == 0


def test_the_well_known_urls_are_outside_the_rotating_aliases(fake, make_kit):
    fake.path_key = key_body()
    kit = make_kit(revocation_stream=False, rotating_paths=True, resource_metadata_endpoint=ENDPOINT)
    middleware = ResourceServerMiddleware(app, kit)
    assert call(middleware, "/.well-known/oauth-protected-resource/mcp")[0] == 200
    assert call(middleware, "/v1/infer")[0] == 404  # no alias: the bare 404 as before


def test_asgi_and_fastapi_serve_and_name_it(fake, make_kit):
    kit = make_kit(revocation_stream=False, resource_metadata_endpoint=ENDPOINT)
    api = FastAPI()
    install(api, kit)

    @api.get("/v1/data", dependencies=[Depends(require_scopes("ai.infer"))])
    def data() -> dict[str, bool]:
        return {"ok": True}

    client = TestClient(api)
    document = client.get("/.well-known/oauth-protected-resource/mcp")
    assert document.status_code == 200 and document.json()["resource"] == "https://api.test/mcp"
    assert client.post("/.well-known/oauth-protected-resource").status_code == 405
    refused = client.get("/v1/data")  # the dependency's refusal names it too
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == f'Bearer realm="api", {NAMED}'

    async def inner(scope, receive, send):
        raise AssertionError("not reached")

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    kit2 = make_kit(revocation_stream=False, resource_metadata_endpoint=ENDPOINT, realm="ai")
    asyncio.run(AsgiMiddleware(inner, kit2)({"type": "http", "method": "GET", "path": "/v1/x", "headers": []},
                                            receive, send))
    headers = dict(sent[0]["headers"])
    assert sent[0]["status"] == 401 and headers[b"www-authenticate"].decode() == f'Bearer realm="ai", {NAMED}'
