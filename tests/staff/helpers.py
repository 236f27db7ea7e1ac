"""Driving the staff plane with the Django test client."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django_otp.oath import totp

from authserver.staff.models import TOTPDevice


def url(name: str = "") -> str:
    return f"/{settings.ADMIN_PATH}/security/{name}"


def admin(path: str = "") -> str:
    return f"/{settings.ADMIN_PATH}/{path}"


def code_for(device: TOTPDevice, *, offset: int = 0) -> str:
    """The code the authenticator shows now (``offset`` steps later), as a phone would compute it."""
    device.refresh_from_db()
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


def fresh_code(device: TOTPDevice) -> str:
    """A code django-otp has not seen yet (it refuses a TOTP code twice: ``last_t``)."""
    device.refresh_from_db()
    device.last_t = -1
    device.save(update_fields=["last_t"])
    return code_for(device)


def codes_in(response: Any) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]{19})</code></li>", response.content.decode())
