"""(e) Stopping one web node gracefully (SIGTERM to its granian) under steady introspection load
through nginx fails no request: granian stops accepting and finishes what it has, nginx sends the
rest to the other node (proxy_next_upstream, nginx.conf.in)."""

from __future__ import annotations

import signal
import threading
import time

from tests.cluster.flows import introspect, token
from tests.cluster.harness import wait_until

CLIENTS = 3


def test_stopping_a_node_under_load_fails_no_request(cluster, registered):
    credential = token(cluster.session(), cluster.base_url, registered["svc"]).json()["access_token"]
    stop = threading.Event()
    answered: list[int] = []
    failures: list[str] = []

    def load(n: int) -> None:
        http = cluster.session(f"127.0.0.{20 + n}")  # keep-alive to nginx; nginx to the nodes, none
        while not stop.is_set():
            try:
                response = introspect(http, cluster.base_url, registered["rs"], credential)
                if response.status_code == 200 and response.json()["active"] is True:
                    answered.append(1)
                else:
                    failures.append(f"{response.status_code} {response.text[:200]}")
            except Exception as exc:  # noqa: BLE001 - every failure counts, whatever it is
                failures.append(repr(exc))

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    node = cluster.procs["web-a"]
    try:
        wait_until(lambda: len(answered) >= 100, "steady load", timeout=30)
        before = len(answered)
        node.signal(signal.SIGTERM)
        assert node.proc is not None
        node.proc.wait(timeout=20)
        time.sleep(1.0)  # and on, with one node left
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    assert failures == [], failures[:5]
    assert len(answered) > before, "no request was answered after the node stopped"
    assert node.proc.returncode == 0, node.log()[-2000:]

    cluster.start_web("a")  # back to two nodes for whatever runs next
    wait_until(lambda: cluster.ready(cluster.node_url("a")), "node A to come back", procs=[cluster.procs["web-a"]])
