"""Reads of dynamic client registration: never a plaintext credential (hints only)."""

from __future__ import annotations

from django.db.models import QuerySet

from authserver import credentials
from clients.registration.models import InitialAccessToken, Registration


def registration_for_token(*, client_id: str, value: str | None) -> Registration | None:
    """RFC 7592 §3: the registration a ``rat_…`` manages, if it is the one for ``client_id``.

    A malformed token costs no query. A well-formed one for another client answers None like an
    unknown one (§2.1: 401 either way, so the caller learns nothing about other clients).
    """
    if value is None or not credentials.is_well_formed(value, credentials.REGISTRATION_ACCESS_TOKEN):
        return None
    found = Registration.objects.select_related("client").filter(token_digest=credentials.digest(value)).first()
    if found is None or found.client.client_id != client_id:
        return None
    return found


def initial_access_tokens_list() -> QuerySet[InitialAccessToken]:
    return InitialAccessToken.objects.order_by("-created_at", "-pk")
