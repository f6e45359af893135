"""OutboxRelay on real SQLite and PostgreSQL: order, retries, fencing, polling."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from integration_automation_patterns._types import ManualClock, RetryPolicy
from integration_automation_patterns.outbox import (
    BatchReport,
    OutboxRecord,
    OutboxRelay,
    SqlOutboxStore,
)
from tests.outbox_support import Database, database, records, seeded

__all__ = ["database"]

POLICY = RetryPolicy(max_attempts=2, backoff_seconds=5, max_backoff_seconds=60)


def test_run_once_publishes_in_order_and_marks(
    database: Database, clock: ManualClock
) -> None:
    """One batch publishes every record in enqueue order and marks it."""
    items = records(aggregates=3, per_aggregate=4)
    store = seeded(database, clock, items)
    sent: list[OutboxRecord] = []
    relay = OutboxRelay(store, database.connect, sent.append, clock=clock)

    report = relay.run_once()
    relay.close()

    assert (report.claimed, report.published, report.failed) == (12, 12, 0)
    assert [r.record_id for r in sent] == [r.record_id for r in items]
    stats = store.stats(database.connect())
    assert (stats.published, stats.pending) == (12, 0)


def test_failure_holds_back_its_aggregate_for_the_batch(
    database: Database, clock: ManualClock
) -> None:
    """After a failure no later record of that aggregate is published; others are."""
    items = records(aggregates=2, per_aggregate=3)
    store = seeded(database, clock, items)
    sent: list[tuple[str, int]] = []
    broken = {"agg-0"}

    def publish(record: OutboxRecord) -> None:
        if record.aggregate_id in broken:
            raise ConnectionError("partition offline")
        sent.append((record.aggregate_id, record.payload["n"]))

    relay = OutboxRelay(
        store, database.connect, publish, retry_policy=POLICY, clock=clock
    )
    report = relay.run_once()
    assert (report.published, report.failed, report.released) == (3, 1, 2)
    assert sent == [("agg-1", 0), ("agg-1", 1), ("agg-1", 2)]

    assert relay.run_once().claimed == 0
    clock.advance(5)
    broken.clear()
    report = relay.run_once()
    relay.close()
    assert report.published == 3
    assert sent[3:] == [("agg-0", 0), ("agg-0", 1), ("agg-0", 2)]


def test_exhausted_record_goes_dead_and_reports_it(
    database: Database, clock: ManualClock
) -> None:
    """After max_attempts a record is DEAD and its aggregate stays blocked."""
    items = records(aggregates=1, per_aggregate=2)
    store = seeded(database, clock, items)
    reports: list[BatchReport] = []

    def refuse(record: OutboxRecord) -> None:
        raise ConnectionError("rejected")

    relay = OutboxRelay(
        store,
        database.connect,
        refuse,
        retry_policy=POLICY,
        clock=clock,
        on_batch=reports.append,
    )
    relay.run_once()
    clock.advance(5)
    relay.run_once()
    clock.advance(3600)
    relay.run_once()
    relay.close()

    assert [r.dead for r in reports] == [0, 1, 0]
    assert reports[-1].claimed == 0
    (dead,) = store.dead(database.connect())
    assert dead.record_id == items[0].record_id
    assert dead.last_error == "ConnectionError: rejected"


def test_relay_that_lost_its_lease_is_fenced(
    database: Database, clock: ManualClock
) -> None:
    """A slow relay whose lease was taken over changes nothing when it marks."""
    items = records(aggregates=1, per_aggregate=2)
    store = seeded(database, clock, items)
    rival: list[Any] = []

    def slow_publish(record: OutboxRecord) -> None:
        if not rival:
            clock.advance(31)
            conn = database.connect()
            rival.append(store.claim(conn, 10))
            conn.commit()

    relay = OutboxRelay(store, database.connect, slow_publish, clock=clock)
    report = relay.run_once()
    relay.close()

    assert (report.published, report.fenced) == (2, 2)
    assert len(rival[0]) == 2
    stats = store.stats(database.connect())
    assert (stats.published, stats.in_flight) == (0, 2)


def test_run_forever_backs_off_while_idle_and_stops(
    database: Database, clock: ManualClock
) -> None:
    """Idle polls double their wait up to max_idle; stop ends the loop."""
    store = seeded(database, clock, records(aggregates=1, per_aggregate=3))
    stop = threading.Event()
    reports: list[BatchReport] = []

    def hook(report: BatchReport) -> None:
        reports.append(report)
        if len(reports) == 6:
            stop.set()

    relay = OutboxRelay(
        store,
        database.connect,
        lambda r: None,
        clock=clock,
        on_batch=hook,
        poll_interval=0.05,
        max_idle=0.2,
    )
    relay.run_forever(stop)

    assert [r.claimed for r in reports] == [3, 0, 0, 0, 0, 0]
    assert sum(clock.sleeps) == pytest.approx(0.05 + 0.1 + 0.2 + 0.2 + 0.2)
    assert max(clock.sleeps) <= 0.05 + 1e-9


def test_run_forever_survives_a_database_outage(
    database: Database, clock: ManualClock
) -> None:
    """A connect failure is logged and retried; the relay then drains."""
    store = seeded(database, clock, records(aggregates=1, per_aggregate=2))
    stop = threading.Event()
    attempts = {"connect": 0}
    sent: list[OutboxRecord] = []

    def flaky_connect() -> Any:
        attempts["connect"] += 1
        if attempts["connect"] == 1:
            raise OSError("database restarting")
        return database.connect()

    def publish(record: OutboxRecord) -> None:
        sent.append(record)
        if len(sent) == 2:
            stop.set()

    relay = OutboxRelay(store, flaky_connect, publish, clock=clock)
    relay.run_forever(stop)

    assert len(sent) == 2
    assert attempts["connect"] == 2
    assert clock.sleeps


def test_relay_closes_its_connection_as_a_context_manager(tmp_path: Path) -> None:
    """Leaving a ``with`` block closes the connection the relay opened."""
    path = tmp_path / "outbox.db"
    store = SqlOutboxStore("sqlite")
    setup = sqlite3.connect(path)
    store.create_schema(setup)
    store.enqueue(setup, OutboxRecord.create("a-1", "Created", {"n": 1}))
    setup.commit()
    setup.close()
    opened: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        opened.append(sqlite3.connect(path))
        return opened[-1]

    with OutboxRelay(store, connect, lambda record: None) as relay:
        assert relay.run_once().published == 1

    with pytest.raises(sqlite3.ProgrammingError):
        opened[-1].execute("SELECT 1")
