"""This server's OAuth endpoints in ``rotating`` mode (issue 15, C2; authserver.endpoints): the
previous, current and next window's prefixes work for token, introspect, revoke and authorize; an
older or newer one, and the fixed paths, get the uniform 404. The clock is ``authserver.paths.now``."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import path

from authserver import endpoints, notfound, paths
from clients.discovery.services import discovery_capability_rotate
from tests.bench.test_machine_handler import app, wsgi_call  # noqa: F401 - the app fixture
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db

WINDOW = 3600
NOW = 1000 * WINDOW + 1800  # the middle of window 1000


@pytest.fixture
def rotating(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[int, str]:
    """Rotating mode at a fixed clock; the prefixes of windows 998..1002."""
    settings.ENDPOINTS = "rotating"
    endpoints.reset()  # prefixes from another test's key
    settings.ENDPOINTS_WINDOW_SECONDS = WINDOW
    monkeypatch.setattr(paths, "now", lambda: NOW)
    key = endpoints._key()
    return {w: paths.prefix(key, "oauth", w) for w in range(998, 1003)}


def _token(client: Any, svc: Any, secret: str, where: str) -> Any:
    return client.post(f"/{where}/token", {"grant_type": "client_credentials", "scope": "ai.infer"},
                       HTTP_AUTHORIZATION=basic_auth(svc.client_id, secret))


@pytest.mark.parametrize("window", [999, 1000, 1001])
def test_current_and_adjacent_windows_serve_every_endpoint(client, rotating, window, service_client,
                                                           resource_server, web_client):
    svc, secret = service_client
    rs, rs_secret = resource_server
    prefix = rotating[window]
    issued = _token(client, svc, secret, prefix)
    assert issued.status_code == 200, issued.content
    token = issued.json()["access_token"]
    active = client.post(f"/{prefix}/introspect", {"token": token}, HTTP_AUTHORIZATION=basic_auth(rs.client_id, rs_secret))
    assert active.status_code == 200 and active.json()["active"] is True
    revoked = client.post(f"/{prefix}/revoke", {"token": token}, HTTP_AUTHORIZATION=basic_auth(svc.client_id, secret))
    assert revoked.status_code == 200
    app_, _ = web_client
    authorize = client.get(f"/{prefix}/authorize", {"client_id": app_.client_id, "response_type": "code"})
    assert authorize.status_code == 302 and "/accounts/login/" in authorize["Location"]  # anonymous: sign in first
    assert f"/{prefix}/authorize" in authorize["Location"]  # ...and come back to the same rotating URL


@pytest.mark.parametrize("window", [998, 1002])
@pytest.mark.parametrize("endpoint", ["token", "introspect", "revoke", "authorize"])
def test_older_and_newer_windows_are_the_uniform_404(client, rotating, window, endpoint, service_client):
    svc, secret = service_client
    answer = client.post(f"/{rotating[window]}/{endpoint}", {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic_auth(svc.client_id, secret))
    assert answer.status_code == 404 and answer.content == notfound.BODY


def test_the_window_moves_with_the_clock(client, rotating, service_client, monkeypatch):
    svc, secret = service_client
    assert _token(client, svc, secret, rotating[1001]).status_code == 200
    monkeypatch.setattr(paths, "now", lambda: NOW + 3 * WINDOW)  # window 1003: 1001 is two windows old
    assert _token(client, svc, secret, rotating[1001]).content == notfound.BODY
    monkeypatch.setattr(paths, "now", lambda: 1002 * WINDOW - 1)  # the last second of window 1001
    assert _token(client, svc, secret, rotating[1000]).status_code == 200
    assert _token(client, svc, secret, rotating[1002]).status_code == 200


@pytest.mark.parametrize("fixed", ["/oauth/token", "/oauth/introspect", "/oauth/revoke", "/oauth/authorize",
                                   "/.well-known/oauth-authorization-server"])
def test_fixed_paths_are_the_uniform_404_in_rotating_mode(client, rotating, fixed):
    for method in (client.get, client.post):
        answer = method(fixed)
        assert answer.status_code == 404 and answer.content == notfound.BODY


def test_fixed_mode_is_unchanged_and_rotating_paths_are_404(client, settings, service_client, monkeypatch):
    svc, secret = service_client
    assert settings.ENDPOINTS == "fixed"
    endpoints.reset()
    assert _token(client, svc, secret, "oauth").status_code == 200
    prefix = endpoints.accepted()[1]
    assert _token(client, svc, secret, prefix).content == notfound.BODY
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["token_endpoint"] == f"{settings.ISSUER}/oauth/token"
    assert "endpoints_valid_until" not in metadata


def test_the_metadata_names_the_current_window_and_when_it_ends(client, rotating, service_client, settings):
    svc, _ = service_client
    _, capability = discovery_capability_rotate(client=svc, actor="test")
    metadata = client.get(f"/d/{capability}").json()
    issuer = settings.ISSUER
    assert metadata["issuer"] == issuer
    assert metadata["token_endpoint"] == f"{issuer}/{rotating[1000]}/token"
    assert metadata["introspection_endpoint"] == f"{issuer}/{rotating[1000]}/introspect"
    assert metadata["revocation_endpoint"] == f"{issuer}/{rotating[1000]}/revoke"
    assert metadata["authorization_endpoint"] == f"{issuer}/{rotating[1000]}/authorize"
    assert metadata["endpoints_valid_until"] == 1002 * WINDOW  # the end of the next window
    assert endpoints.url("token") == metadata["token_endpoint"]


def test_the_lean_handler_serves_rotating_machine_paths(app, rotating, service_client, resource_server):  # noqa: F811
    svc, secret = service_client
    rs, rs_secret = resource_server
    status, _, body = wsgi_call(app, f"/{rotating[1000]}/token", "grant_type=client_credentials&scope=ai.infer",
                                basic_auth(svc.client_id, secret))
    assert status == 200, body
    assert app.machine is not None and endpoints.split(f"/{rotating[1000]}/token") == (rotating[1000], "token")
    status, _, body = wsgi_call(app, f"/{rotating[998]}/introspect", "token=x", basic_auth(rs.client_id, rs_secret))
    assert status == 404 and body == notfound.BODY


def test_an_endpoint_added_later_is_mounted_both_ways():
    def view(request: Any) -> Any:
        return None

    mounted = endpoints.mount([path("oauth/new-thing", view, name="new-thing"), path("other", view, name="other")])
    routes = [str(p.pattern) for p in mounted]
    assert routes == ["oauth/new-thing", "other", "<oauthprefix:endpoint_prefix>/new-thing"]
    assert [p.name for p in mounted] == ["new-thing", "other", "new-thing"]


def test_prefixes_are_computed_once_per_window(rotating, monkeypatch):
    first = endpoints.accepted()
    calls: list[int] = []
    real = paths.prefix
    monkeypatch.setattr(paths, "prefix", lambda *a: calls.append(1) or real(*a))
    assert endpoints.accepted() == first and calls == []
    assert first == (rotating[999], rotating[1000], rotating[1001])
