"""What every part of the API key admin shares: URLs, the one-time key page, permissions.

The views of :class:`keys.admin.apikey.ApiKeyAdmin` live in modules by concept (lifecycle,
usage, compromise response); each is a mixin on :class:`ApiKeyAdminBase`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from authserver.adminkit import OneTimeCredentialAdmin
from keys.admin.display import quota_text, rate_limit_text
from keys.models import ApiKey


def shows_personal_data(request: HttpRequest) -> bool:
    """May this staff member see a key's last caller address? The audit trail's permission, the
    same one that reveals its addresses (authserver.audit.admin)."""
    return bool(request.user.has_perm("audit.view_personal_data"))


class OnlyDeletedWithTheirClient:
    """Keys are revoked, never deleted by hand: deleting a key row skips the revocation fan-out
    (cached answers would keep it working) and erases the audit trail. Compromise responses are
    the audit trail. So this admin offers no delete at all.

    Deleting the *client* still removes them (an explicit decision), and the client admin asks
    every related model's admin for delete permission while collecting what goes with it; there,
    and only there, defer to the model's delete permission so that decision isn't blocked.
    """

    opts: Any

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        match = getattr(request, "resolver_match", None)
        url_name = getattr(match, "url_name", "") or ""
        if url_name.startswith(f"{self.opts.app_label}_"):
            return False  # any view of this app's admins
        allowed: bool = super().has_delete_permission(request, obj)  # type: ignore[misc]
        return allowed


class ApiKeyAdminBase(OneTimeCredentialAdmin):
    # Submissions that showed a key are remembered so that reloading the page that showed it, or
    # going back to it, cannot issue or rotate a second time (see authserver.adminkit).
    once_bucket = "authserver_admin_keys_done"
    once_shown_advice = "the key was shown once and cannot be shown again. Rotate it if it was lost."

    def has_compromise_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request) and request.user.has_perm("clients.change_client")

    def _url(self, name: str, *args: Any) -> str:
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{name}", args=args)

    def _change_url(self, key: ApiKey) -> str:
        return self._url("change", key.pk)

    def _base_context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title,
                "show_personal": shows_personal_data(request), **extra}

    def _key_for_change(self, request: HttpRequest, object_id: str) -> ApiKey | HttpResponse:
        key: ApiKey | None = self.get_object(request, unquote(object_id))
        if key is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        return key

    def _key_response(
        self, request: HttpRequest, key: ApiKey, plaintext: str, *, title: str, previous: ApiKey | None = None
    ) -> HttpResponse:
        """The one and only response that carries a plaintext key."""
        context = self._base_context(
            request,
            title,
            key=key,
            original=key,
            plaintext=plaintext,
            previous=previous,
            rate_limit=rate_limit_text(key),
            quota=quota_text(key),
            change_url=self._change_url(key),
        )
        return self.once_response(request, "admin/keys/apikey/key_once.html", context)
