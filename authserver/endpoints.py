"""Where this server's OAuth endpoints live: ``fixed`` at ``/oauth/<x>``, or ``rotating`` under a
prefix derived per time window (issue 15, docs/endpoints.md).

:func:`mount` turns the URL map's ``oauth_patterns`` (plain ``path("oauth/<x>", view, name=...)``
entries, authserver/urls.py) into two patterns per endpoint, so an endpoint added to that list
later is covered with no further work:

* ``oauth/<x>``, which matches only in ``fixed`` mode;
* ``<prefix>/<x>``, which matches only in ``rotating`` mode and only when ``<prefix>`` is one of
  the previous, current or next window's prefixes (:func:`authserver.paths.accepted_prefixes`,
  key ``crypto.secret("endpoints.path")``, label ``"oauth"``).

Anything else falls through to the uniform 404 (authserver.notfound). Both patterns keep the
entry's name, so ``reverse("oauth2_provider:token")`` is the fixed path and
:func:`url` / :func:`path_of` give the path for the current mode and window (the metadata document,
RFC 8414, and any code that names an endpoint).

The check is decided without the database after the first request of a process: the key is held
by the key store's in-process cache, and the three accepted prefixes are computed once per window
(:func:`accepted`). The mode is read from ``settings.ENDPOINTS`` at request time (tests switch it).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.urls import URLPattern, register_converter, reverse
from django.urls.resolvers import RoutePattern

from authserver import paths

FIXED_ROOT = "oauth/"
WELL_KNOWN_ROOT = ".well-known/"
LABEL = "oauth"
KEY_NAME = "endpoints.path"
PREFIX_KWARG = "endpoint_prefix"
NAMESPACE = "oauth2_provider"
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz234567")

_cache_lock = threading.Lock()
_cache: dict[tuple[int, int], tuple[str, str, str]] = {}


def rotating() -> bool:
    return bool(settings.ENDPOINTS == "rotating")


def window_seconds() -> int:
    return int(settings.ENDPOINTS_WINDOW_SECONDS)


def _key() -> bytes:
    from authserver import crypto  # the key store: Django must be set up (apps ready)

    return crypto.secret(KEY_NAME)


def accepted() -> tuple[str, str, str]:
    """The previous, current and next window's prefixes; computed once per window and process."""
    seconds = window_seconds()
    window = paths.current_window(seconds)
    found = _cache.get((seconds, window))
    if found is None:
        key = _key()
        found = (paths.prefix(key, LABEL, window - 1), paths.prefix(key, LABEL, window),
                 paths.prefix(key, LABEL, window + 1))
        with _cache_lock:
            _cache.clear()  # only the current window's entry is ever needed
            _cache[(seconds, window)] = found
    return found


def current_prefix() -> str:
    return accepted()[1]


def valid_until() -> int:
    """The last moment a URL of the current window is accepted: the end of the next window (unix seconds)."""
    seconds = window_seconds()
    return paths.window_bounds(paths.current_window(seconds) + 1, seconds)[1]


def plausible_prefix(segment: str) -> bool:
    """Shape only (16 base32 characters): no key, no clock; for routing decisions that must be cheap."""
    return len(segment) == paths.PREFIX_LENGTH and _PREFIX_CHARS.issuperset(segment)


def split(path: str) -> tuple[str, str] | None:
    """``/<prefix>/<rest>`` → ``(prefix, rest)`` when the first segment has a prefix's shape."""
    head, sep, rest = path.lstrip("/").partition("/")
    return (head, rest) if sep and plausible_prefix(head) else None


def is_endpoint_path(path: str, name: str) -> bool:
    """Whether ``path`` is endpoint ``name``'s path in the current mode (any accepted window)."""
    fixed = reverse(f"{NAMESPACE}:{name}")
    if not rotating():
        return path == fixed
    parts = split(path)
    return parts is not None and parts[1] == fixed.removeprefix("/" + FIXED_ROOT) and parts[0] in accepted()


def path_of(name: str) -> str:
    """Endpoint ``name``'s path (``oauth2_provider`` namespace) for the current mode and window."""
    if not rotating():
        return reverse(f"{NAMESPACE}:{name}")
    return reverse(f"{NAMESPACE}:{name}", kwargs={PREFIX_KWARG: current_prefix()})


def url(name: str) -> str:
    """Endpoint ``name``'s absolute URL for the current mode and window (the issuer's origin)."""
    return settings.ISSUER.rstrip("/") + path_of(name)


# -- The URL map ---------------------------------------------------------------------------------

class PrefixConverter:
    regex = "[a-z2-7]{16}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PrefixConverter, "oauthprefix")


class FixedRoute(RoutePattern):
    """``oauth/<x>``: only in ``fixed`` mode."""

    def match(self, path: str) -> Any:
        return None if rotating() else super().match(path)


class RotatingRoute(RoutePattern):
    """``<prefix>/<x>``: only in ``rotating`` mode, only with an accepted prefix."""

    def match(self, path: str) -> Any:
        if not rotating():
            return None
        found = super().match(path)
        if found is None or found[2][PREFIX_KWARG] not in accepted():
            return None
        return found[0], found[1], {}  # the view takes no prefix argument


def mount(patterns: list[URLPattern]) -> list[URLPattern]:
    """Each ``oauth/<x>`` entry as its fixed and its rotating pattern, each ``.well-known/<x>`` entry
    only in fixed mode (rotating mode serves the metadata at the discovery URLs); others as they are."""
    out: list[URLPattern] = []
    for entry in patterns:
        route = str(entry.pattern)
        if not isinstance(entry.pattern, RoutePattern) or not route.startswith((FIXED_ROOT, WELL_KNOWN_ROOT)):
            out.append(entry)
            continue
        if route.startswith(WELL_KNOWN_ROOT):
            out.append(URLPattern(FixedRoute(route, name=entry.name, is_endpoint=True), entry.callback,
                                  entry.default_args, entry.name))
            continue
        rest = route.removeprefix(FIXED_ROOT)
        for pattern in (FixedRoute(route, name=entry.name, is_endpoint=True),
                        RotatingRoute(f"<oauthprefix:{PREFIX_KWARG}>/{rest}", name=entry.name, is_endpoint=True)):
            out.append(URLPattern(pattern, entry.callback, entry.default_args, entry.name))
    return out
