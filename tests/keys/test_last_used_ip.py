"""An API key's last caller address is personal data (issue 13, item 7): stored encrypted, bound to
its key's row; shown in the admin only with ``audit.view_personal_data`` and on the management API
only to a token with the personal-data scope; migration 0005 encrypts the addresses stored before.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client as HttpClient
from django.utils import timezone

from authserver.crypto import Ciphertext
from keys.api import KEYS_READ
from keys.jobs import _sealed_address
from keys.models import ApiKey
from keys.serializers import PERSONAL_DATA_SCOPE, ApiKeySerializer
from keys.services import api_key_create
from tests.helpers import staff_login
from tests.keys.conftest import KEYS, api_token, get

pytestmark = pytest.mark.django_db

ADDRESS = "198.51.100.77"


def used_key(owner: Any, address: str = ADDRESS) -> ApiKey:
    key, _ = api_key_create(client=owner, name="used")
    key.last_used, key.last_used_ip = timezone.now(), address
    key.save(update_fields=["last_used", "last_used_ip"])
    return key


def stored(key: ApiKey) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_used_ip FROM keys_apikey WHERE id = %s", [key.pk.hex if connection.vendor ==
                                                                            "sqlite" else key.pk])
        return str(cursor.fetchone()[0])


def test_the_database_holds_no_plaintext_address(owner: Any) -> None:
    key = used_key(owner)
    raw = stored(key)
    assert ADDRESS not in raw and raw.startswith("v")
    assert ApiKey.objects.get(pk=key.pk).last_used_ip == ADDRESS
    # Bound to its row: the same ciphertext copied to another key does not decrypt.
    other = used_key(owner, "192.0.2.1")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE keys_apikey SET last_used_ip = %s WHERE id = %s",
                       [raw, other.pk.hex if connection.vendor == "sqlite" else other.pk])
    from authserver.crypto.keystore import DecryptionError

    with pytest.raises(DecryptionError):
        _ = ApiKey.objects.get(pk=other.pk).last_used_ip


def test_the_roll_up_writes_it_encrypted(owner: Any) -> None:
    key, _ = api_key_create(client=owner, name="rolled")
    sealed = _sealed_address(str(key.pk), "2001:db8::7")
    assert isinstance(sealed, Ciphertext) and "2001:db8" not in sealed
    ApiKey.objects.filter(pk=key.pk).update(last_used=timezone.now(), last_used_ip=sealed)
    assert ApiKey.objects.get(pk=key.pk).last_used_ip == "2001:db8::7"
    assert "2001:db8" not in stored(key)
    assert _sealed_address(str(key.pk), None) is None
    with pytest.raises(TypeError):  # a plaintext can never be written past the encryption
        ApiKey.objects.filter(pk=key.pk).update(last_used_ip="192.0.2.9")


# -- the admin ------------------------------------------------------------------------------------

def _staff(*codenames: str) -> HttpClient:
    user = get_user_model().objects.create_user("keystaff", password="x-unused-password-x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return staff_login(HttpClient(), user)


@pytest.mark.parametrize(("codenames", "shown"), [
    (("view_apikey",), False),
    (("view_apikey", "view_personal_data"), True),
])
def test_admin_shows_the_address_only_with_the_personal_data_permission(owner: Any, codenames: tuple[str, ...],
                                                                         shown: bool) -> None:
    from django.conf import settings

    key = used_key(owner)
    http = _staff(*codenames)
    base = f"/{settings.ADMIN_PATH}/keys/apikey/"
    for url in (base, f"{base}{key.pk}/change/", f"{base}{key.pk}/usage/"):
        response = http.get(url)
        assert response.status_code == 200, url
        assert (ADDRESS in response.content.decode()) is shown, url


# -- the management API ---------------------------------------------------------------------------

@pytest.mark.parametrize(("scopes", "shown"), [
    ([KEYS_READ], False),
    ([KEYS_READ, PERSONAL_DATA_SCOPE], True),
])
def test_api_shows_the_address_only_with_the_personal_data_scope(client: Any, owner: Any, scopes: list[str],
                                                                  shown: bool) -> None:
    key = used_key(owner)
    _, token = api_token(client, scopes)
    detail = get(client, f"{KEYS}/{key.pk}", token).json()
    listed = get(client, KEYS, token).json()["results"][0]
    usage = get(client, f"{KEYS}/{key.pk}/usage", token).json()
    for body in (detail, listed, usage):
        if shown:
            assert body["last_used_ip"] == ADDRESS
        else:
            assert "last_used_ip" not in body and ADDRESS not in str(body)


def test_serializer_drops_personal_data_unless_told(owner: Any) -> None:
    key = used_key(owner)
    assert "last_used_ip" not in ApiKeySerializer(key).data
    assert ApiKeySerializer(key, context={"personal_data": True}).data["last_used_ip"] == ADDRESS


def test_the_scope_exists_for_admins_to_grant() -> None:
    from clients.models import Scope

    assert Scope.objects.filter(name=PERSONAL_DATA_SCOPE).exists()


# -- the migration --------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_the_addresses_stored_in_clear(owner: Any) -> None:
    old, new = [("keys", "0004_quota_lease_and_usage_batches")], [("keys", "0006_personal_data_scope")]
    key, _ = api_key_create(client=owner, name="old")
    unused, _ = api_key_create(client=owner, name="never used")
    executor = MigrationExecutor(connection)
    executor.migrate(old)
    try:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE keys_apikey SET last_used_ip = %s WHERE id = %s",
                           ["203.0.113.44", key.pk.hex if connection.vendor == "sqlite" else key.pk])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(new)
    assert "203.0.113.44" not in stored(key)
    assert ApiKey.objects.get(pk=key.pk).last_used_ip == "203.0.113.44"
    assert ApiKey.objects.get(pk=unused.pk).last_used_ip is None
