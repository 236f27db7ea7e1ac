"""factory_boy factories. Clients are registered through the service, like production does."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from clients.models import Scope
from clients.services import client_register

RS_AUDIENCE = "https://api.example.test"
REDIRECT_URI = "https://app.example.test/callback"
PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")

    @factory.post_generation
    def password(obj: Any, create: bool, extracted: str | None, **kwargs: Any) -> None:
        obj.set_password(extracted or PASSWORD)
        if create:
            obj.save(update_fields=["password"])


class ScopeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scope
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"scope{n}")
    description = factory.LazyAttribute(lambda o: f"Access to {o.name}")


def make_client(**overrides: Any) -> tuple[Any, str | None]:
    """Register a client through ``client_register`` and return ``(client, secret)``.

    Tests register clients before (or without) the resource servers they name, so the factory
    allows unregistered audiences; tests of that rule pass ``allow_unregistered_audience=False``.
    """
    options: dict[str, Any] = {
        "name": "test client",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scopes": [],
        "audiences": [RS_AUDIENCE],
        "allow_unregistered_audience": True,
    }
    options.update(overrides)
    for name in options["scopes"]:
        ScopeFactory(name=name)
    return client_register(**options)


def make_resource_server(audience: str = RS_AUDIENCE, **overrides: Any) -> tuple[Any, str]:
    client, secret = make_client(
        name=f"resource server {audience}", grant_types=["client_credentials"], audiences=[],
        resource_server_audience=audience, **overrides,
    )
    assert secret is not None
    return client, secret
