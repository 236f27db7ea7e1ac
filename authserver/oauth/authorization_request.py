"""The authorization request (RFC 6749 §4.1.1), checked whole before the user is asked.

oauthlib verifies the client and the redirect URI and leaves the rest to code creation; what it
leaves is checked here, once before the consent page (authserver.oauth.views) and again when the
code is created (authserver.oauth.validator: the consent form's hidden fields can be changed).
"""

from __future__ import annotations

import re
from typing import Any

from oauthlib.oauth2.rfc6749 import errors

# RFC 7636 §4.2: an S256 challenge is BASE64URL(SHA256(verifier)) without padding: 43 characters.
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
# RFC 6749 Appendix A.5: state = 1*VSCHAR (%x20-7E). Anything else would come back in the consent
# form's hidden field, which refuses it (a NUL), after the user had been asked.
STATE = re.compile(r"[\x20-\x7e]+")


def check_authorization_request(request: Any, *, resources: list[str]) -> None:
    """Raise the oauthlib error to send to the verified redirect URI (RFC 6749 §4.1.2.1).

    ``request`` is oauthlib's, with its client loaded and redirect URI verified.
    """
    if request.state and not STATE.fullmatch(request.state):
        raise errors.InvalidRequestError(description="state must be printable ASCII.", request=request)
    # RFC 9700 §2.1.1: S256 only (oauthlib reads an omitted method as "plain", RFC 7636 §4.3).
    if request.code_challenge_method != "S256":
        raise errors.InvalidRequestError(description="code_challenge_method must be S256.", request=request)
    if not isinstance(request.code_challenge, str) or not S256_CHALLENGE.fullmatch(request.code_challenge):
        raise errors.InvalidRequestError(
            description="code_challenge must be 43 base64url characters.", request=request)
    # RFC 8707 §2: a resource the client is not registered for is refused before a code exists.
    allowed = set(request.client.allowed_audiences or [])
    if any(resource not in allowed for resource in resources):
        raise errors.CustomOAuth2Error(error="invalid_target", request=request,
                                       description="The requested resource is not allowed for this client.")
