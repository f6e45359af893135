"""End to end: a signed webhook becomes an order saga, events and applied effects.

The story, on the embedded default (SQLite files in a temporary directory and an
in-process broker, so nothing has to be running):

1. A shop sends signed ``order.placed`` webhooks (Standard Webhooks). The
   receiver verifies each signature, drops a retried delivery with a
   ``MemoryReplayGuard`` and, after a restart wiped that memory, with the
   durable ``Inbox``. A forged delivery is refused.
2. Each new order starts an order saga journalled in SQLite. Every step writes
   its business row and its outbox record in one transaction. One card is
   declined, so that saga compensates the stock it reserved.
3. The ``OutboxRelay`` publishes the outbox to the broker (surviving one
   broker hiccup) and a fulfilment consumer applies each event through its
   own ``Inbox``. The consumer "loses" some acks, so the broker redelivers
   those messages; the inbox drops them.
4. The demo checks its invariants and exits 1 if any broke.

Run it::

    python examples/end_to_end.py                    # embedded, no services
    python examples/end_to_end.py --broker rabbitmq  # pika, publisher confirms
    python examples/end_to_end.py --broker nats      # JetStream, ack'd publish
    python examples/end_to_end.py --broker redis     # Streams + consumer group

``--fault double-apply`` plants a bug (redelivered messages bypass the
consumer's inbox) to show the invariant checks catching it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

try:
    import integration_automation_patterns  # noqa: F401 -- probe: installed or not
except ImportError:  # a fresh clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from integration_automation_patterns.outbox import (
    Inbox,
    OutboxRecord,
    OutboxRelay,
    RetryPolicy,
    SqlOutboxStore,
)
from integration_automation_patterns.saga import (
    SagaContext,
    SagaOrchestrator,
    SagaResult,
    SqliteSagaStore,
)
from integration_automation_patterns.webhook_handler import (
    MemoryReplayGuard,
    StandardWebhooksVerifier,
    WebhookError,
    WebhookReplayError,
)

SECRET = "whsec_" + base64.b64encode(b"demo-shop-signing-key-0123456789").decode()
STOCK = {"widget": 10, "gadget": 5}
ORDERS: list[dict[str, Any]] = [
    {"order_id": "A-1001", "sku": "widget", "qty": 2, "amount": 40.0, "card": "ok"},
    {"order_id": "A-1002", "sku": "gadget", "qty": 1, "amount": 25.0, "card": "bad"},
    {"order_id": "A-1003", "sku": "widget", "qty": 3, "amount": 60.0, "card": "ok"},
]
SAGA_EVENTS = {
    "completed": ["StockReserved", "PaymentCaptured", "OrderConfirmed"],
    "compensated": ["StockReserved", "StockReleased", "OrderCancelled"],
}
DRAIN_SECONDS = 15.0


def say(text: str) -> None:
    print(text, flush=True)


class PaymentDeclinedError(Exception):
    """The payment provider refused the card."""


# --------------------------------------------------------------------- storage


def connect_to(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    return connect


@contextmanager
def transaction(connect: Callable[[], sqlite3.Connection]) -> Iterator[Any]:
    """Open a connection, commit on success, roll back on error, close."""
    with closing(connect()) as conn, conn:
        yield conn


SHOP_SCHEMA = [
    (
        "CREATE TABLE orders (order_id TEXT PRIMARY KEY, sku TEXT, qty INTEGER,"
        " amount REAL, status TEXT)"
    ),
    (
        "CREATE TABLE reservations (step_key TEXT PRIMARY KEY, order_id TEXT,"
        " sku TEXT, qty INTEGER, released INTEGER DEFAULT 0)"
    ),
    "CREATE TABLE payments (step_key TEXT PRIMARY KEY, order_id TEXT, amount REAL)",
]
WAREHOUSE_SCHEMA = [
    "CREATE TABLE stock (sku TEXT PRIMARY KEY, on_hand INTEGER)",
    # No unique key on purpose: a double-applied effect must stay visible.
    (
        "CREATE TABLE applied (n INTEGER PRIMARY KEY, message_id TEXT,"
        " order_id TEXT, event_type TEXT)"
    ),
    "CREATE TABLE shipments (order_id TEXT)",
]


@dataclass
class Shop:
    """The order service: its database, outbox, intake inbox and saga journal."""

    connect: Callable[[], sqlite3.Connection]
    outbox: SqlOutboxStore
    inbox: Inbox
    sagas: SqliteSagaStore

    @classmethod
    def create(cls, folder: Path) -> Shop:
        shop = cls(
            connect_to(folder / "shop.db"),
            SqlOutboxStore("sqlite"),
            Inbox("sqlite"),
            SqliteSagaStore(folder / "sagas.db"),
        )
        with transaction(shop.connect) as conn:
            for ddl in SHOP_SCHEMA:
                conn.execute(ddl)
            shop.outbox.create_schema(conn)
            shop.inbox.create_schema(conn)
        return shop

    def emit(self, conn: Any, order_id: str, event_type: str, **data: Any) -> None:
        record = OutboxRecord.create(
            order_id, event_type, {"order_id": order_id, **data}, aggregate_type="order"
        )
        self.outbox.enqueue(conn, record)


# ------------------------------------------------------------------ order saga


def order_saga(shop: Shop) -> SagaOrchestrator:
    """Reserve stock, charge the card, confirm; undo in reverse on failure."""

    def reserve_stock(ctx: SagaContext) -> str:
        order = ctx.data
        with transaction(shop.connect) as conn:
            new = conn.execute(
                "INSERT INTO reservations (step_key, order_id, sku, qty)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (ctx.idempotency_key(), order["order_id"], order["sku"], order["qty"]),
            ).rowcount
            if new:  # a resumed step must not emit its event twice
                shop.emit(
                    conn,
                    order["order_id"],
                    "StockReserved",
                    sku=order["sku"],
                    qty=order["qty"],
                )
        return ctx.idempotency_key()

    def release_stock(ctx: SagaContext) -> None:
        order = ctx.data
        with transaction(shop.connect) as conn:
            changed = conn.execute(
                "UPDATE reservations SET released = 1"
                " WHERE step_key = ? AND released = 0",
                (ctx.results["reserve_stock"],),
            ).rowcount
            if changed:
                shop.emit(
                    conn,
                    order["order_id"],
                    "StockReleased",
                    sku=order["sku"],
                    qty=order["qty"],
                )

    def charge_payment(ctx: SagaContext) -> str:
        order = ctx.data
        if order["card"] != "ok":
            raise PaymentDeclinedError(f"card declined for {order['order_id']}")
        with transaction(shop.connect) as conn:
            new = conn.execute(
                "INSERT INTO payments VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (ctx.idempotency_key(), order["order_id"], order["amount"]),
            ).rowcount
            if new:
                shop.emit(
                    conn, order["order_id"], "PaymentCaptured", amount=order["amount"]
                )
        return ctx.idempotency_key()

    def refund_payment(ctx: SagaContext) -> None:
        with transaction(shop.connect) as conn:
            conn.execute(
                "DELETE FROM payments WHERE step_key = ?",
                (ctx.results["charge_payment"],),
            )
            shop.emit(conn, ctx.data["order_id"], "PaymentRefunded")

    def confirm_order(ctx: SagaContext) -> None:
        with transaction(shop.connect) as conn:
            changed = conn.execute(
                "UPDATE orders SET status = 'confirmed'"
                " WHERE order_id = ? AND status = 'received'",
                (ctx.data["order_id"],),
            ).rowcount
            if changed:
                shop.emit(conn, ctx.data["order_id"], "OrderConfirmed")

    saga = SagaOrchestrator("order-fulfilment", store=shop.sagas)
    saga.add_step("reserve_stock", reserve_stock, release_stock)
    saga.add_step("charge_payment", charge_payment, refund_payment)
    saga.add_step("confirm_order", confirm_order)
    return saga


# --------------------------------------------------------------- webhook intake


@dataclass
class Tally:
    """What happened, counted as it happens, for the summary and invariants."""

    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    dropped_by_guard: int = 0
    dropped_by_inbox: int = 0
    sagas: Counter[str] = field(default_factory=Counter)
    published: int = 0
    publish_failures: int = 0
    deliveries: int = 0
    redeliveries: int = 0
    applied: int = 0
    duplicates_at_consumer: int = 0


class Receiver:
    """The webhook endpoint: verify, de-duplicate, record the order, run the saga."""

    def __init__(self, shop: Shop, tally: Tally) -> None:
        self.shop, self.tally = shop, tally
        self.saga = order_saga(shop)
        self.restart()

    def restart(self) -> None:
        """Lose the in-memory replay guard, as a redeploy would."""
        self.guard = MemoryReplayGuard(ttl_seconds=600)
        self.verifier = StandardWebhooksVerifier(SECRET, replay_guard=self.guard)

    def handle(self, body: bytes, headers: dict[str, str]) -> str:
        self.tally.sent += 1
        try:
            event = self.verifier.parse(body, headers)
        except WebhookReplayError:
            self.tally.dropped_by_guard += 1
            return "duplicate, dropped by the replay guard"
        except WebhookError as exc:
            self.tally.rejected += 1
            return f"rejected: {type(exc).__name__}"
        try:
            return self._accept(event.event_id, body, event.payload)
        except Exception:
            self.guard.discard(f"standard-webhooks:{event.event_id}")
            raise

    def _accept(self, webhook_id: str, body: bytes, payload: Any) -> str:
        order = payload["data"]
        with transaction(self.shop.connect) as conn:
            new = self.shop.inbox.process(
                conn,
                webhook_id,
                lambda c: c.execute(
                    "INSERT INTO orders VALUES (?, ?, ?, ?, 'received')",
                    (order["order_id"], order["sku"], order["qty"], order["amount"]),
                ),
                consumer="order-intake",
                payload_hash=hashlib.sha256(body).hexdigest(),
            )
        if not new:
            self.tally.dropped_by_inbox += 1
            return "duplicate, dropped by the inbox"
        self.tally.accepted += 1
        return self._run_saga(order)

    def _run_saga(self, order: dict[str, Any]) -> str:
        result = self.saga.execute(order, saga_id=f"order-{order['order_id']}")
        self.tally.sagas[result.status.value] += 1
        if result.succeeded:
            return f"saga completed: {', '.join(result.completed_steps)}"
        self._cancel(order["order_id"])
        return f"saga compensated: {_failure(result)}"

    def _cancel(self, order_id: str) -> None:
        with transaction(self.shop.connect) as conn:
            conn.execute(
                "UPDATE orders SET status = 'cancelled' WHERE order_id = ?",
                (order_id,),
            )
            self.shop.emit(conn, order_id, "OrderCancelled")


def _failure(result: SagaResult) -> str:
    undone = ", ".join(result.compensated_steps)
    return f"{result.failed_step} failed ({result.error}); undid {undone}"


def webhook(order: dict[str, Any], webhook_id: str) -> tuple[bytes, dict[str, str]]:
    """Build what the shop's sender posts: the body and its signed headers."""
    body = json.dumps({"type": "order.placed", "data": order}).encode()
    sender = StandardWebhooksVerifier(SECRET)
    return body, sender.sign(body, msg_id=webhook_id)


