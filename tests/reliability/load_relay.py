"""A relay process for the outbox load test.

Run as ``python -m tests.reliability.load_relay CONFIG_JSON``. It relays from
a PostgreSQL outbox until the outbox is drained. Each publish notes the
system-wide monotonic time, the record and its aggregate sequence number in
memory; the notes are written to ``out`` at the end, so the "broker" costs the
relay nothing and the figures measure the outbox itself.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import psycopg

from integration_automation_patterns.outbox import (
    OutboxRecord,
    OutboxRelay,
    SqlOutboxStore,
)


def main(config: dict[str, Any]) -> None:
    """Relay until nothing is pending or in flight, then write the notes."""
    options = f"-c search_path={config['schema']} -c synchronous_commit=off"

    def connect() -> Any:
        return psycopg.connect(config["dsn"], options=options)

    notes: list[tuple[int, str, str, int]] = []

    def publish(record: OutboxRecord) -> None:
        notes.append(
            (
                time.monotonic_ns(),
                record.record_id,
                record.aggregate_id,
                record.payload["n"],
            )
        )

    store = SqlOutboxStore("postgresql")
    relay = OutboxRelay(store, connect, publish, batch_size=config["batch_size"])
    watcher = connect()
    while True:
        if relay.run_once().claimed == 0:
            stats = store.stats(watcher)
            watcher.commit()
            if stats.pending + stats.in_flight == 0:
                break
            time.sleep(0.005)
    relay.close()
    watcher.close()
    with open(config["out"], "w", encoding="utf-8") as out:
        json.dump(notes, out)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
