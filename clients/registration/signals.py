"""A self-registered client's first token marks its registration used (never expired for disuse).

Connected to DOT's access-token model in ``AppConfig.ready``: ``authserver.oauth`` sits above this
app and can't be imported here. The receiver runs a query only for a ``dcr`` client's new token;
the application is already loaded on the token being saved (authserver.oauth.validator).
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from clients.registration.models import Registration


def _first_token(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created or instance.application_id is None:
        return
    if getattr(instance.application, "registration_source", None) != "dcr":
        return
    Registration.objects.filter(client_id=instance.application_id, first_token_at__isnull=True).update(
        first_token_at=timezone.now())


def connect() -> None:
    post_save.connect(_first_token, sender=get_access_token_model(), dispatch_uid="registration_first_token")