def send_webhooks(receiver: Receiver) -> None:
    say("== 1. webhooks arrive: verify, de-duplicate, run the order saga")
    first, second, third = (webhook(o, f"msg_{o['order_id']}") for o in ORDERS)
    forged_body, forged_headers = webhook({**ORDERS[0], "amount": 0.01}, "msg_forged")
    forged_headers["webhook-signature"] = first[1]["webhook-signature"]

    plan: list[tuple[str, tuple[bytes, dict[str, str]]]] = [
        ("A-1001", first),
        ("A-1002", second),
        ("A-1001 (shop retries)", first),
        ("forged A-1001", (forged_body, forged_headers)),
        ("A-1003", third),
        ("A-1003 (shop retries)", third),
    ]
    for label, (body, headers) in plan:
        if label.startswith("A-1003 ("):
            receiver.restart()
            say("   ~~ receiver restarts: the replay guard's memory is gone")
        say(f"   {label:<22} {receiver.handle(body, headers)}")


# ---------------------------------------------------------------------- brokers


@dataclass
class Delivery:
    """One message as a consumer receives it."""

    message_id: str
    body: bytes
    redelivered: bool
    handle: Any = None


class Broker(Protocol):
    """The four things the demo needs from a broker."""

    name: str

    def publish(self, message_id: str, body: bytes) -> None: ...
    def fetch(self, limit: int) -> list[Delivery]: ...
    def ack(self, delivery: Delivery) -> None: ...
    def requeue(self, delivery: Delivery) -> None: ...
    def close(self) -> None: ...


