"""What a self-registering client may ask for (RFC 7591 §2, §3.2.2): the registration policy.

A request's client metadata becomes a :class:`Metadata` or is refused with a
:class:`RegistrationRefused` carrying the RFC 7591 §3.2.2 error. Format and policy are decided
here, before any query but the scope registry's. The policy:

* public clients only: no secret is ever issued. ``token_endpoint_auth_method`` ``none`` is kept;
  the secret methods (``client_secret_basic``, ``client_secret_post``, the default when the member
  is absent) are replaced with ``none``, as §3.2.1 allows ("MAY reject or replace any of the
  client's requested metadata values ... and substitute them with suitable values"), so that a
  client sending defaults (the MCP SDK) still registers; any other method is refused;
* the authorization code grant only (with ``refresh_token``), ``response_types`` ``code`` only;
* redirect URIs as every public client's (clients.redirects: https, or http on a loopback IP
  literal, RFC 8252 §7.3; no fragment, userinfo, wildcard or custom scheme);
* scopes and resources only from ``AUTHSERVER_REGISTRABLE_SCOPES`` / ``_AUDIENCES``;
* bounded sizes: the whole body (checked by the view before parsing), each list and string;
* ``client_name`` never an operator-registered client's name (case-insensitive).

Members this server does not use (``client_uri``, ``logo_uri``, ``contacts``, ``jwks``,
``software_statement``…) are ignored, as §2 says a server MUST do with metadata it does not
understand or support, and are not stored or echoed. ``resources`` (an array of RFC 8707 resource
indicators) is this server's extension: the audiences the client asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from authserver.errors import PolicyViolation
from clients.models import GRANT_AUTHORIZATION_CODE, Client, Scope
from clients.redirects import validate_redirect_uri

MAX_BODY_BYTES = 16 * 1024
MAX_REDIRECT_URIS = 10
MAX_NAME_LENGTH = 100
MAX_SCOPE_LENGTH = 1000
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
ALLOWED_GRANTS = frozenset({GRANT_AUTHORIZATION_CODE, "refresh_token"})
# RFC 7592 §2.2: the client MUST NOT send these in an update; §3.2.1 lists them as the server's.
SERVER_MEMBERS = ("registration_access_token", "registration_client_uri", "client_id_issued_at",
                  "client_secret_expires_at", "client_secret")


class RegistrationRefused(PolicyViolation):
    """RFC 7591 §3.2.2: ``error`` and a description safe to show; ``reason`` is the audit's short code."""

    def __init__(self, error: str, description: str, *, reason: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.reason, self.status = error, description, reason, status


@dataclass(frozen=True)
class Metadata:
    name: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    auth_method_requested: str


def _refuse(description: str, reason: str, error: str = "invalid_client_metadata") -> RegistrationRefused:
    return RegistrationRefused(error, description, reason=reason)


def _strings(data: dict[str, Any], member: str, *, limit: int) -> list[str] | None:
    value = data.get(member)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _refuse(f"{member} must be an array of strings", f"{member}_type")
    if len(value) > limit:
        raise _refuse(f"{member} may hold at most {limit} values", f"{member}_too_many")
    return value


def _text(data: dict[str, Any], member: str, *, limit: int) -> str:
    value = data.get(member)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _refuse(f"{member} must be a string", f"{member}_type")
    if len(value) > limit:
        raise _refuse(f"{member} must be at most {limit} characters", f"{member}_too_long")
    if any(not ch.isprintable() for ch in value):
        raise _refuse(f"{member} must be printable text", f"{member}_unprintable")
    return value


def _redirect_uris(data: dict[str, Any]) -> tuple[str, ...]:
    uris = _strings(data, "redirect_uris", limit=MAX_REDIRECT_URIS)
    if not uris:  # RFC 7591 §2: required for redirect-based flows, and the code grant is the only one here
        raise _refuse("redirect_uris is required", "redirect_uris_missing", "invalid_redirect_uri")
    for uri in uris:
        try:
            validate_redirect_uri(uri, public_client=True)
        except ValidationError as exc:
            raise _refuse(f"redirect URI refused: {exc.messages[0]}", "redirect_uri_refused",
                          "invalid_redirect_uri") from None
    return tuple(dict.fromkeys(uris))


def _auth_method(data: dict[str, Any]) -> str:
    method = data.get("token_endpoint_auth_method", "client_secret_basic")  # RFC 7591 §2's default
    if method != "none" and method not in SECRET_METHODS:
        raise _refuse("token_endpoint_auth_method must be none (public clients only)", "auth_method")
    return str(method)


def _grants(data: dict[str, Any]) -> None:
    grants = _strings(data, "grant_types", limit=5)
    if grants is not None and (not set(grants) <= ALLOWED_GRANTS or GRANT_AUTHORIZATION_CODE not in grants):
        raise _refuse("grant_types may be authorization_code and refresh_token only", "grant_types")
    responses = _strings(data, "response_types", limit=5)
    if responses is not None and set(responses) != {"code"}:
        raise _refuse("response_types may be code only", "response_types")


def _scopes(data: dict[str, Any]) -> tuple[str, ...]:
    registrable = tuple(settings.REGISTRABLE_SCOPES)
    text = _text(data, "scope", limit=MAX_SCOPE_LENGTH)
    asked = tuple(dict.fromkeys(text.split()))
    if not asked:
        # Everything registrable that exists (RFC 7591 §2: the server may default the scope).
        return tuple(Scope.objects.filter(name__in=registrable).order_by("name").values_list("name", flat=True))
    if not set(asked) <= set(registrable):
        raise _refuse("scope asks for scopes this server does not let clients register", "scope_not_registrable")
    if Scope.objects.filter(name__in=asked).count() != len(asked):
        raise _refuse("scope names a scope that does not exist", "scope_unknown")
    return asked


def _audiences(data: dict[str, Any]) -> tuple[str, ...]:
    registrable = tuple(settings.REGISTRABLE_AUDIENCES)
    asked = _strings(data, "resources", limit=10)
    if not asked:
        return registrable
    if not set(asked) <= set(registrable):
        raise _refuse("resources names resource servers this server does not let clients register for",
                      "resource_not_registrable")
    return tuple(dict.fromkeys(asked))


def metadata_parse(data: object, *, update: bool = False) -> Metadata:
    """The registrable metadata in ``data`` (a parsed JSON body), or :class:`RegistrationRefused`."""
    if not isinstance(data, dict):
        raise _refuse("the body must be a JSON object", "not_an_object")
    if update:
        sent = [member for member in SERVER_MEMBERS if member in data]
        if sent:  # RFC 7592 §2.2
            raise _refuse(f"an update must not include {', '.join(sent)}", "server_member_sent")
    _grants(data)
    method = _auth_method(data)
    redirect_uris = _redirect_uris(data)
    name = _text(data, "client_name", limit=MAX_NAME_LENGTH)
    # An agent may not take the name of an app an operator registered: the consent page would show
    # a trusted name on a client nobody vouched for. Self-registered clients may share names (every
    # installation of one agent registers itself).
    if name.strip() and Client.objects.filter(registration_source="manual", name__iexact=name.strip()).exists():
        raise _refuse("client_name is the name of a client registered by the operator", "client_name_taken")
    return Metadata(name=name, redirect_uris=redirect_uris, scopes=_scopes(data), audiences=_audiences(data),
                    auth_method_requested=method)
