"""(b) Limits are global across web nodes; (c) a revocation through one node is honoured by the other
within a second. Each node is also addressed directly (as the proxy would: from 127.0.0.1, naming
the client in X-Forwarded-For)."""

from __future__ import annotations

import time

from tests.cluster.flows import as_proxy_for, bad_login, introspect, revoke, token
from tests.cluster.harness import AUTH_FAILURE_LIMIT

REVOCATION_DEADLINE = 1.0


def test_a_limit_counted_on_one_node_holds_on_the_other(cluster, registered):
    http, client = cluster.session(), "127.0.0.4"
    node_a, node_b = cluster.node_url("a"), cluster.node_url("b")
    on_a = [bad_login(http, node_a, registered["svc"], **as_proxy_for(client)).status_code
            for _ in range(AUTH_FAILURE_LIMIT - 1)]
    assert on_a == [401] * (AUTH_FAILURE_LIMIT - 1)
    assert bad_login(http, node_b, registered["svc"], **as_proxy_for(client)).status_code == 401  # the last one
    assert bad_login(http, node_b, registered["svc"], **as_proxy_for(client)).status_code == 429
    assert bad_login(http, node_a, registered["svc"], **as_proxy_for(client)).status_code == 429
    # And through nginx, from the address itself.
    assert bad_login(cluster.session(client), cluster.base_url, registered["svc"]).status_code == 429
    # Another client address is counted apart, on both nodes.
    assert bad_login(http, node_b, registered["svc"], **as_proxy_for("127.0.0.5")).status_code == 401


def test_a_revocation_through_node_a_is_honoured_by_node_b_within_a_second(cluster, registered):
    http = cluster.session()
    node_a, node_b = cluster.node_url("a"), cluster.node_url("b")
    proxy = as_proxy_for("127.0.0.7")
    credential = token(http, node_a, registered["svc"], **proxy).json()["access_token"]
    for _ in range(3):  # node B answers from its in-process cache from now on
        assert introspect(http, node_b, registered["rs"], credential, **proxy).json()["active"] is True

    assert revoke(http, node_a, registered["svc"], credential, **proxy).status_code == 200
    revoked_at = time.monotonic()
    while True:
        answer = introspect(http, node_b, registered["rs"], credential, **proxy).json()
        elapsed = time.monotonic() - revoked_at
        if answer == {"active": False}:
            break
        assert elapsed < REVOCATION_DEADLINE, f"node B still says active {elapsed:.3f} s after the revocation"
        time.sleep(0.01)
    assert elapsed < REVOCATION_DEADLINE
    assert introspect(http, cluster.base_url, registered["rs"], credential).json() == {"active": False}