class InProcessBroker:
    """A queue in memory with at-least-once redelivery of unacked messages."""

    name = "in-process broker"

    def __init__(self) -> None:
        self.queue: deque[Delivery] = deque()

    def publish(self, message_id: str, body: bytes) -> None:
        self.queue.append(Delivery(message_id, body, redelivered=False))

    def fetch(self, limit: int) -> list[Delivery]:
        return [self.queue.popleft() for _ in range(min(limit, len(self.queue)))]

    def ack(self, delivery: Delivery) -> None:
        """Nothing to do: a fetched message is gone unless requeued."""

    def requeue(self, delivery: Delivery) -> None:
        self.queue.append(Delivery(delivery.message_id, delivery.body, True))

    def close(self) -> None:
        self.queue.clear()


class RabbitMQBroker:
    """RabbitMQ through pika: publisher confirms, basic_get, nack to requeue."""

    def __init__(self, url: str) -> None:
        import pika

        self.name = f"RabbitMQ at {url}"
        params = pika.URLParameters(url)
        params.connection_attempts, params.socket_timeout = 1, 3
        self._pika = pika
        self._conn = pika.BlockingConnection(params)
        self._channel = self._conn.channel()
        self._channel.confirm_delivery()
        self.queue = f"iap-demo-{uuid.uuid4().hex[:8]}"
        self._channel.queue_declare(self.queue, durable=True)

    def publish(self, message_id: str, body: bytes) -> None:
        # With confirms on, a nack or an unroutable message raises here.
        self._channel.basic_publish(
            "",
            self.queue,
            body,
            self._pika.BasicProperties(message_id=message_id, delivery_mode=2),
            mandatory=True,
        )

    def fetch(self, limit: int) -> list[Delivery]:
        got: list[Delivery] = []
        while len(got) < limit:
            method, props, body = self._channel.basic_get(self.queue)
            if method is None:
                break
            got.append(Delivery(props.message_id, body, method.redelivered, method))
        return got

    def ack(self, delivery: Delivery) -> None:
        self._channel.basic_ack(delivery.handle.delivery_tag)

    def requeue(self, delivery: Delivery) -> None:
        self._channel.basic_nack(delivery.handle.delivery_tag, requeue=True)

    def close(self) -> None:
        self._channel.queue_delete(self.queue)
        self._conn.close()


