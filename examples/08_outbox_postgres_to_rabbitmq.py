"""Outbox on PostgreSQL relayed to RabbitMQ with publisher confirms.

An order service writes each order row and its outbox record in ONE PostgreSQL
transaction. An ``OutboxRelay`` publishes the records through pika on a channel
in confirm mode, so ``basic_publish`` returns only once the broker has taken
the message, and raises ``NackError`` when the broker refuses it. The queue
holds at most two messages and rejects further publishes, so the first batch
gets two confirms and then a real nack for o-1's payment: the relay records it
as failed with a retry, and holds o-1's shipment back rather than publish it
out of order. Once a consumer drains the queue and the backoff has passed (a
``ManualClock``), the next batch delivers both. Every record reaches the queue
exactly once, and each order's events arrive in the order they were written.

Run it with RabbitMQ on 127.0.0.1:5672 (guest/guest) and PostgreSQL at
``IAP_POSTGRES_DSN`` (default ``postgresql://root@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import pika
import psycopg

from integration_automation_patterns._types import ManualClock, RetryPolicy
from integration_automation_patterns.outbox import (
    OutboxRecord,
    OutboxRelay,
    SqlOutboxStore,
)

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DSN = os.environ.get("IAP_POSTGRES_DSN", "postgresql://root@127.0.0.1:5432/test")
ORDERS: list[tuple[str, str, dict[str, Any]]] = [
    ("o-1", "OrderPlaced", {"total": 120}),
    ("o-2", "OrderPlaced", {"total": 80}),
    ("o-1", "OrderPaid", {"total": 120}),
    ("o-1", "OrderShipped", {"carrier": "DHL"}),
]


class RabbitPublisher:
    """The caller's adapter: one confirmed publish per outbox record."""

    def __init__(self, url: str, queue: str) -> None:
        self.queue = queue
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        # A full queue nacks new publishes instead of dropping old messages.
        arguments = {"x-max-length": 2, "x-overflow": "reject-publish"}
        self.channel.queue_declare(queue, durable=True, arguments=arguments)

    def __call__(self, record: OutboxRecord) -> None:
        """Publish and wait for the confirm; a nack or a return raises."""
        self.channel.basic_publish(
            exchange="",
            routing_key=self.queue,
            body=json.dumps(record.to_event_dict()).encode(),
            properties=pika.BasicProperties(
                message_id=record.record_id,
                type=record.event_type,
                content_type="application/json",
                delivery_mode=2,
            ),
            mandatory=True,
        )

    def drain(self) -> list[dict[str, Any]]:
        """Consume and ack every message waiting in the queue."""
        events: list[dict[str, Any]] = []
        while True:
            method, _, body = self.channel.basic_get(self.queue)
            if method is None:
                return events
            events.append(json.loads(body))
            self.channel.basic_ack(method.delivery_tag)

    def close(self) -> None:
        self.channel.queue_delete(self.queue)
        self.connection.close()


def place_orders(conn: Any, store: SqlOutboxStore, table: str) -> None:
    """Write each order row and its event in one transaction."""
    for order_id, event_type, payload in ORDERS:
        with conn.transaction():
            conn.execute(
                f"INSERT INTO {table} VALUES (%s, %s) ON CONFLICT (id)"
                " DO UPDATE SET status = excluded.status",
                (order_id, event_type),
            )
            store.enqueue(conn, OutboxRecord.create(order_id, event_type, payload))


def main(
    connect: Callable[[], Any] | None = None, amqp_url: str = AMQP_URL
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    connect = connect or (lambda: psycopg.connect(DSN))
    clock = ManualClock(start=1_700_000_000.0)
    store = SqlOutboxStore("postgresql", table=f"outbox_{run}", clock=clock)
    orders = f"orders_{run}"
    publisher = RabbitPublisher(amqp_url, f"orders-{run}")
    relay = OutboxRelay(
        store,
        connect,
        publisher,
        retry_policy=RetryPolicy(max_attempts=5, backoff_seconds=1.0),
        clock=clock,
    )
    conn = connect()
    conn.autocommit = True
    try:
        conn.execute(f"CREATE TABLE {orders} (id TEXT PRIMARY KEY, status TEXT)")
        store.create_schema(conn)
        place_orders(conn, store, orders)

        first = relay.run_once()
        print(f"  batch 1: {first.published} confirmed, {first.failed} nacked")
        delivered = publisher.drain()

        clock.advance(1.0)  # the first retry's backoff
        second = relay.run_once()
        print(f"  batch 2: {second.published} confirmed, {second.failed} nacked")
        delivered += publisher.drain()
        stats = store.stats(conn)
        rows = conn.execute(
            f"SELECT id, attempt_count, last_error FROM {store.table} ORDER BY seq"
        ).fetchall()
    finally:
        relay.close()
        publisher.close()
        conn.execute(f"DROP TABLE IF EXISTS {orders}, {store.table}")
        conn.close()

    for event in delivered:
        print(f"  consumed {event['aggregate_id']} {event['event_type']}")
    return {
        "batches": [(r.published, r.failed, r.released) for r in (first, second)],
        "delivered": [(e["aggregate_id"], e["event_type"]) for e in delivered],
        "record_ids": [e["record_id"] for e in delivered],
        "enqueued_ids": [row[0] for row in rows],
        "attempts": [row[1] for row in rows],
        "errors": [row[2] for row in rows if row[2]],
        "published": stats.published,
        "pending": stats.pending,
        "dead": stats.dead,
    }


if __name__ == "__main__":
    print(main())
