"""Every protocol decision DOT delegates passes through this one validator subclass.

What it adds to DOT's ``OAuth2Validator``:

* credential format checks before any cache or database work (docs/decisions/0001-one-credential-format.md);
* client secrets verified with a microsecond hash, plus a grace window for rotated secrets;
* authorization codes minted in our format, single-use, and replay revoking what they issued
  (RFC 6749 §4.1.2, RFC 9700 §4.5.3);
* tokens tagged with their family so reuse detection revokes everything descended from one grant;
* access-token lifetimes per client within the server maximum; an absolute refresh lifetime;
* audiences (RFC 8707 resource indicators) restricted to what the client is registered for, and
  defaulting to all of them.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from datetime import timedelta
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from authserver import credentials, revocation
from authserver.audit.services import audit_record
from authserver.netaddr import client_address
from authserver.oauth.authorization_request import check_authorization_request
from authserver.oauth.cimd import services as cimd
from authserver.oauth.clientauth import basic_credentials, retired_secret_expiry
from authserver.oauth.device.grant import DeviceCodeValidation
from authserver.oauth.usability import before_client_cutoff

log = logging.getLogger("authserver.oauth")

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
Client = get_application_model()


def _presented_client(request: Any) -> tuple[str | None, str | None]:
    """``(client_id, secret)`` the request carries: the Basic header if there is one (a malformed
    one yields an empty secret, which fails), else the body. Unvalidated."""
    header = request.headers.get("HTTP_AUTHORIZATION") or ""
    if header.partition(" ")[0].lower() == "basic":
        return basic_credentials(header) or (None, "")
    return getattr(request, "client_id", None), getattr(request, "client_secret", None)


class AuthServerValidator(DeviceCodeValidation, OAuth2Validator):
    # -- Client authentication (RFC 6749 §2.3.1) ----------------------------------------------
    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        client_id, secret = _presented_client(request)
        header = request.headers.get("HTTP_AUTHORIZATION") or ""
        if header.partition(" ")[0].lower() == "basic" and getattr(request, "client_secret", None):
            # RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request
            # (oauthlib would answer server_error for the mismatch).
            raise errors.InvalidRequestError(description="Use one client authentication method.", request=request)
        # A malformed secret fails here, before the client row is read.
        if secret is not None and not credentials.is_well_formed(secret, credentials.CLIENT_SECRET):
            return False
        return bool(super().authenticate_client(request, *args, **kwargs)) or bool(
            secret
            and request.client is not None
            and request.client.client_id == client_id
            and retired_secret_expiry(request.client.pk, secret) is not None
        )

    def validate_user(self, username: str, password: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        # RFC 9700 §2.4: the resource owner password credentials grant MUST NOT be used. oauthlib
        # checks the password (this method) *before* the client's grant type, so DOT's gate alone
        # left the token endpoint a password-guessing oracle (invalid_grant for a wrong password,
        # unauthorized_client for a right one) and an Argon2 CPU sink for any client. The password
        # is never looked at.
        raise errors.UnsupportedGrantTypeError(request=request)

    def _load_application(self, client_id: Any, request: Any) -> Any:
        """The client: registered, or described by a Client ID Metadata Document (authserver.oauth.cimd).

        A document's client is believed only until its document's max age; then the document is
        fetched again, and a failure refuses the client like an unknown one (fail closed).
        """
        # RFC 6749 Appendix A.1: a client_id is visible ASCII; PostgreSQL text cannot even hold a
        # NUL, and asking for one raised a database error that answered 503 "unavailable". Only a
        # document URL may be longer than our own ids (up to the column's 255).
        if not isinstance(client_id, str) or not client_id or "\x00" in client_id or len(client_id) > (
                cimd.MAX_URL_LENGTH if cimd.is_document_url(client_id) else 100):
            return None
        client = self._load_registered(client_id, request)
        if client is None:
            return self._resolve_document(client_id, request) if cimd.is_document_url(client_id) else None
        if client.registration_source == cimd.CIMD and (not cimd.enabled() or cimd.expired(client)):
            request.client = None
            return self._resolve_document(client_id, request)
        return client

    def _resolve_document(self, client_id: str, request: Any) -> Any:
        redirect_uri = getattr(request, "redirect_uri", None)
        client = cimd.cimd_client_resolve(
            client_id=client_id, redirect_uri=redirect_uri if isinstance(redirect_uri, str) else None,
            admit=self.cimd_fetch_admit, personal=self._personal(request))
        if client is None or not client.is_usable(request):
            return None
        request.client = client
        return client

    def cimd_fetch_admit(self, host: str) -> None:
        """Called before a document is fetched from ``host``; policy (a limit) raises to refuse."""
        return None

    def _load_registered(self, client_id: str, request: Any) -> Any:
        """The client, from the in-process cache (authserver.revocation) or DOT's query.

        A cached client is the row and its allowed scope names, stored under the revocation
        generation: any change to a client, its scopes or the scope registry bumps it
        (authserver.revocation). Each request gets a fresh instance built from the row.
        """
        if request.client is not None:
            return super()._load_application(client_id, request)
        cached = revocation.request_view().get(revocation.clients, client_id)
        if cached is not None:
            names, values, scopes = cached
            # JSON fields (lists, dicts) are copied: nothing a request does may reach the cache.
            client = Client.from_db(DEFAULT_DB_ALIAS, names,
                                    [copy.deepcopy(v) if isinstance(v, list | dict) else v for v in values])
            if client.is_usable(request):
                request.client = client
                request._authserver_scopes = (client.pk, list(scopes))
                return client
            return None
        generation = revocation.current()
        client = super()._load_application(client_id, request)
        if client is not None and isinstance(client, Client):
            scopes = tuple(client.allowed_scopes.values_list("name", flat=True))
            request._authserver_scopes = (client.pk, list(scopes))
            names = tuple(field.attname for field in Client._meta.concrete_fields)
            values = tuple(getattr(client, name) for name in names)
            revocation.clients.put(client_id, (names, values, scopes), expires_at=time.time() + revocation.TTL,
                                   generation=generation)
        return client

    # -- Authorization codes --------------------------------------------------------------------
    def save_authorization_code(
        self, client_id: str, code: dict[str, Any], request: Any, *args: Any, **kwargs: Any
    ) -> None:
        # Checked again here: the consent form's hidden fields (challenge, method, resources) may
        # have been changed since the request was checked before consent.
        resources = getattr(request, "resource", None) or []
        check_authorization_request(request, resources=resources.split() if isinstance(resources, str) else resources)
        # oauthlib generates its own code; ours replaces it in the same dict, which oauthlib then
        # puts in the redirect, so the client receives a code in our format.
        code["code"] = credentials.generate_authorization_code()
        self._create_authorization_code(request, code)

    def validate_code(self, client_id: str, code: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        if not credentials.is_well_formed(code, credentials.AUTHORIZATION_CODE):
            return False
        grant = Grant.objects.filter(code=code, application=client).select_related("user").first()
        if grant is None:
            return False
        if grant.used is not None:
            self._revoke_code_descendants(grant)
            return False
        if grant.is_expired() or not self._proves_possession(grant, request):
            return False
        family = uuid.uuid4()
        # The conditional UPDATE is the single point where a code is redeemed: of two concurrent
        # exchanges exactly one changes the row; the other sees 0 rows and is treated as a replay.
        won = Grant.objects.filter(pk=grant.pk, used__isnull=True).update(used=timezone.now(), token_family=family)
        if not won:
            grant.refresh_from_db(fields=["used", "token_family"])
            self._revoke_code_descendants(grant)
            return False
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        request._authserver_token_family = family
        request._authserver_grant = grant  # oauthlib asks about it again below: no re-reads
        return True

    @staticmethod
    def _redeemed_grant(code: str, request: Any) -> Any:
        grant = getattr(request, "_authserver_grant", None)
        return grant if grant is not None and getattr(request, "code", None) == code else None

    def get_code_challenge(self, code: str, request: Any) -> str | None:
        grant = self._redeemed_grant(code, request)
        return (grant.code_challenge or None) if grant is not None else super().get_code_challenge(code, request)

    def get_code_challenge_method(self, code: str, request: Any) -> str | None:
        grant = self._redeemed_grant(code, request)
        if grant is None:
            return cast(str | None, super().get_code_challenge_method(code, request))
        return grant.code_challenge_method or None

    def confirm_redirect_uri(self, client_id: str, code: str, redirect_uri: str, client: Any, *args: Any,
                             **kwargs: Any) -> bool:
        request = args[0] if args else kwargs.get("request")
        grant = self._redeemed_grant(code, request) if request is not None else None
        if grant is None:
            return cast(bool, super().confirm_redirect_uri(client_id, code, redirect_uri, client, *args, **kwargs))
        return cast(bool, grant.redirect_uri_allowed(redirect_uri))

    @staticmethod
    def _proves_possession(grant: Any, request: Any) -> bool:
        """PKCE and redirect URI checked before the code is spent.

        oauthlib checks both again after ``validate_code``; checking first means someone who
        intercepted a code without its verifier cannot burn it for the legitimate client.
        """
        verifier = getattr(request, "code_verifier", None)
        if grant.code_challenge_method != "S256" or not grant.code_challenge or not verifier:
            return False
        if not code_challenge_method_s256(verifier, grant.code_challenge):
            return False
        redirect_uri = getattr(request, "redirect_uri", None)
        return redirect_uri is None or grant.redirect_uri_allowed(redirect_uri)

    @staticmethod
    def _revoke_code_descendants(grant: Any) -> None:
        """RFC 6749 §4.1.2: a replayed code SHOULD revoke the tokens previously issued from it."""
        log.warning("authorization code replayed; revoking tokens issued from it", extra={"grant_id": grant.pk})
        if grant.token_family:
            RefreshToken.revoke_family(grant.token_family)
        audit_record(
            event="code.replayed",
            outcome="failure",
            actor=f"client:{grant.application.client_id}",
            subject=f"user:{grant.user_id}",
            details={"grant": grant.pk, "code": grant.hint, "family_revoked": str(grant.token_family or "")},
        )

    def invalidate_authorization_code(self, client_id: str, code: str, request: Any, *args: Any, **kwargs: Any) -> None:
        # validate_code already marked the code used; the row stays (until the cleanup job) so a
        # replay is recognised and answered by revoking the tokens it issued.
        return None

    # -- Token persistence ----------------------------------------------------------------------
    def save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> Any:
        # TokenView already holds the transaction; no savepoint round trip here.
        with transaction.atomic(savepoint=False):
            result = self._save_bearer_token(token, request, *args, **kwargs)
            client_id = request.client.client_id
            user = getattr(request, "user", None)
            audit_record(
                event="token.refreshed" if request.grant_type == "refresh_token" else "token.issued",
                actor=f"client:{client_id}",
                subject=f"user:{user.pk}" if user is not None else f"client:{client_id}",
                details={
                    "grant_type": request.grant_type,
                    "scope": token.get("scope", ""),
                    "aud": list(getattr(request, "resource", None) or []),
                    "access_token": credentials.hint(token["access_token"]),
                    "refresh_token": credentials.hint(token["refresh_token"]) if token.get("refresh_token") else None,
                    "api_key": getattr(request, "_authserver_api_key_id", None),
                },
                personal=self._personal(request),
            )
            return result

    @staticmethod
    def _personal(request: Any) -> dict[str, Any]:
        headers = getattr(request, "headers", None) or {}
        return {"ip": client_address(headers), "user_agent": str(headers.get("HTTP_USER_AGENT", ""))[:300]}

    def _create_access_token(
        self, expires: Any, request: Any, token: dict[str, Any], source_refresh_token: Any = None
    ) -> Any:
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
            hint=credentials.hint(token["access_token"]),
            token_family=self._family_for(request, source_refresh_token),
            source_api_key=getattr(request, "_authserver_api_key_id", None),
        )
        self._set_token_value(access_token, token["access_token"])
        access_token.save()
        return access_token

    @staticmethod
    def _family_for(request: Any, previous_refresh_token: Any) -> uuid.UUID | None:
        if previous_refresh_token is not None:
            return cast(uuid.UUID | None, previous_refresh_token.token_family)
        return getattr(request, "_authserver_token_family", None)

    def _create_refresh_token(
        self, request: Any, refresh_token_code: str, access_token: Any, previous_refresh_token: Any
    ) -> Any:
        if previous_refresh_token is not None:
            family, family_expires = previous_refresh_token.token_family, previous_refresh_token.family_expires
        else:
            family = self._family_for(request, None) or uuid.uuid4()
            family_expires = timezone.now() + timedelta(seconds=request.client.effective_refresh_token_lifetime())
        refresh_token = RefreshToken(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=family,
            family_expires=family_expires,
            resource=getattr(request, "resource", []),
            hint=credentials.hint(refresh_token_code),
        )
        self._set_token_value(refresh_token, refresh_token_code)
        refresh_token.save()
        return refresh_token

    def validate_refresh_token(self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        if not credentials.is_well_formed(refresh_token, credentials.REFRESH_TOKEN):
            return False
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            self._audit_refresh_reuse(refresh_token, client)
            return False
        instance = request.refresh_token_instance
        if instance.family_expires is not None and instance.family_expires <= timezone.now():
            return False
        # Compromise response (keys.services): nothing issued before the client's cut-off is usable.
        return not before_client_cutoff(created=instance.created, client_cutoff=request.client.credentials_revoked_at)

    def revoke_token(self, token: str, token_type_hint: str | None, request: Any, *args: Any, **kwargs: Any) -> None:
        # RFC 7009 §2.2: unknown and malformed tokens answer 200 just the same.
        if credentials.credential_type(token) not in {credentials.ACCESS_TOKEN, credentials.REFRESH_TOKEN}:
            return None
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        # Answer only once every worker has dropped its cached copy (authserver.revocation); the
        # token models recorded what resource servers must forget (its digest) as they revoked it.
        revocation.invalidate(settle=True, events=())
        client_id = getattr(request.client, "client_id", "")
        audit_record(
            event="token.revoked",
            actor=f"client:{client_id}",
            subject=f"client:{client_id}",
            details={"token": credentials.hint(token)},
            personal=self._personal(request),
        )
        return None

    @staticmethod
    def _audit_refresh_reuse(refresh_token: str, client: Any) -> None:
        """A revoked refresh token presented again: reuse detection fired (RFC 9700 §4.14.2)."""
        row = (
            RefreshToken.objects.filter(token_checksum=credentials.digest(refresh_token), revoked__isnull=False)
            .values("token_family", "application__client_id", "user_id")
            .first()
        )
        if row is None:
            return
        audit_record(
            event="token.refresh_reuse",
            outcome="failure",
            actor=f"client:{row['application__client_id']}",
            subject=f"user:{row['user_id']}",
            details={
                "refresh_token": credentials.hint(refresh_token),
                "family_revoked": str(row["token_family"] or ""),
            },
        )

    def validate_bearer_token(self, token: str, scopes: Any, request: Any) -> bool:
        if not credentials.is_well_formed(token, credentials.ACCESS_TOKEN):
            self._set_oauth2_error_on_request(request, None, scopes)
            return False
        return cast(bool, super().validate_bearer_token(token, scopes, request))

    # -- Audiences (RFC 8707) -------------------------------------------------------------------
    def _check_and_set_request_resource(self, request: Any) -> None:
        super()._check_and_set_request_resource(request)
        allowed = list(request.client.allowed_audiences or [])
        requested = list(request.resource or [])
        if not requested:
            # A token always names who it is for: without a resource parameter it is for every
            # audience the client is registered for. A client with none gets tokens no resource
            # server will accept (introspection is audience-bound), never unrestricted ones.
            request.resource = allowed
            return
        for resource in requested:
            if resource not in allowed:
                raise errors.CustomOAuth2Error(
                    error="invalid_target",
                    description="The requested resource is not allowed for this client.",
                    request=request,
                )
