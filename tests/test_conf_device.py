"""AUTHSERVER_DEVICE_CODE_SECONDS and AUTHSERVER_DEVICE_INTERVAL_SECONDS (authserver.conf_device)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from authserver import conf


def test_defaults():
    device = conf.load({}, testing=False).device
    assert (device.code_seconds, device.interval_seconds) == (600, 5)


def test_parsed():
    device = conf.load({"AUTHSERVER_DEVICE_CODE_SECONDS": "300", "AUTHSERVER_DEVICE_INTERVAL_SECONDS": "2"},
                       testing=False).device
    assert device.as_tuple() == (300, 2)


@pytest.mark.parametrize(("name", "raw"), [
    ("AUTHSERVER_DEVICE_CODE_SECONDS", "59"),  # shorter than anyone can type a code
    ("AUTHSERVER_DEVICE_CODE_SECONDS", "ten"),
    ("AUTHSERVER_DEVICE_INTERVAL_SECONDS", "0"),  # a device polling in a loop
    ("AUTHSERVER_DEVICE_INTERVAL_SECONDS", "-5"),
])
def test_bad_values_are_refused_by_name(name, raw):
    with pytest.raises(ImproperlyConfigured, match=name):
        conf.load({name: raw}, testing=False)
