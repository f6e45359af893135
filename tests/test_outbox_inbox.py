"""Inbox on real SQLite and PostgreSQL: effects apply once per message id."""

from __future__ import annotations

from typing import Any

import pytest

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.outbox import (
    IdempotencyConflictError,
    Inbox,
    OutboxError,
)
from tests.outbox_support import Database, database

__all__ = ["database"]


def effects_table(db: Database) -> None:
    conn = db.connect()
    conn.cursor().execute("CREATE TABLE effects (message_id TEXT, amount INTEGER)")
    conn.commit()


def credit(message_id: str, amount: int, dialect: str) -> Any:
    mark = "%s" if dialect == "postgresql" else "?"

    def handler(conn: Any) -> None:
        conn.cursor().execute(
            f"INSERT INTO effects VALUES ({mark}, {mark})", (message_id, amount)
        )

    return handler


def total(db: Database) -> int:
    conn = db.connect()
    cursor = conn.cursor()
    cursor.execute("SELECT COALESCE(SUM(amount), 0) FROM effects")
    value = int(cursor.fetchone()[0])
    conn.rollback()
    return value


def test_duplicate_delivery_applies_once(
    database: Database, clock: ManualClock
) -> None:
    """The handler runs for a new id and is skipped for a redelivery."""
    inbox = database.inbox(clock)
    effects_table(database)
    conn = database.connect()

    assert inbox.process(conn, "m1", credit("m1", 5, database.dialect))
    conn.commit()
    assert not inbox.process(conn, "m1", credit("m1", 5, database.dialect))
    conn.commit()
    assert total(database) == 5


def test_consumers_keep_separate_ids(database: Database, clock: ManualClock) -> None:
    """The same id is new for each consumer name."""
    inbox = database.inbox(clock)
    effects_table(database)
    conn = database.connect()

    assert inbox.process(conn, "m1", credit("m1", 1, database.dialect), consumer="a")
    assert inbox.process(conn, "m1", credit("m1", 1, database.dialect), consumer="b")
    conn.commit()
    assert total(database) == 2


def test_failed_handler_rolls_back_the_id(
    database: Database, clock: ManualClock
) -> None:
    """A handler error rolled back with its transaction leaves the id unseen."""
    inbox = database.inbox(clock)
    effects_table(database)
    conn = database.connect()

    def broken(c: Any) -> None:
        credit("m1", 7, database.dialect)(c)
        raise RuntimeError("handler bug")

    with pytest.raises(RuntimeError, match="handler bug"):
        inbox.process(conn, "m1", broken)
    conn.rollback()
    assert inbox.process(conn, "m1", credit("m1", 3, database.dialect))
    conn.commit()
    assert total(database) == 3


def test_same_id_with_other_payload_conflicts(
    database: Database, clock: ManualClock
) -> None:
    """A reused id with a different payload hash raises IdempotencyConflictError."""
    inbox = database.inbox(clock)
    conn = database.connect()
    inbox.process(conn, "m1", lambda c: None, payload_hash="aaa")
    conn.commit()

    assert not inbox.process(conn, "m1", pytest.fail, payload_hash="aaa")
    with pytest.raises(IdempotencyConflictError, match="different payload") as info:
        inbox.process(conn, "m1", pytest.fail, payload_hash="bbb")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, OutboxError)


def test_purge_forgets_old_ids_and_checks_retention(
    database: Database, clock: ManualClock
) -> None:
    """purge deletes old ids and refuses a retention under the relay horizon."""
    inbox = database.inbox(clock)
    conn = database.connect()
    inbox.process(conn, "old", lambda c: None)
    clock.advance(100)
    inbox.process(conn, "new", lambda c: None)
    conn.commit()

    with pytest.raises(ValueError, match="shorter than the relay's retry horizon"):
        inbox.purge(conn, 50, relay_horizon=60)
    assert inbox.purge(conn, 50, relay_horizon=50) == 1
    conn.commit()
    assert inbox.process(conn, "old", lambda c: None)
    assert not inbox.process(conn, "new", pytest.fail)


def test_empty_message_id_is_refused(clock: ManualClock) -> None:
    """An empty id is an input error, not a silent insert."""
    with pytest.raises(ValueError, match="message_id"):
        Inbox("sqlite", clock=clock).process(object(), "", pytest.fail)
