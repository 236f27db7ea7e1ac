"""HTTP endpoints. DOT's views do the protocol work; these add what DOT does not.

* ``TokenView``: one transaction per exchange, so a code replay detected mid-exchange and the
  tokens of the winning exchange are decided atomically.
* ``AuthorizationView``: consent is remembered only when the client is registered for it (DOT
  lets the *client* ask for ``approval_prompt=auto``; we do not); the whole request is validated
  before the user is asked (authserver.oauth.authorization_request); a consent
  form that comes back unusable gets a 400 page, never a redirect to a URI nobody verified.
* ``TokenView`` and ``RevokeTokenView``: a 401 challenges with ``Basic`` (RFC 6749 §5.2).
Introspection (RFC 7662) is its own package: authserver.introspection.
* ``ServerMetadataView``: RFC 8414 with what we really accept, at the endpoints' current URLs;
  ``discovery_document``: the same at a per-client discovery URL (``/d/<dc_…>``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider import views as dot_views
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_application_model
from oauth2_provider.signals import app_authorized
from oauthlib.oauth2.rfc6749 import errors

from authserver import endpoints, events, notfound
from authserver.audit.context import actor_label, request_personal
from authserver.audit.services import audit_record
from authserver.csp import allow_form_redirect
from authserver.handlers import json_error
from authserver.http import NO_STORE
from authserver.netaddr import client_address, client_network
from authserver.oauth import client_credentials
from authserver.oauth.authorization_request import check_authorization_request
from authserver.oauth.cimd import services as cimd
from authserver.oauth.clientauth import basic_credentials
from authserver.oauth.consent import consent_audiences
from authserver.oauth.limits import client_admit
from authserver.ratelimit.failures import failure_record, network_limit_and_budget_check
from authserver.ratelimit.limiter import RateLimited, collect_into, collect_start, enforce, note
from authserver.revocation import feed
from clients.discovery import selectors as discovery_selectors

log = logging.getLogger("authserver.oauth")


# Every POST field of a machine endpoint can carry a credential (code, code_verifier,
# refresh_token, subject_token, token, client_secret): none may appear in an error report.
_hide_all_post = method_decorator(sensitive_post_parameters())

# RFC 6749 §5.2: a 401 from the token endpoint MUST carry a challenge "matching the authentication
# scheme used by the client"; oauthlib sends RFC 6750's Bearer challenge. Basic is the only HTTP
# authentication scheme these endpoints take (a client that sent its secret in the body gets the
# same challenge: it names the scheme it may use).
CLIENT_CHALLENGE = 'Basic realm="oauth"'

def _claimed_client_id(request: HttpRequest) -> str | None:
    """The client id a request names (HTTP Basic, else the form; RFC 6749 §2.3.1), unverified."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        presented = basic_credentials(header)
        return presented[0] if presented else None
    return request.POST.get("client_id") or None


def _limits_before_work(request: HttpRequest, policy: str) -> tuple[str, str | None]:
    """The per-network limit ``policy``, then the named client's own budget of failed
    authentication on that network (authserver.ratelimit.failures), in one round trip to the
    counter store; raises RateLimited. Returns ``(network, claimed client id)`` for
    :func:`_client_authenticated`."""
    network = client_network(client_address(request.META))
    claimed = _claimed_client_id(request)
    note(request, network_limit_and_budget_check(policy, network=network, client_id=claimed))
    return network, claimed


def _client_authenticated(request: HttpRequest, respond: Callable[[], HttpResponse], *, network: str,
                          claimed: str | None) -> HttpResponse:
    """``respond()`` under the budgets of failed client authentication (authserver.ratelimit.failures),
    once :func:`_limits_before_work` has refused a client whose own budget is spent: 429 instead of
    401 once a budget the failure counts against is."""
    response: HttpResponse = respond()
    if response.status_code == 401:
        events.client_auth_failed.emit(network)
        refused = failure_record(client_id=claimed, network=network)
        if refused is not None:
            raise RateLimited(refused)
    return response


class BasicChallenge:
    """A 401 from oauthlib answered with the Basic challenge (token and revocation endpoints)."""

    @staticmethod
    def _challenge(answer: tuple[Any, dict[str, str], Any, int]) -> tuple[Any, dict[str, str], Any, int]:
        url, headers, body, status = answer
        if status == 401:
            headers = {**headers, "WWW-Authenticate": CLIENT_CHALLENGE}
        return url, headers, body, status

    def create_token_response(self, request: HttpRequest) -> tuple[Any, dict[str, str], Any, int]:
        return self._challenge(super().create_token_response(request))  # type: ignore[misc]

    def create_revocation_response(self, request: HttpRequest) -> tuple[Any, dict[str, str], Any, int]:
        return self._challenge(super().create_revocation_response(request))  # type: ignore[misc]


