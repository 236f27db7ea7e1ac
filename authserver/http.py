"""HTTP conventions every interface module shares."""

from __future__ import annotations

# RFC 6749 §5.1, RFC 7662 §2.2, and every page that shows a secret once: never stored by a cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
