"""Why a request is refused; :mod:`authserver_rs.rfc6750` turns each into an HTTP answer."""

from __future__ import annotations


class Refusal(Exception):
    """A request the resource server must not serve."""

    status = 401


class NoCredential(Refusal):
    """No bearer credential was presented (RFC 6750 §3.1: no error attribute)."""


class InvalidRequest(Refusal):
    """A malformed Authorization header (RFC 6750 §3.1 ``invalid_request``)."""

    status = 400


class InvalidToken(Refusal):
    """Inactive: unknown, expired, revoked, or meant for another API (RFC 6750 ``invalid_token``)."""


class InsufficientScope(Refusal):
    status = 403

    def __init__(self, needed: tuple[str, ...]) -> None:
        super().__init__(" ".join(needed))
        self.needed = needed


class RateLimited(Refusal):
    """The API key is over its rate limit (the introspection answer says so)."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class Unavailable(Refusal):
    """The authorization server could not be asked: fail closed."""

    status = 503


class NotFound(Refusal):
    """An unknown path alias: a bare 404, nothing about what is here."""

    status = 404
