"""The lean client_credentials path answers exactly as the oauthlib path (issue 17's proof).

Each generated request (secrets right, retired, expired, wrong, malformed; Basic, body, both,
neither; unknown, public, grant-less and cut-off clients; scopes and resources allowed or not,
repeated or empty; extra and repeated parameters, a query string, other content types; a spent
per-client limit or failure budget) runs twice from the same database and counter state: once
with the lean path on, once with it off (``TokenView.lean``). The two runs must agree on the
status, the headers (in order), the body bytes (the token value masked), the token rows, the audit
events (the token's hint masked, the personal data decrypted), the counters of every limit the
token endpoint spends, and the telemetry it emits. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock
from urllib.parse import quote, urlencode

import pytest
from django.db import transaction
from django.test import Client as HttpClient
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import get_access_token_model

from authserver import counters, credentials, events, revocation
from authserver.audit.models import AuditEvent
from authserver.audit.services import personal_data
from authserver.netaddr import client_address, client_network
from authserver.oauth import client_credentials
from authserver.oauth.views import TokenView
from authserver.ratelimit import failures, limiter
from clients.models import RetiredClientSecret
from clients.services import client_secret_rotate
from tests.factories import RS_AUDIENCE, make_client
from tests.helpers import TOKEN_URL

pytestmark = pytest.mark.django_db

AccessToken = get_access_token_model()
OTHER_AUDIENCE = "https://other.example.test/v1"
ADDRESS = "198.51.100.7"
NETWORK = client_network(client_address({"REMOTE_ADDR": ADDRESS}))
TOKEN_COLUMNS = ("user_id", "source_refresh_token_id", "token", "id_token_id", "application_id", "scope",
                 "resource", "token_family", "source_api_key")
TOPICS = (events.client_auth_failed, events.token_requested, events.rate_limit_refused)


class _Rollback(Exception):
    """Leaves the savepoint a run wrote in, so the next run starts from the same rows."""


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    audiences = [RS_AUDIENCE, OTHER_AUDIENCE]
    svc, svc_secret = make_client(name="service", scopes=["ai.infer", "ai.admin"], audiences=audiences)
    bare, bare_secret = make_client(name="no scopes", scopes=[], audiences=[])
    web, web_secret = make_client(name="web", grant_types=["authorization_code"], scopes=["ai.infer"],
                                  redirect_uris=["https://app.example.test/cb"])
    public, _ = make_client(name="public", client_type="public", grant_types=["authorization_code"],
                            scopes=["ai.infer"], redirect_uris=["https://app.example.test/cb"])
    rs, rs_secret = make_client(name="introspects only", grant_types=[], audiences=[],
                                resource_server_audience="https://rs.example.test")
    cutoff, cutoff_secret = make_client(name="cut off", scopes=["ai.infer"], audiences=audiences)
    type(cutoff).objects.filter(pk=cutoff.pk).update(credentials_revoked_at=timezone.now())
    rotated, old_secret = make_client(name="rotated", scopes=["ai.infer"], audiences=audiences)
    rotated, new_secret = client_secret_rotate(client=rotated, grace=timedelta(hours=1))
    expired, expired_old = make_client(name="expired grace", scopes=["ai.infer"], audiences=audiences)
    expired, expired_new = client_secret_rotate(client=expired, grace=timedelta(hours=1))
    RetiredClientSecret.objects.filter(client=expired).update(expires=timezone.now() - timedelta(seconds=1))
    return {
        "clients": {
            "svc": (svc.client_id, {"right": svc_secret}),
            "bare": (bare.client_id, {"right": bare_secret}),
            "web": (web.client_id, {"right": web_secret}),
            "public": (public.client_id, {}),
            "rs": (rs.client_id, {"right": rs_secret}),
            "cutoff": (cutoff.client_id, {"right": cutoff_secret}),
            "rotated": (rotated.client_id, {"right": new_secret, "retired": old_secret}),
            "expired": (expired.client_id, {"right": expired_new, "retired": expired_old}),
            "unknown": ("cl_" + "x" * 20, {}),
            "empty": ("", {}),
            "nul": ("cl_\x00", {}),
            "long": ("c" * 101, {}),
        },
        "other_secret": svc_secret,
    }


CLIENTS = ["svc", "bare", "rotated", "cutoff", "web", "public", "rs", "expired", "unknown", "empty", "nul", "long"]
SECRETS = ["right", "retired", "wrong", "malformed", "empty", "other_client"]
AUTH = ["basic", "body", "both", "basic_lower", "basic_garbage", "none", "body_id_only", "basic_and_body_id",
        "basic_no_colon"]
SCOPE_WORDS = ["ai.infer", "ai.admin", "unknown.scope", ""]
RESOURCES = [RS_AUDIENCE, OTHER_AUDIENCE, "https://not-allowed.example.test", "not a uri", "", " ",
             RS_AUDIENCE + "#frag"]
EXTRAS = [("foo", "bar"), ("scope", "ai.infer"), ("grant_type", "client_credentials"), ("client_secret", ""),
          ("client_id", "someone"), ("audience", RS_AUDIENCE), ("grant_type", "authorization_code")]
GRANTS = [[], [""], ["authorization_code"], ["CLIENT_CREDENTIALS"], ["client_credentials", "client_credentials"],
          ["urn:ietf:params:oauth:grant-type:device_code"]]
CONTENT = ["urlencoded", "multipart", "urlencoded; charset=utf-8", "text/plain", "json"]

# Each field's plain values (a request made only of them is one the lean path may answer) and any
# value. A generated request is plain but for a few fields, so both successes and near misses abound.
PLAIN = {
    "client": st.sampled_from(["svc", "bare", "rotated", "cutoff"]),
    "secret": st.just("right"),
    "auth": st.sampled_from(["basic", "body"]),
    "grant": st.just(["client_credentials"]),
    "scope": st.sampled_from([None, "ai.infer", "ai.infer ai.admin", " ai.infer ", "ai.infer ai.infer"]),
    "resources": st.sampled_from([[], [RS_AUDIENCE], [OTHER_AUDIENCE, RS_AUDIENCE], [RS_AUDIENCE, RS_AUDIENCE]]),
    "extras": st.just([]),
    "query": st.just(""),
    "content": st.sampled_from(["urlencoded", "multipart", "urlencoded; charset=utf-8"]),
    "pressure": st.just("none"),
}
ANY = {
    "client": st.sampled_from(CLIENTS),
    "secret": st.sampled_from(SECRETS),
    "auth": st.sampled_from(AUTH),
    "grant": st.sampled_from(GRANTS),
    "scope": st.one_of(st.none(), st.lists(st.sampled_from(SCOPE_WORDS), max_size=3).map(" ".join),
                       st.sampled_from(["", " ", "ai.infer  ai.admin", "AI.INFER"])),
    "resources": st.lists(st.sampled_from(RESOURCES), max_size=3),
    "extras": st.lists(st.sampled_from(EXTRAS), min_size=1, max_size=2),
    "query": st.sampled_from(["grant_type=client_credentials", "foo=1", "scope=ai.infer"]),
    "content": st.sampled_from(CONTENT),
    "pressure": st.sampled_from(["client_limit", "failure_budget", "client_budget"]),
}


@st.composite
def requests(draw: Any) -> dict[str, Any]:
    changed = draw(st.sets(st.sampled_from(sorted(PLAIN)), max_size=3))
    return {field: draw(ANY[field] if field in changed else PLAIN[field]) for field in PLAIN}


def _secret(world: dict[str, Any], case: dict[str, Any]) -> str:
    known = world["clients"][case["client"]][1]
    kind = case["secret"]
    if kind in known:
        return str(known[kind])
    return {"wrong": credentials.mint(credentials.CLIENT_SECRET), "malformed": "cs_short", "empty": "",
            "other_client": world["other_secret"], "right": "cs_none", "retired": "cs_none"}[kind]


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()


def _build(world: dict[str, Any], case: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    client_id, secret = world["clients"][case["client"]][0], _secret(world, case)
    form = [("grant_type", grant) for grant in case["grant"]]
    headers: dict[str, str] = {}
    auth = case["auth"]
    if auth in {"basic", "both", "basic_and_body_id"}:
        headers["HTTP_AUTHORIZATION"] = _basic(client_id, secret)
    elif auth == "basic_lower":
        headers["HTTP_AUTHORIZATION"] = "basic " + _basic(client_id, secret)[6:]
    elif auth == "basic_garbage":
        headers["HTTP_AUTHORIZATION"] = "Basic !!not-base64!!"
    elif auth == "basic_no_colon":
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(client_id.encode()).decode()
    if auth in {"body", "both"}:
        form += [("client_id", client_id), ("client_secret", secret)]
    elif auth in {"body_id_only", "basic_and_body_id"}:
        form.append(("client_id", client_id))
    if case["scope"] is not None:
        form.append(("scope", case["scope"]))
    form += [("resource", resource) for resource in case["resources"]]
    form += case["extras"]
    return form, headers


def _send(form: list[tuple[str, str]], headers: dict[str, str], case: dict[str, Any]) -> Any:
    http = HttpClient(REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT="differential/1.0")
    path = TOKEN_URL + (f"?{case['query']}" if case["query"] else "")
    content = case["content"]
    if content == "multipart":
        data: dict[str, list[str]] = {}
        for name, value in form:
            data.setdefault(name, []).append(value)
        return http.post(path, data, **headers)
    if content == "json":
        return http.post(path, json.dumps(dict(form)), content_type="application/json", **headers)
    body = urlencode(form)
    content_type = "application/x-www-form-urlencoded" + content[len("urlencoded"):] if content.startswith(
        "urlencoded") else content
    return http.generic("POST", path, body, content_type=content_type, **headers)


@contextmanager
def _pressure(kind: str, client_id: str) -> Iterator[None]:
    """Spend a limit before the request, the same way for both runs."""
    from django.conf import settings as django_settings

    limits = dict(django_settings.RATE_LIMITS)
    if kind == "client_limit":
        limits["token.client"] = ("1/60", "local")
    with override_settings(RATE_LIMITS=limits):
        if kind == "client_limit":
            limiter.limit_for("token.client", client_id)
        for _ in range(limiter.policy(failures.POLICY).limit if kind in {"failure_budget", "client_budget"} else 0):
            failures.failure_record(client_id=client_id if kind == "client_budget" else None, network=NETWORK)
        yield


def _fresh() -> None:
    revocation.clear_caches()
    revocation.reset_for_tests()
    counters.reset_for_tests()
    limiter.reset_for_tests()
    counters.wipe_for_tests()
    events.discard_all_for_tests()


def _counts(client_id: str) -> dict[str, int]:
    keys = {
        "token.ip": ("token.ip", NETWORK),
        "token.client": ("token.client", client_id),
        "failures.network": (failures.POLICY, NETWORK),
        "failures.client": (failures.POLICY, f"client={client_id}|{NETWORK}"),
    }
    return {label: counters.window_count(f"{name}:{key}", limiter.policy(name).window) for label, (name, key) in
            keys.items()}


def _run(world: dict[str, Any], case: dict[str, Any], *, lean: bool) -> tuple[dict[str, Any], bool]:
    """One run in a savepoint that is rolled back: what it answered, wrote and counted, and
    whether the lean path answered it."""
    client_id = world["clients"][case["client"]][0]
    form, headers = _build(world, case)
    _fresh()
    tokens_before = set(AccessToken.objects.values_list("id", flat=True))
    events_before = set(AuditEvent.objects.values_list("id", flat=True))
    answered = []
    real = client_credentials.token_response

    def spy(*args: Any, **kwargs: Any) -> Any:
        response = real(*args, **kwargs)
        answered.append(response is not None)
        return response

    outcome: dict[str, Any] = {}
    emitted: dict[str, list[Any]] = {topic.name: [] for topic in TOPICS}
    try:
        with ExitStack() as stack:
            stack.enter_context(transaction.atomic())
            stack.enter_context(mock.patch.object(TokenView, "lean", lean))
            stack.enter_context(mock.patch.object(client_credentials, "token_response", spy))
            for topic in TOPICS:  # recorded as emitted: the delivery thread may drain the queue any time
                stack.enter_context(mock.patch.object(topic, "emit", emitted[topic.name].append))
            with _pressure(case["pressure"], client_id):
                counts_before = _counts(client_id)
                response = _send(form, headers, case)
                outcome = _observe(response, tokens_before, events_before)
                outcome["counts"] = {k: v - counts_before[k] for k, v in _counts(client_id).items()}
            outcome["telemetry"] = emitted
            raise _Rollback
    except _Rollback:
        pass
    return outcome, any(answered)


def _headers(response: Any) -> list[tuple[str, str]]:
    """The headers in order; the seconds until a window resets (RateLimit ``t``, Retry-After) are
    masked, as they depend on when each run happened. The remaining counts (``r``) are compared."""
    return [(name, "<seconds>" if name == "Retry-After" else re.sub(r";t=\d+", ";t=<seconds>", value))
            for name, value in response.items()]


def _observe(response: Any, tokens_before: set[int], events_before: set[int]) -> dict[str, Any]:
    body = response.content
    value = None
    if response.status_code == 200:
        value = json.loads(body)["access_token"]
        assert credentials.is_well_formed(value, credentials.ACCESS_TOKEN)
        body = body.replace(value.encode(), b"<token>")
    rows = []
    for token in AccessToken.objects.exclude(id__in=tokens_before).order_by("id"):
        # The value is stored only as its digest, and named only by its hint.
        assert value is not None and token.token_checksum == hashlib.sha256(value.encode()).hexdigest()
        assert token.hint == credentials.hint(value)
        lifetime = (token.expires - token.created).total_seconds()
        assert abs(lifetime - json.loads(response.content)["expires_in"]) < 5, lifetime
        rows.append({name: getattr(token, name) for name in TOKEN_COLUMNS})
    trail = []
    for row in AuditEvent.objects.exclude(id__in=events_before).order_by("id"):
        details = dict(row.details)
        if value is not None and details.get("access_token") == credentials.hint(value):
            details["access_token"] = "<hint>"
        assert row.seq is None and row.chain is None  # the sealer chains it after commit
        trail.append({"event": row.event, "outcome": row.outcome, "actor": row.actor,
                      "subject": row.subject, "details": details, "personal": personal_data(row)})
    return {"status": response.status_code, "headers": _headers(response), "body": body, "tokens": rows,
            "audit": trail}


@settings(max_examples=200, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=requests())
@example(case={"client": "svc", "secret": "right", "auth": "basic", "grant": ["client_credentials"], "scope": None,
               "resources": [], "extras": [], "query": "", "content": "urlencoded", "pressure": "none"})
@example(case={"client": "svc", "secret": "right", "auth": "body", "grant": ["client_credentials"],
               "scope": "ai.admin ai.infer ai.admin", "resources": [OTHER_AUDIENCE, RS_AUDIENCE, OTHER_AUDIENCE],
               "extras": [], "query": "", "content": "multipart", "pressure": "none"})
@example(case={"client": "rotated", "secret": "retired", "auth": "basic", "grant": ["client_credentials"],
               "scope": "ai.infer", "resources": [RS_AUDIENCE], "extras": [], "query": "", "content": "urlencoded",
               "pressure": "none"})
@example(case={"client": "expired", "secret": "retired", "auth": "basic", "grant": ["client_credentials"],
               "scope": None, "resources": [], "extras": [], "query": "", "content": "urlencoded", "pressure": "none"})
@example(case={"client": "svc", "secret": "right", "auth": "basic", "grant": ["client_credentials"], "scope": None,
               "resources": [], "extras": [], "query": "", "content": "urlencoded", "pressure": "client_limit"})
@example(case={"client": "svc", "secret": "right", "auth": "basic", "grant": ["client_credentials"], "scope": None,
               "resources": [], "extras": [], "query": "", "content": "urlencoded", "pressure": "client_budget"})
def test_lean_and_oauthlib_paths_agree(world: dict[str, Any], case: dict[str, Any]) -> None:
    lean, lean_answered = _run(world, case, lean=True)
    oauthlib, oauthlib_answered = _run(world, case, lean=False)
    assert not oauthlib_answered
    assert lean == oauthlib, case
    event(f"{lean['status']} {'lean' if lean_answered else 'oauthlib'}")  # --hypothesis-show-statistics
    # A success was the lean path's own answer (else this test would prove nothing), but for the
    # shapes it leaves to oauthlib on purpose: parameters it does not read, and the client id sent
    # both in the Basic header and in the body.
    if lean["status"] == 200 and not (case["extras"] or case["auth"] == "basic_and_body_id"):
        assert lean_answered, case


def test_the_lean_path_answers_the_plain_request(world: dict[str, Any]) -> None:
    """The plain request never reaches oauthlib: one token, one event, no oauthlib call."""
    client_id, secrets = world["clients"]["svc"]
    with mock.patch.object(TokenView, "authorization_flow_token_response", side_effect=AssertionError):
        response = HttpClient(REMOTE_ADDR=ADDRESS).post(
            TOKEN_URL, {"grant_type": "client_credentials", "scope": "ai.infer"},
            HTTP_AUTHORIZATION=_basic(client_id, secrets["right"]))
    assert response.status_code == 200
    assert list(json.loads(response.content)) == ["access_token", "expires_in", "token_type", "scope"]
    token = AccessToken.objects.get(token_checksum=hashlib.sha256(
        json.loads(response.content)["access_token"].encode()).hexdigest())
    assert token.scope == "ai.infer" and token.resource == [RS_AUDIENCE, OTHER_AUDIENCE] and token.user_id is None
    assert AuditEvent.objects.filter(event="token.issued", details__access_token=token.hint).count() == 1


def test_a_failed_authentication_is_left_to_oauthlib_and_counted_once(world: dict[str, Any]) -> None:
    client_id, _ = world["clients"]["svc"]
    response = HttpClient(REMOTE_ADDR=ADDRESS).post(
        TOKEN_URL, {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=_basic(client_id, credentials.mint(credentials.CLIENT_SECRET)))
    assert response.status_code == 401
    assert json.loads(response.content)["error"] == "invalid_client"
    assert _counts(client_id)["failures.network"] == 1 and _counts(client_id)["failures.client"] == 1
    assert _counts(client_id)["token.client"] == 0
    assert not AccessToken.objects.exists()
