"""Authorization codes: single use, bound to their client, short-lived, unforgeable.

RFC 6749 §4.1.2 / §4.1.3, RFC 9700 §4.5.3 (replay revokes what the code issued), OAuth 2.1 §4.1.3.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client as HttpClient
from django.utils import timezone

from authserver import credentials
from authserver.oauth.models import AccessToken, Grant, RefreshToken
from tests.factories import REDIRECT_URI
from tests.helpers import TOKEN_URL, basic_auth, exchange_code, introspect, obtain_code, refresh

pytestmark = pytest.mark.django_db

INACTIVE = {"active": False}


def test_code_reuse_fails_and_revokes_what_the_first_redemption_issued(client, web_client, user, resource_server):
    app, secret = web_client
    rs, rs_secret = resource_server
    client.force_login(user)
    code, verifier = obtain_code(client, app)

    first = exchange_code(client, app, secret, code, verifier)
    assert first.status_code == 200, first.content
    tokens = first.json()
    assert introspect(client, rs, rs_secret, tokens["access_token"]).json()["active"] is True

    second = exchange_code(client, app, secret, code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert "access_token" not in second.json()

    assert introspect(client, rs, rs_secret, tokens["access_token"]).json() == INACTIVE
    assert not AccessToken.objects.filter(application=app).exists()
    assert RefreshToken.objects.filter(application=app, revoked__isnull=True).count() == 0
    again = refresh(client, app, secret, tokens["refresh_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(application=app).exists()


def test_code_reuse_also_revokes_tokens_rotated_from_the_first_redemption(client, web_client, user, resource_server):
    app, secret = web_client
    rs, rs_secret = resource_server
    client.force_login(user)
    code, verifier = obtain_code(client, app)
    tokens = exchange_code(client, app, secret, code, verifier).json()
    rotated = refresh(client, app, secret, tokens["refresh_token"]).json()
    assert introspect(client, rs, rs_secret, rotated["access_token"]).json()["active"] is True

    assert exchange_code(client, app, secret, code, verifier).json()["error"] == "invalid_grant"
    assert introspect(client, rs, rs_secret, rotated["access_token"]).json() == INACTIVE
    assert refresh(client, app, secret, rotated["refresh_token"]).json()["error"] == "invalid_grant"


def test_code_of_client_a_presented_by_client_b(client, web_client, other_web_client, user):
    app_a, secret_a = web_client
    app_b, secret_b = other_web_client
    client.force_login(user)
    code, verifier = obtain_code(client, app_a)

    stolen = exchange_code(client, app_b, secret_b, code, verifier)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()
    assert Grant.objects.get(code=code).used is None

    legit = exchange_code(client, app_a, secret_a, code, verifier)
    assert legit.status_code == 200, legit.content
    assert AccessToken.objects.get().application == app_a


def test_code_of_confidential_client_presented_as_public_client_id(client, web_client, native_client, user):
    app_a, secret_a = web_client
    native, _ = native_client
    client.force_login(user)
    code, verifier = obtain_code(client, app_a)
    response = exchange_code(client, native, None, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert exchange_code(client, app_a, secret_a, code, verifier).status_code == 200


def test_confidential_client_cannot_redeem_its_code_without_authenticating(client, web_client, user):
    app, secret = web_client
    client.force_login(user)
    code, verifier = obtain_code(client, app)
    response = exchange_code(client, app, None, code, verifier)  # client_id only, no secret
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert exchange_code(client, app, secret, code, verifier).status_code == 200


@pytest.mark.parametrize(
    "age",
    [pytest.param(timedelta(seconds=1), id="just-expired"), pytest.param(timedelta(days=1), id="long-expired")],
)
def test_expired_code(client, web_client, user, age):
    app, secret = web_client
    client.force_login(user)
    code, verifier = obtain_code(client, app)
    Grant.objects.filter(code=code).update(expires=timezone.now() - age)
    response = exchange_code(client, app, secret, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.exists()


def test_code_lifetime_is_short(client, web_client, user):
    app, _ = web_client
    client.force_login(user)
    before = timezone.now()
    code, _ = obtain_code(client, app)
    lifetime = Grant.objects.get(code=code).expires - before
    assert timedelta(0) < lifetime <= timedelta(seconds=61)  # RFC 6749 §4.1.2: 10 minutes at most


def test_redirect_uri_must_match_the_authorization_request(client, web_client, user):
    app, secret = web_client
    client.force_login(user)
    code, verifier = obtain_code(client, app)
    for other in ["https://app.example.test/callback/", "https://evil.test/callback", REDIRECT_URI + "?x=1"]:
        response = exchange_code(client, app, secret, code, verifier, redirect_uri=other)
        assert response.status_code == 400, other
        assert response.json()["error"] in {"invalid_grant", "invalid_request"}
    assert Grant.objects.get(code=code).used is None
    assert exchange_code(client, app, secret, code, verifier).status_code == 200


# Garbage codes: each row derives a bad code from a real one. None of them may work, and none may
# spend the real code.
GARBAGE = [
    pytest.param(lambda c: "at_" + c[3:], id="wrong-prefix"),
    pytest.param(lambda c: "AC_" + c[3:], id="uppercase-prefix"),
    pytest.param(lambda c: c[3:], id="no-prefix"),
    pytest.param(lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"), id="bad-checksum-last"),
    pytest.param(lambda c: c[:10] + ("A" if c[10] != "A" else "B") + c[11:], id="bad-checksum-body-flip"),
    pytest.param(lambda c: c[:-1], id="truncated"),
    pytest.param(lambda c: c + "A", id="extended"),
    pytest.param(lambda c: credentials.digest(c), id="stored-sha256-digest"),
    pytest.param(lambda c: "ac_" + credentials.digest(c)[: credentials.BODY_LENGTH], id="digest-with-prefix"),
    pytest.param(lambda c: c.upper(), id="uppercased"),
    pytest.param(lambda c: c + " ", id="trailing-space"),
    pytest.param(lambda c: c + "\n", id="trailing-newline"),
    pytest.param(lambda c: credentials.mint("ac"), id="well-formed-unknown"),
    pytest.param(lambda c: "", id="empty"),
    pytest.param(lambda c: "' OR '1'='1", id="sql-injection"),
    pytest.param(lambda c: "%", id="like-wildcard"),
    pytest.param(lambda c: "ac_" + "A" * 60000, id="huge"),
]


@pytest.mark.parametrize("make_garbage", GARBAGE)
def test_garbage_code(client, web_client, user, make_garbage):
    app, secret = web_client
    client.force_login(user)
    code, verifier = obtain_code(client, app)
    response = exchange_code(client, app, secret, make_garbage(code), verifier)
    assert response.status_code == 400, response.content
    assert response.json()["error"] in {"invalid_grant", "invalid_request"}
    assert not AccessToken.objects.exists()
    assert Grant.objects.get(code=code).used is None
    assert exchange_code(client, app, secret, code, verifier).status_code == 200


def test_stored_digest_is_not_the_code(client, web_client, user):
    """The database holds only SHA-256(code); a lookup by that digest matches nothing."""
    app, _ = web_client
    client.force_login(user)
    code, _ = obtain_code(client, app)
    stored = Grant.objects.values_list("code", flat=True).get()
    assert stored == credentials.digest(code)
    assert code not in stored
    assert not Grant.objects.filter(code=stored).exists()


# -- Concurrency ----------------------------------------------------------------------------------
def _race(requests_count: int, target) -> list:
    """Run ``target(i)`` in ``requests_count`` threads released together; return the results."""
    barrier = threading.Barrier(requests_count)
    results: list = [None] * requests_count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - reported through the results
            results[i] = exc
        finally:
            connections.close_all()  # each thread has its own connection; release it

    threads = [threading.Thread(target=run, args=(i,)) for i in range(requests_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_of_one_code_yield_exactly_one_token_set(web_client, user):
    """Two exchanges of one code at the same instant: one wins, one is a replay.

    On PostgreSQL (CI) the two transactions really overlap and the conditional UPDATE in
    ``validate_code`` decides; on SQLite the IMMEDIATE transaction of ``TokenView`` serialises them.
    Either way exactly one token set may ever be issued, and since the loser is a replay, RFC 9700
    §4.5.3 has it revoke the winner's tokens as well.
    """
    app, secret = web_client
    browser = HttpClient()
    browser.force_login(user)
    code, verifier = obtain_code(browser, app)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}

    def redeem(_i: int):
        return HttpClient().post(TOKEN_URL, data, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))

    results = _race(2, redeem)
    assert not [r for r in results if isinstance(r, BaseException)], results
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 400], [r.content for r in results]
    loser = next(r for r in results if r.status_code == 400)
    assert loser.json()["error"] == "invalid_grant"

    # Exactly one token set was ever created (revoked refresh tokens stay as rows) ...
    assert RefreshToken.objects.filter(application=app).count() == 1
    grant = Grant.objects.get(code=code)
    assert grant.used is not None
    assert RefreshToken.objects.get(application=app).token_family == grant.token_family
    # ... and the replay revoked it.
    assert not AccessToken.objects.filter(application=app).exists()
    assert RefreshToken.objects.get(application=app).revoked is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_by_many_requests(web_client, user):
    app, secret = web_client
    browser = HttpClient()
    browser.force_login(user)
    code, verifier = obtain_code(browser, app)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}

    results = _race(
        5, lambda _i: HttpClient().post(TOKEN_URL, data, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert [r.status_code for r in results].count(200) == 1, [r.content for r in results]
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)
    assert RefreshToken.objects.filter(application=app).count() == 1
