"""One 404 for everything that does not exist here (issue 15 §3, docs/endpoints.md "The uniform 404").

An unknown path, an OAuth endpoint under an expired or never-valid prefix, the fixed ``/oauth/...``
paths and the public well-known document in ``rotating`` mode, an unknown or revoked discovery URL
(``/d/...``), an admin URL that does not exist: all answer exactly these bytes and headers, so a
scanner learns nothing from which of them it hit. Hence:

* one body for browsers and clients alike: short, plain text, no framework's page, no language
  negotiation (a translated page or a JSON error object on some paths would tell them apart);
* no database, session or cache access to build it (it is a constant);
* no ``Set-Cookie``, no ``Vary``, a neutral ``Server`` (authserver.handlers sets ``-``).

:func:`response` returns a fresh copy, marked ``uniform_404``; the outermost middleware of both
stacks (authserver.handlers.UniformNotFoundMiddleware) replaces any response so marked with a fresh
copy after every other middleware has run, so nothing added on the way out (a CSP, ``Vary``, a
cookie) survives, and the full and the lean stack answer the same. Only the request id
(``X-Request-ID``, random per request unless the caller sent one) and the neutral ``Server`` are
added (authserver.handlers.ServedHandler).

Platform layer: imports nothing from the project.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

BODY = b"Not found.\n"
HEADERS = (
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


def response() -> HttpResponse:
    """The uniform 404: a fresh response each time (a response object is mutable)."""
    answer = HttpResponse(BODY, status=404)
    for name, value in HEADERS:
        answer[name] = value
    answer.uniform_404 = True  # type: ignore[attr-defined]
    # No "Not Found: <path>" WARNING from django.request: the access line already records every
    # request, a scanner's probes would flood the log, and the path may carry a capability
    # (/d/dc_…: a revoked or mistyped discovery URL) that must never be logged.
    answer._has_been_logged = True  # type: ignore[attr-defined]
    return answer


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The URL map's ``handler404`` (and every ``Http404``): the uniform answer, whatever the path."""
    return response()
