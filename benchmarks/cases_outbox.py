"""Outbox: enqueue cost against a raw ``executemany``, and relay throughput.

Relays run in worker processes (``multiprocessing``), one relay and one
connection per process, as they are deployed: Python threads would share one
interpreter lock and understate what a second relay adds. The workers are
started once per database, each opens its connection before the first timed
drain, and one call hands the drain to 1, 2 or 4 of them and waits until all
report an empty claim. The publisher is a no-op, so the figures are the
relay's and the database's own cost.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks._peers import optional
from benchmarks.harness import Case, Contender, RateTarget, Target
from integration_automation_patterns.outbox import (
    OutboxRecord,
    OutboxRelay,
    SqlOutboxStore,
)

ENQUEUE_RECORDS = 10_000
RELAY_RECORDS = 10_000
AGGREGATES = 1_000
RELAYS = (1, 2, 4)
BATCH_SIZE = 100
RAW = "raw executemany (json.dumps per row)"
PREBUILT = "raw executemany (rows prebuilt)"

_INSERT = (
    "INSERT INTO {table} (id, aggregatetype, aggregateid, type, payload,"
    " headers, created_at, available_at, status, attempt_count)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)"
)


def records(count: int) -> list[OutboxRecord]:
    """Return ``count`` order events spread over ``AGGREGATES`` aggregates."""
    return [
        OutboxRecord.create(
            f"order-{n % AGGREGATES}",
            "OrderPlaced",
            {"order": n, "customer": f"c-{n % 97}", "total": n * 1.5, "lines": 3},
            aggregate_type="order",
        )
        for n in range(count)
    ]


def connect(dialect: str, target: str) -> Any:
    """Open a connection: ``target`` is a SQLite path or a PostgreSQL DSN."""
    if dialect == "sqlite":
        conn = sqlite3.connect(target, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    psycopg = optional("psycopg")
    assert psycopg is not None
    return psycopg.connect(target)


class Database:
    """One benchmark database: a SQLite file or a PostgreSQL schema."""

    def __init__(self, dialect: str, dsn: str = "") -> None:
        self.dialect = dialect
        self.folder: Path | None = None
        if dialect == "sqlite":
            self.folder = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
            self.target = str(self.folder / "outbox.db")
            self.table = "outbox"
        else:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            self.target = dsn
            self.schema = schema
            self.table = f"{schema}.outbox"
        self.store = SqlOutboxStore(dialect, table=self.table)
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        """Return the benchmark's own connection, creating the table first."""
        if self._conn is None:
            conn = connect(self.dialect, self.target)
            if self.dialect == "postgresql":
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            self.store.create_schema(conn)
            conn.commit()
            self._conn = conn
        return self._conn

    def insert_sql(self) -> str:
        """Return the raw INSERT statement in this dialect's paramstyle."""
        sql = _INSERT.format(table=self.table)
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def empty(self) -> None:
        """Delete every row, so a fill starts from an empty table."""
        conn = self.conn
        if self.dialect == "postgresql":
            conn.execute(f"TRUNCATE {self.table}")
        else:
            conn.execute(f"DELETE FROM {self.table}")
        conn.commit()

    def analyze(self) -> None:
        """Refresh PostgreSQL's statistics, as autovacuum does for a live table.

        Right after a bulk load into an emptied table the planner still
        believes it empty and scans every pending row per claim.
        """
        if self.dialect == "postgresql":
            self.conn.execute(f"ANALYZE {self.table}")
            self.conn.commit()

    def close(self) -> None:
        """Drop the schema or the file."""
        if self._conn is not None:
            if self.dialect == "postgresql":
                self._conn.rollback()
                self._conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
                self._conn.commit()
            self._conn.close()
            self._conn = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def cases(scale: float = 1.0) -> list[Case]:
    """Return enqueue and relay cases for SQLite, and PostgreSQL when configured."""
    enqueue_count = max(100, int(ENQUEUE_RECORDS * scale))
    relay_count = max(200, int(RELAY_RECORDS * scale))
    found = _cases(Database("sqlite"), enqueue_count, relay_count)

    dsn = os.environ.get("IAP_POSTGRES_DSN", "")
    if dsn and optional("psycopg") is not None:
        found += _cases(Database("postgresql", dsn), enqueue_count, relay_count)
    else:
        print("outbox: PostgreSQL cases skipped (IAP_POSTGRES_DSN is not set)")
    return found


def _cases(db: Database, enqueue_count: int, relay_count: int) -> list[Case]:
    return [_enqueue(db, enqueue_count), _relay(db, relay_count)]


