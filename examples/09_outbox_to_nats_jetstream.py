"""Outbox on PostgreSQL relayed to NATS JetStream, de-duplicated by record id.

A billing service writes invoices and their outbox records in one PostgreSQL
transaction. The relay publishes each record to JetStream and waits for the
stream's ack (``js.publish`` raises when none comes, so the relay retries).
Every publish carries the header ``Nats-Msg-Id: <record_id>``. Relay A claims
the batch, publishes two records and crashes before marking them; once its
lease has expired (a ``ManualClock``), relay B publishes all three. JetStream
recognises the two ids it has already stored inside its duplicate window and
acks them as duplicates without storing them again, so the stream holds each
invoice event once and a pull consumer reads three messages, in order.

The relay is synchronous and nats-py is asyncio: the adapter drives a private
event loop. Run it with NATS (JetStream enabled) on 127.0.0.1:4222 and
PostgreSQL at ``IAP_POSTGRES_DSN``.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import nats
import psycopg

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.outbox import (
    OutboxRecord,
    OutboxRelay,
    SqlOutboxStore,
)

NATS_URL = "nats://127.0.0.1:4222"
DSN = os.environ.get("IAP_POSTGRES_DSN", "postgresql://root@127.0.0.1:5432/test")


class JetStreamPublisher:
    """The caller's adapter: an ack'd JetStream publish per outbox record."""

    def __init__(self, url: str, run: str) -> None:
        self.stream = f"INVOICES_{run}"
        self.subject = f"invoices.{run}"
        self.acks: list[Any] = []
        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(nats.connect(url, connect_timeout=3))
        self.js = self.nc.jetstream()
        self.loop.run_until_complete(
            self.js.add_stream(name=self.stream, subjects=[f"{self.subject}.>"])
        )

    def __call__(self, record: OutboxRecord) -> None:
        """Publish and wait for the stream's ack; raise if none comes."""
        ack = self.loop.run_until_complete(
            self.js.publish(
                f"{self.subject}.{record.aggregate_id}",
                json.dumps(record.to_event_dict()).encode(),
                timeout=3,
                stream=self.stream,
                headers={"Nats-Msg-Id": record.record_id},
            )
        )
        self.acks.append(ack)

    def read_all(self) -> tuple[int, list[dict[str, Any]]]:
        """Return the stream's message count and every message, via a pull consumer."""
        return self.loop.run_until_complete(self._read_all())

    async def _read_all(self) -> tuple[int, list[dict[str, Any]]]:
        info = await self.js.stream_info(self.stream)
        consumer = await self.js.pull_subscribe(f"{self.subject}.>", stream=self.stream)
        messages = await consumer.fetch(info.state.messages, timeout=3)
        for message in messages:
            await message.ack()
        return info.state.messages, [json.loads(m.data) for m in messages]

    def close(self) -> None:
        self.loop.run_until_complete(self.js.delete_stream(self.stream))
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()


def main(
    connect: Callable[[], Any] | None = None, nats_url: str = NATS_URL
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    connect = connect or (lambda: psycopg.connect(DSN))
    clock = ManualClock(start=1_700_000_000.0)
    store = SqlOutboxStore("postgresql", table=f"outbox_{run}", clock=clock)
    publisher = JetStreamPublisher(nats_url, run)
    conn = connect()
    conn.autocommit = True
    try:
        store.create_schema(conn)
        for invoice, amount in [("inv-1", 100), ("inv-2", 250), ("inv-3", 75)]:
            with conn.transaction():
                record = OutboxRecord.create(invoice, "InvoiceIssued", {"eur": amount})
                store.enqueue(conn, record)

        with conn.transaction():
            claim = store.claim(conn, 10, lease_seconds=30)
        for record in claim.records[:2]:
            publisher(record)
        print(f"  relay A claimed {len(claim)}, published 2, crashed")

        clock.advance(31)  # relay A's lease expires
        relay = OutboxRelay(store, connect, publisher, clock=clock)
        report = relay.run_once()
        relay.close()
        print(f"  relay B published {report.published} (at least once)")

        stored, events = publisher.read_all()
        stats = store.stats(conn)
    finally:
        publisher.close()
        conn.execute(f"DROP TABLE IF EXISTS {store.table}")
        conn.close()

    duplicates = [bool(ack.duplicate) for ack in publisher.acks]
    print(f"  JetStream acks: {duplicates.count(True)} duplicates not stored again")
    print(f"  the stream holds {stored} messages")
    return {
        "claimed_by_a": [r.record_id for r in claim.records],
        "publishes": len(publisher.acks),
        "duplicate_acks": duplicates,
        "stream_sequences": [ack.seq for ack in publisher.acks],
        "stream_messages": stored,
        "consumed_ids": [e["record_id"] for e in events],
        "consumed": [e["aggregate_id"] for e in events],
        "published": stats.published,
        "pending": stats.pending,
    }


if __name__ == "__main__":
    print(main())
