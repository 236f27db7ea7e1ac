"""The Django middleware and decorator."""

from __future__ import annotations

import django
import pytest
from django.conf import settings

from authserver_rs import paths
from authserver_rs.django import set_kit

from .conftest import active
from .fake_server import ISSUER, RS_ID, RS_SECRET
from .test_aliases import WINDOW, key_body

if not settings.configured:
    settings.configure(
        DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF="tests.django_urls", SECRET_KEY="test-only",  # noqa: S106
        MIDDLEWARE=["authserver_rs.django.ResourceServerMiddleware"],
        AUTHSERVER_RS={"client_id": RS_ID, "client_secret": RS_SECRET,
                       "introspection_endpoint": f"{ISSUER}/oauth/introspect", "exempt_paths": ["/health"]})
    django.setup()

from django.test import Client  # noqa: E402


@pytest.fixture
def client(fake, make_kit):
    fake.answers.update({"at_read": active(scope="ai.read"), "at_infer": active(scope="ai.infer")})
    yield Client()
    set_kit(None)


def test_decorator_and_middleware(client, make_kit, fake):
    set_kit(make_kit(revocation_stream=False, realm="ai"))
    assert client.get("/health").json() == {"ok": True, "principal": False}
    assert client.get("/v1/infer", HTTP_AUTHORIZATION="Bearer at_infer").json()["client_id"] == "app-1"
    assert fake.introspections[-1]["client_ip"] == "127.0.0.1"
    missing = client.get("/v1/infer")
    assert (missing.status_code, missing["WWW-Authenticate"]) == (401, 'Bearer realm="ai"')
    scope = client.get("/v1/infer", HTTP_AUTHORIZATION="Bearer at_read")
    assert (scope.status_code, scope["WWW-Authenticate"]) == (
        403, 'Bearer realm="ai", error="insufficient_scope", scope="ai.infer"')
    assert client.get("/v1/infer", HTTP_AUTHORIZATION="Bearer at_nope").status_code == 401


def test_alias_stripped_before_url_resolution(client, make_kit, fake, clock):
    fake.path_key = key_body()
    set_kit(make_kit(revocation_stream=False, rotating_paths=True))
    current = paths.prefix(bytes(range(32)), "rs", paths.window_of(clock.now, WINDOW))
    response = client.get(f"/{current}/v1/infer", HTTP_AUTHORIZATION="Bearer at_infer")
    assert response.json() == {"client_id": "app-1", "path": "/v1/infer"}
    unknown = client.get("/aaaaaaaaaaaaaaaa/v1/infer", HTTP_AUTHORIZATION="Bearer at_infer")
    assert (unknown.status_code, unknown.content) == (404, b"")


def test_the_metadata_is_served_and_named(client, make_kit, fake):
    # RFC 9728 (issue 16): at the well-known URLs without a credential, and in every 401.
    set_kit(make_kit(revocation_stream=False, realm="ai",
                     resource_metadata_endpoint=f"{ISSUER}/oauth/resource-metadata"))
    document = client.get("/.well-known/oauth-protected-resource/mcp")
    assert document.status_code == 200 and document.json() == fake.resource_metadata
    missing = client.get("/v1/infer")
    assert missing["WWW-Authenticate"] == (
        'Bearer realm="ai", resource_metadata="https://api.test/.well-known/oauth-protected-resource/mcp"')
    assert client.post("/.well-known/oauth-protected-resource").status_code == 405