class TokenView(BasicChallenge, dot_views.TokenView):
    lean = True  # the differential test turns it off to run the oauthlib path on the same request

    @_hide_all_post
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Limits before any work: per network, then the budgets of failed client authentication
        # (per client and network, per network for unknown ids: one client's failures never refuse
        # another's correct secret); the per-client limit once the client has authenticated (validator).
        network, claimed = _limits_before_work(request, "token.ip")

        def respond() -> HttpResponse:
            # The plain client_credentials request is answered without oauthlib, with the same
            # decisions, rows and bytes; anything else goes on (authserver.oauth.client_credentials).
            if self.lean:
                lean = client_credentials.token_response(request, admit=client_admit)
                if lean is not None:
                    return lean
            # The revocation events of a rotation are recorded last, just before the commit
            # (authserver.revocation.feed.gathered): their order lock is then held that briefly.
            with transaction.atomic(), feed.gathered():
                # Not DOT's post(): it answers the device grant itself from its clear-text DeviceGrant
                # (a 500 without device_code, no slow_down); every grant goes through oauthlib here.
                return self.authorization_flow_token_response(request, *args, **kwargs)

        collect_start()  # the per-client decision (validator): its RateLimit fields, learned limit included
        response = _client_authenticated(request, respond, network=network, claimed=claimed)
        collect_into(request)
        if response.status_code == 200:
            # The grant, for the tokens-issued series (authserver.observability bounds the label).
            request.telemetry = (None, None, request.POST.get("grant_type"))  # type: ignore[attr-defined]
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
            return cast(HttpResponse, super().authorization_flow_token_response(request, *args, **kwargs))
        url, headers, body, status = self.create_token_response(request)
        response = HttpResponse(content=body, status=status)
        for key, value in headers.items():
            response[key] = value
        return response


class RevokeTokenView(BasicChallenge, dot_views.RevokeTokenView):
    @_hide_all_post
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        network, claimed = _limits_before_work(request, "revoke.ip")

        def respond() -> HttpResponse:
            with transaction.atomic():
                return cast(HttpResponse, super(RevokeTokenView, self).post(request, *args, **kwargs))

        return _client_authenticated(request, respond, network=network, claimed=claimed)


