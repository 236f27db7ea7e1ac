"""Browsers on the end-user pages get pages, never raw JSON or an empty body.

The refusals that happen outside any view answer JSON, written for clients: the rate limiter's 429
(``authserver.ratelimit.limiter.too_many``: a login or consent form submitted too often) and the
fail-closed boundary's 503 (``authserver.handlers``); a method a page does not take is an empty
405. On a page route (anything but the machine endpoints and the management API, whose errors stay
JSON: ``authserver.handlers.wants_json``) a request that accepts ``text/html`` gets the same status
as a page (authserver.accounts.views.errors) with ``Retry-After``, the RateLimit fields and
``Allow`` kept; anything else (curl, a script) keeps the JSON. First in ``settings.MIDDLEWARE``, so
it sees those answers, and browser-only (``BROWSER_ONLY_MIDDLEWARE``): the machine endpoints never
run it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.cache import patch_vary_headers

from authserver.accounts.views.errors import PAGES, error_page
from authserver.handlers import MACHINE_PATHS, wants_json


def accepts_html(request: HttpRequest) -> bool:
    return "text/html" in request.META.get("HTTP_ACCEPT", "")


class BrowserErrorPagesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code not in PAGES or wants_json(request) or not _unrendered(response):
            return response
        patch_vary_headers(response, ("Accept",))
        if not accepts_html(request):
            return response
        # The fail-closed answer may come before LocaleMiddleware ran: the language is chosen here.
        with translation.override(translation.get_language_from_request(request)):
            page = error_page(response.status_code, replacing=response)
        page["Content-Language"] = translation.get_language_from_request(request)
        return page


def _unrendered(response: HttpResponse) -> bool:
    """JSON written for clients, or nothing at all (Django's bare 405)."""
    if getattr(response, "streaming", False):
        return False
    return response.get("Content-Type", "").startswith("application/json") or not response.content


class PageLocaleMiddleware(LocaleMiddleware):
    """Django's ``LocaleMiddleware`` (the language from ``Accept-Language``) for the end-user pages
    only. The admin and the staff plane under ``ADMIN_PATH`` stay in English (their own labels are
    not translated, and half a German admin reads worse than an English one); the machine endpoints
    and the management API answer exactly as on the lean handler (no ``Content-Language``, no
    ``Vary: Accept-Language``). Browser-only."""

    def process_request(self, request: HttpRequest) -> None:
        if _untranslated(request):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            return
        super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if _untranslated(request):
            return response
        return super().process_response(request, response)


def _untranslated(request: HttpRequest) -> bool:
    path = request.path_info
    return path.startswith(f"/{settings.ADMIN_PATH}/") or path in MACHINE_PATHS or wants_json(request)
