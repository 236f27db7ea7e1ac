"""When an OAuth credential may be used: one rule, shared by every path that decides it.

Pure functions (no database, no clock of their own): the introspection endpoint, the admin and the
jobs pass in what they read and the time they decide at, so the answer can't drift between them.
"""

from __future__ import annotations

from datetime import datetime


def before_client_cutoff(*, created: datetime, client_cutoff: datetime | None) -> bool:
    """Was the credential issued up to its client's compromise response (``credentials_revoked_at``)?

    The compromise response revokes every credential of the client created up to that instant, at
    once, by this comparison; the job that marks the rows revoked only catches up (keys.services).
    A credential created at the very instant of the decision counts as revoked.
    """
    return client_cutoff is not None and created <= client_cutoff


def access_token_usable(*, expires: datetime, created: datetime, client_cutoff: datetime | None,
                        now: datetime) -> bool:
    """Is an access token (stored, so not revoked) live at ``now``? RFC 7662 §2.2 ``active``."""
    return expires > now and not before_client_cutoff(created=created, client_cutoff=client_cutoff)
