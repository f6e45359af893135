"""Load: many outbox records through four relay processes on PostgreSQL.

Every record must be published exactly once and each aggregate's records in
enqueue order; the time taken and the throughput go into the ledger.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from integration_automation_patterns.outbox import OutboxRecord, SqlOutboxStore
from tests.reliability.conftest import Ledger
from tests.reliability.sizes import scaled

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
RECORDS = scaled(100_000, 5_000)
AGGREGATES = scaled(2_000, 200)
RELAYS = 4

Note = tuple[int, str, str, int]


def seed(connect: Callable[[], Any], total: int) -> set[str]:
    """Enqueue ``total`` records spread at random over the aggregates."""
    rng = random.Random(11)
    counters: Counter[str] = Counter()
    records = []
    for _ in range(total):
        aggregate = f"agg-{rng.randrange(AGGREGATES)}"
        records.append(OutboxRecord(aggregate, "Changed", {"n": counters[aggregate]}))
        counters[aggregate] += 1
    store = SqlOutboxStore("postgresql")
    conn = connect()
    store.create_schema(conn)
    store.enqueue_many(conn, records)
    conn.commit()
    # Autovacuum would analyze the new rows in time; the relays start at once.
    conn.execute("ANALYZE outbox")
    conn.commit()
    conn.close()
    return {record.record_id for record in records}


def order_violations(notes: list[Note]) -> int:
    """Count publishes that came before an earlier record of their aggregate."""
    last: dict[str, int] = defaultdict(lambda: -1)
    violations = 0
    for _, _, aggregate, n in sorted(notes):
        violations += n != last[aggregate] + 1
        last[aggregate] = n
    return violations


@pytest.mark.timeout(1_200)
def test_four_relays_publish_every_record_once_in_aggregate_order(
    postgres_connect: Callable[[], Any],
    postgres_dsn: str,
    tmp_path: Path,
    ledger: Ledger,
) -> None:
    """Four relays drain the outbox: each record once, each aggregate in order."""
    expected = seed(postgres_connect, RECORDS)
    with postgres_connect() as probe:
        [schema] = probe.execute("SELECT current_schema()").fetchone()
    command = [sys.executable, "-m", "tests.reliability.load_relay"]
    outs = [tmp_path / f"relay-{n}.json" for n in range(RELAYS)]

    started = time.monotonic()
    relays = [
        subprocess.Popen(
            [
                *command,
                json.dumps(
                    {
                        "dsn": postgres_dsn,
                        "schema": schema,
                        "batch_size": 200,
                        "out": str(out),
                    }
                ),
            ],
            cwd=ROOT,
        )
        for out in outs
    ]
    codes = [relay.wait(timeout=1_100) for relay in relays]
    elapsed = time.monotonic() - started

    notes: list[Note] = []
    for out in outs:
        notes.extend(tuple(note) for note in json.loads(out.read_text()))
    counts = Counter(note[1] for note in notes)
    lost = len(expected - set(counts))
    duplicates = sum(count - 1 for count in counts.values())
    violations = order_violations(notes)
    shares = sorted(len(json.loads(out.read_text())) for out in outs)
    ledger.record(
        "load",
        f"outbox, {RELAYS} relay processes on postgresql",
        tried=f"{RECORDS} records over {AGGREGATES} aggregates",
        outcome=f"{lost} lost, {duplicates} duplicates, {violations} order"
        f" violations; {elapsed:.1f}s, {RECORDS / elapsed:.0f} records/s;"
        f" per relay {shares}",
        held=lost == 0 and duplicates == 0 and violations == 0,
        records=RECORDS,
        lost=lost,
        duplicates=duplicates,
        bound=0,
        order_violations=violations,
        seconds=round(elapsed, 1),
        throughput=round(RECORDS / elapsed),
    )
    assert codes == [0] * RELAYS
    assert lost == 0
    assert duplicates == 0
    assert violations == 0
