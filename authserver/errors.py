"""The domain's refusals, one family per way a request can be refused.

Services raise these (never HTTP); each interface maps the family, not the individual error, in
one place: the management API's DRF exception handler (``authserver.api_auth``) and the JSON
command line (``authserver.cli.JsonCommand``). The message of a domain error is written for the
person who made the request and is safe to show them: it never carries a secret.

Platform layer: imports nothing from the project.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; ``str(error)`` is safe to show to whoever made it."""


class NotFound(DomainError):
    """The thing the request names does not exist (or is not the caller's to see)."""


class PolicyViolation(DomainError):
    """The request is well-formed but asks for something the policy does not allow."""


class Conflict(DomainError):
    """The request contradicts the current state of the thing it names."""


class DependencyUnavailable(DomainError):
    """Something needed to decide is down: the caller gets "try again", never a guess (fail closed)."""