class NatsBroker:
    """NATS JetStream through nats-py: ack'd publish, pull consumer, nak."""

    def __init__(self, url: str) -> None:
        import nats

        self.name = f"NATS JetStream at {url}"
        self._loop = asyncio.new_event_loop()
        self.stream = f"IAP_DEMO_{uuid.uuid4().hex[:8].upper()}"
        self.subject = f"{self.stream.lower()}.orders"
        connecting = nats.connect(
            url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0
        )
        self._nc = self._run(asyncio.wait_for(connecting, timeout=5))
        self._js = self._nc.jetstream()
        self._run(self._js.add_stream(name=self.stream, subjects=[self.subject]))
        self._sub = self._run(self._js.pull_subscribe(self.subject, "fulfilment"))

    def _run(self, work: Any) -> Any:
        return self._loop.run_until_complete(work)

    def publish(self, message_id: str, body: bytes) -> None:
        # JetStream answers with a PubAck once the stream stored the message.
        headers = {"Nats-Msg-Id": message_id}
        self._run(self._js.publish(self.subject, body, timeout=3, headers=headers))

    def fetch(self, limit: int) -> list[Delivery]:
        import nats.errors

        try:
            msgs = self._run(self._sub.fetch(limit, timeout=0.5))
        except nats.errors.TimeoutError:
            return []
        return [
            Delivery(m.headers["Nats-Msg-Id"], m.data, m.metadata.num_delivered > 1, m)
            for m in msgs
        ]

    def ack(self, delivery: Delivery) -> None:
        self._run(delivery.handle.ack())

    def requeue(self, delivery: Delivery) -> None:
        self._run(delivery.handle.nak())

    def close(self) -> None:
        self._run(self._js.delete_stream(self.stream))
        self._run(self._nc.close())
        self._loop.close()


