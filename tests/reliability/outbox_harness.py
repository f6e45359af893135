"""Set up an outbox and its wire table for relay processes, then check the wire."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from integration_automation_patterns.outbox import OutboxRecord, SqlOutboxStore
from tests.outbox_support import sqlite_factory

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Harness:
    """An outbox database, its wire table and how child relays reach them."""

    dialect: str
    config: dict[str, Any]
    connect: Any
    wire_connect: Any
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def seed(self, total: int, aggregates: int, seed: int = 7) -> list[OutboxRecord]:
        """Enqueue ``total`` records spread at random over ``aggregates``."""
        rng = random.Random(seed)
        counters: dict[str, int] = defaultdict(int)
        items = []
        for _ in range(total):
            aggregate = f"agg-{rng.randrange(aggregates)}"
            items.append(OutboxRecord(aggregate, "Changed", {"n": counters[aggregate]}))
            counters[aggregate] += 1
        conn = self.connect()
        store = SqlOutboxStore(self.dialect)
        store.create_schema(conn)
        store.enqueue_many(conn, items)
        conn.commit()
        conn.close()
        return items

    def start(self, relay_id: int, **overrides: Any) -> subprocess.Popen[bytes]:
        """Start one relay process."""
        config = {**self.config, "relay_id": relay_id, **overrides}
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability.outbox_worker",
                json.dumps(config),
            ],
            cwd=ROOT,
        )
        self.children.append(child)
        return child

    def wire(self) -> list[tuple[str, str, int]]:
        """Return every published (id, aggregate, n), in publish order."""
        conn = self.wire_connect()
        cursor = conn.cursor()
        cursor.execute("SELECT id, aggregate, n FROM wire ORDER BY seq")
        rows = [(str(a), str(b), int(c)) for a, b, c in cursor.fetchall()]
        conn.close()
        return rows

    def stop_all(self) -> None:
        """Kill any relay still running."""
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait()


def first_delivery_in_order(wire: list[tuple[str, str, int]]) -> bool:
    """Return True when each aggregate's first deliveries come in enqueue order."""
    seen: set[str] = set()
    last: dict[str, int] = {}
    for record_id, aggregate, n in wire:
        if record_id in seen:
            continue
        seen.add(record_id)
        if n != last.get(aggregate, -1) + 1:
            return False
        last[aggregate] = n
    return True


def make_harness(
    request: pytest.FixtureRequest, tmp_path: Path, lease_seconds: float
) -> Harness:
    """Build the harness for the dialect the test is parametrised with."""
    dialect: str = request.param
    base = {"dialect": dialect, "offset": 0.0, "lease_seconds": lease_seconds}
    if dialect == "sqlite":
        config = {
            **base,
            "outbox": str(tmp_path / "outbox.db"),
            "wire": str(tmp_path / "wire.db"),
        }
        connect, wire_connect = (
            sqlite_factory(tmp_path / "outbox.db"),
            sqlite_factory(tmp_path / "wire.db"),
        )
        serial = "INTEGER PRIMARY KEY"
    else:
        connect = request.getfixturevalue("postgres_connect")
        probe = connect()
        schema = probe.execute("SELECT current_schema()").fetchone()[0]
        probe.close()
        dsn = request.getfixturevalue("postgres_dsn")
        config = {**base, "dsn": dsn, "schema": schema}
        wire_connect = connect
        serial = "BIGSERIAL PRIMARY KEY"
    conn = wire_connect()
    conn.cursor().execute(
        f"CREATE TABLE wire (seq {serial}, id TEXT NOT NULL,"
        " aggregate TEXT NOT NULL, n INTEGER NOT NULL, relay INTEGER NOT NULL)"
    )
    conn.commit()
    conn.close()
    return Harness(dialect, config, connect, wire_connect)
