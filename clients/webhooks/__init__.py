"""Outgoing webhooks per the Standard Webhooks specification (https://www.standardwebhooks.com).

Every delivery carries ``webhook-id`` (the message id, the same on every retry),
``webhook-timestamp`` (the attempt's Unix time) and ``webhook-signature``: ``v1,<base64
HMAC-SHA256>`` over ``<id>.<timestamp>.<body>`` under the client's own ``whsec_`` secret
(one per endpoint, so no client can forge another's notifications). During a rotation's overlap
both the new and the previous secret sign, space-separated, as the specification allows.

Secrets are kept encrypted by the key store (they must be recoverable to sign) and shown once.
Deliveries are rows (``WebhookDelivery``): a side effect enqueued after the caller's commit,
attempted by a Celery task with exponential back-off, listed in the admin.
"""
