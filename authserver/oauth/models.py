"""DOT's token models, swapped in from the first migration so no credential is ever stored usably.

Access and refresh tokens: DOT's ``COMPLIANT_BCP_RFC9700_TOKEN_STORAGE`` leaves the ``token``
column blank and keeps only ``token_checksum`` (SHA-256, unique-indexed for access tokens).
Authorization codes: DOT stores them in clear, so ``Grant.code`` is a :class:`HashedCredentialField`
that digests the value on every write *and* every lookup; DOT's own queries
(``Grant.objects.get(code=code)``) therefore keep working unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import AbstractAccessToken, AbstractGrant, AbstractIDToken, AbstractRefreshToken

from authserver import credentials, revocation
from authserver.observability import metrics
from authserver.revocation import feed

# A value that no digest can equal: what a lookup by a malformed code is turned into.
_NEVER_MATCHES = "!"


class HashedCredentialField(models.CharField):
    """Stores ``credentials.digest(value)``; raw credentials are digested before any query.

    A value that is not a well-formed credential of ``kind`` is turned into a value that matches
    nothing, so a stolen digest cannot be replayed as if it were the code itself.
    """

    def __init__(self, *args: Any, kind: str = credentials.AUTHORIZATION_CODE, **kwargs: Any) -> None:
        self.kind = kind
        kwargs.setdefault("max_length", 64)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[Any, ...]:
        name, path, args, kwargs = super().deconstruct()
        kwargs["kind"] = self.kind
        return name, path, args, kwargs

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return None
        if credentials.is_well_formed(value, self.kind):
            return credentials.digest(value)
        return _NEVER_MATCHES

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = getattr(model_instance, self.attname)
        if value and credentials.is_well_formed(value, self.kind) and not getattr(model_instance, "hint", ""):
            model_instance.hint = credentials.hint(value)  # type: ignore[attr-defined]
        return value


def _label(row: Any, kind: str) -> str:
    """What names a token or code readably: its hint (type and last four characters, never the
    value) and when it was made; the admin's delete confirmations list these."""
    # The hint starts with the type's prefix (at_, rt_, ac_); without one, the kind says it.
    return f"{row.hint or kind}{_created(row)}"


def _created(row: Any) -> str:
    return f" created {row.created:%Y-%m-%d %H:%M} UTC" if row.created else ""


class Grant(AbstractGrant):
    code = HashedCredentialField(unique=True, verbose_name="code digest")
    hint: models.CharField[str, str] = models.CharField(max_length=16, blank=True, editable=False)
    # Set, atomically and once, by the exchange that redeems the code. A second redemption finds
    # it set and revokes everything issued from this code (RFC 9700 §4.5.3, RFC 6749 §4.1.2).
    used: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, editable=False
    )
    token_family: models.UUIDField[UUID | None, UUID | None] = models.UUIDField(
        null=True, blank=True, editable=False, db_index=True
    )

    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"
        indexes = [models.Index(fields=["expires"])]
        verbose_name = "authorization code"

    def __str__(self) -> str:
        # Never the code (DOT's reason too: __str__ reaches breadcrumbs, tracebacks and logs).
        return _label(self, "authorization code")


class AccessToken(AbstractAccessToken):
    hint: models.CharField[str, str] = models.CharField(max_length=16, blank=True, editable=False)
    # The refresh-token family (or authorization code) this token descends from, so that reuse
    # detection can revoke every token of the family in one statement.
    token_family: models.UUIDField[UUID | None, UUID | None] = models.UUIDField(
        null=True, blank=True, editable=False, db_index=True
    )
    # The API key this token was exchanged for (RFC 8693); revoking the key deletes the token.
    source_api_key: models.UUIDField[UUID | None, UUID | None] = models.UUIDField(
        null=True, blank=True, editable=False, db_index=True
    )

    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"
        indexes = [models.Index(fields=["expires"]), models.Index(fields=["application", "expires"])]

    def __str__(self) -> str:
        return _label(self, "access token")


    def revoke(self) -> None:
        """Every revocation path (RFC 7009 endpoint, rotation, admin) ends here: fan it out."""
        super().revoke()
        _access_tokens_revoked([self.token_checksum])


def _access_tokens_revoked(checksums: list[str]) -> None:
    """After access tokens were deleted: drop cached answers everywhere and tell resource servers."""
    revocation.invalidate(events=feed.digests(feed.ACCESS_TOKEN, checksums))
    metrics.revocations.labels("access_token").inc()


class RefreshToken(AbstractRefreshToken):
    hint: models.CharField[str, str] = models.CharField(max_length=16, blank=True, editable=False)
    # Absolute end of the family: rotation hands the same deadline to every successor, so
    # refreshing forever is impossible.
    family_expires: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, editable=False, db_index=True
    )

    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"

    def __str__(self) -> str:
        return _label(self, "refresh token")

    def revoke(self) -> None:
        """DOT's revoke (claim the live row, delete its access token, mark the row revoked) in two
        statements where DOT takes a savepoint and five: every refresh rotates, so this runs per refresh.

        A conditional UPDATE claims the row: of two concurrent revocations exactly one changes it
        (DOT decided that with SELECT ... FOR UPDATE). One DELETE ... RETURNING then removes the
        access token (nothing else refers to it: the only reference, this row's, was just cleared)
        and names the digest resource servers must forget. An instance that is no longer what the
        row holds (revoked meanwhile, or another access token) is left to DOT's own path, which
        reads the row afresh.
        """
        if self.pk is None:
            super().revoke()
            return
        now = timezone.now()
        with transaction.atomic(savepoint=False):
            claimed = type(self).objects.filter(pk=self.pk, revoked__isnull=True, access_token_id=self.access_token_id
                                                ).update(access_token=None, revoked=now, updated=now)
            if claimed:
                self._revoke_claimed(now)
            else:
                super().revoke()  # its access token goes through AccessToken.revoke, which tells resource servers
            feed.record(feed.digests(feed.REFRESH_TOKEN, [self.token_checksum]))
        metrics.revocations.labels("refresh_token").inc()

    def _revoke_claimed(self, now: datetime) -> None:
        access: list[str] = []
        if self.access_token_id is not None:
            table = connection.ops.quote_name(AccessToken._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE id = %s RETURNING token_checksum",  # noqa: S608
                               [self.access_token_id])
                access = [row[0] for row in cursor.fetchall()]
        self.access_token, self.revoked, self.updated = None, now, now
        if access:
            _access_tokens_revoked(access)

    @classmethod
    def revoke_family(cls, token_family: Any) -> None:
        """DOT's family revocation, plus the access tokens we tag with the family directly."""
        if not token_family:
            return
        # What resource servers must forget, read before the bulk statements take it away: the
        # family's live refresh tokens and every access token issued from it (C7).
        family = cls.objects.filter(token_family=token_family)
        refresh = list(family.filter(revoked__isnull=True).values_list("token_checksum", flat=True))
        access = list(AccessToken.objects.filter(Q(token_family=token_family) | Q(
            pk__in=family.values("access_token_id"))).values_list("token_checksum", flat=True))
        super().revoke_family(token_family)
        AccessToken.objects.filter(token_family=token_family).delete()
        # Reuse detection is a revocation: seen everywhere first.
        revocation.invalidate(settle=True, events=[*feed.digests(feed.REFRESH_TOKEN, refresh),
                                                   *feed.digests(feed.ACCESS_TOKEN, access)])


class IDToken(AbstractIDToken):
    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"
        verbose_name = "ID token"

    def __str__(self) -> str:
        return f"ID token for {self.user or 'no user'}{_created(self)}"
