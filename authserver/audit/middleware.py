"""Every browser request is one acting scope (authserver.audit.context): the signed-in user acts.

Only on the full (browser) stack: the machine endpoints have no session user and audit with
explicit actors (authserver.handlers.BROWSER_ONLY_MIDDLEWARE keeps this off their path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authserver.audit.context import acting, actor_label


class AuditScopeMiddleware:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        def actor() -> str:
            user = getattr(request, "user", None)
            return actor_label(user) if getattr(user, "is_authenticated", False) else "anonymous"

        with acting(actor):
            return self.get_response(request)
