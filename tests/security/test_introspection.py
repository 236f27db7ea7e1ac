"""Token introspection (RFC 7662): resource servers only, audience-bound, and an inactive answer
that says nothing (§2.2, §4); tokens never travel in query strings (RFC 6750 §2.3, RFC 9700 §4.3.2)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from authserver import credentials, revocation
from authserver.oauth.models import AccessToken
from tests.helpers import INTROSPECT_URL, REVOKE_URL, basic_auth, client_credentials, introspect, obtain_tokens

pytestmark = pytest.mark.django_db

INACTIVE_BYTES = b'{"active": false}'


@pytest.fixture
def token(client, service_client) -> str:
    app, secret = service_client
    response = client_credentials(client, app, secret, scope="ai.infer")
    assert response.status_code == 200
    return response.json()["access_token"]


# -- Who may introspect ---------------------------------------------------------------------------
def _no_credentials(rs, rs_secret, app, secret):
    return {}


CALLERS = [
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": basic_auth(app.client_id, s)}, id="non-resource-server"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": basic_auth(rs.client_id, credentials.mint("cs"))},
                 id="wrong-secret-well-formed"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": basic_auth(rs.client_id, rs_s[:-1] + ("x" if rs_s[-1] != "x" else "y"))},
                 id="wrong-secret-bad-checksum"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": basic_auth(rs.client_id, "password")},
                 id="malformed-secret"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": basic_auth(rs.client_id, "")}, id="empty-secret"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": basic_auth(rs.client_id, s)},
                 id="secret-of-another-client"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": basic_auth("no-such-client", rs_s)},
                 id="unknown-client-id"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": basic_auth(app.client_id, rs_s)},
                 id="rs-secret-with-other-client-id"),
    pytest.param(_no_credentials, id="no-credentials"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": "Basic !!!not-base64!!!"}, id="garbage-basic"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(rs.client_id.encode()).decode()},
                 id="basic-without-colon"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": "Basic " + "A" * 4000}, id="oversized-basic"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": "Digest " + basic_auth(rs.client_id, rs_s)[6:]},
                 id="other-scheme"),
    pytest.param(lambda rs, rs_s, app, s: {"HTTP_AUTHORIZATION": "Bearer " + s}, id="bearer-scheme"),
]


@pytest.mark.parametrize("headers", CALLERS)
def test_introspection_requires_a_resource_server(client, resource_server, service_client, token, headers):
    rs, rs_secret = resource_server
    app, secret = service_client
    response = client.post(INTROSPECT_URL, {"token": token}, **headers(rs, rs_secret, app, secret))
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}
    assert response["WWW-Authenticate"].startswith("Basic")
    assert response["Cache-Control"] == "no-store"


def test_introspection_with_an_access_token_as_bearer_does_not_authenticate(client, resource_server, token):
    """An access token for the RS's own audience is not the RS's credential."""
    response = client.post(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401


def test_resource_server_may_authenticate_in_the_body(client, resource_server, token):
    """Control row (client_secret_post): the same endpoint works for a real resource server."""
    rs, rs_secret = resource_server
    response = client.post(INTROSPECT_URL, {"token": token, "client_id": rs.client_id, "client_secret": rs_secret})
    assert response.status_code == 200
    assert response.json()["active"] is True


def test_token_for_another_audience_is_exactly_inactive(client, resource_server, other_resource_server, token):
    rs, rs_secret = resource_server
    other, other_secret = other_resource_server
    assert introspect(client, rs, rs_secret, token).json()["active"] is True
    response = introspect(client, other, other_secret, token)
    assert response.status_code == 200
    assert response.content == INACTIVE_BYTES


def test_token_without_audience_is_inactive_for_every_resource_server(client, resource_server):
    from tests.factories import make_client

    app, secret = make_client(name="no audiences", audiences=[], scopes=["ai.infer"])
    rs, rs_secret = resource_server
    token = client_credentials(client, app, secret).json()["access_token"]
    assert introspect(client, rs, rs_secret, token).content == INACTIVE_BYTES


# -- Every inactive answer is the same bytes ---------------------------------------------------------
def _unknown(ctx):
    return credentials.mint("at")


def _expired(ctx):
    AccessToken.objects.filter(token_checksum=credentials.digest(ctx["token"])).update(
        expires=timezone.now() - timedelta(seconds=1)
    )
    # The edit stands in for time passing; a cached copy is bounded by the same expiry.
    revocation.access_tokens.clear()
    return ctx["token"]


def _revoked(ctx):
    client, app, secret = ctx["client"], ctx["app"], ctx["secret"]
    response = client.post(REVOKE_URL, {"token": ctx["token"]}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret))
    assert response.status_code == 200
    return ctx["token"]


def _refresh_token(ctx):
    return ctx["tokens"]["refresh_token"]


INACTIVE_CASES = [
    pytest.param(_unknown, id="unknown"),
    pytest.param(_expired, id="expired"),
    pytest.param(_revoked, id="revoked"),
    pytest.param(_refresh_token, id="refresh-token-as-token"),
    pytest.param(lambda ctx: credentials.digest(ctx["token"]), id="stored-digest"),
    pytest.param(lambda ctx: ctx["token"][:-1] + ("A" if ctx["token"][-1] != "A" else "B"), id="bad-checksum"),
    pytest.param(lambda ctx: "rt_" + ctx["token"][3:], id="wrong-prefix"),
    pytest.param(lambda ctx: ctx["token"] + " ", id="trailing-space"),
    pytest.param(lambda ctx: ctx["secret"], id="client-secret-as-token"),
    pytest.param(lambda ctx: "garbage", id="garbage"),
    pytest.param(lambda ctx: "' OR 1=1 --", id="sql-injection"),
    pytest.param(lambda ctx: "\u00e9\u4e2d\U0001f600", id="unicode"),
    pytest.param(lambda ctx: "at_" + "A" * 60000, id="large-60kb"),
]


@pytest.fixture
def ctx(client, web_client, user, resource_server):
    app, secret = web_client
    client.force_login(user)
    tokens = obtain_tokens(client, app, secret)
    client.logout()
    rs, rs_secret = resource_server
    return {"client": client, "app": app, "secret": secret, "tokens": tokens, "token": tokens["access_token"],
            "rs": rs, "rs_secret": rs_secret}


@pytest.mark.parametrize("make_token", INACTIVE_CASES)
def test_inactive_answers_are_byte_identical(ctx, make_token):
    client, rs, rs_secret = ctx["client"], ctx["rs"], ctx["rs_secret"]
    assert introspect(client, rs, rs_secret, ctx["token"]).json()["active"] is True  # control
    reference = introspect(client, rs, rs_secret, credentials.mint("at"))
    response = introspect(client, rs, rs_secret, make_token(ctx))
    assert response.status_code == reference.status_code == 200
    assert response.content == reference.content == INACTIVE_BYTES
    assert response["Content-Type"] == reference["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "data",
    [pytest.param({}, id="missing"), pytest.param({"token": ""}, id="empty")],
)
def test_missing_or_empty_token_is_a_malformed_request(ctx, data):
    """RFC 7662 §2.1: ``token`` is REQUIRED; a request without one is invalid_request (§2.3)."""
    rs, rs_secret = ctx["rs"], ctx["rs_secret"]
    response = ctx["client"].post(INTROSPECT_URL, data, HTTP_AUTHORIZATION=basic_auth(rs.client_id, rs_secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert b"active" not in response.content


def test_one_megabyte_token_is_refused_before_any_work(ctx, django_assert_max_num_queries):
    """The 64 KiB request-body limit (DATA_UPLOAD_MAX_MEMORY_SIZE) stops it: a JSON 413, never a 500,
    never an answer about a token."""
    rs, rs_secret = ctx["rs"], ctx["rs_secret"]
    with django_assert_max_num_queries(1):  # at most the resource-server lookup
        response = ctx["client"].post(
            INTROSPECT_URL, {"token": "at_" + "A" * (1024 * 1024)}, HTTP_AUTHORIZATION=basic_auth(rs.client_id, rs_secret)
        )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"
    assert b"active" not in response.content


def test_active_answer_contents(ctx):
    rs, rs_secret = ctx["rs"], ctx["rs_secret"]
    answer = introspect(ctx["client"], rs, rs_secret, ctx["token"]).json()
    assert answer["active"] is True
    assert answer["aud"] == [rs.audience]
    assert answer["client_id"] == ctx["app"].client_id
    assert "token" not in answer and ctx["token"] not in str(answer)


# -- Query strings -----------------------------------------------------------------------------------
def test_get_with_token_in_query_is_405(ctx):
    rs, rs_secret = ctx["rs"], ctx["rs_secret"]
    response = ctx["client"].get(
        INTROSPECT_URL, {"token": ctx["token"]}, HTTP_AUTHORIZATION=basic_auth(rs.client_id, rs_secret)
    )
    assert response.status_code == 405
    assert b"active" not in response.content


@pytest.mark.parametrize(
    ("query", "body"),
    [
        pytest.param("token={token}", {}, id="token-in-query"),
        pytest.param("token={token}", {"token": "{token}"}, id="token-in-query-and-body"),
        pytest.param("x=1", {"token": "{token}"}, id="any-query"),
        pytest.param("client_id={rs_id}&client_secret={rs_secret}", {"token": "{token}"}, id="credentials-in-query"),
    ],
)
def test_post_with_query_string_is_400(ctx, query, body):
    rs, rs_secret = ctx["rs"], ctx["rs_secret"]
    fill = {"token": ctx["token"], "rs_id": rs.client_id, "rs_secret": rs_secret}
    data = {k: v.format(**fill) for k, v in body.items()}
    response = ctx["client"].post(
        f"{INTROSPECT_URL}?{query.format(**fill)}", data, HTTP_AUTHORIZATION=basic_auth(rs.client_id, rs_secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert b"active" not in response.content


# -- Body encodings (RFC 7662 §2.1: a form; RFC 6749 §3.2: no parameter twice) --------------------
def _post_raw(client, resource_server, body: bytes, content_type: str):
    rs, rs_secret = resource_server
    return client.post(INTROSPECT_URL, body, content_type=content_type,
                       HTTP_AUTHORIZATION=basic_auth(rs.client_id, rs_secret))


def test_urlencoded_and_multipart_bodies_are_both_read(client, resource_server, token):
    urlencoded = _post_raw(client, resource_server, f"token={token}&token_type_hint=access_token".encode(),
                           "application/x-www-form-urlencoded; charset=utf-8")
    multipart = introspect(client, *resource_server, token)  # the test client's default encoding
    assert urlencoded.status_code == multipart.status_code == 200
    assert urlencoded.json()["active"] is True and multipart.json()["active"] is True
    assert urlencoded.content == multipart.content


@pytest.mark.parametrize("body", [
    "token={token}&token={token}",
    "token={token}&token=at_other",
    "token={token}&client_ip=10.0.0.1&client_ip=10.0.0.2",
], ids=["same-token-twice", "two-tokens", "client-ip-twice"])
def test_repeated_parameters_are_invalid_request(client, resource_server, token, body):
    response = _post_raw(client, resource_server, body.format(token=token).encode(),
                         "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert token.encode() not in response.content


def test_repeated_parameters_in_multipart_are_invalid_request(client, resource_server, token):
    response = introspect(client, *resource_server, token, token_type_hint=["access_token", "refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(("body", "content_type"), [
    (b"token=%ff%fe", "application/x-www-form-urlencoded"),
    (b"token=\xff\xfe", "application/x-www-form-urlencoded"),
    (b'{"token": "x"}', "application/json"),
    (b"", "application/x-www-form-urlencoded"),
], ids=["percent-encoded-invalid-utf8", "raw-invalid-utf8", "json-body", "empty"])
def test_unreadable_bodies_are_invalid_request(client, resource_server, body, content_type):
    response = _post_raw(client, resource_server, body, content_type)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_form_reader_agrees_with_parse_qsl(rf):
    """The introspection endpoint's own form reader decodes exactly what urllib's parse_qsl does
    (and refuses repeats and undecodable bytes), on random bodies of the troublesome characters."""
    import random
    from urllib.parse import parse_qsl

    from authserver.introspection.endpoint import read_form as _form

    rng = random.Random(7)
    for _ in range(3000):
        body = "".join(rng.choice("ab=&%+2F0x_ \u00e9") for _ in range(rng.randrange(0, 20)))
        try:
            pairs = parse_qsl(body, keep_blank_values=True, errors="strict")
            expected = dict(pairs) if len(dict(pairs)) == len(pairs) else None
        except UnicodeDecodeError:
            expected = None
        request = rf.post(INTROSPECT_URL, body.encode(), content_type="application/x-www-form-urlencoded")
        assert _form(request) == expected, body
