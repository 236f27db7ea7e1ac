"""The protocol calls the cluster tests make, over a ``requests`` session (nginx or a node)."""

from __future__ import annotations

from typing import Any

import requests


# What nginx adds: the web nodes trust 127.0.0.1, so a test talking to a node directly from there
# speaks as the proxy, on behalf of the client address it names.
def as_proxy_for(client_ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": client_ip, "X-Forwarded-Proto": "https"}


def token(http: requests.Session, base: str, client: dict[str, Any], **headers: str) -> requests.Response:
    return http.post(f"{base}/oauth/token", data={"grant_type": "client_credentials", "scope": "ai.infer"},
                     auth=(str(client["client_id"]), str(client["client_secret"])), headers=headers, timeout=15)


def bad_login(http: requests.Session, base: str, client: dict[str, Any], **headers: str) -> requests.Response:
    """client_credentials with a wrong secret: one failed client authentication."""
    return http.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                     auth=(str(client["client_id"]), "cs_wrong-secret"), headers=headers, timeout=15)


def introspect(http: requests.Session, base: str, rs: dict[str, Any], credential: str,
               **headers: str) -> requests.Response:
    return http.post(f"{base}/oauth/introspect", data={"token": credential},
                     auth=(str(rs["client_id"]), str(rs["client_secret"])), headers=headers, timeout=15)


def revoke(http: requests.Session, base: str, client: dict[str, Any], credential: str,
           **headers: str) -> requests.Response:
    return http.post(f"{base}/oauth/revoke", data={"token": credential, "token_type_hint": "access_token"},
                     auth=(str(client["client_id"]), str(client["client_secret"])), headers=headers, timeout=15)
