"""The suite's checks can fail: a relay that marks before publishing is caught.

The relay is crashed mid-batch in-process (its publish raises a BaseException,
as a dying process would stop) and a fresh relay drains the outbox after the
lease expires. The real relay loses nothing; the planted one, which marks a
batch published before sending it, loses the unsent rest of the batch. The
other planted faults live beside the checks that catch them: the consumer crash
test (an effect committed outside the inbox transaction) and the concurrency
test (an inbox that runs the handler before recording the id).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.outbox import (
    ClaimedBatch,
    OutboxRecord,
    OutboxRelay,
    SqlOutboxStore,
)
from tests.reliability.conftest import Ledger

pytestmark = pytest.mark.reliability

RECORDS = 60
CRASH_AT = 10
LEASE = 30.0


class Crash(BaseException):
    """The relay process dies here."""


class MarkFirstRelay(OutboxRelay):
    """A planted fault: marks the whole batch published, then publishes it."""

    def _publish_batch(
        self, batch: ClaimedBatch
    ) -> tuple[list[str], list[tuple[OutboxRecord, str]], list[str]]:
        ids = [record.record_id for record in batch.records]
        self.store.mark_published(self._conn, ids, batch.token)
        self._conn.commit()
        return super()._publish_batch(batch)


def crash_then_drain(relay_type: type[OutboxRelay], path: Path) -> tuple[int, int]:
    """Crash one relay mid-batch, drain with another; return (lost, duplicates)."""
    clock = ManualClock(start=1_700_000_000.0)
    store = SqlOutboxStore("sqlite", clock=clock)

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path)

    conn = connect()
    store.create_schema(conn)
    records = [
        OutboxRecord(f"agg-{n % 3}", "Changed", {"n": n}) for n in range(RECORDS)
    ]
    store.enqueue_many(conn, records)
    conn.commit()
    conn.close()
    wire: list[str] = []

    def dying(record: OutboxRecord) -> None:
        if len(wire) == CRASH_AT:
            raise Crash
        wire.append(record.record_id)

    crashing = relay_type(store, connect, dying, batch_size=RECORDS, clock=clock)
    with pytest.raises(Crash):
        crashing.run_once()
    clock.advance(LEASE + 1)

    def send(record: OutboxRecord) -> None:
        wire.append(record.record_id)

    survivor = relay_type(store, connect, send, batch_size=RECORDS, clock=clock)
    while survivor.run_once().claimed:
        pass
    survivor.close()

    counts = Counter(wire)
    lost = len({record.record_id for record in records} - set(counts))
    return lost, sum(count - 1 for count in counts.values())


def test_planted_mark_before_publish_relay_is_caught(
    tmp_path: Path, ledger: Ledger
) -> None:
    """After a crash the real relay loses nothing; one that marks first does."""
    real_lost, real_duplicates = crash_then_drain(OutboxRelay, tmp_path / "real.db")
    planted_lost, _ = crash_then_drain(MarkFirstRelay, tmp_path / "planted.db")

    ledger.record(
        "planted fault",
        "relay that marks a batch published before publishing it",
        tried=f"one crash after {CRASH_AT} of {RECORDS} publishes, then a drain",
        outcome=f"caught: {planted_lost} records lost (the real relay:"
        f" {real_lost} lost, {real_duplicates} re-sent, bound {CRASH_AT})",
        held=planted_lost > 0 and real_lost == 0 and real_duplicates <= CRASH_AT,
        kills=1,
        records=RECORDS,
        lost=planted_lost,
    )
    assert real_lost == 0
    assert real_duplicates <= CRASH_AT, "only the crashed batch may be re-sent"
    assert planted_lost == RECORDS - CRASH_AT
