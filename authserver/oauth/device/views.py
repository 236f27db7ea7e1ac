"""``POST oauth/device``: the device authorization endpoint (RFC 8628 §3.1-§3.2).

Client authentication is the token endpoint's (§3.1: confidential clients authenticate, public ones
send ``client_id``), under the same budgets of failed authentication; then the client must be
registered for the device grant, and its ``scope`` and RFC 8707 ``resource`` are checked as at the
authorization endpoint. The answer carries the device code and user code once; only digests stay.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.oauth2.rfc6749 import errors

from authserver.http import NO_STORE
from authserver.oauth.device.services import device_authorization_start
from authserver.oauth.views import CLIENT_CHALLENGE, _claimed_client_id, _client_authenticated, _limits_before_work
from clients.models import GRANT_DEVICE_CODE

MAX_RESOURCES = 10


def _error(error: errors.OAuth2Error) -> HttpResponse:
    response = HttpResponse(error.json, status=error.status_code, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    if error.status_code == 401:
        response["WWW-Authenticate"] = CLIENT_CHALLENGE  # RFC 6749 §5.2, as at the token endpoint
    return response


def _authorize(request: HttpRequest) -> HttpResponse:
    core = get_oauthlib_core()
    uri, method, body, headers = core._extract_params(request)
    oauth_request = OAuthlibRequest(uri, http_method=method, body=body, headers=headers)
    # DOT's client authentication treats a public client as identified by client_id for this grant.
    oauth_request.grant_type = GRANT_DEVICE_CODE
    try:
        if oauth_request.uri_query:
            # RFC 6749 §3.2 applies: parameters go in the form body, never the URL.
            raise errors.InvalidRequestError(description="Send parameters in the request body.")
        if any(len(request.POST.getlist(name)) > 1 for name in ("client_id", "client_secret", "scope")):
            # RFC 6749 §3.2: parameters MUST NOT be repeated (Django's form keeps only the last one).
            raise errors.InvalidRequestError(description="Repeated parameter.")
        claimed = _claimed_client_id(request)
        if oauth_request.client_id and claimed != oauth_request.client_id:
            raise errors.InvalidRequestError(description="Use one client authentication method.")
        oauth_request.client_id = claimed  # §3.1: a confidential client may send it in the Basic header only
        try:
            core.server.device_code_grant.validate_device_authorization_request(oauth_request)
        except errors.InvalidClientIdError as unknown:
            # An unknown client is a failed client authentication (RFC 6749 §5.2), as at the token endpoint.
            raise errors.InvalidClientError(request=oauth_request) from unknown
        client = oauth_request.client
        if not client.allows_grant_type(GRANT_DEVICE_CODE):
            raise errors.UnauthorizedClientError(request=oauth_request)
        resources = request.POST.getlist("resource")
        allowed = list(client.allowed_audiences or [])
        # RFC 8707 §2: each resource must be one this client is registered for; none means all of them.
        if len(resources) > MAX_RESOURCES or any(resource not in allowed for resource in resources):
            raise errors.CustomOAuth2Error(error="invalid_target", request=oauth_request,
                                           description="The requested resource is not allowed for this client.")
        _, device_code, user_code = device_authorization_start(
            client=client, scopes=list(oauth_request.scopes or []), resources=list(dict.fromkeys(resources)) or allowed)
    except errors.OAuth2Error as error:
        return _error(error)
    verification_uri = settings.ISSUER + reverse("accounts:device")
    return JsonResponse({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        # §3.3.1: the code in the URI pre-fills the page; the user still confirms what they see.
        "verification_uri_complete": f"{verification_uri}?user_code={user_code}",
        "expires_in": settings.DEVICE_CODE_SECONDS,
        "interval": settings.DEVICE_INTERVAL_SECONDS,
    })


@csrf_exempt  # a machine endpoint: no cookies, client authentication instead
@sensitive_post_parameters()
def device_authorization(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    network, claimed = _limits_before_work(request, "device.ip")

    def respond() -> HttpResponse:
        with transaction.atomic():
            return _authorize(request)

    response = _client_authenticated(request, respond, network=network, claimed=claimed)
    for name, value in NO_STORE.items():  # §3.2: the codes are credentials
        response[name] = value
    return response
