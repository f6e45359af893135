"""Transactional outbox + inbox on SQLite: no lost events, no double effects.

An account service writes its business row and its outbox record in ONE
transaction, so a rolled-back change leaves no event behind. Relay A claims a
batch under a 30 s lease, publishes two records and crashes before marking
them. Once the lease expires relay B claims the same records and publishes
everything (at least once: two messages now arrive twice). When relay A wakes
up, its stale fencing token changes nothing. The consumer applies each message
through an ``Inbox`` in its own transaction, so the duplicates change nothing;
and a message id that comes back with a different payload is refused. A
``ManualClock`` moves time past the lease.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.outbox import (
    IdempotencyConflictError,
    Inbox,
    OutboxRecord,
    OutboxRelay,
    SqlOutboxStore,
)


def open_accounts(path: Path, store: SqlOutboxStore) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE accounts (id TEXT PRIMARY KEY, tier TEXT)")
    store.create_schema(conn)
    conn.commit()
    return conn


def change_tier(
    conn: sqlite3.Connection,
    store: SqlOutboxStore,
    account: str,
    tier: str,
    *,
    fail: bool = False,
) -> None:
    """Update the account and enqueue its event in one transaction."""
    with conn:
        conn.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?)", (account, tier))
        store.enqueue(conn, OutboxRecord.create(account, "TierChanged", {"tier": tier}))
        if fail:
            raise RuntimeError("validation failed after the write")


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="iap-outbox-") as folder:
        return run(Path(folder))


def run(folder: Path) -> dict[str, Any]:
    clock = ManualClock(start=1_700_000_000.0)
    store = SqlOutboxStore("sqlite", clock=clock)
    producer = open_accounts(folder / "accounts.db", store)

    for account, tier in [
        ("acc-1", "gold"),
        ("acc-2", "silver"),
        ("acc-1", "platinum"),
    ]:
        change_tier(producer, store, account, tier)
    try:
        change_tier(producer, store, "acc-3", "bronze", fail=True)
    except RuntimeError:
        print("  acc-3: the transaction rolled back, and its event with it")

    broker: list[dict[str, Any]] = []

    # Relay A claims everything, publishes two records, then dies unmarked.
    claim = store.claim(producer, 10, lease_seconds=30)
    producer.commit()
    for record in claim.records[:2]:
        broker.append(record.to_event_dict())
    print(f"  relay A claimed {len(claim)} and crashed after publishing 2")

    clock.advance(31)  # the lease expires
    relay_b = OutboxRelay(
        store,
        lambda: sqlite3.connect(folder / "accounts.db"),
        lambda record: broker.append(record.to_event_dict()),
        clock=clock,
    )
    report = relay_b.run_once()
    relay_b.close()
    print(f"  relay B: claimed {report.claimed}, published {report.published}")

    fenced_marks = store.mark_published(
        producer, [r.record_id for r in claim], claim.token
    )
    producer.commit()
    print(f"  relay A wakes up; its stale token marks {fenced_marks} records")

    consumer = sqlite3.connect(folder / "crm.db")
    inbox = Inbox("sqlite", clock=clock)
    inbox.create_schema(consumer)
    consumer.execute("CREATE TABLE tiers (account TEXT PRIMARY KEY, tier TEXT)")
    consumer.execute("CREATE TABLE effects (record_id TEXT)")

    def apply(event: dict[str, Any]) -> bool:
        def handler(conn: Any) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO tiers VALUES (?, ?)",
                (event["aggregate_id"], event["payload"]["tier"]),
            )
            conn.execute("INSERT INTO effects VALUES (?)", (event["record_id"],))

        with consumer:
            return inbox.process(
                consumer,
                event["record_id"],
                handler,
                consumer="crm",
                payload_hash=str(event["payload"]),
            )

    outcomes = [apply(event) for event in broker]
    print(
        f"  consumer: {outcomes.count(True)} applied,"
        f" {outcomes.count(False)} duplicates dropped"
    )

    tampered = {**broker[0], "payload": {"tier": "diamond"}}
    try:
        apply(tampered)
        conflict = False
    except IdempotencyConflictError as exc:
        conflict = True
        print(f"  refused: {exc}")

    stats = store.stats(producer)
    result = {
        "events_enqueued": producer.execute("SELECT COUNT(*) FROM outbox").fetchone()[
            0
        ],
        "deliveries": len(broker),
        "applied": outcomes.count(True),
        "duplicates_dropped": outcomes.count(False),
        "fenced_marks": fenced_marks,
        "published": stats.published,
        "pending": stats.pending,
        "effects": consumer.execute("SELECT COUNT(*) FROM effects").fetchone()[0],
        "tiers": dict(consumer.execute("SELECT account, tier FROM tiers").fetchall()),
        "conflict_refused": conflict,
    }
    producer.close()
    consumer.close()
    return result


if __name__ == "__main__":
    print(main())
