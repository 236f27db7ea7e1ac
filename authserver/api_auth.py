"""Authentication for the management REST API: OAuth access tokens issued by this server.

"We eat our own cooking": the management API is a resource server of this authorization server.
A caller presents an access token as ``Authorization: Bearer <token>`` (RFC 6750 §2.1) and nothing
else authenticates: no session, no CSRF, no token in the query string (RFC 6750 §2.3, RFC 9700
§4.3.2) or the body. The token must be live and its audience (RFC 8707 ``resource``) must include
``settings.MANAGEMENT_API_AUDIENCE``; each operation then needs its scope.

Errors follow RFC 6750 §3: 401 with ``WWW-Authenticate: Bearer error="invalid_token"`` for a
token that is malformed, unknown, expired, revoked or meant for another API (one answer for all of
them), 403 with ``error="insufficient_scope", scope="..."`` when the scope is missing, 400 with
``error="invalid_request"`` for a token in the URL. Bodies are ``{"error", "error_description"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.permissions import BasePermission, OperandHolder, SingleOperandHolder
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from authserver import credentials, revocation
from authserver.errors import Conflict, DependencyUnavailable, DomainError, NotFound, PolicyViolation
from authserver.introspection.service import access_token_row
from authserver.ratelimit.limiter import enforce, note

REALM = "authserver"
_MAX_HEADER = 512  # "Bearer " + a token is ~60 characters; anything longer is garbage


def management_api_audience() -> str:
    """The audience (RFC 8707 resource) a token must carry to call the management API."""
    return settings.MANAGEMENT_API_AUDIENCE


# -- Exceptions --------------------------------------------------------------------------------------

class InvalidToken(exceptions.AuthenticationFailed):
    """Malformed, unknown, expired, revoked or for another audience: deliberately one answer."""

    default_detail = "The access token is invalid, expired or revoked, or was not issued for this API."
    default_code = "invalid_token"


class TokenInQuery(exceptions.APIException):
    status_code = 400
    default_detail = "Access tokens are accepted only in the Authorization header, never in the URL."
    default_code = "invalid_request"


class InsufficientScope(exceptions.PermissionDenied):
    default_detail = "The access token does not have the scope this operation requires."
    default_code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This operation requires the scope {scope}.")
        self.scope = scope


# -- The caller ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ApiCaller:
    """``request.user`` on the management API: the client the access token was issued to."""

    client_id: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    user_id: int | None = None
    username: str | None = None
    expires: Any = None

    is_authenticated = True
    is_anonymous = False

    @property
    def actor(self) -> str:
        """What services record as the actor (``created_by_label``, logs)."""
        return f"api:{self.client_id}"

    def __str__(self) -> str:
        return self.actor


def api_caller(request: Request) -> ApiCaller:
    """The authenticated caller of a management API view (HasScope refused anyone else)."""
    # djangorestframework-stubs type request.user as Django's User | AnonymousUser; DRF sets
    # whatever the authentication class returned, here an ApiCaller.
    caller = cast(object, request.user)
    assert isinstance(caller, ApiCaller), "management API view reached without an ApiCaller"
    return caller


class BearerAccessTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <access token>`` for ``MANAGEMENT_API_AUDIENCE``; nothing else.

    The format (type prefix and checksum) is checked before any lookup, so garbage costs no
    database query. The lookup is the introspection hot path's (``access_token_row``): one
    indexed query on the digest, or the in-process cache, which every revocation invalidates.
    """

    keyword = "bearer"

    def authenticate(self, request: Any) -> tuple[ApiCaller, dict[str, Any]] | None:
        if "access_token" in request.query_params:
            raise TokenInQuery()
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword:
            return None  # Basic, Digest...: no bearer credentials were presented (RFC 6750 §3.1)
        token = token.strip(" ")
        if len(header) > _MAX_HEADER or not credentials.is_well_formed(token, credentials.ACCESS_TOKEN):
            raise InvalidToken()
        row = access_token_row(token, revocation.request_view())
        if row is None or row["expires"] <= timezone.now():
            raise InvalidToken()
        if management_api_audience() not in (row["resource"] or []):
            raise InvalidToken()
        # Limited per calling client once it is known (fails closed: admin power is never unlimited).
        note(request._request, enforce("api.client", row["application__client_id"]))
        caller = ApiCaller(
            client_id=row["application__client_id"],
            scopes=frozenset((row["scope"] or "").split()),
            user_id=row["user_id"],
            username=row["user__username"],
            expires=row["expires"],
        )
        return caller, row

    def authenticate_header(self, request: Any) -> str:
        return f'Bearer realm="{REALM}"'


