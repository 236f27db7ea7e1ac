"""The passkey list and removal: a recent factor, never the last factor, audited."""

from __future__ import annotations

import time

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice

from authserver.passkeys.models import PasskeyDevice
from authserver.staff.factor import SESSION_AT
from authserver.staff.models import TOTPDevice
from tests.helpers import staff_login
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.conftest import enrol, events, password_only, verify

pytestmark = pytest.mark.django_db


def remove_url(device: PasskeyDevice) -> str:
    return reverse("passkeys:remove", args=[device.pk])


def test_a_passkey_is_a_django_otp_device(enrolled, staff):
    assert list(devices_for_user(staff)) == [enrolled]
    assert enrolled.verify_token("123456") is False


def test_the_list_shows_only_the_users_own_passkeys(enrolled, staff, other_staff):
    enrol(password_only(other_staff), SoftAuthenticator())
    PasskeyDevice.objects.filter(user=other_staff).update(name="Theirs")
    page = password_only(staff).get(reverse("passkeys:list"))
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert b"Laptop" in page.content and b"Theirs" not in page.content


def test_removal_with_a_recent_factor_removes_and_audits(enrolled, staff):
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    http = staff_login(HttpClient(), staff)
    response = http.post(remove_url(enrolled))
    assert response.status_code == 302 and response["Location"] == reverse("passkeys:list")
    assert not PasskeyDevice.objects.exists()
    [event] = events("passkey.removed")
    assert (event.actor, event.subject) == (f"user:{staff.pk}", f"passkey:{enrolled.pk}")


def test_removal_without_a_recent_factor_asks_for_one_first(enrolled, staff):
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    http = staff_login(HttpClient(), staff)
    session = http.session
    session[SESSION_AT] = int(time.time()) - 301
    session.save()
    response = http.post(remove_url(enrolled))
    assert response.status_code == 302 and response["Location"].startswith(reverse("passkeys:verify"))
    assert PasskeyDevice.objects.filter(pk=enrolled.pk).exists()
    assert password_only(staff).post(remove_url(enrolled)).status_code == 302
    assert PasskeyDevice.objects.filter(pk=enrolled.pk).exists() and not events("passkey.removed")


@pytest.mark.parametrize("others", [[], [StaticDevice]])
def test_the_last_factor_cannot_be_removed(enrolled, staff, authenticator, others):
    for model in others:  # recovery codes are a fallback, not a factor of their own
        model.objects.create(user=staff, name="codes", confirmed=True)
    http = password_only(staff)
    assert verify(http, authenticator).status_code == 200  # a recent factor: this very passkey
    response = http.post(remove_url(enrolled), follow=True)
    assert PasskeyDevice.objects.filter(pk=enrolled.pk).exists()
    assert b"last second factor" in response.content
    assert not events("passkey.removed")


def test_another_users_passkey_cannot_be_removed(enrolled, staff, other_staff):
    TOTPDevice.objects.create(user=other_staff, name="phone", confirmed=True)
    staff_login(http := HttpClient(), other_staff)
    http.post(remove_url(enrolled))
    assert PasskeyDevice.objects.filter(pk=enrolled.pk).exists()


def test_removal_is_post_only(enrolled, staff):
    assert staff_login(HttpClient(), staff).get(remove_url(enrolled)).status_code == 405
