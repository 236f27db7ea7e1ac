"""The revocation stream resource servers follow (``GET /oauth/revocations``, contract C7).

HTTP only: the events are recorded by the platform's revocation component
(:mod:`authserver.revocation.feed`); this package serves them (:mod:`.endpoint`)."""
