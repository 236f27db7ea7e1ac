"""docs/openapi-oauth.yaml is valid OpenAPI and names only URLs the server routes (both passes;
tests/fuzz/test_oauth_endpoints.py checks the answers against it in the PostgreSQL pass)."""

from __future__ import annotations

import schemathesis
import yaml
from django.urls import resolve

from tests.fuzz.oauth_cases import DOCUMENT


def test_document_is_valid_openapi() -> None:
    schema = schemathesis.openapi.from_path(str(DOCUMENT))
    schema.validate()
    # authorize (GET, POST), token, device authorization, introspect, revoke, path key, discovery, metadata
    assert len(list(schema.get_all_operations())) == 9


def test_every_path_is_routed_with_its_name() -> None:
    paths = yaml.safe_load(DOCUMENT.read_text())["paths"]
    names = {path: resolve(path).url_name for path in paths}
    assert names == {"/oauth/authorize": "authorize", "/oauth/token": "token", "/oauth/device": "device-authorization",
                     "/oauth/introspect": "introspect",
                     "/oauth/revoke": "revoke-token", "/oauth/path-key": "path-key",
                     "/oauth/discovery": "rs-discovery",
                     "/.well-known/oauth-authorization-server": "oauth-server-metadata"}
