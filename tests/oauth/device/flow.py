"""Protocol helpers for the device flow tests (RFC 8628), driving the Django test client."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

FORM = "application/x-www-form-urlencoded"

DEVICE_URL = "/oauth/device"
PAGE_URL = "/accounts/device"
TOKEN_URL = "/oauth/token"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start(http: Any, client: Any, **extra: Any) -> Any:
    """RFC 8628 §3.1: a form-encoded POST (``resource`` may be a list: repeated)."""
    return http.post(DEVICE_URL, urlencode({"client_id": client.client_id, **extra}, doseq=True), content_type=FORM,
                     )


def poll(http: Any, client: Any, device_code: str, **extra: Any) -> Any:
    return http.post(TOKEN_URL, {"grant_type": GRANT, "device_code": device_code, "client_id": client.client_id,
                                 **extra})


def approve(http: Any, user_code: str, decision: str = "allow") -> Any:
    return http.post(PAGE_URL, {"user_code": user_code, "decision": decision})
