"""A Debezium consumer keeps a customer read model: TOAST, redelivery, tombstones.

The records are what Debezium's PostgreSQL connector writes to Kafka for the
``inventory.customers`` table: a snapshot read, an insert, an update whose
large ``biography`` column was not changed (so PostgreSQL did not send it and
Debezium put its unavailable-value placeholder there), the same update again
(Kafka delivers at least once), a delete and the tombstone that follows it.
The consumer keys the read model by the record key, fills the placeholder
from the row it already holds with ``merged_after``, skips the redelivery by
its derived ``event_id`` (the same input always gives the same id), and
treats the tombstone as the compaction marker it is.
"""

from __future__ import annotations

import json
from typing import Any

from integration_automation_patterns.cdc_event import (
    DEFAULT_UNAVAILABLE_PLACEHOLDER,
    CDCEvent,
    CDCOperation,
)

BIO = "Dana has written about databases since 1999. " * 40


def change(op: str, lsn: int, before: Any, after: Any) -> bytes:
    """Return one Debezium change event value, as the JSON Kafka carries."""
    source: dict[str, Any] = {
        "version": "2.5.0.Final",
        "connector": "postgresql",
        "name": "dbserver1",
        "ts_ms": 1_700_000_000_000 + lsn,
        "snapshot": "true" if op == "r" else "false",
        "db": "sourcedb",
        "schema": "inventory",
        "table": "customers",
        "txId": 700 + lsn,
        "lsn": 34_650_000 + lsn,
    }
    message = {"before": before, "after": after, "source": source, "op": op}
    return json.dumps({**message, "ts_ms": source["ts_ms"] + 5}).encode()


def records() -> list[tuple[bytes, bytes | None]]:
    dana = {"id": 1004, "email": "dana@example.com", "biography": BIO}
    moved = {
        **dana,
        "email": "dana@new.example",
        "biography": DEFAULT_UNAVAILABLE_PLACEHOLDER,
    }
    lee = {"id": 1005, "email": "lee@example.com", "biography": "short"}
    update = change("u", 3, {"id": 1004}, moved)  # replica identity DEFAULT
    return [
        (b'{"id": 1004}', change("r", 1, None, dana)),
        (b'{"id": 1005}', change("c", 2, None, lee)),
        (b'{"id": 1004}', update),
        (b'{"id": 1004}', update),  # redelivered after a consumer restart
        (b'{"id": 1005}', change("d", 4, {"id": 1005}, None)),
        (b'{"id": 1005}', None),  # the tombstone
    ]


def main() -> dict[str, Any]:
    read_model: dict[int, dict[str, Any]] = {}
    seen: set[str] = set()
    counts = {"applied": 0, "duplicates": 0, "tombstones": 0}

    for key, value in records():
        event = CDCEvent.from_debezium(value, key=key)
        assert event.key is not None
        row_id = int(event.key["id"])
        if event.event_id in seen:
            counts["duplicates"] += 1
            print(f"  {event.operation.value:<9} id={row_id} seen before, skipped")
            continue
        seen.add(event.event_id)

        if event.operation is CDCOperation.TOMBSTONE:
            counts["tombstones"] += 1
            print(f"  TOMBSTONE id={row_id} nothing to apply (compaction marker)")
            continue
        if event.operation is CDCOperation.DELETE:
            read_model.pop(row_id, None)
        else:
            assert event.after is not None
            previous = read_model.get(row_id, {})
            read_model[row_id] = (
                event.merged_after(previous)
                if event.unavailable_fields
                else event.after
            )
        counts["applied"] += 1
        kept = sorted(event.unavailable_fields)
        extra = f", kept {kept} from the read model" if kept else ""
        changed = sorted(event.changed_fields())
        print(
            f"  {event.operation.value:<9} id={row_id} applied{extra}"
            + (f", changed {changed}" if changed else "")
        )

    return {"read_model": read_model, "seen_ids": len(seen), **counts}


if __name__ == "__main__":
    result = main()
    print({k: v for k, v in result.items() if k != "read_model"})
    print({i: row["email"] for i, row in result["read_model"].items()})
