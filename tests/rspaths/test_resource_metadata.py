"""``GET /oauth/resource-metadata``: a resource server's RFC 9728 document (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest

from authserver.audit.models import AuditEvent
from clients.discovery.services import discovery_capability_rotate
from tests.conftest import basic_auth
from tests.factories import RS_AUDIENCE, ScopeFactory

pytestmark = pytest.mark.django_db

URL = "/oauth/resource-metadata"


def _get(client: Any, authorization: str | None, **extra: Any) -> Any:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return client.get(URL, extra or None, **headers)


def test_the_resource_server_gets_its_own_document(client, resource_server, settings):
    rs, secret = resource_server
    response = _get(client, basic_auth(rs.client_id, secret))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert response.json() == {
        "resource": RS_AUDIENCE,
        "authorization_servers": [settings.ISSUER],
        "bearer_methods_supported": ["header"],
        "resource_name": f"resource server {RS_AUDIENCE}",
    }  # no allowed scopes: scopes_supported omitted (RFC 9728 §2, OPTIONAL)


def test_scopes_supported_are_its_allowed_scopes(client, resource_server):
    rs, secret = resource_server
    rs.allowed_scopes.add(ScopeFactory(name="ai.read"), ScopeFactory(name="ai.infer"))
    assert _get(client, basic_auth(rs.client_id, secret)).json()["scopes_supported"] == ["ai.infer", "ai.read"]


def test_a_changed_name_is_served_at_once(client, resource_server):
    rs, secret = resource_server
    _get(client, basic_auth(rs.client_id, secret))  # cached authentication
    rs.name = "Chat API"
    rs.save(update_fields=["name"])
    assert _get(client, basic_auth(rs.client_id, secret)).json()["resource_name"] == "Chat API"


REFUSED = [
    pytest.param(lambda rs, s, app, a: basic_auth(rs.client_id, "cs_" + "A" * (len(s) - 3)), True, id="wrong-secret"),
    pytest.param(lambda rs, s, app, a: basic_auth(app.client_id, a), True, id="not-a-resource-server"),
    pytest.param(lambda rs, s, app, a: basic_auth("no-such-client", s), True, id="unknown-client"),
    pytest.param(lambda rs, s, app, a: basic_auth("a\x00b", s), False, id="nul-in-client-id"),
    pytest.param(lambda rs, s, app, a: None, False, id="no-credentials"),
    pytest.param(lambda rs, s, app, a: "Basic !!!", False, id="garbage-basic"),
    pytest.param(lambda rs, s, app, a: "Bearer " + s, False, id="bearer-scheme"),
]


@pytest.mark.parametrize(("authorization", "names_a_client"), REFUSED)
def test_refusals_are_401_and_audited(client, resource_server, service_client, authorization, names_a_client):
    rs, secret = resource_server
    app, app_secret = service_client
    response = _get(client, authorization(rs, secret, app, app_secret))
    assert response.status_code == 401 and response.json() == {"error": "invalid_client"}
    assert response["WWW-Authenticate"] == 'Basic realm="resource-metadata"'
    assert b"resource" not in response.content
    refused = AuditEvent.objects.get(event="resource_metadata.refused")
    assert refused.outcome == "failure" and refused.actor.startswith("client:") == names_a_client


def test_refusals_spend_the_failure_budget(client, resource_server):
    rs, secret = resource_server
    wrong = basic_auth(rs.client_id, "cs_" + "A" * (len(secret) - 3))
    assert [_get(client, wrong).status_code for _ in range(21)] == [401] * 20 + [429]
    assert AuditEvent.objects.filter(event="resource_metadata.refused").count() == 20


def test_parameters_are_refused(client, resource_server):
    rs, secret = resource_server
    response = _get(client, basic_auth(rs.client_id, secret), resource="https://other.example")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_get_only(client, resource_server, method):
    rs, secret = resource_server
    response = getattr(client, method)(URL, HTTP_AUTHORIZATION=basic_auth(rs.client_id, secret))
    assert response.status_code == 405


def test_rfc8414_and_discovery_name_the_endpoint(client, settings):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["resource_metadata_endpoint"] == f"{settings.ISSUER}{URL}"


def test_the_per_client_discovery_document_names_it_too(client, resource_server, settings):
    rs, _ = resource_server
    _, capability = discovery_capability_rotate(client=rs, actor="test")
    assert client.get(f"/d/{capability}").json()["resource_metadata_endpoint"] == f"{settings.ISSUER}{URL}"
