"""The rows of the audit table for the admin (tests/audit/test_every_change_audited.py).

One row per admin action and per custom admin view: it prepares what it needs (which may write
events of its own), calls ``ctx.mark()``, does the one admin request, and returns what the trail
must hold after the mark. Read-only entries (a download, a chart, a QR code) expect no event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_otp.plugins.otp_static.models import StaticDevice

from authserver.anomaly.models import AnomalyPolicy, Baseline, Signal
from authserver.audit.models import AuditEvent
from authserver.staff.models import PasswordChangeRequired, TOTPDevice
from clients.models import Scope
from clients.webhooks.models import DeliveryStatus, WebhookDelivery
from keys.models import ApiKey
from keys.services import api_key_create, api_key_suspend
from tests.factories import make_client, make_resource_server
from tests.helpers import client_credentials


@dataclass
class Expect:
    event: str | None  # None: no state change, no event
    subject: str = ""
    count: int = 1
    details: Callable[[dict[str, Any]], bool] = field(default=lambda details: True)


@dataclass
class Ctx:
    http: Any
    admin: Any
    mark_id: int = 0

    def mark(self) -> None:
        self.mark_id = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def since(self) -> list[AuditEvent]:
        return list(AuditEvent.objects.filter(id__gt=self.mark_id).order_by("id"))

    def action(self, model: Any, action: str, objects: list[Any], **extra: Any) -> Any:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        data = {"action": action, "_selected_action": [str(o.pk) for o in objects], **extra}
        return self.http.post(url, data)

    def url(self, model: Any, name: str, *args: Any) -> str:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


Row = Callable[[Ctx], Expect]
ROWS: dict[tuple[str, str], Row] = {}


def row(label: str, name: str) -> Callable[[Row], Row]:
    def register(func: Row) -> Row:
        ROWS[(label, name)] = func
        return func

    return register


# -- "Delete selected" on every model that offers it: one event naming every object ------------------
def _users() -> list[Any]:
    return [get_user_model().objects.create_user(f"gone{n}") for n in range(2)]


def _beat_task(n: int) -> PeriodicTask:
    every = IntervalSchedule.objects.create(every=3600 + n, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(name=f"audit table task {n}", task="audit.seal", interval=every)


PAIRS: dict[str, Callable[[Ctx], list[Any]]] = {
    "auth.Group": lambda ctx: [Group.objects.create(name=f"group{n}") for n in range(2)],
    "auth.User": lambda ctx: _users(),
    "clients.Scope": lambda ctx: [Scope.objects.create(name=f"gone.scope{n}") for n in range(2)],
    "clients.Client": lambda ctx: [make_client(name=f"gone client {n}")[0] for n in range(2)],
    "django_celery_beat.PeriodicTask": lambda ctx: [_beat_task(n) for n in range(2)],
    "django_celery_beat.IntervalSchedule": lambda ctx: [
        IntervalSchedule.objects.create(every=7000 + n, period=IntervalSchedule.SECONDS) for n in range(2)],
    "django_celery_beat.CrontabSchedule": lambda ctx: [
        CrontabSchedule.objects.create(minute=str(n), hour="3") for n in range(2)],
    "django_celery_beat.SolarSchedule": lambda ctx: [
        SolarSchedule.objects.create(event="sunrise", latitude=10 + n, longitude=20) for n in range(2)],
    "django_celery_beat.ClockedSchedule": lambda ctx: [
        ClockedSchedule.objects.create(clocked_time=timezone.now() + timedelta(days=n + 1)) for n in range(2)],
    "staff.TOTPDevice": lambda ctx: [TOTPDevice.objects.create(user=ctx.admin, name=f"t{n}") for n in range(2)],
    "otp_static.StaticDevice": lambda ctx: [StaticDevice.objects.create(user=ctx.admin, name=f"s{n}")
                                            for n in range(2)],
    "anomaly.AnomalyPolicy": lambda ctx: [
        AnomalyPolicy.objects.create(signal=signal, action="alert") for signal in (Signal.VOLUME, Signal.NEW_NETWORK)],
    "anomaly.Baseline": lambda ctx: [Baseline.objects.create(subject=f"client:gone{n}") for n in range(2)],
    "staff.PasswordChangeRequired": lambda ctx: [PasswordChangeRequired.objects.create(user=user) for user in _users()],
    "oauth.IDToken": lambda ctx: [],  # filled in by the test module (needs the token models)
}


FACTORS = {"staff.TOTPDevice", "otp_static.StaticDevice"}


def bulk_delete(label: str) -> Row:
    def run(ctx: Ctx) -> Expect:
        objects = PAIRS[label](ctx)
        model = type(objects[0])
        ids = sorted(str(o.pk) for o in objects)
        ctx.mark()
        response = ctx.action(model, "delete_selected", objects, post="yes")
        assert response.status_code == 302, response.content[:500]
        assert not model._base_manager.filter(pk__in=ids).exists()
        if label in FACTORS:  # each removal is the staff plane's own event (authserver.staff.services)
            return Expect("staff.factor.removed", subject=f"user:{ctx.admin.pk}", count=2)
        return Expect("admin.deleted", subject=label,
                      details=lambda d: d["count"] == 2 and sorted(o["id"] for o in d["objects"]) == ids)

    return run


# -- our own actions and views: each goes through an audited service ----------------------------------
def _key(ctx: Ctx, **options: Any) -> ApiKey:
    client, _ = make_client(name="key owner")
    return api_key_create(client=client, name="table key", **options)[0]


@row("keys.ApiKey", "rotate")
def _(ctx: Ctx) -> Expect:
    key = _key(ctx)
    ctx.mark()
    response = ctx.http.post(ctx.url(ApiKey, "rotate", key.pk), {"grace": "1h", "_once": "t1"})
    assert response.status_code == 200
    return Expect("api_key.rotated", subject=f"key:{key.id}")


@row("keys.ApiKey", "revoke")
def _(ctx: Ctx) -> Expect:
    key = _key(ctx)
    ctx.mark()
    ctx.http.post(ctx.url(ApiKey, "revoke", key.pk), {"confirm": "yes"})
    return Expect("api_key.revoked", subject=f"key:{key.id}")


@row("keys.ApiKey", "suspend")
def _(ctx: Ctx) -> Expect:
    key = _key(ctx)
    ctx.mark()
    ctx.http.post(ctx.url(ApiKey, "suspend", key.pk))
    return Expect("api_key.suspended", subject=f"key:{key.id}")


@row("keys.ApiKey", "resume")
def _(ctx: Ctx) -> Expect:
    key = api_key_suspend(key=_key(ctx), actor="test")
    ctx.mark()
    ctx.http.post(ctx.url(ApiKey, "resume", key.pk))
    return Expect("api_key.resumed", subject=f"key:{key.id}")


@row("keys.ApiKey", "usage")
def _(ctx: Ctx) -> Expect:
    key = _key(ctx)
    ctx.mark()
    assert ctx.http.get(ctx.url(ApiKey, "usage", key.pk)).status_code == 200
    return Expect(None)


@row("keys.ApiKey", "compromise")
def _(ctx: Ctx) -> Expect:
    key = _key(ctx)
    ctx.mark()
    ctx.http.post(ctx.url(ApiKey, "compromise", key.client.pk), {"confirm": "yes"})
    return Expect("client.compromise_response", subject=f"client:{key.client.client_id}")


@row("keys.ApiKey", "compromise_response")
def _(ctx: Ctx) -> Expect:
    key = _key(ctx)
    ctx.mark()
    ctx.action(ApiKey, "compromise_response", [key], confirm="yes")
    return Expect("client.compromise_response", subject=f"client:{key.client.client_id}")


@row("clients.Client", "rotate_secret")
def _(ctx: Ctx) -> Expect:
    client, _ = make_client(name="rotated")
    ctx.mark()
    response = ctx.http.post(ctx.url(client, "rotate_secret", client.pk), {"grace_hours": "0", "_once": "t2"})
    assert response.status_code == 200
    return Expect("client.secret_rotated", subject=f"client:{client.client_id}")


@row("clients.Client", "rotate_webhook_secret")
def _(ctx: Ctx) -> Expect:
    client, _ = make_client(name="hooked")
    ctx.mark()
    response = ctx.http.post(ctx.url(client, "rotate_webhook_secret", client.pk), {"overlap_hours": "0", "_once": "t3"})
    assert response.status_code == 200
    return Expect("webhook.secret_created", subject=f"client:{client.client_id}")


@row("webhooks.WebhookDelivery", "retry_now")
def _(ctx: Ctx) -> Expect:
    client, _ = make_client(name="hooked")
    failed = [WebhookDelivery.objects.create(msg_id=f"msg_table{n}", client=client, event_type="t", payload={},
                                             status=DeliveryStatus.FAILED) for n in range(2)]
    ctx.mark()
    ctx.action(WebhookDelivery, "retry_now", failed)
    # One event per delivery retried (each is its own message to its receiver).
    return Expect("webhook.delivery_retried", subject=f"client:{client.client_id}", count=2)


@row("clients.Client", "revoke_tokens")
def _(ctx: Ctx) -> Expect:
    client, secret = make_client(name="revoked")
    client_credentials(ctx.http, client, secret)
    ctx.mark()
    ctx.http.post(ctx.url(client, "revoke_tokens", client.pk), {"confirm": "yes"})
    return Expect("client.tokens_revoked", subject=f"client:{client.client_id}",
                  details=lambda d: d.get("access_tokens", 1) == 1)


@row("clients.Client", "rotate_path_key")
def _(ctx: Ctx) -> Expect:
    rs, _ = make_resource_server()
    ctx.mark()
    response = ctx.http.post(ctx.url(rs, "rotate_path_key", rs.pk), {"confirm": "yes"})
    assert response.status_code == 302
    return Expect("resource_server.path_key_rotated", subject=f"client:{rs.client_id}",
                  details=lambda d: d == {"key_version": 2})


@row("auth.User", "password_change")
def _(ctx: Ctx) -> Expect:
    user = get_user_model().objects.create_user("someone", password="old password 1234")
    ctx.mark()
    new = "a brand new passphrase 42"
    response = ctx.http.post(reverse("admin:auth_user_password_change", args=[user.pk]),
                             {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302, response.content[:800]
    return Expect("user.password_changed", subject=f"user:{user.pk}",
                  details=lambda d: d["new_user"] is False and d["usable"] is True)


@row("audit.AuditEvent", "export_jsonl")
def _(ctx: Ctx) -> Expect:
    ctx.mark()
    response = ctx.action(AuditEvent, "export_jsonl", list(AuditEvent.objects.all()[:1]))
    b"".join(response.streaming_content)
    return Expect(None)  # a download, no change


# -- django-celery-beat's actions: one admin.action event naming the selected tasks -------------------
def beat_action(name: str) -> Row:
    def run(ctx: Ctx) -> Expect:
        tasks = [_beat_task(n) for n in range(2)]
        ctx.mark()
        ctx.action(PeriodicTask, name, tasks)
        ids = sorted(str(t.pk) for t in tasks)
        return Expect("admin.action", subject="django_celery_beat.PeriodicTask",
                      details=lambda d: d["action"] == name and sorted(o["id"] for o in d["objects"]) == ids)

    return run


for _name in ("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"):
    ROWS[("django_celery_beat.PeriodicTask", _name)] = beat_action(_name)
