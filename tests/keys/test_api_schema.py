"""The management API's OpenAPI schema: served, valid, and naming exactly the operations."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from tests.helpers import API

pytestmark = pytest.mark.django_db

SCHEMA = API + "schema"


EXPECTED_PATHS = {
    API + "keys": {"get", "post"},
    API + "keys/{id}": {"get"},
    API + "keys/{id}/rotate": {"post"},
    API + "keys/{id}/revoke": {"post"},
    API + "keys/{id}/suspend": {"post"},
    API + "keys/{id}/resume": {"post"},
    API + "keys/{id}/usage": {"get"},
    API + "clients/{client_id}/revoke-all": {"post"},
}


def test_schema_endpoint_serves_valid_openapi(client):
    from drf_spectacular.validation import validate_schema

    response = client.get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert {p: {m for m in ops if m != "parameters"} for p, ops in schema["paths"].items()} == EXPECTED_PATHS
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"]}
    for ops in schema["paths"].values():
        for op in ops.values():
            assert op["security"] == [{"bearerAuth": []}]
    created = schema["components"]["schemas"]["ApiKeyCreated"]["properties"]
    assert "key" in created and "key" not in schema["components"]["schemas"]["ApiKey"]["properties"]
    assert "digest" not in json.dumps(schema)


def test_spectacular_command_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), "--urlconf", "authserver.urls")
    text = out.read_text()
    assert API + "keys/{id}/rotate:" in text and "bearerAuth" in text


def test_personal_fields_are_optional_in_the_schema(client):
    """``last_used_ip`` is left out of answers without the personal-data scope: no schema requires it."""
    from drf_spectacular.generators import SchemaGenerator

    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    with_ip = [name for name, schema in schemas.items() if "last_used_ip" in schema.get("properties", {})]
    assert "ApiKey" in with_ip
    assert all("last_used_ip" not in schemas[name].get("required", []) for name in with_ip)
