"""``manage.py audit verify`` and ``manage.py audit export`` (JSON lines)."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand

from authserver.audit.selectors import audit_export, audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain, or export it as JSON lines."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="Exit 1 and name each broken event if the chain was tampered with.")
        export = sub.add_parser("export", help="Write every event as one JSON object per line.")
        export.add_argument("--with-personal", action="store_true", help="Include decrypted personal data.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            checked, problems = audit_verify()
            self.stdout.write(
                json.dumps(
                    {
                        "checked": checked,
                        "ok": not problems,
                        "problems": [{"event_id": p.event_id, "problem": p.problem} for p in problems],
                    },
                    sort_keys=True,
                )
            )
            if problems:
                sys.exit(1)
        else:
            for line in audit_export(with_personal=options["with_personal"]):
                self.stdout.write(line)
