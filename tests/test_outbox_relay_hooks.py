"""What the relay's batch report tells tracing: timing and the records gone dead."""

from __future__ import annotations

import dataclasses

import pytest

from integration_automation_patterns._types import ManualClock, RetryPolicy
from integration_automation_patterns.outbox import (
    BatchReport,
    OutboxRecord,
    OutboxRelay,
)
from tests.outbox_support import Database, database, records, seeded

__all__ = ["database"]

POLICY = RetryPolicy(max_attempts=2, backoff_seconds=5, max_backoff_seconds=60)


def test_report_times_the_batch_by_the_relay_clock(
    database: Database, clock: ManualClock
) -> None:
    """started_at/finished_at bracket the batch, including the time publishing took."""
    store = seeded(database, clock, records(aggregates=2, per_aggregate=2))
    reports: list[BatchReport] = []

    def slow_publish(record: OutboxRecord) -> None:
        clock.advance(0.25)

    relay = OutboxRelay(
        store, database.connect, slow_publish, clock=clock, on_batch=reports.append
    )
    start = clock.monotonic()
    relay.run_once()
    clock.advance(10)
    relay.run_once()
    relay.close()

    first, empty = reports
    assert (first.started_at, first.finished_at) == (start, start + 1.0)
    assert first.duration == 1.0
    assert empty.started_at == start + 11.0
    assert empty.duration == 0.0


def test_report_names_the_records_that_went_dead(
    database: Database, clock: ManualClock
) -> None:
    """dead_ids lists exactly the records that became DEAD in that batch."""
    items = records(aggregates=2, per_aggregate=2)
    store = seeded(database, clock, items)
    poisoned = {items[0].aggregate_id}
    reports: list[BatchReport] = []

    def publish(record: OutboxRecord) -> None:
        if record.aggregate_id in poisoned:
            raise ConnectionError("rejected")

    relay = OutboxRelay(
        store,
        database.connect,
        publish,
        retry_policy=POLICY,
        clock=clock,
        on_batch=reports.append,
    )
    relay.run_once()
    clock.advance(5)
    relay.run_once()
    relay.close()

    assert [r.dead_ids for r in reports] == [(), (items[0].record_id,)]
    assert [r.dead for r in reports] == [0, 1]
    (dead,) = store.dead(database.connect())
    assert dead.record_id == items[0].record_id


def test_returned_report_is_the_one_the_hook_received(
    database: Database, clock: ManualClock
) -> None:
    """run_once returns the same timed report that on_batch was handed."""
    store = seeded(database, clock, records(aggregates=1, per_aggregate=1))
    reports: list[BatchReport] = []
    relay = OutboxRelay(
        store, database.connect, lambda r: None, clock=clock, on_batch=reports.append
    )

    returned = relay.run_once()
    relay.close()

    assert reports == [returned]
    assert returned.published == 1
    assert returned.finished_at >= returned.started_at > 0


def test_report_is_frozen_and_keeps_its_positional_shape() -> None:
    """Older code building a report positionally still works; fields are frozen."""
    report = BatchReport(1, 1, 0, 0, 0, 0, "t")

    assert (report.started_at, report.finished_at, report.dead_ids) == (0.0, 0.0, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.dead_ids = ("x",)  # type: ignore[misc]