def _enqueue(db: Database, count: int) -> Case:
    batch = records(count)
    sql = db.insert_sql()
    prebuilt = [_raw_row(r) for r in batch]

    def ours() -> None:
        db.store.enqueue_many(db.conn, batch)
        db.conn.rollback()

    def raw() -> None:
        db.conn.cursor().executemany(sql, [_raw_row(r) for r in batch])
        db.conn.rollback()

    def floor() -> None:
        db.conn.cursor().executemany(sql, prebuilt)
        db.conn.rollback()

    contenders: dict[str, Contender] = {PREBUILT: floor, RAW: raw, "ours": ours}
    return Case(
        f"outbox enqueue {count:,} records, {db.dialect}",
        contenders,
        targets=[Target(RAW, 1.5)],
        number=3,
        items=count,
        unit=f"{count:,} records",
        item_unit="record",
        rounds=7,
        note=(
            f"`SqlOutboxStore.enqueue_many` of {count:,} records in one"
            " transaction, rolled back after each call so the table stays the"
            " same size, against the same rows through `cursor.executemany`"
            " with the same INSERT: built from the records with `json.dumps`"
            " (what the outbox replaces), and prebuilt outside the timer"
            " (the driver's floor)."
        ),
    )


def _raw_row(r: OutboxRecord) -> tuple[Any, ...]:
    created = r.created_at.timestamp()
    return (
        r.record_id,
        r.aggregate_type,
        r.aggregate_id,
        r.event_type,
        json.dumps(r.payload),
        json.dumps(r.headers),
        created,
        created,
    )


def _relay(db: Database, count: int) -> Case:
    pool = RelayPool(db)
    batch = records(count)

    def setup() -> None:
        pool.start()
        db.empty()
        db.store.enqueue_many(db.conn, batch)
        db.conn.commit()
        db.analyze()

    def teardown() -> None:
        pool.stop()
        db.close()

    contenders: dict[str, Contender] = {
        f"{n} relay{'s' if n > 1 else ''}": _drain(pool, n, count) for n in RELAYS
    }
    target = [RateTarget("1 relay", 10_000)] if db.dialect == "sqlite" else []
    return Case(
        f"outbox relay {count:,} records, {db.dialect}",
        contenders,
        ours="1 relay",
        targets=target,
        number=1,
        items=count,
        unit=f"{count:,} records",
        item_unit="record",
        note=(
            f"{count:,} pending records over {AGGREGATES:,} aggregates drained by"
            f" 1, 2 or 4 `OutboxRelay` processes (batch {BATCH_SIZE}, no-op"
            " publisher) until every claim comes back empty. Scaling is each"
            " row's records per second over the single relay's."
        ),
        setup=setup,
        teardown=teardown,
        warmup=False,
        rounds=5,
        scaling=True,
    )


def _drain(pool: RelayPool, relays: int, count: int) -> Callable[[], None]:
    def drain() -> None:
        published = pool.drain(relays)
        if published != count:
            raise RuntimeError(f"relays published {published} of {count} records")

    return drain


class RelayPool:
    """Worker processes, each holding one relay, started once and reused."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pipes: list[Connection] = []
        self.workers: list[multiprocessing.process.BaseProcess] = []

    def start(self) -> None:
        """Start the workers unless they run already."""
        if self.workers:
            return
        _ = self.db.conn  # the table exists (in WAL mode) before any relay opens it
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        for _ in range(max(RELAYS)):
            ours, theirs = context.Pipe()
            worker = context.Process(
                target=relay_worker,
                args=(self.db.dialect, self.db.target, self.db.table, theirs),
                daemon=True,
            )
            worker.start()
            self.pipes.append(ours)
            self.workers.append(worker)
        for pipe in self.pipes:
            _answer(pipe)

    def drain(self, relays: int) -> int:
        """Let ``relays`` workers drain the outbox; return how many they published."""
        pipes = self.pipes[:relays]
        for pipe in pipes:
            pipe.send("drain")
        return sum(_answer(pipe) for pipe in pipes)

    def stop(self) -> None:
        """Stop the workers and wait for them."""
        for pipe in self.pipes:
            # A worker that died already had its error reported by drain().
            with contextlib.suppress(OSError):
                pipe.send(None)
        for worker in self.workers:
            worker.join(timeout=30)
        self.pipes.clear()
        self.workers.clear()


def _answer(pipe: Connection) -> int:
    answer = pipe.recv()
    if isinstance(answer, str):
        raise RuntimeError(f"relay worker failed: {answer}")
    return int(answer)


def relay_worker(dialect: str, target: str, table: str, pipe: Connection) -> None:
    """Serve drain requests with one relay on one connection until told to stop."""
    store = SqlOutboxStore(dialect, table=table)
    relay = OutboxRelay(
        store,
        lambda: connect(dialect, target),
        _publish,
        batch_size=BATCH_SIZE,
        lease_seconds=300,
    )
    try:
        relay.run_once()  # opens the connection outside the timed drains
        pipe.send(0)
        while pipe.recv() is not None:
            pipe.send(_drain_once(relay))
    finally:
        relay.close()


def _drain_once(relay: OutboxRelay) -> int | str:
    published = 0
    try:
        while True:
            report = relay.run_once()
            if not report.claimed:
                return published
            published += report.published
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _publish(record: OutboxRecord) -> None:
    """Publish nowhere: the benchmark times the relay, not a broker."""
