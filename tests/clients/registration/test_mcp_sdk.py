"""The official MCP Python SDK's registration request and response handling against this endpoint
(the full agent flow is the lead's end-to-end test; this pins the registration contract)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from mcp.client.auth.oauth2 import check_registration_usable
from mcp.client.auth.utils import create_client_registration_request, handle_registration_response
from mcp.shared.auth import OAuthClientMetadata, OAuthMetadata

from clients.models import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("auth_method", [None, "client_secret_post", "client_secret_basic", "none"])
def test_the_sdk_registers_with_its_defaults_and_can_use_the_result(client: Any, dcr: Any,
                                                                    auth_method: str | None) -> None:
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    server = OAuthMetadata.model_validate(metadata)
    wanted = OAuthClientMetadata(redirect_uris=["http://127.0.0.1:3030/callback"], client_name="MCP agent",
                                 scope="ai.infer", token_endpoint_auth_method=auth_method)
    request = create_client_registration_request(server, wanted, dcr.ISSUER)
    assert str(request.url) == metadata["registration_endpoint"]
    answer = client.generic("POST", request.url.path, request.content, content_type=request.headers["content-type"])
    assert answer.status_code == 201, answer.content
    response = httpx.Response(answer.status_code, content=answer.content, headers={"content-type": "application/json"},
                              request=request)
    info = asyncio.run(handle_registration_response(response))
    check_registration_usable(info)  # RFC 7591 §3.2.1: the substituted method is one the SDK can act on
    assert info.token_endpoint_auth_method == "none" and info.client_secret is None
    assert Client.objects.get(client_id=info.client_id).registration_source == "dcr"
