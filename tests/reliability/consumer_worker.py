"""A consumer process behind an Inbox, for the consumer crash and duplicate tests.

Run as ``python -m tests.reliability.consumer_worker CONFIG_JSON``.

Mode ``consume`` reads the "broker" (a SQLite file of messages and committed
offsets) from the last committed offset, applies each message's effect behind
the Inbox in the consumer's database and commits; it acknowledges (commits the
broker offset) only every few messages, as real consumers do. With
``kill_point`` set it SIGKILLs itself at the ``kill_after``-th delivery:
``before-db-commit`` (the effect is written, the transaction is not committed)
or ``before-ack`` (committed, the offset is not). Every delivery is appended to
a log first, so the test can count redeliveries.

Mode ``deliver`` delivers ``ids`` in a shuffled order through the Inbox, one
transaction each, for the concurrent duplicate-delivery test.

``fault`` plants a defect the suite must catch: ``effect-outside-transaction``
writes the effect on its own autocommitted connection.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from integration_automation_patterns.outbox import Inbox

ACK_EVERY = 5


def connector(config: dict[str, Any]) -> Callable[[], Any]:
    """Return a factory of connections to the consumer's database."""
    if config["dialect"] == "postgresql":
        import psycopg

        def connect_pg() -> Any:
            # The server stays up in these tests, so commits need not wait for disk.
            options = f"-c search_path={config['schema']} -c synchronous_commit=off"
            return psycopg.connect(config["dsn"], options=options)

        return connect_pg

    def connect_sqlite() -> sqlite3.Connection:
        conn = sqlite3.connect(config["database"], timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return connect_sqlite


def effect_writer(config: dict[str, Any], connect: Callable[[], Any]) -> Any:
    """Return ``write(conn, message_id)``, the consumer's effect."""
    mark = "%s" if config["dialect"] == "postgresql" else "?"
    sql = f"INSERT INTO effects (id, worker) VALUES ({mark}, {mark})"
    worker = str(config.get("worker", "0"))

    if config.get("fault") == "effect-outside-transaction":
        # Another database, so the write does not wait for the inbox's lock.
        side = sqlite3.connect(config["effects_database"], timeout=60)

        def write_outside(conn: Any, message_id: str) -> None:
            side.cursor().execute(sql, (message_id, worker))
            side.commit()

        return write_outside

    def write(conn: Any, message_id: str) -> None:
        conn.cursor().execute(sql, (message_id, worker))

    return write


def consume(config: dict[str, Any]) -> None:
    """Consume from the committed offset until the broker has nothing new."""
    connect = connector(config)
    conn = connect()
    inbox = Inbox(config["dialect"])
    write = effect_writer(config, connect)
    broker = sqlite3.connect(config["broker"], timeout=60)
    broker.execute("PRAGMA synchronous=NORMAL")
    log = os.open(config["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    kill_point = config.get("kill_point", "")
    kill_after = int(config.get("kill_after", 0))
    delivered = 0

    while True:
        [offset] = broker.execute("SELECT next FROM offsets").fetchone()
        rows = broker.execute(
            "SELECT seq, id FROM messages WHERE seq >= ? ORDER BY seq LIMIT 50",
            (offset,),
        ).fetchall()
        if not rows:
            return
        for seq, message_id in rows:
            delivered += 1
            os.write(log, f"{message_id}\n".encode())
            due = delivered == kill_after

            def handler(c: Any, message_id: str = message_id) -> None:
                write(c, message_id)

            inbox.process(conn, message_id, handler)
            if due and kill_point == "before-db-commit":
                os.kill(os.getpid(), signal.SIGKILL)
            conn.commit()
            if due and kill_point == "before-ack":
                os.kill(os.getpid(), signal.SIGKILL)
            if delivered % ACK_EVERY == 0:
                acknowledge(broker, seq + 1)
        acknowledge(broker, rows[-1][0] + 1)


def acknowledge(broker: sqlite3.Connection, next_offset: int) -> None:
    """Commit the broker offset: messages before ``next_offset`` are done."""
    broker.execute("UPDATE offsets SET next = ?", (next_offset,))
    broker.commit()


def deliver(config: dict[str, Any]) -> None:
    """Deliver every id once, in a shuffled order, one transaction each."""
    connect = connector(config)
    conn = connect()
    inbox = Inbox(config["dialect"])
    write = effect_writer(config, connect)
    ids = list(config["ids"])
    random.Random(config["worker"]).shuffle(ids)
    for message_id in ids:

        def handler(c: Any, message_id: str = message_id) -> None:
            write(c, message_id)

        inbox.process(conn, message_id, handler)
        conn.commit()
    conn.close()


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    {"consume": consume, "deliver": deliver}[settings["mode"]](settings)
