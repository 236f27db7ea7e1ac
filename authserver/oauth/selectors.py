"""Reads on the hot paths: resource-server authentication and token introspection."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from authserver import credentials, generation, hotcache
from authserver.anomaly.hooks import token_introspected
from authserver.hashers import CredentialHasher
from authserver.hotsql import HotQuery
from authserver.oauth.clientauth import basic_credentials, retired_secret_expiry

INACTIVE: dict[str, Any] = {"active": False}
_ACCESS_TOKEN_LENGTH = len(credentials.ACCESS_TOKEN) + 1 + credentials.BODY_LENGTH
_hasher = CredentialHasher()


def presented_client_credentials(request: HttpRequest, form: dict[str, str]) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from HTTP Basic (RFC 6749 §2.3.1) or the form body."""
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if auth:
        return basic_credentials(auth)
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if client_id and secret:
        return client_id, secret
    return None


def resource_server_authenticate(*, request: HttpRequest, form: dict[str, str],
                                 trusted: Any = generation.NOW) -> dict[str, Any] | None:
    """The authenticated resource server (``client_id``, ``audience``), or None.

    The secret's format is checked before the row is read, and the check is one SHA-256: no
    password hashing on a machine path (docs/decisions/0003-no-password-hashing.md). Successful authentications are
    kept in the in-process cache (authserver.hotcache) under the presented secret's digest, so a
    resource server calling all day costs no query; any change to a client bumps the revocation
    generation and drops them (authserver.generation). ``trusted`` is this request's
    ``generation.cache_trusted()``.
    """
    presented = presented_client_credentials(request, form)
    if presented is None:
        return None
    client_id, secret = presented
    if not 0 < len(client_id) <= 100 or len(secret) != len(credentials.CLIENT_SECRET) + 1 + credentials.BODY_LENGTH:
        return None
    cache_key = f"{client_id}\x00{credentials.digest(secret)}"
    cached = hotcache.resource_servers.get(cache_key, generation.trusted_now(trusted))
    if cached is not None:  # only ever stored for a well-formed secret that verified
        return cached
    if not credentials.is_well_formed(secret, credentials.CLIENT_SECRET):
        return None
    gen = generation.current()
    row = _RESOURCE_SERVER.one(client_id)
    if row is None:
        return None
    if _hasher.verify(secret, row["client_secret"]):
        until = time.time() + hotcache.TTL
    else:
        retired_until = retired_secret_expiry(row["id"], secret)
        if retired_until is None:
            return None
        until = retired_until.timestamp()
    del row["client_secret"]  # verified; the (hashed) secret need not sit in the cache
    hotcache.resource_servers.put(cache_key, row, expires_at=until, gen=gen)
    return row


_RESOURCE_SERVER = HotQuery(lambda client_id: get_application_model().objects.filter(
    client_id=client_id, is_resource_server=True).values("id", "client_id", "audience", "client_secret"))

_ACCESS_TOKEN = HotQuery(lambda digest: get_access_token_model().objects.filter(token_checksum=digest).values(
    "expires", "created", "scope", "resource", "application__client_id", "application__credentials_revoked_at",
    "user_id", "user__username"))


def _access_token_row(token: str, trusted: Any = generation.NOW) -> dict[str, Any] | None:
    """The live row for an access token: from the in-process cache, else one indexed query.

    Only a value of the right length is hashed; the full format check (pattern and checksum)
    runs on a miss, before the query: the caches only ever hold digests of well-formed values.
    """
    if len(token) != _ACCESS_TOKEN_LENGTH:
        return None
    trusted = generation.trusted_now(trusted)
    digest = credentials.digest(token)
    row = hotcache.access_tokens.get(digest, trusted)
    if row is not None:
        return row
    if hotcache.absent.get(digest, trusted) is not None or not credentials.is_well_formed(
            token, credentials.ACCESS_TOKEN):
        return None
    gen = generation.current()
    row = _ACCESS_TOKEN.one(digest)
    cutoff = row["application__credentials_revoked_at"] if row is not None else None
    if row is None or row["expires"] <= timezone.now() or (cutoff is not None and row["created"] <= cutoff):
        hotcache.absent.put(digest, True, expires_at=time.time() + hotcache.TTL, gen=gen)
        return None
    hotcache.access_tokens.put(digest, row, expires_at=row["expires"].timestamp(), gen=gen)
    return row


def introspect_token(*, token: str, audience: str, token_type_hint: str | None = None,
                     client_ip: str | None = None, trusted: Any = generation.NOW) -> dict[str, Any]:
    """RFC 7662 §2.2 answer for ``token`` as seen by the resource server ``audience``.

    Anything but a live access token or API key whose audience includes the caller is exactly
    ``{"active": false}``: unknown, malformed, expired, revoked, refresh tokens and credentials
    meant for another API are indistinguishable (RFC 7662 §4). The type is read from the
    credential's own prefix; ``token_type_hint`` can't make a credential pass for another type.
    ``trusted`` is this request's ``generation.cache_trusted()`` (None: use no cached answer).
    """
    kind = token.partition("_")[0]  # the full format check comes before any query (below)
    if kind == credentials.api_key_prefix():
        from keys.selectors import api_key_verify

        return api_key_verify(key=token, audience=audience, client_ip=client_ip, trusted=trusted)
    if kind != credentials.ACCESS_TOKEN:
        return dict(INACTIVE)
    row = _access_token_row(token, trusted)
    # _access_token_row never returns an expired row: a miss checks it, a hit is bounded by it.
    if row is None or audience not in (row["resource"] or []):
        return dict(INACTIVE)
    token_introspected(row["application__client_id"])  # per-client traffic (authserver.anomaly)
    answer: dict[str, Any] = {
        "active": True,
        "scope": row["scope"],
        "client_id": row["application__client_id"],
        "token_type": "Bearer",
        "exp": int(row["expires"].timestamp()),
        "iat": int(row["created"].timestamp()),
        "iss": settings.ISSUER,
        "aud": row["resource"],
    }
    if row["user_id"] is not None:
        answer["sub"] = str(row["user_id"])
        answer["username"] = row["user__username"]
    return answer
