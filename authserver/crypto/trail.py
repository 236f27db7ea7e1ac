"""The audit trail as the key store sees it: a hook the audit app fills in.

Key-store operations (rotate, retire, a rotation's end, backup, restore) are audited, but this
package sits below the audit trail and imports nothing above it (docs/architecture.md): the audit
app registers its writer here in ``AuditConfig.ready`` (as it registers its re-encryption with
:func:`authserver.crypto.rotation.register_reencryptor`). Nothing is recorded twice: one writer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Recorder = Callable[..., Any]
_recorder: list[Recorder] = []


def register_recorder(recorder: Recorder) -> None:
    _recorder[:] = [recorder]


def record(*, event: str, actor: str, subject: str, details: dict[str, Any]) -> None:
    """Append one audit event (in the caller's transaction, if any). With no audit app installed
    this refuses, rather than let a key-store operation go unrecorded silently."""
    if not _recorder:
        raise RuntimeError("no audit trail registered for key-store events (authserver.audit not installed?)")
    _recorder[0](event=event, actor=actor, subject=subject, details=details)
