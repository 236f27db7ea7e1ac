"""Content-Security-Policy on every page a browser renders (ASVS 14.4.3).

django-csp builds the header from ``settings.CONTENT_SECURITY_POLICY``; this module only decides
where it goes and widens it where one page needs it:

- :class:`PageCSPMiddleware` skips JSON answers (the machine endpoints, the management API, the
  metadata document) and empty ones (redirects, the revocation endpoint's 200): a browser renders
  none of them, and they already carry ``nosniff``. Every other answer gets the policy: the admin,
  login, consent, Django's error pages, static files. It is a browser-only middleware
  (``authserver.handlers.BROWSER_ONLY_MIDDLEWARE``): the lean handler of the machine endpoints
  never runs it.
- :func:`allow_form_redirect`: ``form-action`` also governs the redirects that follow a form's
  submission (CSP Level 3, ``form-action``; Chromium enforces it), so the consent form, whose POST
  answers ``302`` to the client's redirect URI, names that URI's origin in its page's policy, and
  nothing wider; so does the login page that continues an authorization request (its POST may
  redirect through ``/oauth/authorize`` straight to the client when the consent is remembered).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.decorators import csp_update
from csp.middleware import CSPMiddleware
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class PageCSPMiddleware(CSPMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.get("Content-Type", "").startswith("application/json") or _empty(response):
            return response
        return super().process_response(request, response)


def _empty(response: HttpResponseBase) -> bool:
    # Nothing to render (a redirect, the revocation endpoint's empty 200): as on the lean handler.
    return not getattr(response, "streaming", False) and not getattr(response, "content", b"")


def form_target_source(uri: str) -> str | None:
    """The CSP source expression that admits a redirect to ``uri``: its origin, or for a private-use
    scheme of a native client (RFC 8252 §7.1, ``com.example.app:/cb``) the scheme alone."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or any(c in uri for c in " ;,'\"\r\n"):
        return None  # nothing a policy could carry without changing its meaning
    if scheme in ("http", "https"):
        return f"{scheme}://{parts.netloc}" if parts.netloc else None
    return f"{scheme}:"


def allow_form_redirect(request: HttpRequest, response: HttpResponseBase, uri: str) -> HttpResponseBase:
    """``response``'s page may submit a form that ends in a redirect to ``uri`` (a verified redirect URI)."""
    source = form_target_source(uri)
    if source is None:
        return response
    # django-csp's own per-response update: its csp_update decorator, applied to this one answer.
    return csp_update({"form-action": [source]})(lambda _request: response)(request)
