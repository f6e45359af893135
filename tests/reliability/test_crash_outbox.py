"""Crash: a relay SIGKILLed mid-batch loses nothing; the inbox removes duplicates."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration_automation_patterns.outbox import Inbox
from tests.reliability.conftest import Ledger
from tests.reliability.outbox_harness import (
    Harness,
    first_delivery_in_order,
    make_harness,
)

RECORDS = 5_000
AGGREGATES = 50
KILLS = 10
LEASE = 30.0


@pytest.fixture(params=["sqlite", "postgresql"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """An outbox and wire on each dialect; relays are killed afterwards."""
    built = make_harness(request, tmp_path, lease_seconds=LEASE)
    yield built
    built.stop_all()


def wire_count(harness: Harness) -> int:
    conn = harness.wire_connect()
    cursor = conn.cursor()
    cursor.execute("SELECT COUNT(*) FROM wire")
    count = int(cursor.fetchone()[0])
    conn.close()
    return count


def leased_ids(harness: Harness) -> set[str]:
    conn = harness.connect()
    cursor = conn.cursor()
    cursor.execute(
        "SELECT id FROM outbox WHERE status = 'pending' AND lease_token IS NOT NULL"
    )
    ids = {str(row[0]) for row in cursor.fetchall()}
    conn.close()
    return ids


def consume_through_inbox(harness: Harness, wire: list[tuple[str, str, int]]) -> int:
    """Apply every delivery, duplicates included, behind an Inbox; return effects."""
    conn = harness.connect()
    inbox = Inbox(harness.dialect)
    inbox.create_schema(conn)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE effects (id TEXT NOT NULL)")
    mark = "%s" if harness.dialect == "postgresql" else "?"

    for record_id, _, _ in wire:

        def apply(c: Any, record_id: str = record_id) -> None:
            c.cursor().execute(f"INSERT INTO effects VALUES ({mark})", (record_id,))

        inbox.process(conn, record_id, apply)
    conn.commit()
    cursor = conn.cursor()
    cursor.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM effects")
    total, distinct = cursor.fetchone()
    conn.close()
    assert total == distinct
    return int(total)


@pytest.mark.reliability
@pytest.mark.timeout(300)
def test_sigkilled_relay_loses_nothing_and_keeps_order(
    harness: Harness, ledger: Ledger
) -> None:
    """Ten SIGKILLs mid-batch: all records delivered, in order, dups only if leased."""
    items = harness.seed(RECORDS, AGGREGATES)
    leased_at_kills: set[str] = set()
    mid_batch = 0
    started = time.monotonic()

    for kills in range(KILLS):
        relay = harness.start(
            kills,
            batch_size=100,
            offset=kills * (LEASE + 1),
            kill_after=150 + 37 * kills,
        )
        assert relay.wait(timeout=120) == -signal.SIGKILL
        leased = leased_ids(harness)
        mid_batch += bool(leased)
        leased_at_kills |= leased
    kills = KILLS
    final = harness.start(kills, batch_size=100, offset=kills * (LEASE + 1))
    assert final.wait(timeout=120) == 0
    elapsed = time.monotonic() - started

    wire = harness.wire()
    counts = Counter(record_id for record_id, _, _ in wire)
    duplicates = {record_id for record_id, n in counts.items() if n > 1}
    effects = consume_through_inbox(harness, wire)
    ledger.record(
        "crash",
        f"outbox relay SIGKILL mid-batch on {harness.dialect}",
        tried=f"{mid_batch} mid-batch kills draining {RECORDS} records",
        outcome=f"{RECORDS - len(counts)} lost, {len(duplicates)} duplicates on the"
        f" wire (bound: the {len(leased_at_kills)} records leased at the kills),"
        f" {effects - len(set(counts))} duplicate effects behind the inbox,"
        f" {elapsed:.1f}s",
        held=set(counts) == {r.record_id for r in items}
        and effects == RECORDS
        and duplicates <= leased_at_kills,
        kills=mid_batch,
        records=RECORDS,
        lost=RECORDS - len(counts),
        duplicates=len(duplicates),
        bound=len(leased_at_kills),
        duplicate_effects=effects - len(set(counts)),
        seconds=round(elapsed, 1),
    )
    assert mid_batch == KILLS
    assert set(counts) == {r.record_id for r in items}
    assert duplicates <= leased_at_kills
    assert duplicates
    assert first_delivery_in_order(wire)
    assert effects == RECORDS
