"""Transactional outbox, relay and inbox on DB-API 2.0 connections.

The application writes its event into an outbox table in the same transaction
as the business change (``SqlOutboxStore.enqueue``). A relay
(``OutboxRelay``) claims pending records under a lease, publishes them outside
any transaction and marks them published; every claim carries a fencing token,
so a relay that lost its lease changes nothing. Delivery is at least once; an
``Inbox`` on the consuming side records each message id in the consumer's own
transaction, so effects apply exactly once.

Two dialects are supported: ``"sqlite"`` (the standard library's ``sqlite3``)
and ``"postgresql"`` (psycopg 3 or any driver with the ``%s`` paramstyle).

Run ``python -m integration_automation_patterns.outbox --help`` for the
operator commands (status, dead, requeue, discard, purge).
"""

# ruff: noqa: S608 -- table names are checked identifiers; values are bound parameters

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import json
import logging
import re
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from ._types import (
    SYSTEM_CLOCK,
    Clock,
    IntegrationError,
    Jitter,
    RetryPolicy,
    new_event_id,
)

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "BatchReport",
    "ClaimedBatch",
    "IdempotencyConflictError",
    "Inbox",
    "OutboxError",
    "OutboxInputError",
    "OutboxProcessor",
    "OutboxRecord",
    "OutboxRelay",
    "OutboxStats",
    "OutboxStatus",
    "RetryPolicy",
    "SqlOutboxStore",
    "retry_horizon",
]

logger = logging.getLogger(__name__)

_Relay = TypeVar("_Relay", bound="OutboxRelay")

DEFAULT_RETRY_POLICY = RetryPolicy(
    max_attempts=10, backoff_seconds=1.0, max_backoff_seconds=300.0
)
"""The relay's retry policy when none is given: ten attempts, 1 s doubling to 5 min."""

DIALECTS = ("sqlite", "postgresql")
_IDENTIFIER = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"
)
_NAMED = re.compile(r":([a-z_][a-z0-9_]*)")
_MAX_ERROR_CHARS = 2000
_SQLITE_CHUNK = 500
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_EMPTY_HEADERS = "{}"


class OutboxError(IntegrationError):
    """Something the outbox, relay or inbox refused or could not do."""


class OutboxInputError(OutboxError, ValueError):
    """An argument or stored value the outbox cannot use."""


class IdempotencyConflictError(OutboxError, ValueError):
    """A message id arrived again with a different payload."""


class OutboxStatus(enum.Enum):
    """Where an outbox record stands."""

    PENDING = "pending"
    PUBLISHED = "published"
    DEAD = "dead"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _from_ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


