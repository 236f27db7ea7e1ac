"""Admin: a resource server's rotating paths, edited on its client page, and "Rotate path key".

``ResourcePathsAdmin`` is mixed into ``clients.admin.ClientAdmin``. The settings are an inline
shown on resource servers only (saved like any admin change: one ``admin.changed`` event naming
the fields); the key is never shown, only its version. Rotating it changes every alias at once,
so it asks for a recent second factor and a confirmation, like the other credential rotations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from authserver.adminkit import OneTimeCredentialAdmin
from authserver.staff.stepup import fresh_factor_required
from clients.resource_paths.models import ResourceServerPaths
from clients.resource_paths.services import path_key_rotate


class ResourceServerPathsInline(admin.StackedInline):
    model = ResourceServerPaths
    fields = ("rotating_paths", "public_url", "per_client_aliases", "window_seconds", "key_version", "key_rotated")
    readonly_fields = ("key_version", "key_rotated")
    extra = 1
    max_num = 1
    min_num = 0
    can_delete = False
    verbose_name = verbose_name_plural = "Rotating paths (docs/rotating-paths.md)"


class ResourcePathsAdmin(OneTimeCredentialAdmin):
    """The rotating-paths part of the client admin (a mixin: ClientAdmin derives from it)."""

    if TYPE_CHECKING:  # ClientAdmin's: the client, or the "doesn't exist" redirect; PermissionDenied
        def _client_for_change(self, request: HttpRequest, object_id: str) -> Any: ...

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[type[Any]]:
        inlines = list(super().get_inlines(request, obj))
        if obj is not None and obj.is_resource_server:
            inlines.append(ResourceServerPathsInline)
        return inlines

    def get_urls(self) -> list[Any]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_rotate_path_key"
        return [path("<path:object_id>/rotate-path-key/", self.admin_site.admin_view(self.rotate_path_key_view),
                     name=name),
                *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> Any:
        obj = self.get_object(request, unquote(object_id))
        extra_context = {**(extra_context or {}), "can_rotate_path_key": bool(
            obj is not None and obj.is_resource_server and self.has_change_permission(request, obj))}
        return super().change_view(request, object_id, form_url, extra_context)

    @fresh_factor_required  # step-up: every alias of the API changes (authserver.staff.stepup)
    def rotate_path_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method not in {"GET", "POST"}:
            return HttpResponseNotAllowed(["GET", "POST"])
        client = self._client_for_change(request, object_id)
        if isinstance(client, HttpResponse):
            return client
        change_url = reverse(f"{self.admin_site.name}:clients_client_change", args=[client.pk])
        if not client.is_resource_server:
            self.message_user(request, "Only a resource server has a path key.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            row = path_key_rotate(client=client, actor=request.user)
            summary = f"Rotated the path key (now version {row.key_version}): every alias changed."
            self.log_change(request, client, summary)
            self.message_user(request, summary, messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Rotate path key",
            "client": client, "original": client, "change_url": change_url,
            "paths": ResourceServerPaths.objects.filter(client=client).first(),
        }
        return TemplateResponse(request, "admin/clients/client/rotate_path_key.html", context)
