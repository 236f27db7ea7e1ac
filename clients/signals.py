"""Changes that cached answers depend on: every worker must forget them (authserver.generation).

Deleting a client deletes its keys and tokens. A client's allowed scopes and the scope registry
are cached with the client at the token endpoint (authserver.oauth.validator).
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from authserver import generation
from clients.models import Client, Scope


@receiver(post_delete, sender=Client)
def _client_deleted(sender: Any, instance: Client, **kwargs: Any) -> None:
    generation.invalidate()


@receiver(post_save, sender=Scope)
@receiver(post_delete, sender=Scope)
@receiver(m2m_changed, sender=Client.allowed_scopes.through)
def _scopes_changed(sender: Any, action: str = "post_", **kwargs: Any) -> None:
    if not action.startswith("pre_"):
        generation.invalidate()