class AuthorizationView(dot_views.AuthorizationView):
    template_name = "oauth/authorize.html"
    # FormView would take PUT as a POST; the endpoint has GET and POST (RFC 6749 §3.1). The URL map
    # answers other methods with 405 before CSRF (authserver.handlers.allow_methods).
    http_method_names = ["get", "head", "post", "options"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        client_id = request.GET.get("client_id", "")
        # No client_id holds a NUL (PostgreSQL text cannot): don't ask, or the database error answers 503.
        client = (get_application_model().objects.filter(client_id=client_id).only("remember_consent").first()
                  if "\x00" not in client_id else None)
        query = request.GET.copy()
        query["approval_prompt"] = "auto" if client is not None and client.remember_consent else "force"
        # django-stubs type request.GET as an immutable QueryDict; any QueryDict is valid here.
        request.GET = query  # type: ignore[assignment]
        return cast(HttpResponse, super().get(request, *args, **kwargs))

    def validate_authorization_request(self, request: HttpRequest) -> tuple[Any, dict[str, Any]]:
        # RFC 6749 §4.1.2.1: oauthlib has verified the client and the redirect URI; what it leaves
        # to code creation (the PKCE challenge's form, the resources) is checked here, before the
        # user is asked, and an error goes to that verified redirect URI.
        scopes, credentials = super().validate_authorization_request(request)
        try:
            check_authorization_request(credentials["request"], resources=request.GET.getlist("resource"))
        except errors.OAuth2Error as error:
            raise OAuthToolkitError(error=error, redirect_uri=credentials["redirect_uri"]) from error
        return scopes, credentials

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        application = context.get("application")
        if application is not None and not context.get("error"):
            # The API the token is for (RFC 8707), each scope by its description, and "Not you?":
            # sign out and come back to this very request (authserver.accounts.views.pages).
            resources = str(context.get("resource") or "").split()
            context["apis"] = consent_audiences(client=application, resources=resources)
            context["scope_items"] = list(zip(context.get("scopes", []), context.get("scopes_descriptions", []),
                                              strict=True))
            context["this_request"] = self.request.get_full_path() if self.request.method == "GET" else ""
            # A self-registered client (RFC 7591, or a metadata document) named itself: nobody here
            # checked its name. A document's client is shown by the host that serves its document,
            # the one thing about it that is verified (draft-ietf-oauth-client-id-metadata-document,
            # security considerations).
            source = getattr(application, "registration_source", "manual")
            context["self_registered"] = source != "manual"
            context["document_host"] = cimd.host_of(application.client_id) if source == cimd.CIMD else ""
        return context

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().render_to_response(context, **response_kwargs)
        # The consent form's POST answers 302 to the client's (verified) redirect URI, and the CSP's
        # form-action governs that redirect too: the page names that origin (authserver.csp).
        if context.get("redirect_uri") and not context.get("error"):
            allow_form_redirect(self.request, response, str(context["redirect_uri"]))
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        # The hidden fields came back unusable (missing, NUL characters): nothing in them, the
        # redirect URI included, can be trusted, so no redirect (RFC 6749 §4.1.2.1): a 400 page.
        return self._refuse_form("The authorization form came back incomplete or malformed.")

    def _refuse_form(self, description: str) -> HttpResponse:
        error = errors.InvalidRequestError(description=description)
        return self.render_to_response({"error": error}, status=400)

    def form_valid(self, form: Any) -> HttpResponse:
        note(self.request, enforce("consent.user", str(self.request.user.pk)))
        # DOT looks the client up with .get(): an unknown client_id in the form was a 500.
        if not get_application_model().objects.filter(client_id=form.cleaned_data["client_id"]).exists():
            return self._refuse_form("The authorization form names no registered client.")
        response: HttpResponse = super().form_valid(form)
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
        if application is None:
            # DOT passes no client for errors found while validating the request; its schemes
            # (a loopback http URI for a native client, RFC 8252 §7.3) are the client's own.
            client_id = self.request.GET.get("client_id") or self.request.POST.get("client_id") or ""
            application = get_application_model().objects.filter(client_id=client_id).first()
        return cast(HttpResponse, super().redirect(redirect_to, application))


# RFC 8414 §2 allows members beyond the registry; these name the issue-15 endpoints by URL name
# (only those the URL map has: authserver.urls).
EXTRA_ENDPOINTS = (("path_key_endpoint", "path-key"), ("revocation_events_endpoint", "revocations"),
                   ("resource_discovery_endpoint", "rs-discovery"),
                   ("resource_metadata_endpoint", "resource-metadata"),  # RFC 9728, for the kit (issue 16)
                   ("device_authorization_endpoint", "device-authorization"))  # RFC 8628 §4


class ServerMetadataView(dot_views.OAuthServerMetadataView):
    """RFC 8414 at the well-known path (fixed mode) and at the per-client discovery URLs (both modes),
    with the endpoint URLs of the current mode and window (authserver.endpoints)."""

    def _get_endpoint_url(self, request: HttpRequest, view_name: str, required: bool = False) -> str | None:
        try:
            return endpoints.url(view_name)
        except NoReverseMatch:
            if required:
                raise
            return None

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        data = json.loads(response.content)
        for member, view_name in EXTRA_ENDPOINTS:
            found = self._get_endpoint_url(request, view_name)
            if found:
                data[member] = found
        if settings.DCR != "off":  # RFC 8414 §2: only when registration is open to someone (AUTHSERVER_DCR)
            data["registration_endpoint"] = endpoints.url("register")
        if endpoints.rotating():
            # The last moment the URLs above are accepted (the end of the next window): refetch before.
            data["endpoints_valid_until"] = endpoints.valid_until()
        secret_methods = ["client_secret_basic", "client_secret_post"]
        data["introspection_endpoint_auth_methods_supported"] = secret_methods
        data["revocation_endpoint_auth_methods_supported"] = [*secret_methods, "none"]
        data["code_challenge_methods_supported"] = ["S256"]
        data["response_modes_supported"] = ["query"]
        data["authorization_response_iss_parameter_supported"] = True
        # draft-ietf-oauth-client-id-metadata-document, AS metadata: present only when on (DOT says false,
        # from its own resolver's switch, which stays off: authserver.oauth.cimd resolves them).
        data.pop("client_id_metadata_document_supported", None)
        if cimd.enabled():
            data["client_id_metadata_document_supported"] = True
        new = JsonResponse(data)
        new["Access-Control-Allow-Origin"] = "*"
        return new


_metadata = ServerMetadataView.as_view()


@csrf_exempt  # no form, no session: the capability in the URL is the only credential
def discovery_document(request: HttpRequest, capability: str) -> HttpResponse:
    """``/d/<dc_…>``: the RFC 8414 document for whoever holds a live discovery capability (issue 15,
    C3); a malformed, unknown or revoked one gets the uniform 404 (no query for a malformed one),
    whatever the method: the capability is checked first, so only its holder learns that the URL
    takes GET and HEAD (405 otherwise)."""
    if discovery_selectors.capability_live(value=capability) is None:
        return notfound.response()
    if request.method not in {"GET", "HEAD"}:
        return json_error(405, "invalid_request", "Method not allowed; use GET or HEAD.", Allow="GET, HEAD")
    response: HttpResponse = _metadata(request)
    # A capability URL's answer is for its holder only, and the URLs in it change per window.
    for key, value in NO_STORE.items():
        response[key] = value
    response["Referrer-Policy"] = "no-referrer"
    return response

