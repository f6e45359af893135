"""The 0.2.0 outbox API: OutboxRecord and OutboxProcessor keep working."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import pytest

from integration_automation_patterns._types import Jitter, ManualClock, RetryPolicy
from integration_automation_patterns.outbox import (
    OutboxProcessor,
    OutboxRecord,
    OutboxStatus,
    retry_horizon,
)


def test_record_defaults_match_0_2_0() -> None:
    """Positional fields and defaults are the 0.2.0 ones."""
    record = OutboxRecord("acct-1", "AccountUpdated", {"a": 1})

    uuid.UUID(record.record_id)
    assert record.created_at.tzinfo is not None
    assert record.published_at is None
    assert record.attempt_count == 0
    assert record.last_error is None
    assert record.is_pending
    assert record.status is OutboxStatus.PENDING


def test_create_and_event_dict() -> None:
    """create() builds a pending record whose event dict has the five 0.2.0 keys."""
    clock = ManualClock(1_700_000_000.0)
    record = OutboxRecord.create("acct-1", "AccountUpdated", {"a": 1}, clock=clock)
    event = record.to_event_dict()

    assert set(event) == {
        "record_id",
        "aggregate_id",
        "event_type",
        "payload",
        "created_at",
    }
    assert event["created_at"] == "2023-11-14T22:13:20+00:00"
    assert json.loads(json.dumps(event)) == event


def test_published_or_dead_record_is_not_pending() -> None:
    """is_pending turns False once published_at is set or the record is dead."""
    published = OutboxRecord("a", "E", {}, published_at=datetime.now(timezone.utc))
    dead = OutboxRecord("a", "E", {}, status=OutboxStatus.DEAD)

    assert not published.is_pending
    assert not dead.is_pending


def test_processor_counts_published_and_failed() -> None:
    """process_batch publishes event dicts and reports (published, failed)."""
    records = [OutboxRecord.create("a", "E", {"n": n}) for n in range(3)]
    sent: list[dict[str, Any]] = []
    marked: list[str] = []
    failures: list[tuple[str, str, int]] = []

    def publish(event: dict[str, Any]) -> None:
        if event["payload"]["n"] == 1:
            raise ConnectionError("broker down")
        sent.append(event)

    processor = OutboxProcessor(
        fetch_pending=lambda n: records[:n],
        publish=publish,
        mark_published=marked.append,
        mark_failed=lambda *args: failures.append(args),
    )

    assert processor.process_batch(batch_size=10) == (2, 1)
    assert [e["payload"]["n"] for e in sent] == [0, 2]
    assert marked == [records[0].record_id, records[2].record_id]
    assert failures == [(records[1].record_id, "broker down", 1)]


def test_processor_survives_a_broken_mark_failed() -> None:
    """A raising mark_failed is logged and does not stop the batch."""
    records = [OutboxRecord.create("a", "E", {}) for _ in range(2)]

    def boom(*_: object) -> None:
        raise RuntimeError("db gone")

    def refuse(_: dict[str, Any]) -> None:
        raise ConnectionError("no")

    processor = OutboxProcessor(lambda n: records, refuse, lambda _: None, boom)
    assert processor.process_batch() == (0, 2)


@pytest.mark.parametrize("empty", [[], (), None])
def test_processor_on_empty_outbox(empty: Sequence[OutboxRecord] | None) -> None:
    """An empty fetch, None included as in 0.2.0, returns (0, 0) unpublished."""
    calls: list[object] = []
    processor = OutboxProcessor(lambda n: empty, calls.append, calls.append)
    assert processor.process_batch() == (0, 0)
    assert calls == []


@pytest.mark.parametrize(
    ("policy", "lease", "expected"),
    [
        (RetryPolicy(3, 10, max_backoff_seconds=1000), 5, 10 + 20 + 15),
        (RetryPolicy(1, 10), 30, 30),
        (RetryPolicy(3, 10, max_backoff_seconds=15, jitter=Jitter.DECORRELATED), 0, 30),
        (RetryPolicy(3, 10, max_backoff_seconds=1000, jitter=Jitter.FULL), 0, 30),
    ],
)
def test_retry_horizon_bounds_every_redelivery(
    policy: RetryPolicy, lease: float, expected: float
) -> None:
    """The horizon adds every retry's longest wait and every attempt's lease."""
    assert retry_horizon(policy, lease) == expected
