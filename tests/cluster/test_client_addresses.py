"""(a) Behind nginx, each client's own address reaches the rate limits, the audit trail and API-key
allowlists: clients on distinct loopback addresses (127.0.0.x) are told apart, never seen as the proxy."""

from __future__ import annotations

import json

from keys.exchange import API_KEY_TOKEN_TYPE, TOKEN_EXCHANGE
from tests.cluster.conftest import AUDIENCE
from tests.cluster.flows import bad_login, introspect, token
from tests.cluster.harness import AUTH_FAILURE_LIMIT


def test_failed_logins_are_limited_per_client_address(cluster, registered):
    exhausted, bystander = cluster.session("127.0.0.2"), cluster.session("127.0.0.3")
    answers = [bad_login(exhausted, cluster.base_url, registered["svc"]).status_code
               for _ in range(AUTH_FAILURE_LIMIT + 1)]
    assert answers[:AUTH_FAILURE_LIMIT] == [401] * AUTH_FAILURE_LIMIT and answers[-1] == 429, answers
    # The same client, with its right secret, is refused too from .2: the limit is on the address.
    assert token(exhausted, cluster.base_url, registered["svc"]).status_code == 429
    # Another address behind the same proxy is untouched.
    assert bad_login(bystander, cluster.base_url, registered["svc"]).status_code == 401
    assert token(bystander, cluster.base_url, registered["svc"]).status_code == 200


def test_audit_records_the_client_address(cluster, registered):
    http = cluster.session("127.0.0.6")
    issued = token(http, cluster.base_url, registered["svc"])
    assert issued.status_code == 200, issued.text
    rows = [json.loads(line) for line in cluster.manage_raw("audit", "export", "--with-personal").splitlines()
            if line.strip()]
    mine = [row for row in rows if row["event"] == "token.issued" and row.get("personal", {}).get("ip") == "127.0.0.6"]
    assert len(mine) == 1, [(r["event"], r.get("personal")) for r in rows[-5:]]
    assert not [row for row in rows if row.get("personal", {}).get("ip") == "127.0.0.1"], \
        "an event recorded the proxy's address instead of the client's"


def test_api_key_allowlist_sees_the_client_address(cluster, registered):
    key = cluster.manage("apikey", "create", "--client", str(registered["svc"]["client_id"]), "--name", "pinned",
                         "--scope", "ai.infer", "--audience", AUDIENCE, "--allow-ip", "127.0.0.8/32")
    plaintext = str(key["key"])
    exchange = {"grant_type": TOKEN_EXCHANGE, "subject_token": plaintext, "subject_token_type": API_KEY_TOKEN_TYPE}

    refused = cluster.session("127.0.0.9").post(f"{cluster.base_url}/oauth/token", data=exchange, timeout=15)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text

    granted = cluster.session("127.0.0.8").post(f"{cluster.base_url}/oauth/token", data=exchange, timeout=15)
    assert granted.status_code == 200, granted.text
    answer = introspect(cluster.session(), cluster.base_url, registered["rs"], granted.json()["access_token"])
    assert answer.json()["active"] is True and answer.json()["aud"] == [AUDIENCE]
