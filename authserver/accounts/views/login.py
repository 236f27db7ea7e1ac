"""Login, rate-limited per network and per account before any password is checked."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from oauth2_provider.models import get_application_model

from authserver import endpoints
from authserver.csp import allow_form_redirect
from authserver.netaddr import client_address, client_network
from authserver.ratelimit.limiter import enforce, note


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = False

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Fails closed (503) if the limiter's store is down: guessing passwords must never be
        # unlimited (ASVS 6.3). The account key is the submitted name, existing or not, so the
        # limit says nothing about whether the account exists.
        note(request, enforce("login.ip", client_network(client_address(request.META))))
        username = str(request.POST.get("username", ""))[:150].strip().lower()
        note(request, enforce("login.account", username or "-"))
        return super().post(request, *args, **kwargs)

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().render_to_response(context, **response_kwargs)
        # Signing in to continue an authorization whose consent is remembered goes login POST →
        # 302 /oauth/authorize → 302 to the client, and the CSP's form-action governs every hop
        # (authserver.csp): this page names the client's redirect origin, if the request names a
        # registered one. Anything else stays 'self'.
        target = authorization_redirect_target(str(context.get(self.redirect_field_name) or ""))
        if target:
            allow_form_redirect(self.request, response, target)
        return response


def authorization_redirect_target(next_url: str) -> str | None:
    """The redirect URI the authorization request at ``next_url`` would end at, if it is one of
    its client's registered URIs (exact match, as the authorization endpoint checks it)."""
    parts = urlsplit(next_url)
    if parts.scheme or parts.netloc or not endpoints.is_endpoint_path(parts.path, "authorize"):
        return None
    query = parse_qs(parts.query)
    client_id, uris = query.get("client_id", [""])[0], query.get("redirect_uri", [])
    if not client_id or "\x00" in client_id or len(uris) > 1:
        return None
    client = get_application_model().objects.filter(client_id=client_id).first()
    if client is None:
        return None
    registered = client.redirect_uris.split()
    uri = uris[0] if uris else (registered[0] if len(registered) == 1 else "")
    return uri if uri and client.redirect_uri_allowed(uri) else None
