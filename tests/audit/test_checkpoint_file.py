"""The checkpoint file checked with the exported public key alone: signatures, links and order.

``manage.py audit verify-checkpoints`` runs here in a process with no usable database and no key
store, and the documented recipes (Python with ``cryptography``; ``jq`` + ``openssl``) are run too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.management import call_command

from authserver.audit import checkpoint_file
from authserver.audit.checkpoints import audit_checkpoint, checkpoint_path
from authserver.audit.sealer import audit_seal
from authserver.audit.selectors import audit_verify
from authserver.audit.services import audit_record
from tests.jobs.conftest import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_checkpoints(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint file of three lines and the exported public key, copied out of the data directory."""
    for n in range(3):
        audit_record(event="test.event", subject=f"t:{n}")
        audit_seal()
        audit_checkpoint()
    out = StringIO()
    call_command("audit", "public-key", stdout=out)
    pem = tmp_path / "audit-checkpoint-key.pem"
    pem.write_text(json.loads(out.getvalue())["public_key"])  # one JSON object, like every command
    copy = tmp_path / "checkpoints.jsonl"
    shutil.copy(checkpoint_path(), copy)
    return copy, pem


def _standalone(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """manage.py in a fresh data directory with no reachable database and an unusable key store."""
    data = tmp_path / "elsewhere"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "REDIS_URL"))}
    env.update(AUTHSERVER_DATA_DIR=str(data), DATABASE_URL="postgres://nobody:none@127.0.0.1:9/none",
               AUTHSERVER_KEYSTORE="pkcs11", AUTHSERVER_PKCS11_MODULE="/nonexistent/libsofthsm2.so",
               AUTHSERVER_PKCS11_TOKEN_LABEL="none", AUTHSERVER_PKCS11_PIN="none")
    return subprocess.run([sys.executable, "manage.py", "audit", "verify-checkpoints", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_exported_public_key_alone_verifies_the_file(three_checkpoints, tmp_path: Path):
    copy, pem = three_checkpoints
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    result = _standalone("--public-key", str(pem), "--file", str(copy), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["lines"] == 3 and report["latest"]["seq"] == 3
    assert not (tmp_path / "elsewhere" / "keystore.json").exists()


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _edit(line: bytes, **changes: object) -> bytes:
    body = json.loads(line)
    body.update(changes)
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _flip_signature(line: bytes) -> bytes:
    signature = bytearray(base64.b64decode(json.loads(line)["sig"]))
    signature[0] ^= 1
    return _edit(line, sig=base64.b64encode(bytes(signature)).decode())


def _foreign_signature(line: bytes) -> bytes:
    """Re-signed, validly, by a key that is not the server's."""
    body = json.loads(line)
    del body["sig"], body["v"], body["key_id"]
    return checkpoint_file.signed_line(body, Ed25519PrivateKey.generate())


TAMPERING = {
    "signature altered": (lambda ls: [ls[0], _flip_signature(ls[1]), ls[2]], 2, "signature does not verify"),
    "head edited": (lambda ls: [ls[0], ls[1], _edit(ls[2], seq=9, count=9)], 3, "signature does not verify"),
    "lines reordered": (lambda ls: [ls[0], ls[2], ls[1]], 2, "does not follow the line before it"),
    "middle line removed": (lambda ls: [ls[0], ls[2]], 2, "does not follow the line before it"),
    "line forged with another key": (lambda ls: [ls[0], ls[1], _foreign_signature(ls[2])], 3,
                                     "which is not among the public keys given"),
    "garbage appended": (lambda ls: [*ls, b"{not json"], 4, "unreadable line"),
}


def _verify_checkpoints(copy: Path, pem: Path) -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("audit", "verify-checkpoints", "--public-key", str(pem), "--file", str(copy), stdout=out)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, json.loads(out.getvalue())


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_a_tampered_file_is_reported_by_both_verifications(three_checkpoints, tamper):
    copy, pem = three_checkpoints
    change, line, problem = tamper
    _write(copy, change(_lines(copy)))

    code, report = _verify_checkpoints(copy, pem)
    assert code == 1 and report["ok"] is False
    assert any(p["line"] == line and problem in p["problem"] for p in report["problems"]), report

    shutil.copy(copy, checkpoint_path())  # the same tampering, in place: audit verify says so too
    problems = [p.problem for p in audit_verify().problems]
    assert any(f"checkpoint file line {line}: " in p and problem in p for p in problems), problems


def test_a_tampered_file_is_reported_standalone(three_checkpoints, tmp_path: Path):
    copy, pem = three_checkpoints
    _write(copy, [_lines(copy)[0], _flip_signature(_lines(copy)[1]), _lines(copy)[2]])
    result = _standalone("--public-key", str(pem), "--file", str(copy), tmp_path=tmp_path)
    assert result.returncode == 1, result.stdout
    # line 2 no longer verifies, and line 3 no longer follows it (its prev names the original)
    assert [p["line"] for p in json.loads(result.stdout)["problems"]] == [2, 3]


def test_the_trail_moving_back_without_a_restore_point_is_reported():
    key = Ed25519PrivateKey.generate()
    first = checkpoint_file.signed_line({"kind": "checkpoint", "seq": 5, "event_id": 5, "chain": "a" * 64,
                                         "count": 5, "at": "2026-01-01T00:00:00+00:00",
                                         "prev": checkpoint_file.GENESIS}, key)
    second = checkpoint_file.signed_line({"kind": "checkpoint", "seq": 3, "event_id": 3, "chain": "b" * 64,
                                          "count": 3, "at": "2026-01-01T00:01:00+00:00",
                                          "prev": checkpoint_file.line_hash(first)}, key)
    keys = {checkpoint_file.key_id(key.public_key()): key.public_key()}
    report = checkpoint_file.verify_lines([first, second], keys)
    assert [(p.line, p.problem) for p in report.problems] == [
        (2, "the trail moved back from seq 5 to 3 without a restore point")]


def test_an_empty_file_does_not_verify(three_checkpoints):
    copy, pem = three_checkpoints
    copy.write_bytes(b"")
    assert _verify_checkpoints(copy, pem)[0] == 1


def test_the_documented_python_recipe(three_checkpoints):
    """docs/operations.md, "Verifying the checkpoint file": cryptography alone, no authserver code."""
    copy, pem = three_checkpoints
    public_key = serialization.load_pem_public_key(pem.read_bytes())
    assert isinstance(public_key, Ed25519PublicKey)
    prev = "0" * 64
    for line in copy.read_bytes().splitlines():
        body = json.loads(line)
        signature = base64.b64decode(body.pop("sig"))
        public_key.verify(signature, json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
        assert body["prev"] == prev
        prev = hashlib.sha256(line).hexdigest()


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("jq")), reason="needs openssl and jq")
def test_the_documented_openssl_recipe(three_checkpoints, tmp_path: Path):
    copy, pem = three_checkpoints
    script = (f'line=$(tail -n 1 "{copy}")\n'
              'printf %s "$line" | jq -r .sig | base64 -d > sig.bin\n'
              "printf %s \"$line\" | jq -cjS 'del(.sig)' > msg.bin\n"
              f'openssl pkeyutl -verify -pubin -inkey "{pem}" -rawin -in msg.bin -sigfile sig.bin\n')
    ok = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout, ok.stderr
    _write(copy, [*_lines(copy)[:-1], _flip_signature(_lines(copy)[-1])])
    bad = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode != 0
