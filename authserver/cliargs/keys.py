"""``apikey``: its arguments and examples (no Django here: see the package)."""

from __future__ import annotations

import argparse

from authserver.cliargs import Spec


def _apikey(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="Issue a key; prints it once.")
    create.add_argument("--client", required=True, help="CLIENT_ID of the owning client")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", dest="scopes", action="append", default=None)
    create.add_argument("--audience", dest="audiences", action="append", default=None)
    create.add_argument("--allow-ip", dest="allowed_ips", action="append", default=[], metavar="CIDR")
    create.add_argument("--expires-in", default=None, metavar="DURATION")
    create.add_argument("--rate-limit", default=None, metavar="N/PERIOD", help="e.g. 100/m, 10/s, 5000/h")
    create.add_argument("--quota", type=int, default=None, metavar="N")
    rotate = sub.add_parser("rotate", help="Issue a successor; the old key works during the grace.")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", default=None, metavar="DURATION")
    for name, text in (("revoke", "Revoke now (the key stays listed, revoked)."),
                       ("suspend", "Suspend (reversible)."), ("resume", "Resume."),
                       ("show", "Show one key (no plaintext, no digest)."),
                       ("delete", "Revoke the key and delete it (the audit trail keeps its name and hint).")):
        sub.add_parser(name, help=text).add_argument("key_id")
    listing = sub.add_parser("list", help="List keys (no plaintext, no digest).")
    listing.add_argument("--client", default=None)
    revoke_all = sub.add_parser("revoke-all", help="Compromise response: revoke every key and token of a client.")
    revoke_all.add_argument("--client", required=True)


apikey = Spec(
    help="Issue, rotate, revoke, list, show and delete API keys.",
    examples="""
  manage.py apikey create --client CLIENT_ID --name "ci runner" --scope ai.infer \\
      --expires-in 90d --rate-limit 100/m --allow-ip 203.0.113.0/24
  manage.py apikey list --client CLIENT_ID
  manage.py apikey show KEY_ID
  manage.py apikey rotate KEY_ID --grace 24h
  manage.py apikey suspend KEY_ID
  manage.py apikey resume KEY_ID
  manage.py apikey revoke KEY_ID       # soft: stays listed as revoked
  manage.py apikey delete KEY_ID       # revoked and removed; the audit trail keeps it
  manage.py apikey revoke-all --client CLIENT_ID
""",
    add_arguments=_apikey,
)
