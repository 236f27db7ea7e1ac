"""FastAPI (through the ASGI middleware) with TestClient."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from authserver_rs import Principal, paths
from authserver_rs.asgi import ResourceServerMiddleware
from authserver_rs.fastapi import install, require_scopes

from .conftest import active
from .test_aliases import WINDOW, key_body


def build(kit, **options) -> FastAPI:
    api = FastAPI()
    install(api, kit, **options)

    @api.get("/health")
    def health() -> dict:
        return {"ok": True}

    @api.post("/v1/infer")
    def infer(request: Request, principal: Annotated[Principal, Depends(require_scopes("ai.infer"))]) -> dict:
        return {"client_id": principal.client_id, "sub": principal.sub, "path": request.url.path,
                "same": request.state.principal is principal}

    return api


@pytest.fixture
def answers(fake):
    fake.answers.update({"at_read": active(scope="ai.read"), "at_infer": active(scope="ai.infer"),
                         "ak_limited": {"active": False, "rate_limited": True, "retry_after": 4}})
    return fake


def test_dependency_verifies_and_checks_scopes(answers, make_kit):
    client = TestClient(build(make_kit(revocation_stream=False, realm="ai")))
    assert client.get("/health").json() == {"ok": True}
    ok = client.post("/v1/infer", headers={"Authorization": "Bearer at_infer"})
    assert ok.status_code == 200 and ok.json()["client_id"] == "app-1" and ok.json()["same"]
    assert answers.introspections[-1]["client_ip"] == "testclient"
    cases = [(None, 401, 'Bearer realm="ai"'), ("Bearer at_no", 401, 'Bearer realm="ai", error="invalid_token"'),
             ("Bearer at_read", 403, 'Bearer realm="ai", error="insufficient_scope", scope="ai.infer"')]
    for authorization, status, challenge in cases:
        response = client.post("/v1/infer", headers={"Authorization": authorization} if authorization else {})
        assert (response.status_code, response.headers["www-authenticate"]) == (status, challenge)
    limited = client.post("/v1/infer", headers={"Authorization": "Bearer ak_limited"})
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "4")
    answers.unreachable = True
    assert client.post("/v1/infer", headers={"Authorization": "Bearer at_other"}).status_code == 503


def test_rotating_alias_with_fastapi(answers, make_kit, clock):
    answers.path_key = key_body()
    client = TestClient(build(make_kit(revocation_stream=False, rotating_paths=True)))
    current = paths.prefix(bytes(range(32)), "rs", paths.window_of(clock.now, WINDOW))
    response = client.post(f"/{current}/v1/infer", headers={"Authorization": "Bearer at_infer"})
    assert response.status_code == 200
    assert client.get(f"/{current}/health").json() == {"ok": True}
    for path in ("/v1/infer", "/aaaaaaaaaaaaaaaa/v1/infer"):
        refused = client.post(path, headers={"Authorization": "Bearer at_infer"})
        assert (refused.status_code, refused.content) == (404, b"")


def test_asgi_middleware_verifying_every_request(answers, make_kit):
    async def app(scope, receive, send):
        principal = scope["state"]["principal"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": (principal.client_id if principal else "-").encode()})

    kit = make_kit(revocation_stream=False)
    client = TestClient(ResourceServerMiddleware(app, kit, scopes=("ai.infer",), exempt_paths=frozenset({"/health"})))
    assert client.get("/x", headers={"Authorization": "Bearer at_infer"}).text == "app-1"
    assert client.get("/health").text == "-"
    assert client.get("/x").status_code == 401
    assert client.get("/x", headers={"Authorization": "Bearer at_read"}).status_code == 403


def test_per_client_alias_with_fastapi(answers, make_kit, clock):
    answers.path_key = key_body(per_client=True)
    answers.answers["at_other"] = active("app-2", scope="ai.infer")
    client = TestClient(build(make_kit(revocation_stream=False, rotating_paths=True)))
    mine = paths.prefix(bytes(range(32)), "rs|app-1", paths.window_of(clock.now, WINDOW))
    ok = client.post(f"/{mine}/v1/infer", headers={"Authorization": "Bearer at_infer"})
    assert (ok.status_code, ok.json()["client_id"]) == (200, "app-1")
    for headers in ({"Authorization": "Bearer at_other"}, {"Authorization": "Bearer at_nope"}, {}):
        refused = client.post(f"/{mine}/v1/infer", headers=headers)
        assert (refused.status_code, refused.content) == (404, b"")
    limited = client.post(f"/{mine}/v1/infer", headers={"Authorization": "Bearer ak_limited"})
    assert limited.status_code == 429
