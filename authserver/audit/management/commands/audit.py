"""``manage.py audit verify|seal|export|checkpoint|restore-point|public-key|verify-checkpoints``.

``verify`` exits 0 when the sealed chain is intact, even with unsealed events, as long as the
oldest is younger than ``AUTHSERVER_AUDIT_UNSEALED_MAX_AGE`` (``--max-unsealed-age``): the report
counts them. It exits 1 on any tampering found and when unsealed events are older than that (the
sealer is not running), naming each problem; and when the database no longer holds what the
latest signed checkpoint recorded (the trail was cut or rewound), naming that checkpoint.

``verify-checkpoints`` needs only the checkpoint file and the public key(s) (``public-key``
prints the current one): no database, no key store, so it can run anywhere a copy of the file is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from authserver import cliargs
from authserver.audit import checkpoint_file, sealing
from authserver.audit.checkpoint_file import Checkpoint
from authserver.audit.checkpoints import audit_checkpoint, audit_restore_point, checkpoint_path
from authserver.audit.sealer import audit_seal
from authserver.audit.selectors import audit_anchor_verify, audit_export, audit_verify
from authserver.cli import JsonCommand


def _checkpoint(checkpoint: Checkpoint | None) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    return {"kind": checkpoint.kind, "seq": checkpoint.seq, "event_id": checkpoint.event_id, "at": checkpoint.at,
            "count": checkpoint.count, "key_id": checkpoint.key_id, "line": checkpoint.line, "hash": checkpoint.hash}


def _public_keys(paths: list[str] | None) -> dict[str, Any]:
    if not paths:
        return {}
    try:
        return checkpoint_file.load_public_keys(Path(path).read_bytes() for path in paths or [])
    except (OSError, ValueError) as exc:
        raise CommandError(f"--public-key: {exc}") from None


class Command(JsonCommand):
    help = cliargs.spec("audit").help

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "verify":
            self._verify(options)
        elif action == "seal":
            self.emit({"sealed": audit_seal()})
        elif action == "checkpoint":
            self.emit({"checkpoint": _checkpoint(audit_checkpoint(actor="cli"))})
        elif action == "restore-point":
            self.emit({"restore_point": _checkpoint(audit_restore_point(actor="cli", reason=options["reason"]))})
        elif action == "public-key":
            key = sealing.checkpoint_signing_key().public_key()
            pem = checkpoint_file.public_pem(key)
            if options["output"]:
                Path(options["output"]).write_text(pem)
            self.emit({"public_key": pem, "written": options["output"]})
        elif action == "verify-checkpoints":
            self._verify_checkpoints(options)
        else:
            for line in audit_export(with_personal=options["with_personal"]):
                self.stdout.write(line)

    def _verify(self, options: dict[str, Any]) -> None:
        anchor = audit_anchor_verify(public_keys=_public_keys(options["public_key"]),
                                     max_age=options["max_checkpoint_age"], restored=options["restored"])
        checked, problems, unsealed = audit_verify(max_unsealed_age=options["max_unsealed_age"], anchor=anchor)
        self.emit({
            "checked": checked,
            "ok": not problems,
            "unsealed": {"count": unsealed.count, "oldest_id": unsealed.oldest_id,
                         "oldest_age_seconds": unsealed.oldest_age_seconds},
            "checkpoints": {"file": anchor.path, "lines": anchor.lines, "written": anchor.written,
                            "latest": _checkpoint(anchor.latest), "witness_pending": anchor.witness_pending,
                            "witness_failures": anchor.witness_failures},
            "problems": [{"event_id": p.event_id, "problem": p.problem} for p in problems],
        })
        if problems:
            sys.exit(1)

    def _verify_checkpoints(self, options: dict[str, Any]) -> None:
        keys = _public_keys(options["public_key"])
        path = Path(options["file"]) if options["file"] else checkpoint_path()
        try:
            report = checkpoint_file.verify_lines(checkpoint_file.read_lines(path), keys)
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or type(exc).__name__}") from None
        self.emit({"file": str(path), "lines": report.checked, "ok": not report.problems and report.checked > 0,
                   "latest": _checkpoint(report.latest),
                   "problems": [{"line": p.line, "problem": p.problem} for p in report.problems]
                   + ([{"line": None, "problem": "the file holds no checkpoint"}] if not report.checked else [])})
        if report.problems or not report.checked:
            sys.exit(1)
