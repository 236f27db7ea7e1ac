"""Changes that cached verification answers depend on: every worker must forget them.

Registered once, here (the clients app's ``ready``), and handed to the one invalidation API
(:func:`authserver.revocation.invalidate`):

* a client saved (secret rotated, resource server disabled, scopes or audiences edited): cached
  resource-server authentications and token-endpoint client rows go;
* a client deleted: its keys and tokens are deleted with it, a revocation that must fan out or
  fail;
* a retired secret deleted (its grace ended): authentications cached under it go;
* a client's allowed scopes or the scope registry changed: they are cached with the client at the
  token endpoint (authserver.oauth.validator).
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from authserver import revocation
from authserver.revocation import feed
from clients.models import Client, RetiredClientSecret, Scope


@receiver(post_save, sender=Client, dispatch_uid="clients.client_saved")
def _client_saved(sender: Any, instance: Client, created: bool = False, **kwargs: Any) -> None:
    if not created:
        revocation.invalidate(quietly=True)


@receiver(post_delete, sender=Client, dispatch_uid="clients.client_deleted")
def _client_deleted(sender: Any, instance: Client, **kwargs: Any) -> None:
    revocation.invalidate(events=[feed.client(instance.client_id)])


@receiver(post_delete, sender=RetiredClientSecret, dispatch_uid="clients.retired_secret_deleted")
def _retired_secret_deleted(sender: Any, instance: RetiredClientSecret, **kwargs: Any) -> None:
    # Only this server caches authentications by client secret: nothing for resource servers.
    revocation.invalidate(quietly=True, events=())


@receiver(post_save, sender=Scope, dispatch_uid="clients.scope_saved")
@receiver(post_delete, sender=Scope, dispatch_uid="clients.scope_deleted")
@receiver(m2m_changed, sender=Client.allowed_scopes.through, dispatch_uid="clients.allowed_scopes_changed")
def _scopes_changed(sender: Any, action: str = "post_", **kwargs: Any) -> None:
    if not action.startswith("pre_"):
        revocation.invalidate()
