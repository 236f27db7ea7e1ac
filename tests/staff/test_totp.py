"""TOTP enrolment at first login, TOTP login, recovery codes and step-up, with the Django client."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_static.models import StaticToken

from authserver.audit.models import AuditEvent
from authserver.staff import factor
from authserver.staff.models import TOTPDevice
from authserver.staff.services import recovery_code_digest
from tests.staff.helpers import admin, code_for, codes_in, fresh_code, url

pytestmark = pytest.mark.django_db
PASSWORD = "staff-password-for-tests-1"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)


def password_step(client) -> None:
    response = client.post(url("login/"), {"username": "root", "password": PASSWORD, "next": admin()})
    assert response.status_code == 302, response.content[:500]
    return response


def enrol(client, staff) -> list[str]:
    page = client.get(url("enrol/"))
    assert page.status_code == 200
    assert b'class="segno"' in page.content  # the QR code, inline SVG
    assert re.search(rb"<script(?![^>]*\bsrc=)", page.content) is None, "no inline script"
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    shown = page.context["secret"].replace(" ", "")
    import base64

    assert base64.b32decode(shown + "=" * (-len(shown) % 8)) == device.bin_key
    assert client.get(admin()).status_code == 302, "an unconfirmed device is no factor"
    response = client.post(url("enrol/"), {"code": code_for(device)})
    assert response.status_code == 200
    codes = codes_in(response)
    assert len(codes) == 10 and len(set(codes)) == 10
    return codes


def test_first_login_enrols_then_the_admin_opens(client, staff):
    assert password_step(client)["Location"].startswith(url("enrol/"))
    assert client.get(admin())["Location"].startswith(url("enrol/"))
    codes = enrol(client, staff)
    assert client.get(admin()).status_code == 200
    # The codes are stored as digests, never as themselves.
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert stored == {recovery_code_digest(c) for c in codes}
    assert not stored & set(codes)
    events = set(AuditEvent.objects.values_list("event", flat=True))
    assert {"staff.factor.enrolled", "staff.factor.passed", "staff.recovery_codes.generated"} <= events


def test_a_wrong_enrolment_code_confirms_nothing(client, staff):
    password_step(client)
    client.get(url("enrol/"))
    response = client.post(url("enrol/"), {"code": "000000"})
    assert response.status_code == 200 and b"not accepted" in response.content
    assert not TOTPDevice.objects.filter(user=staff, confirmed=True).exists()
    assert AuditEvent.objects.filter(event="staff.factor.failed", outcome="failure").count() == 1


def test_totp_login(client, staff):
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    assert password_step(client)["Location"].startswith(url("verify/"))
    assert client.get(url("enrol/"))["Location"].startswith(url("verify/")), "no new factor on a password alone"
    wrong = client.post(url("verify/"), {"code": "123456"})
    assert wrong.status_code == 200 and client.get(admin()).status_code == 302
    time.sleep(1.1)  # django-otp throttles a device for 1 s after a failure
    response = client.post(url("verify/") + f"?next={admin('clients/client/')}", {"code": fresh_code(device)})
    assert response["Location"] == admin("clients/client/")
    assert client.get(admin()).status_code == 200
    assert AuditEvent.objects.filter(event="staff.factor.failed").count() == 1
    assert AuditEvent.objects.filter(event="staff.factor.passed").count() == 1


def test_a_totp_code_is_accepted_once(client, staff):
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    password_step(client)
    code = fresh_code(device)
    assert client.post(url("verify/"), {"code": code}).status_code == 302
    other = type(client)()
    password_step(other)
    assert other.post(url("verify/"), {"code": code}).status_code == 200, "a replayed code is refused"
    assert other.get(admin()).status_code == 302


def test_recovery_code_signs_in_once(client, staff):
    password_step(client)
    codes = enrol(client, staff)
    client.post(url("logout/"))
    password_step(client)
    assert client.post(url("verify/"), {"code": codes[3].upper()}).status_code == 302
    assert client.get(admin()).status_code == 200
    assert AuditEvent.objects.filter(event="staff.recovery_code.used").count() == 1
    client.post(url("logout/"))
    password_step(client)
    time.sleep(1.1)
    assert client.post(url("verify/"), {"code": codes[3]}).status_code == 200, "single use"
    assert StaticToken.objects.count() == 9


def test_second_factor_attempts_are_rate_limited_per_account(client, staff):
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    password_step(client)
    statuses = [client.post(url("verify/"), {"code": f"{i:06d}"}).status_code for i in range(11)]
    assert statuses == [200] * 10 + [429]
    assert client.get(admin()).status_code == 302


def test_step_up_get_reverifies_then_comes_back(client, staff, settings):
    settings.STAFF_STEP_UP_SECONDS = 300
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    password_step(client)
    client.post(url("verify/"), {"code": fresh_code(device)})
    assert client.get(url("")).status_code == 200
    session = client.session
    session[factor.SESSION_AT] = int(time.time()) - 301
    session.save()
    # Regenerating recovery codes with a stale factor: refused, nothing created, sent to re-verify.
    response = client.post(url("recovery-codes/"))
    assert response.status_code == 302 and response["Location"].startswith(url("verify/"))
    assert "step_up=1" in response["Location"]
    assert not StaticToken.objects.exists()
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"recent second factor" in page.content
    back = client.post(response["Location"], {"code": fresh_code(device)})
    assert back["Location"] == url("recovery-codes/")
    assert len(codes_in(client.post(url("recovery-codes/")))) == 10


def test_removing_a_factor_needs_a_fresh_one(client, staff):
    phone = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    spare = TOTPDevice.objects.create(user=staff, name="spare", confirmed=True)
    password_step(client)
    client.post(url("verify/"), {"code": fresh_code(phone)})
    session = client.session
    session[factor.SESSION_AT] = int(time.time()) - 3600
    session.save()
    assert client.post(url("remove/"), {"device": spare.persistent_id})["Location"].startswith(url("verify/"))
    assert TOTPDevice.objects.filter(pk=spare.pk).exists()
    client.post(url("verify/") + "?step_up=1", {"code": fresh_code(phone)})
    client.post(url("remove/"), {"device": spare.persistent_id})
    assert not TOTPDevice.objects.filter(pk=spare.pk).exists()
    assert AuditEvent.objects.filter(event="staff.factor.removed").count() == 1
    client.post(url("remove/"), {"device": phone.persistent_id})
    assert TOTPDevice.objects.filter(pk=phone.pk).exists(), "the only factor stays"


def test_forced_password_change_comes_first(client, staff):
    from authserver.staff.services import staff_password_change_require

    staff_password_change_require(user=staff)
    assert password_step(client)["Location"].startswith(url("password/"))
    assert client.get(admin())["Location"].startswith(url("password/"))
    assert client.get(url("enrol/"))["Location"].startswith(url("password/"))
    weak = client.post(url("password/"), {"old_password": PASSWORD, "new_password1": "short",
                                          "new_password2": "short"})
    assert weak.status_code == 200  # Django's validators
    new = "a-much-better-passphrase-42"
    done = client.post(url("password/"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert done["Location"].startswith(url("enrol/"))
    staff.refresh_from_db()
    assert staff.check_password(new)


def test_the_admin_links_to_the_security_page(client, staff):
    from tests.helpers import staff_login

    staff_login(client, staff)
    assert url("").encode() in client.get(admin()).content
    page = client.get(url(""))
    assert page.status_code == 200 and b"test authenticator" in page.content


def test_the_continue_link_never_leaves_the_site(client, staff):
    password_step(client)
    client.get(url("enrol/"))
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    response = client.post(url("enrol/") + "?next=javascript:alert(1)", {"code": code_for(device)})
    assert b"javascript:" not in response.content
    assert f'href="{admin()}"'.encode() in response.content


def test_passing_the_second_factor_gives_the_session_a_new_key(client):
    from django.contrib.auth import get_user_model

    from authserver.staff.models import TOTPDevice
    from tests.staff.helpers import fresh_code, url

    staff = get_user_model().objects.create_superuser("rooted", "rooted@example.test", "x-unused-password-x")
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    client.force_login(staff)
    before = client.session.session_key
    response = client.post(url("verify/"), {"code": fresh_code(device)})
    assert response.status_code == 302
    assert client.session.session_key != before
    assert client.get(f"/{url('').split('/')[1]}/").status_code == 200
