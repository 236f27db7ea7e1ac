"""Read-only admin for access tokens, refresh tokens and authorization codes.

Registered by DOT itself through ``OAUTH2_PROVIDER["ACCESS_TOKEN_ADMIN_CLASS"]`` etc., so this
module registers nothing. The ``token``, ``token_checksum`` and ``code`` columns hold digests (the
values themselves are never stored) and are left out entirely: not listed, not searchable, not on
the detail page. Rows are identified by their ``hint`` (type and last four characters).

Nothing here can be added, edited or deleted; the only write is the "revoke selected" action,
which needs the model's change permission and goes through authserver.oauth.services (audited).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import ngettext

from authserver.adminkit import when
from authserver.oauth.services import access_tokens_revoke, grants_revoke, refresh_tokens_revoke
from authserver.staff.stepup import fresh_factor_required

USER_SEARCH = f"user__{get_user_model().USERNAME_FIELD}"


class ReadOnlyCredentialAdmin(admin.ModelAdmin):
    list_select_related = ("application", "user")
    search_fields = ("hint", "application__client_id", "application__name", USER_SEARCH)
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Credentials are revoked (keeping the tombstones reuse detection needs), never deleted
        # by hand; expired rows are removed by the cleanup job.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()

    @admin.display(description="audience")
    def audience(self, obj: Any) -> str:
        return ", ".join(obj.resource or []) or "—"

    @admin.display(description="client", ordering="application__name")
    def client(self, obj: Any) -> str:
        app = obj.application
        if app is None:
            return "—"
        return format_html('<span title="{}">{}</span>', app.client_id, app.name or app.client_id)

    @admin.display(description="created", ordering="created")
    def created_at(self, obj: Any) -> str:
        return _when(obj.created)

    @admin.display(description="expires", ordering="expires")
    def expires_at(self, obj: Any) -> str:
        return _when(obj.expires)


def _when(value: Any) -> str:
    return when(value)


class AccessTokenAdmin(ReadOnlyCredentialAdmin):
    list_display = ("hint", "client", "user", "scope", "audience", "created_at", "expires_at", "status")
    list_filter = ("created", "expires")
    date_hierarchy = "created"
    ordering = ("-created",)
    fields = (
        "hint",
        "application",
        "user",
        "scope",
        "audience",
        "created",
        "expires",
        "status",
        "source_refresh_token",
        "token_family",
    )
    actions = ("revoke_selected",)

    @admin.display(description="status")
    def status(self, obj: Any) -> str:
        return "expired" if obj.expires <= timezone.now() else "active"

    @admin.action(description="Revoke selected access tokens", permissions=["revoke"])
    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        revoked = access_tokens_revoke(pks=queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(request, ngettext("Revoked %d access token.", "Revoked %d access tokens.", revoked) % revoked)


class RefreshTokenAdmin(ReadOnlyCredentialAdmin):
    list_display = ("hint", "client", "user", "audience", "created_at", "family_expires_at", "revoked_at", "status")
    list_filter = ("created", "revoked")
    date_hierarchy = "created"
    ordering = ("-created",)
    fields = (
        "hint",
        "application",
        "user",
        "audience",
        "created",
        "updated",
        "family_expires",
        "revoked",
        "status",
        "access_token",
        "token_family",
    )
    actions = ("revoke_selected",)

    @admin.display(description="status")
    def status(self, obj: Any) -> str:
        if obj.revoked:
            return "revoked"
        if obj.family_expires and obj.family_expires <= timezone.now():
            return "expired"
        return "active"

    @admin.display(description="family expires", ordering="family_expires")
    def family_expires_at(self, obj: Any) -> str:
        return _when(obj.family_expires)

    @admin.display(description="revoked", ordering="revoked")
    def revoked_at(self, obj: Any) -> str:
        return _when(obj.revoked)

    @admin.action(description="Revoke selected refresh tokens", permissions=["revoke"])
    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        revoked = refresh_tokens_revoke(pks=queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(
            request, ngettext("Revoked %d refresh token.", "Revoked %d refresh tokens.", revoked) % revoked
        )


class GrantAdmin(ReadOnlyCredentialAdmin):
    list_display = ("hint", "client", "user", "scope", "audience", "created_at", "expires_at", "used_at", "status")
    list_filter = ("created", "expires", "used")
    date_hierarchy = "created"
    ordering = ("-created",)
    fields = (
        "hint",
        "application",
        "user",
        "scope",
        "audience",
        "redirect_uri",
        "code_challenge_method",
        "created",
        "expires",
        "used",
        "status",
        "token_family",
    )
    actions = ("revoke_selected",)

    @admin.display(description="status")
    def status(self, obj: Any) -> str:
        if obj.used:
            return "used"
        return "expired" if obj.expires <= timezone.now() else "pending"

    @admin.display(description="used", ordering="used")
    def used_at(self, obj: Any) -> str:
        return _when(obj.used)

    @admin.action(description="Revoke selected authorization codes", permissions=["revoke"])
    @fresh_factor_required  # step-up: a recent second factor (authserver.staff.stepup)
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        revoked = grants_revoke(pks=queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(
            request,
            ngettext("Revoked %d authorization code.", "Revoked %d authorization codes.", revoked) % revoked,
        )


class IDTokenAdmin(admin.ModelAdmin):
    """OIDC is off, so there are no ID tokens: keep the model out of the admin index."""

    list_display = ("jti", "user", "application", "expires")
    list_select_related = ("application", "user")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False

    def get_model_perms(self, request: HttpRequest) -> dict[str, bool]:
        return {}
