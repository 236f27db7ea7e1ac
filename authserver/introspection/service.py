"""Token introspection (RFC 7662): who is asking, what the credential is, what the caller may learn.

:func:`introspect` answers for one credential as seen by one authenticated resource server. The
credential's own prefix picks its resolver (credential format: docs/credentials.md); access
tokens are resolved here, and apps that mint other credentials register theirs in their
``AppConfig.ready`` (:func:`register_resolver`: the keys app registers API keys), so this module
never imports them. A ``token_type_hint`` can't make a credential pass for another type.

Anything but a live credential whose audience includes the caller is exactly ``{"active":
false}``: unknown, malformed, expired, revoked, refresh tokens and credentials meant for another
API are indistinguishable (RFC 7662 §4, RFC 8707).

Every lookup reads the in-process caches through the request's one
:class:`authserver.revocation.RequestView`; a miss costs one indexed query (a prepared statement,
:mod:`authserver.db`), a malformed credential none. Telemetry is emitted, never called
(:mod:`authserver.events`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from authserver import credentials, events, revocation
from authserver.db import PreparedLookup
from authserver.hashers import CredentialHasher
from authserver.oauth.clientauth import basic_credentials, retired_secret_expiry
from authserver.oauth.usability import access_token_usable
from authserver.revocation import RequestView

Answer = dict[str, Any]
# A resolver answers for one credential of its type: (credential, audience, client_ip, view).
Resolver = Callable[[str, str, "str | None", RequestView], Answer]

INACTIVE: Answer = {"active": False}
_ACCESS_TOKEN_LENGTH = len(credentials.ACCESS_TOKEN) + 1 + credentials.BODY_LENGTH
_CLIENT_SECRET_LENGTH = len(credentials.CLIENT_SECRET) + 1 + credentials.BODY_LENGTH
_hasher = CredentialHasher()


def presented_client_credentials(authorization: str, form: dict[str, str]) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from HTTP Basic (RFC 6749 §2.3.1) or the form body."""
    if authorization:
        return basic_credentials(authorization)
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if client_id and secret:
        return client_id, secret
    return None


def authenticate_resource_server(*, authorization: str, form: dict[str, str], view: RequestView,
                                 guard: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """The authenticated resource server (``id``, ``client_id``, ``audience``), or None.

    The secret's format is checked before the row is read, and the check is one SHA-256: no
    password hashing on a machine path (docs/decisions/0003-no-password-hashing.md).
    Successes are cached under the digest of the credentials exactly as presented (the
    ``Authorization`` value, or the form's pair), so a resource server calling all day costs one
    hash and no query; any change to a client invalidates them (clients.signals).

    ``guard(client_id)`` runs before credentials that missed the cache are verified, and may raise
    to refuse them (the budgets of failed authentication: a cache hit needs none, it verified).
    """
    cache_key = credentials.digest("basic\x00" + authorization if authorization else
                                   f"form\x00{form.get('client_id', '')}\x00{form.get('client_secret', '')}")
    cached = view.get(revocation.resource_servers, cache_key)
    if cached is not None:  # only ever stored for credentials that verified
        return cached  # type: ignore[no-any-return]
    presented = presented_client_credentials(authorization, form)
    if presented is None:
        return None
    client_id, secret = presented
    if guard is not None:
        guard(client_id)
    if not 0 < len(client_id) <= 100 or "\x00" in client_id or len(secret) != _CLIENT_SECRET_LENGTH:
        return None  # a NUL: no such client (PostgreSQL text cannot hold one; the query would fail)
    if not credentials.is_well_formed(secret, credentials.CLIENT_SECRET):
        return None
    generation = revocation.current()
    row = _RESOURCE_SERVER.one(client_id)
    if row is None:
        return None
    if _hasher.verify(secret, row["client_secret"]):
        until = time.time() + revocation.TTL
    else:
        retired_until = retired_secret_expiry(row["id"], secret)
        if retired_until is None:
            return None
        until = retired_until.timestamp()
    del row["client_secret"]  # verified; the (hashed) secret need not sit in the cache
    revocation.resource_servers.put(cache_key, row, expires_at=until, generation=generation)
    return row


_RESOURCE_SERVER = PreparedLookup(lambda client_id: get_application_model().objects.filter(
    client_id=client_id, is_resource_server=True).values("id", "client_id", "audience", "client_secret"))

_ACCESS_TOKEN = PreparedLookup(lambda digest: get_access_token_model().objects.filter(token_checksum=digest).values(
    "expires", "created", "scope", "resource", "application__client_id", "application__credentials_revoked_at",
    "user_id", "user__username"))


def access_token_row(token: str, view: RequestView) -> dict[str, Any] | None:
    """The live row for an access token: from the in-process cache, else one indexed query.

    Only a value of the right length is hashed; the full format check (pattern and checksum)
    runs on a miss, before the query: the caches only ever hold digests of well-formed values.
    Never returns an unusable row: a miss checks it, a hit is bounded by the token's expiry.
    """
    if len(token) != _ACCESS_TOKEN_LENGTH:
        return None
    digest = credentials.digest(token)
    row = view.get(revocation.access_tokens, digest)
    if row is not None:
        return row  # type: ignore[no-any-return]
    if view.get(revocation.unusable, digest) is not None or not credentials.is_well_formed(
            token, credentials.ACCESS_TOKEN):
        return None
    generation = revocation.current()
    row = _ACCESS_TOKEN.one(digest)
    if row is None or not access_token_usable(expires=row["expires"], created=row["created"],
                                              client_cutoff=row["application__credentials_revoked_at"],
                                              now=timezone.now()):
        revocation.unusable.put(digest, True, expires_at=time.time() + revocation.TTL, generation=generation)
        return None
    revocation.access_tokens.put(digest, row, expires_at=row["expires"].timestamp(), generation=generation)
    return row


def _introspect_access_token(token: str, audience: str, client_ip: str | None, view: RequestView) -> Answer:
    row = access_token_row(token, view)
    if row is None or audience not in (row["resource"] or []):
        return dict(INACTIVE)
    events.token_introspected.emit(row["application__client_id"])
    answer: Answer = {
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


_resolvers: dict[str, Resolver] = {credentials.ACCESS_TOKEN: _introspect_access_token}


def register_resolver(prefix: str, resolver: Resolver) -> None:
    """Answer introspections of credentials ``<prefix>_…`` with ``resolver`` (an app's ``ready``)."""
    if prefix in _resolvers and _resolvers[prefix] is not resolver:
        raise ValueError(f"a resolver for {prefix!r} credentials is already registered")
    _resolvers[prefix] = resolver


def introspect(*, credential: str, caller: dict[str, Any], client_ip: str | None, view: RequestView) -> Answer:
    """RFC 7662 §2.2 answer for ``credential`` as seen by the resource server ``caller``.

    ``client_ip`` is the end caller's address as the resource server saw it (API-key allowlists).
    """
    resolver = _resolvers.get(credential.partition("_")[0])  # the full format check comes before any query
    if resolver is None:
        return dict(INACTIVE)
    return resolver(credential, caller["audience"], client_ip, view)
