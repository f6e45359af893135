"""SqlOutboxStore on real SQLite and PostgreSQL: schema, claims, fencing, operations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from integration_automation_patterns._types import ManualClock, RetryPolicy
from integration_automation_patterns.outbox import (
    OutboxError,
    OutboxRecord,
    OutboxStatus,
    SqlOutboxStore,
)
from tests.outbox_support import Database, database, records

__all__ = ["database"]

FAST = RetryPolicy(max_attempts=3, backoff_seconds=10, max_backoff_seconds=100)


def enqueue(db: Database, store: SqlOutboxStore, items: list[OutboxRecord]) -> None:
    conn = db.connect()
    store.enqueue_many(conn, items)
    conn.commit()


def claim_ids(db: Database, store: SqlOutboxStore, limit: int) -> tuple[str, list[str]]:
    conn = db.connect()
    batch = store.claim(conn, limit)
    conn.commit()
    return batch.token, [r.record_id for r in batch]


def column_names(db: Database, table: str) -> list[str]:
    conn = db.connect()
    cursor = conn.cursor()
    cursor.execute(f"SELECT * FROM {table} WHERE 1 = 0")
    names = [d[0] for d in cursor.description]
    conn.rollback()
    return names


def test_schema_is_idempotent_and_debezium_shaped(
    database: Database, clock: ManualClock
) -> None:
    """create_schema runs twice and leads with Debezium's outbox columns."""
    store = database.store(clock)
    conn = database.connect()
    store.create_schema(conn)
    conn.commit()

    names = column_names(database, "outbox")
    assert names[:5] == ["id", "aggregatetype", "aggregateid", "type", "payload"]


def test_enqueue_joins_the_callers_transaction(
    database: Database, clock: ManualClock
) -> None:
    """A rolled-back business transaction takes its outbox record with it."""
    store = database.store(clock)
    conn = database.connect()
    store.enqueue(conn, OutboxRecord.create("a", "Dropped", {"x": 1}))
    conn.rollback()
    store.enqueue(conn, OutboxRecord.create("a", "Kept", {"x": 2}))
    conn.commit()

    batch = store.claim(database.connect(), 10)
    assert [r.event_type for r in batch] == ["Kept"]


def test_claim_round_trips_every_field(database: Database, clock: ManualClock) -> None:
    """A claimed record carries what was enqueued, plus its lease token."""
    store = database.store(clock)
    original = OutboxRecord.create(
        "acct-1",
        "AccountOpened",
        {"name": "Zoë", "limits": [1, 2.5, None], "ok": True},
        aggregate_type="account",
        headers={"traceparent": "00-abc-def-01"},
        clock=clock,
    )
    enqueue(database, store, [original])

    conn = database.connect()
    batch = store.claim(conn, 5, lease_seconds=60)
    (got,) = batch.records
    assert got.record_id == original.record_id
    assert got.payload == original.payload
    assert got.headers == original.headers
    assert got.aggregate_type == "account"
    assert got.created_at == original.created_at
    assert got.status is OutboxStatus.PENDING
    assert got.lease_token == batch.token
    assert batch.leased_until == clock.time() + 60
    assert got.to_event_dict() == original.to_event_dict()


def test_claim_keeps_order_and_lets_one_aggregate_fill_a_batch(
    database: Database, clock: ManualClock
) -> None:
    """Records come oldest first; a busy aggregate fills the batch in order."""
    store = database.store(clock)
    busy = [OutboxRecord.create("busy", "E", {"n": n}) for n in range(8)]
    quiet = OutboxRecord.create("quiet", "E", {"n": 0})
    enqueue(database, store, [*busy, quiet])

    _, first = claim_ids(database, store, 5)
    assert first == [r.record_id for r in busy[:5]]

    _, second = claim_ids(database, store, 5)
    assert second == [quiet.record_id]


