"""authserver.conf_cimd: AUTHSERVER_CIMD and its fetcher's switches, parsed once and refused by name
when bad (the registrable scopes and audiences: tests/test_conf_registration.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from authserver import conf
from tests.test_conf import PRODUCTION


@pytest.mark.parametrize(("env", "path", "expected"), [
    ({}, "cimd.mode", "off"),
    ({"AUTHSERVER_CIMD": " On "}, "cimd.mode", "on"),
    ({}, "cimd.allow_private", False),
    ({"AUTHSERVER_CIMD_ALLOW_PRIVATE": "1"}, "cimd.allow_private", True),
    ({}, "cimd.ca_file", None),
    ({"AUTHSERVER_CIMD_CA_FILE": "/etc/lab-ca.pem"}, "cimd.ca_file", Path("/etc/lab-ca.pem")),
])
def test_values(env, path, expected):
    value = conf.load(env, testing=False)
    for part in path.split("."):
        value = getattr(value, part)
    assert value == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"AUTHSERVER_CIMD": "yes"}, "AUTHSERVER_CIMD must be one of off, on, not 'yes'"),
    ({"AUTHSERVER_CIMD_ALLOW_PRIVATE": "maybe"}, "AUTHSERVER_CIMD_ALLOW_PRIVATE must be a boolean"),
])
def test_bad_values_are_refused_by_name(env, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        conf.load(env, testing=False)


def test_production_refuses_private_fetches():
    with pytest.raises(ImproperlyConfigured, match="AUTHSERVER_CIMD_ALLOW_PRIVATE would let any"):
        conf.load({**PRODUCTION, "AUTHSERVER_CIMD_ALLOW_PRIVATE": "1"}, testing=False)
    assert conf.load({**PRODUCTION, "AUTHSERVER_CIMD": "on"}, testing=False).cimd.mode == "on"
