"""Audit events that come from Django itself: logins and admin actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from authserver.audit.context import request_personal
from authserver.audit.services import audit_record

if TYPE_CHECKING:
    from django.contrib.contenttypes.models import ContentType


@receiver(user_logged_in)
def _login_success(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(
        event="login.success",
        actor=f"user:{user.pk}",
        subject=f"user:{user.pk}",
        personal={**request_personal(request), "username": user.get_username()},
    )


@receiver(user_login_failed)
def _login_failure(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    # Only the username is kept (encrypted); the password never reaches this receiver (Django
    # cleanses it), and nothing here says whether the account exists.
    audit_record(
        event="login.failure",
        outcome="failure",
        actor="anonymous",
        personal={**request_personal(request), "username": str(credentials.get("username", ""))[:150]},
    )


_ADMIN_ACTIONS = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}


@receiver(post_save, sender=LogEntry)
def _admin_action(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    # django-stubs leaves LogEntry.content_type an unparameterised ForeignKey.
    model = cast("ContentType", instance.content_type).model_class() if instance.content_type_id else None
    label = model._meta.label if model is not None else "unknown"
    audit_record(
        event=f"admin.{_ADMIN_ACTIONS.get(instance.action_flag, 'action')}",
        actor=f"user:{instance.user_id}",
        subject=f"{label}:{instance.object_id}",
        details={"object": instance.object_repr[:200], "change": instance.get_change_message()[:500]},
    )
