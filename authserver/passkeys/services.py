"""Passkey ceremonies (W3C WebAuthn Level 2 §7.1 registration, §7.2 authentication) and their audit trail.

py_webauthn checks the responses; this module owns what it leaves to the relying party: the
challenge (minted here, kept in the server-side session, spent by the first answer, void after
:data:`CHALLENGE_SECONDS`), user verification (required: a passkey is "something you have" unlocked
by "something you are or know", ASVS 6.5), which credentials belong to which account, and the
signature counter. Every outcome is audited: ``passkey.enrolled``, ``passkey.removed``,
``passkey.passed``, ``passkey.failed`` (with the reason) and ``passkey.sign_count_regressed``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidJSONStructure, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from authserver.audit.services import audit_record
from authserver.passkeys.models import PasskeyDevice

SESSION_KEY = "passkeys.challenge"
CHALLENGE_SECONDS = 120  # the browser is given 60 s (the options' timeout); a little slack for the round trips
TIMEOUT_MS = 60_000
NAME_MAX = 64
KNOWN_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)


@dataclass(frozen=True)
class RelyingParty:
    """Who the ceremony is for (§5.4.2 ``rp.id``, §13.4.9 origin validation)."""

    id: str
    origins: tuple[str, ...]
    name: str = "authserver admin"


class PasskeyRefused(Exception):
    """A ceremony that did not prove what it claims; ``reason`` is audited, never shown in detail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _actor(user: Any) -> str:
    return f"user:{user.pk}"


def user_handle(user: Any) -> bytes:
    """The opaque, stable user handle (§14.6.1: no personal data): an HMAC of the user's pk, so a
    second enrolment on the same authenticator replaces its resident credential instead of adding one."""
    return salted_hmac("authserver.passkeys.user_handle", str(user.pk), algorithm="sha256").digest()[:32]


def factor_devices(user: Any) -> list[Any]:
    """The user's confirmed second factors that stand on their own (recovery codes are a fallback)."""
    return [d for d in devices_for_user(user, confirmed=True) if not isinstance(d, StaticDevice)]


def has_any_device(user: Any) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


# -- Challenges: server-side, single use, short-lived (§13.4.3) -----------------------------------

def _challenge_issue(session: MutableMapping[str, Any], purpose: str, challenge: bytes) -> None:
    # One outstanding challenge per session: a new ceremony voids the previous one.
    session[SESSION_KEY] = {"purpose": purpose, "challenge": bytes_to_base64url(challenge),
                            "expires": time.time() + CHALLENGE_SECONDS}


def _challenge_take(session: MutableMapping[str, Any], purpose: str) -> bytes:
    """Spend the session's challenge: whatever the answer, it can never be presented again."""
    stored = session.pop(SESSION_KEY, None)
    if not isinstance(stored, Mapping) or stored.get("purpose") != purpose:
        raise PasskeyRefused("no_challenge")
    if not isinstance(stored.get("expires"), float) or stored["expires"] < time.time():
        raise PasskeyRefused("challenge_expired")
    return base64url_to_bytes(str(stored["challenge"]))


def _text(value: Any) -> str:
    """An enum member of py_webauthn's structs (some are plain strings) as its wire value."""
    return str(getattr(value, "value", value))


def _reason(exc: Exception) -> str:
    """A short, stable reason for the audit trail from py_webauthn's message."""
    text = str(exc)
    for needle, reason in (("challenge", "wrong_challenge"), ("origin", "wrong_origin"), ("RP ID", "wrong_rp_id"),
                           ("User verification", "user_not_verified"), ("not present", "user_not_present"),
                           ("signature", "bad_signature")):
        if needle in text:
            return reason
    return "invalid_response"


def _descriptors(user: Any) -> list[PublicKeyCredentialDescriptor]:
    out = []
    for device in PasskeyDevice.objects.filter(user=user, confirmed=True):
        transports = [AuthenticatorTransport(t) for t in device.transports if t in KNOWN_TRANSPORTS]
        out.append(PublicKeyCredentialDescriptor(id=base64url_to_bytes(device.credential_id), transports=transports))
    return out


def _failed(user: Any, reason: str, personal: dict[str, Any], **details: Any) -> PasskeyRefused:
    audit_record(event="passkey.failed", outcome="failure", actor=_actor(user), subject=_actor(user),
                 details={"reason": reason, **details}, personal=personal)
    return PasskeyRefused(reason)


# -- Registration (§7.1) -----------------------------------------------------------------------------

def passkey_registration_options(*, user: Any, rp: RelyingParty, session: MutableMapping[str, Any]) -> str:
    options = generate_registration_options(
        rp_id=rp.id, rp_name=rp.name, user_id=user_handle(user), user_name=user.get_username(),
        timeout=TIMEOUT_MS, exclude_credentials=_descriptors(user),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED),
    )
    _challenge_issue(session, "register", options.challenge)
    return options_to_json(options)


