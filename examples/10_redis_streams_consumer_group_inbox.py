"""Redis Streams consumer group feeding an Inbox: XACK only after the commit.

A payments producer appends to a Redis stream at least once, so one payment
arrives twice. A ledger consumer group reads it; each message is applied
through an ``Inbox`` in the ledger's own transaction, and XACKed only once
that transaction has committed. Worker 1 hits a transient database error on
one message (rolled back, left unacked) and crashes between the commit and
the XACK of another. Both stay in the group's pending list. Worker 2 takes
them over with XAUTOCLAIM: the rolled-back one is applied now, the committed
one is recognised by the inbox and only acknowledged. Every payment is
applied exactly once and nothing is left pending.

The inbox runs on SQLite (default) or on PostgreSQL when given a psycopg
``connect``. Run it with Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from integration_automation_patterns.outbox import Inbox

REDIS_URL = "redis://127.0.0.1:6379/0"
PAYMENTS = [
    ("pay-1", "acc-A", 100),
    ("pay-2", "acc-B", 50),
    ("pay-3", "acc-A", 25),
    ("pay-2", "acc-B", 50),  # the producer's retry: the same payment again
    ("pay-4", "acc-B", 10),
]


class Ledger:
    """The consumer's database: an inbox and the ledger rows it guards."""

    def __init__(self, conn: Any, dialect: str, run: str) -> None:
        self.conn, self.dialect = conn, dialect
        self.table = f"ledger_{run}"
        self.inbox = Inbox(dialect, table=f"inbox_{run}")
        self.fail_once = {"pay-3"}
        with self.transaction():
            self.inbox.create_schema(conn)
            conn.execute(
                f"CREATE TABLE {self.table} (payment TEXT PRIMARY KEY,"
                " account TEXT NOT NULL, amount INTEGER NOT NULL)"
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.dialect == "sqlite":
            with self.conn:
                yield
        else:
            with self.conn.transaction():
                yield

    def apply(self, fields: dict[str, str]) -> bool:
        """Apply one payment once; True when it changed the ledger."""
        mark = "?" if self.dialect == "sqlite" else "%s"

        def book(conn: Any) -> None:
            conn.execute(
                f"INSERT INTO {self.table} VALUES ({mark}, {mark}, {mark})",
                (fields["payment"], fields["account"], int(fields["amount"])),
            )
            if fields["payment"] in self.fail_once:
                self.fail_once.discard(fields["payment"])
                raise ConnectionError("database connection reset")

        with self.transaction():
            return self.inbox.process(
                self.conn, fields["payment"], book, consumer="ledger"
            )

    def booked(self) -> dict[str, tuple[str, int]]:
        """Return every booked payment with its account and amount."""
        rows = self.conn.execute(f"SELECT payment, account, amount FROM {self.table}")
        return {payment: (account, amount) for payment, account, amount in rows}


def handle(
    r: Any, stream: str, entries: list[Any], ledger: Ledger, log: dict[str, list[str]]
) -> None:
    """Apply each entry, then XACK it; a failed transaction leaves it pending."""
    for entry_id, fields in entries:
        payment = fields["payment"]
        try:
            applied = ledger.apply(fields)
        except ConnectionError as exc:
            print(f"  {payment}: {exc}; rolled back, left pending")
            continue
        log["applied" if applied else "duplicate"].append(payment)
        if payment == "pay-4" and not log["crashed"]:
            log["crashed"].append(payment)
            print(f"  {payment}: committed; worker 1 dies before its XACK")
            return
        r.xack(stream, "ledger", entry_id)
        print(f"  {payment}: {'applied' if applied else 'duplicate'}, then XACK")


def main(
    connect: Callable[[], Any] | None = None,
    dialect: str = "sqlite",
    redis_url: str = REDIS_URL,
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="iap-ledger-") as folder:
        connect = connect or (lambda: sqlite3.connect(Path(folder) / "ledger.db"))
        conn: Any = connect()
        if dialect == "postgresql":
            conn.autocommit = True
        r = redis.Redis.from_url(redis_url, socket_timeout=3, decode_responses=True)
        ledger = Ledger(conn, dialect, run)
        try:
            return consume(r, f"payments:{run}", ledger)
        finally:
            r.delete(f"payments:{run}")
            r.close()
            with ledger.transaction():
                conn.execute(f"DROP TABLE {ledger.table}")
                conn.execute(f"DROP TABLE {ledger.inbox.table}")
            conn.close()


def consume(r: Any, stream: str, ledger: Ledger) -> dict[str, Any]:
    r.xgroup_create(stream, "ledger", id="0", mkstream=True)
    for payment, account, amount in PAYMENTS:
        r.xadd(stream, {"payment": payment, "account": account, "amount": amount})
    log: dict[str, list[str]] = {"applied": [], "duplicate": [], "crashed": []}

    batch = r.xreadgroup("ledger", "worker-1", {stream: ">"}, count=10)
    first = batch[0][1]
    handle(r, stream, first, ledger, log)
    pending_after_crash = r.xpending(stream, "ledger")["pending"]

    # Production code waits for min_idle_time (say 60 s) before taking over.
    _, claimed, _ = r.xautoclaim(stream, "ledger", "worker-2", min_idle_time=0)
    print(f"  worker 2 claims {len(claimed)} pending entries")
    handle(r, stream, claimed, ledger, log)
    more = r.xreadgroup("ledger", "worker-2", {stream: ">"}, count=10)

    return {
        "entries": r.xlen(stream),
        "delivered_to_worker_1": len(first),
        "pending_after_crash": pending_after_crash,
        "reclaimed": [fields["payment"] for _, fields in claimed],
        "applied": log["applied"],
        "duplicates": log["duplicate"],
        "new_after_takeover": len(more),
        "pending": r.xpending(stream, "ledger")["pending"],
        "booked": ledger.booked(),
    }


if __name__ == "__main__":
    print(main())