class RedisBroker:
    """Redis Streams through redis-py: XADD, a consumer group, XACK."""

    group, consumer = "fulfilment", "worker-1"

    def __init__(self, url: str) -> None:
        import redis

        self.name = f"Redis Streams at {url}"
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=3)
        self._redis.ping()
        self.stream = f"iap-demo:{uuid.uuid4().hex[:8]}"
        self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)

    def publish(self, message_id: str, body: bytes) -> None:
        # XADD returns the entry id once the server appended it.
        self._redis.xadd(self.stream, {"message_id": message_id, "body": body})

    def fetch(self, limit: int) -> list[Delivery]:
        # "0" re-reads this consumer's unacknowledged entries: the redeliveries.
        pending = self._read("0", limit)
        return pending or self._read(">", limit, block=500)

    def _read(self, start: str, limit: int, block: int | None = None) -> list[Delivery]:
        reply: Any = self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=limit, block=block
        )
        entries = reply[0][1] if reply else []
        return [
            Delivery(f[b"message_id"].decode(), f[b"body"], start == "0", entry_id)
            for entry_id, f in entries
        ]

    def ack(self, delivery: Delivery) -> None:
        self._redis.xack(self.stream, self.group, delivery.handle)

    def requeue(self, delivery: Delivery) -> None:
        """Leave it unacknowledged: it stays pending and is read again."""

    def close(self) -> None:
        self._redis.delete(self.stream)
        self._redis.close()


BROKERS: dict[str, tuple[Callable[[str], Broker], str]] = {
    "rabbitmq": (RabbitMQBroker, "amqp://guest:guest@127.0.0.1:5672/%2F"),
    "nats": (NatsBroker, "nats://127.0.0.1:4222"),
    "redis": (RedisBroker, "redis://127.0.0.1:6379/0"),
}


def open_broker(name: str, url: str | None) -> Broker:
    if name == "embedded":
        return InProcessBroker()
    factory, default_url = BROKERS[name]
    url = url or default_url
    where = urlsplit(url)
    address = (where.hostname or "127.0.0.1", where.port or urlsplit(default_url).port)
    # A plain TCP probe first: some clients retry a refused connection for long.
    socket.create_connection((address[0], address[1] or 0), timeout=3).close()
    return factory(url)


# ------------------------------------------------------------------------ relay


def relay_outbox(shop: Shop, broker: Broker, tally: Tally) -> None:
    say(f"== 2. the relay publishes the outbox to the {broker.name}")
    hiccups = [ConnectionError("broker connection reset")]

    def publish(record: OutboxRecord) -> None:
        if hiccups:
            raise hiccups.pop()
        body = json.dumps(record.to_event_dict(), sort_keys=True).encode()
        broker.publish(record.record_id, body)

    relay = OutboxRelay(
        shop.outbox,
        shop.connect,
        publish,
        batch_size=4,
        retry_policy=RetryPolicy(max_attempts=5, backoff_seconds=0.05),
    )
    with closing(relay):
        _relay_until_empty(relay, shop, tally)


def _relay_until_empty(relay: OutboxRelay, shop: Shop, tally: Tally) -> None:
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        report = relay.run_once()
        tally.published += report.published
        tally.publish_failures += report.failed
        if report.claimed:
            failed = f", {report.failed} failed (will retry)" if report.failed else ""
            say(
                f"   batch: claimed {report.claimed}, published {report.published}"
                + failed
            )
        with closing(shop.connect()) as conn:
            if shop.outbox.stats(conn).pending == 0 and not report.claimed:
                return
        if not report.claimed:
            time.sleep(0.02)


