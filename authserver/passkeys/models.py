"""A staff member's passkey: one WebAuthn public-key credential, as a django-otp device."""

from __future__ import annotations

from django.db import models
from django_otp.models import Device, TimestampMixin


class PasskeyDevice(TimestampMixin, Device):
    """The public half of a credential the authenticator holds (WebAuthn §6.1 "credential record").

    Nothing here is secret: the public key verifies assertions and is stored as the authenticator
    sent it (COSE_Key, RFC 9053). ``sign_count`` is the authenticator's signature counter; one that
    goes backwards suggests a cloned authenticator (§6.1.1) and the assertion is refused.
    ``name`` (from django-otp) is what the staff member sees in their list.
    """

    # Base64url of the raw credential id (at most 1023 bytes, §5.8.3): unique across all users, so a
    # credential can never be enrolled twice nor answer for another account.
    credential_id: models.CharField[str, str] = models.CharField(max_length=1400, unique=True)
    public_key: models.BinaryField[bytes, bytes | memoryview] = models.BinaryField()
    sign_count: models.PositiveBigIntegerField[int, int] = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    aaguid: models.CharField[str, str] = models.CharField(max_length=36, blank=True, default="")
    backed_up: models.BooleanField[bool, bool] = models.BooleanField(default=False)

    class Meta(Device.Meta):
        verbose_name = "passkey"

    def verify_token(self, token: object) -> bool:
        # A passkey proves itself with a signed assertion (authserver.passkeys.services), never a typed token.
        return False
