"""Reads of the staff plane: at which stage a staff member's session stands."""

from __future__ import annotations

from typing import Any

from django_otp import devices_for_user, user_has_device
from django_otp.models import Device

from authserver.staff.models import PasswordChangeRequired


def staff_must_change_password(*, user: Any) -> bool:
    return PasswordChangeRequired.objects.filter(user_id=user.pk).exists()


def staff_has_factor(*, user: Any) -> bool:
    """Any confirmed django-otp device: TOTP, recovery codes, passkeys (authserver.passkeys)."""
    return bool(user_has_device(user, confirmed=True))


def staff_factors(*, user: Any) -> list[Device]:
    return list(devices_for_user(user, confirmed=True))


def staff_is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)
