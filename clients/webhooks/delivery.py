"""One delivery attempt: claim the row, sign, POST, record the outcome and the next attempt.

Back-off (documented in the README): the first attempt right away, then retries 10 s, 1 min,
5 min, 30 min and 2 h after each failure: six attempts over about 2 h 36 min, then ``failed``
(the admin's "retry now" starts again). Only a 2xx answer counts as delivered; redirects are not
followed (a 3xx is a failure), the connection and the answer are bounded by timeouts, and only
the status code of the answer is kept.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from clients.models import Client, webhook_url_refusal
from clients.webhooks import signing
from clients.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret

log = logging.getLogger("clients.webhooks")
BACKOFF = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
           timedelta(hours=2))
MAX_ATTEMPTS = len(BACKOFF) + 1
TIMEOUT = (5.0, 10.0)  # connect, read (seconds)
# A claimed attempt holds the row this long (longer than both timeouts): a worker that dies
# mid-attempt leaves it to the sweep once the lease ends.
LEASE = timedelta(seconds=60)


def signing_keys(*, client: Client, now: datetime) -> list[str]:
    """The secrets that sign now, newest first: the current one and any still inside its overlap."""
    rows = WebhookSecret.objects.filter(Q(retires__isnull=True) | Q(retires__gt=now), client=client)
    return [row.secret for row in rows.order_by("-created")]


def deliveries_due(*, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Pending deliveries whose next attempt is due (for the sweep; each is claimed before it runs)."""
    due = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt__lte=now or timezone.now())
    return [str(pk) for pk in due.order_by("next_attempt").values_list("pk", flat=True)[:limit]]


def delivery_attempt(*, delivery_id: str) -> WebhookDelivery | None:
    """Attempt one due delivery; None if it is not due or another worker holds it."""
    import requests

    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt__lte=now).update(next_attempt=now + LEASE)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("client").get(pk=delivery_id)
    client = delivery.client
    url = client.webhook_url
    keys = signing_keys(client=client, now=now)
    error = ("no webhook URL" if not url else webhook_url_refusal(url)
             or ("no webhook secret: rotate one" if not keys else None))
    final = error is not None  # nothing a retry could change
    status_code = None
    if error is None:
        body = delivery.body()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "authserver-webhooks",
            "webhook-id": delivery.msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signing.signature_header(msg_id=delivery.msg_id, timestamp=timestamp,
                                                          body=body, keys=keys),
        }
        try:
            with requests.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False,
                               stream=True) as response:  # the answer's body is never read
                status_code = response.status_code
        except requests.RequestException as exc:
            error = type(exc).__name__
        else:
            error = None if 200 <= status_code < 300 else f"HTTP {status_code}"
    delivery.attempts += 1
    delivery.last_attempt = timezone.now()
    delivery.url = url[:500]
    delivery.last_status_code = status_code
    delivery.last_error = (error or "")[:200]
    if error is None:
        delivery.status, delivery.next_attempt = DeliveryStatus.DELIVERED, None
        delivery.delivered = delivery.last_attempt
    elif final or delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt = DeliveryStatus.FAILED, None
    else:
        delivery.next_attempt = delivery.last_attempt + BACKOFF[delivery.attempts - 1]
    delivery.save(update_fields=["attempts", "last_attempt", "url", "last_status_code", "last_error", "status",
                                 "delivered", "next_attempt"])
    log.info("webhook attempt", extra={"msg_id": delivery.msg_id, "client_id": client.client_id,
                                       "status": delivery.status, "http_status": status_code,
                                       "attempts": delivery.attempts})
    return delivery