def test_claim_skips_an_aggregate_leased_elsewhere(
    database: Database, clock: ManualClock
) -> None:
    """No record is taken while an earlier one of its aggregate is leased."""
    store = database.store(clock)
    items = records(aggregates=2, per_aggregate=3)
    enqueue(database, store, items)

    token, first = claim_ids(database, store, 3)
    assert first == [r.record_id for r in items[:3]]

    assert claim_ids(database, store, 10)[1] == []

    conn = database.connect()
    store.mark_published(conn, first, token)
    conn.commit()
    assert claim_ids(database, store, 10)[1] == [r.record_id for r in items[3:]]


def test_expired_lease_is_claimed_again(database: Database, clock: ManualClock) -> None:
    """A relay that died keeps its records only until the lease runs out."""
    store = database.store(clock)
    enqueue(database, store, records(aggregates=1, per_aggregate=2))
    _, first = claim_ids(database, store, 10)

    clock.advance(29)
    assert claim_ids(database, store, 10)[1] == []
    clock.advance(1)
    assert claim_ids(database, store, 10)[1] == first


def test_marks_from_a_fenced_relay_change_nothing(
    database: Database, clock: ManualClock
) -> None:
    """After another relay re-claims, the old token's marks are no-ops."""
    store = database.store(clock)
    enqueue(database, store, records(aggregates=1, per_aggregate=2))
    old_token, ids = claim_ids(database, store, 10)
    clock.advance(31)
    new_token, again = claim_ids(database, store, 10)
    assert again == ids

    conn = database.connect()
    assert store.mark_published(conn, ids, old_token) == 0
    assert store.mark_failed(conn, ids[0], "boom", old_token) is None
    assert store.release(conn, ids, old_token) == 0
    assert store.mark_published(conn, ids, new_token) == 2
    conn.commit()
    assert store.stats(conn).published == 2


def test_failure_backs_off_then_dies_and_blocks_only_its_aggregate(
    database: Database, clock: ManualClock
) -> None:
    """Retries wait per the policy; a dead record holds back its aggregate only."""
    store = database.store(clock)
    poison = OutboxRecord.create("poison", "E", {"n": 0})
    after = OutboxRecord.create("poison", "E", {"n": 1})
    other = OutboxRecord.create("other", "E", {"n": 0})
    enqueue(database, store, [poison, after, other])

    for attempt, wait in ((1, 10.0), (2, 20.0)):
        token, ids = claim_ids(database, store, 1)
        assert ids == [poison.record_id]
        conn = database.connect()
        status = store.mark_failed(
            conn, poison.record_id, "down", token, retry_policy=FAST
        )
        conn.commit()
        assert status is OutboxStatus.PENDING
        assert store.get(conn, poison.record_id).attempt_count == attempt  # type: ignore[union-attr]
        assert claim_ids(database, store, 1)[1] == [other.record_id] * (attempt == 1)
        clock.advance(wait)

    token, _ = claim_ids(database, store, 1)
    conn = database.connect()
    assert store.mark_failed(
        conn, poison.record_id, "down", token, retry_policy=FAST
    ) is (OutboxStatus.DEAD)
    conn.commit()
    clock.advance(10_000)
    assert claim_ids(database, store, 10)[1] == [other.record_id]
    stats = store.stats(conn)
    assert (stats.dead, stats.blocked_aggregates) == (1, 1)
    assert [r.record_id for r in store.dead(conn)] == [poison.record_id]


def test_requeue_resumes_the_aggregate_in_order(
    database: Database, clock: ManualClock
) -> None:
    """Requeuing a dead record lets its aggregate continue from that record."""
    store = database.store(clock)
    items = records(aggregates=1, per_aggregate=2)
    enqueue(database, store, items)
    token, _ = claim_ids(database, store, 1)
    conn = database.connect()
    store.mark_failed(
        conn, items[0].record_id, "bad", token, retry_policy=RetryPolicy(1)
    )
    conn.commit()

    assert store.requeue_dead(conn, [items[0].record_id]) == 1
    conn.commit()
    assert claim_ids(database, store, 10)[1] == [r.record_id for r in items]