@dataclass
class OutboxRecord:
    """One event waiting in, or passed through, the transactional outbox.

    The first eight fields are the 0.2.0 record. ``aggregate_type`` names the
    kind of aggregate (Debezium routes on it), ``headers`` travel with the
    event, ``status`` says where it stands and ``available_at`` is when it may
    next be claimed (``None``: as soon as it is stored). ``sequence`` and
    ``lease_token`` are filled in by the store when it reads a record back.
    """

    aggregate_id: str
    event_type: str
    payload: dict[str, Any]
    record_id: str = field(default_factory=new_event_id)
    created_at: datetime = field(default_factory=_utc_now)
    published_at: datetime | None = None
    attempt_count: int = 0
    last_error: str | None = None
    aggregate_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    status: OutboxStatus = OutboxStatus.PENDING
    available_at: datetime | None = None
    sequence: int | None = None
    lease_token: str | None = None

    @classmethod
    def create(
        cls,
        aggregate_id: str,
        event_type: str,
        payload: dict[str, Any],
        *,
        aggregate_type: str = "",
        headers: dict[str, str] | None = None,
        clock: Clock | None = None,
    ) -> OutboxRecord:
        """Build a new pending record with a fresh time-ordered id.

        Args:
            aggregate_id: id of the domain object the event is about.
            event_type: the event's discriminator, e.g. ``"AccountUpdated"``.
            payload: the event data; must be JSON-serialisable.
            aggregate_type: the kind of aggregate, e.g. ``"account"``.
            headers: string headers to send with the event.
            clock: where ``created_at`` is read (default: the system clock).
        """
        created = datetime.fromtimestamp((clock or SYSTEM_CLOCK).time(), timezone.utc)
        return cls(
            aggregate_id=aggregate_id,
            event_type=event_type,
            payload=payload,
            created_at=created,
            aggregate_type=aggregate_type,
            headers=dict(headers or {}),
        )

    @property
    def is_pending(self) -> bool:
        """Return True while the event has not been published (nor given up)."""
        return self.published_at is None and self.status is OutboxStatus.PENDING

    def to_event_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable event a broker receives.

        ``record_id`` lets consumers de-duplicate the redeliveries an outbox
        can produce.
        """
        return {
            "record_id": self.record_id,
            "aggregate_id": self.aggregate_id,
            "event_type": self.event_type,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
        }


@dataclass
class OutboxProcessor:
    """The 0.2.0 relay loop over three callables; storage is the caller's.

    Prefer ``SqlOutboxStore`` with ``OutboxRelay``, which add leases, fencing,
    per-aggregate order and retries.

    Args:
        fetch_pending: ``(batch_size) -> list[OutboxRecord]``; ``None`` or
            any other empty result means nothing is pending.
        publish: sends ``record.to_event_dict()``; raises on failure.
        mark_published: ``(record_id) -> None``.
        mark_failed: optional ``(record_id, error_message, attempt_count)``.
    """

    fetch_pending: Callable[[int], Sequence[OutboxRecord] | None]
    publish: Callable[[dict[str, Any]], None]
    mark_published: Callable[[str], None]
    mark_failed: Callable[[str, str, int], None] | None = None

    def process_batch(self, batch_size: int = 100) -> tuple[int, int]:
        """Publish one batch of pending records and return (published, failed)."""
        published = failed = 0

        for record in self.fetch_pending(batch_size) or ():
            if self._relay(record):
                published += 1
            else:
                failed += 1

        logger.info(
            "outbox batch done",
            extra={"published": published, "failed": failed},
        )
        return published, failed

    def _relay(self, record: OutboxRecord) -> bool:
        try:
            self.publish(record.to_event_dict())
            self.mark_published(record.record_id)
        except Exception as exc:  # noqa: BLE001 -- any publish failure is counted
            self._report_failure(record, exc)
            return False
        return True

    def _report_failure(self, record: OutboxRecord, exc: Exception) -> None:
        attempt = record.attempt_count + 1
        logger.warning(
            "outbox publish failed",
            extra={"event_id": record.record_id, "attempt": attempt},
        )
        if self.mark_failed is None:
            return
        try:
            self.mark_failed(record.record_id, str(exc), attempt)
        except Exception:
            logger.exception(
                "outbox could not record a failed publish",
                extra={"event_id": record.record_id},
            )


@dataclass(frozen=True)
class ClaimedBatch:
    """Records leased by one claim, with the fencing token that owns them."""

    token: str
    records: tuple[OutboxRecord, ...]
    leased_until: float

    def __iter__(self) -> Iterator[OutboxRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class OutboxStats:
    """A snapshot of the outbox for dashboards and alerts.

    ``pending`` counts unpublished records nobody holds (including those
    waiting for a retry), ``in_flight`` those under a live lease,
    ``blocked_aggregates`` the aggregates held back by a dead record or a
    retry wait, and ``oldest_pending_age`` is in seconds (``None`` when empty).
    """

    pending: int
    in_flight: int
    dead: int
    published: int
    oldest_pending_age: float | None
    blocked_aggregates: int

    def to_dict(self) -> dict[str, int | float | None]:
        """Return the figures as a JSON-serialisable mapping."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BatchReport:
    """What one ``OutboxRelay.run_once`` did, handed to the batch hook.

    Attributes:
        claimed: records the claim leased.
        published: records published and marked so.
        failed: records whose publish failed (scheduled again or dead).
        released: records handed back unpublished to keep their aggregate's
            order.
        dead: records that went DEAD in this batch.
        fenced: outcomes refused because the lease was lost.
        token: the claim's fencing token.
        started_at: the relay clock's ``monotonic()`` when the batch began.
        finished_at: the same clock when its outcomes were committed.
        dead_ids: the ids of the records that went DEAD in this batch.
    """

    claimed: int
    published: int
    failed: int
    released: int
    dead: int
    fenced: int
    token: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    dead_ids: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        """Return the seconds the batch took, by the relay's clock."""
        return self.finished_at - self.started_at


