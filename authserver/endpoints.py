"""Where this server's OAuth endpoints live: ``fixed`` at ``/oauth/<x>``, or ``rotating`` under a
prefix derived per time window (issue 15, docs/endpoints.md).

:func:`mount` turns the URL map's ``oauth_patterns`` (plain ``path("oauth/<x>", view, name=...)``
entries, authserver/urls.py) into two patterns per endpoint, so an endpoint added to that list
later is covered with no further work:

* ``oauth/<x>``, which matches only in ``fixed`` mode;
* ``<prefix>/<x>``, which matches only in ``rotating`` mode and only when ``<prefix>`` is one of
  the previous, current or next window's prefixes (:func:`authserver.paths.accepted_prefixes`,
  key ``crypto.secret("endpoints.path")``, label ``"oauth"``).

``.well-known/<x>`` entries (RFC 8414's public document) match only in ``fixed`` mode. Anything
else falls through to the uniform 404 (authserver.notfound). Both patterns keep the entry's name,
so :func:`url` / :func:`path_of` give an endpoint's URL for the current mode and window (the
metadata document, RFC 8414, and any code that names an endpoint).

The check is decided without the database after the first request of a process: the key is held
by the key store's in-process cache, and the three accepted prefixes are computed once per window
(:func:`accepted`). The mode is ``settings.ENDPOINTS``: applied when the URL map is built, and
again when a test changes the setting (see "The URL map" below).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import URLPattern, clear_url_caches, register_converter, reverse
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


def reset() -> None:
    """Forget the computed prefixes (tests: each test's database may hold a different key)."""
    with _cache_lock:
        _cache.clear()


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
    rest = _rests.get(name)
    if rest is None:
        return False
    if not rotating():
        return path == "/" + FIXED_ROOT + rest
    parts = split(path)
    return parts is not None and parts[1] == rest and parts[0] in accepted()


def path_of(name: str, **kwargs: str) -> str:
    """Endpoint ``name``'s path (``oauth2_provider`` namespace) for the current mode and window
    (``kwargs``: the route's own parameters, such as RFC 7592's ``client_id``)."""
    if not rotating():
        return reverse(f"{NAMESPACE}:{name}", kwargs=kwargs or None)
    return reverse(f"{NAMESPACE}:{name}", kwargs={**kwargs, PREFIX_KWARG: current_prefix()})


def url(name: str, **kwargs: str) -> str:
    """Endpoint ``name``'s absolute URL for the current mode and window (the issuer's origin)."""
    return settings.ISSUER.rstrip("/") + path_of(name, **kwargs)


# -- The URL map ---------------------------------------------------------------------------------
# The machine endpoints' hot path must not pay for the mode (tests/introspection/test_hot_path_modules.py):
# in fixed mode a request for /oauth/<x> matches a plain RoutePattern and runs no code of this module.
# Only the fixed patterns' compiled regex changes with the mode (a never-matching one in rotating
# mode), set when the URL map is built and when a test changes ``settings.ENDPOINTS``; the rotating
# patterns are tried after every fixed one and their converter (entered only for a path of the right
# shape) decides whether the prefix is accepted.

NEVER = re.compile(r"(?!)")
_fixed_routes: list[RoutePattern] = []
_rests: dict[str, str] = {}  # URL name -> the path after "oauth/"


class PrefixConverter:
    regex = "[a-z2-7]{16}"

    def to_python(self, value: str) -> str:
        if not rotating() or value not in accepted():
            raise ValueError("not an accepted prefix")  # the URL map moves on: the uniform 404
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PrefixConverter, "oauthprefix")


def _apply_mode() -> None:
    for route in _fixed_routes:
        if rotating():
            route.__dict__["regex"] = NEVER  # RoutePattern.regex is a non-data descriptor: this wins
        else:
            route.__dict__.pop("regex", None)


@receiver(setting_changed)
def _mode_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"ENDPOINTS", "ENDPOINTS_WINDOW_SECONDS"}:
        _apply_mode()
        clear_url_caches()


def _without_prefix(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def endpoint(request: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop(PREFIX_KWARG, None)
        return view(request, *args, **kwargs)

    return endpoint


def mount(patterns: list[URLPattern]) -> list[URLPattern]:
    """Each ``oauth/<x>`` entry as its fixed pattern and (after all fixed ones) its rotating one;
    each ``.well-known/<x>`` entry only in fixed mode (rotating mode serves the metadata at the
    discovery URLs); other entries as they are."""
    fixed: list[URLPattern] = []
    rotating_ones: list[URLPattern] = []
    for entry in patterns:
        route = str(entry.pattern)
        if (not isinstance(entry, URLPattern) or not isinstance(entry.pattern, RoutePattern)
                or not route.startswith((FIXED_ROOT, WELL_KNOWN_ROOT))):
            fixed.append(entry)
            continue
        _fixed_routes.append(entry.pattern)
        fixed.append(entry)
        if route.startswith(FIXED_ROOT):
            rest = route.removeprefix(FIXED_ROOT)
            _rests[str(entry.name)] = rest
            pattern = RoutePattern(f"<oauthprefix:{PREFIX_KWARG}>/{rest}", name=entry.name, is_endpoint=True)
            rotating_ones.append(URLPattern(pattern, _without_prefix(entry.callback), entry.default_args, entry.name))
    _apply_mode()
    return fixed + rotating_ones