def test_discard_unblocks_the_aggregate(database: Database, clock: ManualClock) -> None:
    """Discarding a dead record deletes it and frees the records behind it."""
    store = database.store(clock)
    items = records(aggregates=1, per_aggregate=2)
    enqueue(database, store, items)
    token, _ = claim_ids(database, store, 1)
    conn = database.connect()
    store.mark_failed(
        conn, items[0].record_id, "bad", token, retry_policy=RetryPolicy(1)
    )
    conn.commit()

    assert store.discard_dead(conn) == 1
    conn.commit()
    assert store.get(conn, items[0].record_id) is None
    assert claim_ids(database, store, 10)[1] == [items[1].record_id]


def test_purge_deletes_only_old_published_records(
    database: Database, clock: ManualClock
) -> None:
    """purge_published keeps pending and recently published records."""
    store = database.store(clock)
    items = records(aggregates=3, per_aggregate=1)
    enqueue(database, store, items)
    token, ids = claim_ids(database, store, 2)
    conn = database.connect()
    store.mark_published(conn, ids, token)
    conn.commit()

    clock.advance(100)
    assert store.purge_published(conn, timedelta(seconds=101)) == 0
    assert store.purge_published(conn, 99) == 2
    conn.commit()
    stats = store.stats(conn)
    assert (stats.published, stats.pending) == (0, 1)


def test_stats_counts_states_and_oldest_age(
    database: Database, clock: ManualClock
) -> None:
    """stats reports pending, in-flight and the age of the oldest pending record."""
    store = database.store(clock)
    created = datetime.fromtimestamp(clock.time(), timezone.utc)
    enqueue(
        database,
        store,
        [OutboxRecord(f"a{n}", "E", {}, created_at=created) for n in range(3)],
    )
    claim_ids(database, store, 1)
    clock.advance(20)

    stats = store.stats(database.connect())
    assert (stats.pending, stats.in_flight, stats.dead) == (2, 1, 0)
    assert stats.oldest_pending_age == pytest.approx(20)
    assert stats.to_dict()["pending"] == 2


def test_undecodable_row_is_buried_without_blocking_others(
    database: Database, clock: ManualClock
) -> None:
    """A corrupt payload is marked dead at claim; other aggregates flow."""
    store = database.store(clock)
    items = records(aggregates=2, per_aggregate=1)
    enqueue(database, store, items)
    conn = database.connect()
    cursor = conn.cursor()
    mark = "%s" if database.dialect == "postgresql" else "?"
    sql = f"UPDATE outbox SET payload = 'not json' WHERE id = {mark}"
    cursor.execute(sql, (items[0].record_id,))
    conn.commit()

    assert claim_ids(database, store, 10)[1] == [items[1].record_id]
    (dead,) = store.dead(conn)
    assert dead.record_id == items[0].record_id
    assert "payload is not valid JSON" in (dead.last_error or "")


def test_bad_payload_is_refused_with_the_field_named(
    database: Database, clock: ManualClock
) -> None:
    """A payload json cannot encode raises a ValueError naming the field."""
    store = database.store(clock)
    bad = OutboxRecord("a", "E", {"when": datetime.now(timezone.utc)})

    with pytest.raises(ValueError, match="payload is not JSON-serialisable") as info:
        store.enqueue(database.connect(), bad)
    assert isinstance(info.value, OutboxError)
    assert isinstance(info.value.__cause__, TypeError)


@pytest.mark.parametrize("table", ["outbox; DROP TABLE x", "1abc", ""])
def test_table_names_are_checked(table: str) -> None:
    """A table name that is not an identifier is refused up front."""
    with pytest.raises(ValueError, match="table must be"):
        SqlOutboxStore("sqlite", table=table)


def test_unknown_dialect_is_refused() -> None:
    """Only the two supported dialects are accepted."""
    with pytest.raises(ValueError, match="dialect"):
        SqlOutboxStore("mysql")
