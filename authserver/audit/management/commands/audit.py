"""``manage.py audit verify``, ``manage.py audit seal`` and ``manage.py audit export`` (JSON lines).

``verify`` exits 0 when the sealed chain is intact, even with unsealed events, as long as the
oldest is younger than ``AUTHSERVER_AUDIT_UNSEALED_MAX_AGE`` (``--max-unsealed-age``): the report
counts them. It exits 1 on any tampering found and when unsealed events are older than that (the
sealer is not running), naming each problem.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from authserver.audit.sealer import audit_seal
from authserver.audit.selectors import audit_export, audit_verify
from authserver.cli import DependencyCommand


class Command(DependencyCommand):
    help = "Verify the audit trail's hash chain, or export it as JSON lines."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="Exit 1 and name each broken event if the chain was tampered with, "
                                               "or if events have waited too long to be sealed.")
        verify.add_argument("--max-unsealed-age", type=float, default=None,
                            help="Seconds an event may stay unsealed (default AUTHSERVER_AUDIT_UNSEALED_MAX_AGE).")
        sub.add_parser("seal", help="Chain every committed unsealed event now (beat does this every few seconds).")
        export = sub.add_parser("export", help="Write every event as one JSON object per line.")
        export.add_argument("--with-personal", action="store_true", help="Include decrypted personal data.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            checked, problems, unsealed = audit_verify(max_unsealed_age=options["max_unsealed_age"])
            self.stdout.write(
                json.dumps(
                    {
                        "checked": checked,
                        "ok": not problems,
                        "unsealed": {"count": unsealed.count, "oldest_id": unsealed.oldest_id,
                                     "oldest_age_seconds": unsealed.oldest_age_seconds},
                        "problems": [{"event_id": p.event_id, "problem": p.problem} for p in problems],
                    },
                    sort_keys=True,
                )
            )
            if problems:
                sys.exit(1)
        elif options["action"] == "seal":
            self.stdout.write(json.dumps({"sealed": audit_seal()}))
        else:
            for line in audit_export(with_personal=options["with_personal"]):
                self.stdout.write(line)
