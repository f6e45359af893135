"""A relay process for the outbox scale-out and crash tests.

Run as ``python -m tests.reliability.outbox_worker CONFIG_JSON``. It relays
until the outbox is drained, publishing each record as one row of the ``wire``
table (its "broker"), committed before the relay marks the record.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from typing import Any

from integration_automation_patterns._types import SYSTEM_CLOCK
from integration_automation_patterns.outbox import (
    OutboxRecord,
    OutboxRelay,
    SqlOutboxStore,
)


class OffsetClock:
    """The system clock shifted forward, so a restart sees old leases expired."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def monotonic(self) -> float:
        """Return the system monotonic time."""
        return SYSTEM_CLOCK.monotonic()

    def time(self) -> float:
        """Return the shifted wall-clock time."""
        return SYSTEM_CLOCK.time() + self.offset

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Not used by the relay."""
        raise NotImplementedError


def connector(config: dict[str, Any], database: str) -> Any:
    """Return a connection factory for ``database`` ("outbox" or "wire")."""
    if config["dialect"] == "postgresql":
        import psycopg

        def connect_pg() -> Any:
            # The server stays up in these tests, so commits need not wait for disk.
            options = f"-c search_path={config['schema']} -c synchronous_commit=off"
            return psycopg.connect(config["dsn"], options=options)

        return connect_pg

    def connect_sqlite() -> sqlite3.Connection:
        conn = sqlite3.connect(config[database], timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return connect_sqlite


def wire_publisher(config: dict[str, Any], relay_id: int) -> Any:
    """Return a publish function that appends each record to the wire table.

    With ``kill_after`` set, the process SIGKILLs itself right after that many
    publishes: mid-batch, after the broker has the record, before the mark.
    """
    conn = connector(config, "wire")()
    kill_after = config.get("kill_after")
    sent = [0]
    mark = "%s" if config["dialect"] == "postgresql" else "?"
    values = ", ".join([mark] * 4)
    sql = f"INSERT INTO wire (id, aggregate, n, relay) VALUES ({values})"

    def publish(record: OutboxRecord) -> None:
        cursor = conn.cursor()
        cursor.execute(
            sql, (record.record_id, record.aggregate_id, record.payload["n"], relay_id)
        )
        conn.commit()
        sent[0] += 1
        if sent[0] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    return publish


def drained(store: SqlOutboxStore, connect: Any) -> bool:
    """Return True when nothing is left to publish."""
    conn = connect()
    try:
        stats = store.stats(conn)
    finally:
        conn.close()
    return stats.pending + stats.in_flight == 0


def main(config: dict[str, Any]) -> None:
    """Relay until the outbox is drained."""
    clock = OffsetClock(config["offset"])
    connect = connector(config, "outbox")
    store = SqlOutboxStore(config["dialect"], clock=clock)
    relay = OutboxRelay(
        store,
        connect,
        wire_publisher(config, config["relay_id"]),
        batch_size=config["batch_size"],
        lease_seconds=config["lease_seconds"],
        clock=clock,
    )
    while True:
        if relay.run_once().claimed == 0:
            if drained(store, connect):
                break
            time.sleep(0.005)
    relay.close()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