def passkey_enrol(*, user: Any, rp: RelyingParty, session: MutableMapping[str, Any], credential: Any, name: str,
                  personal: dict[str, Any]) -> PasskeyDevice:
    """Verify an attestation (format "none" or any py_webauthn knows; §7.1) and store the credential."""
    try:
        challenge = _challenge_take(session, "register")
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp.id, expected_origin=list(rp.origins),
            require_user_verification=True)
    except PasskeyRefused as exc:
        raise _failed(user, exc.reason, personal, ceremony="register") from None
    except (InvalidRegistrationResponse, InvalidJSONStructure, ValueError, TypeError, KeyError) as exc:
        raise _failed(user, _reason(exc), personal, ceremony="register", error=str(exc)[:200]) from None
    transports = [_text(t) for t in (parsed.response.transports or [])]
    label = " ".join(str(name).split())[:NAME_MAX] or "Passkey"
    try:
        with transaction.atomic():
            device: PasskeyDevice = PasskeyDevice.objects.create(
                user=user, name=label, confirmed=True, credential_id=bytes_to_base64url(verified.credential_id),
                public_key=verified.credential_public_key, sign_count=verified.sign_count, transports=transports,
                aaguid=verified.aaguid, backed_up=verified.credential_backed_up)
            audit_record(event="passkey.enrolled", actor=_actor(user), subject=f"passkey:{device.pk}",
                         details={"user": user.pk, "name": label, "aaguid": verified.aaguid,
                                  "fmt": _text(verified.fmt), "backed_up": verified.credential_backed_up},
                         personal=personal)
    except IntegrityError:
        raise _failed(user, "duplicate_credential", personal, ceremony="register") from None
    return device


# -- Authentication (§7.2) ---------------------------------------------------------------------------

def passkey_authentication_options(*, user: Any, rp: RelyingParty, session: MutableMapping[str, Any]) -> str:
    # The user is already known (second factor): only their own credentials are allowed (§5.5 allowCredentials).
    options = generate_authentication_options(rp_id=rp.id, timeout=TIMEOUT_MS, allow_credentials=_descriptors(user),
                                              user_verification=UserVerificationRequirement.REQUIRED)
    _challenge_issue(session, "authenticate", options.challenge)
    return options_to_json(options)


def passkey_authenticate(*, user: Any, rp: RelyingParty, session: MutableMapping[str, Any], credential: Any,
                         personal: dict[str, Any]) -> PasskeyDevice:
    """Verify an assertion by one of ``user``'s passkeys; returns the device, or raises PasskeyRefused (audited)."""
    try:
        challenge = _challenge_take(session, "authenticate")
        parsed = parse_authentication_credential_json(credential)
    except PasskeyRefused as exc:
        raise _failed(user, exc.reason, personal, ceremony="authenticate") from None
    except (InvalidJSONStructure, ValueError, TypeError, KeyError) as exc:
        raise _failed(user, "invalid_response", personal, ceremony="authenticate", error=str(exc)[:200]) from None
    device, verified, refusal = _assert(user=user, rp=rp, parsed=parsed, challenge=challenge, personal=personal)
    if refusal is not None:
        # Audited on its own, outside the ceremony's transaction.
        reason, details = refusal
        if reason == "sign_count_regressed":
            audit_record(event="passkey.sign_count_regressed", outcome="failure", actor=_actor(user),
                         subject=f"passkey:{details['passkey']}", details=details, personal=personal)
            raise PasskeyRefused(reason)
        raise _failed(user, reason, personal, ceremony="authenticate", **details)
    assert device is not None and verified is not None
    return device


def _assert(*, user: Any, rp: RelyingParty, parsed: Any, challenge: bytes, personal: dict[str, Any]
            ) -> tuple[PasskeyDevice | None, Any, tuple[str, dict[str, Any]] | None]:
    """Check the assertion and, if good, advance the counter and audit the pass, in one transaction."""
    with transaction.atomic():
        # §7.2 step 6: the credential must be one of this user's; another account's is unknown here.
        device = (PasskeyDevice.objects.select_for_update()
                  .filter(user=user, confirmed=True, credential_id=parsed.id).first())
        if device is None:
            return None, None, ("unknown_credential", {})
        try:
            # The counter is compared below, after the signature is known to be good, so that a
            # forged response can never be recorded as a cloned authenticator.
            verified = verify_authentication_response(
                credential=parsed, expected_challenge=challenge, expected_rp_id=rp.id,
                expected_origin=list(rp.origins), credential_public_key=bytes(device.public_key),
                credential_current_sign_count=0, require_user_verification=True)
        except (InvalidAuthenticationResponse, ValueError, TypeError, KeyError) as exc:
            return None, None, (_reason(exc), {"passkey": device.pk, "error": str(exc)[:200]})
        # §7.2 step 21 / §6.1.1: a counter that does not grow (when either side is non-zero) means the
        # credential may have been cloned. Refused, and audited as its own event for the operator.
        if (verified.new_sign_count or device.sign_count) and verified.new_sign_count <= device.sign_count:
            return None, None, ("sign_count_regressed", {"passkey": device.pk, "stored": device.sign_count,
                                                         "presented": verified.new_sign_count})
        device.sign_count = verified.new_sign_count
        device.backed_up = verified.credential_backed_up
        device.last_used_at = timezone.now()
        device.save(update_fields=["sign_count", "backed_up", "last_used_at"])
        audit_record(event="passkey.passed", actor=_actor(user), subject=f"passkey:{device.pk}",
                     details={"sign_count": verified.new_sign_count}, personal=personal)
    return device, verified, None


def passkey_remove(*, user: Any, device_id: int, personal: dict[str, Any]) -> None:
    """Remove one of ``user``'s passkeys; refused if it is their last second factor (no lock-out)."""
    with transaction.atomic():
        device = PasskeyDevice.objects.select_for_update().filter(user=user, pk=device_id).first()
        if device is None:
            raise PasskeyRefused("unknown_passkey")
        if not any(d for d in factor_devices(user) if not (isinstance(d, PasskeyDevice) and d.pk == device.pk)):
            raise PasskeyRefused("last_factor")
        audit_record(event="passkey.removed", actor=_actor(user), subject=f"passkey:{device.pk}",
                     details={"user": user.pk, "name": device.name}, personal=personal)
        device.delete()
