"""One 404 for everything unknown (issue 15, C5; authserver.notfound): in ``rotating`` mode, probing
the well-known paths of common servers, random strings, an expired prefix, the disabled public
metadata, an unknown discovery URL and an admin URL that does not exist yields byte-identical
answers (status, headers but Date, body) from the production WSGI application, on the lean and on
the full stack alike; no database access, no cookie, no software named."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from django.conf import settings as django_settings

from authserver import credentials, endpoints, handlers, notfound, paths
from tests.bench.test_machine_handler import wsgi_call
from tests.helpers import API

pytestmark = pytest.mark.django_db

SOFTWARE = ("granian", "gunicorn", "uvicorn", "werkzeug", "python", "django", "wsgiserver", "authserver")


def call(app: Any, path: str, method: str = "GET", **headers: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The production WSGI application's answer: status, headers but Date (sorted), body."""
    status, answer_headers, body = wsgi_call(app, path, method=method, HTTP_X_REQUEST_ID="probe", **headers)
    return status, sorted((k, v) for k, v in answer_headers.items() if k != "date"), body


@pytest.fixture
def rotating(settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Rotating mode; returns a prefix two windows old."""
    settings.ENDPOINTS = "rotating"
    endpoints.reset()  # prefixes from another test's key
    monkeypatch.setattr(paths, "now", lambda: 500 * settings.ENDPOINTS_WINDOW_SECONDS + 10)
    endpoints.accepted()  # the key, read once per process (the key store's cache), as on a warm worker
    return paths.prefix(endpoints._key(), "oauth", 498)


def probes(expired: str) -> list[str]:
    return [
        "/oauth/token", "/o/token/", "/admin/", "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server", "/api/v1/", "/api/v1/keys", API + "no-such-thing",
        "/" + secrets.token_urlsafe(12), "/" + secrets.token_hex(8) + "/token", f"/{expired}/token",
        f"/{expired}/introspect", f"/{expired}/authorize", "/oauth/introspect", "/wp-login.php",
        f"/{django_settings.ADMIN_PATH}/no-such-page/", f"/{django_settings.ADMIN_PATH}/auth/nothing/",
        "/d/not-a-capability", "/d/", "/favicon.ico/x", "/accounts/no-such-page/",
    ]


def test_every_unknown_path_answers_the_same_bytes(rotating):
    app = handlers.Dispatcher()
    answers = {}
    for probe in probes(rotating):
        for method, headers in (("GET", {}), ("GET", {"HTTP_ACCEPT": "text/html", "HTTP_ACCEPT_LANGUAGE": "de"}),
                                ("POST", {"HTTP_COOKIE": "sessionid=x; csrftoken=y"}), ("HEAD", {})):
            answers[(probe, method, str(headers))] = call(app, probe, method, **headers)
    first = call(app, "/oauth/token")
    assert first[0] == 404 and first[2] == notfound.BODY
    different = {k: v for k, v in answers.items() if v[:2] != first[:2] or (v[2] != first[2] and k[1] != "HEAD")}
    assert different == {}
    headers = dict(first[1])
    assert "set-cookie" not in headers and "vary" not in headers and headers["server"] == handlers.SERVER_HEADER
    assert not any(name in value.lower() for value in headers.values() for name in SOFTWARE)
    assert b"django" not in first[2].lower()


def test_a_well_formed_unknown_discovery_url_answers_the_same(rotating):
    app = handlers.Dispatcher()
    unknown = call(app, "/d/" + credentials.mint(credentials.DISCOVERY_CAPABILITY))
    assert unknown == call(app, "/oauth/token")


def test_the_uniform_404_touches_no_database(rotating, django_assert_num_queries):
    app = handlers.Dispatcher()
    call(app, "/warm-up")  # the first request of a process may load what every request then shares
    with django_assert_num_queries(0):
        for probe in probes(rotating):
            assert call(app, probe)[0] == 404, probe


def test_the_uniform_404_in_fixed_mode_too(settings):
    app = handlers.Dispatcher()
    assert settings.ENDPOINTS == "fixed"
    answers = [call(app, probe) for probe in ("/o/token/", "/admin/", API + "nothing", "/.well-known/openid-config")]
    assert all(answer == answers[0] for answer in answers) and answers[0][2] == notfound.BODY


def test_anonymous_visitors_to_unknown_admin_urls_get_no_redirect_to_sign_in(client, settings):
    unknown = client.get(f"/{settings.ADMIN_PATH}/no-such-page/")
    assert unknown.status_code == 404 and unknown.content == notfound.BODY and not unknown.cookies
    known = client.get(f"/{settings.ADMIN_PATH}/")
    assert known.status_code == 302  # the admin itself still asks a visitor to sign in