def _json_problem(value: object) -> str:
    try:
        _ENCODE(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return str(exc) or type(exc).__name__
    return ""


def _check_dialect(dialect: str) -> str:
    if dialect not in DIALECTS:
        raise OutboxInputError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    return dialect


def _check_table(table: str) -> str:
    try:
        valid = _IDENTIFIER.match(table) is not None
    except TypeError:
        valid = False
    if not valid:
        raise OutboxInputError(f"table must be a plain SQL identifier, got {table!r}")
    return table


def _seconds(value: float | timedelta, name: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise OutboxInputError(f"{name} must be >= 0 seconds, got {value!r}")
    return seconds


class _Sql:
    """Render one dialect's SQL: ``:name`` placeholders and IN lists."""

    def __init__(self, dialect: str) -> None:
        self.dialect = _check_dialect(dialect)
        self.postgres = dialect == "postgresql"

    def render(self, sql: str) -> str:
        """Turn ``:name`` placeholders into the dialect's named style."""
        return _NAMED.sub(r"%(\1)s", sql) if self.postgres else sql

    def positional(self, sql: str) -> str:
        """Turn ``?`` placeholders into the dialect's positional style."""
        return sql.replace("?", "%s") if self.postgres else sql


def _execute(conn: Any, sql: str, params: Any = ()) -> Any:
    cursor = conn.cursor()
    cursor.execute(sql, params)
    return cursor


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_COLUMNS = (
    "id, aggregatetype, aggregateid, type, payload, headers, seq, created_at,"
    " available_at, status, attempt_count, last_error, lease_token, published_at"
)

_CLAIMABLE = (
    "{a}.status = 'pending' AND {a}.available_at <= :now"
    " AND ({a}.leased_until IS NULL OR {a}.leased_until <= :now)"
)

# A scalar subquery, unlike NOT EXISTS, is never turned into an anti-join, so
# each candidate probes the (aggregateid, seq) index and stops at the first
# blocking record instead of scanning every unpublished row.
_UNBLOCKED = (
    "(SELECT 1 FROM {t} AS b WHERE b.aggregateid = o.aggregateid"
    " AND b.seq < o.seq AND b.status <> 'published' AND NOT ("
    + _CLAIMABLE.format(a="b")
    + ") LIMIT 1) IS NULL"
)

_CANDIDATES = (
    "SELECT o.seq{extra} FROM {t} AS o WHERE "
    + _CLAIMABLE.format(a="o")
    + " AND "
    + _UNBLOCKED
    + " ORDER BY o.seq LIMIT :limit"
)


class SqlOutboxStore:
    """The outbox table and every statement on it, for SQLite or PostgreSQL.

    Methods take the caller's DB-API connection and never commit or roll
    back: ``enqueue`` joins the business transaction, and the relay commits
    its claims and marks itself. The first five columns are Debezium's outbox
    event router defaults (id, aggregatetype, aggregateid, type, payload), so
    Debezium can relay the same table instead.

    Args:
        dialect: ``"sqlite"`` or ``"postgresql"``.
        table: the table name (optionally ``schema.table``).
        clock: where ``now`` is read when a method is not given one.
    """

    def __init__(
        self,
        dialect: str = "sqlite",
        *,
        table: str = "outbox",
        clock: Clock | None = None,
    ) -> None:
        self._sql = _Sql(dialect)
        self.dialect = dialect
        self.table = _check_table(table)
        self._clock = clock or SYSTEM_CLOCK
        self._insert = self._sql.positional(
            f"INSERT INTO {table} (id, aggregatetype, aggregateid, type, payload,"
            " headers, created_at, available_at, status, attempt_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)"
        )

    def __repr__(self) -> str:
        return f"SqlOutboxStore({self.dialect!r}, table={self.table!r})"

    def _now(self, now: float | None) -> float:
        return self._clock.time() if now is None else now

    def create_schema(self, conn: Any) -> None:
        """Create the outbox table and its indexes if they do not exist."""
        for statement in self._schema():
            _execute(conn, statement)

    def _schema(self) -> list[str]:
        t, index = self.table, self.table.replace(".", "_")
        seq = (
            "seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE"
            if self._sql.postgres
            else "seq INTEGER PRIMARY KEY"
        )
        real = "DOUBLE PRECISION" if self._sql.postgres else "REAL"
        pk = "PRIMARY KEY" if self._sql.postgres else "NOT NULL UNIQUE"
        table = (
            f"CREATE TABLE IF NOT EXISTS {t} (id TEXT {pk},"
            " aggregatetype TEXT NOT NULL, aggregateid TEXT NOT NULL,"
            " type TEXT NOT NULL, payload TEXT NOT NULL,"
            f" headers TEXT NOT NULL DEFAULT '{{}}', {seq},"
            f" created_at {real} NOT NULL, available_at {real} NOT NULL,"
            " status TEXT NOT NULL DEFAULT 'pending',"
            " attempt_count INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
            f" lease_token TEXT, leased_until {real}, published_at {real})"
        )
        indexes = [
            ("claimable", "(seq) WHERE status = 'pending'"),
            ("unpublished", "(aggregateid, seq) WHERE status <> 'published'"),
            ("lease", "(lease_token) WHERE lease_token IS NOT NULL"),
            ("published", "(published_at) WHERE status = 'published'"),
        ]
        return [table] + [
            f"CREATE INDEX IF NOT EXISTS {index}_{name} ON {t} {spec}"
            for name, spec in indexes
        ]

    def enqueue(self, conn: Any, record: OutboxRecord) -> None:
        """Insert one record in the caller's transaction (no commit)."""
        self.enqueue_many(conn, [record])

    def enqueue_many(self, conn: Any, records: Sequence[OutboxRecord]) -> None:
        """Insert records in order with one ``executemany`` (no commit).

        Raises:
            OutboxInputError: a payload or header is not JSON-serialisable.
        """
        now = self._now(None)
        try:
            rows = [self._row(r, now) for r in records]
        except (TypeError, ValueError, AttributeError) as exc:
            raise self._explain_bad_record(records) from exc

        conn.cursor().executemany(self._insert, rows)
        logger.debug("outbox enqueued", extra={"count": len(rows)})

    @staticmethod
    def _row(r: OutboxRecord, now: float) -> tuple[Any, ...]:
        available = r.available_at
        return (
            r.record_id,
            r.aggregate_type,
            r.aggregate_id,
            r.event_type,
            _ENCODE(r.payload),
            _ENCODE(r.headers) if r.headers else _EMPTY_HEADERS,
            r.created_at.timestamp(),
            now if available is None else available.timestamp(),
        )

    @staticmethod
    def _explain_bad_record(records: Sequence[OutboxRecord]) -> OutboxInputError:
        for index, record in enumerate(records):
            for name in ("payload", "headers"):
                problem = _json_problem(getattr(record, name, None))
                if problem:
                    return OutboxInputError(
                        f"record {index} ({getattr(record, 'record_id', '?')}):"
                        f" {name} is not JSON-serialisable: {problem}"
                    )
        return OutboxInputError("records must be OutboxRecord instances")

    def claim(
        self,
        conn: Any,
        limit: int,
        *,
        lease_seconds: float = 30,
        now: float | None = None,
    ) -> ClaimedBatch:
        """Lease up to ``limit`` claimable records, oldest first.

        For each aggregate the batch holds a run that starts at its oldest
        unpublished record; a record is never taken while an earlier record of
        its aggregate is unpublished outside the batch (leased elsewhere,
        waiting for a retry, or dead). The lease only holds once the caller
        commits; keep that transaction short.

        Args:
            conn: a DB-API connection; the caller commits.
            limit: the most records to lease.
            lease_seconds: how long the lease lasts before others may take over.
            now: the current Unix time (default: the store's clock).
        """
        if limit < 1:
            raise OutboxInputError(f"limit must be >= 1, got {limit!r}")
        now = self._now(now)
        token = uuid.uuid4().hex
        until = now + _seconds(lease_seconds, "lease_seconds")
        params = {"now": now, "limit": limit, "token": token, "until": until}

        if self._sql.postgres:
            rows = self._claim_postgres(conn, params)
        else:
            rows = self._claim_sqlite(conn, params)

        records = self._decode_claimed(conn, rows, token, now)
        if records:
            logger.debug("outbox claimed", extra={"count": len(records)})
        return ClaimedBatch(token, tuple(records), until)

    def _claim_sqlite(self, conn: Any, params: dict[str, Any]) -> list[Any]:
        # One UPDATE takes SQLite's write lock before it reads, so the
        # candidate scan and the lease are atomic against other writers.
        t = self.table
        _execute(
            conn,
            f"UPDATE {t} SET lease_token = :token, leased_until = :until"
            f" WHERE seq IN ({_CANDIDATES.format(t=t, extra='')})",
            params,
        )
        return list(
            _execute(
                conn,
                f"SELECT {_COLUMNS} FROM {t} WHERE lease_token = :token ORDER BY seq",
                params,
            ).fetchall()
        )

    def _claim_postgres(self, conn: Any, params: dict[str, Any]) -> list[Any]:
        t, sql = self.table, self._sql
        # The per-candidate subquery inflates the cost estimate past the JIT
        # threshold; compiling would take longer than the query itself.
        _execute(conn, "SET LOCAL jit = off")
        locked = _execute(
            conn,
            sql.render(
                _CANDIDATES.format(t=t, extra=", o.aggregateid")
                + " FOR UPDATE OF o SKIP LOCKED"
            ),
            params,
        ).fetchall()
        keep = self._prefix_runs(conn, locked)
        if not keep:
            return []

        params["keep"] = keep
        rows = _execute(
            conn,
            sql.render(
                f"UPDATE {t} SET lease_token = :token, leased_until = :until"
                f" WHERE seq = ANY(:keep) RETURNING {_COLUMNS}"
            ),
            params,
        ).fetchall()
        return sorted(rows, key=lambda row: row[6])

    def _prefix_runs(self, conn: Any, locked: list[Any]) -> list[int]:
        """Drop locked rows that an unpublished row outside the set precedes.

        The candidate scan saw a snapshot taken before it locked anything:
        another relay's claim could commit, or still be uncommitted, with rows
        skipped here. This second statement reads a fresh snapshot and keeps
        only per-aggregate runs with nothing unpublished before them.
        """
        if not locked:
            return []
        seqs = [row[0] for row in locked]
        tops: dict[str, int] = {}
        for seq, aggregate in locked:
            tops[aggregate] = max(seq, tops.get(aggregate, seq))
        barriers = dict(
            _execute(
                conn,
                self._sql.render(
                    "SELECT c.agg, MIN(o.seq) FROM"
                    " unnest(CAST(:aggs AS TEXT[]), CAST(:tops AS BIGINT[]))"
                    f" AS c(agg, top) JOIN {self.table} AS o"
                    " ON o.aggregateid = c.agg AND o.seq < c.top"
                    " AND o.status <> 'published' AND NOT (o.seq = ANY(:seqs))"
                    " GROUP BY c.agg"
                ),
                {"aggs": list(tops), "tops": list(tops.values()), "seqs": seqs},
            ).fetchall()
        )
        return [
            seq for seq, agg in locked if agg not in barriers or seq < barriers[agg]
        ]

    def _decode_claimed(
        self, conn: Any, rows: list[Any], token: str, now: float
    ) -> list[OutboxRecord]:
        records: list[OutboxRecord] = []
        poisoned: set[str] = set()

        for row in rows:
            if row[2] in poisoned:
                self.release(conn, [row[0]], token)
                continue
            try:
                records.append(_record_from_row(row))
            except OutboxInputError as exc:
                poisoned.add(row[2])
                self._bury(conn, row[0], str(exc), token, now)
        return records

    def _bury(
        self, conn: Any, record_id: str, error: str, token: str, now: float
    ) -> None:
        logger.error(
            "outbox record cannot be decoded; marked dead",
            extra={"event_id": record_id},
        )
        _execute(
            conn,
            self._sql.render(
                f"UPDATE {self.table} SET status = 'dead', last_error = :error,"
                " lease_token = NULL, leased_until = NULL, available_at = :now"
                " WHERE id = :id AND lease_token = :token"
            ),
            {
                "error": error[:_MAX_ERROR_CHARS],
                "id": record_id,
                "token": token,
                "now": now,
            },
        )

    def _update_ids(
        self, conn: Any, assignments: str, ids: Sequence[str], params: dict[str, Any]
    ) -> int:
        ids = list(ids)
        if not ids:
            return 0
        t = self.table
        if self._sql.postgres:
            sql = self._sql.render(
                f"UPDATE {t} SET {assignments} WHERE id = ANY(:ids)"
                " AND lease_token = :token AND status = 'pending'"
            )
            return int(_execute(conn, sql, {**params, "ids": ids}).rowcount)

        changed = 0
        for chunk in _chunks(ids, _SQLITE_CHUNK):
            marks = ", ".join(f":i{n}" for n in range(len(chunk)))
            sql = (
                f"UPDATE {t} SET {assignments} WHERE id IN ({marks})"
                " AND lease_token = :token AND status = 'pending'"
            )
            values = {f"i{n}": value for n, value in enumerate(chunk)}
            changed += _execute(conn, sql, {**params, **values}).rowcount
        return changed

    def mark_published(
        self, conn: Any, ids: Sequence[str], token: str, *, now: float | None = None
    ) -> int:
        """Mark records published if ``token`` still owns their lease.

        Returns:
            How many records changed; fewer than ``len(ids)`` means the lease
            on the others was lost to another relay (fenced).
        """
        return self._update_ids(
            conn,
            "status = 'published', published_at = :now, lease_token = NULL,"
            " leased_until = NULL",
            ids,
            {"now": self._now(now), "token": token},
        )

    def release(self, conn: Any, ids: Sequence[str], token: str) -> int:
        """Give back leased records unpublished, so the next claim can take them."""
        return self._update_ids(
            conn, "lease_token = NULL, leased_until = NULL", ids, {"token": token}
        )

    def mark_failed(
        self,
        conn: Any,
        id: str,  # noqa: A002 -- the documented parameter name of this call
        error: str,
        token: str,
        *,
        retry_policy: RetryPolicy | None = None,
        now: float | None = None,
    ) -> OutboxStatus | None:
        """Record a failed publish: back off per the policy, or give up (DEAD).

        Returns:
            PENDING when a retry is scheduled, DEAD when the policy is used up,
            or None when ``token`` no longer owns the lease (nothing changed).
        """
        policy = retry_policy or DEFAULT_RETRY_POLICY
        now = self._now(now)
        record_id = id
        params = {"id": record_id, "token": token}
        row = _execute(
            conn,
            self._sql.render(
                f"SELECT attempt_count FROM {self.table} WHERE id = :id"
                " AND lease_token = :token AND status = 'pending'"
            ),
            params,
        ).fetchone()
        if row is None:
            return None

        attempts = int(row[0]) + 1
        status = (
            OutboxStatus.DEAD if policy.is_exhausted(attempts) else OutboxStatus.PENDING
        )
        delay = (
            0.0
            if status is OutboxStatus.DEAD
            else policy.delay_for_attempt(attempts - 1)
        )
        changed = self._update_ids(
            conn,
            "status = :status, attempt_count = :attempts, last_error = :error,"
            " available_at = :available, lease_token = NULL, leased_until = NULL",
            [record_id],
            {
                "token": token,
                "status": status.value,
                "attempts": attempts,
                "error": str(error)[:_MAX_ERROR_CHARS],
                "available": now + delay,
            },
        )
        return status if changed else None

    def _select(
        self, conn: Any, where: str, params: dict[str, Any]
    ) -> list[OutboxRecord]:
        rows = _execute(
            conn,
            self._sql.render(f"SELECT {_COLUMNS} FROM {self.table} WHERE {where}"),
            params,
        ).fetchall()
        return [_record_from_row(row, strict=False) for row in rows]

    def get(self, conn: Any, record_id: str) -> OutboxRecord | None:
        """Return the stored record with ``record_id``, or None."""
        found = self._select(conn, "id = :id", {"id": record_id})
        return found[0] if found else None

    def dead(self, conn: Any, limit: int = 100) -> list[OutboxRecord]:
        """Return up to ``limit`` dead records, oldest first."""
        return self._select(
            conn, "status = 'dead' ORDER BY seq LIMIT :limit", {"limit": limit}
        )

    def _dead_ids_clause(self, ids: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
        if ids is None:
            return "status = 'dead'", {}
        values = {f"i{n}": value for n, value in enumerate(ids)}
        marks = ", ".join(f":{name}" for name in values) or "NULL"
        return f"status = 'dead' AND id IN ({marks})", values

    def requeue_dead(
        self, conn: Any, ids: Sequence[str] | None = None, *, now: float | None = None
    ) -> int:
        """Make dead records pending again with fresh attempts (all when ids is None).

        Their aggregates resume in order from the requeued record.
        """
        where, params = self._dead_ids_clause(ids)
        params["now"] = self._now(now)
        count = int(
            _execute(
                conn,
                self._sql.render(
                    f"UPDATE {self.table} SET status = 'pending', attempt_count = 0,"
                    f" available_at = :now WHERE {where}"
                ),
                params,
            ).rowcount
        )
        logger.info("outbox requeued dead records", extra={"count": count})
        return count

    def discard_dead(self, conn: Any, ids: Sequence[str] | None = None) -> int:
        """Delete dead records (all when ids is None), unblocking their aggregates."""
        where, params = self._dead_ids_clause(ids)
        count = int(
            _execute(
                conn,
                self._sql.render(f"DELETE FROM {self.table} WHERE {where}"),
                params,
            ).rowcount
        )
        logger.warning("outbox discarded dead records", extra={"count": count})
        return count

    def purge_published(
        self, conn: Any, older_than: float | timedelta, *, now: float | None = None
    ) -> int:
        """Delete records published more than ``older_than`` seconds ago."""
        cutoff = self._now(now) - _seconds(older_than, "older_than")
        count = int(
            _execute(
                conn,
                self._sql.render(
                    f"DELETE FROM {self.table} WHERE status = 'published'"
                    " AND published_at < :cutoff"
                ),
                {"cutoff": cutoff},
            ).rowcount
        )
        logger.info("outbox purged published records", extra={"count": count})
        return count

    def stats(self, conn: Any, *, now: float | None = None) -> OutboxStats:
        """Count records by state and find the oldest pending one."""
        now = self._now(now)
        t = self.table
        row = _execute(
            conn,
            self._sql.render(
                "SELECT"
                " SUM(CASE WHEN status = 'pending' AND (leased_until IS NULL"
                "  OR leased_until <= :now) THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'pending' AND leased_until > :now"
                "  THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'published' THEN 1 ELSE 0 END),"
                " MIN(CASE WHEN status = 'pending' THEN created_at END)"
                f" FROM {t}"
            ),
            {"now": now},
        ).fetchone()
        blocked = _execute(
            conn,
            self._sql.render(
                f"SELECT COUNT(DISTINCT aggregateid) FROM {t} WHERE status = 'dead'"
                " OR (status = 'pending' AND available_at > :now)"
            ),
            {"now": now},
        ).fetchone()
        oldest = None if row[4] is None else max(0.0, now - float(row[4]))
        return OutboxStats(
            pending=int(row[0] or 0),
            in_flight=int(row[1] or 0),
            dead=int(row[2] or 0),
            published=int(row[3] or 0),
            oldest_pending_age=oldest,
            blocked_aggregates=int(blocked[0] or 0),
        )


def _load_json(value: Any, column: str, record_id: object) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise OutboxInputError(
            f"outbox record {record_id}: column {column} is not valid JSON"
        ) from exc


def _record_from_row(row: Sequence[Any], *, strict: bool = True) -> OutboxRecord:
    try:
        payload = _load_json(row[4], "payload", row[0])
        headers = _load_json(row[5], "headers", row[0])
    except OutboxInputError:
        if strict:
            raise
        payload, headers = {}, {}
    if not isinstance(payload, dict) or not isinstance(headers, dict):
        raise OutboxInputError(
            f"outbox record {row[0]}: payload and headers must be JSON objects"
        )
    try:
        return OutboxRecord(
            aggregate_id=row[2],
            event_type=row[3],
            payload=payload,
            record_id=row[0],
            created_at=datetime.fromtimestamp(row[7], timezone.utc),
            published_at=_from_ts(row[13]),
            attempt_count=row[10],
            last_error=row[11],
            aggregate_type=row[1],
            headers=headers,
            status=OutboxStatus(row[9]),
            available_at=_from_ts(row[8]),
            sequence=row[6],
            lease_token=row[12],
        )
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise OutboxInputError(f"outbox record {row[0]}: unreadable row") from exc


def retry_horizon(
    retry_policy: RetryPolicy | None = None, lease_seconds: float = 30
) -> float:
    """Return the longest a relay may keep re-publishing one record, in seconds.

    Every attempt can hold a lease that expires (a crash before the mark), and
    every failure waits the policy's largest delay for that retry. An inbox
    must remember message ids at least this long, plus any manual requeue.
    """
    policy = retry_policy or DEFAULT_RETRY_POLICY
    if policy.jitter is Jitter.DECORRELATED:
        waits = float(policy.max_backoff_seconds) * (policy.max_attempts - 1)
    else:
        # Full and equal jitter never exceed the un-jittered delay.
        plain = dataclasses.replace(policy, jitter=Jitter.NONE)
        waits = sum(plain.delay_for_attempt(n) for n in range(policy.max_attempts - 1))
    return waits + policy.max_attempts * float(lease_seconds)


class OutboxRelay:
    """Moves records from the outbox to the broker, at least once, in order.

    Each ``run_once`` claims a batch in one short transaction, publishes
    outside any transaction, then marks the results in another. A failed
    publish stops its aggregate for the rest of the batch, so order holds.

    Args:
        store: the outbox table.
        connect: returns a new DB-API connection; the relay keeps one open.
        publish: sends one record; raises on failure.
        batch_size: the most records one claim leases.
        lease_seconds: how long a claim holds its records; longer than a
            batch takes to publish.
        retry_policy: backoff and attempts per record (default
            ``DEFAULT_RETRY_POLICY``).
        clock: where time is read and idle waits happen.
        on_batch: called with a ``BatchReport`` after every batch.
        poll_interval: the first idle wait; it doubles while idle.
        max_idle: the longest idle wait between polls.
    """

    def __init__(
        self,
        store: SqlOutboxStore,
        connect: Callable[[], Any],
        publish: Callable[[OutboxRecord], object],
        *,
        batch_size: int = 100,
        lease_seconds: float = 30,
        retry_policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        on_batch: Callable[[BatchReport], object] | None = None,
        poll_interval: float = 0.05,
        max_idle: float = 2.0,
    ) -> None:
        if batch_size < 1:
            raise OutboxInputError(f"batch_size must be >= 1, got {batch_size!r}")
        self.store = store
        self.batch_size = batch_size
        self.lease_seconds = _seconds(lease_seconds, "lease_seconds")
        self.retry_policy = retry_policy or DEFAULT_RETRY_POLICY
        self.poll_interval = _seconds(poll_interval, "poll_interval")
        self.max_idle = max(_seconds(max_idle, "max_idle"), self.poll_interval)
        self._connect = connect
        self._publish = publish
        self._clock = clock or SYSTEM_CLOCK
        self._on_batch = on_batch
        self._conn: Any = None

    @property
    def retry_horizon(self) -> float:
        """Return how long this relay may re-publish one record, in seconds."""
        return retry_horizon(self.retry_policy, self.lease_seconds)

    def close(self) -> None:
        """Close the relay's database connection, if open."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self: _Relay) -> _Relay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run_once(self) -> BatchReport:
        """Claim, publish and mark one batch; return what happened."""
        conn = self._open() if self._conn is None else self._conn
        started = self._clock.monotonic()
        try:
            report = self._run(conn)
        except BaseException:
            self._discard(conn)
            raise
        report = dataclasses.replace(
            report, started_at=started, finished_at=self._clock.monotonic()
        )
        if self._on_batch is not None:
            self._on_batch(report)
        return report

    def _open(self) -> Any:
        self._conn = self._connect()
        return self._conn

    def _discard(self, conn: Any) -> None:
        self._conn = None
        try:
            conn.rollback()
            conn.close()
        except Exception:  # noqa: BLE001 -- the connection is already broken
            logger.debug("outbox relay dropped a broken connection")

    def _run(self, conn: Any) -> BatchReport:
        batch = self.store.claim(
            conn,
            self.batch_size,
            lease_seconds=self.lease_seconds,
            now=self._clock.time(),
        )
        conn.commit()
        if not batch.records:
            return BatchReport(0, 0, 0, 0, 0, 0, batch.token)

        published, failures, held = self._publish_batch(batch)
        return self._mark(conn, batch, published, failures, held)

    def _publish_batch(
        self, batch: ClaimedBatch
    ) -> tuple[list[str], list[tuple[OutboxRecord, str]], list[str]]:
        published: list[str] = []
        failures: list[tuple[OutboxRecord, str]] = []
        held: list[str] = []
        stopped: set[str] = set()

        for record in batch.records:
            if record.aggregate_id in stopped:
                held.append(record.record_id)
                continue
            try:
                self._publish(record)
            except Exception as exc:  # noqa: BLE001 -- any publish failure is retried
                stopped.add(record.aggregate_id)
                failures.append((record, f"{type(exc).__name__}: {exc}"))
                logger.warning(
                    "outbox publish failed",
                    extra={
                        "event_id": record.record_id,
                        "attempt": record.attempt_count + 1,
                    },
                )
            else:
                published.append(record.record_id)
        return published, failures, held

    def _mark(
        self,
        conn: Any,
        batch: ClaimedBatch,
        published: list[str],
        failures: list[tuple[OutboxRecord, str]],
        held: list[str],
    ) -> BatchReport:
        now = self._clock.time()
        marked = self.store.mark_published(conn, published, batch.token, now=now)
        outcomes = [
            self.store.mark_failed(
                conn,
                r.record_id,
                error,
                batch.token,
                retry_policy=self.retry_policy,
                now=now,
            )
            for r, error in failures
        ]
        released = self.store.release(conn, held, batch.token)
        conn.commit()

        dead = [
            r
            for (r, _), s in zip(failures, outcomes, strict=True)
            if s is OutboxStatus.DEAD
        ]
        for record in dead:
            logger.error(
                "outbox record is dead; its aggregate waits for an operator",
                extra={
                    "event_id": record.record_id,
                    "aggregate_id": record.aggregate_id,
                },
            )
        fenced = len(published) - marked + sum(s is None for s in outcomes)
        fenced += len(held) - released
        if fenced:
            logger.warning("outbox relay lost leases", extra={"count": fenced})
        return BatchReport(
            claimed=len(batch),
            published=len(published),
            failed=len(failures),
            released=released,
            dead=len(dead),
            fenced=fenced,
            token=batch.token,
            dead_ids=tuple(r.record_id for r in dead),
        )

    def run_forever(self, stop: threading.Event) -> None:
        """Relay batches until ``stop`` is set, backing off while idle or failing.

        An empty batch doubles the wait (from ``poll_interval`` to
        ``max_idle``); a full one polls again at once. Database errors are
        logged and retried on a fresh connection.
        """
        logger.info("outbox relay started", extra={"table": self.store.table})
        idle = 0.0
        try:
            while not stop.is_set():
                idle = self._next_wait(idle)
                if idle:
                    self._wait(stop, idle)
        finally:
            self.close()
            logger.info("outbox relay stopped", extra={"table": self.store.table})

    def _next_wait(self, idle: float) -> float:
        try:
            report = self.run_once()
        except Exception:
            logger.warning("outbox relay batch failed", exc_info=True)
            return min(max(idle * 2, self.poll_interval), self.max_idle)
        if report.claimed >= self.batch_size:
            return 0.0
        if report.claimed:
            return self.poll_interval
        return min(max(idle * 2, self.poll_interval), self.max_idle)

    def _wait(self, stop: threading.Event, seconds: float) -> None:
        # Short slices keep a stop request answered within 50 ms.
        deadline = self._clock.monotonic() + seconds
        while not stop.is_set():
            left = deadline - self._clock.monotonic()
            if left <= 1e-6:
                return
            self._clock.sleep(min(left, 0.05))


class Inbox:
    """Remembers processed message ids so effects apply exactly once.

    ``process`` records the id in the caller's transaction and runs the
    handler only for a new id; commit both together and a redelivered
    message changes nothing.

    Args:
        dialect: ``"sqlite"`` or ``"postgresql"``.
        table: the table name (optionally ``schema.table``).
        clock: where the processing time is read.
    """

    def __init__(
        self,
        dialect: str = "sqlite",
        *,
        table: str = "inbox",
        clock: Clock | None = None,
    ) -> None:
        self._sql = _Sql(dialect)
        self.dialect = dialect
        self.table = _check_table(table)
        self._clock = clock or SYSTEM_CLOCK

    def __repr__(self) -> str:
        return f"Inbox({self.dialect!r}, table={self.table!r})"

    def create_schema(self, conn: Any) -> None:
        """Create the inbox table and its index if they do not exist."""
        real = "DOUBLE PRECISION" if self._sql.postgres else "REAL"
        index = self.table.replace(".", "_")
        _execute(
            conn,
            f"CREATE TABLE IF NOT EXISTS {self.table} (consumer TEXT NOT NULL,"
            f" message_id TEXT NOT NULL, payload_hash TEXT, processed_at {real}"
            " NOT NULL, PRIMARY KEY (consumer, message_id))",
        )
        _execute(
            conn,
            f"CREATE INDEX IF NOT EXISTS {index}_processed"
            f" ON {self.table} (processed_at)",
        )

    def process(
        self,
        conn: Any,
        message_id: str,
        handler: Callable[[Any], object],
        *,
        consumer: str = "default",
        payload_hash: str | None = None,
    ) -> bool:
        """Run ``handler(conn)`` once per message id, in the caller's transaction.

        Returns:
            True when the handler ran, False for a duplicate.

        Raises:
            IdempotencyConflictError: the id was seen with another payload hash.
        """
        if not message_id or not isinstance(message_id, str):
            raise OutboxInputError(
                f"message_id must be a non-empty str, got {message_id!r}"
            )
        inserted = _execute(
            conn,
            self._sql.render(
                f"INSERT INTO {self.table} (consumer, message_id, payload_hash,"
                " processed_at) VALUES (:consumer, :id, :hash, :now)"
                " ON CONFLICT (consumer, message_id) DO NOTHING"
            ),
            {
                "consumer": consumer,
                "id": message_id,
                "hash": payload_hash,
                "now": self._clock.time(),
            },
        ).rowcount
        if inserted != 1:
            self._check_duplicate(conn, consumer, message_id, payload_hash)
            logger.debug("inbox skipped a duplicate", extra={"event_id": message_id})
            return False

        handler(conn)
        return True

    def _check_duplicate(
        self, conn: Any, consumer: str, message_id: str, payload_hash: str | None
    ) -> None:
        if payload_hash is None:
            return
        row = _execute(
            conn,
            self._sql.render(
                f"SELECT payload_hash FROM {self.table}"
                " WHERE consumer = :consumer AND message_id = :id"
            ),
            {"consumer": consumer, "id": message_id},
        ).fetchone()
        if row is not None and row[0] is not None and row[0] != payload_hash:
            raise IdempotencyConflictError(
                f"message {message_id!r} for consumer {consumer!r} was already"
                " processed with a different payload"
            )

    def purge(
        self,
        conn: Any,
        older_than: float | timedelta,
        *,
        relay_horizon: float | None = None,
    ) -> int:
        """Forget ids processed more than ``older_than`` seconds ago.

        Args:
            conn: a DB-API connection; the caller commits.
            older_than: the retention in seconds (or a timedelta).
            relay_horizon: the producer's ``retry_horizon``; a retention
                shorter than it is refused, since a redelivery could then
                apply twice.

        Raises:
            OutboxInputError: the retention is shorter than ``relay_horizon``.
        """
        retention = _seconds(older_than, "older_than")
        if relay_horizon is not None and retention < relay_horizon:
            raise OutboxInputError(
                f"inbox retention {retention:g}s is shorter than the relay's"
                f" retry horizon {relay_horizon:g}s"
            )
        return int(
            _execute(
                conn,
                self._sql.render(
                    f"DELETE FROM {self.table} WHERE processed_at < :cutoff"
                ),
                {"cutoff": self._clock.time() - retention},
            ).rowcount
        )


def _connect_from(target: str) -> Any:
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise OutboxInputError(f"--connect must be module:function, got {target!r}")
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise OutboxInputError(
            f"--connect {target!r} cannot be imported: {exc}"
        ) from exc
    return factory()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m integration_automation_patterns.outbox",
        description="Inspect and repair a transactional outbox table.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", help="path of a SQLite database file")
    source.add_argument(
        "--connect", help="module:function returning a DB-API connection"
    )
    parser.add_argument(
        "--dialect", choices=DIALECTS, help="default: from the connection"
    )
    parser.add_argument(
        "--table", default="outbox", help="outbox table (default: outbox)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="print counts as JSON")
    dead = commands.add_parser("dead", help="list dead records as JSON lines")
    dead.add_argument("--limit", type=int, default=100)
    for name, verb in (("requeue", "make pending again"), ("discard", "delete")):
        command = commands.add_parser(name, help=f"{verb} dead records")
        command.add_argument("ids", nargs="*", help="record ids")
        command.add_argument("--all", action="store_true", help="every dead record")
    purge = commands.add_parser("purge", help="delete old published records")
    purge.add_argument("--older-than", type=float, required=True, metavar="SECONDS")
    return parser


def _dead_line(record: OutboxRecord) -> str:
    return json.dumps(
        {
            "id": record.record_id,
            "aggregate_type": record.aggregate_type,
            "aggregate_id": record.aggregate_id,
            "type": record.event_type,
            "attempts": record.attempt_count,
            "last_error": record.last_error,
        }
    )


def _command(store: SqlOutboxStore, conn: Any, args: argparse.Namespace) -> str:
    if args.command == "status":
        return json.dumps(store.stats(conn).to_dict())
    if args.command == "dead":
        return "\n".join(_dead_line(r) for r in store.dead(conn, args.limit))
    if args.command == "purge":
        return f"purged {store.purge_published(conn, args.older_than)}"
    if not args.ids and not args.all:
        raise OutboxInputError(f"{args.command} needs record ids or --all")
    ids = None if args.all else args.ids
    if args.command == "requeue":
        return f"requeued {store.requeue_dead(conn, ids)}"
    return f"discarded {store.discard_dead(conn, ids)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the operator CLI; return the process exit status."""
    args = _parser().parse_args(argv)
    try:
        conn = sqlite3.connect(args.db) if args.db else _connect_from(args.connect)
    except (OutboxError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        dialect = args.dialect or (
            "sqlite" if isinstance(conn, sqlite3.Connection) else "postgresql"
        )
        output = _command(SqlOutboxStore(dialect, table=args.table), conn, args)
        conn.commit()
    except Exception as exc:  # noqa: BLE001 -- any database error becomes exit 1
        conn.rollback()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    if output:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
