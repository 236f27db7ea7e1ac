"""What the consent page tells the user: which API the token will be for (RFC 8707).

A token is for the resources the request names, or, without a ``resource`` parameter, for every
audience the client is registered for (authserver.oauth.validator). Each is shown by the name of
the resource server registered for it, with its URI; an audience no resource server is registered
for is shown by its URI alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clients.models import Client


@dataclass(frozen=True)
class ConsentAudience:
    uri: str
    name: str  # the registered resource server's name; empty if none is registered for ``uri``


def consent_audiences(*, client: Any, resources: list[str]) -> list[ConsentAudience]:
    """The APIs a token from this request would be valid at, in the order requested or registered."""
    uris = list(dict.fromkeys(resources or list(getattr(client, "allowed_audiences", None) or [])))
    if not uris:
        return []
    names = dict(Client.objects.filter(is_resource_server=True, audience__in=uris).values_list("audience", "name"))
    return [ConsentAudience(uri=uri, name=str(names.get(uri) or "")) for uri in uris]
