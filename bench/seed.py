# ruff: noqa: S311 - a benchmark driver: fixed local commands, reproducible pseudo-random data
"""Seed a bench database with bulk SQL (run inside Django with the bench's production environment).

    python -m bench.seed main  '{"sizes": {...}, "seed": "..."}'
    python -m bench.seed scale '{"seed": "...", "start": 0, "count": 10000}'
    python -m bench.seed cleanup '{"seed": "...", "count": 1000000}'

Clients are created with the ORM's ``bulk_create`` (secret stored as the credential hasher's
encoding, as ``client_register`` would), tokens, codes and keys with ``COPY``: only SHA-256
digests are stored, the token column stays blank (RFC 9700 token storage).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402

from bench import data  # noqa: E402
from clients.models import Client, Scope  # noqa: E402

NOW = datetime.now(UTC)
LIVE_FOR = timedelta(hours=6)  # live tokens outlive any bench run


def _progress(message: str) -> None:
    print(f"  seed: {message}", file=sys.stderr, flush=True)


def _client(client_id: str, secret: str | None, **fields: Any) -> Client:
    return Client(
        client_id=client_id,
        name=fields.pop("name", client_id),
        client_type="confidential" if secret else "public",
        client_secret=f"authserver_sha256${data.digest(secret)}" if secret else "",
        hash_client_secret=False,  # already encoded
        client_secret_hint=f"cs_…{secret[-4:]}" if secret else "",
        **fields,
    )


def _copy(table: str, columns: list[str], rows: Any, label: str, total: int) -> None:
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for n, row in enumerate(rows, 1):
                copy.write_row(row)
                if n % 200_000 == 0:
                    _progress(f"{label}: {n:,}/{total:,}")


_AT_COLUMNS = ["token", "token_checksum", "expires", "scope", "resource", "created", "updated", "hint",
               "application_id", "user_id"]


def _token_rows(seed: str, namespace: str, start: int, count: int, app_ids: list[int], *, expired: bool,
                created: datetime | None = None, audience: str = data.RS_AUDIENCE) -> Any:
    rng = random.Random(f"{seed}|{namespace}")
    resource = json.dumps([audience])
    for i in range(start, start + count):
        token = data.credential(seed, "at", namespace, i)
        if expired:
            expires = NOW - timedelta(seconds=1 + rng.randrange(86_400))
            made = expires - timedelta(seconds=600)
        else:
            expires = NOW + LIVE_FOR
            made = created or NOW - timedelta(seconds=rng.randrange(600))
        yield ("", data.digest(token), expires, data.SCOPE, resource, made, made, f"at_…{token[-4:]}",
               app_ids[i % len(app_ids)], None)


def seed_main(plan: dict[str, Any]) -> dict[str, Any]:
    sizes = data.Sizes(**plan["sizes"])
    seed = plan["seed"]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(username="bench-user", password="!")  # noqa: S106 - unusable
    scope, _ = Scope.objects.get_or_create(name=data.SCOPE)

    def secret_for(i: int) -> str:
        return data.credential(seed, "cs", data.CLIENT_SECRET, i)

    with transaction.atomic():
        specials = [
            _client("bench-rs", secret_for(0), name="bench resource server", grant_types=["client_credentials"],
                    authorization_grant_type="client-credentials", is_resource_server=True,
                    audience=data.RS_AUDIENCE),
            _client("bench-other-rs", secret_for(1), name="another resource server",
                    grant_types=["client_credentials"], authorization_grant_type="client-credentials",
                    is_resource_server=True, audience=data.OTHER_AUDIENCE),
            _client("bench-web", secret_for(2), name="bench web app", grant_types=["authorization_code"],
                    authorization_grant_type="authorization-code", redirect_uris=data.REDIRECT_URI,
                    allowed_audiences=[data.RS_AUDIENCE]),
            _client("bench-compromised", secret_for(3), name="compromised client",
                    grant_types=["client_credentials"], authorization_grant_type="client-credentials",
                    allowed_audiences=[data.RS_AUDIENCE], credentials_revoked_at=NOW - timedelta(seconds=5)),
        ]
        machines = [
            _client(f"bench-client-{i}", secret_for(100 + i), grant_types=["client_credentials"],
                    authorization_grant_type="client-credentials", allowed_audiences=[data.RS_AUDIENCE])
            for i in range(sizes.clients)
        ]
        Client.objects.bulk_create(specials + machines, batch_size=1000)
        all_clients = list(Client.objects.filter(client_id__startswith="bench-"))
        through = Client.allowed_scopes.through
        through.objects.bulk_create([through(client_id=c.pk, scope_id=scope.pk) for c in all_clients],
                                    batch_size=2000)
    ids = {c.client_id: c.pk for c in all_clients}
    machine_ids = [ids[f"bench-client-{i}"] for i in range(sizes.clients)]
    _progress(f"{len(all_clients)} clients")

    _copy("oauth_accesstoken", _AT_COLUMNS, _token_rows(seed, data.LIVE, 0, sizes.live, machine_ids, expired=False),
          "live tokens", sizes.live)
    _copy("oauth_accesstoken", _AT_COLUMNS,
          _token_rows(seed, data.EXPIRED, 0, sizes.expired, machine_ids, expired=True), "expired", sizes.expired)
    compromised = max(100, sizes.live // 100)
    _copy("oauth_accesstoken", _AT_COLUMNS,
          _token_rows(seed, data.COMPROMISED, 0, compromised, [ids["bench-compromised"]], expired=False,
                      created=NOW - timedelta(seconds=60)), "compromised", compromised)
    _progress(f"{sizes.live:,} live, {sizes.expired:,} expired, {compromised:,} compromised-client tokens")

    # API keys: 80% active, 10% expired, 10% revoked; every 20th active key has a rate limit.
    key_columns = ["id", "name", "digest", "hint", "scope", "audiences", "allowed_ips", "rate_limit",
                   "rate_limit_period", "quota", "status", "expires", "created", "created_by_label", "uses",
                   "quota_leased", "version", "client_id", "revoked"]

    def key_rows() -> Any:
        for i in range(sizes.keys):
            key = data.credential(seed, data.API_KEY_PREFIX, data.KEY, i)
            state = data.key_state(i)
            limited = state == "active" and i % 20 == 2
            yield (uuid.UUID(int=random.Random(i).getrandbits(128)), f"key {i}", data.digest(key), f"ak_…{key[-4:]}",
                   data.SCOPE, json.dumps([data.RS_AUDIENCE]), "[]", 1_000_000 if limited else None,
                   60 if limited else None, None, "revoked" if state == "revoked" else "active",
                   NOW - timedelta(days=1) if state == "expired" else NOW + timedelta(days=90),
                   NOW - timedelta(days=2), "bench", 0, 0, 1, machine_ids[i % len(machine_ids)],
                   NOW - timedelta(hours=1) if state == "revoked" else None)

    _copy("keys_apikey", key_columns, key_rows(), "api keys", sizes.keys)
    _progress(f"{sizes.keys:,} API keys")

    challenge = base64.urlsafe_b64encode(hashlib.sha256(data.CODE_VERIFIER.encode()).digest()).decode().rstrip("=")
    grant_columns = ["expires", "redirect_uri", "scope", "created", "updated", "code_challenge",
                     "code_challenge_method", "nonce", "claims", "resource", "code", "hint", "application_id",
                     "user_id"]

    def grant_rows() -> Any:
        for i in range(sizes.codes):
            code = data.credential(seed, "ac", data.CODE, i)
            yield (NOW + LIVE_FOR, data.REDIRECT_URI, data.SCOPE, NOW, NOW, challenge, "S256", "", "", "[]",
                   data.digest(code), f"ac_…{code[-4:]}", ids["bench-web"], user.pk)

    _copy("oauth_grant", grant_columns, grant_rows(), "codes", sizes.codes)
    # Each refresh token comes with the access token it was issued with (DOT reads its scope).
    web_at = (
        ("", data.digest(data.credential(seed, "at", "refresh-at", i)), NOW + timedelta(minutes=10), data.SCOPE,
         json.dumps([data.RS_AUDIENCE]), NOW, NOW, "at_…", ids["bench-web"], user.pk)
        for i in range(sizes.refresh)
    )
    _copy("oauth_accesstoken", _AT_COLUMNS, web_at, "refresh access tokens", sizes.refresh)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_rt (rt_digest varchar(64), at_digest varchar(64), hint text)")
        with cursor.copy("COPY bench_rt (rt_digest, at_digest, hint) FROM STDIN") as copy:
            for i in range(sizes.refresh):
                rt = data.credential(seed, "rt", data.REFRESH, i)
                copy.write_row((data.digest(rt), data.digest(data.credential(seed, "at", "refresh-at", i)),
                                f"rt_…{rt[-4:]}"))
        cursor.execute(
            "INSERT INTO oauth_refreshtoken (token, token_checksum, token_family, resource, created, updated, hint, "
            "family_expires, access_token_id, application_id, user_id) "
            "SELECT '', b.rt_digest, gen_random_uuid(), %s::jsonb, now(), now(), b.hint, now() + interval '30 days', "
            "a.id, a.application_id, a.user_id FROM bench_rt b "
            "JOIN oauth_accesstoken a ON a.token_checksum = b.at_digest",
            [json.dumps([data.RS_AUDIENCE])],
        )
        cursor.execute("DROP TABLE bench_rt")
    _progress(f"{sizes.codes:,} codes, {sizes.refresh:,} refresh tokens")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"rs_client_id": "bench-rs", "rs_secret": secret_for(0), "web_client_id": "bench-web",
            "web_secret": secret_for(2), "machine_client_ids": [f"bench-client-{i}" for i in range(sizes.clients)],
            "machine_secret_base": 100}


def seed_tokens(plan: dict[str, Any], namespace: str, *, expired: bool) -> dict[str, Any]:
    seed, start, count = plan["seed"], int(plan.get("start", 0)), int(plan["count"])
    app_ids = list(Client.objects.filter(client_id__startswith="bench-client-").values_list("pk", flat=True))
    _copy("oauth_accesstoken", _AT_COLUMNS, _token_rows(seed, namespace, start, count, app_ids, expired=expired),
          namespace, count)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE oauth_accesstoken")
    return {"count": count}


def main() -> None:
    command, plan = sys.argv[1], json.loads(sys.argv[2])
    if command == "main":
        result = seed_main(plan)
    elif command == "scale":
        result = seed_tokens(plan, data.SCALE, expired=False)
    elif command == "cleanup":
        result = seed_tokens(plan, data.CLEANUP, expired=True)
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
