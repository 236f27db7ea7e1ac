"""Issue 12, item 1: a held audit lock must not stall token issuance or slow introspection.

Another session holds the chain head row FOR UPDATE and the sealer's advisory lock for 10 s (as
psql did in the fault run, where token requests hung 30 s). Issuance appends its audit events
without waiting; introspection is as fast as before; once the locks go, the sealer chains
everything and verify passes.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection

from authserver.audit.models import AuditChainHead
from tests.helpers import client_credentials, introspect

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row and advisory locks held from a second session need PostgreSQL; runs in the PostgreSQL pass",
)

HOLD_SECONDS = 10.0
PROMPT = 1.0
SEAL_LOCK_KEY = int.from_bytes(b"authseal", "big")  # authserver.audit.sealer.SEAL_LOCK_KEY


class LockHolder(threading.Thread):
    """A second session: BEGIN; lock the head row and the seal lock; sleep; COMMIT."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.held, self.released = threading.Event(), threading.Event()

    def run(self) -> None:
        db = connection.settings_dict
        with psycopg.connect(host=db["HOST"] or "localhost", port=db["PORT"] or 5432, user=db["USER"],
                             password=db["PASSWORD"], dbname=db["NAME"]) as session:
            session.execute("SELECT * FROM audit_auditchainhead WHERE id = 1 FOR UPDATE")
            session.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
            self.held.set()
            time.sleep(HOLD_SECONDS)
            session.commit()
        self.released.set()


def _timed(call):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


@pytest.mark.django_db(transaction=True)
def test_issuance_and_introspection_do_not_wait_for_a_held_audit_lock(client, service_client, resource_server):
    svc, svc_secret = service_client
    rs, rs_secret = resource_server
    AuditChainHead.objects.get_or_create(pk=1)
    before = client_credentials(client, svc, svc_secret).json()["access_token"]
    _, baseline = _timed(lambda: introspect(client, rs, rs_secret, before))

    holder = LockHolder()
    holder.start()
    assert holder.held.wait(10)
    issued, timings = [], []
    for _ in range(5):
        response, took = _timed(lambda: client_credentials(client, svc, svc_secret))
        assert response.status_code == 200, response.content
        issued.append(response.json()["access_token"])
        timings.append(took)
    introspections = []
    for token in [before, *issued]:
        response, took = _timed(lambda token=token: introspect(client, rs, rs_secret, token))
        assert response.json()["active"] is True
        introspections.append(took)
    still_held = not holder.released.is_set()
    holder.join(HOLD_SECONDS + 10)

    assert still_held, "the requests outlasted the held lock: they waited for it"
    assert max(timings) < PROMPT, f"token issuance waited for the audit lock: {timings}"
    assert max(introspections) < max(PROMPT, 5 * baseline), f"introspection slowed: {introspections}"

    from authserver.audit.sealer import audit_seal
    from authserver.audit.selectors import audit_verify

    assert audit_seal() >= 6  # the events appended while the lock was held, now chained
    report = audit_verify(max_unsealed_age=0)
    assert report.problems == [] and report.unsealed.count == 0
