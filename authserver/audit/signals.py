"""Audit events that come from Django itself: logins and logouts, admin changes, password changes.

Admin changes: every ``ModelAdmin.log_addition/log_change/log_deletions`` in Django 5.2 ends in
``LogEntryManager.log_actions``, which writes one ``LogEntry`` with ``save()`` (a ``post_save``
signal) but several with ``bulk_create`` (no signal at all): "Delete selected" went unaudited.
:func:`install_admin_log_hook` wraps that one funnel, so every admin, ours and third-party ones,
writes exactly one event per logged action: ``admin.added``, ``admin.changed``, ``admin.deleted``;
a bulk delete is one ``admin.deleted`` naming every object. When the admin request already wrote
an event (its service audited the change: a rotated secret, a revoked key, a password), the log
entry adds none: one action, one event.

Passwords: :func:`_password_saved` compares the stored hash with the one being saved, on every
path (the admin's forms, the staff password change, ``changepassword``, ``createsuperuser``, any
``set_password`` and ``save``); the hash itself is never recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntryManager
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import get_hasher, identify_hasher, is_password_usable
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from authserver.audit.context import current_actor, request_personal, written_in_scope
from authserver.audit.services import audit_record


@receiver(user_logged_in)
def _login_success(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(
        event="login.success",
        actor=f"user:{user.pk}",
        subject=f"user:{user.pk}",
        personal={**request_personal(request), "username": user.get_username()},
    )


@receiver(user_logged_out)
def _logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:  # signing out a session that had no user: nothing happened
        return
    audit_record(event="logout", actor=f"user:{user.pk}", subject=f"user:{user.pk}",
                 personal=request_personal(request))


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


# -- admin changes ---------------------------------------------------------------------------------
_ADMIN_ACTIONS = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}


def _change_summary(message: Any) -> Any:
    """What changed, as Django's admin records it: field *names* only, never values."""
    if isinstance(message, list):
        return message
    try:
        return json.loads(message) if message else []
    except (TypeError, ValueError):
        return str(message)[:500]


def admin_logged(*, user_id: Any, objects: list[Any], action_flag: int, change_message: Any) -> None:
    """One event for one logged admin action (one object, or every object of a bulk delete)."""
    if not objects or written_in_scope():
        return  # nothing logged, or the service behind this admin action already wrote its event
    label = objects[0]._meta.label
    details: dict[str, Any] = {
        "model": label,
        "objects": [{"id": str(obj.pk), "repr": str(obj)[:200]} for obj in objects],
        "change": _change_summary(change_message),
    }
    if len(objects) > 1:
        details["count"] = len(objects)
    staff = get_user_model()._base_manager.filter(pk=user_id).first()
    audit_record(
        event=f"admin.{_ADMIN_ACTIONS.get(action_flag, 'action')}",
        actor=f"user:{user_id}",
        subject=f"{label}:{objects[0].pk}" if len(objects) == 1 else label,
        details=details,
        personal={"username": staff.get_username()} if staff is not None else None,
    )


def install_admin_log_hook() -> None:
    """Wrap ``LogEntryManager.log_actions`` once (the funnel of every ModelAdmin.log_*)."""
    original: Callable[..., Any] = LogEntryManager.log_actions
    if getattr(original, "audited", False):
        return

    def log_actions(self: Any, user_id: Any, queryset: Iterable[Any], action_flag: int, change_message: Any = "",
                    *, single_object: bool = False) -> Any:
        objects = list(queryset)  # read once: the caller may delete them right after
        result = original(self, user_id, objects, action_flag, change_message, single_object=single_object)
        admin_logged(user_id=user_id, objects=objects, action_flag=action_flag, change_message=change_message)
        return result

    log_actions.audited = True  # type: ignore[attr-defined]
    LogEntryManager.log_actions = log_actions  # type: ignore[method-assign]


# -- passwords -------------------------------------------------------------------------------------
_CHANGED = "_audit_password_changed"


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="audit.password_pre_save")
def _password_saving(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    setattr(instance, _CHANGED, None)
    if update_fields is not None and "password" not in update_fields:
        return
    if instance._state.adding or instance.pk is None:
        setattr(instance, _CHANGED, "created")
        return
    stored = sender._base_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored != instance.password and not _hash_upgrade(stored, instance, update_fields):
        setattr(instance, _CHANGED, "changed")


def _hash_upgrade(stored: str | None, instance: Any, update_fields: Any) -> bool:
    """``check_password()`` re-hashing the same password under the preferred hasher: no change
    (Django doesn't call it one either: it clears ``_password`` so no validator hears of it)."""
    if instance._password is not None or update_fields is None or set(update_fields) != {"password"}:
        return False
    if not stored or not is_password_usable(stored) or not is_password_usable(instance.password):
        return False
    try:
        old = identify_hasher(stored)
    except ValueError:
        return False
    preferred = get_hasher()
    return bool(old.algorithm != preferred.algorithm or preferred.must_update(stored))


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="audit.password_post_save")
def _password_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    how = getattr(instance, _CHANGED, None)
    if how is None:
        return
    setattr(instance, _CHANGED, None)
    audit_record(
        event="user.password_changed",
        actor=current_actor(),
        subject=f"user:{instance.pk}",
        details={"new_user": how == "created", "usable": instance.has_usable_password(),
                 "staff": bool(instance.is_staff), "superuser": bool(instance.is_superuser)},
        personal={"username": instance.get_username()},
    )
