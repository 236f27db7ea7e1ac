"""The error pages a browser sees on the end-user routes: plain, generic, translated.

One template (``templates/errors/error.html``) for every status; nothing about the request, the
exception or the software behind the page is shown (no stack trace, no framework name: ASVS
14.3.2). The pages are rendered without the request's context, so a page answering a failed
database or session never touches either. The machine endpoints never get these pages: their
errors stay JSON (authserver.handlers).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.template import loader
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from authserver import handlers
from authserver.handlers import wants_json
from authserver.http import NO_STORE

PAGES: dict[int, tuple[Promise, Promise]] = {
    400: (_("Bad request"), _("The request could not be understood. Go back and try again.")),
    403: (_("Not allowed"), _("This request is not allowed. If you submitted a form, reload the page and "
                               "try again.")),
    404: (_("Page not found"), _("There is nothing at this address.")),
    405: (_("Not allowed"), _("This page cannot be used that way.")),
    429: (_("Too many attempts"), _("Too many attempts. Wait a few minutes before trying again.")),
    500: (_("Something went wrong"), _("The server could not complete the request. Try again later.")),
    503: (_("Temporarily unavailable"), _("The service is temporarily unavailable. Try again in a moment.")),
}

# What an error page keeps from the answer it replaces: when to come back, and what was allowed.
KEPT_HEADERS = ("Retry-After", "RateLimit", "RateLimit-Policy", "Allow", "Vary")


def error_page(status: int, *, replacing: HttpResponseBase | None = None,
               keep: Iterable[str] = KEPT_HEADERS) -> HttpResponse:
    """The page for ``status`` (a generic one for any status without its own words)."""
    title, message = PAGES.get(status, PAGES[500 if status >= 500 else 400])
    body = loader.get_template("errors/error.html").render({"status": status, "title": title, "message": message})
    response = HttpResponse(body, status=status)
    for name, value in NO_STORE.items():
        response[name] = value
    if replacing is not None:
        for name in keep:
            if name in replacing:
                response[name] = replacing[name]
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW: the generic 403 page (Django's own names itself and the cause)."""
    return error_page(403)


# The URL map's error handlers (authserver.urls): the machine endpoints keep their JSON error
# objects (authserver.handlers), every other route gets the page.

def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return handlers.bad_request(request, exception) if wants_json(request) else error_page(400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return handlers.permission_denied(request, exception) if wants_json(request) else error_page(403)


def server_error(request: HttpRequest) -> HttpResponse:
    return handlers.server_error(request) if wants_json(request) else error_page(500)
