"""RFC 8414 metadata advertises exactly what the server accepts, and never derives from Host."""

from __future__ import annotations

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

METADATA_URL = "/.well-known/oauth-authorization-server"


@pytest.fixture
def metadata(client) -> dict:
    response = client.get(METADATA_URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def test_issuer_is_the_configured_issuer(metadata):
    assert metadata["issuer"] == settings.ISSUER
    assert not metadata["issuer"].endswith("/")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("response_types_supported", ["code"], id="response-types"),
        pytest.param("code_challenge_methods_supported", ["S256"], id="pkce-methods"),
        pytest.param("authorization_response_iss_parameter_supported", True, id="rfc9207-iss"),
        pytest.param("response_modes_supported", ["query"], id="response-modes"),
        pytest.param("introspection_endpoint_auth_methods_supported", ["client_secret_basic", "client_secret_post"],
                     id="introspection-auth-no-none"),
    ],
)
def test_advertised_values(metadata, key, expected):
    assert metadata[key] == expected


@pytest.mark.parametrize(
    "grant",
    [
        pytest.param("implicit", id="implicit"),
        pytest.param("password", id="password"),
        pytest.param("urn:ietf:params:oauth:grant-type:jwt-bearer", id="jwt-bearer"),
    ],
)
def test_removed_grants_are_not_advertised(metadata, grant):
    assert grant not in metadata["grant_types_supported"]


def test_supported_grants(metadata):
    advertised = set(metadata["grant_types_supported"])
    assert {"authorization_code", "client_credentials", "refresh_token"} <= advertised
    # Anything else advertised must be a grant this server deliberately adds (RFC 8693 API-key exchange,
    # RFC 8628 for clients registered for it).
    assert advertised - {"authorization_code", "client_credentials", "refresh_token"} <= {
        "urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:device_code"
    }


def test_device_grant_and_endpoint_are_advertised(metadata):
    """RFC 8628 §4: device clients are registered by operators, so the grant is always on."""
    assert "urn:ietf:params:oauth:grant-type:device_code" in metadata["grant_types_supported"]
    assert metadata["device_authorization_endpoint"] == settings.ISSUER + "/oauth/device"


@pytest.mark.parametrize(
    ("key", "path"),
    [
        pytest.param("authorization_endpoint", "/oauth/authorize", id="authorize"),
        pytest.param("token_endpoint", "/oauth/token", id="token"),
        pytest.param("revocation_endpoint", "/oauth/revoke", id="revoke"),
        pytest.param("introspection_endpoint", "/oauth/introspect", id="introspect"),
        pytest.param("device_authorization_endpoint", "/oauth/device", id="device"),
    ],
)
def test_endpoints_live_under_the_issuer(metadata, key, path):
    assert metadata[key] == settings.ISSUER + path


def test_no_endpoint_is_plain_http(metadata):
    urls = [v for k, v in metadata.items() if k.endswith("_endpoint") or k == "issuer"]
    assert urls and all(u.startswith("https://") for u in urls)


@pytest.mark.parametrize("host", ["localhost", "[::1]"])
def test_host_header_does_not_change_the_document(client, metadata, host):
    """RFC 8414 §3.3 / RFC 9207: the issuer is configuration, not the request's Host."""
    response = client.get(METADATA_URL, HTTP_HOST=host)
    assert response.status_code == 200
    assert response.json() == metadata


def test_unknown_host_is_refused(client):
    response = client.get(METADATA_URL, HTTP_HOST="evil.test")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("extra", "allow", "error"),
    [
        pytest.param({}, True, None, id="success"),
        pytest.param({}, False, "access_denied", id="user-denies"),
        pytest.param({"scope": "no.such.scope"}, True, "invalid_scope", id="invalid-scope"),
        pytest.param({"code_challenge_method": "plain"}, True, "invalid_request", id="pkce-plain"),
        pytest.param({"code_challenge": ""}, True, "invalid_request", id="pkce-missing"),
        pytest.param({"response_type": "token"}, True, ("unsupported_response_type", "unauthorized_client"),
                     id="implicit"),
    ],
)
def test_every_authorization_response_carries_iss(client, web_client, user, extra, allow, error):
    """RFC 9207 §2: iss in authorization responses, "including error responses", equal to the
    metadata issuer (§2.3), exactly once."""
    from tests.factories import REDIRECT_URI
    from tests.helpers import authorize, location_query, pkce_pair

    app, _ = web_client
    client.force_login(user)
    params = {k: v for k, v in extra.items() if v != ""}
    if extra.get("code_challenge") == "":
        from tests.helpers import AUTHORIZE_URL, authorize_params

        query = authorize_params(app, challenge="")
        del query["code_challenge"]
        response = client.get(AUTHORIZE_URL, query)
    else:
        response = authorize(client, app, challenge=pkce_pair()[1], allow=allow, **params)
    assert response.status_code == 302
    assert response["Location"].startswith(REDIRECT_URI + "?")
    query = location_query(response)
    assert query["iss"] == [settings.ISSUER]
    assert query["state"] == ["xyz"]
    if error is None:
        assert "code" in query
    else:
        assert query["error"][0] in (error if isinstance(error, tuple) else (error,))
        assert "code" not in query
