"""``keys``, ``backup``, ``restore`` and ``audit``: arguments and examples (no Django here)."""

from __future__ import annotations

import argparse

from authserver.cliargs import Spec


def _keys(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("status", help="per KEK version, how much data still depends on it")
    rotate = sub.add_parser("rotate", help="create a new KEK version and re-encrypt everything onto it")
    rotate.add_argument("--resume", action="store_true",
                        help="do not create a version: (re)run the job for the latest rotation")
    rotate.add_argument("--foreground", action="store_true",
                        help="run the re-encryption job here instead of enqueueing it for a Celery worker")
    retire = sub.add_parser("retire", help="destroy a KEK version nothing depends on any more")
    retire.add_argument("version", type=int)
    sub.add_parser("check", help="fail unless the key store is present and sound (creates it on a fresh install)")


keys = Spec(
    help="Key-encryption keys: status, rotate, retire VERSION, check.",
    examples="""
  manage.py keys check
  manage.py keys status
  manage.py keys rotate                 # enqueued for a Celery worker
  manage.py keys rotate --foreground    # re-encrypt here and wait
  manage.py keys retire 1
""",
    add_arguments=_keys,
)


def _backup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", required=True, help="archive file to create (must not exist)")
    parser.add_argument("--database", default="default", help="database alias (default: default)")


backup = Spec(
    help="Write an encrypted, authenticated archive of the database (pg_dump or the SQLite backup API), "
         "streamed in chunks. Restoring it needs this installation's key store; the archive holds no key.",
    examples="""
  manage.py backup --output /backups/authserver-$(date +%F).asb
""",
    add_arguments=_backup,
)


def _restore(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", help="archive written by manage.py backup")
    parser.add_argument("--database", default="default", help="database alias (default: default)")
    parser.add_argument("--database-url", help="restore into this database instead of the configured one")


restore = Spec(
    help="Restore a backup archive into an EMPTY database (the configured one, or --database-url). The "
         "whole archive is decrypted and verified first: a truncated or modified archive restores nothing.",
    examples="""
  manage.py restore /backups/authserver-2026-01-31.asb
  manage.py restore /backups/authserver-2026-01-31.asb --database-url postgres://u:p@db/fresh
""",
    add_arguments=_restore,
)


def _audit(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = sub.add_parser("verify", help="Exit 1 and name each problem if the chain was tampered with, cut or "
                                           "rewound behind its latest checkpoint, or if events have waited too "
                                           "long to be sealed.")
    verify.add_argument("--max-unsealed-age", type=float, default=None,
                        help="Seconds an event may stay unsealed (default AUTHSERVER_AUDIT_UNSEALED_MAX_AGE).")
    verify.add_argument("--max-checkpoint-age", type=float, default=None,
                        help="Seconds the latest checkpoint may be old (default 5 x "
                             "AUTHSERVER_AUDIT_CHECKPOINT_INTERVAL).")
    verify.add_argument("--restored", action="store_true",
                        help="The database was restored from a backup: check it against the last checkpoint "
                             "it recorded (which the file must hold), not the latest one.")
    verify.add_argument("--public-key", action="append", metavar="PEM",
                        help="An earlier checkpoint signing key's PEM file (repeatable); the current one is "
                             "always trusted.")
    sub.add_parser("seal", help="Chain every committed unsealed event now (beat does this every few seconds).")
    export = sub.add_parser("export", help="Write every event as one JSON object per line.")
    export.add_argument("--with-personal", action="store_true", help="Include decrypted personal data.")
    sub.add_parser("checkpoint", help="Sign the chain head and append it to the checkpoint file now (beat does "
                                      "this every AUTHSERVER_AUDIT_CHECKPOINT_INTERVAL seconds).")
    restore_point = sub.add_parser("restore-point", help="After a restore rewound the database on purpose: append a "
                                                         "signed restore point; later checks start from it.")
    restore_point.add_argument("--reason", required=True, help="What was restored, from when (kept in the audit "
                                                               "event).")
    public = sub.add_parser("public-key", help="Print the checkpoint signing key's public key (PEM, "
                                               "SubjectPublicKeyInfo) as {\"public_key\": PEM}.")
    public.add_argument("--output", "-o", default=None, metavar="FILE", help="Also write the PEM to FILE.")
    check = sub.add_parser("verify-checkpoints", help="Check a checkpoint file's signatures and links with the "
                                                      "public key alone (no database, no key store).")
    check.add_argument("--public-key", action="append", required=True, metavar="PEM",
                       help="A public key PEM file (repeatable, one per signing key the file uses).")
    check.add_argument("--file", default=None, help="The checkpoint file (default: the configured one).")


audit = Spec(
    help="Verify the audit trail's hash chain and its signed checkpoints, or export it as JSON lines.",
    examples="""
  manage.py audit verify
  manage.py audit seal                          # beat does this every few seconds
  manage.py audit checkpoint                    # beat does this on its interval
  manage.py audit export > trail.jsonl          # the one command whose output is JSON Lines
  manage.py audit public-key --output checkpoint.pem
  manage.py audit verify-checkpoints --public-key checkpoint.pem --file checkpoints.jsonl
  manage.py audit restore-point --reason "restored the 2026-01-31 backup"
""",
    add_arguments=_audit,
)


def _staff(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    reset = sub.add_parser("reset-factors", help="remove every second factor of an account (a lost phone); the "
                                                 "next login enrols a new one")
    reset.add_argument("username")


staff = Spec(
    help="Staff plane maintenance: reset-factors USERNAME removes an account's second factors (audited). "
         "Run it only after checking who is asking (docs/security.md).",
    examples="""
  manage.py staff reset-factors alice
""",
    add_arguments=_staff,
)
