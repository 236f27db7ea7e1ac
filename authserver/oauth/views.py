"""HTTP endpoints. DOT's views do the protocol work; these add what DOT does not.

* ``TokenView``: one transaction per exchange, so a code replay detected mid-exchange and the
  tokens of the winning exchange are decided atomically.
* ``AuthorizationView``: consent is remembered only when the client is registered for it (DOT
  lets the *client* ask for ``approval_prompt=auto``; we do not).
* ``introspect``: RFC 7662, for registered resource servers only, audience-bound.
* ``ServerMetadataView``: RFC 8414 with what we really accept.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from oauth2_provider import views as dot_views
from oauth2_provider.models import get_application_model
from oauth2_provider.signals import app_authorized

from authserver import generation
from authserver.anomaly.hooks import client_auth_failed, introspection_answered
from authserver.audit.context import actor_label, request_personal
from authserver.audit.services import audit_record
from authserver.oauth import selectors
from authserver.ratelimit.limiter import RateLimited, already_exceeded, client_network, enforce, limit_for
from authserver.ratelimit.middleware import note

log = logging.getLogger("authserver.oauth")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# Every POST field of a machine endpoint can carry a credential (code, code_verifier,
# refresh_token, subject_token, token, client_secret): none may appear in an error report.
_hide_all_post = method_decorator(sensitive_post_parameters())


class TokenView(dot_views.TokenView):
    @_hide_all_post
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Limits before any work: per network, then a separate budget of failed client
        # authentications per network (a guessing client is cut off without slowing others);
        # the per-client limit is applied once the client has authenticated (validator).
        network = client_network(request.META.get("REMOTE_ADDR"))
        note(request, enforce("token.ip", network))
        blocked = already_exceeded("token.auth_failure.ip", network)
        if blocked is not None:
            raise RateLimited(blocked)
        with transaction.atomic():
            response = super().post(request, *args, **kwargs)
        if response.status_code == 401:
            limit_for("token.auth_failure.ip", network)
            client_auth_failed(request.META.get("REMOTE_ADDR"))  # authserver.anomaly
        # RFC 6749 §5.1/§5.2: token responses, errors included, are JSON and never cached. Errors
        # oauthlib raises before a grant handler runs (e.g. parameters in the URL query) came back
        # as text/html without Cache-Control.
        response["Content-Type"] = "application/json"
        for key, value in NO_STORE.items():
            response[key] = value
        return response

    @_hide_all_post
    def authorization_flow_token_response(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # DOT re-reads the token it has just saved only to send ``app_authorized``; nothing listens
        # to it here, so the extra query is skipped unless a receiver is connected.
        if app_authorized.has_listeners(self):
            return super().authorization_flow_token_response(request, *args, **kwargs)
        url, headers, body, status = self.create_token_response(request)
        response = HttpResponse(content=body, status=status)
        for key, value in headers.items():
            response[key] = value
        return response


class RevokeTokenView(dot_views.RevokeTokenView):
    @_hide_all_post
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        note(request, enforce("revoke.ip", client_network(request.META.get("REMOTE_ADDR"))))
        with transaction.atomic():
            return super().post(request, *args, **kwargs)


class AuthorizationView(dot_views.AuthorizationView):
    template_name = "oauth/authorize.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        client_id = request.GET.get("client_id", "")
        client = get_application_model().objects.filter(client_id=client_id).only("remember_consent").first()
        query = request.GET.copy()
        query["approval_prompt"] = "auto" if client is not None and client.remember_consent else "force"
        request.GET = query
        return super().get(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        note(self.request, enforce("consent.user", str(self.request.user.pk)))
        response = super().form_valid(form)
        allowed = bool(form.cleaned_data.get("allow"))
        audit_record(event="consent.granted" if allowed else "consent.denied", actor=actor_label(self.request.user),
                     subject=f"client:{form.cleaned_data.get('client_id', '')}",
                     details={"scope": form.cleaned_data.get("scope", ""), "redirected": response.status_code == 302},
                     personal=request_personal(self.request))
        return response

    def redirect(self, redirect_to: str, application: Any) -> HttpResponse:
        # RFC 9207 §2: "In authorization responses to the client, including error responses", the
        # server MUST include iss. DOT adds it to successful responses only; error redirects
        # (invalid_scope, access_denied, missing PKCE, ...) came back without it. Only reached
        # with an already verified redirect URI, which can carry no fragment.
        if "iss" not in parse_qs(urlsplit(redirect_to).query, keep_blank_values=True):
            redirect_to += ("&" if "?" in redirect_to else "?") + urlencode({"iss": settings.ISSUER})
        return super().redirect(redirect_to, application)


_JSON_HEADERS = {"Content-Type": "application/json", **NO_STORE}
FORM = "application/x-www-form-urlencoded"


def _json(data: dict[str, Any], status: int = 200, **headers: str) -> HttpResponse:
    # The same bytes JsonResponse writes, without building a DjangoJSONEncoder per response.
    return HttpResponse(json.dumps(data), status=status, headers={**_JSON_HEADERS, **headers})


def _form(request: HttpRequest) -> dict[str, str] | None:
    """The form body as a dict: ``application/x-www-form-urlencoded`` (RFC 7662 §2.1) read without
    building a QueryDict, ``multipart/form-data`` through Django's parser, ``{}`` for another
    content type; None if it is malformed or repeats a parameter ("parameters MUST NOT be
    included more than once", RFC 6749 §3.2)."""
    if request.content_type != FORM:
        if request.content_type != "multipart/form-data":
            return {}
        lists = dict(request.POST.lists())
        return None if any(len(values) != 1 for values in lists.values()) else {k: v[0] for k, v in lists.items()}
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields = body.split("&") if body else []
    if len(fields) > settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:
        return None
    # urllib's parse_qsl, minus its generality: machine callers send a handful of fields whose
    # values (credentials, addresses) rarely need unescaping.
    form: dict[str, str] = {}
    try:
        for field in fields:
            if not field:
                continue
            name, _, value = field.partition("=")
            if "%" in name or "+" in name:
                name = unquote_plus(name, errors="strict")
            if "%" in value or "+" in value:
                value = unquote_plus(value, errors="strict")
            if name in form:
                return None
            form[name] = value
    except UnicodeDecodeError:
        return None
    return form


@csrf_exempt
@require_POST
@sensitive_post_parameters()
def introspect(request: HttpRequest) -> HttpResponse:
    """RFC 7662 token introspection.

    The caller must authenticate as a registered resource server (§2.1 requires some form of
    authorization); it learns only about tokens whose audience includes it (§4, RFC 8707).
    Tokens are accepted in the form body only, never in the query string (RFC 6750 §2.3).
    """
    if request.GET:
        return _json({"error": "invalid_request", "error_description": "Parameters belong in the body."}, 400)
    form = _form(request)
    trusted = generation.cache_trusted()  # once per request: may cached answers be served?
    resource_server = selectors.resource_server_authenticate(request=request, form=form or {}, trusted=trusted)
    if resource_server is None:
        client_auth_failed(request.META.get("REMOTE_ADDR"))  # authserver.anomaly
        return _json({"error": "invalid_client"}, 401, **{"WWW-Authenticate": 'Basic realm="introspection"'})
    note(request, enforce("introspect.rs", resource_server["client_id"]))
    if form is None:
        return _json({"error": "invalid_request", "error_description": "Malformed or repeated parameters."}, 400)
    token = form.get("token")
    if not token:
        return _json({"error": "invalid_request", "error_description": "The token parameter is required."}, 400)
    # The end caller's address, as the resource server saw it (API-key IP allowlists).
    client_ip = form.get("client_ip")
    answer = selectors.introspect_token(token=token, audience=resource_server["audience"],
                                        token_type_hint=form.get("token_type_hint"), client_ip=client_ip,
                                        trusted=trusted)
    if not answer["active"]:
        introspection_answered(resource_server["client_id"], answer, client_ip or request.META.get("REMOTE_ADDR"))
    return _json(answer)


class ServerMetadataView(dot_views.OAuthServerMetadataView):
    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        import json

        data = json.loads(response.content)
        secret_methods = ["client_secret_basic", "client_secret_post"]
        data["introspection_endpoint_auth_methods_supported"] = secret_methods
        data["revocation_endpoint_auth_methods_supported"] = [*secret_methods, "none"]
        data["code_challenge_methods_supported"] = ["S256"]
        data["response_modes_supported"] = ["query"]
        data["authorization_response_iss_parameter_supported"] = True
        new = JsonResponse(data)
        new["Access-Control-Allow-Origin"] = "*"
        return new


def healthz(request: HttpRequest) -> HttpResponse:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return _json({"status": "ok"})
