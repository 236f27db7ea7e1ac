"""What the staff plane keeps of its own: which accounts must replace their password first, and the
authenticator apps (TOTP devices) whose seeds are encrypted at rest."""

from __future__ import annotations

import secrets
import time
from base64 import b32encode
from binascii import unhexlify
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP
from django_otp.util import random_hex

from authserver.crypto import EncryptedTextField

TOTP_ISSUER = "authserver"  # the name authenticator apps show next to the account


class PasswordChangeRequired(models.Model):
    """An account whose password was set for it once (``serve``'s first-run admin): its first login
    must choose a new password before anything else. Passwords set by the operator through
    ``createsuperuser`` or ``changepassword`` are their own and create no row."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="+")
    since = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "password changes required"

    def __str__(self) -> str:
        return f"password change required for user {self.user_id}"


def _new_id() -> int:
    return secrets.randbelow(2**63 - 1) + 1  # 63 random bits: a collision is an IntegrityError, never a mix-up


def _new_seed() -> str:
    return str(random_hex(20))  # 160 bits, RFC 4226's recommended length for HMAC-SHA1


class TOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """A staff member's authenticator app (RFC 6238 TOTP), django-otp's ``TOTPDevice`` with the seed
    encrypted at rest.

    django-otp keeps the seed as plaintext hex; it can't be hashed (every code is computed from it),
    so here it is an :class:`EncryptedTextField` bound to the row (a random primary key, known before
    the first insert) and re-encrypted by key rotation like every other encrypted column
    (docs/security.md, "The staff plane"). Verification is django-otp's: :class:`django_otp.oath.TOTP`
    with its tolerance, drift and "each time step once" rule; django-otp's throttling applies."""

    # Known before the first insert (the seed's ciphertext is bound to it), and an integer because
    # django-otp's persistent ids ("staff.totpdevice/<id>", kept in the session) parse it with int().
    id: models.BigIntegerField[int, int] = models.BigIntegerField(primary_key=True, default=_new_id, editable=False)
    key = EncryptedTextField(default=_new_seed, help_text="The hex seed, encrypted at rest.")
    step: models.PositiveSmallIntegerField[int, int] = models.PositiveSmallIntegerField(default=30)
    t0: models.BigIntegerField[int, int] = models.BigIntegerField(default=0)
    digits: models.PositiveSmallIntegerField[int, int] = models.PositiveSmallIntegerField(
        choices=[(6, 6), (8, 8)], default=6)
    tolerance: models.PositiveSmallIntegerField[int, int] = models.PositiveSmallIntegerField(default=1)
    drift: models.SmallIntegerField[int, int] = models.SmallIntegerField(default=0)
    last_t: models.BigIntegerField[int, int] = models.BigIntegerField(
        default=-1, help_text="The time step of the last accepted code.")

    class Meta(Device.Meta):
        verbose_name = "authenticator app"
        verbose_name_plural = "authenticator apps"

    def __str__(self) -> str:
        return f"authenticator app “{self.name}” of {self.user}"

    @property
    def bin_key(self) -> bytes:
        return unhexlify(self.key.encode())

    def verify_token(self, token: Any) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        try:
            number = int(token)
        except (TypeError, ValueError):
            verified = False
        else:
            totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
            totp.time = time.time()
            verified = totp.verify(number, self.tolerance, self.last_t + 1)
            if verified:
                self.last_t = totp.t()
                self.drift = totp.drift
                self.throttle_reset(commit=False)
                self.set_last_used_timestamp(commit=False)
                self.save()
        if not verified:
            self.throttle_increment(commit=True)
        return verified

    def get_throttle_factor(self) -> int:
        return 1

    @property
    def config_url(self) -> str:
        """The ``otpauth://`` URI an authenticator app scans (Google's Key URI format)."""
        label = f"{TOTP_ISSUER}:{self.user.get_username()}"
        params = urlencode({"secret": b32encode(self.bin_key).decode(), "algorithm": "SHA1",
                            "digits": self.digits, "period": self.step})
        return f"otpauth://totp/{quote(label)}?{params}&issuer={quote(TOTP_ISSUER)}"
