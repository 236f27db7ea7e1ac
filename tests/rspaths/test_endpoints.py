"""``POST /oauth/path-key`` and ``GET /oauth/discovery`` (issue 15, section B; docs/rotating-paths.md)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from authserver import credentials, paths
from authserver.audit.models import AuditEvent
from clients.resource_paths.models import key_bytes
from clients.resource_paths.services import path_key_rotate, resource_paths_update
from keys.services import api_key_create
from tests.factories import RS_AUDIENCE, make_client, make_resource_server
from tests.helpers import basic_auth, client_credentials

pytestmark = pytest.mark.django_db

PATH_KEY_URL = "/oauth/path-key"
DISCOVERY_URL = "/oauth/discovery"
PUBLIC_URL = "https://chat.example.test/v1"
NOW = 1_800_000_000.0
WINDOW = 3600


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    state = {"now": NOW}
    monkeypatch.setattr(paths, "now", lambda: state["now"])
    return state


@pytest.fixture
def rotating(resource_server: Any) -> Any:
    rs, _ = resource_server
    return resource_paths_update(client=rs, rotating_paths=True, public_url=PUBLIC_URL, window_seconds=WINDOW,
                                 actor="test")


def _fetch(client: Any, client_id: str, secret: str) -> Any:
    return client.post(PATH_KEY_URL, HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def _discover(client: Any, credential: str, audience: str = RS_AUDIENCE) -> Any:
    return client.get(DISCOVERY_URL, {"audience": audience}, HTTP_AUTHORIZATION=f"Bearer {credential}")


def _token(client: Any, app: Any, secret: str) -> str:
    response = client_credentials(client, app, secret)
    assert response.status_code == 200, response.content
    return str(response.json()["access_token"])


def _alias(key: str, label: str, window: int) -> str:
    return paths.prefix(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)), label, window)


# -- POST /oauth/path-key ------------------------------------------------------------------------------
def test_the_resource_server_fetches_its_key_and_settings(client, resource_server, rotating):
    rs, secret = resource_server
    response = _fetch(client, rs.client_id, secret)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"rotating", "key", "version", "window_seconds", "per_client", "public_url"}
    assert body["rotating"] is True and body["version"] == 1 and body["window_seconds"] == WINDOW
    assert body["per_client"] is False and body["public_url"] == PUBLIC_URL
    assert len(base64.urlsafe_b64decode(body["key"] + "=")) == 32 and "=" not in body["key"]
    event = AuditEvent.objects.get(event="resource_server.path_key_fetched")
    assert event.actor == f"client:{rs.client_id}" and event.details == {"key_version": 1}


def test_the_form_body_authenticates_too(client, resource_server, rotating):
    rs, secret = resource_server
    response = client.post(PATH_KEY_URL, {"client_id": rs.client_id, "client_secret": secret})
    assert response.status_code == 200 and response.json()["rotating"] is True


def test_with_rotating_paths_off_only_that_is_said(client, resource_server):
    rs, secret = resource_server
    assert _fetch(client, rs.client_id, secret).json() == {"rotating": False}
    resource_paths_update(client=rs, public_url=PUBLIC_URL, actor="test")  # settings, but off
    assert _fetch(client, rs.client_id, secret).json() == {"rotating": False}
    assert not AuditEvent.objects.filter(event="resource_server.path_key_fetched").exists()


def _wrong(secret: str) -> str:
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")


REFUSED = [
    pytest.param(lambda rs, s, app, a: {"HTTP_AUTHORIZATION": basic_auth(rs.client_id, _wrong(s))}, True,
                 id="wrong-secret"),
    pytest.param(lambda rs, s, app, a: {"HTTP_AUTHORIZATION": basic_auth(rs.client_id, "password")}, True,
                 id="malformed-secret"),
    pytest.param(lambda rs, s, app, a: {"HTTP_AUTHORIZATION": basic_auth(app.client_id, a)}, True,
                 id="a-client-that-is-no-resource-server"),
    pytest.param(lambda rs, s, app, a: {"HTTP_AUTHORIZATION": basic_auth("no-such-client", s)}, True,
                 id="unknown-client"),
    pytest.param(lambda rs, s, app, a: {"HTTP_AUTHORIZATION": basic_auth("a\x00b", s)}, False, id="nul-in-client-id"),
    pytest.param(lambda rs, s, app, a: {"HTTP_AUTHORIZATION": basic_auth("x" * 101, s)}, False, id="overlong-client-id"),
    pytest.param(lambda rs, s, app, a: {}, False, id="no-credentials"),
    pytest.param(lambda rs, s, app, a: {"HTTP_AUTHORIZATION": "Basic !!!"}, False, id="garbage-basic"),
    pytest.param(lambda rs, s, app, a: {"HTTP_AUTHORIZATION": "Bearer " + s}, False, id="bearer-scheme"),
]


@pytest.mark.parametrize(("headers", "names_a_client"), REFUSED)
def test_refusals_are_401_and_audited(client, resource_server, service_client, rotating, headers, names_a_client):
    rs, secret = resource_server
    app, app_secret = service_client
    response = client.post(PATH_KEY_URL, **headers(rs, secret, app, app_secret))
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}
    assert response["WWW-Authenticate"].startswith("Basic")
    assert b"key" not in response.content
    refused = AuditEvent.objects.get(event="resource_server.path_key_refused")
    assert refused.outcome == "failure"
    assert refused.subject.startswith("client:") == names_a_client
    assert not AuditEvent.objects.filter(event="resource_server.path_key_fetched").exists()


def test_refusals_spend_the_failure_budget(client, resource_server, rotating):
    rs, secret = resource_server
    statuses = [_fetch(client, rs.client_id, _wrong(secret)).status_code for _ in range(21)]
    assert statuses == [401] * 20 + [429]
    assert _fetch(client, rs.client_id, secret).status_code == 429  # its own budget is spent: even the right one
    # One audit event per refusal within the budget; past it, the limiter's one event per window.
    assert AuditEvent.objects.filter(event="resource_server.path_key_refused").count() == 20
    statuses = [_fetch(client, f"nobody-{i}", _wrong(secret)).status_code for i in range(10)]
    assert statuses == [429] * 10
    assert AuditEvent.objects.filter(event="resource_server.path_key_refused").count() == 20


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_post_only(client, method):
    response = getattr(client, method)(PATH_KEY_URL)
    assert response.status_code == 405 and response["Allow"] == "POST"


# -- GET /oauth/discovery ------------------------------------------------------------------------------
def test_discovery_with_an_access_token(client, resource_server, service_client, rotating):
    rs, secret = resource_server
    app, app_secret = service_client
    response = _discover(client, _token(client, app, app_secret))
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    key = _fetch(client, rs.client_id, secret).json()["key"]
    window = int(NOW // WINDOW)
    assert response.json() == {
        "audience": RS_AUDIENCE, "rotating": True, "window_seconds": WINDOW,
        "url": f"{PUBLIC_URL}/{_alias(key, 'rs', window)}/", "valid_until": (window + 2) * WINDOW,
        "next_url": f"{PUBLIC_URL}/{_alias(key, 'rs', window + 1)}/", "next_valid_until": (window + 3) * WINDOW,
    }


def test_discovery_with_an_api_key(client, resource_server, service_client, rotating):
    app, _ = service_client
    _, key = api_key_create(client=app, name="k", audiences=[RS_AUDIENCE], actor="test")
    response = _discover(client, key)
    assert response.status_code == 200
    assert response.json()["url"].startswith(PUBLIC_URL + "/")


def test_the_url_stays_valid_through_the_next_window(client, resource_server, service_client, rotating, clock):
    app, app_secret = service_client
    token = _token(client, app, app_secret)
    first = _discover(client, token).json()
    clock["now"] = NOW + WINDOW
    second = _discover(client, token).json()
    assert second["url"] == first["next_url"] and second["valid_until"] == first["next_valid_until"]


def test_a_url_is_accepted_until_valid_until_and_not_after(client, resource_server, service_client, rotating, clock):
    """What the resource server accepts (previous, current, next: paths.accepted_prefixes with the
    fetched key) agrees with what callers are told (valid_until)."""
    rs, secret = resource_server
    app, app_secret = service_client
    key = key_bytes(_fetch(client, rs.client_id, secret).json()["key"])
    told = _discover(client, _token(client, app, app_secret)).json()
    alias = told["url"].removeprefix(PUBLIC_URL + "/").strip("/")
    for moment in (NOW, told["valid_until"] - 1):
        clock["now"] = moment
        assert alias in paths.accepted_prefixes(key, "rs", WINDOW)
    clock["now"] = told["valid_until"]
    assert alias not in paths.accepted_prefixes(key, "rs", WINDOW)


def test_per_client_aliases_differ_per_client(client, resource_server, service_client):
    rs, _ = resource_server
    resource_paths_update(client=rs, rotating_paths=True, public_url=PUBLIC_URL, per_client_aliases=True,
                          actor="test")
    app, app_secret = service_client
    other, other_secret = make_client(name="other")
    mine = _discover(client, _token(client, app, app_secret)).json()
    theirs = _discover(client, _token(client, other, other_secret)).json()
    assert mine["url"] != theirs["url"] and mine["next_url"] != theirs["next_url"]
    key = rs.resource_paths.path_key
    window = paths.current_window(mine["window_seconds"])
    assert mine["url"] == f"{PUBLIC_URL}/{_alias(key, 'rs|' + app.client_id, window)}/"


def test_a_key_rotation_changes_the_aliases_at_once(client, resource_server, service_client, rotating):
    rs, secret = resource_server
    app, app_secret = service_client
    token = _token(client, app, app_secret)
    before = _discover(client, token).json()
    path_key_rotate(client=rs, actor="test")
    after = _discover(client, token).json()
    assert after["url"] != before["url"] and after["next_url"] != before["next_url"]
    fetched = _fetch(client, rs.client_id, secret).json()
    assert fetched["version"] == 2
    assert after["url"] == f"{PUBLIC_URL}/{_alias(fetched['key'], 'rs', int(NOW // WINDOW))}/"


def test_with_rotating_paths_off_the_fixed_url(client, resource_server, service_client):
    app, app_secret = service_client
    token = _token(client, app, app_secret)
    assert _discover(client, token).json() == {"audience": RS_AUDIENCE, "rotating": False, "url": RS_AUDIENCE}
    rs, _ = resource_server
    resource_paths_update(client=rs, public_url=PUBLIC_URL, actor="test")
    assert _discover(client, token).json() == {"audience": RS_AUDIENCE, "rotating": False, "url": PUBLIC_URL}


def _refused_credentials(client: Any, app: Any, secret: str) -> dict[str, str]:
    token = _token(client, app, secret)
    return {
        "unknown-token": credentials.mint(credentials.ACCESS_TOKEN),
        "malformed": "at_not-a-token",
        "client-secret": secret,
        "other-audience": token,  # asked about below with an audience the token doesn't cover
    }


@pytest.mark.parametrize("case", ["unknown-token", "malformed", "client-secret", "other-audience", "revoked-key"])
def test_refused_credentials_are_one_generic_invalid_token(client, resource_server, service_client, rotating, case):
    make_resource_server("https://other.example.test")
    app, app_secret = service_client
    if case == "revoked-key":
        from keys.services import api_key_revoke

        row, credential = api_key_create(client=app, name="k", audiences=[RS_AUDIENCE], actor="test")
        api_key_revoke(key=row, actor="test")
    else:
        credential = _refused_credentials(client, app, app_secret)[case]
    audience = "https://other.example.test" if case == "other-audience" else RS_AUDIENCE
    response = _discover(client, credential, audience)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="discovery", error="invalid_token"'
    assert response.json() == {"error": "invalid_token"}
    assert response["Cache-Control"] == "no-store"


def test_an_unregistered_audience_the_token_does_not_cover_says_nothing_more(client, service_client, rotating):
    app, app_secret = service_client
    response = _discover(client, _token(client, app, app_secret), "https://nowhere.example.test")
    assert response.status_code == 401 and response.json() == {"error": "invalid_token"}


@pytest.mark.parametrize(("request_kwargs", "status", "challenge"), [
    pytest.param({}, 401, 'Bearer realm="discovery"', id="no-credential"),
    pytest.param({"HTTP_AUTHORIZATION": "Basic abc"}, 401, 'Bearer realm="discovery", error="invalid_token"',
                 id="other-scheme"),
    pytest.param({"HTTP_AUTHORIZATION": "Bearer "}, 401, 'Bearer realm="discovery", error="invalid_token"',
                 id="empty-bearer"),
])
def test_missing_or_foreign_credentials(client, rotating, request_kwargs, status, challenge):
    response = client.get(DISCOVERY_URL, {"audience": RS_AUDIENCE}, **request_kwargs)
    assert response.status_code == status
    assert response["WWW-Authenticate"] == challenge


@pytest.mark.parametrize("query", [{}, {"audience": ""}, {"audience": [RS_AUDIENCE, RS_AUDIENCE]}])
def test_exactly_one_audience(client, service_client, rotating, query):
    app, app_secret = service_client
    response = client.get(DISCOVERY_URL, query, HTTP_AUTHORIZATION=f"Bearer {_token(client, app, app_secret)}")
    assert response.status_code == 400
    assert response["WWW-Authenticate"] == 'Bearer realm="discovery", error="invalid_request"'


def test_a_token_in_the_query_string_is_refused(client, service_client, rotating):
    app, app_secret = service_client
    response = client.get(DISCOVERY_URL, {"audience": RS_AUDIENCE, "access_token": _token(client, app, app_secret)})
    assert response.status_code == 400  # RFC 6750 §2.3 is not offered (RFC 9700 §4.3.2)


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_get_only(client, method):
    response = getattr(client, method)(DISCOVERY_URL)
    assert response.status_code == 405 and response["Allow"] == "GET"


# -- Rate limits ---------------------------------------------------------------------------------------
@pytest.fixture
def limits(settings: Any) -> Any:
    def set_limit(name: str, text: str) -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, name: (text, "local")}

    return set_limit


def _limited(response: Any, policy: str, limit: int) -> None:
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert f'"{policy}";q={limit};w=' in response["RateLimit-Policy"]


def test_path_key_per_resource_server(client, resource_server, rotating, limits):
    limits("pathkey.rs", "2/60")
    rs, secret = resource_server
    responses = [_fetch(client, rs.client_id, secret) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    _limited(responses[2], "pathkey.rs", 2)
    assert AuditEvent.objects.filter(event="resource_server.path_key_fetched").count() == 2  # no work when limited


def test_discovery_per_network_before_any_verification(client, service_client, rotating, limits):
    limits("discovery.ip", "2/60")
    app, app_secret = service_client
    token = _token(client, app, app_secret)
    responses = [_discover(client, token), _discover(client, "at_unknown"), _discover(client, token)]
    assert [r.status_code for r in responses] == [200, 401, 429]
    _limited(responses[2], "discovery.ip", 2)


# -- Fail closed (the real database dying: tests/faults/test_database_down.py) ----------------------------
@pytest.mark.parametrize("where", ["authserver.rspaths.views.resource_paths_for_audience",
                                   "authserver.rspaths.views.path_key_fetch"])
def test_a_database_error_is_503_never_a_guess(client, resource_server, service_client, rotating, monkeypatch, where):
    from django.db import OperationalError

    rs, secret = resource_server
    app, app_secret = service_client
    token = _token(client, app, app_secret)

    def down(**kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(where, down)
    response = _discover(client, token) if where.endswith("audience") else _fetch(client, rs.client_id, secret)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable" and response["Retry-After"]
    assert b"key" not in response.content and b"url" not in response.content
