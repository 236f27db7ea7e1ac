"""Writes of the staff plane: second factors enrolled and removed, recovery codes, the forced password
change. Each appends its audit event in the same transaction (docs/security.md, "The staff plane").

Recovery codes are django-otp ``StaticToken`` rows, but the column holds a digest, never the code:
``StaticToken.token`` is 16 characters, so the digest is ``#`` and the first 15 hex digits of the
SHA-256 of the normalised code (60 bits). A code carries 80 random bits, so a stolen table does not
give the codes back, and the ``#`` (never part of a code) means that no code typed into a generic
django-otp form can ever equal a stored digest. Codes are checked only through :func:`recovery_code_use`.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction
from django_otp import devices_for_user
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from authserver.audit.services import audit_record
from authserver.staff.models import PasswordChangeRequired, TOTPDevice

RECOVERY_DEVICE_NAME = "recovery codes"
RECOVERY_CODE_COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without doubt


def _label(actor: Any) -> str:
    return f"user:{actor.pk}" if getattr(actor, "pk", None) is not None else str(actor)


def device_kind(device: Device) -> str:
    return {"totpdevice": "totp", "staticdevice": "recovery_codes"}.get(device._meta.model_name or "",
                                                                        device._meta.model_name or "device")


def recovery_code_digest(code: str) -> str:
    normalised = "".join(ch for ch in code.lower() if ch.isalnum())
    return "#" + hashlib.sha256(f"authserver-recovery:{normalised}".encode()).hexdigest()[:15]


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))  # 16 x log2(31) = 79 bits
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def staff_password_change_require(*, user: Any) -> None:
    PasswordChangeRequired.objects.get_or_create(user=user)


def staff_password_change_done(*, user: Any) -> None:
    PasswordChangeRequired.objects.filter(user=user).delete()


def totp_device_pending(*, user: Any) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled (one per account, reused until confirmed)."""
    device: TOTPDevice | None = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-created_at").first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)


def totp_device_confirm(*, device: TOTPDevice, token: str, actor: Any) -> bool:
    """Confirm a pending authenticator with a code it shows; only then does it count as a factor."""
    if device.confirmed or not device.verify_token(token.strip().replace(" ", "")):
        return False
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(event="staff.factor.enrolled", actor=_label(actor), subject=f"user:{device.user_id}",
                     details={"kind": "totp", "device": device.persistent_id})
    return True


def recovery_codes_generate(*, user: Any, actor: Any) -> list[str]:
    """Ten fresh single-use codes (the old ones stop working); the plaintext is returned once."""
    codes = [_new_code() for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_DEVICE_NAME,
                                                       defaults={"confirmed": True})
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(StaticToken(device=device, token=recovery_code_digest(c)) for c in codes)
        audit_record(event="staff.recovery_codes.generated", actor=_label(actor), subject=f"user:{user.pk}",
                     details={"count": len(codes), "device": device.persistent_id})
    return codes


def recovery_code_use(*, device: StaticDevice, code: str) -> bool:
    """Check and burn one recovery code (django-otp's throttling applies to the device).

    django-otp's ``StaticDevice.verify_token`` finds the token and then deletes it, so two requests
    racing with the same code could both pass. Here the burn is one ``DELETE``: only the request whose
    statement removed the row passes (PostgreSQL makes the other wait on the row, then finds it gone)."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return False
    with transaction.atomic():
        burned, _ = StaticToken.objects.filter(device=device, token=recovery_code_digest(code)).delete()
        if not burned:
            device.throttle_increment(commit=True)
            return False
        device.throttle_reset(commit=False)
        device.set_last_used_timestamp(commit=False)
        device.save()
    audit_record(event="staff.recovery_code.used", actor=f"user:{device.user_id}", subject=f"user:{device.user_id}",
                 details={"remaining": device.token_set.count()})
    return True


def factor_remove(*, device: Device, actor: Any) -> None:
    with transaction.atomic():
        audit_record(event="staff.factor.removed", actor=_label(actor), subject=f"user:{device.user_id}",
                     details={"kind": device_kind(device), "device": device.persistent_id})
        device.delete()


def factors_reset(*, user: Any, actor: Any) -> int:
    """Remove every second factor of ``user`` (a lost phone): the next login enrols again."""
    removed = 0
    for device in list(devices_for_user(user, confirmed=None)):
        factor_remove(device=device, actor=actor)
        removed += 1
    return removed
