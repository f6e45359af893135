"""Shared helpers for the outbox tests: one database per dialect."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.outbox import (
    Inbox,
    OutboxRecord,
    SqlOutboxStore,
)

DIALECTS = ["sqlite", "postgresql"]


@dataclass
class Database:
    """A dialect name, a connection factory and the connections it opened."""

    dialect: str
    factory: Callable[[], Any]
    opened: list[Any]

    def connect(self) -> Any:
        """Open a new connection and remember it for cleanup."""
        conn = self.factory()
        self.opened.append(conn)
        return conn

    def store(self, clock: Any, table: str = "outbox") -> SqlOutboxStore:
        """Create an outbox table on this database and return its store."""
        store = SqlOutboxStore(self.dialect, table=table, clock=clock)
        conn = self.connect()
        store.create_schema(conn)
        conn.commit()
        return store

    def inbox(self, clock: Any, table: str = "inbox") -> Inbox:
        """Create an inbox table on this database and return it."""
        inbox = Inbox(self.dialect, table=table, clock=clock)
        conn = self.connect()
        inbox.create_schema(conn)
        conn.commit()
        return inbox


def sqlite_factory(path: Path) -> Callable[[], Any]:
    """Return a factory of SQLite connections to ``path`` in WAL mode."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return connect


def open_database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """Build the Database for the dialect the test is parametrised with."""
    dialect: str = request.param
    if dialect == "sqlite":
        return Database(dialect, sqlite_factory(tmp_path / "outbox.db"), [])
    connect = request.getfixturevalue("postgres_connect")
    return Database(dialect, connect, [])


@pytest.fixture(params=DIALECTS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A real database of each dialect; connections are closed afterwards."""
    db = open_database(request, tmp_path)
    yield db
    for conn in db.opened:
        conn.close()


def records(aggregates: int, per_aggregate: int) -> list[OutboxRecord]:
    """Return records interleaved over aggregates, numbered in payload ``n``."""
    return [
        OutboxRecord(f"agg-{a}", "Changed", {"n": n, "agg": f"agg-{a}"})
        for n in range(per_aggregate)
        for a in range(aggregates)
    ]


def seeded(
    db: Database, clock: ManualClock, items: list[OutboxRecord]
) -> SqlOutboxStore:
    """Create the outbox and enqueue ``items`` in one committed transaction."""
    store = db.store(clock)
    conn = db.connect()
    store.enqueue_many(conn, items)
    conn.commit()
    return store


def unique_table(prefix: str) -> str:
    """Return a fresh table name, for tests that need several tables."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"
