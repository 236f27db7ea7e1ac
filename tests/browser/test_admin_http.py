"""The admin's security properties through Django's test client (no browser needed).

Lives next to the browser tests because it covers the same views; it is not marked ``browser``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client as HttpClient
from django.urls import reverse
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from authserver import credentials
from authserver.oauth import admin as oauth_admin
from clients import admin as clients_admin
from clients.models import Client, Scope
from tests.factories import REDIRECT_URI, RS_AUDIENCE, make_client, make_resource_server
from tests.helpers import authorize, client_credentials, code_from, exchange_code, pkce_pair, staff_login

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def superuser_client(db: Any) -> HttpClient:
    http = HttpClient()
    staff_login(http, User.objects.create_superuser("root", "root@example.test", "x-unused-password-x"))
    return http


def staff_with(*codenames: str) -> HttpClient:
    user = User.objects.create_user("staff", password="x-unused-password-x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    http = HttpClient()
    staff_login(http, user)
    return http


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def add_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Web app",
        "client_type": "confidential",
        "grant_types": ["authorization_code"],
        "redirect_uris": REDIRECT_URI,
        "allowed_audiences": "",
        "resource_server_audience": "",
        "access_token_lifetime": "",
    }
    data.update(overrides)
    return data


def test_our_admin_classes_are_registered() -> None:
    registry = admin.site._registry
    assert type(registry[Client]) is clients_admin.ClientAdmin
    assert type(registry[get_access_token_model()]) is oauth_admin.AccessTokenAdmin
    assert type(registry[get_refresh_token_model()]) is oauth_admin.RefreshTokenAdmin
    assert type(registry[get_grant_model()]) is oauth_admin.GrantAdmin
    assert type(registry[Scope]) is clients_admin.ScopeAdmin


def test_admin_lives_at_the_secret_path() -> None:
    assert url("index") == f"/{settings.ADMIN_PATH}/"


def test_add_shows_the_secret_once_with_no_store(superuser_client: HttpClient) -> None:
    Scope.objects.create(name="ai.infer")
    make_resource_server()
    response = superuser_client.post(url("clients_client_add"), add_form(allowed_scopes=[Scope.objects.get(name="ai.infer").pk]))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response.templates[0].name == "admin/clients/client/secret_once.html"
    secret = response.context["secret"]
    assert credentials.is_well_formed(secret, "cs")
    assert response.content.decode().count(secret) == 1
    client = Client.objects.get(name="Web app")
    assert client.client_secret != secret and secret not in client.client_secret
    entry = LogEntry.objects.get(object_id=str(client.pk))
    assert secret not in entry.object_repr and secret not in entry.change_message
    # Nothing that would survive the response: no cookie, no message, no redirect.
    assert not response.cookies.get("messages")
    assert "Location" not in response

    # Its discovery URL (issue 15, C3): shown once here, next to the secret, and never again.
    discovery = response.context["discovery_url"]
    assert discovery.startswith(f"{settings.ISSUER}/d/dc_") and response.content.decode().count(discovery) == 1

    change = superuser_client.get(url("clients_client_change", client.pk)).content.decode()
    assert secret not in change and discovery.rpartition("/")[2] not in change
    assert 'name="client_secret"' not in change and 'name="hash_client_secret"' not in change
    assert client.client_secret not in change


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"redirect_uris": "http://evil.example/cb"}, "redirect_uris", "127.0.0.1"),
        ({"redirect_uris": "https://app.example.test/cb#x"}, "redirect_uris", "fragment"),
        ({"redirect_uris": ""}, "redirect_uris", "at least one redirect URI"),
        ({"client_type": "public", "grant_types": ["client_credentials"]}, "grant_types", "public clients"),
        ({"other_audiences": "ftp://api.example.test", "allow_unregistered_audience": "on"}, "other_audiences",
         "absolute http(s) URI"),
        ({"resource_server_audience": RS_AUDIENCE}, "resource_server_audience", "already exists"),
        ({"access_token_lifetime": "5"}, "access_token_lifetime", "30"),
    ],
)
def test_add_errors_land_on_the_form(superuser_client: HttpClient, overrides: dict, field: str, message: str) -> None:
    make_client(name="existing rs", resource_server_audience=RS_AUDIENCE, audiences=[])
    response = superuser_client.post(url("clients_client_add"), add_form(**overrides))
    assert response.status_code == 200
    assert "secret" not in response.context or response.context.get("secret") is None
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not Client.objects.filter(name="Web app").exists()


def test_change_form_validates_and_never_touches_the_secret(superuser_client: HttpClient) -> None:
    client, secret = make_client(grant_types=["authorization_code"], redirect_uris=[REDIRECT_URI])
    digest = client.client_secret
    data = {
        "name": "renamed",
        "grant_types": ["authorization_code"],
        "redirect_uris": "http://evil.example/cb",
        "allowed_audiences": "",
        "audience": "",
        "client_secret": "cs_chosen",
        "hash_client_secret": "",
        "retired_secrets-TOTAL_FORMS": "0",
        "retired_secrets-INITIAL_FORMS": "0",
    }
    response = superuser_client.post(url("clients_client_change", client.pk), data)
    assert response.status_code == 200
    assert "127.0.0.1" in " ".join(response.context["adminform"].form.errors["redirect_uris"])

    data["redirect_uris"] = f"{REDIRECT_URI}\nhttps://app.example.test/two"
    response = superuser_client.post(url("clients_client_change", client.pk), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    client.refresh_from_db()
    assert client.name == "renamed"
    assert client.redirect_uris == f"{REDIRECT_URI} https://app.example.test/two"
    assert client.client_secret == digest and client.hash_client_secret is True
    assert client.client_type == "confidential"


def test_rotate_and_revoke_need_change_permission(db: Any) -> None:
    client, _ = make_client()
    hint = client.client_secret_hint
    viewer = staff_with("view_client")
    assert viewer.get(url("clients_client_change", client.pk)).status_code == 200
    for name in ("clients_client_rotate_secret", "clients_client_revoke_tokens"):
        assert viewer.get(url(name, client.pk)).status_code == 403
        assert viewer.post(url(name, client.pk), {"grace_hours": "1", "confirm": "yes"}).status_code == 403
    client.refresh_from_db()
    assert client.client_secret_hint == hint and not client.retired_secrets.exists()
    page = viewer.get(url("clients_client_change", client.pk)).content.decode()
    assert "rotate-secret" not in page and "revoke-tokens" not in page


def test_rotate_and_revoke_are_csrf_protected_posts(db: Any) -> None:
    client, _ = make_client()
    hint = client.client_secret_hint
    user = User.objects.create_superuser("root", "root@example.test", "x-unused-password-x")
    http = HttpClient(enforce_csrf_checks=True)
    staff_login(http, user)
    assert http.post(url("clients_client_rotate_secret", client.pk), {"grace_hours": "1"}).status_code == 403
    assert http.post(url("clients_client_revoke_tokens", client.pk), {"confirm": "yes"}).status_code == 403
    assert http.get(url("clients_client_rotate_secret", client.pk)).status_code == 200
    assert http.get(url("clients_client_revoke_tokens", client.pk)).status_code == 200
    assert http.delete(url("clients_client_revoke_tokens", client.pk)).status_code in {403, 405}
    client.refresh_from_db()
    assert client.client_secret_hint == hint


def test_rotate_with_permission(db: Any) -> None:
    client, old = make_client()
    editor = staff_with("view_client", "change_client")
    response = editor.post(url("clients_client_rotate_secret", client.pk), {"grace_hours": "3"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new = response.context["secret"]
    assert credentials.is_well_formed(new, "cs") and new != old
    (retired,) = response.context["retired"]
    assert round((retired.expires - retired.retired).total_seconds()) == 3 * 3600
    assert editor.post(url("clients_client_rotate_secret", client.pk), {"grace_hours": "9999"}).status_code == 200
    assert client.retired_secrets.count() == 1  # the invalid grace rotated nothing


def test_public_client_has_no_rotate(superuser_client: HttpClient) -> None:
    client, secret = make_client(
        client_type="public", grant_types=["authorization_code"], redirect_uris=["http://127.0.0.1/cb"], audiences=[]
    )
    assert secret is None
    page = superuser_client.get(url("clients_client_change", client.pk)).content.decode()
    assert "rotate-secret" not in page
    response = superuser_client.post(url("clients_client_rotate_secret", client.pk), {"grace_hours": "1"})
    assert response.status_code == 302


def _issue_tokens(service_client: Any, web_client: Any, user: Any) -> tuple[str, str, str]:
    http = HttpClient()
    app, secret = service_client
    access = client_credentials(http, app, secret).json()["access_token"]
    web, web_secret = web_client
    staff_login(http, user)
    verifier, challenge = pkce_pair()
    code = code_from(authorize(http, web, challenge=challenge))
    body = exchange_code(http, web, web_secret, code, verifier).json()
    return access, body["refresh_token"], code


def test_token_admins_are_read_only_and_never_show_digests(
    superuser_client: HttpClient, service_client: Any, web_client: Any, user: Any
) -> None:
    access, refresh, code = _issue_tokens(service_client, web_client, user)
    AccessToken, RefreshToken, Grant = get_access_token_model(), get_refresh_token_model(), get_grant_model()
    secrets_and_digests = [
        access,
        refresh,
        code,
        credentials.digest(access),
        credentials.digest(refresh),
        credentials.digest(code),
    ]
    for model, name in (
        (AccessToken, "oauth_accesstoken"),
        (RefreshToken, "oauth_refreshtoken"),
        (Grant, "oauth_grant"),
    ):
        listing = superuser_client.get(url(f"{name}_changelist"))
        assert listing.status_code == 200
        html = listing.content.decode()
        for value in secrets_and_digests:
            assert value not in html
        assert "token_checksum" not in html and "field-code" not in html
        assert url(f"{name}_add") not in html
        assert superuser_client.get(url(f"{name}_add")).status_code == 403
        obj = model.objects.first()
        detail = superuser_client.get(url(f"{name}_change", obj.pk))
        assert detail.status_code == 200
        html = detail.content.decode()
        for value in secrets_and_digests:
            assert value not in html
        assert obj.hint and obj.hint in html
        assert 'name="_save"' not in html  # view-only
        assert superuser_client.get(url(f"{name}_delete", obj.pk)).status_code == 403
        # Searching by hint works; by token value finds nothing (no such search field).
        assert obj.hint in superuser_client.get(url(f"{name}_changelist"), {"q": obj.hint}).content.decode()


def test_revoke_selected_access_tokens(
    superuser_client: HttpClient, service_client: Any, web_client: Any, user: Any
) -> None:
    _issue_tokens(service_client, web_client, user)
    AccessToken, RefreshToken = get_access_token_model(), get_refresh_token_model()
    ids = [str(pk) for pk in AccessToken.objects.values_list("pk", flat=True)]
    assert len(ids) == 2
    response = superuser_client.post(
        url("oauth_accesstoken_changelist"), {"action": "revoke_selected", "_selected_action": ids}, follow=True
    )
    assert "Revoked 2 access tokens." in response.content.decode()
    assert AccessToken.objects.count() == 0
    # The user's refresh token was bound to one of them and is revoked with it (DOT's revoke path).
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 0


def test_revoke_selected_refresh_tokens_and_codes(
    superuser_client: HttpClient, web_client: Any, user: Any, service_client: Any
) -> None:
    _issue_tokens(service_client, web_client, user)
    RefreshToken, Grant = get_refresh_token_model(), get_grant_model()
    ids = [str(pk) for pk in RefreshToken.objects.values_list("pk", flat=True)]
    response = superuser_client.post(
        url("oauth_refreshtoken_changelist"), {"action": "revoke_selected", "_selected_action": ids}, follow=True
    )
    assert "Revoked 1 refresh token." in response.content.decode()
    assert RefreshToken.objects.get().revoked is not None
    ids = [str(pk) for pk in Grant.objects.values_list("pk", flat=True)]
    response = superuser_client.post(
        url("oauth_grant_changelist"), {"action": "revoke_selected", "_selected_action": ids}, follow=True
    )
    assert "Revoked 0 authorization codes." in response.content.decode()  # already used by the exchange


def test_revoke_action_needs_change_permission(service_client: Any) -> None:
    app, secret = service_client
    client_credentials(HttpClient(), app, secret)
    viewer = staff_with("view_accesstoken")
    listing = viewer.get(url("oauth_accesstoken_changelist"))
    assert listing.status_code == 200
    assert "revoke_selected" not in listing.content.decode()
    ids = [str(pk) for pk in get_access_token_model().objects.values_list("pk", flat=True)]
    viewer.post(url("oauth_accesstoken_changelist"), {"action": "revoke_selected", "_selected_action": ids})
    assert get_access_token_model().objects.count() == 1


def test_client_with_tokens_can_be_deleted(superuser_client: HttpClient, service_client: Any) -> None:
    app, secret = service_client
    client_credentials(HttpClient(), app, secret)
    confirm = superuser_client.get(url("clients_client_delete", app.pk))
    assert confirm.status_code == 200 and not confirm.context["perms_lacking"]
    response = superuser_client.post(url("clients_client_delete", app.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Client.objects.filter(pk=app.pk).exists()


def test_resubmitting_the_add_form_does_not_create_a_second_client(superuser_client: HttpClient) -> None:
    form = superuser_client.get(url("clients_client_add"))
    once = form.context["once"]
    assert f'name="_once" value="{once}"' in form.content.decode()
    first = superuser_client.post(url("clients_client_add"), add_form(_once=once))
    assert first.status_code == 200 and first.context["secret"]
    again = superuser_client.post(url("clients_client_add"), add_form(_once=once), follow=True)
    client = Client.objects.get(name="Web app")  # exactly one
    assert again.redirect_chain[0][0] == url("clients_client_change", client.pk)
    html = again.content.decode()
    assert "already created" in html and first.context["secret"] not in html


def test_resubmitting_a_rotation_does_not_rotate_again(superuser_client: HttpClient) -> None:
    client, _ = make_client()
    once = superuser_client.get(url("clients_client_rotate_secret", client.pk)).context["once"]
    first = superuser_client.post(url("clients_client_rotate_secret", client.pk), {"grace_hours": "1", "_once": once})
    hint = Client.objects.get(pk=client.pk).client_secret_hint
    again = superuser_client.post(url("clients_client_rotate_secret", client.pk), {"grace_hours": "1", "_once": once})
    assert again.status_code == 302
    assert Client.objects.get(pk=client.pk).client_secret_hint == hint
    assert client.retired_secrets.count() == 1
    assert first.context["secret"] not in superuser_client.get(again["Location"]).content.decode()