# --------------------------------------------------------------------- consumer


class Warehouse:
    """The fulfilment service: applies each event once through its inbox."""

    def __init__(self, folder: Path, tally: Tally, fault: str | None) -> None:
        self.connect = connect_to(folder / "warehouse.db")
        self.inbox = Inbox("sqlite")
        self.tally, self.fault = tally, fault
        with transaction(self.connect) as conn:
            for ddl in WAREHOUSE_SCHEMA:
                conn.execute(ddl)
            conn.executemany("INSERT INTO stock VALUES (?, ?)", STOCK.items())
            self.inbox.create_schema(conn)

    def consume(self, broker: Broker) -> None:
        say("== 3. the warehouse consumes; every third first delivery loses its ack")
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and self._outstanding():
            for delivery in broker.fetch(5):
                self._receive(broker, delivery)

    def _outstanding(self) -> bool:
        return self.tally.deliveries < self.tally.published + self.tally.redeliveries

    def _receive(self, broker: Broker, delivery: Delivery) -> None:
        self.tally.deliveries += 1
        event = json.loads(delivery.body)
        applied = self._apply(delivery, event)
        outcome = "applied" if applied else "duplicate, dropped by the inbox"
        if applied:
            self.tally.applied += 1
        else:
            self.tally.duplicates_at_consumer += 1
        again = " (redelivered)" if delivery.redelivered else ""
        say(f"   {event['event_type']:<16}{event['aggregate_id']}  {outcome}{again}")

        if not delivery.redelivered and self.tally.deliveries % 3 == 0:
            self.tally.redeliveries += 1
            say("      ~~ the ack is lost after the commit: the broker redelivers")
            broker.requeue(delivery)
        else:
            broker.ack(delivery)

    def _apply(self, delivery: Delivery, event: dict[str, Any]) -> bool:
        def effect(conn: Any) -> None:
            self._effect(conn, delivery.message_id, event)

        with transaction(self.connect) as conn:
            if self.fault == "double-apply" and delivery.redelivered:
                effect(conn)  # the planted bug: a redelivery skips the inbox
                return True
            return self.inbox.process(
                conn,
                delivery.message_id,
                effect,
                consumer="fulfilment",
                payload_hash=hashlib.sha256(delivery.body).hexdigest(),
            )

    @staticmethod
    def _effect(conn: Any, message_id: str, event: dict[str, Any]) -> None:
        kind, payload = event["event_type"], event["payload"]
        change = {"StockReserved": -1, "StockReleased": 1}.get(kind, 0)
        if change:
            conn.execute(
                "UPDATE stock SET on_hand = on_hand + ? WHERE sku = ?",
                (change * payload["qty"], payload["sku"]),
            )
        if kind == "OrderConfirmed":
            conn.execute("INSERT INTO shipments VALUES (?)", (event["aggregate_id"],))
        conn.execute(
            "INSERT INTO applied (message_id, order_id, event_type) VALUES (?, ?, ?)",
            (message_id, event["aggregate_id"], kind),
        )


# ------------------------------------------------------------------- invariants


