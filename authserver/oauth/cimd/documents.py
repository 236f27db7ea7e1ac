"""What a Client ID Metadata Document may say, and what the client it describes is given.

The document has RFC 7591 §2's client metadata (draft-ietf-oauth-client-id-metadata-document-01,
"Client Metadata"). Our policy for it is the self-registration policy (issue 16): a public client (the draft: no shared
secret, ``token_endpoint_auth_method`` ``none``), the authorization code grant only (refresh tokens
come with it), redirect URIs under the registration rules of every client (clients.redirects:
https, or http on a loopback IP for native apps), and scopes and audiences only from the
registrable set (``AUTHSERVER_REGISTRABLE_SCOPES`` / ``_AUDIENCES``): the scopes it asks for that
are registrable (all of them if it asks none), every registrable audience.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from authserver.oauth.cimd.fetcher import FetchRefused
from clients.redirects import validate_redirect_uris

MAX_REDIRECT_URIS = 20
MAX_NAME_LENGTH = 100
ALLOWED_GRANTS = frozenset({"authorization_code", "refresh_token"})


@dataclass(frozen=True)
class ClientMetadata:
    name: str
    redirect_uris: list[str]
    scopes: list[str]
    audiences: list[str]


def _string_list(document: dict[str, Any], member: str, default: list[str]) -> list[str]:
    value = document.get(member, default)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FetchRefused(f"{member}_invalid")
    return value


def client_metadata(document: dict[str, Any], *, url: str) -> ClientMetadata:
    """The client ``document`` describes, or FetchRefused naming the first rule it breaks."""
    # Draft, "Client Metadata": the document's client_id MUST equal the URL it was fetched from (simple string
    # comparison): a document cannot speak for another URL.
    if document.get("client_id") != url:
        raise FetchRefused("client_id_mismatch")
    # Draft, "Client Authentication": shared secrets MUST NOT be used; no asymmetric method is implemented here either.
    if document.get("token_endpoint_auth_method", "none") != "none" or {
            "client_secret", "client_secret_expires_at"} & set(document):
        raise FetchRefused("not_public")
    grants = _string_list(document, "grant_types", ["authorization_code"])
    if not set(grants) <= ALLOWED_GRANTS or "authorization_code" not in grants:
        raise FetchRefused("grant_types_invalid")
    if set(_string_list(document, "response_types", ["code"])) != {"code"}:
        raise FetchRefused("response_types_invalid")
    uris = _string_list(document, "redirect_uris", [])
    if not uris or len(uris) > MAX_REDIRECT_URIS:
        raise FetchRefused("redirect_uris_invalid")
    try:
        uris = validate_redirect_uris(uris, public_client=True)
    except ValidationError:
        raise FetchRefused("redirect_uris_invalid") from None
    name = document.get("client_name", "")
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise FetchRefused("client_name_invalid")
    scope = document.get("scope", "")
    if not isinstance(scope, str):
        raise FetchRefused("scope_invalid")
    registrable = list(settings.REGISTRABLE_SCOPES)
    asked = set(scope.split())
    return ClientMetadata(
        name=name.strip(),
        redirect_uris=uris,
        scopes=[s for s in registrable if s in asked] if asked else registrable,
        audiences=list(settings.REGISTRABLE_AUDIENCES),
    )
