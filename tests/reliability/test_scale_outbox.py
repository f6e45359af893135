"""Scale-out: several relay processes drain one outbox, each record once, in order."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import Ledger
from tests.reliability.outbox_harness import (
    Harness,
    first_delivery_in_order,
    make_harness,
)
from tests.reliability.sizes import scaled

RELAYS = 4
# The full 20 000 take about 100 s on PostgreSQL on a busy 2-core machine.
RECORDS = scaled(20_000, 5_000)
AGGREGATES = 200


@pytest.fixture(params=["postgresql", "sqlite"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """An outbox and wire on each dialect; relays are killed afterwards."""
    built = make_harness(request, tmp_path, lease_seconds=60)
    yield built
    built.stop_all()


@pytest.mark.reliability
@pytest.mark.timeout(300)
def test_four_relays_publish_each_record_exactly_once_in_order(
    harness: Harness, ledger: Ledger
) -> None:
    """Four relay processes drain the outbox: each record once, in aggregate order."""
    items = harness.seed(RECORDS, AGGREGATES)
    started = time.monotonic()

    relays = [harness.start(n, batch_size=100) for n in range(RELAYS)]
    codes = [relay.wait(timeout=240) for relay in relays]
    elapsed = time.monotonic() - started

    wire = harness.wire()
    counts = Counter(record_id for record_id, _, _ in wire)
    exactly_once = (
        set(counts) == {r.record_id for r in items} and max(counts.values()) == 1
    )
    in_order = first_delivery_in_order(wire)
    ledger.record(
        "concurrency",
        f"outbox, {RELAYS} relay processes on {harness.dialect}",
        tried=f"{RECORDS} records over {AGGREGATES} aggregates",
        outcome=f"{len(wire)} publishes in {elapsed:.1f}s",
        held=exactly_once and in_order,
        records=RECORDS,
        lost=RECORDS - len(counts),
        duplicates=len(wire) - len(counts),
        seconds=round(elapsed, 1),
        throughput=round(RECORDS / elapsed),
    )
    assert codes == [0] * RELAYS
    assert len(wire) == RECORDS
    assert exactly_once
    assert in_order
