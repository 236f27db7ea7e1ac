"""The fetch attack table (issue 16, "Done when"): each request naming a hostile metadata document
URL is refused like an unknown client (400 page, no redirect), nothing is created, the refusal is
audited with its reason, and no connection reaches a forbidden address: a listener on one records
every connection offered, and every connection the fetcher opens is recorded too."""

from __future__ import annotations

import time
from typing import Any

import pytest

from authserver.audit.models import AuditEvent
from clients.models import Client
from tests.factories import REDIRECT_URI
from tests.helpers import AUTHORIZE_URL, pkce_pair
from tests.oauth.cimd.conftest import document
from tests.oauth.cimd.docserver import drip, endless, header_drip, json_answer

pytestmark = pytest.mark.django_db


def _authorize(client: Any, client_id: str, redirect_uri: str = REDIRECT_URI) -> Any:
    _, challenge = pkce_pair()
    return client.get(AUTHORIZE_URL, {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": "ai.infer",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})


def _assert_refused(response: Any, url: str, reason: str) -> None:
    assert response.status_code == 400 and "Location" not in response
    assert "Invalid client_id parameter value." in response.content.decode()  # as for an unknown client
    assert Client.objects.count() == 0
    event = AuditEvent.objects.get(event="client.cimd_refused")
    assert (event.outcome, event.subject, event.details["reason"]) == ("failure", f"client:{url}"[:200], reason)
    assert event.details["url"] == url
    assert not AuditEvent.objects.filter(event="client.cimd_resolved").exists()


# -- Forbidden addresses, with AUTHSERVER_CIMD_ALLOW_PRIVATE off ---------------------------------
# "{port}" is the forbidden listener's port on 127.0.0.1; DNS is stubbed (no name below resolves).
DNS = {
    "intranet.example.test": ["127.0.0.1"],
    "metadata.example.test": ["169.254.169.254"],
    "split.example.test": ["93.184.215.14", "10.1.2.3"],  # one public, one private: refused whole
    "mapped.example.test": ["::ffff:127.0.0.1"],
    "nat64.example.test": ["64:ff9b::a9fe:a9fe"],  # 169.254.169.254 behind the NAT64 prefix
}


@pytest.mark.parametrize("url", [
    "https://127.0.0.1:{port}/agent.json",
    "https://10.0.0.5/agent.json",
    "https://192.168.1.10/agent.json",
    "https://169.254.169.254/latest/meta-data.json",
    "https://100.64.0.1/agent.json",  # CGNAT
    "https://224.0.0.1/agent.json",  # multicast
    "https://0.0.0.0:{port}/agent.json",
    "https://[::1]:{port}/agent.json",
    "https://[fc00::1]/agent.json",
    "https://[fe80::1]/agent.json",
    "https://[::ffff:127.0.0.1]:{port}/agent.json",  # IPv4-mapped
    "https://[::ffff:a9fe:a9fe]/agent.json",
    "https://[64:ff9b::7f00:1]:{port}/agent.json",  # NAT64 of 127.0.0.1
    "https://[2002:7f00:1::1]:{port}/agent.json",  # 6to4 of 127.0.0.1
    "https://intranet.example.test:{port}/agent.json",  # a name resolving to loopback
    "https://metadata.example.test/agent.json",
    "https://split.example.test:{port}/agent.json",
    "https://mapped.example.test:{port}/agent.json",
    "https://nat64.example.test/agent.json",
])
def test_private_addresses_are_never_connected_to(client, user, cimd_on, forbidden, connects, monkeypatch, url):
    cimd_on.CIMD_ALLOW_PRIVATE = False
    monkeypatch.setattr("authserver.oauth.cimd.fetcher.resolve", lambda host, port: DNS[host])
    url = url.format(port=forbidden.port)
    client.force_login(user)
    _assert_refused(_authorize(client, url), url, "address_not_public")
    assert connects == [] and forbidden.connections == []


def test_an_unresolvable_name_is_refused(client, user, cimd_on, connects, monkeypatch):
    cimd_on.CIMD_ALLOW_PRIVATE = False

    def fail(host: str, port: int) -> list[str]:
        raise OSError("no such name")

    monkeypatch.setattr("authserver.oauth.cimd.fetcher.resolve", fail)
    client.force_login(user)
    url = "https://nowhere.example.test/agent.json"
    _assert_refused(_authorize(client, url), url, "dns_failed")
    assert connects == []


# -- URLs refused by their shape, before any lookup ----------------------------------------------
@pytest.mark.parametrize(("url", "reason"), [
    ("https://user:pw@127.0.0.1:{port}/agent.json", "url_userinfo"),
    ("https://127.0.0.1:{port}/agent.json#frag", "url_fragment"),
    ("https://127.0.0.1:{port}/a/../agent.json", "url_dot_segment"),
    ("https://127.0.0.1:{port}/./agent.json", "url_dot_segment"),
    ("https://127.0.0.1:{port}/a/%2e%2e/agent.json", "url_dot_segment"),
    ("https://127.0.0.1:{port}/", "url_invalid"),
    ("https://127.0.0.1:99999/agent.json", "url_invalid"),
    ("https://127.0.0.1:{port}/agent json", "url_invalid"),
    ("https://127.0.0.1:{port}/" + "a" * 200 + "#f", "url_fragment"),  # past the subject's 200: audited in full
])
def test_malformed_urls_are_refused_before_any_lookup(client, user, cimd_on, forbidden, connects, url, reason):
    url = url.format(port=forbidden.port)
    client.force_login(user)
    _assert_refused(_authorize(client, url), url, reason)
    assert connects == [] and forbidden.connections == []


def test_an_http_url_is_not_a_metadata_document(client, user, cimd_on, forbidden, connects):
    url = f"http://127.0.0.1:{forbidden.port}/agent.json"
    client.force_login(user)
    response = _authorize(client, url)
    assert response.status_code == 400 and "Location" not in response and Client.objects.count() == 0
    assert connects == [] and forbidden.connections == []


# -- Hostile answers from the document server (loopback allowed: it is on 127.0.0.1) -------------
def _redirect_to(target: str) -> Any:
    def answer(handler: Any) -> None:
        handler.send_response(302)
        handler.send_header("Location", target)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


@pytest.mark.parametrize(("route", "reason"), [
    (lambda url, f: _redirect_to(f"https://127.0.0.1:{f.port}/agent.json"), "redirect"),
    (lambda url, f: _redirect_to("https://169.254.169.254/latest/meta-data"), "redirect"),
    (lambda url, f: json_answer(document(url), content_type="text/html"), "not_json"),
    (lambda url, f: json_answer(b"{not json", content_type="application/json"), "invalid_json"),
    (lambda url, f: json_answer([document(url)]), "invalid_json"),
    (lambda url, f: json_answer(document(url) | {"padding": "x" * 20_000}), "too_large"),
    (lambda url, f: endless, "too_large"),
    (lambda url, f: json_answer(document(url + "?other")), "client_id_mismatch"),
    (lambda url, f: json_answer(document("https://elsewhere.example.test/agent.json")), "client_id_mismatch"),
    (lambda url, f: json_answer({k: v for k, v in document(url).items() if k != "client_id"}), "client_id_mismatch"),
    (lambda url, f: json_answer(document(url, token_endpoint_auth_method="client_secret_basic")), "not_public"),
    (lambda url, f: json_answer(document(url, client_secret="s3cret")), "not_public"),
    (lambda url, f: json_answer(document(url, grant_types=["client_credentials"])), "grant_types_invalid"),
    (lambda url, f: json_answer(document(url, grant_types=["authorization_code", "implicit"])), "grant_types_invalid"),
    (lambda url, f: json_answer(document(url, response_types=["token"])), "response_types_invalid"),
    (lambda url, f: json_answer(document(url, redirect_uris=[REDIRECT_URI, "http://evil.example.test/cb"])),
     "redirect_uris_invalid"),
    (lambda url, f: json_answer(document(url, redirect_uris=[])), "redirect_uris_invalid"),
    (lambda url, f: json_answer(document(url, redirect_uris=REDIRECT_URI)), "redirect_uris_invalid"),
    (lambda url, f: json_answer(document(url, client_name="x" * 500)), "client_name_invalid"),
    (lambda url, f: json_answer(document(url, client_name="Bank\u202eevil")), "client_name_invalid"),
    (lambda url, f: json_answer(document(url, scope=["ai.infer"])), "scope_invalid"),
    (lambda url, f: json_answer(document(url, redirect_uris=["https://other.example.test/cb"])),
     "redirect_uri_not_listed"),
    (lambda url, f: json_answer({"error": "gone"}, status=404), "http_status"),
])
def test_hostile_documents_are_refused(client, user, cimd_on, docs, forbidden, connects, route, reason):
    url = docs.url("/agent.json")
    docs.routes["/agent.json"] = route(url, forbidden)
    client.force_login(user)
    _assert_refused(_authorize(client, url), url, reason)
    assert docs.hits["/agent.json"] == 1 and set(connects) == {("127.0.0.1", docs.port)}
    assert forbidden.connections == []


@pytest.mark.parametrize("answer", [
    lambda url: drip(document(url), every=0.05),  # ~400 body bytes: 20 s if let run
    lambda url: header_drip,  # the headers never end: 100 s if let run
])
def test_a_slow_drip_is_cut_at_the_total_deadline(client, user, cimd_on, docs, connects, settings, answer):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "CIMD_FETCH_TIMEOUT_SECONDS": 1}
    url = docs.url("/agent.json")
    docs.routes["/agent.json"] = answer(url)
    client.force_login(user)
    _authorize(client, "unknown-client")  # a first request warms the page up: only the fetch is timed below
    started = time.monotonic()
    response = _authorize(client, url)
    assert time.monotonic() - started < 3  # the drip would take 20 s (body) or 100 s (headers)
    _assert_refused(response, url, "timeout")


def test_a_refused_url_is_not_fetched_again_during_the_backoff(client, user, cimd_on, docs):
    url = docs.url("/agent.json")
    docs.routes["/agent.json"] = json_answer({"error": "gone"}, status=404)
    client.force_login(user)
    for _ in range(3):
        assert _authorize(client, url).status_code == 400
    assert docs.hits["/agent.json"] == 1
    assert AuditEvent.objects.filter(event="client.cimd_refused").count() == 1


def test_a_wrong_redirect_uri_does_not_lock_the_client_out(client, user, cimd_on, docs):
    url = docs.url("/agent.json")
    docs.routes["/agent.json"] = json_answer(document(url))
    client.force_login(user)
    assert _authorize(client, url, redirect_uri="https://evil.example.test/cb").status_code == 400
    assert Client.objects.count() == 0
    assert _authorize(client, url).status_code == 200  # no backoff: the document was fine
    assert Client.objects.filter(client_id=url, registration_source="cimd").count() == 1


def test_a_manually_registered_client_is_never_taken_over(client, user, cimd_on, docs):
    from tests.factories import make_client

    url = docs.url("/agent.json")
    docs.routes["/agent.json"] = json_answer(document(url, redirect_uris=["https://attacker.example.test/cb"]))
    app, _ = make_client(name="manual", client_type="public", grant_types=["authorization_code"],
                         redirect_uris=[REDIRECT_URI], scopes=["ai.infer"])
    Client.objects.filter(pk=app.pk).update(client_id=url)
    client.force_login(user)
    assert _authorize(client, url, redirect_uri="https://attacker.example.test/cb").status_code == 400
    app.refresh_from_db()
    assert app.registration_source == "manual" and app.redirect_uris == REDIRECT_URI and docs.hits == {}


def test_fetches_per_host_are_limited(client, user, cimd_on, docs, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "cimd.fetch": ("2/60", "local")}
    client.force_login(user)
    for n in range(2):
        docs.routes[f"/a{n}.json"] = json_answer({"error": "gone"}, status=404)
        assert _authorize(client, docs.url(f"/a{n}.json")).status_code == 400
    docs.routes["/a2.json"] = json_answer(document(docs.url("/a2.json")))
    response = _authorize(client, docs.url("/a2.json"))
    assert response.status_code == 429 and "Retry-After" in response
    assert "/a2.json" not in docs.hits and Client.objects.count() == 0
    assert AuditEvent.objects.filter(event="rate_limit.exceeded", subject="policy:cimd.fetch").count() == 1
