"""DOT's scopes seam backed by the admin-editable registry (``clients.Scope``)."""

from __future__ import annotations

from typing import Any

from oauth2_provider.scopes import BaseScopes


class DatabaseScopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        from clients.models import Scope

        return dict(Scope.objects.values_list("name", "description"))

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        from clients.models import Scope

        if application is None:
            return list(Scope.objects.values_list("name", flat=True))
        # oauthlib asks twice per token request (default scopes, then validation): one query.
        cached = getattr(request, "_authserver_scopes", None)
        if cached is not None and cached[0] == application.pk:
            return list(cached[1])
        names = list(application.allowed_scopes.values_list("name", flat=True))
        if request is not None:
            request._authserver_scopes = (application.pk, names)
        return names

    def get_default_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any) -> list[str]:
        # A request without ``scope`` gets everything the client is allowed (RFC 6749 §3.3 lets
        # the server pick a default; this is what client_credentials callers expect).
        if application is None:
            return []
        return self.get_available_scopes(application, request)
