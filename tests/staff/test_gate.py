"""A password alone reaches no admin page: every URL of the admin site and of every registered model
admin, with existing object ids, answered by a redirect to the staff plane, never by the admin, and
a POST changes nothing. With a passed second factor (tests.helpers.staff_login) they work."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver

from tests.helpers import staff_login

pytestmark = pytest.mark.django_db


def _patterns(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _fill(route: str, values: dict[str, str]) -> str | None:
    route = route.lstrip("^").rstrip("$").replace("\\", "")
    if route.startswith("(?P<app_label>"):
        return f"{values['app_label']}/"  # the app index: one app with an admin stands for all
    if "(?P<url>" in route:
        return "no-such-page/"
    filled = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: values.get(m.group(2), "1"), route)
    return None if "(" in filled else filled


def admin_urls(values: dict[str, str], *, missing_objects: bool = True) -> list[str]:
    urls = set()
    for route in _patterns(admin.site.get_urls()):
        if "object_id" in route and "<int:content_type_id>" not in route:
            continue  # a model admin's object pages: walked below, with an existing id
        filled = _fill(route, values)
        if filled is not None:
            urls.add(f"/{settings.ADMIN_PATH}/{filled}")
    for model, model_admin in admin.site._registry.items():
        obj = model._default_manager.order_by("pk").first()
        local = {**values, "object_id": str(obj.pk) if obj else "1"}
        base = f"{model._meta.app_label}/{model._meta.model_name}/"
        for route in _patterns(model_admin.get_urls()):
            if obj is None and "object_id" in route and not missing_objects:
                continue
            filled = _fill(route, local)
            if filled is not None:
                urls.add(f"/{settings.ADMIN_PATH}/{base}{filled}")
    return sorted(urls)


@pytest.fixture
def objects(db, service_client, resource_server):
    from keys.services import api_key_create

    client, _secret = service_client
    api_key_create(client=client, name="walk", actor="test")
    return {"client_pk": str(client.pk), "app_label": "clients", "content_type_id": "1", "what": "acknowledge"}


def _counts() -> dict[str, int]:
    from authserver.audit.models import AuditEvent

    counts = {m._meta.label: m._default_manager.count() for m in admin.site._registry}
    counts["audit"] = AuditEvent.objects.count()
    return counts


def test_every_admin_url_is_closed_to_a_password_alone(client, objects):
    staff = get_user_model().objects.create_superuser("root", "root@example.test", "x-unused-password-x")
    client.force_login(staff)  # a password alone: no second factor in the session
    urls = admin_urls(objects)
    assert len(urls) > 60, urls  # the walk found the admin, not a handful of pages
    before = _counts()
    for path in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(path, {"action": "delete_selected", "_selected_action": ["1"],
                                                      "post": "yes"} if method == "post" else None)
            assert response.status_code == 302, (method, path, response.status_code)
            assert response["Location"].startswith(f"/{settings.ADMIN_PATH}/security/"), (method, path)
    assert _counts() == before, "no side effect"
    assert client.get(f"/{settings.ADMIN_PATH}/")["Location"].startswith(f"/{settings.ADMIN_PATH}/security/enrol/")


def test_anonymous_and_non_staff(client, objects, user):
    for path in admin_urls(objects)[:40]:
        response = client.get(path)
        assert response.status_code == 302 and "/security/login/" in response["Location"], path
    client.force_login(user)
    assert client.get(f"/{settings.ADMIN_PATH}/").status_code == 403


def test_with_a_second_factor_the_admin_works(client, objects):
    staff = get_user_model().objects.create_superuser("root", "root@example.test", "x-unused-password-x")
    staff_login(client, staff)
    for path in admin_urls(objects, missing_objects=False):
        response = client.get(path)
        assert response.status_code < 500, path
        if path.endswith(("/login/", "/logout/", "/password_change/")):
            continue  # taken over by the staff plane (tested in test_totp, test_login_limits)
        assert "/security/" not in response.get("Location", ""), path
    assert client.get(f"/{settings.ADMIN_PATH}/").status_code == 200
