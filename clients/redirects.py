"""Redirect-URI registration policy (RFC 9700 §2.1, §4.1; RFC 8252 §7.3, §8.3).

Matching at request time is DOT's exact comparison (``check_redirect_to_uri_allowed``), which
allows any port only for loopback IP literals. This module decides what may be *registered*:

* absolute ``https`` URIs with a host: any valid lowercase DNS name (``https://localhost/cb``
  included: the browser verifies the certificate, so the name resolving elsewhere gains nothing)
  or an IP literal;
* ``http`` only for a loopback IP literal (``127.0.0.1`` or ``[::1]``), only for public (native)
  clients (RFC 8252 §7.3); ``http://localhost`` is refused (RFC 8252 §8.3: the name may resolve
  off the loopback interface, and nothing would check who answers);
* never a fragment (RFC 6749 §3.1.2), userinfo, a wildcard, a backslash, whitespace,
  percent-encoded delimiters in the authority, or a non-ASCII character.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
MAX_LENGTH = 2000


def validate_redirect_uri(uri: str, *, public_client: bool) -> None:
    """Raise ``ValidationError`` naming what is wrong with ``uri``; return None if acceptable."""
    if not uri or len(uri) > MAX_LENGTH:
        raise ValidationError("redirect URI must be 1 to %(max)s characters", params={"max": MAX_LENGTH})
    if not uri.isascii() or any(ch.isspace() or ord(ch) < 0x21 for ch in uri):
        raise ValidationError("redirect URI must be printable ASCII without spaces")
    if "\\" in uri or "*" in uri:
        raise ValidationError("redirect URI must not contain wildcards or backslashes")
    if "#" in uri:
        raise ValidationError("redirect URI must not contain a fragment (RFC 6749 §3.1.2)")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ValidationError("redirect URI is not a valid URI") from exc
    if parts.scheme not in {"https", "http"} or not uri.startswith(f"{parts.scheme}://"):
        raise ValidationError("redirect URI must use https (or http on a loopback address)")
    if "@" in parts.netloc:
        raise ValidationError("redirect URI must not contain userinfo")
    if "%" in parts.netloc:
        raise ValidationError("redirect URI host must not be percent-encoded")
    host = parts.hostname
    if not host:
        raise ValidationError("redirect URI must name a host")
    if port == 0:
        raise ValidationError("redirect URI port is invalid")
    if parts.netloc != parts.netloc.lower():
        # ``parts.hostname`` is already lowercased by urlsplit, so the check in
        # _reject_ambiguous_host never saw the registered spelling. Matching is exact
        # (RFC 9700 §2.1), so only the canonical lowercase host (RFC 3986 §6.2.2.1) is registrable.
        raise ValidationError("redirect URI host must be lowercase")
    if parts.scheme == "http":
        if host not in LOOPBACK_HOSTS:
            raise ValidationError("http redirect URIs are allowed only for 127.0.0.1 or [::1] (RFC 8252)")
        if not public_client:
            raise ValidationError("loopback http redirect URIs are for public (native) clients only")
    else:
        _reject_ambiguous_host(host)


def _reject_ambiguous_host(host: str) -> None:
    if host.endswith("."):
        raise ValidationError("redirect URI host must not end with a dot")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        if any(not label or len(label) > 63 for label in labels):
            raise ValidationError("redirect URI host is not a valid name") from None
        if not all(label.replace("-", "").isalnum() for label in labels):
            raise ValidationError("redirect URI host is not a valid name") from None
        if host != host.lower():
            raise ValidationError("redirect URI host must be lowercase") from None


def validate_redirect_uris(uris: list[str], *, public_client: bool) -> list[str]:
    """Validate each URI; return the list without duplicates, order kept."""
    errors: list[ValidationError] = []
    seen: list[str] = []
    for uri in uris:
        try:
            validate_redirect_uri(uri, public_client=public_client)
        except ValidationError as exc:
            errors.append(ValidationError(f"{uri[:200]!r}: {exc.messages[0]}"))
        else:
            if uri not in seen:
                seen.append(uri)
    if errors:
        raise ValidationError(errors)
    return seen


_LOOPBACK_AUTHORITY_RE = re.compile(r"\Ahttp://(127\.0\.0\.1|\[::1\])(?::[0-9]{1,5})?(?=[/?]|\Z)")


def _without_loopback_port(uri: str) -> str | None:
    """``uri`` with the port of a loopback-IP http authority removed, else None."""
    match = _LOOPBACK_AUTHORITY_RE.match(uri)
    if match is None:
        return None
    return f"http://{match.group(1)}{uri[match.end():]}"


def redirect_uri_matches(uri: object, registered: list[str]) -> bool:
    """Request-time matching: exact string comparison (RFC 9700 §2.1, RFC 3986 §6.2.1).

    DOT compares *parsed* components, and ``urlsplit`` lowercases the host and silently drops
    tab/CR/LF anywhere in the string, so ``https://APP.example.test/cb`` or ``.../cb\n`` matched
    a registered ``https://app.example.test/cb``. The only exception RFC 9700 §2.1 allows is the
    port of a loopback IP redirect URI of a native app (RFC 8252 §7.3).
    """
    if not isinstance(uri, str) or not uri:
        return False
    if uri in registered:
        return True
    stripped = _without_loopback_port(uri)
    return stripped is not None and any(stripped == _without_loopback_port(r) for r in registered)