class HasScope(BasePermission):
    """The view names the scope each action needs (``required_scope(request)``)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        caller = request.user
        if not isinstance(caller, ApiCaller):
            return False  # → 401 (DRF: authenticators present, none succeeded)
        scope = view.required_scope(request)
        if scope not in caller.scopes:
            raise InsufficientScope(scope)
        return True


# -- Error bodies and headers ----------------------------------------------------------------------

def _error(status: int, error: str, description: str, *, www_authenticate: str | None = None,
           **extra: Any) -> Response:
    response = Response({"error": error, "error_description": description, **extra}, status=status)
    if www_authenticate:
        response["WWW-Authenticate"] = www_authenticate
    return response


def _bearer_challenge(error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            out.extend(_flatten(value, f"{prefix}.{name}" if prefix and name else name or prefix))
        return out
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


# The domain's refusal families (authserver.errors) as HTTP: the only place they are mapped for the
# management API. The message of a domain error is written to be shown.
_DOMAIN_STATUS: tuple[tuple[type[DomainError], int, str], ...] = (
    (PolicyViolation, 400, "invalid_request"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
)


def _domain_error(exc: DomainError) -> Response:
    if isinstance(exc, DependencyUnavailable):  # fail closed, like authserver.middleware
        response = _error(503, "temporarily_unavailable", "The server is temporarily unavailable.")
        response["Retry-After"] = "5"
        return response
    for family, status, code in _DOMAIN_STATUS:
        if isinstance(exc, family):
            return _error(status, code, str(exc))
    return _error(400, "invalid_request", str(exc))


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every refusal as ``{"error", "error_description"}``; anything else propagates (500/503)."""
    if isinstance(exc, TokenInQuery):
        return _error(400, "invalid_request", str(exc.detail),
                      www_authenticate=_bearer_challenge("invalid_request", "token in URL"))
    if isinstance(exc, exceptions.AuthenticationFailed):
        return _error(401, "invalid_token", InvalidToken.default_detail,
                      www_authenticate=_bearer_challenge("invalid_token"))
    if isinstance(exc, exceptions.NotAuthenticated):
        # No bearer credentials at all: no error code in the challenge (RFC 6750 §3.1).
        return _error(401, "unauthorized", "A bearer access token is required in the Authorization header.",
                      www_authenticate=_bearer_challenge())
    if isinstance(exc, InsufficientScope):
        return _error(403, "insufficient_scope", str(exc.detail),
                      www_authenticate=_bearer_challenge("insufficient_scope", scope=exc.scope))
    if isinstance(exc, DomainError):
        return _domain_error(exc)
    if isinstance(exc, exceptions.ValidationError):
        lines = _flatten(exc.detail)
        return _error(400, "invalid_request", "; ".join(lines) or "Invalid request.", fields=exc.detail)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return _error(404, "not_found", str(exc) if isinstance(exc, exceptions.NotFound) else "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return _error(403, "access_denied", "Permission denied.")
    if isinstance(exc, exceptions.APIException):
        response = _error(exc.status_code, str(exc.default_code), str(exc.detail))
        # DRF sets Throttled.wait in __init__; djangorestframework-stubs omit the attribute.
        wait: float | None = exc.wait if isinstance(exc, exceptions.Throttled) else None  # type: ignore[attr-defined]
        if wait is not None:
            response["Retry-After"] = str(int(wait))
        return response
    return None


class ManagementAPIMixin:
    """Shared by every management API view: bearer tokens only, JSON only, never cached."""

    authentication_classes: Sequence[type[BaseAuthentication]] = [BearerAccessTokenAuthentication]
    # The exact element type of APIView.permission_classes in djangorestframework-stubs.
    permission_classes: Sequence[type[BasePermission] | OperandHolder | SingleOperandHolder] = [HasScope]
    parser_classes: Sequence[type[BaseParser]] = [JSONParser]
    renderer_classes: Sequence[type[BaseRenderer]] = [JSONRenderer]
    # No OPTIONS metadata: the OpenAPI schema describes the API.
    http_method_names: Sequence[str] = ["get", "post", "head"]
    read_actions: frozenset[str] = frozenset()
    read_scope = ""
    write_scope = ""

    def required_scope(self, request: Any) -> str:
        """Read actions need the read scope; everything else (unknown included) the write scope."""
        action = getattr(self, "action", None)
        return self.read_scope if action in self.read_actions else self.write_scope

    def get_exception_handler(self) -> Any:
        return api_exception_handler

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response["Cache-Control"] = "no-store"
        return response


class BearerAccessTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # drf-spectacular: untyped __init_subclass__
    """drf-spectacular: describe the authentication class as an HTTP bearer scheme."""

    target_class = "authserver.api_auth.BearerAccessTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An OAuth access token issued by this server (client_credentials), whose audience "
                "(RFC 8707 `resource`) includes the management API audience. Read operations need "
                "`authserver.keys.read`, writes `authserver.keys.write`."
            ),
        }
