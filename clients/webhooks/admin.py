"""Admin: the client's webhook signing secret (shown once, rotatable) and the delivery log.

``ClientWebhookAdmin`` is mixed into ``clients.admin.ClientAdmin``: a webhook URL saved for the
first time creates the client's ``whsec_`` secret, and the answer to that POST is the page that
shows it once (``Cache-Control: no-store``; never in a URL, the session, a message or a log);
"Rotate webhook secret" issues a new one, the old one signing next to it for the overlap.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join

from authserver.adminkit import OneTimeCredentialAdmin, once_token
from authserver.staff.stepup import fresh_factor_required, is_fresh, step_up
from clients.webhooks.delivery import signing_keys
from clients.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret
from clients.webhooks.services import (
    WebhookError,
    webhook_delivery_retry,
    webhook_secret_ensure,
    webhook_secret_rotate,
)

_WHSEC_ATTR = "_authserver_new_webhook_secret"  # on the request object only, for this one response


class RotateWebhookSecretForm(forms.Form):
    overlap_hours = forms.IntegerField(
        label="Overlap (hours)", min_value=0, max_value=30 * 24,
        initial=lambda: settings.WEBHOOK_SECRET_OVERLAP_SECONDS // 3600,
        help_text="How long the current secret keeps signing next to the new one (both signatures are "
        "sent), so the receiver can switch over. 0 drops it now. At most 720 hours (30 days).")


class ClientWebhookAdmin(OneTimeCredentialAdmin):
    """The webhook-secret part of the client admin (a mixin: ClientAdmin derives from it)."""

    @admin.display(description="webhook signing secrets")
    def webhook_signing(self, obj: Any) -> str:
        if obj is None or obj.pk is None:
            return "—"
        now = timezone.now()
        rows = WebhookSecret.objects.filter(client=obj).order_by("-created")
        return format_html_join(
            ", ", "{} ({})",
            ((row.hint, "current" if row.retires is None else
              f"signs until {row.retires:%Y-%m-%d %H:%M} UTC" if row.retires > now else "ended")
             for row in rows)) or "none (set a webhook URL, or rotate, to create one)"

    def get_urls(self) -> list[Any]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_rotate_webhook_secret"
        return [path("<path:object_id>/rotate-webhook-secret/",
                     self.admin_site.admin_view(self.rotate_webhook_secret_view), name=name),
                *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> Any:
        # Pointing a client's notifications somewhere else (which may show its first signing secret)
        # asks for a recent second factor, like the other reveal-once flows; other edits do not.
        if request.method == "POST" and not is_fresh(request):
            client = self.get_object(request, unquote(object_id))
            if client is not None and str(request.POST.get("webhook_url", "")).strip() != (client.webhook_url or ""):
                return step_up(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        whsec = webhook_secret_ensure(client=obj, actor=request.user)
        if whsec:
            setattr(request, _WHSEC_ATTR, whsec)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        whsec = getattr(request, _WHSEC_ATTR, None)
        if whsec:
            self.message_user(request, "The webhook signing secret was created.", messages.SUCCESS)
            return self.webhook_secret_response(request, obj, whsec, title="Webhook signing secret created")
        return super().response_change(request, obj)

    def webhook_secret_response(self, request: HttpRequest, client: Any, whsec: str, *, title: str) -> HttpResponse:
        """The one and only response that carries a plaintext webhook secret."""
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": title, "client": client,
            "webhook_secret": whsec,
            "previous": WebhookSecret.objects.filter(client=client, retires__gt=timezone.now()),
            "change_url": reverse(f"{self.admin_site.name}:clients_client_change", args=[client.pk]),
        }
        return self.once_response(request, "admin/clients/client/webhook_secret_once.html", context)

    @fresh_factor_required  # step-up: the new secret is shown once (authserver.staff.stepup)
    def rotate_webhook_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method not in {"GET", "POST"}:
            return HttpResponseNotAllowed(["GET", "POST"])
        client = self.get_object(request, unquote(object_id))
        if client is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, client):
            raise PermissionDenied
        if request.method == "POST" and self.once_already_done(request) == str(client.pk):
            return self.once_resubmitted(request, client.pk, "The webhook secret was already rotated")
        form = RotateWebhookSecretForm(request.POST if request.method == "POST" else None)
        again = self.once_again_refusal(request, "rotate_webhook_secret", client.pk, "The webhook secret was rotated")
        if again:
            form.is_valid()
            form.add_error(None, again)
        elif request.method == "POST" and form.is_valid():
            hours = form.cleaned_data["overlap_hours"]
            try:
                _, whsec = webhook_secret_rotate(client=client, overlap=timedelta(hours=hours), actor=request.user)
            except WebhookError as exc:
                form.add_error(None, str(exc))
            else:
                self.log_change(request, client, f"Rotated the webhook signing secret (overlap {hours} h).")
                self.once_mark_done(request, client.pk)
                self.once_mark_acted(request, "rotate_webhook_secret", client.pk)
                return self.webhook_secret_response(request, client, whsec, title="Webhook signing secret rotated")
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Rotate webhook signing secret",
            "client": client, "original": client, "form": form, "once": once_token(request), "ask_again": bool(again),
            "signing": len(signing_keys(client=client, now=timezone.now())),
            "change_url": reverse(f"{self.admin_site.name}:clients_client_change", args=[client.pk]),
        }
        return TemplateResponse(request, "admin/clients/client/rotate_webhook_secret.html", context)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: read-only; "retry now" re-attempts failed or waiting deliveries."""

    # The table fits the page: the error, the URL and the payload are on each delivery's own page.
    list_display = ("created", "client_name", "event_type", "status", "attempts", "last_status_code", "next_attempt")
    list_filter = ("status", "event_type", "client")
    search_fields = ("msg_id", "client__client_id", "client__name", "event_type")
    ordering = ("-created",)
    readonly_fields = ("msg_id", "client", "event_type", "payload", "status", "attempts", "next_attempt", "url",
                       "last_status_code", "last_error", "created", "last_attempt", "delivered")
    fields = readonly_fields
    actions = ("retry_now",)
    list_select_related = ("client",)

    @admin.display(description="client", ordering="client__name")
    def client_name(self, obj: WebhookDelivery) -> str:
        return str(obj.client.name or obj.client.client_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the view permission shows the log; nothing in a delivery is edited by hand

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Retry now", permissions=["view"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        if not request.user.has_perm("webhooks.change_webhookdelivery"):
            raise PermissionDenied
        retried = 0
        for delivery in queryset.exclude(status=DeliveryStatus.DELIVERED).select_related("client"):
            webhook_delivery_retry(delivery=delivery, actor=request.user)
            retried += 1
        self.message_user(request, f"{retried} deliveries queued for an attempt now "
                          f"({queryset.count() - retried} already delivered, left alone).", messages.SUCCESS)
