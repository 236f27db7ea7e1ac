"""AUTHSERVER_DCR and the registrable scopes and audiences (authserver/conf_registration.py)."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from authserver import conf


def test_defaults_are_off_and_empty() -> None:
    registration = conf.load({}, testing=False).registration
    assert (registration.mode, registration.unused_seconds, registration.scopes, registration.audiences) == (
        "off", 86400, (), ())


def test_lists_take_spaces_or_commas_and_drop_duplicates() -> None:
    registration = conf.load({"AUTHSERVER_DCR": "Token", "AUTHSERVER_REGISTRABLE_SCOPES": "mcp.tools, ai.infer mcp.tools",
                              "AUTHSERVER_REGISTRABLE_AUDIENCES": "https://mcp.example.test/mcp,https://b.test"},
                             testing=False).registration
    assert registration.mode == "token" and registration.scopes == ("mcp.tools", "ai.infer")
    assert registration.audiences == ("https://mcp.example.test/mcp", "https://b.test")
    flat = conf.flat_settings(conf.load({"AUTHSERVER_REGISTRABLE_SCOPES": "a b"}, testing=False))
    assert flat["REGISTRABLE_SCOPES"] == ["a", "b"] and flat["DCR"] == "off"


@pytest.mark.parametrize(("env", "message"), [
    ({"AUTHSERVER_DCR": "on"}, "AUTHSERVER_DCR must be one of off, open, token"),
    ({"AUTHSERVER_DCR_UNUSED_SECONDS": "30"}, "AUTHSERVER_DCR_UNUSED_SECONDS must be at least 60"),
    ({"AUTHSERVER_REGISTRABLE_SCOPES": 'ai"infer'}, "AUTHSERVER_REGISTRABLE_SCOPES: not scope names"),
    ({"AUTHSERVER_REGISTRABLE_AUDIENCES": "ftp://x.test"}, "AUTHSERVER_REGISTRABLE_AUDIENCES: not absolute"),
    ({"AUTHSERVER_REGISTRABLE_AUDIENCES": "https://x.test/#f"}, "AUTHSERVER_REGISTRABLE_AUDIENCES: not absolute"),
    ({"AUTHSERVER_API_KEY_PREFIX": "iat"}, "AUTHSERVER_API_KEY_PREFIX must be"),
    ({"AUTHSERVER_API_KEY_PREFIX": "rat"}, "AUTHSERVER_API_KEY_PREFIX must be"),
])
def test_bad_values_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        conf.load(env, testing=False)
