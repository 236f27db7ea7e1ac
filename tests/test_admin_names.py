"""Every model the admin shows names itself readably: ``str(obj)`` of every row (delete
confirmations, breadcrumbs, the audit log) and the verbose names (index, headings, "Delete N
<plural>"), the implicit many-to-many rows included ("Client_allowed_scopes object (7)" before)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import admin
from django.db import models

from tests.browser.admin_seed import seed_admin_data

pytestmark = pytest.mark.django_db

UNREADABLE_STR = re.compile(r"\bobject \(\w+\)$|^[A-Za-z]+ #\d+$|^[A-Z][a-z]+[A-Z]\w* ")
SNAKE_CASE = re.compile(r"[a-z]_[a-z]")


def _shown_models() -> list[type[models.Model]]:
    shown: list[type[models.Model]] = []
    for model in admin.site._registry:
        shown.append(model)
        shown.extend(field.remote_field.through for field in model._meta.many_to_many
                     if field.remote_field.through._meta.auto_created)
    return shown


def test_every_model_in_the_admin_has_readable_names() -> None:
    seed_admin_data()
    seen_rows = 0
    for model in _shown_models():
        opts: Any = model._meta
        singular, plural = str(opts.verbose_name), str(opts.verbose_name_plural)
        for name in (singular, plural):
            assert not SNAKE_CASE.search(name), f"{opts.label}: {name!r}"
        assert not plural.endswith(("ds", "eds")) or plural.endswith("needs"), f"{opts.label}: {plural!r}"
        for row in model._default_manager.all()[:5]:
            text = str(row)
            seen_rows += 1
            assert text and not UNREADABLE_STR.search(text), f"{opts.label}: {text!r}"
    assert seen_rows >= 15


def test_every_app_in_the_admin_index_has_a_readable_name() -> None:
    from django.apps import AppConfig, apps

    from authserver.staff.services import recovery_codes_generate, totp_device_pending
    from tests.factories import UserFactory

    staff = UserFactory(is_staff=True)
    totp_device_pending(user=staff)
    recovery_codes_generate(user=staff, actor="test")
    for model in admin.site._registry:
        config = apps.get_app_config(model._meta.app_label)
        name = str(config.verbose_name)
        assert "_" not in name and not name.isupper(), f"{model._meta.label}: app named {name!r}"
        if config.name.startswith(("authserver", "clients", "keys")):  # our apps: their own config is the one used
            assert type(config) is not AppConfig, f"{config.name}: Django fell back to a bare AppConfig"
        for row in model._default_manager.all()[:5]:
            assert not UNREADABLE_STR.search(str(row)), f"{model._meta.label}: {row!s}"
