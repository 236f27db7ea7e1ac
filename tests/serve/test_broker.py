"""The embedded broker's transport (authserver.broker) against damaged files, in-process.

Kombu's filesystem transport for real, on folders in ``tmp_path``: the same in both passes (the
embedded broker involves neither PostgreSQL nor Redis).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from kombu.transport.virtual.base import BrokerState

from authserver import broker

# (name, content): what a full disk, a crash or a stray editor leaves in the queue folder.
DAMAGED = [
    ("empty", b""),
    ("garbage", b"\x00\xff not json at all"),
    ("truncated", b'{"body": "eyJh'),
    ("json-not-object", b"[1, 2, 3]"),
    ("object-not-message", b'{"body": "x"}'),
    ("properties-not-object", b'{"body": "x", "properties": "x"}'),
    ("no-delivery-tag", b'{"body": "x", "properties": {}}'),
]


def _connection(broker_dir: Path) -> Connection:
    folders = {name: broker_dir / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return Connection(
        "filesystem://localhost/",
        transport=broker.Transport,
        transport_options={
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "store_processed": False,
            "control_folder": str(folders["control"]),
        },
    )


@pytest.fixture
def broker_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Kombu keeps declared bindings in class-level state: each test starts with none.
    monkeypatch.setattr(broker.Transport, "global_state", BrokerState())
    return tmp_path / "broker"


@pytest.fixture
def conn(broker_dir: Path) -> Iterator[Connection]:
    with _connection(broker_dir) as connection:
        yield connection


def _drop(broker_dir: Path, name: str, content: bytes, queue: str = "jobs") -> str:
    # Named as kombu names messages, and sorted before anything published later.
    filename = f"0000000001_{name}.{queue}.msg"
    (broker_dir / "queue" / filename).write_bytes(content)
    return filename


def _publish(conn: Connection, body: dict[str, Any]) -> None:
    exchange = Exchange("jobs", type="direct")
    queue = Queue("jobs", exchange, routing_key="jobs")
    with conn.Producer() as producer:
        producer.publish(body, exchange=exchange, routing_key="jobs", declare=[queue], serializer="json")


def _receive(conn: Connection) -> list[Any]:
    got: list[Any] = []
    queue = Queue("jobs", Exchange("jobs", type="direct"), routing_key="jobs")
    with conn.Consumer(queue, callbacks=[lambda body, message: (got.append(body), message.ack())]):
        for _ in range(20):
            try:
                conn.drain_events(timeout=0.2)
            except TimeoutError:
                break
    return got


@pytest.mark.parametrize(("name", "content"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_a_damaged_message_is_quarantined_and_the_next_one_delivered(
    conn: Connection, broker_dir: Path, name: str, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    filename = _drop(broker_dir, name, content)
    _publish(conn, {"job": "after the damaged one"})

    with caplog.at_level(logging.ERROR, logger="authserver.broker"):
        assert _receive(conn) == [{"job": "after the damaged one"}]

    assert [p.name.rsplit(".", 1)[0] for p in broker.quarantined(broker_dir)] == [filename]
    assert broker.quarantined(broker_dir)[0].read_bytes() == content  # kept as found, for inspection
    assert list((broker_dir / "queue").iterdir()) == []
    assert list((broker_dir / "processed").iterdir()) == []
    records = [r for r in caplog.records if r.name == "authserver.broker"]
    assert len(records) == 1
    assert records[0].file == filename  # type: ignore[attr-defined]
    assert records[0].bytes == len(content)  # type: ignore[attr-defined]
    if content:
        assert content.decode(errors="replace") not in records[0].getMessage()


def test_many_damaged_files_never_stop_delivery(conn: Connection, broker_dir: Path) -> None:
    for name, content in DAMAGED:
        _drop(broker_dir, name, content)
    _publish(conn, {"n": 1})
    _publish(conn, {"n": 2})
    # Both delivered; no order between them (two publishes in the same millisecond are ordered by
    # their random file names, and Celery promises no order anyway).
    assert sorted(_receive(conn), key=lambda message: message["n"]) == [{"n": 1}, {"n": 2}]
    assert len(broker.quarantined(broker_dir)) == len(DAMAGED)


def test_a_full_disk_while_publishing_leaves_no_partial_message(
    conn: Connection, broker_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    from kombu.exceptions import ChannelError, OperationalError

    with pytest.raises((ChannelError, OperationalError)):
        _publish(conn, {"lost": True})
    monkeypatch.setattr(os, "fsync", real_fsync)

    # Nothing a consumer could trip on, nothing left in staging; the next publish goes through.
    assert list((broker_dir / "queue").iterdir()) == []
    assert list((broker_dir / "tmp").iterdir()) == []
    _publish(conn, {"lost": False})
    assert _receive(conn) == [{"lost": False}]


def test_a_damaged_exchange_table_is_replaced_on_bind(conn: Connection, broker_dir: Path) -> None:
    # A zero-byte table, as a bind interrupted by a full disk leaves it: kombu's own transport
    # raises on it at every worker start.
    (broker_dir / "control" / "jobs.exchange").write_bytes(b"")
    _publish(conn, {"routed": True})
    assert _receive(conn) == [{"routed": True}]
    assert [p.name.rsplit(".", 1)[0] for p in broker.quarantined(broker_dir)] == ["jobs.exchange"]


def test_a_damaged_exchange_table_read_while_publishing_is_not_fatal(
    broker_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _connection(broker_dir) as conn:
        _publish(conn, {"first": True})  # declares and binds
        (broker_dir / "control" / "jobs.exchange").write_bytes(b"\x00")
        with caplog.at_level(logging.WARNING, logger="authserver.broker"):
            _publish(conn, {"second": True})  # already declared: only reads the table
    assert any("damaged exchange table" in r.getMessage() for r in caplog.records)
