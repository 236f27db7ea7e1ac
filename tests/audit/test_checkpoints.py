"""Signed checkpoints anchor the trail outside the database: cutting its end shows.

Issue 13: delete the newest events, rewind ``AuditChainHead`` to the last one kept (its chain value
is in the same row) and, without checkpoints, ``audit verify`` saw nothing wrong.
"""

from __future__ import annotations

import hashlib
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from authserver.audit.checkpoints import TrailRewound, audit_checkpoint, checkpoint_path
from authserver.audit.models import AuditEvent
from authserver.audit.sealer import audit_seal
from authserver.audit.selectors import audit_verify
from authserver.audit.services import audit_record

pytestmark = pytest.mark.django_db


def _seed(n: int, tag: str = "t") -> None:
    for i in range(n):
        audit_record(event="test.event", subject=f"{tag}:{i}", personal={"ip": f"192.0.2.{i + 1}"})
    assert audit_seal() == n


def _cut_to(seq: int) -> None:
    """What someone who can write the database does: drop the newest sealed events, rewind the head."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq > %s", [seq])
        cursor.execute("SELECT chain FROM audit_auditevent WHERE seq = %s", [seq])
        (chain,) = cursor.fetchone()
        cursor.execute("UPDATE audit_auditchainhead SET last_seq = %s, chain = %s WHERE id = 1", [seq, chain])


def _verify_cli(*args: str) -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("audit", "verify", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, json.loads(out.getvalue())


def test_cutting_the_newest_events_and_rewinding_the_head_is_reported_naming_the_checkpoint():
    _seed(5)
    call_command("audit", "checkpoint", stdout=StringIO())
    checkpoint = json.loads(checkpoint_path().read_text().splitlines()[-1])
    assert (checkpoint["seq"], checkpoint["count"]) == (5, 5)
    code, report = _verify_cli()
    assert code == 0 and report["ok"] is True and report["checkpoints"]["latest"]["seq"] == 5

    _cut_to(3)

    code, report = _verify_cli()
    assert code == 1 and report["ok"] is False
    problems = " | ".join(p["problem"] for p in report["problems"])
    named = f"checkpoint of {checkpoint['at']} (seq 5"
    assert named in problems, problems
    assert "the chain head is at seq 3, behind the" in problems
    assert "the event at seq 5 named by the" in problems
    assert "3 sealed events, fewer than the 5" in problems


def test_a_rewind_of_a_single_event_is_reported_too():
    _seed(2)
    audit_checkpoint()
    _cut_to(1)
    problems = [p.problem for p in audit_verify().problems]
    assert any("behind the checkpoint" in p for p in problems), problems


def test_the_next_checkpoint_refuses_to_bless_a_rewound_trail_until_a_restore_point():
    _seed(4)
    first = audit_checkpoint()
    _cut_to(2)
    with pytest.raises(TrailRewound, match=r"seq 4.*restore-point"):
        audit_checkpoint()
    assert len(checkpoint_path().read_text().splitlines()) == 1  # nothing written over the cut
    assert audit_verify().problems  # still reported against the last good checkpoint

    with pytest.raises(SystemExit):  # a restore point needs a reason
        call_command("audit", "restore-point", "--reason", " ", stdout=StringIO(), stderr=StringIO())
    call_command("audit", "restore-point", "--reason", "restored the 02:00 backup", stdout=StringIO())
    lines = [json.loads(line) for line in checkpoint_path().read_text().splitlines()]
    assert [(line["kind"], line["seq"]) for line in lines] == [("checkpoint", 4), ("restore", 2)]
    restore = AuditEvent.objects.get(event="audit.restore_point")
    assert restore.actor == "cli" and restore.details == {
        "reason": "restored the 02:00 backup", "previous_seq": first.seq, "previous_at": first.at}
    audit_seal()
    assert audit_verify().problems == []
    audit_checkpoint()  # checkpoints go on from the restore point


def test_checkpoints_written_but_the_file_gone_is_reported():
    _seed(1)
    audit_checkpoint()
    checkpoint_path().unlink()
    problems = [p.problem for p in audit_verify().problems]
    assert any("is missing but 1 checkpoints were written" in p and "(seq 1)" in p for p in problems), problems


def test_no_checkpoint_ever_written_is_not_a_problem():
    _seed(2)
    assert not checkpoint_path().exists()
    assert audit_verify().problems == []


def test_the_file_cut_back_to_an_earlier_checkpoint_is_reported():
    _seed(1)
    audit_checkpoint()
    _seed(1, tag="u")
    audit_checkpoint()
    path = checkpoint_path()
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[0])
    problems = [p.problem for p in audit_verify().problems]
    assert any("lacks the last checkpoint the database recorded" in p for p in problems), problems


def test_a_stale_latest_checkpoint_is_reported(settings):
    _seed(1)
    audit_checkpoint()
    code, report = _verify_cli("--max-checkpoint-age", "0")
    assert code == 1 and any("older than 0 s" in p["problem"] for p in report["problems"])
    settings.AUDIT_CHECKPOINT_INTERVAL = 60
    assert audit_verify().problems == []  # default: 5 intervals


def test_each_checkpoint_names_the_previous_ones_hash_and_the_head():
    _seed(3)
    audit_checkpoint()
    audit_checkpoint()
    raw = checkpoint_path().read_bytes().splitlines()
    first, second = (json.loads(line) for line in raw)
    assert first["prev"] == "0" * 64 and second["prev"] == hashlib.sha256(raw[0]).hexdigest()
    head = AuditEvent.objects.get(seq=3)
    assert (second["seq"], second["event_id"], second["chain"], second["count"]) == (3, head.id, head.chain, 3)
    assert checkpoint_path().stat().st_mode & 0o077 == 0


def test_the_file_path_is_configurable(settings, tmp_path: Path):
    settings.AUDIT_CHECKPOINT_PATH = tmp_path / "elsewhere" / "cp.jsonl"
    _seed(1)
    audit_checkpoint()
    assert (tmp_path / "elsewhere" / "cp.jsonl").read_text().count("\n") == 1
    settings.AUDIT_CHECKPOINT_PATH = None
    assert checkpoint_path() == Path(settings.DATA_DIR) / "audit-checkpoints.jsonl"


def test_a_restored_database_is_checked_against_the_checkpoint_it_recorded():
    _seed(3)
    audit_checkpoint()
    with connection.cursor() as cursor:  # what a backup taken now holds
        cursor.execute("SELECT last_seq, last_hash, last_at, written FROM audit_auditcheckpointstate")
        backed_up = cursor.fetchone()
    _seed(2, tag="later")
    audit_checkpoint()
    _cut_to(3)  # the restore: the trail and the checkpoint state as they were
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditcheckpointstate SET last_seq = %s, last_hash = %s, last_at = %s, "
                       "written = %s", list(backed_up))

    assert _verify_cli()[0] == 1  # behind the latest checkpoint: reported
    code, report = _verify_cli("--restored")
    assert code == 0, report  # but a faithful earlier state of the trail

    with connection.cursor() as cursor:  # a restore that lost events the backup had: reported
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 3")
        cursor.execute("SELECT chain FROM audit_auditevent WHERE seq = 2")
        (chain,) = cursor.fetchone()
        cursor.execute("UPDATE audit_auditchainhead SET last_seq = 2, chain = %s WHERE id = 1", [chain])
    code, report = _verify_cli("--restored")
    assert code == 1 and any("(seq 3" in p["problem"] for p in report["problems"]), report
