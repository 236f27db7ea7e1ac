"""``GET /metrics``: the Prometheus exposition, for whoever holds ``AUTHSERVER_METRICS_TOKEN`` only.

Without the token configured, or with anything but ``Authorization: Bearer <token>``, the answer
is the very 404 an unknown path gets (never a 401 or 405 that would say something lives here), so
the endpoint cannot be discovered. The comparison is constant-time (ASVS 11.2).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from authserver.observability import metrics


# CSRF-exempt so that a POST gets the unknown path's 404, not a 403 that would betray the route;
# nothing here changes state, and only GET with the token answers.
@csrf_exempt
def metrics_view(request: HttpRequest) -> HttpResponse:
    token: str = settings.METRICS_TOKEN
    presented = request.META.get("HTTP_AUTHORIZATION", "").encode("utf-8", "surrogateescape")
    authorised = bool(token) and hmac.compare_digest(presented, f"Bearer {token}".encode())
    if not authorised or request.method != "GET":
        raise Http404
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})
