"""``client`` and ``scope``: their arguments and examples (no Django here: see the package)."""

from __future__ import annotations

import argparse

from authserver.cliargs import Spec


def _client(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="Register a client; prints its secret (and discovery URL) once.")
    create.add_argument("--name", required=True)
    create.add_argument("--type", dest="client_type", required=True, choices=["confidential", "public"])
    create.add_argument("--grant", dest="grants", action="append", default=[],
                        choices=["authorization_code", "client_credentials", "device_code"],
                        help="repeatable; required except for a resource server (--resource-server), which may have "
                             "none")
    create.add_argument("--redirect-uri", dest="redirect_uris", action="append", default=[])
    create.add_argument("--scope", dest="scopes", action="append", default=[])
    create.add_argument("--audience", dest="audiences", action="append", default=[],
                        help="a registered resource server's audience URI (repeatable)")
    create.add_argument("--allow-unregistered-audience", action="store_true",
                        help="accept --audience values that name no registered resource server")
    create.add_argument("--resource-server", dest="resource_server", metavar="AUD", default=None)
    create.add_argument("--remember-consent", action="store_true")
    update = sub.add_parser("update", help="Change where notifications go, or a resource server's rotating paths.")
    for verb in (create, update):
        verb.add_argument("--webhook-url", default=None, help="https URL (\"\" clears it)")
        verb.add_argument("--contact-email", default=None, help="e-mail address (\"\" clears it)")
    update.add_argument("client_id")
    # A resource server's rotating public paths (docs/rotating-paths.md).
    update.add_argument("--rotating-paths", choices=["on", "off"], default=None,
                        help="callers reach the API under an alias that changes every window (needs --public-url)")
    update.add_argument("--public-url", default=None, help="the API's https base URL, e.g. https://api.example.com/v1")
    update.add_argument("--per-client-aliases", choices=["on", "off"], default=None,
                        help="each client gets its own alias (a leaked URL names its client)")
    update.add_argument("--path-window", default=None, metavar="SECONDS",
                        help="seconds per alias window (\"\" for the server default)")

    path_key = sub.add_parser("path-key", help="A resource server's path key (rotating paths).")
    path_key_sub = path_key.add_subparsers(dest="path_key_action", required=True)
    path_key_sub.add_parser("rotate", help="New path key: every alias changes at once; the resource server "
                                           "fetches the new key.").add_argument("client_id")

    sub.add_parser("list", help="List clients (no secrets: the last characters of the secret as a hint).")
    sub.add_parser("show", help="Show one client, with counts of its live keys and tokens.").add_argument("client_id")
    sub.add_parser("delete", help="Revoke every key, token and code of a client, then delete it (one audit "
                                  "event).").add_argument("client_id")

    hooks = sub.add_parser("webhook-secret", help="Webhook signing secrets.")
    hooks_sub = hooks.add_subparsers(dest="secret_action", required=True)
    rotate_hook = hooks_sub.add_parser("rotate", help="New whsec_ secret, printed once; the old one overlaps.")
    rotate_hook.add_argument("client_id")
    rotate_hook.add_argument("--overlap", default=None, help="DURATION, e.g. 24h (default: server setting)")

    discovery = sub.add_parser("discovery-url", help="The client's discovery URL (/d/...: RFC 8414 for its holder).")
    discovery_sub = discovery.add_subparsers(dest="discovery_action", required=True)
    discovery_sub.add_parser("rotate", help="New discovery URL, printed once; the old one stops at once.").add_argument(
        "client_id")
    discovery_sub.add_parser("revoke", help="Revoke the discovery URL (the uniform 404 from now on).").add_argument(
        "client_id")

    rotate = sub.add_parser("rotate-secret", help="Issue a new secret; the old one works during the grace.")
    rotate.add_argument("client_id")
    rotate.add_argument("--grace", default=None, help="DURATION, e.g. 24h (default: server setting)")

    revoke = sub.add_parser("revoke-tokens", help="Revoke every token and pending code of a client.")
    revoke.add_argument("client_id")

    # RFC 7591 §3 initial access tokens, for AUTHSERVER_DCR=token (docs/dynamic-registration.md).
    tokens = sub.add_parser("registration-token", help="Initial access tokens (iat_...) for dynamic registration.")
    tokens_sub = tokens.add_subparsers(dest="iat_action", required=True)
    create_token = tokens_sub.add_parser("create", help="New initial access token, printed once.")
    create_token.add_argument("--expires-in", dest="expires_in", type=int, default=None, metavar="SECONDS")
    create_token.add_argument("--uses", type=int, default=None, metavar="N", help="registrations it may make")
    tokens_sub.add_parser("list", help="List initial access tokens (hints only).")
    tokens_sub.add_parser("revoke", help="Revoke one at once.").add_argument("token_id", type=int, metavar="ID")


client = Spec(
    help="Register, list, show and delete clients; rotate their secrets; revoke their tokens.",
    examples="""
  manage.py client create --name "Inference API" --type confidential --resource-server https://api.example.com
  manage.py client create --name "Billing service" --type confidential --grant client_credentials \\
      --scope ai.infer --audience https://api.example.com
  manage.py client create --name "CLI app" --type public --grant authorization_code \\
      --redirect-uri http://127.0.0.1/callback
  manage.py client create --name "Terminal agent" --type public --grant device_code --scope ai.infer
  manage.py client list
  manage.py client show CLIENT_ID
  manage.py client rotate-secret CLIENT_ID --grace 24h
  manage.py client update CLIENT_ID --webhook-url https://hooks.example.com/authserver
  manage.py client webhook-secret rotate CLIENT_ID --overlap 24h
  manage.py client update RS_CLIENT_ID --rotating-paths on --public-url https://api.example.com/v1
  manage.py client path-key rotate RS_CLIENT_ID
  manage.py client discovery-url rotate CLIENT_ID
  manage.py client discovery-url revoke CLIENT_ID
  manage.py client revoke-tokens CLIENT_ID
  manage.py client delete CLIENT_ID
  manage.py client registration-token create --expires-in 86400 --uses 10
  manage.py client registration-token list
  manage.py client registration-token revoke 3
""",
    add_arguments=_client,
)


def _scope(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="Create a scope (no change if it exists).")
    create.add_argument("name")
    create.add_argument("--description", default="")
    sub.add_parser("list", help="List scopes and how many clients are allowed each.")
    sub.add_parser("show", help="Show one scope and who holds it.").add_argument("name")
    delete = sub.add_parser("delete", help="Delete a scope nothing holds (refused while clients, live tokens or "
                                           "keys hold it, unless --force).")
    delete.add_argument("name")
    delete.add_argument("--force", action="store_true",
                        help="Ungrant it from every client and revoke every token, code and API key carrying it.")


scope = Spec(
    help="Manage the scope registry.",
    examples="""
  manage.py scope create ai.infer --description "Run inference"
  manage.py scope list
  manage.py scope show ai.infer
  manage.py scope delete ai.infer            # refused (exit 1) while anything holds it
  manage.py scope delete ai.infer --force    # ungrant it and revoke what carries it
""",
    add_arguments=_scope,
)
