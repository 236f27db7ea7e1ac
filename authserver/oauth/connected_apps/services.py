"""Taking an app's access back: ``consent_revoke`` (docs/connected-apps.md).

Everything ``client`` holds for ``user`` ends in one transaction: every access token, every
refresh-token family the user's refresh tokens belong to (whole families, so a token issued by
rotation can't survive: RFC 9700 §4.14.2), and every unredeemed authorization code. Resource
servers hear it through the revocation component before the caller answers (the revocation
stream and every worker's cache: ``revocation.invalidate(settle=True, events=...)``), so the next
introspection of any of those tokens is inactive.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver import revocation
from authserver.audit.context import actor_label
from authserver.audit.services import audit_record
from authserver.oauth.device.models import AUTHORIZED, DENIED, DeviceAuthorization
from authserver.observability import metrics
from authserver.revocation import feed
from clients.models import Client

log = logging.getLogger("authserver.oauth")


class NotConnected(Exception):
    """The client holds nothing for this user (or does not exist): nothing to revoke."""


def consent_revoke(*, user: Any, client_id: str, actor: Any) -> dict[str, int]:
    """Revoke every token, refresh family and pending code ``client_id`` holds for ``user``; the counts.

    Raises :class:`NotConnected` (and changes nothing) when there is nothing to revoke: the same
    answer for an unknown client and for one that holds only other users' tokens.
    """
    now = timezone.now()
    with transaction.atomic():
        client = Client.objects.filter(client_id=client_id[:255]).first()
        if client is None:
            raise NotConnected(client_id)
        mine = Q(user=user, application=client)
        refresh_model, access_model, grant_model = (get_refresh_token_model(), get_access_token_model(),
                                                    get_grant_model())
        # The user's families with this client: every token of those families goes, whoever it was
        # issued to by rotation (the family is the unit of a grant, RFC 9700 §4.14.2).
        families = set(refresh_model.objects.filter(mine, token_family__isnull=False)
                       .values_list("token_family", flat=True))
        in_family = Q(token_family__in=families) & Q(application=client)
        refresh_rows = refresh_model.objects.select_for_update().filter((mine | in_family), revoked__isnull=True)
        refresh_digests = list(refresh_rows.values_list("token_checksum", flat=True))
        access_rows = access_model.objects.filter(mine | in_family)
        access_digests = list(access_rows.values_list("token_checksum", flat=True))
        refresh = refresh_rows.update(revoked=now, updated=now, access_token=None)
        access_model.objects.filter(token_checksum__in=access_digests).delete()
        codes = grant_model.objects.filter(mine, used__isnull=True).update(used=now, expires=now)
        # A device approval the device has not collected yet (RFC 8628 §3.5) is access granted too.
        devices = DeviceAuthorization.objects.filter(user=user, client=client, status=AUTHORIZED,
                                                     redeemed__isnull=True).update(status=DENIED, expires=now)
        counts = {"access_tokens": len(access_digests), "refresh_tokens": refresh, "authorization_codes": codes,
                  "device_authorizations": devices}
        if not any(counts.values()):
            raise NotConnected(client_id)
        # Every worker's cache and every resource server's (the revocation stream) before we answer.
        revocation.invalidate(settle=True, events=[*feed.digests(feed.ACCESS_TOKEN, access_digests),
                                                   *feed.digests(feed.REFRESH_TOKEN, refresh_digests)])
        audit_record(event="consent.revoked", actor=actor_label(actor), subject=f"client:{client.client_id}",
                     details=counts)
    metrics.revocations.labels("access_token").inc(len(access_digests))
    metrics.revocations.labels("refresh_token").inc(refresh)
    log.info("consent revoked", extra={"client_id": client.client_id, "actor": actor_label(actor), **counts})
    return counts
