"""Endpoints from a per-client discovery URL (C3) and their refresh before endpoints_valid_until."""

from __future__ import annotations

import pytest

from authserver_rs import Unavailable

from .conftest import NOW, active
from .fake_server import ISSUER


def test_endpoints_come_from_the_metadata_document(fake, make_kit):
    fake.answers["at_one"] = active()
    kit = make_kit(metadata_url=f"{ISSUER}/d/dc_capability", introspection_endpoint=None,
                   revocation_events_endpoint=None, path_key_endpoint=None, revocation_stream=False)
    assert kit.authenticate("at_one", None).client_id == "app-1"
    assert kit.endpoints.get().revocation_events == f"{ISSUER}/oauth/revocations"
    assert fake.metadata_calls == 1


def test_metadata_is_refreshed_before_endpoints_valid_until(fake, make_kit, clock):
    fake.answers["at_one"] = active()
    fake.metadata.update(endpoints_valid_until=int(NOW + 7200),
                         introspection_endpoint=f"{ISSUER}/aaaaaaaaaaaaaaaa/introspect")
    kit = make_kit(metadata_url=f"{ISSUER}/d/dc_capability", introspection_endpoint=None,
                   revocation_stream=False, metadata_refresh_margin=600, negative_ttl=0)
    kit.authenticate("at_one", None)
    fake.metadata.update(endpoints_valid_until=int(NOW + 7200 + 3600),
                         introspection_endpoint=f"{ISSUER}/bbbbbbbbbbbbbbbb/introspect")
    clock.advance(7200 - 601)
    kit.authenticate("at_one", None)
    assert fake.metadata_calls == 1
    clock.advance(2)
    kit.authenticate("at_one", None)
    assert fake.metadata_calls == 2
    assert kit.endpoints.get().introspection.endswith("/bbbbbbbbbbbbbbbb/introspect")


def test_rotated_away_endpoint_is_looked_up_again(fake, make_kit):
    fake.answers["at_one"] = active()
    fake.metadata["introspection_endpoint"] = f"{ISSUER}/gone"
    kit = make_kit(metadata_url=f"{ISSUER}/d/dc_capability", introspection_endpoint=None, revocation_stream=False)
    kit.endpoints.get()
    fake.metadata["introspection_endpoint"] = f"{ISSUER}/oauth/introspect"
    assert kit.authenticate("at_one", None).client_id == "app-1"  # 404, refresh, retry
    assert fake.metadata_calls == 2


def test_metadata_unreachable_fails_closed(fake, make_kit):
    kit = make_kit(metadata_url="https://as.test/d/dc_capability", introspection_endpoint=None,
                   revocation_stream=False)
    fake.metadata = {"issuer": ISSUER}  # no introspection_endpoint
    with pytest.raises(Unavailable):
        kit.authenticate("at_one", None)
