"""KEK rotation: a new version, then a resumable job that moves everything onto it.

``rotate()`` adds a KEK version to the key store (it becomes current at once: every new
ciphertext and data key uses it) and records a :class:`Rotation`. ``run()`` (the Celery task
``crypto.rotation_run``) then, in bounded batches, each its own transaction:

1. re-wraps every held secret (``secret:*`` data keys) under the new KEK (same secret bytes);
2. re-encrypts every row of every encrypted field (found through the app registry) whose value
   is under an older version, with a compare-and-swap update: a row changed concurrently is
   left to its writer (who wrote it under the current version) and re-examined, never
   overwritten with stale data.

It is idempotent and resumable: a worker killed midway leaves committed batches done and the
rest untouched; a rerun (the ``crypto.reconcile`` sweep re-enqueues stalled runs) only sees
what is still under an old version. Reads keep working throughout because old KEK versions
and data keys stay until ``retire()``, which refuses while anything still depends on them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from authserver.crypto import envelope
from authserver.crypto.backends import get_keystore
from authserver.crypto.fields import encrypted_fields
from authserver.crypto.keystore import DecryptionError, KeyStoreError, KeyStoreMissing
from authserver.crypto.models import DataKey, Rotation, RotationStatus

log = logging.getLogger("authserver.crypto.rotation")


def _setting(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        return float(os.environ.get(f"AUTHSERVER_{name}", default))
    return float(value)


def batch_size() -> int:
    return max(1, int(_setting("CRYPTO_ROTATION_BATCH_SIZE", 200)))


def batch_pause() -> float:
    return _setting("CRYPTO_ROTATION_BATCH_PAUSE", 0)


def stale_seconds() -> float:
    return _setting("CRYPTO_ROTATION_STALE_SECONDS", 60)


def _fields() -> list[tuple[Any, Any]]:
    tables = set(connection.introspection.table_names())
    return [(m, f) for m, f in encrypted_fields() if m._meta.db_table in tables]


def rotate() -> Rotation:
    """A new KEK version, current from now on, and the job that re-encrypts everything under it
    (its caller enqueues :func:`run`, or runs it in the foreground)."""
    store = envelope.keystore_ready()
    version = store.create_version()
    rotation = Rotation.objects.create(target_version=version)
    log.info("KEK rotated", extra={"kek_version": version, "rotation": str(rotation.pk)})
    return rotation


# Ciphertexts kept outside encrypted fields, re-encrypted by their owners: each callable moves
# what it holds to the current KEK version and returns (counter name, how many it moved). The
# audit trail registers its own (authserver.audit.apps): this package imports no app above it.
_reencryptors: list[Callable[[], tuple[str, int]]] = []


def register_reencryptor(reencrypt: Callable[[], tuple[str, int]]) -> None:
    if reencrypt not in _reencryptors:
        _reencryptors.append(reencrypt)


def _rewrap_secrets(store: Any, current: int) -> int:
    done = 0
    purposes = (DataKey.objects.filter(purpose__startswith=envelope.SECRET_PREFIX)
                .exclude(kek_version=current).values_list("purpose", flat=True).distinct())
    for purpose in sorted(set(purposes)):
        with transaction.atomic():
            old = DataKey.objects.filter(purpose=purpose).exclude(kek_version=current).order_by("-kek_version").first()
            if old is None:
                continue
            if not DataKey.objects.filter(purpose=purpose, kek_version=current).exists():
                value = store.unwrap(old.kek_version, bytes(old.wrapped), envelope.wrap_aad(purpose, old.kek_version))
                try:
                    with transaction.atomic():
                        DataKey.objects.create(purpose=purpose, kek_version=current,
                                               wrapped=store.wrap(current, value, envelope.wrap_aad(purpose, current)))
                except IntegrityError:
                    pass
            DataKey.objects.filter(purpose=purpose).exclude(kek_version=current).delete()
            done += 1
    return done


def _reencrypt_field(model: Any, field: Any, current: int, rotation: Rotation, counts: dict[str, Any],
                     failed: set[Any]) -> int:
    attname = field.attname
    manager = model._base_manager
    pending = manager.exclude(**{f"{attname}__isnull": True}).exclude(**{f"{attname}__startswith": f"v{current}:"})
    pause = batch_pause()
    total = 0  # rows examined (a row lost to a concurrent writer is examined again)
    while True:
        rows = list(pending.exclude(pk__in=failed).order_by("pk").values_list("pk", attname)[:batch_size()])
        if not rows:
            return total
        with transaction.atomic():
            for pk, stored in rows:
                try:
                    new = field.reencrypt_stored(pk, stored)
                except DecryptionError:
                    failed.add(pk)
                    log.error("row does not decrypt; left as is", extra={"field": field.label, "pk": str(pk)})
                    continue
                # Compare-and-swap: a concurrent writer's value is never overwritten.
                changed = manager.filter(pk=pk, **{attname: stored}).update(**{attname: new})
                total += 1
                counts["rows_reencrypted"] = counts.get("rows_reencrypted", 0) + changed
            counts["undecryptable"] = len(failed)
            Rotation.objects.filter(pk=rotation.pk).update(heartbeat=timezone.now(), counts=counts)
        if pause:
            time.sleep(pause)  # test hook: lets a test kill the worker between batches


def run(rotation_id: str) -> dict[str, Any]:
    rotation = Rotation.objects.get(pk=rotation_id)
    if rotation.status == RotationStatus.DONE:
        return dict(rotation.counts)
    Rotation.objects.filter(pk=rotation.pk).update(status=RotationStatus.RUNNING, heartbeat=timezone.now())
    started = time.monotonic()
    store = envelope.keystore_ready()
    counts: dict[str, Any] = dict(rotation.counts or {})
    failed: set[Any] = set()
    while True:
        current = max(store.versions(fresh=True))  # never a cached, pre-rotation view
        if current < rotation.target_version:
            raise KeyStoreError(f"KEK version {rotation.target_version} is missing from {store.describe()}")
        counts["secrets_rewrapped"] = counts.get("secrets_rewrapped", 0) + _rewrap_secrets(store, current)
        moved = sum(_reencrypt_field(m, f, current, rotation, counts, failed) for m, f in _fields())
        for reencrypt in _reencryptors:
            name, owner_moved = reencrypt()
            counts[name] = counts.get(name, 0) + owner_moved
            moved += owner_moved
        # Other processes may keep writing under the previous version for store.staleness
        # seconds after the rotation: sweep once more after that.
        wait = store.staleness - (time.monotonic() - started)
        if moved == 0 and wait <= 0:
            break
        if wait > 0:
            time.sleep(min(wait, 1.0))
    status = RotationStatus.DONE
    Rotation.objects.filter(pk=rotation.pk).update(status=status, finished=timezone.now(), heartbeat=timezone.now(),
                                                   counts=counts)
    log.info("KEK rotation finished", extra={"rotation": str(rotation.pk), "counts": counts})
    return counts


def stalled(*, stale_after: float | None = None) -> list[str]:
    threshold = timezone.now() - timedelta(seconds=stale_seconds() if stale_after is None else stale_after)
    pending = Rotation.objects.exclude(status=RotationStatus.DONE)
    rows = pending.filter(heartbeat__lte=threshold) | pending.filter(heartbeat__isnull=True, requested__lte=threshold)
    return [str(pk) for pk in rows.values_list("pk", flat=True)]


# --- status and retirement ----------------------------------------------------------------------
def status() -> dict[str, Any]:
    """Per KEK version, what still depends on it (JSON-serialisable)."""
    store = get_keystore()
    try:
        in_store = set(store.versions(fresh=True))
    except KeyStoreMissing:
        if DataKey.objects.exists():
            raise
        in_store = set()
    fields = _fields()
    field_purposes = {f.purpose for _, f in fields}
    keys = list(DataKey.objects.values_list("purpose", "kek_version"))
    versions = sorted(in_store | {v for _, v in keys})
    current = max(in_store) if in_store else None
    report: dict[str, Any] = {"backend": store.name, "key_store": store.describe(), "current_version": current,
                              "versions": []}
    accounted: dict[str, int] = {}
    for version in versions:
        by_field = {}
        for model, field in fields:
            n = model._base_manager.filter(**{f"{field.attname}__startswith": f"v{version}:"}).count()
            accounted[field.label] = accounted.get(field.label, 0) + n
            if n:
                by_field[field.label] = n
        secret_keys = sorted(p for p, v in keys if v == version and p.startswith(envelope.SECRET_PREFIX))
        external = sorted(p for p, v in keys if v == version and not p.startswith(envelope.SECRET_PREFIX)
                          and p not in field_purposes)
        rows = sum(by_field.values())
        depends = rows + len(secret_keys) + len(external)
        report["versions"].append({
            "version": version,
            "current": version == current,
            "in_key_store": version in in_store,
            "rows": rows,
            "fields": by_field,
            "secrets": secret_keys,
            "external_data_keys": external,
            "data_keys": sum(1 for _, v in keys if v == version),
            "depends": depends,
            "retirable": version in in_store and version != current and depends == 0,
        })
    unknown = {}
    for model, field in fields:
        total = model._base_manager.exclude(**{f"{field.attname}__isnull": True}).count()
        if total != accounted.get(field.label, 0):
            unknown[field.label] = total - accounted.get(field.label, 0)
    report["rows_under_unknown_version"] = unknown
    last = Rotation.objects.first()
    report["rotation"] = None if last is None else {
        "id": str(last.pk), "target_version": last.target_version, "status": last.status, "counts": last.counts,
        "requested": last.requested.isoformat(), "finished": last.finished.isoformat() if last.finished else None,
    }
    return report


class RetireRefused(Exception):
    pass


def retire(version: int) -> dict[str, Any]:
    """Destroy KEK ``version`` and its data keys, only if nothing depends on it any more."""
    store = get_keystore()
    report = status()
    entry = next((v for v in report["versions"] if v["version"] == version), None)
    if entry is None or not entry["in_key_store"]:
        raise RetireRefused(f"KEK version {version} is not in {store.describe()}")
    if entry["current"]:
        raise RetireRefused(f"KEK version {version} is the current version; rotate first")
    if entry["depends"]:
        details = [f"{n} row(s) of {label}" for label, n in entry["fields"].items()]
        details += [f"held secret {p}" for p in entry["secrets"]]
        details += [f"data key {p} used through encrypt() (re-encrypt its data with reencrypt(), then delete "
                    "that DataKey row)" for p in entry["external_data_keys"]]
        raise RetireRefused(f"KEK version {version} is still needed by: " + "; ".join(details)
                            + ". Run (or resume) the rotation job: manage.py keys rotate --resume")
    with transaction.atomic():
        deleted, _ = DataKey.objects.filter(kek_version=version).delete()
    try:
        store.destroy_version(version)
    except KeyStoreError as exc:
        raise RetireRefused(str(exc)) from None
    envelope.reset_caches()
    return {"version": version, "data_keys_deleted": deleted}