def check_invariants(
    shop: Shop, warehouse: Warehouse, tally: Tally
) -> list[tuple[str, bool]]:
    """Return each invariant with whether it held."""
    with closing(shop.connect()) as conn:
        stats = shop.outbox.stats(conn)
        statuses = dict(conn.execute("SELECT order_id, status FROM orders").fetchall())
    with closing(warehouse.connect()) as conn:
        applied = conn.execute(
            "SELECT message_id, order_id, event_type FROM applied ORDER BY n"
        ).fetchall()
        stock = dict(conn.execute("SELECT sku, on_hand FROM stock").fetchall())
        shipped = [r[0] for r in conn.execute("SELECT order_id FROM shipments")]

    expected_stock = dict(STOCK)
    for order in ORDERS:
        if statuses.get(order["order_id"]) == "confirmed":
            expected_stock[order["sku"]] -= order["qty"]
    by_order: dict[str, list[str]] = {}
    for _, order_id, kind in applied:
        by_order.setdefault(order_id, []).append(kind)
    wanted = {
        o: SAGA_EVENTS["completed" if s == "confirmed" else "compensated"]
        for o, s in statuses.items()
    }
    confirmed = sorted(o for o, s in statuses.items() if s == "confirmed")
    return [
        (
            "every delivery was accepted, rejected or dropped as a duplicate",
            tally.sent
            == tally.accepted
            + tally.rejected
            + tally.dropped_by_guard
            + tally.dropped_by_inbox,
        ),
        ("one order per distinct webhook", len(statuses) == len(ORDERS)),
        (
            "every saga finished; none left in the journal",
            sum(tally.sagas.values()) == len(ORDERS) and not shop.sagas.incomplete(),
        ),
        (
            "the outbox is drained: all published, none dead",
            stats.pending == stats.dead == stats.in_flight == 0
            and stats.published == tally.published,
        ),
        (
            "each published event applied exactly once",
            len(applied) == len({m for m, _, _ in applied}) == tally.published,
        ),
        ("each order's events applied in saga order", by_order == wanted),
        ("stock matches the confirmed orders", stock == expected_stock),
        ("each confirmed order shipped once", sorted(shipped) == confirmed),
    ]


# ------------------------------------------------------------------------- main


@dataclass
class DemoResult:
    """The demo's counts and the invariants it checked."""

    tally: Tally
    invariants: list[tuple[str, bool]]

    @property
    def ok(self) -> bool:
        return all(held for _, held in self.invariants)


def run_demo(broker: Broker, folder: Path, fault: str | None = None) -> DemoResult:
    tally = Tally()
    shop = Shop.create(folder)
    send_webhooks(Receiver(shop, tally))
    relay_outbox(shop, broker, tally)
    warehouse = Warehouse(folder, tally, fault)
    warehouse.consume(broker)
    invariants = check_invariants(shop, warehouse, tally)
    shop.sagas.close()
    return DemoResult(tally, invariants)


def print_summary(result: DemoResult) -> None:
    t = result.tally
    duplicates = t.dropped_by_guard + t.dropped_by_inbox
    rows = [
        ("webhooks received", f"{t.sent}"),
        ("webhooks rejected", f"{t.rejected}"),
        (
            "duplicates dropped",
            (
                f"{duplicates} (replay guard {t.dropped_by_guard},"
                f" inbox {t.dropped_by_inbox})"
            ),
        ),
        ("sagas completed", f"{t.sagas['completed']}"),
        ("sagas compensated", f"{t.sagas['compensated']}"),
        (
            "events published",
            f"{t.published} ({t.publish_failures} failed attempt retried)",
        ),
        ("messages redelivered", f"{t.redeliveries}"),
        ("redeliveries dropped", f"{t.duplicates_at_consumer}"),
        ("effects applied", f"{t.applied}"),
    ]
    say("== summary")
    for name, value in rows:
        say(f"   {name:<22} {value}")
    for name, held in result.invariants:
        say(f"   [{'ok' if held else 'BROKEN'}] {name}")
    holding = sum(ok for _, ok in result.invariants)
    say(f"   invariants             {holding}/{len(result.invariants)} hold")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=["embedded", *BROKERS], default="embedded")
    parser.add_argument("--broker-url", help="override the broker's default URL")
    parser.add_argument(
        "--fault",
        choices=["double-apply"],
        help="plant a bug the invariant checks must catch",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the library's INFO logs"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="      log %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    try:
        broker = open_broker(args.broker, args.broker_url)
    except Exception as exc:
        print(
            f"error: cannot reach the {args.broker} broker at"
            f" {args.broker_url or BROKERS[args.broker][1]}"
            f" ({type(exc).__name__}: {exc}); start it or use the embedded default",
            file=sys.stderr,
        )
        return 2

    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="iap-demo-") as folder:
            result = run_demo(broker, Path(folder), args.fault)
    finally:
        broker.close()
    print_summary(result)
    say(f"   took                   {time.monotonic() - started:.2f} s")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
